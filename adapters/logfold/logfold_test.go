package logfold_test

import (
	"context"
	"errors"
	"testing"

	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/adapters/logfold"
	"github.com/whistle-gov/whistle/adapters/testenv"
	"github.com/whistle-gov/whistle/domain"
)

// commitsOf reads the whole log and keeps the commits of one case.
func commitsOf(t *testing.T, env *testenv.Env, caseID string) []eventstore.Commit {
	t.Helper()
	all, err := env.Store.ReadAll(t.Context(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var mine []eventstore.Commit
	for _, c := range all {
		if c.Stream == domain.Stream(caseID) {
			mine = append(mine, c)
		}
	}
	return mine
}

// A subscriber that starts in the middle of a case's life rebuilds it from
// the case's stream and ends with the same state as the handler; a
// redelivered commit is not applied twice.
func TestFoldFromTheMiddleAndRedelivery(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	c := env.Raise(t, "river-pollution", "routine")
	env.Do(t, c.ID, testenv.Ecology, domain.Report{Assignee: "ecology-bureau"})
	env.Do(t, c.ID, testenv.Ecology, domain.NoteProgress{Assignee: "ecology-bureau", Note: "sampling"})
	final := env.Do(t, c.ID, testenv.Ecology, domain.Resolve{Assignee: "ecology-bureau", Note: "sealed"})

	commits := commitsOf(t, env, c.ID)
	tracker := logfold.NewTracker(env.Store, 0)
	applied := 0
	apply := func(ctx context.Context, steps []logfold.Step) error {
		for _, s := range steps {
			state, fresh, err := tracker.Before(ctx, s.Env)
			if err != nil {
				return err
			}
			if fresh {
				state.Apply(s.Env, s.Event)
				applied++
			}
		}
		return nil
	}
	// Start after the raise, as from a checkpoint; then the last commit again.
	for _, commit := range append(commits[1:], commits[len(commits)-1]) {
		if err := logfold.Fold(t.Context(), tracker, commit, apply); err != nil {
			t.Fatal(err)
		}
	}
	held, ok := tracker.Held(c.ID)
	if !ok {
		t.Fatal("the case is not held after its commits")
	}
	if held.Version != final.Version || held.Status != final.Status {
		t.Fatalf("folded version %d status %s; the handler has %d %s", held.Version, held.Status, final.Version, final.Status)
	}
	if want := int(final.Version) - len(commits[0].Events); applied != want {
		t.Fatalf("applied %d events, want %d (the redelivery skipped)", applied, want)
	}
}

// An event whose case stream does not hold it yet is ErrBehind, and Fold
// gives up with it once its retries are spent rather than folding a gap.
func TestBehindIsReported(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	c := env.Raise(t, "river-pollution", "routine")
	commit := commitsOf(t, env, c.ID)[0]
	tracker := logfold.NewTracker(env.Store, 0)
	env2 := domain.Envelope{CaseID: c.ID, Version: c.Version + 5, Type: domain.TypeProgressNoted}
	if _, _, err := tracker.Before(t.Context(), env2); !errors.Is(err, logfold.ErrBehind) {
		t.Fatalf("an event past the stream's end: %v, want ErrBehind", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	calls := 0
	err := logfold.Fold(ctx, tracker, commit, func(context.Context, []logfold.Step) error {
		if calls++; calls == 2 {
			cancel()
		}
		return logfold.ErrBehind
	})
	if !errors.Is(err, context.Canceled) || calls != 2 {
		t.Fatalf("Fold retried %d times and ended with %v; want a retry, then the cancellation", calls, err)
	}
}
