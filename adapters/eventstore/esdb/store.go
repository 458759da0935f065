// Package esdb implements eventstore.Store over EventStoreDB (or KurrentDB),
// through the gRPC client github.com/EventStore/EventStore-Client-Go/v4.
//
// Each event stream is an EventStoreDB stream of the same name ("case-<uuid>").
// An Append is one append request: its events are written atomically and
// share one commit position in $all, which is the commit's
// eventstore.Position. Versions are EventStoreDB's stream revisions (0, 1,
// 2...), so the expected version 0 is esdb.NoStream{} and n is
// esdb.Revision(n-1). Event ids are the caller's UUIDs: the server recognises
// a re-sent append as done, and so does the adapter after a conflict (see
// Append).
//
// The global log is $all restricted to the store's streams (prefix "case-"):
// a subscription filters on the server by stream prefix; ReadAll, which has
// no server-side filter in this client, skips system events ('$' streams) and
// other streams itself. Each event carries the commit it belongs to (its
// index and the commit's size) in its custom metadata, so that commits are
// delivered whole.
//
// The client has two habits the Store works around. It gives up for good
// when discovery fails (the server was unreachable for about a second, by
// default): the Store then opens a new client on the next call. And some of
// its calls block, without a context, while it rediscovers the server: every
// call runs aside and is abandoned when its context ends.
package esdb

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"go.uber.org/zap"

	"github.com/whistle-gov/whistle/adapters/eventstore"
)

// Defaults of Config.
const (
	DefaultStreamPrefix   = "case-"
	DefaultRetries        = 3
	DefaultReadBatch      = 512
	DefaultConnectTimeout = 10 * time.Second
	DefaultCloseGrace     = 5 * time.Second
	// DefaultResubscribeMax bounds the pause between attempts to
	// resubscribe after a subscription dropped; the pause starts at 100ms
	// and doubles.
	DefaultResubscribeMax = 5 * time.Second
)

// Config configures a Store. The zero value of every field but URL means
// its default.
type Config struct {
	// URL is the EventStoreDB connection string, e.g.
	// "esdb://127.0.0.1:2113?tls=false" for an insecure single node, or
	// "esdb://admin:changeit@node1:2113,node2:2113,node3:2113?tlsCAFile=ca.crt"
	// for a cluster (gossip seeds). It may carry credentials: the Store never
	// logs it and redacts it in errors.
	URL string
	// StreamPrefix is the prefix of the store's streams: Append refuses other
	// names, and the global log holds only these. Default
	// DefaultStreamPrefix.
	StreamPrefix string
	// Logger receives the client's log lines (discovery, reconnects, dropped
	// subscriptions) and the Store's own warnings. Nil: none.
	Logger *zap.Logger
	// Retries is how many times a call is tried again after a failure that
	// may pass (the server unavailable, a leader change, a timeout), with a
	// growing pause, while the caller's context allows. Default
	// DefaultRetries; negative: none.
	Retries int
	// ReadBatch is how many events one read request of $all asks for.
	// Default DefaultReadBatch.
	ReadBatch int
	// ConnectTimeout bounds Open's first contact with the server. Default
	// DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// CloseGrace is how long Close waits for calls in flight to leave the
	// client before closing it. Default DefaultCloseGrace.
	CloseGrace time.Duration
	// ResubscribeMax bounds the pause between resubscription attempts.
	// Default DefaultResubscribeMax.
	ResubscribeMax time.Duration
}

func (c *Config) setDefaults() {
	if c.StreamPrefix == "" {
		c.StreamPrefix = DefaultStreamPrefix
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Retries == 0 {
		c.Retries = DefaultRetries
	} else if c.Retries < 0 {
		c.Retries = 0
	}
	if c.ReadBatch <= 0 {
		c.ReadBatch = DefaultReadBatch
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.CloseGrace <= 0 {
		c.CloseGrace = DefaultCloseGrace
	}
	if c.ResubscribeMax <= 0 {
		c.ResubscribeMax = DefaultResubscribeMax
	}
}

// Store is an eventstore.Store over EventStoreDB. It is safe for concurrent
// use.
type Store struct {
	cfg    Config
	client esdb.Configuration // a copy per client made
	log    *zap.Logger

	// life is cancelled by Close, which ends every call in flight.
	life context.Context
	kill context.CancelFunc

	mu     sync.Mutex
	closed bool
	cur    *conn

	headMu sync.Mutex
	head   headCache
}

var _ eventstore.Store = (*Store)(nil)

// conn is one esdb.Client. It is dead once the client gave up discovering
// the server; the Store then makes a new one.
type conn struct {
	client *esdb.Client
	dead   chan struct{}
	once   sync.Once
	// users counts the calls inside the client: closing it under them would
	// make the client panic (it sends on its closed channel).
	users sync.WaitGroup
}

func (c *conn) kill() { c.once.Do(func() { close(c.dead) }) }

func (c *conn) isDead() bool {
	select {
	case <-c.dead:
		return true
	default:
		return false
	}
}

// Open parses cfg.URL, connects, and returns a Store once the server
// answers a read of $all (within cfg.ConnectTimeout, retrying meanwhile).
// It fails on a bad URL, or when the server does not answer in time.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg.setDefaults()
	if strings.HasPrefix(cfg.StreamPrefix, "$") || strings.IndexFunc(cfg.StreamPrefix, func(r rune) bool { return r <= ' ' }) >= 0 {
		return nil, fmt.Errorf("esdb: stream prefix %q: must not start with '$' or hold spaces or control characters", cfg.StreamPrefix)
	}
	parsed, err := esdb.ParseConnectionString(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("esdb: connection string %s: %s", Redact(cfg.URL), strings.ReplaceAll(err.Error(), cfg.URL, Redact(cfg.URL)))
	}
	log := cfg.Logger.Named("esdb")
	parsed.Logger = zapLogging(log.Named("client"))
	life, kill := context.WithCancel(context.Background())
	s := &Store{cfg: cfg, client: *parsed, log: log, life: life, kill: kill}

	cctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		_, err = s.Head(cctx)
		if err == nil {
			return s, nil
		}
		if cctx.Err() != nil {
			break
		}
		if !sleep(cctx, backoff(attempt, 2*time.Second)) {
			break
		}
	}
	s.Close()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("esdb: connect to %s: %w", Redact(cfg.URL), ctx.Err())
	}
	return nil, fmt.Errorf("esdb: connect to %s: no answer within %s: %w", Redact(cfg.URL), cfg.ConnectTimeout, err)
}

// Redact returns a connection string without its password, for logs and
// errors.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		// Gossip seeds ("host1:2113,host2:2113") do not parse as one URL;
		// hide whatever sits between the scheme and '@'.
		scheme, rest, ok := strings.Cut(raw, "://")
		if !ok {
			return "(unparsable connection string)"
		}
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			rest = "xxxxx@" + rest[at+1:]
		}
		return scheme + "://" + rest
	}
	return u.Redacted()
}

// zapLogging sends the client's log lines to log. The client logs every
// failed call as an error, including those the Store retries or returns to
// its caller, who decides; they are logged as warnings.
func zapLogging(log *zap.Logger) esdb.LoggingFunc {
	sugar := log.Sugar()
	return func(level esdb.LogLevel, format string, args ...interface{}) {
		switch level {
		case esdb.LogDebug:
			sugar.Debugf(format, args...)
		case esdb.LogInfo:
			sugar.Infof(format, args...)
		default:
			sugar.Warnf(format, args...)
		}
	}
}

// Close stops the store: calls in flight end with an error matching
// eventstore.ErrClosed (an Append cut short may or may not have happened),
// later calls return it at once. It waits up to Config.CloseGrace for calls
// to leave the client, then closes the client. Appends acknowledged before
// are kept by the server. Close is idempotent and returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	cur := s.cur
	s.mu.Unlock()
	s.kill()
	if cur == nil {
		return nil
	}
	left := make(chan struct{})
	go func() {
		cur.users.Wait()
		close(left)
	}()
	select {
	case <-left:
		cur.client.Close()
	case <-time.After(s.cfg.CloseGrace):
		// A call is stuck inside the client (it blocks while rediscovering
		// the server): closing the client now would make it panic. Leave it
		// to the process's end.
		s.log.Warn("closing the store without closing the EventStoreDB client: calls are still inside it", zap.Duration("waited", s.cfg.CloseGrace))
	}
	return nil
}

// acquire returns the live client with one use registered; the caller
// releases it with c.users.Done.
func (s *Store) acquire() (*conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, eventstore.ErrClosed
	}
	if s.cur == nil || s.cur.isDead() {
		if s.cur != nil {
			// Its state machine has ended; calls queued on it never
			// return, so it is not closed (see conn.users).
			s.log.Warn("EventStoreDB client gave up discovering the server; opening a new one")
		}
		cfg := s.client
		client, err := esdb.NewClient(&cfg)
		if err != nil {
			return nil, fmt.Errorf("new client: %w", err)
		}
		s.cur = &conn{client: client, dead: make(chan struct{})}
	}
	s.cur.users.Add(1)
	return s.cur, nil
}

// errConnLost: the client gave up while a call waited inside it.
var errConnLost = errors.New("the EventStoreDB client gave up discovering the server")

// call runs fn on c aside, so that a client blocked rediscovering the server
// does not hold the caller past ctx. If ctx ends (or the client dies) first,
// fn is abandoned and discard receives its result should it succeed later.
func call[T any](ctx context.Context, c *conn, fn func(*esdb.Client) (T, error), discard func(T)) (T, error) {
	ch := make(chan result[T], 1)
	c.users.Add(1)
	go func() {
		defer c.users.Done()
		v, err := fn(c.client)
		ch <- result[T]{v, err}
	}()
	var zero T
	select {
	case r := <-ch:
		if r.err != nil && clientDied(r.err) {
			c.kill()
		}
		return r.v, r.err
	case <-ctx.Done():
		go abandon(ch, discard)
		return zero, ctx.Err()
	case <-c.dead:
		go abandon(ch, discard)
		return zero, errConnLost
	}
}

type result[T any] struct {
	v   T
	err error
}

func abandon[T any](ch <-chan result[T], discard func(T)) {
	r := <-ch
	if r.err == nil && discard != nil {
		discard(r.v)
	}
}

// clientDied reports an error after which the client serves no more calls.
func clientDied(err error) bool {
	var e *esdb.Error
	if errors.As(err, &e) && e.Code() == esdb.ErrorCodeConnectionClosed {
		return true
	}
	return strings.Contains(err.Error(), "maximum discovery attempt count reached")
}

// begin starts a call (see eventstore.BeginCall).
func (s *Store) begin(ctx context.Context, op string) (context.Context, context.CancelFunc, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	return eventstore.BeginCall(ctx, s.life, closed, "esdb", op)
}

// fail wraps err from operation op (see eventstore.CallError).
func fail(ctx context.Context, op string, err error) error {
	return eventstore.CallError(ctx, "esdb", op, err)
}

// transient reports a failure worth trying again: the outcome of an append
// is then unknown, which Append handles.
func transient(err error) bool {
	if errors.Is(err, errConnLost) {
		return true
	}
	var e *esdb.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() {
	case esdb.ErrorUnavailable, esdb.ErrorCodeNotLeader, esdb.ErrorCodeDeadlineExceeded,
		esdb.ErrorAborted, esdb.ErrorCodeConnectionClosed:
		return true
	}
	return clientDied(err)
}

// retry runs attempt until it succeeds, fails for good, or ctx ends, trying
// again after transient failures up to Config.Retries times.
func (s *Store) retry(ctx context.Context, op string, attempt func(c *conn) error) error {
	for n := 0; ; n++ {
		c, err := s.acquire()
		if err != nil {
			return err
		}
		err = attempt(c)
		c.users.Done()
		if err == nil || ctx.Err() != nil || !transient(err) || n >= s.cfg.Retries {
			return err
		}
		s.log.Debug("retrying after a transient failure", zap.String("op", op), zap.Int("attempt", n+1), zap.Error(err))
		if !sleep(ctx, backoff(n, 2*time.Second)) {
			return err
		}
	}
}

// backoff is 100ms doubled n times, at most limit.
func backoff(n int, limit time.Duration) time.Duration {
	d := 100 * time.Millisecond
	for range n {
		d *= 2
		if d >= limit {
			return limit
		}
	}
	return min(d, limit)
}

// sleep waits d or until ctx ends; it reports whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func errCode(err error) (esdb.ErrorCode, bool) {
	var e *esdb.Error
	if errors.As(err, &e) {
		return e.Code(), true
	}
	return 0, false
}
