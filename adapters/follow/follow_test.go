package follow_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/whistle-gov/whistle/adapters/casestate"
	"github.com/whistle-gov/whistle/adapters/coretest"
	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/adapters/follow"
)

// recorder is a follower that keeps the positions it was handed and its
// checkpoint.
type recorder struct {
	mu   sync.Mutex
	seen []eventstore.Position
	at   eventstore.Position
}

func (r *recorder) handle(_ context.Context, batch []follow.Commit) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range batch {
		if c.Position <= r.at {
			continue // handed again after a failure
		}
		if c.EventsErr != nil || len(c.Envelopes) == 0 || len(c.Events) != len(c.Envelopes) {
			return fmt.Errorf("commit at %d not decoded: %v", c.Position, c.EventsErr)
		}
		r.seen = append(r.seen, c.Position)
		r.at = c.Position
	}
	return nil
}

func (r *recorder) position() eventstore.Position {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.at
}

// want checks that r was handed every commit of the log after from, once
// each, in order.
func (r *recorder) want(t *testing.T, env *coretest.Env, from eventstore.Position) {
	t.Helper()
	all, err := env.Store.ReadAll(t.Context(), from, 10000)
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.seen) != len(all) {
		t.Fatalf("handed %d commits, the log holds %d after %d", len(r.seen), len(all), from)
	}
	for i, c := range all {
		if r.seen[i] != c.Position {
			t.Fatalf("commit %d handed at position %d, the log has %d", i, r.seen[i], c.Position)
		}
	}
}

func start(t *testing.T, store eventstore.Store) (*follow.Log, context.Context) {
	t.Helper()
	l := follow.New(store, follow.Options{Retry: 10 * time.Millisecond, MaxBatch: 3, Tail: 8})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = l.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return l, ctx
}

func keep(t *testing.T, ctx context.Context, l *follow.Log, name string, r *recorder, handle follow.Handler) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = l.Keep(ctx, name, r.position, handle) }()
	t.Cleanup(func() { cancel(); <-done })
}

func catchUp(t *testing.T, l *follow.Log) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := l.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
}

// Followers start from their own checkpoints: one from the start of the
// log and one from the middle catch up from the store, past the few
// commits kept for the head, then take the commits that arrive; each is
// handed every commit after its checkpoint once, in order.
func TestFollowersFromTheirCheckpoints(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	for range 12 {
		env.Raise(t, "river-pollution", "routine")
	}
	mid, err := env.Store.ReadAll(t.Context(), 0, 5)
	if err != nil {
		t.Fatal(err)
	}
	l, ctx := start(t, env.Store)
	fromStart, fromMiddle := &recorder{}, &recorder{at: mid[4].Position}
	keep(t, ctx, l, "from-start", fromStart, fromStart.handle)
	keep(t, ctx, l, "from-middle", fromMiddle, fromMiddle.handle)
	for range 20 {
		env.Raise(t, "river-pollution", "routine")
	}
	catchUp(t, l)
	fromStart.want(t, env, 0)
	fromMiddle.want(t, env, mid[4].Position)
	if lag := l.Lag("from-start"); lag != 0 {
		t.Fatalf("lag %d after catching up", lag)
	}
	for name, pos := range l.Positions() {
		if pos != l.Head() {
			t.Fatalf("%s at %d, head %d", name, pos, l.Head())
		}
	}
}

// A follower that panics is resumed from its checkpoint and misses
// nothing; the others go on meanwhile.
func TestPanicInAFollowerIsRecovered(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	l, ctx := start(t, env.Store)
	calm, shaky := &recorder{}, &recorder{}
	var panics atomic.Int32
	keep(t, ctx, l, "calm", calm, calm.handle)
	keep(t, ctx, l, "shaky", shaky, func(ctx context.Context, batch []follow.Commit) error {
		if panics.Add(1) <= 2 {
			panic("a bug in a follower")
		}
		return shaky.handle(ctx, batch)
	})
	for range 6 {
		env.Raise(t, "river-pollution", "routine")
	}
	catchUp(t, l)
	calm.want(t, env, 0)
	shaky.want(t, env, 0)
	if panics.Load() < 3 {
		t.Fatalf("%d calls, want two panics and then the rest", panics.Load())
	}
}

// dropping is a store whose first subscription ends with an error after
// two commits, as a lost connection would.
type dropping struct {
	eventstore.Store
	dropped atomic.Bool
}

func (s *dropping) Subscribe(ctx context.Context, after eventstore.Position, handle func(eventstore.Commit) error) error {
	if s.dropped.Swap(true) {
		return s.Store.Subscribe(ctx, after, handle)
	}
	n := 0
	errDropped := errors.New("connection lost")
	err := s.Store.Subscribe(ctx, after, func(c eventstore.Commit) error {
		if n++; n > 2 {
			return errDropped
		}
		return handle(c)
	})
	if errors.Is(err, errDropped) {
		return err
	}
	return err
}

// A subscription that drops is resumed where it stood: nothing is missed
// or handed twice.
func TestDroppedSubscriptionIsResumed(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	store := &dropping{Store: env.Store}
	l, ctx := start(t, store)
	r := &recorder{}
	keep(t, ctx, l, "r", r, r.handle)
	for range 6 {
		env.Raise(t, "river-pollution", "routine")
	}
	catchUp(t, l)
	if !store.dropped.Load() {
		t.Fatal("the subscription never dropped")
	}
	r.want(t, env, 0)
}

// A batch refused with casestate.ErrBehind (a case stream that lags the
// log) is handed again a little later, and the follower goes on.
func TestBehindIsHandedAgain(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	env.Raise(t, "river-pollution", "routine")
	l, ctx := start(t, env.Store)
	r := &recorder{}
	var calls atomic.Int32
	done := make(chan error, 1)
	go func() {
		done <- l.Follow(ctx, "r", 0, func(ctx context.Context, batch []follow.Commit) error {
			if calls.Add(1) <= 2 {
				return fmt.Errorf("case stream: %w", casestate.ErrBehind)
			}
			return r.handle(ctx, batch)
		})
	}()
	catchUp(t, l)
	r.want(t, env, 0)
	if calls.Load() != 3 {
		t.Fatalf("%d calls, want the batch handed three times", calls.Load())
	}
	select {
	case err := <-done:
		t.Fatalf("Follow ended: %v", err)
	default:
	}
}

// Another error stops Follow with it; WaitFor then waits for nobody.
func TestFollowStopsOnAnError(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	env.Raise(t, "river-pollution", "routine")
	l, ctx := start(t, env.Store)
	boom := errors.New("boom")
	err := l.Follow(ctx, "r", 0, func(context.Context, []follow.Commit) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("Follow ended with %v, want boom", err)
	}
	if len(l.Positions()) != 0 {
		t.Fatalf("followers left: %v", l.Positions())
	}
	catchUp(t, l)
}
