// Package jetstream implements eventstore.Store over NATS JetStream.
//
// All of whistle's event streams live in one JetStream stream (default
// WHISTLE_EVENTS). An event stream is one subject, <prefix>.<stream>, and each
// Append is one JetStream message (a commit) holding all its events, so a
// command is atomic and costs one fsync. A commit's global Position is its
// JetStream stream sequence; the versions of its events are counted per
// event stream (0, 1, 2...) and written in the message's headers and body.
//
// Concurrent Appends share fsyncs (group commit, see commit.go): what waits
// while earlier commits are in flight is written as one JetStream atomic
// batch, in which every message keeps its own expected sequence and ID.
//
// Optimistic concurrency uses JetStream's per-subject expected last sequence.
// The store keeps a bounded cache of each recently used stream's length and
// last sequence, so an append to a stream it has seen costs one round trip;
// a stale entry costs one re-read, never a wrong answer, because the server
// checks the sequence.
//
// The same code serves an embedded server and an external server or cluster
// (set Config.Replicas). On a cluster, ReadStream and ReadAll use direct gets,
// which any replica may answer: a read sees every append made through the same
// Store, but may miss for a few milliseconds an append acknowledged to another
// process. Appends and their conflict decisions always go to the stream
// leader.
package jetstream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/whistle-gov/whistle/adapters/eventstore"
)

// Defaults of Config.
const (
	DefaultStreamName      = "WHISTLE_EVENTS"
	DefaultSubjectPrefix   = "whistle.events"
	DefaultDuplicateWindow = 2 * time.Minute
	DefaultCacheSize       = 100_000
	DefaultRequestTimeout  = 5 * time.Second
	DefaultPublishRetries  = 3
	DefaultSubscribeBuffer = 512
	DefaultMaxBatch        = 256
	DefaultMinBatch        = 16
	DefaultMaxInflight     = 2
)

// MaxStreamNameLen is the longest event stream name accepted, in bytes.
const MaxStreamNameLen = eventstore.MaxStreamNameLen

// maxConflictRetries bounds how often Append re-publishes after finding that
// only its cached sequence was stale, in case the stream keeps moving.
const maxConflictRetries = 5

// Config configures a Store. The zero value of every field means its
// default.
type Config struct {
	// StreamName is the JetStream stream holding every event stream.
	// Default DefaultStreamName.
	StreamName string
	// SubjectPrefix is the subject prefix of event streams: stream s is
	// stored on <SubjectPrefix>.<s>. The JetStream stream captures
	// <SubjectPrefix>.>. Default DefaultSubjectPrefix.
	SubjectPrefix string
	// Replicas is the JetStream stream's replica count: 1 on a single
	// server, 3 (or 5) on a cluster. Default 1.
	Replicas int
	// DuplicateWindow is how long the server remembers message IDs (the
	// first event ID of each commit) to drop a re-sent commit. Default
	// DefaultDuplicateWindow.
	DuplicateWindow time.Duration
	// CacheSize bounds the streams whose length and last sequence the store
	// remembers. Default DefaultCacheSize; negative disables the cache (every
	// append then reads the stream's last commit first).
	CacheSize int
	// RequestTimeout bounds each request to the server (a publish attempt,
	// a read), on top of the caller's context. Default DefaultRequestTimeout.
	RequestTimeout time.Duration
	// PublishRetries is how many times Append re-sends a commit whose
	// acknowledgement did not come (a timeout, a lost connection), with the
	// same message ID, before giving up. Default DefaultPublishRetries;
	// negative: none.
	PublishRetries int
	// SubscribeBuffer is how many messages a subscription fetches ahead of
	// its handler. Default DefaultSubscribeBuffer.
	SubscribeBuffer int

	// MaxBatch is the most commits written as one atomic batch (group
	// commit). Default DefaultMaxBatch; 1 turns group commit off, so that
	// each Append publishes its commit alone. At most 1000, the server's
	// limit. Group commit is off as well when the server does not keep the
	// stream's AllowAtomicPublish (a server before 2.12).
	MaxBatch int
	// MinBatch is the fewest waiting commits written as a batch; fewer are
	// published one by one, because a batch costs the server a fixed few
	// syncs of its own. Default DefaultMinBatch; at least 2.
	MinBatch int
	// MaxInflight bounds the units the committer has in flight at once (a
	// batch, or a set of commits published one by one); commits that arrive
	// meanwhile wait and form the next unit. Default DefaultMaxInflight.
	MaxInflight int
	// Packed writes the log packed (DESIGN.md §11): every commit waiting
	// when a batch is cut goes into one message of the stream
	// LogStreamName, written by one Store at a time (the owner, by a lease
	// in LeaseBucket, fenced by the server), to which the others forward
	// their appends; each commit is copied to IndexStreamName for
	// ReadStream. The group commit fields above do not apply.
	Packed bool
	// LogStreamName, LogSubject, IndexStreamName, IndexPrefix and
	// LeaseBucket name the packed log's stream (subject <LogSubject>.p0;
	// forwarded appends go to <LogSubject>.rpc.<store id>), its index
	// (subjects <IndexPrefix>.<stream>) and the owner's lease. Defaults
	// DefaultLogStreamName and the others.
	LogStreamName   string
	LogSubject      string
	IndexStreamName string
	IndexPrefix     string
	LeaseBucket     string
	// LeaseTTL is how long the owner's lease outlives its last renewal
	// (renewed every third of it): how long appends wait when an owner dies
	// without closing. Default DefaultLeaseTTL.
	LeaseTTL time.Duration
	// MaxPacked bounds the commits of one batch. Default DefaultMaxPacked.
	MaxPacked int
	// IndexAsync stores the index with PersistMode async (no fsync per
	// copy; a single server only). Set it only for a server that runs in
	// this process, whose crash is this Store's: IndexDurableAfter then
	// says how long after its acknowledgement a copy is taken as synced
	// (a few of the server's sync intervals), and the next owner
	// re-publishes what came after.
	IndexAsync        bool
	IndexDurableAfter time.Duration
	// Logger receives the packed log's ownership changes. Default: none.
	Logger *zap.Logger

	// Linger, when positive, is how long the committer waits for MinBatch
	// commits to gather before it sends fewer. Default 0: it never waits
	// for a timer, batches form from what arrives while units are in
	// flight.
	Linger time.Duration
	// BatchObserver, when set, is told the size of each unit this store
	// sends (an atomic batch, or 1 for a commit published alone), for a
	// batch-size histogram.
	BatchObserver BatchObserver
}

func (c *Config) setDefaults() {
	if c.StreamName == "" {
		c.StreamName = DefaultStreamName
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = DefaultSubjectPrefix
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = DefaultDuplicateWindow
	}
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.PublishRetries == 0 {
		c.PublishRetries = DefaultPublishRetries
	} else if c.PublishRetries < 0 {
		c.PublishRetries = 0
	}
	if c.SubscribeBuffer == 0 {
		c.SubscribeBuffer = DefaultSubscribeBuffer
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.MinBatch == 0 {
		c.MinBatch = DefaultMinBatch
	}
	if c.MaxInflight == 0 {
		c.MaxInflight = DefaultMaxInflight
	}
	if c.LogStreamName == "" {
		c.LogStreamName = DefaultLogStreamName
	}
	if c.LogSubject == "" {
		c.LogSubject = DefaultLogSubject
	}
	if c.IndexStreamName == "" {
		c.IndexStreamName = DefaultIndexStreamName
	}
	if c.IndexPrefix == "" {
		c.IndexPrefix = DefaultIndexPrefix
	}
	if c.LeaseBucket == "" {
		c.LeaseBucket = DefaultLeaseBucket
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.MaxPacked == 0 {
		c.MaxPacked = DefaultMaxPacked
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
}

func (c *Config) validate() error {
	if strings.ContainsAny(c.StreamName, ".*>/\\") || strings.IndexFunc(c.StreamName, unicode.IsSpace) >= 0 {
		return fmt.Errorf("jetstream: stream name %q: must not contain '.', '*', '>', '/', '\\' or whitespace", c.StreamName)
	}
	for _, tok := range strings.Split(c.SubjectPrefix, ".") {
		if tok == "" || strings.ContainsAny(tok, "*>") || strings.IndexFunc(tok, unicode.IsSpace) >= 0 {
			return fmt.Errorf("jetstream: subject prefix %q: want dot-separated tokens without '*', '>' or whitespace", c.SubjectPrefix)
		}
	}
	switch {
	case c.Replicas < 1 || c.Replicas > 5:
		return fmt.Errorf("jetstream: replicas %d: want 1 to 5", c.Replicas)
	case c.DuplicateWindow < 0:
		return fmt.Errorf("jetstream: duplicate window %s: must not be negative", c.DuplicateWindow)
	case c.RequestTimeout < 0:
		return fmt.Errorf("jetstream: request timeout %s: must not be negative", c.RequestTimeout)
	case c.SubscribeBuffer < 0:
		return fmt.Errorf("jetstream: subscribe buffer %d: must not be negative", c.SubscribeBuffer)
	case c.MaxBatch < 1 || c.MaxBatch > maxServerBatch:
		return fmt.Errorf("jetstream: max batch %d: want 1 to %d", c.MaxBatch, maxServerBatch)
	case c.MinBatch < 2:
		return fmt.Errorf("jetstream: min batch %d: want at least 2", c.MinBatch)
	case c.MaxInflight < 1:
		return fmt.Errorf("jetstream: max inflight %d: want at least 1", c.MaxInflight)
	case c.Linger < 0 || c.Linger > time.Second:
		return fmt.Errorf("jetstream: linger %s: want 0 to 1s", c.Linger)
	case c.LeaseTTL < 100*time.Millisecond:
		return fmt.Errorf("jetstream: lease TTL %s: want at least 100ms", c.LeaseTTL)
	case c.MaxPacked < 1:
		return fmt.Errorf("jetstream: max packed %d: want at least 1", c.MaxPacked)
	case c.IndexAsync && c.Replicas > 1:
		return fmt.Errorf("jetstream: an async index needs replicas 1, not %d", c.Replicas)
	case c.IndexDurableAfter < 0:
		return fmt.Errorf("jetstream: index durable after %s: must not be negative", c.IndexDurableAfter)
	}
	for _, name := range []string{c.LogStreamName, c.IndexStreamName, c.LeaseBucket} {
		if strings.ContainsAny(name, ".*>/\\") || strings.IndexFunc(name, unicode.IsSpace) >= 0 {
			return fmt.Errorf("jetstream: stream name %q: must not contain '.', '*', '>', '/', '\\' or whitespace", name)
		}
	}
	return nil
}

// Store is an eventstore.Store over one JetStream stream. It is safe for
// concurrent use. It does not own the *nats.Conn it was opened with: Close
// releases the store only, and the caller closes the connection afterwards.
type Store struct {
	cfg       Config
	nc        *nats.Conn
	js        natsjs.JetStream
	stream    natsjs.Stream
	apiPrefix string
	cache     *tipCache
	replies   *replyMux
	locks     *streamLocks
	gc        *committer // nil: group commit off
	packed    *packedLog // nil: a message per commit

	// life is cancelled by Close, which ends every call in flight.
	life   context.Context
	kill   context.CancelFunc
	closed atomic.Bool

	// publish sends a commit alone, publishBatch several as one atomic
	// batch; tests replace them to lose acknowledgements or fail batches.
	publish      func(ctx context.Context, m *nats.Msg, opts ...natsjs.PublishOpt) (*natsjs.PubAck, error)
	publishBatch func(ctx context.Context, id string, msgs []*nats.Msg) (first uint64, err error)
	// request forwards an append to the packed log's owner.
	request func(ctx context.Context, m *nats.Msg) (*nats.Msg, error)
}

var _ eventstore.Store = (*Store)(nil)

// Open creates the JetStream stream if it does not exist, or updates its
// configuration if it does, and returns a Store over it. The stream uses
// file storage, captures <SubjectPrefix>.>, keeps every message (limits
// retention without limits; if an operator adds a limit, new appends are
// refused rather than old events dropped), refuses deleting and purging
// messages (the log is evidence), allows direct gets and atomic batch
// publish, and de-duplicates message IDs within DuplicateWindow.
//
// Open fails if nc is closed, JetStream is unavailable, or the existing
// stream cannot take this configuration (for example another storage type).
func Open(ctx context.Context, nc *nats.Conn, cfg Config) (*Store, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if nc == nil || nc.IsClosed() {
		return nil, fmt.Errorf("jetstream: open stream %s: connection is nil or closed", cfg.StreamName)
	}
	js, err := natsjs.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: open stream %s: %w", cfg.StreamName, err)
	}
	if cfg.Packed {
		return openPackedStore(ctx, nc, js, cfg)
	}
	sc := natsjs.StreamConfig{
		Name:        cfg.StreamName,
		Description: "whistle event log: one message per commit, subject per event stream",
		Subjects:    []string{cfg.SubjectPrefix + ".>"},
		Retention:   natsjs.LimitsPolicy,
		MaxMsgs:     -1,
		MaxBytes:    -1,
		MaxAge:      0,
		Discard:     natsjs.DiscardNew,
		Storage:     natsjs.FileStorage,
		Replicas:    cfg.Replicas,
		Duplicates:  cfg.DuplicateWindow,
		AllowDirect: true,
		DenyDelete:  true,
		DenyPurge:   true,
		// Group commit writes atomic batches. Enabled whatever MaxBatch
		// says, so that one process with group commit off does not turn it
		// off for the others sharing the stream.
		AllowAtomicPublish: true,
	}
	rctx, cancel := context.WithTimeout(ctx, max(cfg.RequestTimeout, 10*time.Second))
	defer cancel()
	stream, err := js.CreateOrUpdateStream(rctx, sc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: create or update stream %s (subjects %s.>, replicas %d): %w", cfg.StreamName, cfg.SubjectPrefix, cfg.Replicas, err)
	}
	replies, err := newReplyMux(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: open stream %s: subscribe to replies: %w", cfg.StreamName, err)
	}
	life, kill := context.WithCancel(context.Background())
	s := &Store{
		cfg:       cfg,
		nc:        nc,
		js:        js,
		stream:    stream,
		apiPrefix: "$JS.API.",
		cache:     newTipCache(cfg.CacheSize),
		replies:   replies,
		locks:     newStreamLocks(),
		life:      life,
		kill:      kill,
	}
	s.publish = js.PublishMsg
	s.publishBatch = s.publishAtomic
	if info := stream.CachedInfo(); cfg.MaxBatch > 1 && info != nil && info.Config.AllowAtomicPublish {
		s.gc = newCommitter(s)
		go s.gc.run()
	}
	return s, nil
}

// openPackedStore opens the packed log (Config.Packed).
func openPackedStore(ctx context.Context, nc *nats.Conn, js natsjs.JetStream, cfg Config) (*Store, error) {
	sc := natsjs.StreamConfig{
		Name:        cfg.LogStreamName,
		Description: "whistle event log, packed: one message per batch of commits, one writer at a time",
		Subjects:    []string{cfg.LogSubject + ".p0"},
		Retention:   natsjs.LimitsPolicy,
		MaxMsgs:     -1,
		MaxBytes:    -1,
		Discard:     natsjs.DiscardNew,
		Storage:     natsjs.FileStorage,
		Replicas:    cfg.Replicas,
		Duplicates:  cfg.DuplicateWindow,
		AllowDirect: true,
		DenyDelete:  true,
		DenyPurge:   true,
	}
	rctx, cancel := context.WithTimeout(ctx, max(cfg.RequestTimeout, 10*time.Second))
	defer cancel()
	stream, err := js.CreateOrUpdateStream(rctx, sc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: create or update stream %s (subject %s.p0, replicas %d): %w", cfg.LogStreamName, cfg.LogSubject, cfg.Replicas, err)
	}
	replies, err := newReplyMux(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: open stream %s: subscribe to replies: %w", cfg.LogStreamName, err)
	}
	life, kill := context.WithCancel(context.Background())
	s := &Store{
		cfg:       cfg,
		nc:        nc,
		js:        js,
		stream:    stream,
		apiPrefix: "$JS.API.",
		cache:     newTipCache(cfg.CacheSize),
		replies:   replies,
		locks:     newStreamLocks(),
		life:      life,
		kill:      kill,
	}
	s.publish = js.PublishMsg
	s.publishBatch = s.publishAtomic
	s.request = nc.RequestMsgWithContext
	if s.packed, err = openPacked(rctx, s); err != nil {
		kill()
		replies.close()
		return nil, err
	}
	return s, nil
}

// Packed reports whether the Store writes the packed log (Config.Packed).
func (s *Store) Packed() bool { return s.packed != nil }

// Owner reports whether this Store owns the packed log now (it writes
// batches; the others forward to it).
func (s *Store) Owner() bool { return s.packed != nil && s.packed.writer() != nil }

// GroupCommit reports whether concurrent Appends are gathered into atomic
// batches: Config.MaxBatch above 1 and a server that supports them.
func (s *Store) GroupCommit() bool { return s.gc != nil }

func (s *Store) observe(commits int) {
	if s.cfg.BatchObserver != nil {
		s.cfg.BatchObserver(commits)
	}
}

// Close stops the store: calls in flight end with an error matching
// eventstore.ErrClosed (an Append cut short may or may not have happened),
// and later calls return eventstore.ErrClosed at once. Appends acknowledged
// before are kept by the server. Close does not close the NATS connection.
// It is idempotent and always returns nil.
func (s *Store) Close() error {
	if s.closed.CompareAndSwap(false, true) {
		if s.packed != nil {
			s.packed.close()
		}
		s.kill()
		s.replies.close()
	}
	return nil
}

// begin starts a call (see eventstore.BeginCall).
func (s *Store) begin(ctx context.Context, op string) (context.Context, context.CancelFunc, error) {
	return eventstore.BeginCall(ctx, s.life, s.closed.Load(), "jetstream", op)
}

// fail wraps err from operation op (see eventstore.CallError).
func fail(ctx context.Context, op string, err error) error {
	return eventstore.CallError(ctx, "jetstream", op, err)
}

// subject returns the subject of stream, or an error wrapping
// eventstore.ErrInvalidStream when the name cannot be one subject token.
func (s *Store) subject(stream string) (string, error) {
	if err := checkStreamName(stream); err != nil {
		return "", err
	}
	return s.cfg.SubjectPrefix + "." + stream, nil
}

func checkStreamName(stream string) error {
	if why := eventstore.PortableStreamName(stream); why != "" {
		return fmt.Errorf("jetstream: stream %q: %s: %w", stream, why, eventstore.ErrInvalidStream)
	}
	return nil
}

// streamOf returns the event stream of a subject of this store.
func (s *Store) streamOf(subject string) (string, bool) {
	rest, ok := strings.CutPrefix(subject, s.cfg.SubjectPrefix+".")
	return rest, ok && rest != ""
}

// Append implements eventstore.Store.
//
// Beyond the port's contract: events must be non-empty and each ID must be a
// UUID; a commit larger than the server's max payload (1 MiB by default) is
// refused. A retried append is recognised as done when the stream's last
// commit starts at expectedVersion and holds the same event IDs.
func (s *Store) Append(ctx context.Context, stream string, expectedVersion uint64, events []eventstore.EventData) (eventstore.AppendResult, error) {
	op := "append to " + strconv.Quote(stream)
	subj, err := s.subject(stream)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	if len(events) == 0 {
		return eventstore.AppendResult{}, fmt.Errorf("jetstream: %s: no events", op)
	}
	for i, e := range events {
		if _, err := uuid.Parse(e.ID); err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("jetstream: %s: event %d id %q is not a UUID: %v", op, i, e.ID, err)
		}
	}
	ctx, done, err := s.begin(ctx, op)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	defer done()
	if s.packed != nil {
		res, err := s.packed.append(ctx, stream, expectedVersion, events)
		var ce *eventstore.ConflictError
		if err != nil && !errors.As(err, &ce) {
			return eventstore.AppendResult{}, fail(ctx, op, err)
		}
		return res, err
	}
	// One append per stream at a time from this Store: the next one reads
	// the tip this one leaves, and a batch never holds two of a stream.
	unlock, err := s.locks.lock(ctx, stream)
	if err != nil {
		return eventstore.AppendResult{}, fail(ctx, op, err)
	}
	a := &appendOp{s: s, stream: stream, subject: subj, expected: expectedVersion, events: events, unlock: unlock}
	defer func() {
		if a.unlock != nil {
			a.unlock()
		}
	}()
	res, err := a.run(ctx)
	if err != nil {
		var ce *eventstore.ConflictError
		if errors.As(err, &ce) {
			return eventstore.AppendResult{}, err
		}
		return eventstore.AppendResult{}, fail(ctx, op, err)
	}
	return res, nil
}

// appendOp is one call of Append.
type appendOp struct {
	s        *Store
	stream   string
	subject  string
	expected uint64
	events   []eventstore.EventData
	body     []byte
	// unlock releases the stream's lock; nil once an abandoned request in
	// flight has taken it over.
	unlock func()
	// batchFailures counts the atomic batches this commit was in that the
	// server refused; after two it is published alone, so that a refusal
	// is its own.
	batchFailures int
}

func (a *appendOp) run(ctx context.Context) (eventstore.AppendResult, error) {
	s := a.s
	a.body = encodeCommit(a.expected, a.events)

	// The sequence the subject's last message must have for the stream to
	// be expectedVersion long.
	var seq uint64
	t, ok := s.cache.get(a.stream)
	if !ok || t.next != a.expected {
		last, found, err := s.directLast(ctx, a.subject)
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		t = tip{}
		if found {
			m, err := metaOf(last)
			if err != nil {
				return eventstore.AppendResult{}, err
			}
			t = tip{next: m.next(), seq: last.seq}
		}
		s.cache.put(a.stream, t)
		if t.next != a.expected {
			// A conflict, a retried append, or a replica behind: ask the
			// leader before deciding.
			res, seq2, retry, err := a.settle(ctx)
			if !retry {
				return res, err
			}
			t.seq = seq2
		}
	}
	seq = t.seq

	for attempt := 0; ; {
		ack, err := a.publish(ctx, seq)
		if err == nil && !ack.Duplicate {
			s.cache.put(a.stream, tip{next: a.expected + uint64(len(a.events)), seq: ack.Sequence})
			return eventstore.AppendResult{Position: eventstore.Position(ack.Sequence), NextVersion: a.expected + uint64(len(a.events))}, nil
		}
		batchFailed := errors.Is(err, errBatchFailed)
		if err != nil && !batchFailed && !isWrongLastSeq(err) {
			return eventstore.AppendResult{}, err
		}
		// The server refused the expected sequence, or already holds a
		// message with this commit's ID: either way the leader's last commit
		// decides.
		res, seq2, retry, err := a.settle(ctx)
		if !retry {
			return res, err
		}
		if ack != nil && ack.Duplicate {
			return eventstore.AppendResult{}, fmt.Errorf("event id %s was already stored at position %d, not as the last commit of %s", a.events[0].ID, ack.Sequence, a.stream)
		}
		seq = seq2
		if batchFailed {
			// Another member may have failed the batch: not this commit's
			// conflict. Bounded: after two it goes alone.
			a.batchFailures++
			continue
		}
		if attempt >= maxConflictRetries {
			return eventstore.AppendResult{}, &eventstore.ConflictError{Stream: a.stream, Expected: a.expected, Actual: a.expected}
		}
		attempt++
	}
}

// settle reads the stream's last commit from the leader after an
// expectation failed. It returns success if that commit is this very append
// (it landed and its acknowledgement was lost), retry with the right
// sequence if the stream does have expectedVersion events (only the cache
// was stale), or else a *ConflictError.
func (a *appendOp) settle(ctx context.Context) (res eventstore.AppendResult, seq uint64, retry bool, err error) {
	last, found, err := a.s.leaderGet(ctx, getRequest{LastFor: a.subject})
	if err != nil {
		return eventstore.AppendResult{}, 0, false, err
	}
	t := tip{}
	var m commitMeta
	if found {
		if m, err = metaOf(last); err != nil {
			return eventstore.AppendResult{}, 0, false, err
		}
		t = tip{next: m.next(), seq: last.seq}
	}
	a.s.cache.set(a.stream, t)
	if found && m.first == a.expected && m.id == a.events[0].ID {
		c, err := decodeCommit(a.stream, last)
		if err != nil {
			return eventstore.AppendResult{}, 0, false, err
		}
		if sameIDs(c, a.events) {
			return eventstore.AppendResult{Position: c.Position, NextVersion: m.next()}, 0, false, nil
		}
	}
	if t.next == a.expected {
		return eventstore.AppendResult{}, t.seq, true, nil
	}
	return eventstore.AppendResult{}, 0, false, &eventstore.ConflictError{Stream: a.stream, Expected: a.expected, Actual: t.next}
}

func sameIDs(c eventstore.Commit, events []eventstore.EventData) bool {
	if len(c.Events) != len(events) {
		return false
	}
	for i := range events {
		if c.Events[i].ID != events[i].ID {
			return false
		}
	}
	return true
}

// message is the commit's message, expecting the subject's last sequence to
// be seq.
func (a *appendOp) message(seq uint64) *nats.Msg {
	m := &nats.Msg{Subject: a.subject, Data: a.body, Header: nats.Header{}}
	m.Header.Set(HeaderVersion, strconv.FormatUint(a.expected, 10))
	m.Header.Set(HeaderCount, strconv.Itoa(len(a.events)))
	m.Header.Set(natsjs.MsgIDHeader, a.events[0].ID)
	m.Header.Set(natsjs.ExpectedLastSubjSeqHeader, strconv.FormatUint(seq, 10))
	return m
}

// publish sends the commit expecting the subject's last sequence to be seq,
// through the committer when group commit is on, re-sending it with the same
// message ID when the acknowledgement does not come.
func (a *appendOp) publish(ctx context.Context, seq uint64) (*natsjs.PubAck, error) {
	s := a.s
	for try := 0; ; try++ {
		var ack *natsjs.PubAck
		var err error
		if s.gc == nil {
			pctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
			ack, err = s.publish(pctx, a.message(seq))
			cancel()
			s.observe(1)
			err = s.timeout(ctx, err)
		} else {
			m := a.message(seq)
			r := &pubReq{msg: m, size: len(m.Data), solo: a.batchFailures >= 2, doneC: make(chan pubResult, 1)}
			res, abandoned, serr := s.gc.submit(ctx, r, a.unlock)
			if abandoned {
				a.unlock = nil
			}
			if serr != nil {
				return nil, serr
			}
			ack, err = res.ack, res.err
		}
		if err == nil || ctx.Err() != nil || !transient(err) || try >= s.cfg.PublishRetries {
			return ack, err
		}
		// The commit may have landed; re-sending it is safe because the
		// expected sequence (or the message ID) stops a second copy.
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(try+1) * 100 * time.Millisecond):
		}
	}
}

// isWrongLastSeq reports the server's refusal of an expected sequence; a
// replicated stream reports it with another code.
func isWrongLastSeq(err error) bool {
	var apiErr *natsjs.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == natsjs.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == natsjs.JSErrCodeStreamWrongLastSequenceConstant)
}

// transient reports a publish whose outcome is unknown and worth re-sending:
// no acknowledgement in time, no stream reachable for a moment (a leader
// election), or the connection lost and being re-established.
func transient(err error) bool {
	var apiErr *natsjs.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code == 503
	}
	return errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, natsjs.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, nats.ErrConnectionReconnecting)
}

// ReadStream implements eventstore.Store. It reads the stream with batched
// direct gets, typically one round trip. It returns every append made
// through this Store even when a lagging replica answers, and reports an
// error rather than a gap if the stored versions are not contiguous.
func (s *Store) ReadStream(ctx context.Context, stream string) ([]eventstore.RecordedEvent, error) {
	op := "read stream " + strconv.Quote(stream)
	subj, err := s.subject(stream)
	if err != nil {
		return nil, err
	}
	ctx, done, err := s.begin(ctx, op)
	if err != nil {
		return nil, err
	}
	defer done()
	if s.packed != nil {
		events, err := s.packed.readStream(ctx, stream)
		if err != nil {
			return nil, fail(ctx, op, err)
		}
		return events, nil
	}

	var events []eventstore.RecordedEvent
	var lastSeq uint64
	add := func(r rawMsg) error {
		c, err := decodeCommit(stream, r)
		if err != nil {
			return err
		}
		if first := c.Events[0].Version; first != uint64(len(events)) {
			return fmt.Errorf("commit at position %d starts at version %d, want %d: the stream is not whole", r.seq, first, len(events))
		}
		events = append(events, c.Events...)
		lastSeq = r.seq
		return nil
	}
	if err := s.directRange(ctx, subj, 0, int(^uint(0)>>1), add); err != nil {
		return nil, fail(ctx, op, err)
	}
	if t, ok := s.cache.get(stream); ok && t.seq > lastSeq {
		// A replica behind this store's own appends answered: fetch the
		// rest from the leader, commit by commit (it is only the lag).
		for {
			r, found, err := s.leaderGet(ctx, getRequest{Seq: lastSeq + 1, NextFor: subj})
			if err != nil {
				return nil, fail(ctx, op, err)
			}
			if !found {
				break
			}
			if err := add(r); err != nil {
				return nil, fail(ctx, op, err)
			}
		}
	}
	if len(events) > 0 {
		s.cache.put(stream, tip{next: uint64(len(events)), seq: lastSeq})
	}
	return events, nil
}

// ReadAll implements eventstore.Store. A page is one batched direct get per
// 4 MiB of commits, so replaying the log costs a round trip per page, not per
// commit. limit must be positive.
func (s *Store) ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.Commit, error) {
	op := fmt.Sprintf("read all after %d", after)
	if limit <= 0 {
		return nil, fmt.Errorf("jetstream: %s: limit %d must be positive", op, limit)
	}
	ctx, done, err := s.begin(ctx, op)
	if err != nil {
		return nil, err
	}
	defer done()
	if s.packed != nil {
		commits, err := s.packed.readAll(ctx, uint64(after), limit)
		if err != nil {
			return nil, fail(ctx, op, err)
		}
		return commits, nil
	}

	var commits []eventstore.Commit
	err = s.directRange(ctx, "", uint64(after)+1, limit, func(r rawMsg) error {
		c, err := s.commitOf(r)
		if err != nil {
			return err
		}
		commits = append(commits, c)
		return nil
	})
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	return commits, nil
}

// commitOf decodes a message of the global log.
func (s *Store) commitOf(r rawMsg) (eventstore.Commit, error) {
	stream, ok := s.streamOf(r.subject)
	if !ok {
		return eventstore.Commit{}, fmt.Errorf("message %d on %s: outside %s.>: %w", r.seq, r.subject, s.cfg.SubjectPrefix, errNotCommit)
	}
	return decodeCommit(stream, r)
}

// Subscribe implements eventstore.Store with an ordered consumer (ephemeral,
// in memory, recreated by the client after a reconnect from where it
// stopped), so delivery is in log order with no gaps or repeats. Besides
// ctx and handle errors, it returns an error wrapping eventstore.ErrClosed when
// the store is closed, and any error decoding a commit.
func (s *Store) Subscribe(ctx context.Context, after eventstore.Position, handle func(eventstore.Commit) error) error {
	op := fmt.Sprintf("subscribe after %d", after)
	ctx, done, err := s.begin(ctx, op)
	if err != nil {
		return err
	}
	defer done()
	if s.packed != nil {
		return s.packed.subscribe(ctx, uint64(after), handle, op)
	}

	cons, err := s.js.OrderedConsumer(ctx, s.cfg.StreamName, natsjs.OrderedConsumerConfig{
		DeliverPolicy: natsjs.DeliverByStartSequencePolicy,
		OptStartSeq:   uint64(after) + 1,
		// If this process dies, the server drops the consumer soon after.
		InactiveThreshold: 30 * time.Second,
	})
	if err != nil {
		return fail(ctx, op, err)
	}
	defer func() {
		// Best effort: free the server's consumer now rather than after
		// InactiveThreshold.
		if info := cons.CachedInfo(); info != nil {
			dctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = s.js.DeleteConsumer(dctx, s.cfg.StreamName, info.Name)
			cancel()
		}
	}()
	it, err := cons.Messages(natsjs.PullMaxMessages(s.cfg.SubscribeBuffer))
	if err != nil {
		return fail(ctx, op, err)
	}
	defer it.Stop()
	for {
		msg, err := it.Next(natsjs.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				if cause := context.Cause(ctx); errors.Is(cause, eventstore.ErrClosed) {
					return fmt.Errorf("jetstream: %s: %w", op, cause)
				}
				return ctx.Err()
			}
			return fail(ctx, op, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fail(ctx, op, err)
		}
		c, err := s.commitOf(rawMsg{subject: msg.Subject(), seq: meta.Sequence.Stream, header: msg.Headers(), data: msg.Data()})
		if err != nil {
			return fail(ctx, op, err)
		}
		if err := handle(c); err != nil {
			return err
		}
	}
}

// Head implements eventstore.Store; it asks the stream leader.
func (s *Store) Head(ctx context.Context) (eventstore.Position, error) {
	op := "head"
	ctx, done, err := s.begin(ctx, op)
	if err != nil {
		return 0, err
	}
	defer done()
	if s.packed != nil {
		head, _, err := s.packed.head(ctx)
		if err != nil {
			return 0, fail(ctx, op, s.timeout(ctx, err))
		}
		return eventstore.Position(head), nil
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	info, err := s.stream.Info(rctx)
	if err != nil {
		return 0, fail(ctx, op, s.timeout(ctx, err))
	}
	return eventstore.Position(info.State.LastSeq), nil
}
