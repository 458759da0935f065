package jetstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/adapters/eventstore/storetest"
	"github.com/whistle-gov/whistle/adapters/natsbus"
)

// eager makes the committer batch whenever two commits wait, and wait up to
// linger for them: the conformance suite's concurrent tests then run
// through atomic batches.
func eager(linger time.Duration) Config {
	return Config{MinBatch: 2, Linger: linger}
}

func TestConformanceGroupCommit(t *testing.T) {
	ns := startEmbedded(t, t.TempDir(), true)
	nc := connect(t, natsbus.ConnectConfig{Server: ns, Name: "conformance-group-commit"})
	var batches batchLog
	storetest.Run(t, features(nil), func(t *testing.T) eventstore.Store {
		s := openStore(t, nc, eager(2*time.Millisecond))
		if !s.GroupCommit() {
			t.Fatal("group commit is off on a server that supports atomic batches")
		}
		batches.watch(s)
		// Each test opens its own store; background appends from other
		// commands make the test's own appends share batches with them.
		noise(t, s, 4)
		return s
	})
	t.Cleanup(func() {
		// Not an assertion on timing: a record of how much of the suite
		// went through batches.
		t.Logf("atomic batches: %d sent, %d refused, largest %d", batches.sent(), batches.refused(), batches.largest())
		batches.mu.Lock()
		for _, e := range batches.errs {
			t.Logf("refused: %s", e)
		}
		batches.mu.Unlock()
	})
}

// noise appends to fresh streams from n goroutines until the test ends or
// the store closes.
func noise(t *testing.T, s *Store, n int) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if _, err := s.Append(ctx, "case-"+uuid.NewString(), 0, newEvents(1)); err != nil {
					if ctx.Err() == nil && !errors.Is(err, eventstore.ErrClosed) {
						t.Errorf("background append: %v", err)
					}
					return
				}
			}
		}()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// batchLog records the atomic batches of the stores it watches.
type batchLog struct {
	mu    sync.Mutex
	all   [][]string // subjects of each batch sent
	fails int
	errs  []string
	max   int
}

func (l *batchLog) watch(s *Store) {
	real := s.publishBatch
	s.publishBatch = func(ctx context.Context, id string, msgs []*nats.Msg) (uint64, error) {
		subjects := make([]string, len(msgs))
		for i, m := range msgs {
			subjects[i] = m.Subject
		}
		first, err := real(ctx, id, msgs)
		l.mu.Lock()
		l.all = append(l.all, subjects)
		l.max = max(l.max, len(msgs))
		if err != nil {
			l.fails++
			l.errs = append(l.errs, err.Error())
		}
		l.mu.Unlock()
		return first, err
	}
}

func (l *batchLog) sent() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.all)
}

func (l *batchLog) refused() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fails
}

func (l *batchLog) largest() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.max
}

func (l *batchLog) batches() [][]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([][]string(nil), l.all...)
}

type outcome struct {
	res eventstore.AppendResult
	err error
}

// appendAll runs the appends at once and returns their outcomes in order.
func appendAll(ctx context.Context, s *Store, streams []string, expected []uint64, evs [][]eventstore.EventData) []outcome {
	out := make([]outcome, len(streams))
	var wg sync.WaitGroup
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].res, out[i].err = s.Append(ctx, streams[i], expected[i], evs[i])
		}()
	}
	wg.Wait()
	return out
}

func TestBatchMemberConflictOthersSucceed(t *testing.T) {
	ctx := testCtx(t)
	ns := startEmbedded(t, t.TempDir(), true)
	nc := connect(t, natsbus.ConnectConfig{Server: ns})
	// Five commits wait for each other (up to half a second), so they go in
	// one batch.
	const n = 5
	a := openStore(t, nc, Config{MinBatch: n, Linger: 500 * time.Millisecond})
	b := openStore(t, nc, Config{MaxBatch: 1})
	var log batchLog
	log.watch(a)

	// a learns stream 0 at length 1; b appends behind its back, so a's
	// cached sequence is stale and its append at version 1 is a true
	// conflict that only the server sees, inside the batch.
	streams := make([]string, n)
	for i := range streams {
		streams[i] = "case-" + uuid.NewString()
	}
	if _, err := a.Append(ctx, streams[0], 0, newEvents(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Append(ctx, streams[0], 1, newEvents(1)); err != nil {
		t.Fatal(err)
	}
	expected := make([]uint64, n)
	expected[0] = 1
	evs := make([][]eventstore.EventData, n)
	for i := range evs {
		evs[i] = newEvents(1 + i%2)
	}
	out := appendAll(ctx, a, streams, expected, evs)

	var ce *eventstore.ConflictError
	if !errors.As(out[0].err, &ce) || ce.Actual != 2 {
		t.Fatalf("the stale member: %v; want a conflict reporting length 2", out[0].err)
	}
	for i := 1; i < n; i++ {
		if out[i].err != nil {
			t.Fatalf("member %d failed with its batch-mate's conflict: %v", i, out[i].err)
		}
		got, err := a.ReadStream(ctx, streams[i])
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(evs[i]) || got[0].ID != evs[i][0].ID || got[0].Position != out[i].res.Position {
			t.Fatalf("stream %d holds %d events at %v; want its commit once at %d", i, len(got), got, out[i].res.Position)
		}
	}
	got, err := a.ReadStream(ctx, streams[0])
	if err != nil || len(got) != 2 {
		t.Fatalf("the conflicting stream holds %d events (%v); want the 2 appended before", len(got), err)
	}
	all := log.batches()
	if len(all) == 0 || len(all[0]) != n || log.refused() == 0 {
		t.Fatalf("batches %v, %d refused; want a first batch of all %d, refused", all, log.refused(), n)
	}
}

func TestSameStreamTwiceInOneWindow(t *testing.T) {
	ctx := testCtx(t)
	ns := startEmbedded(t, t.TempDir(), true)
	nc := connect(t, natsbus.ConnectConfig{Server: ns})
	s := openStore(t, nc, Config{MinBatch: 4, Linger: 300 * time.Millisecond})
	var log batchLog
	log.watch(s)

	// Two commands race for the same new case, beside two others, in one
	// gathering window: one of the two wins, the other is a conflict, and
	// the two are never in one batch.
	same := "case-" + uuid.NewString()
	streams := []string{same, same, "case-" + uuid.NewString(), "case-" + uuid.NewString(), "case-" + uuid.NewString()}
	expected := make([]uint64, len(streams))
	evs := make([][]eventstore.EventData, len(streams))
	for i := range evs {
		evs[i] = newEvents(2)
	}
	out := appendAll(ctx, s, streams, expected, evs)

	winners := 0
	for i := range 2 {
		if out[i].err == nil {
			winners++
			continue
		}
		var ce *eventstore.ConflictError
		if !errors.As(out[i].err, &ce) || ce.Actual != 2 {
			t.Fatalf("append %d to the shared stream: %v; want success or a conflict reporting length 2", i, out[i].err)
		}
	}
	if winners != 1 {
		t.Fatalf("%d of the two appends at version 0 won, want 1", winners)
	}
	for i := 2; i < len(streams); i++ {
		if out[i].err != nil {
			t.Fatalf("append %d: %v", i, out[i].err)
		}
	}
	for _, b := range log.batches() {
		seen := map[string]bool{}
		for _, subj := range b {
			if seen[subj] {
				t.Fatalf("one batch held two commits of %s: %v", subj, b)
			}
			seen[subj] = true
		}
	}
	// A stream of this Store never costs a refused batch: the second append
	// to it waits for the first and learns its fate from the tip.
	if log.refused() != 0 {
		t.Fatalf("%d batches refused, want none", log.refused())
	}
	got, err := s.ReadStream(ctx, same)
	if err != nil || len(got) != 2 {
		t.Fatalf("the shared stream holds %d events (%v), want the winner's 2", len(got), err)
	}
}

func TestCancelOneWaiter(t *testing.T) {
	ns := startEmbedded(t, t.TempDir(), true)
	nc := connect(t, natsbus.ConnectConfig{Server: ns})

	t.Run("while gathering", func(t *testing.T) {
		ctx := testCtx(t)
		s := openStore(t, nc, Config{MinBatch: 4, Linger: time.Second})
		streams := []string{"case-" + uuid.NewString(), "case-" + uuid.NewString(), "case-" + uuid.NewString(), "case-" + uuid.NewString()}
		errs := make([]error, len(streams))
		var wg sync.WaitGroup
		start := func(i int, ctx context.Context) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = s.Append(ctx, streams[i], 0, newEvents(1))
			}()
		}
		cctx, cancel := context.WithCancel(ctx)
		start(0, ctx)
		start(1, cctx)
		start(2, ctx)
		// The committer waits for a fourth commit; cancel one waiter meanwhile.
		time.Sleep(50 * time.Millisecond)
		cancel()
		start(3, ctx)
		wg.Wait()
		if !errors.Is(errs[1], context.Canceled) {
			t.Fatalf("the cancelled append: %v; want context.Canceled", errs[1])
		}
		for _, i := range []int{0, 2, 3} {
			if errs[i] != nil {
				t.Fatalf("append %d beside a cancelled one: %v", i, errs[i])
			}
		}
		// Whether or not the cancelled commit was sent, its stream is usable.
		got, err := s.ReadStream(ctx, streams[1])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(ctx, streams[1], uint64(len(got)), newEvents(1)); err != nil {
			t.Fatalf("append after the cancelled one: %v", err)
		}
	})

	t.Run("in flight", func(t *testing.T) {
		ctx := testCtx(t)
		s := openStore(t, nc, Config{MinBatch: 2, Linger: time.Second})
		real := s.publishBatch
		release := make(chan struct{})
		sent := make(chan struct{}, 1)
		s.publishBatch = func(ctx context.Context, id string, msgs []*nats.Msg) (uint64, error) {
			sent <- struct{}{}
			<-release
			return real(ctx, id, msgs)
		}
		x, y := "case-"+uuid.NewString(), "case-"+uuid.NewString()
		cctx, cancel := context.WithCancel(ctx)
		errX, errY := make(chan error, 1), make(chan error, 1)
		go func() { _, err := s.Append(cctx, x, 0, newEvents(1)); errX <- err }()
		go func() { _, err := s.Append(ctx, y, 0, newEvents(1)); errY <- err }()
		<-sent
		cancel()
		if err := <-errX; !errors.Is(err, context.Canceled) {
			t.Fatalf("append cancelled in flight: %v; want context.Canceled", err)
		}
		// The next append to x must wait for the batch's outcome (the lock
		// passed to the request in flight), then find x at length 1.
		next := make(chan error, 1)
		go func() { _, err := s.Append(ctx, x, 1, newEvents(1)); next <- err }()
		select {
		case err := <-next:
			t.Fatalf("append to x returned (%v) while x's previous commit was in flight", err)
		case <-time.After(100 * time.Millisecond):
		}
		close(release)
		if err := <-errY; err != nil {
			t.Fatalf("the other member: %v", err)
		}
		if err := <-next; err != nil {
			t.Fatalf("append after the cancelled commit landed: %v", err)
		}
		got, err := s.ReadStream(ctx, x)
		if err != nil || len(got) != 2 {
			t.Fatalf("x holds %d events (%v), want 2", len(got), err)
		}
	})
}

func TestLostBatchAck(t *testing.T) {
	ctx := testCtx(t)
	ns := startEmbedded(t, t.TempDir(), true)
	nc := connect(t, natsbus.ConnectConfig{Server: ns})
	s := openStore(t, nc, Config{MinBatch: 3, Linger: 500 * time.Millisecond})
	real := s.publishBatch
	var mu sync.Mutex
	calls := 0
	s.publishBatch = func(ctx context.Context, id string, msgs []*nats.Msg) (uint64, error) {
		first, err := real(ctx, id, msgs)
		mu.Lock()
		defer mu.Unlock()
		if calls++; calls == 1 && err == nil {
			return 0, nats.ErrTimeout // stored, but the acknowledgement is lost
		}
		return first, err
	}
	streams := []string{"case-" + uuid.NewString(), "case-" + uuid.NewString(), "case-" + uuid.NewString()}
	evs := [][]eventstore.EventData{newEvents(1), newEvents(2), newEvents(1)}
	out := appendAll(ctx, s, streams, make([]uint64, 3), evs)
	for i, o := range out {
		if o.err != nil {
			t.Fatalf("append %d after a lost batch acknowledgement: %v; want success", i, o.err)
		}
		got, err := s.ReadStream(ctx, streams[i])
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(evs[i]) || got[0].Position != o.res.Position {
			t.Fatalf("stream %d holds %d events at %d, result %+v; want the commit once", i, len(got), got[0].Position, o.res)
		}
	}
}

func TestGroupCommitOffWithMaxBatch1(t *testing.T) {
	s, _ := testStore(t, Config{MaxBatch: 1})
	if s.GroupCommit() {
		t.Fatal("MaxBatch 1 left group commit on")
	}
	if _, err := Open(context.Background(), s.nc, Config{MaxBatch: maxServerBatch + 1}); err == nil {
		t.Fatalf("MaxBatch %d accepted", maxServerBatch+1)
	}
}

// BenchmarkAppendConcurrent measures Append from many goroutines, with and
// without group commit, with fsync always. Latency percentiles come from
// scripts/bench (loadgen store); this reports throughput and batch sizes.
func BenchmarkAppendConcurrent(b *testing.B) {
	for _, gc := range []struct {
		name string
		cfg  Config
	}{{"groupcommit=off", Config{MaxBatch: 1}}, {"groupcommit=on", Config{}}} {
		for _, conc := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("%s/appenders=%d", gc.name, conc), func(b *testing.B) {
				ns := startEmbedded(b, b.TempDir(), true)
				s := openStore(b, connect(b, natsbus.ConnectConfig{Server: ns}), gc.cfg)
				var batches batchLog
				batches.watch(s)
				data := make([]byte, 1200)
				b.SetParallelism(max(1, conc/2)) // GOMAXPROCS is 2 here; see -cpu
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						evs := []eventstore.EventData{{ID: uuid.Must(uuid.NewV7()).String(), Type: "WhistleRaised", Data: data}}
						if _, err := s.Append(context.Background(), "case-"+uuid.NewString(), 0, evs); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(batches.largest()), "largest-batch")
			})
		}
	}
}
