// Package storetest is the conformance suite of eventstore.Store. Each
// backend runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		srv := startServer(t) // shared by every test, stopped by t.Cleanup
//		storetest.Run(t, storetest.Features{Reopen: reopenable(t)}, func(t *testing.T) eventstore.Store {
//			s := openStore(t, srv)
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// Every test calls t.Parallel and works on its own streams, named like
// production ones ("case-" and a real UUID), so the tests run at once
// against one server and see each other's commits in the global log, as
// production does. A test that a backend cannot support skips with the
// reason; none passes without checking.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/whistle-gov/whistle/adapters/eventstore"
)

// Features states what a backend supports beyond what every backend must.
type Features struct {
	// Reopen, when set, returns a store over data of its own, and a function
	// that closes that store (and whatever holds its data, such as a server
	// or a process) and returns a new store over the same data. The reopen
	// test checks that acknowledged appends survive. Nil: that test skips.
	// Reopen registers its own cleanup with t.Cleanup.
	Reopen func(t *testing.T) (first eventstore.Store, reopen func() eventstore.Store)
	// Crash, when set, returns two stores over one log of their own, each
	// as if in a process of its own, and crash, which kills the first
	// abruptly while appends are in flight (in the middle of a batch, for
	// a store that batches): no Close, its connection cut. The survivor
	// must take over, and every append answered before must be in the
	// log. Nil: that test skips. Crash registers its own cleanup.
	Crash func(t *testing.T) (victim, survivor eventstore.Store, crash func())
	// LoseAck, when set, makes the next append through s land but lose its
	// acknowledgement on the way back (to the store, which may re-send, or
	// to the caller, who retries). Nil: that test skips.
	LoseAck func(t *testing.T, s eventstore.Store)
	// InvalidStreamNames are stream names the backend refuses with
	// eventstore.ErrInvalidStream, besides the empty name, which every
	// backend refuses.
	InvalidStreamNames []string
}

// Timeout bounds each test, so that a store that hangs fails rather than
// stalling the run.
const Timeout = 60 * time.Second

// wait bounds the wait for one expected delivery or return.
const wait = 15 * time.Second

// Run runs the suite. open returns a ready store each time it is called; the
// stores it returns may share one server and must see each other's
// appends. open registers the store's cleanup with t.Cleanup; the suite may
// close a store itself first, so Close must be safe to call twice.
func Run(t *testing.T, features Features, open func(t *testing.T) eventstore.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, f Features, open func(t *testing.T) eventstore.Store)
	}{
		{"AppendToNewStream", testAppendToNewStream},
		{"ConflictRefusedNothingWritten", testConflict},
		{"ConcurrentAppendersOneWins", testConcurrentAppenders},
		{"ConcurrentAppendersTwoStores", testConcurrentTwoStores},
		{"OwnerKilledMidBatch", testCrash},
		{"LostAcknowledgement", testLostAck},
		{"ContiguousVersions", testContiguousVersions},
		{"RoundTripBytes", testRoundTrip},
		{"ReadMissingStream", testReadMissing},
		{"ReadAllPages", testReadAllPages},
		{"SubscribeExistingThenNew", testSubscribeExistingThenNew},
		{"SubscribeAfterPosition", testSubscribeAfter},
		{"SubscribeStopsOnCancel", testSubscribeStopsOnCancel},
		{"CancelledContext", testCancelled},
		{"RetriedAppendIsDone", testRetriedAppend},
		{"InvalidStreamName", testInvalidStreamName},
		{"Closed", testClosed},
		{"CloseAndReopen", testReopen},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, features, open)
		})
	}
}

// newStream names a fresh stream the way production does.
func newStream() string { return "case-" + uuid.NewString() }

// newEvents returns n events with fresh UUIDv7 IDs, as commands make them.
func newEvents(n int, typ string) []eventstore.EventData {
	evs := make([]eventstore.EventData, n)
	for i := range evs {
		evs[i] = eventstore.EventData{
			ID:   uuid.Must(uuid.NewV7()).String(),
			Type: typ,
			Data: fmt.Appendf(nil, `{"n":%d,"type":%q}`, i, typ),
		}
	}
	return evs
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), Timeout)
	t.Cleanup(cancel)
	return ctx
}

func mustAppend(t *testing.T, ctx context.Context, s eventstore.Store, stream string, expected uint64, evs []eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(ctx, stream, expected, evs)
	if err != nil {
		t.Fatalf("Append(%s, expected %d, %d events): %v", stream, expected, len(evs), err)
	}
	if want := expected + uint64(len(evs)); res.NextVersion != want {
		t.Fatalf("Append(%s, expected %d, %d events): NextVersion %d, want %d", stream, expected, len(evs), res.NextVersion, want)
	}
	if res.Position == 0 {
		t.Fatalf("Append(%s, expected %d): position 0, want > 0", stream, expected)
	}
	return res
}

func mustRead(t *testing.T, ctx context.Context, s eventstore.Store, stream string) []eventstore.RecordedEvent {
	t.Helper()
	evs, err := s.ReadStream(ctx, stream)
	if err != nil {
		t.Fatalf("ReadStream(%s): %v", stream, err)
	}
	return evs
}

// appended is what one successful Append wrote, to compare with reads.
type appended struct {
	res    eventstore.AppendResult
	events []eventstore.EventData
}

// checkStream compares a read stream with the appends that wrote it.
func checkStream(t *testing.T, stream string, got []eventstore.RecordedEvent, commits ...appended) {
	t.Helper()
	var want []eventstore.RecordedEvent
	for _, c := range commits {
		for _, e := range c.events {
			want = append(want, eventstore.RecordedEvent{
				Stream: stream, Version: uint64(len(want)), ID: e.ID, Type: e.Type, Data: e.Data, Position: c.res.Position,
			})
		}
	}
	if len(got) != len(want) {
		t.Fatalf("stream %s has %d events, want %d", stream, len(got), len(want))
	}
	for i := range want {
		if d := diffEvent(got[i], want[i]); d != "" {
			t.Fatalf("stream %s event %d: %s", stream, i, d)
		}
	}
}

func diffEvent(got, want eventstore.RecordedEvent) string {
	var d []string
	if got.Stream != want.Stream {
		d = append(d, fmt.Sprintf("stream %q, want %q", got.Stream, want.Stream))
	}
	if got.Version != want.Version {
		d = append(d, fmt.Sprintf("version %d, want %d", got.Version, want.Version))
	}
	if got.ID != want.ID {
		d = append(d, fmt.Sprintf("id %s, want %s", got.ID, want.ID))
	}
	if got.Type != want.Type {
		d = append(d, fmt.Sprintf("type %q, want %q", got.Type, want.Type))
	}
	if !bytes.Equal(got.Data, want.Data) {
		d = append(d, fmt.Sprintf("data %q, want %q", trunc(got.Data), trunc(want.Data)))
	}
	if got.Position != want.Position {
		d = append(d, fmt.Sprintf("position %d, want %d", got.Position, want.Position))
	}
	return strings.Join(d, "; ")
}

func trunc(b []byte) []byte {
	if len(b) > 64 {
		return append(b[:64:64], "..."...)
	}
	return b
}

// checkCommit compares a commit from ReadAll or Subscribe with an append.
func checkCommit(t *testing.T, stream string, got eventstore.Commit, want appended, firstVersion uint64) {
	t.Helper()
	if got.Stream != stream || got.Position != want.res.Position {
		t.Fatalf("commit %s@%d, want %s@%d", got.Stream, got.Position, stream, want.res.Position)
	}
	if len(got.Events) != len(want.events) {
		t.Fatalf("commit %s@%d has %d events, want %d", stream, got.Position, len(got.Events), len(want.events))
	}
	for i, e := range want.events {
		w := eventstore.RecordedEvent{Stream: stream, Version: firstVersion + uint64(i), ID: e.ID, Type: e.Type, Data: e.Data, Position: want.res.Position}
		if d := diffEvent(got.Events[i], w); d != "" {
			t.Fatalf("commit %s@%d event %d: %s", stream, got.Position, i, d)
		}
	}
}

// requireConflict checks that err is a conflict on stream at expected, and
// that what it says of the stream's length is true when it says it.
func requireConflict(t *testing.T, err error, stream string, expected, actual uint64) {
	t.Helper()
	if err == nil {
		t.Fatalf("append to %s expecting %d succeeded; want ErrConflict (stream has %d)", stream, expected, actual)
	}
	if !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("append to %s expecting %d: %v; want an error matching ErrConflict", stream, expected, err)
	}
	var ce *eventstore.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("append to %s expecting %d: %v (%T); want a *ConflictError", stream, expected, err, err)
	}
	if ce.Stream != stream || ce.Expected != expected {
		t.Fatalf("ConflictError{%s, expected %d}, want {%s, expected %d}", ce.Stream, ce.Expected, stream, expected)
	}
	if ce.Actual != actual && ce.Actual != ce.Expected {
		t.Fatalf("ConflictError.Actual = %d; the stream has %d (Actual may only be that, or Expected when unknown)", ce.Actual, actual)
	}
}

func testAppendToNewStream(t *testing.T, _ Features, open func(t *testing.T) eventstore.Store) {
	ctx := testContext(t)
	s := open(t)
	stream := newStream()
	evs := newEvents(3, "WhistleRaised")
	res := mustAppend(t, ctx, s, stream, 0, evs)
	if res.NextVersion != 3 {
		t.Fatalf("NextVersion %d, want 3", res.NextVersion)
	}
	checkStream(t, stream, mustRead(t, ctx, s, stream), appended{res, evs})
}

func testConflict(t *testing.T, _ Features, open func(t *testing.T) eventstore.Store) {
	ctx := testContext(t)
	s := open(t)
	stream := newStream()
	c1 := appended{events: newEvents(1, "WhistleRaised")}
	c1.res = mustAppend(t, ctx, s, stream, 0, c1.events)
	c2 := appended{events: newEvents(2, "AssignmentMade")}
	c2.res = mustAppend(t, ctx, s, stream, 1, c2.events)
	for _, tc := range []struct {
		name     string
		expected uint64
	}{
		{"stale: expects a new stream", 0},
		{"stale: expects the length before the last commit", 1},
		{"ahead: expects more than the stream holds", 7},
		// Another command decided on the same version as the last one:
		// the same expectation with other events.
		{"duplicate: expects the length the last commit already used", 1},
	} {
		_, err := s.Append(ctx, stream, tc.expected, newEvents(2, "ProgressNoted"))
		t.Logf("%s: %v", tc.name, err)
		requireConflict(t, err, stream, tc.expected, 3)
	}
	checkStream(t, stream, mustRead(t, ctx, s, stream), c1, c2)
	// Nothing reached the global log either.
	for _, c := range readRange(t, ctx, s, c1.res.Position-1) {
		if c.Stream == stream && c.Position != c1.res.Position && c.Position != c2.res.Position {
			t.Fatalf("a refused append reached the log at position %d", c.Position)
		}
	}
}

// readRange returns the commits of the global log after `after`, up to the
// head at the time of the call.
func readRange(t *testing.T, ctx context.Context, s eventstore.Store, after eventstore.Position) []eventstore.Commit {
	t.Helper()
	head, err := s.Head(ctx)
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	var all []eventstore.Commit
	for after < head {
		page, err := s.ReadAll(ctx, after, 500)
		if err != nil {
			t.Fatalf("ReadAll(%d, 500): %v", after, err)
		}
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		after = page[len(page)-1].Position
	}
	return all
}

func testConcurrentAppenders(t *testing.T, _ Features, open func(t *testing.T) eventstore.Store) {
	ctx := testContext(t)
	s := open(t)
	const writers = 20
	for _, base := range []uint64{0, 1} {
		t.Run(fmt.Sprintf("expected=%d", base), func(t *testing.T) {
			stream := newStream()
			var before []appended
			if base == 1 {
				c := appended{events: newEvents(1, "WhistleRaised")}
				c.res = mustAppend(t, ctx, s, stream, 0, c.events)
				before = append(before, c)
			}
			start := make(chan struct{})
			type result struct {
				c   appended
				err error
			}
			results := make(chan result, writers)
			for range writers {
				go func() {
					evs := newEvents(2, "AssignmentReported")
					<-start
					res, err := s.Append(ctx, stream, base, evs)
					results <- result{appended{res, evs}, err}
				}()
			}
			close(start)
			var winners []appended
			for range writers {
				r := <-results
				if r.err == nil {
					winners = append(winners, r.c)
					continue
				}
				requireConflict(t, r.err, stream, base, base+2)
			}
			if len(winners) != 1 {
				t.Fatalf("%d of %d appenders at version %d won, want exactly 1", len(winners), writers, base)
			}
			checkStream(t, stream, mustRead(t, ctx, s, stream), append(before, winners[0])...)
		})
	}
}

// testConcurrentTwoStores races commands decided on one version through two
// stores, as two whistled sharing one log do: one wins, the others conflict.
func testConcurrentTwoStores(t *testing.T, _ Features, open func(t *testing.T) eventstore.Store) {
	ctx := testContext(t)
	stores := []eventstore.Store{open(t), open(t)}
	const writers = 20
	for _, base := range []uint64{0, 1, 3} {
		t.Run(fmt.Sprintf("expected=%d", base), func(t *testing.T) {
			stream := newStream()
			var before []appended
			var v uint64
			for v < base {
				c := appended{events: newEvents(int(min(base-v, 2)), "WhistleRaised")}
				c.res = mustAppend(t, ctx, stores[len(before)%2], stream, v, c.events)
				v = c.res.NextVersion
				before = append(before, c)
			}
			start := make(chan struct{})
			type result struct {
				c   appended
				err error
			}
			results := make(chan result, writers)
			for i := range writers {
				go func() {
					evs := newEvents(1+i%2, "AssignmentReported")
					<-start
					res, err := stores[i%2].Append(ctx, stream, base, evs)
					results <- result{appended{res, evs}, err}
				}()
			}
			close(start)
			var winners []appended
			var conflicts []error
			for range writers {
				r := <-results
				if r.err == nil {
					winners = append(winners, r.c)
					continue
				}
				conflicts = append(conflicts, r.err)
			}
			if len(winners) != 1 {
				t.Fatalf("%d of %d appenders on two stores at version %d won, want exactly 1", len(winners), writers, base)
			}
			for _, err := range conflicts {
				requireConflict(t, err, stream, base, winners[0].res.NextVersion)
			}
			want := append(before, winners[0])
			for i, s := range stores {
				got, err := s.ReadStream(ctx, stream)
				if err != nil {
					t.Fatalf("store %d: ReadStream: %v", i, err)
				}
				checkStream(t, stream, got, want...)
			}
			// The loser re-decides on what it read and appends after the
			// winner, through the other store.
			next := appended{events: newEvents(1, "ProgressNoted")}
			next.res = mustAppend(t, ctx, stores[1], stream, winners[0].res.NextVersion, next.events)
			checkStream(t, stream, mustRead(t, ctx, stores[0], stream), append(want, next)...)
		})
	}
}

// testCrash kills a store with appends in flight and checks that the
// survivor takes over with nothing acknowledged lost, and that each append
// cut short, retried with the same arguments through the survivor, lands
// exactly once.
func testCrash(t *testing.T, f Features, _ func(t *testing.T) eventstore.Store) {
	if f.Crash == nil {
		t.Skip("the backend offers no Features.Crash: a writer killed mid-batch is not tested")
	}
	ctx := testContext(t)
	victim, survivor, crash := f.Crash(t)
	const writers = 16
	type writerLog struct {
		stream  string
		done    []appended
		cut     []eventstore.EventData // the append that ended with an error
		cutFrom uint64
	}
	logs := make([]*writerLog, writers)
	var answered atomic.Int32
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range logs {
		l := &writerLog{stream: newStream()}
		logs[i] = l
		wg.Add(1)
		go func() {
			defer wg.Done()
			var v uint64
			for {
				select {
				case <-stop:
					return
				default:
				}
				evs := newEvents(1+len(l.done)%3, "ProgressNoted")
				actx, cancel := context.WithTimeout(ctx, wait)
				res, err := victim.Append(actx, l.stream, v, evs)
				cancel()
				if err != nil {
					if errors.Is(err, eventstore.ErrConflict) {
						t.Errorf("%s: append at %d through the victim: %v; nothing else writes this stream", l.stream, v, err)
					}
					l.cut, l.cutFrom = evs, v
					return
				}
				l.done = append(l.done, appended{res, evs})
				v = res.NextVersion
				answered.Add(1)
			}
		}()
	}
	deadline := time.Now().Add(wait)
	for answered.Load() < 3*writers && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if answered.Load() == 0 {
		t.Fatal("no append through the victim was answered")
	}
	crash()
	close(stop)
	wg.Wait()
	cut := 0
	for _, l := range logs {
		want := l.done
		if l.cut != nil {
			cut++
			// Cut short: it may or may not have happened; the same
			// append again must land it exactly once.
			res, err := survivor.Append(ctx, l.stream, l.cutFrom, l.cut)
			if err != nil {
				t.Fatalf("%s: the append cut short by the crash, retried through the survivor: %v; want success", l.stream, err)
			}
			want = append(want, appended{res, l.cut})
		}
		checkStream(t, l.stream, mustRead(t, ctx, survivor, l.stream), want...)
	}
	t.Logf("%d appends answered before the crash, %d cut short and retried", answered.Load(), cut)
	// The global log holds every commit once.
	commits := map[string]map[eventstore.Position]bool{}
	after := eventstore.Position(1<<63 - 1)
	for _, l := range logs {
		commits[l.stream] = map[eventstore.Position]bool{}
		for _, e := range mustRead(t, ctx, survivor, l.stream) {
			commits[l.stream][e.Position] = true
			after = min(after, e.Position-1)
		}
	}
	seen := map[string]int{}
	for _, c := range readRange(t, ctx, survivor, after) {
		if _, ok := commits[c.Stream]; ok {
			if !commits[c.Stream][c.Position] {
				t.Fatalf("the global log holds a commit of %s at position %d that its stream does not", c.Stream, c.Position)
			}
			seen[c.Stream]++
		}
	}
	for _, l := range logs {
		if seen[l.stream] != len(commits[l.stream]) {
			t.Fatalf("the global log holds %d commits of %s, its stream %d", seen[l.stream], l.stream, len(commits[l.stream]))
		}
	}
	// The survivor goes on writing.
	l := logs[0]
	got := mustRead(t, ctx, survivor, l.stream)
	mustAppend(t, ctx, survivor, l.stream, uint64(len(got)), newEvents(1, "CaseClosed"))
}

// testLostAck loses one acknowledgement and checks that the append, retried
// as a handler does, lands exactly once.
func testLostAck(t *testing.T, f Features, open func(t *testing.T) eventstore.Store) {
	if f.LoseAck == nil {
		t.Skip("the backend offers no Features.LoseAck: a lost acknowledgement is tested only through the retried append")
	}
	ctx := testContext(t)
	s := open(t)
	stream := newStream()
	c1 := appended{events: newEvents(1, "WhistleRaised")}
	c1.res = mustAppend(t, ctx, s, stream, 0, c1.events)
	c2 := appended{events: newEvents(2, "AssignmentMade")}
	f.LoseAck(t, s)
	res, err := s.Append(ctx, stream, 1, c2.events)
	if err != nil {
		t.Logf("append whose acknowledgement was lost: %v; retrying", err)
		if res, err = s.Append(ctx, stream, 1, c2.events); err != nil {
			t.Fatalf("retried append after a lost acknowledgement: %v; want success", err)
		}
	}
	c2.res = res
	checkStream(t, stream, mustRead(t, ctx, s, stream), c1, c2)
	n := 0
	for _, c := range readRange(t, ctx, s, c1.res.Position-1) {
		if c.Stream == stream {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("the global log holds %d commits of %s, want 2", n, stream)
	}
	// Once more, now that the commit is known: recognised, not repeated.
	if again, err := s.Append(ctx, stream, 1, c2.events); err != nil || again != c2.res {
		t.Fatalf("append repeated after it was acknowledged = %+v, %v; want %+v", again, err, c2.res)
	}
}

func testContiguousVersions(t *testing.T, _ Features, open func(t *testing.T) eventstore.Store) {
	ctx := testContext(t)
	s := open(t)
	stream, other := newStream(), newStream()
	var commits []appended
	var version uint64
	var lastPos eventstore.Position
	for i, n := range []int{1, 3, 2, 1, 4} {
		c := appended{events: newEvents(n, "ProgressNoted")}
		c.res = mustAppend(t, ctx, s, stream, version, c.events)
		if c.res.Position <= lastPos {
			t.Fatalf("commit %d at position %d, not after the previous one at %d", i, c.res.Position, lastPos)
		}
		lastPos = c.res.Position
		version = c.res.NextVersion
		commits = append(commits, c)
		// Interleave another stream: versions are per stream, positions
		// global.
		o := mustAppend(t, ctx, s, other, uint64(i), newEvents(1, "ProgressNoted"))
		if o.Position <= lastPos {
			t.Fatalf("commit to %s at position %d, not after %d", other, o.Position, lastPos)
		}
		lastPos = o.Position
	}
	if version != 11 {
		t.Fatalf("stream length %d, want 11", version)
	}
	checkStream(t, stream, mustRead(t, ctx, s, stream), commits...)
}

func testRoundTrip(t *testing.T, _ Features, open func(t *testing.T) eventstore.Store) {
	ctx := testContext(t)
	s := open(t)
	stream := newStream()
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	big := bytes.Repeat([]byte("\x00\xff whistle 吹哨 \xc3\x28"), 6000) // ~100 KB
	payloads := []struct {
		name string
		typ  string
		data []byte
	}{
		{"nil", "WhistleRaised", nil},
		{"empty", "AssignmentMade", []byte{}},
		{"every byte value", "AssignmentReported", all},
		{"invalid UTF-8", "ProgressNoted", []byte("\xc3\x28\xa0\xa1\xe2\x28\xa1\xf0\x28\x8c\xbc")},
		{"NUL and CRLF", "CaseEscalated", []byte("a\x00b\r\nc\r\n\r\n")},
		{"JSON with unicode", "类型·Type", []byte(`{"title":"河道污染","note":"\u0000 \"quoted\""}`)},
		{"large", "SatisfactionRated", big},
	}
	evs := make([]eventstore.EventData, len(payloads))
	for i, p := range payloads {
		evs[i] = eventstore.EventData{ID: uuid.Must(uuid.NewV7()).String(), Type: p.typ, Data: bytes.Clone(p.data)}
	}
	c1 := appended{events: evs[:3]}
	c1.res = mustAppend(t, ctx, s, stream, 0, c1.events)
	c2 := appended{events: evs[3:]}
	c2.res = mustAppend(t, ctx, s, stream, 3, c2.events)
	got := mustRead(t, ctx, s, stream)
	checkStream(t, stream, got, c1, c2)
	for i, p := range payloads {
		if !bytes.Equal(got[i].Data, p.data) {
			t.Fatalf("payload %q changed on the way: %q", p.name, trunc(got[i].Data))
		}
	}
	// The global log carries the same bytes.
	commits, err := s.ReadAll(ctx, c1.res.Position-1, 1)
	if err != nil || len(commits) != 1 {
		t.Fatalf("ReadAll(%d, 1) = %d commits, %v; want 1", c1.res.Position-1, len(commits), err)
	}
	checkCommit(t, stream, commits[0], c1, 0)
	commits, err = s.ReadAll(ctx, c2.res.Position-1, 1)
	if err != nil || len(commits) != 1 {
		t.Fatalf("ReadAll(%d, 1) = %d commits, %v; want 1", c2.res.Position-1, len(commits), err)
	}
	checkCommit(t, stream, commits[0], c2, 3)
}

func testReadMissing(t *testing.T, _ Features, open func(t *testing.T) eventstore.Store) {
	ctx := testContext(t)
	s := open(t)
	evs, err := s.ReadStream(ctx, newStream())
	if err != nil {
		t.Fatalf("ReadStream of a missing stream: %v; want no error", err)
	}
	if len(evs) != 0 {
		t.Fatalf("ReadStream of a missing stream: %d events, want 0", len(evs))
	}
}

func testReadAllPages(t *testing.T, _ Features, open func(t *testing.T) eventstore.Store) {
	ctx := testContext(t)
	s := open(t)
	stream := newStream()
	var mine []appended
	var version uint64
	for _, n := range []int{1, 2, 1, 3, 1} {
		c := appended{events: newEvents(n, "ProgressNoted")}
		c.res = mustAppend(t, ctx, s, stream, version, c.events)
		version = c.res.NextVersion
		mine = append(mine, c)
	}
	head, err := s.Head(ctx)
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	if head < mine[len(mine)-1].res.Position {
		t.Fatalf("Head %d is before the last commit appended, at %d", head, mine[len(mine)-1].res.Position)
	}

	// From the beginning: the log is not empty, and starts after 0.
	first, err := s.ReadAll(ctx, 0, 1)
	if err != nil || len(first) != 1 || first[0].Position == 0 {
		t.Fatalf("ReadAll(0, 1) = %v, %v; want one commit after position 0", first, err)
	}

	// Page through from just before this test's commits, in pages of 2,
	// until past them; other tests append meanwhile, so the log goes on.
	const limit = 2
	after := mine[0].res.Position - 1
	var found []eventstore.Commit
	for pages := 0; after < mine[len(mine)-1].res.Position; pages++ {
		if pages > 10_000 {
			t.Fatalf("paged 10000 times without reaching position %d", mine[len(mine)-1].res.Position)
		}
		page, err := s.ReadAll(ctx, after, limit)
		if err != nil {
			t.Fatalf("ReadAll(%d, %d): %v", after, limit, err)
		}
		if len(page) > limit {
			t.Fatalf("ReadAll(%d, %d) returned %d commits", after, limit, len(page))
		}
		if len(page) == 0 {
			t.Fatalf("ReadAll(%d, %d) is empty, but position %d exists", after, limit, mine[len(mine)-1].res.Position)
		}
		for _, c := range page {
			if c.Position <= after {
				t.Fatalf("ReadAll(%d): position %d does not increase (repeat or reorder)", after, c.Position)
			}
			after = c.Position
			if len(c.Events) == 0 {
				t.Fatalf("commit %s@%d has no events", c.Stream, c.Position)
			}
			for _, e := range c.Events {
				if e.Stream != c.Stream || e.Position != c.Position {
					t.Fatalf("event %s@%d in commit %s@%d", e.Stream, e.Position, c.Stream, c.Position)
				}
			}
			if c.Stream == stream {
				found = append(found, c)
			}
		}
	}
	if len(found) != len(mine) {
		t.Fatalf("ReadAll found %d commits of %s, want %d", len(found), stream, len(mine))
	}
	var v uint64
	for i := range mine {
		checkCommit(t, stream, found[i], mine[i], v)
		v += uint64(len(mine[i].events))
	}

	// One large page holds the same commits in the same order.
	big, err := s.ReadAll(ctx, mine[0].res.Position-1, 10_000)
	if err != nil {
		t.Fatalf("ReadAll(%d, 10000): %v", mine[0].res.Position-1, err)
	}
	i := 0
	for _, c := range big {
		if c.Stream == stream {
			if i >= len(mine) || c.Position != mine[i].res.Position {
				t.Fatalf("large page: commit %d of %s at position %d out of order", i, stream, c.Position)
			}
			i++
		}
	}
	if i != len(mine) {
		t.Fatalf("large page holds %d of the %d commits", i, len(mine))
	}
}

var errStop = errors.New("storetest: stop subscription")

// subscribeOwn runs Subscribe in the background, forwarding the commits of
// stream and checking that global positions increase. It stops (with
// errStop) after want commits of stream.
func subscribeOwn(t *testing.T, ctx context.Context, s eventstore.Store, after eventstore.Position, stream string, want int) (<-chan eventstore.Commit, chan error) {
	got := make(chan eventstore.Commit, want)
	done := make(chan error, 1)
	var mu sync.Mutex
	var problems []string
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range problems {
			t.Error(p)
		}
	})
	go func() {
		last, n := after, 0
		var inHandler atomic.Int32
		done <- s.Subscribe(ctx, after, func(c eventstore.Commit) error {
			if inHandler.Add(1) != 1 {
				mu.Lock()
				problems = append(problems, "Subscribe called its handler from two goroutines at once")
				mu.Unlock()
			}
			defer inHandler.Add(-1)
			if c.Position <= last {
				mu.Lock()
				problems = append(problems, fmt.Sprintf("subscription after %d delivered position %d after %d", after, c.Position, last))
				mu.Unlock()
			}
			last = c.Position
			if c.Stream != stream {
				return nil
			}
			got <- c
			if n++; n == want {
				return errStop
			}
			return nil
		})
	}()
	return got, done
}

func receive(t *testing.T, got <-chan eventstore.Commit, done chan error, what string) eventstore.Commit {
	t.Helper()
	select {
	case c := <-got:
		return c
	case err := <-done:
		// The handler sends its last commit before Subscribe returns, so
		// both may be ready at once: the commit wins, and the outcome is
		// put back for whoever waits on it next.
		select {
		case c := <-got:
			done <- err
			return c
		default:
		}
		t.Fatalf("subscription ended before %s: %v", what, err)
	case <-time.After(wait):
		t.Fatalf("no %s within %s", what, wait)
	}
	panic("unreachable")
}

func testSubscribeExistingThenNew(t *testing.T, _ Features, open func(t *testing.T) eventstore.Store) {
	ctx := testContext(t)
	s := open(t)
	stream := newStream()
	var mine []appended
	var version uint64
	add := func(n int) {
		c := appended{events: newEvents(n, "ProgressNoted")}
		c.res = mustAppend(t, ctx, s, stream, version, c.events)
		version = c.res.NextVersion
		mine = append(mine, c)
	}
	add(2)
	add(1)
	add(3)
	got, done := subscribeOwn(t, ctx, s, mine[0].res.Position-1, stream, 5)
	var v uint64
	for i := range 3 {
		checkCommit(t, stream, receive(t, got, done, fmt.Sprintf("existing commit %d", i)), mine[i], v)
		v += uint64(len(mine[i].events))
	}
	add(1)
	add(2)
	for i := 3; i < 5; i++ {
		checkCommit(t, stream, receive(t, got, done, fmt.Sprintf("new commit %d", i)), mine[i], v)
		v += uint64(len(mine[i].events))
	}
	select {
	case err := <-done:
		if !errors.Is(err, errStop) {
			t.Fatalf("Subscribe returned %v after its handler failed with %v; want that error", err, errStop)
		}
	case <-time.After(wait):
		t.Fatalf("Subscribe did not return within %s after its handler failed", wait)
	}
}

func testSubscribeAfter(t *testing.T, _ Features, open func(t *testing.T) eventstore.Store) {
	ctx := testContext(t)
	s := open(t)
	stream := newStream()
	c1 := appended{events: newEvents(1, "WhistleRaised")}
	c1.res = mustAppend(t, ctx, s, stream, 0, c1.events)
	c2 := appended{events: newEvents(2, "AssignmentMade")}
	c2.res = mustAppend(t, ctx, s, stream, 1, c2.events)
	// A subscriber that checkpointed c1 resumes with c2.
	got, done := subscribeOwn(t, ctx, s, c1.res.Position, stream, 1)
	checkCommit(t, stream, receive(t, got, done, "the commit after the checkpoint"), c2, 1)
	if err := <-done; !errors.Is(err, errStop) {
		t.Fatalf("Subscribe returned %v; want %v", err, errStop)
	}
}

func testSubscribeStopsOnCancel(t *testing.T, _ Features, open func(t *testing.T) eventstore.Store) {
	ctx := testContext(t)
	s := open(t)
	stream := newStream()
	head, err := s.Head(ctx)
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	got, done := subscribeOwn(t, sctx, s, head, stream, 1000)
	c := appended{events: newEvents(1, "WhistleRaised")}
	c.res = mustAppend(t, ctx, s, stream, 0, c.events)
	checkCommit(t, stream, receive(t, got, done, "a new commit"), c, 0) // the subscription is live
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Subscribe returned %v on cancellation; want context.Canceled", err)
		}
	case <-time.After(wait):
		t.Fatalf("Subscribe did not return within %s of its context's cancellation", wait)
	}
}

func testCancelled(t *testing.T, _ Features, open func(t *testing.T) eventstore.Store) {
	ctx := testContext(t)
	s := open(t)
	stream := newStream()
	mustAppend(t, ctx, s, stream, 0, newEvents(1, "WhistleRaised"))
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	expired, cancel2 := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel2()

	calls := []struct {
		name string
		ctx  context.Context
		want error
		call func(ctx context.Context) error
	}{
		{"Append", cancelled, context.Canceled, func(ctx context.Context) error {
			_, err := s.Append(ctx, stream, 1, newEvents(1, "ProgressNoted"))
			return err
		}},
		{"Append to a new stream", cancelled, context.Canceled, func(ctx context.Context) error {
			_, err := s.Append(ctx, newStream(), 0, newEvents(1, "WhistleRaised"))
			return err
		}},
		{"Append past its deadline", expired, context.DeadlineExceeded, func(ctx context.Context) error {
			_, err := s.Append(ctx, stream, 1, newEvents(1, "ProgressNoted"))
			return err
		}},
		{"ReadStream", cancelled, context.Canceled, func(ctx context.Context) error {
			_, err := s.ReadStream(ctx, stream)
			return err
		}},
		{"ReadAll", cancelled, context.Canceled, func(ctx context.Context) error {
			_, err := s.ReadAll(ctx, 0, 10)
			return err
		}},
		{"Head", cancelled, context.Canceled, func(ctx context.Context) error {
			_, err := s.Head(ctx)
			return err
		}},
		{"Subscribe", cancelled, context.Canceled, func(ctx context.Context) error {
			return s.Subscribe(ctx, 0, func(eventstore.Commit) error { return nil })
		}},
	}
	for _, c := range calls {
		errc := make(chan error, 1)
		go func() { errc <- c.call(c.ctx) }()
		select {
		case err := <-errc:
			if !errors.Is(err, c.want) {
				t.Errorf("%s with a done context: %v; want an error matching %v", c.name, err, c.want)
			}
		case <-time.After(wait):
			t.Fatalf("%s with a done context did not return within %s", c.name, wait)
		}
	}
}

func testRetriedAppend(t *testing.T, _ Features, open func(t *testing.T) eventstore.Store) {
	ctx := testContext(t)
	s := open(t)
	stream := newStream()
	c1 := appended{events: newEvents(2, "WhistleRaised")}
	c1.res = mustAppend(t, ctx, s, stream, 0, c1.events)
	// The same command again, as a handler retries after a lost reply.
	again, err := s.Append(ctx, stream, 0, c1.events)
	if err != nil {
		t.Fatalf("retried append of the last commit: %v; want success", err)
	}
	if again != c1.res {
		t.Fatalf("retried append returned %+v, want the first result %+v", again, c1.res)
	}
	c2 := appended{events: newEvents(1, "AssignmentReported")}
	c2.res = mustAppend(t, ctx, s, stream, 2, c2.events)
	again, err = s.Append(ctx, stream, 2, c2.events)
	if err != nil || again != c2.res {
		t.Fatalf("retried append of the last commit = %+v, %v; want %+v", again, err, c2.res)
	}
	// A commit that is no longer the last is not recognised: the stream
	// moved on, which is a conflict.
	_, err = s.Append(ctx, stream, 0, c1.events)
	requireConflict(t, err, stream, 0, 3)

	checkStream(t, stream, mustRead(t, ctx, s, stream), c1, c2)
	n := 0
	for _, c := range readRange(t, ctx, s, c1.res.Position-1) {
		if c.Stream == stream {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("the global log holds %d commits of %s, want 2", n, stream)
	}
}

func testInvalidStreamName(t *testing.T, f Features, open func(t *testing.T) eventstore.Store) {
	ctx := testContext(t)
	s := open(t)
	for _, name := range append([]string{""}, f.InvalidStreamNames...) {
		_, err := s.Append(ctx, name, 0, newEvents(1, "WhistleRaised"))
		checkInvalid(t, "Append", name, err)
		_, err = s.ReadStream(ctx, name)
		checkInvalid(t, "ReadStream", name, err)
	}
	if len(f.InvalidStreamNames) == 0 {
		t.Log("the backend lists no invalid names besides the empty one")
	}
}

func checkInvalid(t *testing.T, call, name string, err error) {
	t.Helper()
	if !errors.Is(err, eventstore.ErrInvalidStream) {
		t.Errorf("%s(%q): %v; want an error matching ErrInvalidStream", call, name, err)
		return
	}
	if name != "" && !strings.Contains(err.Error(), name) && !strings.Contains(err.Error(), strconv.Quote(name)) {
		t.Errorf("%s(%q): %q does not name the stream", call, name, err)
	}
}

func testClosed(t *testing.T, _ Features, open func(t *testing.T) eventstore.Store) {
	ctx := testContext(t)
	s := open(t)
	stream := newStream()
	mustAppend(t, ctx, s, stream, 0, newEvents(1, "WhistleRaised"))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v; want nil", err)
	}
	check := func(call string, err error) {
		t.Helper()
		if !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("%s after Close: %v; want an error matching ErrClosed", call, err)
		}
	}
	_, err := s.Append(ctx, stream, 1, newEvents(1, "ProgressNoted"))
	check("Append", err)
	_, err = s.ReadStream(ctx, stream)
	check("ReadStream", err)
	_, err = s.ReadAll(ctx, 0, 10)
	check("ReadAll", err)
	_, err = s.Head(ctx)
	check("Head", err)
	check("Subscribe", s.Subscribe(ctx, 0, func(eventstore.Commit) error { return nil }))
}

func testReopen(t *testing.T, f Features, _ func(t *testing.T) eventstore.Store) {
	if f.Reopen == nil {
		t.Skip("the backend offers no Features.Reopen: durability across close and reopen is not tested")
	}
	ctx := testContext(t)
	s, reopen := f.Reopen(t)
	stream := newStream()
	c1 := appended{events: newEvents(2, "WhistleRaised")}
	c1.res = mustAppend(t, ctx, s, stream, 0, c1.events)
	c2 := appended{events: newEvents(1, "AssignmentReported")}
	c2.res = mustAppend(t, ctx, s, stream, 2, c2.events)
	head, err := s.Head(ctx)
	if err != nil {
		t.Fatalf("Head: %v", err)
	}

	s = reopen()
	checkStream(t, stream, mustRead(t, ctx, s, stream), c1, c2)
	if h, err := s.Head(ctx); err != nil || h < head {
		t.Fatalf("Head after reopen = %d, %v; want at least %d", h, err, head)
	}
	commits, err := s.ReadAll(ctx, c1.res.Position-1, 2)
	if err != nil || len(commits) != 2 {
		t.Fatalf("ReadAll after reopen = %d commits, %v; want 2", len(commits), err)
	}
	checkCommit(t, stream, commits[0], c1, 0)
	checkCommit(t, stream, commits[1], c2, 2)
	// The reopened store knows the stream's length, and its last command.
	_, err = s.Append(ctx, stream, 2, newEvents(1, "ProgressNoted"))
	requireConflict(t, err, stream, 2, 3)
	if again, err := s.Append(ctx, stream, 2, c2.events); err != nil || again != c2.res {
		t.Fatalf("retried append after reopen = %+v, %v; want %+v", again, err, c2.res)
	}
	c3 := appended{events: newEvents(1, "ProgressNoted")}
	c3.res = mustAppend(t, ctx, s, stream, 3, c3.events)
	if c3.res.Position <= c2.res.Position {
		t.Fatalf("position %d after reopen is not after %d", c3.res.Position, c2.res.Position)
	}
	checkStream(t, stream, mustRead(t, ctx, s, stream), c1, c2, c3)
}
