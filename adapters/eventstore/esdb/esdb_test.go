package esdb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/adapters/eventstore/esdb/esdbtest"
	"github.com/whistle-gov/whistle/adapters/eventstore/storetest"
)

// invalidNames are stream names the adapter refuses besides the empty one.
var invalidNames = []string{
	"other-0190c1f4", // outside the prefix: not in the global log
	"case-",          // the prefix alone
	"$case-1",        // a system stream
	"$$case-1",       // a metadata stream
	"case-1 2",       // whitespace
	"case-1\n2",      // a control character
	"case-\xff\xfe",  // not UTF-8
	"case-1.2",       // not one JetStream subject token
	"case-" + strings.Repeat("x", MaxStreamNameLen),
}

func features(reopen func(t *testing.T) (eventstore.Store, func() eventstore.Store)) storetest.Features {
	return storetest.Features{Reopen: reopen, InvalidStreamNames: invalidNames}
}

func testLogger(t testing.TB) *zap.Logger {
	if testing.Verbose() {
		return zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	}
	return zap.NewNop()
}

func open(t testing.TB, cfg Config) *Store {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// reopener gives a store of its own; reopening closes it and opens a new
// store on the same server, which keeps running (the double is in memory,
// so this proves the adapter keeps nothing of its own that reads need, not
// that the server is durable).
func reopener(url string) func(t *testing.T) (eventstore.Store, func() eventstore.Store) {
	return func(t *testing.T) (eventstore.Store, func() eventstore.Store) {
		s := open(t, Config{URL: url})
		return s, func() eventstore.Store {
			s.Close()
			return open(t, Config{URL: url})
		}
	}
}

// ---- a live EventStoreDB ----

func TestConformanceLive(t *testing.T) {
	url := os.Getenv("WHISTLE_ESDB_URL")
	if url == "" {
		t.Skip("set WHISTLE_ESDB_URL to run the conformance suite against a live EventStoreDB, e.g.\n" +
			"\tdocker compose up -d eventstore\n" +
			"\tWHISTLE_ESDB_URL='esdb://127.0.0.1:2113?tls=false' go test -race -count=1 ./adapters/eventstore/esdb/")
	}
	storetest.Run(t, features(reopener(url)), func(t *testing.T) eventstore.Store {
		return open(t, Config{URL: url})
	})
}

// ---- the wire-level double ----

func startDouble(t testing.TB, opts esdbtest.Options) *esdbtest.Server {
	t.Helper()
	d, err := esdbtest.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	return d
}

// TestConformanceDouble runs the suite through the real client against the
// double: once as EventStoreDB answers a re-sent append (done, without a
// position), once with the double refusing it as a wrong expected version,
// so that the adapter's own recognition of a lost acknowledgement runs.
func TestConformanceDouble(t *testing.T) {
	for _, mode := range []struct {
		name string
		opts esdbtest.Options
	}{
		{"server-idempotency", esdbtest.Options{}},
		{"client-recognition", esdbtest.Options{NoIdempotency: true}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			d := startDouble(t, mode.opts)
			// The reopen test reads the global log expecting only its own
			// commits, so it gets a double of its own.
			private := func(t *testing.T) (eventstore.Store, func() eventstore.Store) {
				return reopener(startDouble(t, mode.opts).URL())(t)
			}
			storetest.Run(t, features(private), func(t *testing.T) eventstore.Store {
				return open(t, Config{URL: d.URL()})
			})
		})
	}
}

// ---- adapter-specific behaviour ----

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newEvents(n int) []eventstore.EventData {
	evs := make([]eventstore.EventData, n)
	for i := range evs {
		evs[i] = eventstore.EventData{ID: uuid.Must(uuid.NewV7()).String(), Type: "ProgressNoted", Data: fmt.Appendf(nil, `{"n":%d}`, i)}
	}
	return evs
}

func newStream() string { return "case-" + uuid.NewString() }

func mustAppend(t *testing.T, ctx context.Context, s *Store, stream string, expected uint64, evs []eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(ctx, stream, expected, evs)
	if err != nil {
		t.Fatalf("Append(%s, %d): %v", stream, expected, err)
	}
	return res
}

func TestLostAckRecognised(t *testing.T) {
	for _, noIdem := range []bool{false, true} {
		t.Run(fmt.Sprintf("server-idempotency=%v", !noIdem), func(t *testing.T) {
			ctx := testCtx(t)
			d := startDouble(t, esdbtest.Options{NoIdempotency: noIdem})
			s := open(t, Config{URL: d.URL()})
			stream := newStream()
			mustAppend(t, ctx, s, stream, 0, newEvents(1))
			before := d.Appends()
			d.LoseAcks(1)
			evs := newEvents(2)
			res, err := s.Append(ctx, stream, 1, evs)
			if err != nil {
				t.Fatalf("Append after a lost acknowledgement: %v; want success", err)
			}
			if n := d.Appends() - before; n != 1 {
				t.Fatalf("the double wrote %d commits, want 1", n)
			}
			got, err := s.ReadStream(ctx, stream)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 3 || got[1].ID != evs[0].ID || got[2].ID != evs[1].ID || got[1].Position != res.Position || res.NextVersion != 3 {
				t.Fatalf("stream %v, result %+v; want the commit once, at the position returned", got, res)
			}
		})
	}
}

func TestLostAckWithoutRetriesThenCallerRetries(t *testing.T) {
	ctx := testCtx(t)
	d := startDouble(t, esdbtest.Options{NoIdempotency: true})
	s := open(t, Config{URL: d.URL(), Retries: -1})
	stream := newStream()
	d.LoseAcks(1)
	evs := newEvents(2)
	if _, err := s.Append(ctx, stream, 0, evs); err == nil || errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("Append with its acknowledgement lost and no retries: %v; want an error that is not a conflict", err)
	}
	res, err := s.Append(ctx, stream, 0, evs)
	if err != nil || res.NextVersion != 2 {
		t.Fatalf("the caller's retry: %+v, %v; want success", res, err)
	}
	// A commit that is no longer the last is a conflict, even though the
	// server (with idempotency) would call it done.
	mustAppend(t, ctx, s, stream, 2, newEvents(1))
	_, err = s.Append(ctx, stream, 0, evs)
	var ce *eventstore.ConflictError
	if !errors.As(err, &ce) || ce.Actual != 3 {
		t.Fatalf("re-sending an older commit: %v; want a conflict saying the stream has 3 events", err)
	}
}

func TestIdempotentServerAnswerForOlderCommitIsConflict(t *testing.T) {
	ctx := testCtx(t)
	d := startDouble(t, esdbtest.Options{})
	s := open(t, Config{URL: d.URL()})
	stream := newStream()
	first := newEvents(2)
	mustAppend(t, ctx, s, stream, 0, first)
	mustAppend(t, ctx, s, stream, 2, newEvents(1))
	_, err := s.Append(ctx, stream, 0, first)
	var ce *eventstore.ConflictError
	if !errors.As(err, &ce) || ce.Expected != 0 || ce.Actual != 3 {
		t.Fatalf("re-sending the first commit after another: %v; want a conflict, stream at 3", err)
	}
}

// TestGlobalLogSkipsOtherStreams: system events and streams outside the
// prefix are in $all but not in the store's log, for ReadAll, Subscribe
// and Head.
func TestGlobalLogSkipsOtherStreams(t *testing.T) {
	ctx := testCtx(t)
	d := startDouble(t, esdbtest.Options{})
	s := open(t, Config{URL: d.URL(), ReadBatch: 3})
	stream := newStream()
	var want []eventstore.AppendResult
	var v uint64
	for i := range 4 {
		d.WriteRaw("$stats-127.0.0.1:2113", "$statsCollected", []byte(`{}`))
		d.WriteRaw("other-stream", "Other", []byte(`{}`))
		res := mustAppend(t, ctx, s, stream, v, newEvents(1+i%3))
		v = res.NextVersion
		want = append(want, res)
	}
	for range 40 {
		d.WriteRaw("$stats-127.0.0.1:2113", "$statsCollected", []byte(`{}`))
	}
	head, err := s.Head(ctx)
	if err != nil || head != want[3].Position {
		t.Fatalf("Head = %d, %v; want the last commit, %d, not a system event", head, err, want[3].Position)
	}
	// Again, from the cache, after more system events.
	d.WriteRaw("$stats-127.0.0.1:2113", "$statsCollected", []byte(`{}`))
	if head, err = s.Head(ctx); err != nil || head != want[3].Position {
		t.Fatalf("second Head = %d, %v; want %d", head, err, want[3].Position)
	}
	commits, err := s.ReadAll(ctx, 0, 100)
	if err != nil || len(commits) != 4 {
		t.Fatalf("ReadAll = %d commits, %v; want 4", len(commits), err)
	}
	for i, c := range commits {
		if c.Stream != stream || c.Position != want[i].Position || len(c.Events) != 1+i%3 {
			t.Fatalf("commit %d: %s@%d with %d events; want %s@%d with %d", i, c.Stream, c.Position, len(c.Events), stream, want[i].Position, 1+i%3)
		}
	}
	// From a position inside a record: the double refuses it as
	// EventStoreDB does, and the adapter finds its way.
	commits, err = s.ReadAll(ctx, want[1].Position+1, 100)
	if err != nil || len(commits) != 2 || commits[0].Position != want[2].Position {
		t.Fatalf("ReadAll(inside a record) = %v, %v; want the last 2 commits", commits, err)
	}
}

func TestForeignEventInOwnStreamReported(t *testing.T) {
	ctx := testCtx(t)
	d := startDouble(t, esdbtest.Options{})
	s := open(t, Config{URL: d.URL()})
	stream := newStream()
	mustAppend(t, ctx, s, stream, 0, newEvents(1))
	d.WriteRaw(stream, "Foreign", []byte(`{}`))
	if _, err := s.ReadAll(ctx, 0, 10); !errors.Is(err, errNotCommit) {
		t.Fatalf("ReadAll over an event without commit metadata: %v; want an error naming it", err)
	}
	err := s.Subscribe(ctx, 0, func(eventstore.Commit) error { return nil })
	if !errors.Is(err, errNotCommit) {
		t.Fatalf("Subscribe over an event without commit metadata: %v; want an error naming it", err)
	}
}

// collector subscribes in the background and gathers the commits of one
// stream.
type collector struct {
	mu      sync.Mutex
	commits []eventstore.Commit
	done    chan error
}

func subscribe(t *testing.T, ctx context.Context, s *Store, after eventstore.Position, stream string) *collector {
	c := &collector{done: make(chan error, 1)}
	go func() {
		var last eventstore.Position
		c.done <- s.Subscribe(ctx, after, func(cm eventstore.Commit) error {
			if cm.Position <= last {
				return fmt.Errorf("position %d after %d", cm.Position, last)
			}
			last = cm.Position
			if cm.Stream == stream {
				c.mu.Lock()
				c.commits = append(c.commits, cm)
				c.mu.Unlock()
			}
			return nil
		})
	}()
	return c
}

func (c *collector) waitFor(t *testing.T, n int) []eventstore.Commit {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		got := append([]eventstore.Commit(nil), c.commits...)
		c.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case err := <-c.done:
			t.Fatalf("subscription ended with %d of %d commits: %v", len(got), n, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("fewer than %d commits after 30s", n)
	return nil
}

func checkCommits(t *testing.T, got []eventstore.Commit, want []eventstore.AppendResult) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d commits delivered, want %d", len(got), len(want))
	}
	var v uint64
	for i := range want {
		if got[i].Position != want[i].Position || got[i].Events[0].Version != v {
			t.Fatalf("commit %d at %d from version %d; want %d from %d", i, got[i].Position, got[i].Events[0].Version, want[i].Position, v)
		}
		v = want[i].NextVersion
	}
}

func TestSubscriptionResubscribesAfterDrop(t *testing.T) {
	ctx := testCtx(t)
	d := startDouble(t, esdbtest.Options{})
	s := open(t, Config{URL: d.URL()})
	stream := newStream()
	var want []eventstore.AppendResult
	var v uint64
	add := func() {
		res := mustAppend(t, ctx, s, stream, v, newEvents(2))
		v = res.NextVersion
		want = append(want, res)
	}
	add()
	c := subscribe(t, ctx, s, 0, stream)
	c.waitFor(t, 1)
	for range 3 {
		d.DropSubscriptions()
		add()
		c.waitFor(t, len(want))
	}
	checkCommits(t, c.waitFor(t, len(want)), want)
}

// TestServerRestart: the server is gone for longer than the client's
// discovery (10 attempts 100ms apart), so the client gives up for good; the
// store opens a new one, and both appends and the subscription go on.
func TestServerRestart(t *testing.T) {
	ctx := testCtx(t)
	d := startDouble(t, esdbtest.Options{})
	s := open(t, Config{URL: d.URL(), Retries: 10})
	stream := newStream()
	first := mustAppend(t, ctx, s, stream, 0, newEvents(1))
	c := subscribe(t, ctx, s, 0, stream)
	c.waitFor(t, 1)

	d.Stop()
	// A call while the server is away fails (after its retries) without
	// hanging past its context.
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, err := s.ReadStream(short, stream)
	cancel()
	if err == nil {
		t.Fatal("ReadStream with the server stopped succeeded")
	}
	time.Sleep(1500 * time.Millisecond)
	if err := d.Restart(); err != nil {
		t.Fatal(err)
	}
	second := mustAppend(t, ctx, s, stream, 1, newEvents(2))
	checkCommits(t, c.waitFor(t, 2), []eventstore.AppendResult{first, second})
}

func TestGossipSeeds(t *testing.T) {
	ctx := testCtx(t)
	d := startDouble(t, esdbtest.Options{})
	// Two seeds (the same node twice): the client reads gossip and picks
	// the leader.
	s := open(t, Config{URL: fmt.Sprintf("esdb://%s,%s?tls=false", d.Addr(), d.Addr())})
	stream := newStream()
	mustAppend(t, ctx, s, stream, 0, newEvents(1))
	if got, err := s.ReadStream(ctx, stream); err != nil || len(got) != 1 {
		t.Fatalf("ReadStream through gossip discovery = %d events, %v", len(got), err)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := testCtx(t)
	for _, url := range []string{"nats://127.0.0.1:4222", "esdb://admin:s3cret@host:notaport", "esdb://"} {
		_, err := Open(ctx, Config{URL: url})
		if err == nil {
			t.Fatalf("Open(%q) succeeded", url)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("Open error shows the password: %v", err)
		}
	}
	// No server: a bounded wait, then an error without the password.
	d := startDouble(t, esdbtest.Options{})
	addr := d.Addr()
	d.Stop()
	start := time.Now()
	_, err := Open(ctx, Config{URL: "esdb://admin:s3cret@" + addr + "?tls=false", ConnectTimeout: time.Second})
	if err == nil || strings.Contains(err.Error(), "s3cret") || time.Since(start) > 10*time.Second {
		t.Fatalf("Open without a server: %v after %s; want an error without the password, soon", err, time.Since(start))
	}
}

func TestAppendRefusesBadEvents(t *testing.T) {
	ctx := testCtx(t)
	d := startDouble(t, esdbtest.Options{})
	s := open(t, Config{URL: d.URL()})
	stream := newStream()
	for _, evs := range [][]eventstore.EventData{
		nil,
		{{ID: "not-a-uuid", Type: "X"}},
		{{ID: uuid.Nil.String(), Type: "X"}},
		{{ID: uuid.NewString(), Type: ""}},
	} {
		if _, err := s.Append(ctx, stream, 0, evs); err == nil {
			t.Fatalf("Append(%v) succeeded", evs)
		}
	}
	if _, err := s.ReadAll(ctx, 0, 0); err == nil {
		t.Fatal("ReadAll with limit 0 succeeded")
	}
	if d.Appends() != 0 {
		t.Fatalf("%d appends reached the server", d.Appends())
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"esdb://admin:changeit@localhost:2113?tls=false": "esdb://admin:xxxxx@localhost:2113?tls=false",
		"esdb://admin:changeit@n1:2113,n2:2113,n3:2113":  "esdb://admin:xxxxx@n1:2113,n2:2113,n3:2113",
		"esdb://127.0.0.1:2113?tls=false":                "esdb://127.0.0.1:2113?tls=false",
		"esdb+discover://admin:pw@cluster.dns:2113":      "esdb+discover://admin:xxxxx@cluster.dns:2113",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
