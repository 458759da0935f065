package casehandler_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/whistle-gov/whistle/adapters/casehandler"
	"github.com/whistle-gov/whistle/adapters/coretest"
	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/domain"
	"go.uber.org/zap"
)

// interloper is a store through which another writer appends to the same
// case just before each of the first n appends of this one, as a second
// whistled sharing the store would.
type interloper struct {
	eventstore.Store
	n      atomic.Int32
	before func(ctx context.Context, stream string) error
}

func (s *interloper) Append(ctx context.Context, stream string, expected uint64, events []eventstore.EventData) (eventstore.AppendResult, error) {
	if s.n.Add(-1) >= 0 {
		if err := s.before(ctx, stream); err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("interloper: %w", err)
		}
	}
	return s.Store.Append(ctx, stream, expected, events)
}

func progress(assignee, note string) domain.NoteProgress {
	return domain.NoteProgress{Assignee: assignee, Note: note}
}

// A conflict with another writer is re-read and re-decided, not surfaced:
// both commands land, in order, and the second sees the first.
func TestConflictIsRetriedAndBothCommandsLand(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	c := env.Raise(t, "river-pollution", "routine")
	other := casehandler.New(env.Store, env.Dir, time.Now, zap.NewNop()) // a second process: its own locks and cache

	store := &interloper{Store: env.Store}
	store.n.Store(3)
	store.before = func(ctx context.Context, _ string) error {
		_, err := other.Execute(ctx, casehandler.Request{CaseID: c.ID, CommandID: uuid.NewString(),
			Actor: coretest.Water, Command: progress("water-bureau", "interloper")})
		return err
	}
	h := casehandler.New(store, env.Dir, time.Now, zap.NewNop())
	res, err := h.Execute(t.Context(), casehandler.Request{CaseID: c.ID, CommandID: uuid.NewString(),
		Actor: coretest.Ecology, Command: domain.Report{Assignee: "ecology-bureau", Note: "on our way"}})
	if err != nil {
		t.Fatalf("report after 3 conflicts: %v (want retried, then applied)", err)
	}
	history := env.History(t, c.ID)
	var types []string
	for _, e := range history {
		types = append(types, e.Type)
	}
	want := []string{"WhistleRaised", "AssignmentMade", "AssignmentMade", "ProgressNoted", "ProgressNoted", "ProgressNoted", "AssignmentReported"}
	if fmt.Sprint(types) != fmt.Sprint(want) {
		t.Fatalf("history %v, want %v", types, want)
	}
	if res.Case.Version != uint64(len(history)) {
		t.Fatalf("answered version %d, the stream holds %d events", res.Case.Version, len(history))
	}
	if err := domain.VerifyChain(history); err != nil {
		t.Fatalf("chain after retries: %v", err)
	}
}

// When the case never stops changing, the command gives up with
// ErrContention after MaxAttempts and appends nothing of its own.
func TestEndlessConflictGivesUpWithContention(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	c := env.Raise(t, "river-pollution", "routine")
	other := casehandler.New(env.Store, env.Dir, time.Now, zap.NewNop())
	store := &interloper{Store: env.Store}
	store.n.Store(1 << 20)
	store.before = func(ctx context.Context, _ string) error {
		_, err := other.Execute(ctx, casehandler.Request{CaseID: c.ID, CommandID: uuid.NewString(),
			Actor: coretest.Water, Command: progress("water-bureau", "again")})
		return err
	}
	h := casehandler.New(store, env.Dir, time.Now, zap.NewNop())
	_, err := h.Execute(t.Context(), casehandler.Request{CaseID: c.ID, CommandID: uuid.NewString(),
		Actor: coretest.Ecology, Command: domain.Report{Assignee: "ecology-bureau"}})
	if !errors.Is(err, casehandler.ErrContention) {
		t.Fatalf("got %v, want ErrContention", err)
	}
	for _, e := range env.History(t, c.ID) {
		if e.Type == "AssignmentReported" {
			t.Fatalf("a command refused with ErrContention appended %s", e.Type)
		}
	}
	if got := len(env.History(t, c.ID)); got != 3+casehandler.MaxAttempts {
		t.Fatalf("history holds %d events, want the 3 of the raise and %d interlopers'", got, casehandler.MaxAttempts)
	}
}

// Many processes reporting progress on one case at once: every command lands
// exactly once, none is lost to a conflict, versions stay contiguous.
func TestConcurrentWritersAllLand(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	c := env.Raise(t, "river-pollution", "routine")
	const writers, each = 4, 5
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		h := casehandler.New(env.Store, env.Dir, time.Now, zap.NewNop())
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				_, err := h.Execute(context.Background(), casehandler.Request{CaseID: c.ID, CommandID: uuid.NewString(),
					Actor: coretest.Ecology, Command: progress("ecology-bureau", fmt.Sprintf("writer %d note %d", w, i))})
				if err != nil && !errors.Is(err, casehandler.ErrContention) {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	history := env.History(t, c.ID)
	notes := 0
	for i, e := range history {
		if e.Version != uint64(i) {
			t.Fatalf("event %d has version %d", i, e.Version)
		}
		if e.Type == "ProgressNoted" {
			notes++
		}
	}
	// ErrContention is allowed under this much contention but must be rare:
	// with MaxAttempts re-decisions nearly every note lands.
	if notes < writers*each-2 {
		t.Fatalf("%d of %d notes landed", notes, writers*each)
	}
}

// The same command id is applied once; the same Idempotency-Key with another
// body is refused.
func TestCommandIDAppliedOnce(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	caseID, commandID := uuid.NewString(), uuid.NewString()
	raise := domain.Raise{Street: "longqiao", Community: "wanhui", Category: "river-pollution", Urgency: "routine", Title: "creek", RequestSHA256: "aa"}
	first, err := env.Handler.Execute(t.Context(), casehandler.Request{CaseID: caseID, CommandID: commandID, Actor: coretest.Street, Command: raise, New: true})
	if err != nil {
		t.Fatal(err)
	}
	// A fresh handler has no cache: it must learn from the stream itself.
	fresh := casehandler.New(env.Store, env.Dir, time.Now, zap.NewNop())
	again, err := fresh.Execute(t.Context(), casehandler.Request{CaseID: caseID, CommandID: commandID, Actor: coretest.Street, Command: raise})
	if err != nil {
		t.Fatal(err)
	}
	if !again.AlreadyDone || len(again.Events) != 0 || again.Case.Version != first.Case.Version {
		t.Fatalf("retry: already done %v, %d events, version %d; want already done, none, %d", again.AlreadyDone, len(again.Events), again.Case.Version, first.Case.Version)
	}
	other := raise
	other.RequestSHA256 = "bb"
	if _, err := fresh.Execute(t.Context(), casehandler.Request{CaseID: caseID, CommandID: commandID, Actor: coretest.Street, Command: other}); !errors.Is(err, casehandler.ErrIdempotencyMismatch) {
		t.Fatalf("same key, other body: %v, want ErrIdempotencyMismatch", err)
	}
	if got := len(env.History(t, caseID)); got != int(first.Case.Version) {
		t.Fatalf("history holds %d events after retries, want %d", got, first.Case.Version)
	}
}

// A refused command appends nothing.
func TestRefusalAppendsNothing(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	c := env.Raise(t, "river-pollution", "routine")
	before := len(env.History(t, c.ID))
	for _, tc := range []struct {
		name  string
		actor domain.Actor
		cmd   domain.Command
		want  error
	}{
		{"resolve before report", coretest.Ecology, domain.Resolve{Assignee: "ecology-bureau"}, domain.ErrInvalidTransition},
		{"another's assignment", coretest.Water, domain.Report{Assignee: "ecology-bureau"}, domain.ErrNotYours},
		{"mediation on an issue", coretest.Ecology, domain.Resolve{Assignee: "ecology-bureau", Mediation: "success"}, nil},
	} {
		_, err := env.Handler.Execute(t.Context(), casehandler.Request{CaseID: c.ID, CommandID: uuid.NewString(), Actor: tc.actor, Command: tc.cmd})
		var refusal *domain.Refusal
		if !errors.As(err, &refusal) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: got %v, want a refusal (%v)", tc.name, err, tc.want)
		}
	}
	if after := len(env.History(t, c.ID)); after != before {
		t.Fatalf("refusals appended %d events", after-before)
	}
}

// The case in a result is the caller's: later commands on the case do not
// change it (the race detector checks the reads below against them).
func TestResultIsTheCallersCopy(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	c := env.Raise(t, "river-pollution", "routine")
	res, err := env.Handler.Execute(t.Context(), casehandler.Request{CaseID: c.ID, CommandID: uuid.NewString(),
		Actor: coretest.Ecology, Command: domain.Report{Assignee: "ecology-bureau"}})
	if err != nil {
		t.Fatal(err)
	}
	version := res.Case.Version
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 5 {
			env.Do(t, c.ID, coretest.Ecology, progress("ecology-bureau", fmt.Sprint("note ", i)))
		}
	}()
	for range 200 {
		_ = domain.NextDeadline(res.Case, env.Dir, time.Now())
		_ = res.Case.Assignment("ecology-bureau").Status
	}
	<-done
	if res.Case.Version != version {
		t.Fatalf("the answered case moved from version %d to %d", version, res.Case.Version)
	}
}

// Two processes on one store (two whistled sharing NATS): a refusal that
// one decides on its cached state is confirmed against the case's stream
// first, so a command that the other's write made valid is applied, not
// refused (issue 15: "must report in before resolving" while the case
// showed the report; "only a resolved case can be verified").
func TestRefusalOnACachedCaseIsConfirmedAgainstTheStream(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	a := env.Handler
	b := casehandler.New(env.Store, env.Dir, time.Now, zap.NewNop()) // its own locks and cache
	do := func(h *casehandler.Handler, caseID string, actor domain.Actor, cmd domain.Command) error {
		_, err := h.Execute(t.Context(), casehandler.Request{CaseID: caseID, CommandID: uuid.NewString(), Actor: actor, Command: cmd})
		return err
	}

	c := env.Raise(t, "river-pollution", "routine") // on a, which now holds the case
	if err := do(b, c.ID, coretest.Ecology, domain.Report{Assignee: "ecology-bureau", Note: "on our way"}); err != nil {
		t.Fatalf("report on b: %v", err)
	}
	if err := do(a, c.ID, coretest.Ecology, domain.Resolve{Assignee: "ecology-bureau", Note: "cleaned"}); err != nil {
		t.Fatalf("resolve on a after the report on b: %v (want applied)", err)
	}

	c = env.Raise(t, "river-pollution", "routine")
	if err := do(a, c.ID, coretest.Ecology, domain.Report{Assignee: "ecology-bureau"}); err != nil {
		t.Fatalf("report on a: %v", err)
	}
	if err := do(b, c.ID, coretest.Ecology, domain.Resolve{Assignee: "ecology-bureau", Note: "cleaned"}); err != nil {
		t.Fatalf("resolve on b: %v", err)
	}
	if err := do(a, c.ID, coretest.Street, domain.Verify{Accepted: true, Note: "checked"}); err != nil {
		t.Fatalf("verify on a after the resolution on b: %v (want applied)", err)
	}
	if got := env.History(t, c.ID); got[len(got)-1].Type != domain.TypeCaseClosed {
		t.Fatalf("history ends with %s, want the case closed", got[len(got)-1].Type)
	}

	// A refusal that holds on the stream too is still a refusal.
	var refusal *domain.Refusal
	if err := do(b, c.ID, coretest.Ecology, domain.Report{Assignee: "ecology-bureau"}); !errors.As(err, &refusal) {
		t.Fatalf("report on a closed case: %v, want a refusal", err)
	}
}
