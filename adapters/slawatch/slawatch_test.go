package slawatch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/whistle-gov/whistle/adapters/casehandler"
	"github.com/whistle-gov/whistle/adapters/casestate"
	"github.com/whistle-gov/whistle/adapters/coretest"
	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/adapters/slawatch"
	"github.com/whistle-gov/whistle/adapters/slawatch/slawatchtest"
	"github.com/whistle-gov/whistle/domain"
)

var t0 = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

// watch runs a watcher with its own handler (as another process would
// have) on the clock, until stop or the end of the test.
func watch(t *testing.T, env *coretest.Env, clock slawatch.Clock) (w *slawatch.Watcher, stop func()) {
	t.Helper()
	return watchTracking(t, env, clock, 0)
}

// watchTracking is watch with a bound on the cases the watcher holds.
func watchTracking(t *testing.T, env *coretest.Env, clock slawatch.Clock, tracked int) (w *slawatch.Watcher, stop func()) {
	t.Helper()
	h := casehandler.New(env.Store, env.Dir, clock.Now, env.Log)
	w = slawatch.New(slawatch.Config{Store: env.Store, Handler: h, Directory: env.Dir, Clock: clock, Retry: 10 * time.Millisecond, Cases: casestate.New(env.Store, tracked)})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = w.Run(ctx)
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return w, stop
}

// marks counts a case's overdue marks and escalations by
// "type assignee deadline level".
func marks(t *testing.T, env *coretest.Env, caseID string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, e := range env.History(t, caseID) {
		switch e.Type {
		case domain.TypeAssignmentOverdue:
			var d domain.AssignmentOverdue
			json.Unmarshal(e.Data, &d)
			out[fmt.Sprintf("overdue %s %s %s", d.Assignee, d.Deadline, d.Level)]++
			if e.Actor != slawatch.Actor {
				t.Errorf("overdue appended by %s", e.Actor)
			}
		case domain.TypeCaseEscalated:
			var d domain.CaseEscalated
			json.Unmarshal(e.Data, &d)
			out[fmt.Sprintf("escalated %s %s %s", d.Assignee, d.Deadline, d.Level)]++
		}
	}
	return out
}

func show(m map[string]int) string {
	var keys []string
	for k, n := range m {
		keys = append(keys, fmt.Sprintf("%s ×%d", k, n))
	}
	sort.Strings(keys)
	return strings.Join(keys, "; ")
}

// expectMarks waits until the case has exactly want.
func expectMarks(t *testing.T, env *coretest.Env, caseID string, want map[string]int) {
	t.Helper()
	coretest.Eventually(t, 5*time.Second, "marks of "+caseID, func() error {
		if got := marks(t, env, caseID); show(got) != show(want) {
			return fmt.Errorf("got %s, want %s", show(got), show(want))
		}
		return nil
	})
}

// settled waits until the watcher has caught up with the log and nothing is
// due at the clock's time.
func settled(t *testing.T, env *coretest.Env, w *slawatch.Watcher, clock slawatch.Clock) {
	t.Helper()
	coretest.Eventually(t, 5*time.Second, "watcher settled", func() error {
		head, err := env.Store.Head(context.Background())
		if err != nil {
			return err
		}
		if !w.Ready() || w.Position() < head {
			return coretest.ErrNotYet
		}
		if _, at, ok := w.NextDue(); ok && !at.After(clock.Now()) {
			return fmt.Errorf("due at %s, now %s", at, clock.Now())
		}
		return nil
	})
}

func TestEscalatesEachAssignmentOncePerLevel(t *testing.T) {
	clock := slawatchtest.NewFakeClock(t0)
	env := coretest.Start(t, coretest.Options{Now: clock.Now})
	w, _ := watch(t, env, clock)

	c := env.Raise(t, "river-pollution", "emergency").ID
	env.Do(t, c, coretest.Ecology, domain.Report{Assignee: "ecology-bureau"}) // the lead is in time
	settled(t, env, w, clock)
	if id, at, ok := w.NextDue(); !ok || id != c || !at.Equal(t0.Add(time.Second)) {
		t.Fatalf("next due %s at %s (%v), want %s at %s", id, at, ok, c, t0.Add(time.Second))
	}

	clock.Advance(time.Second) // the assist's report_by
	expectMarks(t, env, c, map[string]int{
		"overdue water-bureau report district":   1,
		"escalated water-bureau report district": 1,
	})
	clock.Advance(1500 * time.Millisecond) // not yet the city rung
	settled(t, env, w, clock)
	clock.Advance(500 * time.Millisecond)
	expectMarks(t, env, c, map[string]int{
		"overdue water-bureau report district":   1,
		"escalated water-bureau report district": 1,
		"escalated water-bureau report city":     1,
	})
	// A late report-in is accepted; the resolve deadline still comes, for both.
	env.Do(t, c, coretest.Water, domain.Report{Assignee: "water-bureau"})
	clock.Advance(time.Hour - 3*time.Second) // resolve_by, an hour after the raise
	expectMarks(t, env, c, map[string]int{
		"overdue water-bureau report district":      1,
		"escalated water-bureau report district":    1,
		"escalated water-bureau report city":        1,
		"overdue ecology-bureau resolve district":   1,
		"escalated ecology-bureau resolve district": 1,
		"overdue water-bureau resolve district":     1,
		"escalated water-bureau resolve district":   1,
	})
	clock.Advance(10 * time.Second)
	settled(t, env, w, clock)
	if _, _, ok := w.NextDue(); ok {
		t.Fatal("something still scheduled after every rung")
	}
	got := marks(t, env, c)
	if got["escalated ecology-bureau resolve city"] != 1 || got["escalated water-bureau resolve city"] != 1 || len(got) != 9 {
		t.Fatalf("final marks: %s", show(got))
	}
	// The flags show on the case.
	var state *domain.Case
	state, _ = domain.Replay(c, env.History(t, c))
	for _, a := range state.Assignments {
		if !a.Overdue {
			t.Errorf("%s not flagged overdue", a.Assignee)
		}
	}
}

// TestTwoWatchersAndARestartRepeatNothing runs two watchers, each with its
// own command handler as two whistled would, then a third one from scratch,
// as after a restart.
func TestTwoWatchersAndARestartRepeatNothing(t *testing.T) {
	clock := slawatchtest.NewFakeClock(t0)
	env := coretest.Start(t, coretest.Options{Now: clock.Now})
	var cases []string
	for i := 0; i < 8; i++ {
		cases = append(cases, env.Raise(t, "river-pollution", "emergency").ID)
	}
	w1, stop1 := watch(t, env, clock)
	w2, stop2 := watch(t, env, clock)
	settled(t, env, w1, clock)
	settled(t, env, w2, clock)
	want := map[string]int{
		"overdue ecology-bureau report district":   1,
		"escalated ecology-bureau report district": 1,
		"overdue water-bureau report district":     1,
		"escalated water-bureau report district":   1,
	}
	clock.Advance(time.Second)
	for _, c := range cases {
		expectMarks(t, env, c, want)
	}
	stop1()
	stop2()
	s1, s2 := w1.Stats(), w2.Stats()
	t.Logf("watcher 1: %+v; watcher 2: %+v", s1, s2)

	// Down while the city rung comes; the restarted watcher finds it due.
	clock.Advance(5 * time.Second)
	w3, _ := watch(t, env, clock)
	want["escalated ecology-bureau report city"] = 1
	want["escalated water-bureau report city"] = 1
	for _, c := range cases {
		expectMarks(t, env, c, want)
	}
	settled(t, env, w3, clock)
	for _, c := range cases {
		if got := marks(t, env, c); show(got) != show(want) {
			t.Fatalf("case %s after the restart: %s", c, show(got))
		}
	}
}

func TestClaimedNeedGetsAResolveDeadline(t *testing.T) {
	clock := slawatchtest.NewFakeClock(t0)
	env := coretest.Start(t, coretest.Options{Now: clock.Now})
	w, _ := watch(t, env, clock)
	c := env.Raise(t, "after-school-care", "routine").ID
	settled(t, env, w, clock)
	if n := w.Pending(); n != 0 {
		t.Fatalf("%d cases scheduled for a need only offered", n)
	}
	env.Do(t, c, coretest.Units[2], domain.Claim{Assignee: coretest.Units[2].ID})
	settled(t, env, w, clock)
	if _, at, ok := w.NextDue(); !ok || !at.Equal(t0.Add(72*time.Hour)) {
		t.Fatalf("next due %s (%v), want resolve_by %s", at, ok, t0.Add(72*time.Hour))
	}
	clock.Advance(72 * time.Hour)
	expectMarks(t, env, c, map[string]int{
		"overdue putian-rural-commercial-bank resolve district":   1,
		"escalated putian-rural-commercial-bank resolve district": 1,
	})
}

func TestCommandIDIsDeterministic(t *testing.T) {
	a := slawatch.CommandID("c1", t0.In(time.FixedZone("CST", 8*3600)))
	if b := slawatch.CommandID("c1", t0); a != b {
		t.Fatalf("the same deadline in two zones gives %q and %q", a, b)
	}
}

// staleExecutor answers every check "already done" with a state in which the
// deadline is still due: what a domain that disagreed with its own record
// would produce.
type staleExecutor struct {
	state *domain.Case
	calls atomic.Int64
}

func (s *staleExecutor) Execute(context.Context, casehandler.Request) (casehandler.Result, error) {
	s.calls.Add(1)
	return casehandler.Result{Case: s.state, AlreadyDone: true}, nil
}

func TestWatcherDoesNotSpinOnACheckAlreadyMade(t *testing.T) {
	clock := slawatchtest.NewFakeClock(t0)
	env := coretest.Start(t, coretest.Options{Now: clock.Now})
	c := env.Raise(t, "river-pollution", "emergency")
	exec := &staleExecutor{state: c}
	w := slawatch.New(slawatch.Config{Store: env.Store, Handler: exec, Directory: env.Dir, Clock: clock, Retry: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	settled(t, env, w, clock)
	clock.Advance(time.Second)
	coretest.Eventually(t, 5*time.Second, "first check", func() error {
		if exec.calls.Load() == 0 {
			return coretest.ErrNotYet
		}
		return nil
	})
	time.Sleep(300 * time.Millisecond)
	if n := exec.calls.Load(); n > 2 {
		t.Fatalf("%d checks of one deadline in 300ms", n)
	}
	clock.Advance(time.Minute) // the back-off ends: one more look
	coretest.Eventually(t, 5*time.Second, "second look", func() error {
		if exec.calls.Load() < 2 {
			return coretest.ErrNotYet
		}
		return nil
	})
}

// A watcher that holds the full state of one case only still keeps every
// case's schedule: events of cases it forgot (report-ins that move the next
// deadline from report_by to resolve_by, its own marks) are folded into the
// case read again from its stream, and each mark is appended once, also with
// a second bounded watcher running.
func TestBoundedWatchersKeepEverySchedule(t *testing.T) {
	clock := slawatchtest.NewFakeClock(t0)
	env := coretest.Start(t, coretest.Options{Now: clock.Now})
	w1, _ := watchTracking(t, env, clock, 1)
	w2, _ := watchTracking(t, env, clock, 1)
	var cases []string
	for i := 0; i < 6; i++ {
		cases = append(cases, env.Raise(t, "river-pollution", "emergency").ID)
	}
	// Both leads of the first half report in after their cases were forgotten.
	for _, c := range cases[:3] {
		env.Do(t, c, coretest.Ecology, domain.Report{Assignee: "ecology-bureau"})
	}
	settled(t, env, w1, clock)
	settled(t, env, w2, clock)
	if n := w1.Pending(); n != len(cases) {
		t.Fatalf("%d cases scheduled, want %d", n, len(cases))
	}
	clock.Advance(time.Second) // report_by
	reported := map[string]int{
		"overdue water-bureau report district":   1,
		"escalated water-bureau report district": 1,
	}
	silent := map[string]int{
		"overdue ecology-bureau report district":   1,
		"escalated ecology-bureau report district": 1,
		"overdue water-bureau report district":     1,
		"escalated water-bureau report district":   1,
	}
	// In the first three cases ecology-bureau reported in; in the rest nobody did.
	expectAll := func() {
		t.Helper()
		for i, c := range cases {
			if i < 3 {
				expectMarks(t, env, c, reported)
			} else {
				expectMarks(t, env, c, silent)
			}
		}
		settled(t, env, w1, clock)
		settled(t, env, w2, clock)
	}
	expectAll()
	// The next deadlines are the city rung of the report deadline for all.
	clock.Advance(2 * time.Second)
	reported["escalated water-bureau report city"] = 1
	silent["escalated ecology-bureau report city"] = 1
	silent["escalated water-bureau report city"] = 1
	expectAll()
}

// A report-in of a case the watcher forgot moves its schedule on.
func TestBoundedWatcherFollowsForgottenCases(t *testing.T) {
	clock := slawatchtest.NewFakeClock(t0)
	env := coretest.Start(t, coretest.Options{Now: clock.Now})
	w, _ := watchTracking(t, env, clock, 1)
	var cases []string
	for i := 0; i < 4; i++ {
		cases = append(cases, env.Raise(t, "river-pollution", "emergency").ID)
	}
	settled(t, env, w, clock)
	for _, c := range cases {
		env.Do(t, c, coretest.Ecology, domain.Report{Assignee: "ecology-bureau"})
		env.Do(t, c, coretest.Water, domain.Report{Assignee: "water-bureau"})
	}
	settled(t, env, w, clock)
	if n := w.Pending(); n != len(cases) {
		t.Fatalf("%d cases scheduled, want %d", n, len(cases))
	}
	if _, at, ok := w.NextDue(); !ok || !at.Equal(t0.Add(time.Hour)) {
		t.Fatalf("next due %s (%v), want resolve_by %s", at, ok, t0.Add(time.Hour))
	}
	clock.Advance(time.Second)
	settled(t, env, w, clock)
	for _, c := range cases {
		if got := marks(t, env, c); len(got) != 0 {
			t.Fatalf("case %s reported in time has marks %s", c, show(got))
		}
	}
}

// readsFrom is a store that remembers the lowest position the log was
// read after.
type readsFrom struct {
	eventstore.Store
	mu     sync.Mutex
	lowest eventstore.Position
	reads  int
}

func (s *readsFrom) ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.Commit, error) {
	s.mu.Lock()
	if s.reads == 0 || after < s.lowest {
		s.lowest = after
	}
	s.reads++
	s.mu.Unlock()
	return s.Store.ReadAll(ctx, after, limit)
}

// With a checkpoint folder the watcher saves its schedule when it stops,
// and a restart follows the log from where it stood, not from the start;
// a deadline that passed meanwhile is enforced at once, once.
func TestRestartFollowsFromTheCheckpoint(t *testing.T) {
	clock := slawatchtest.NewFakeClock(t0)
	env := coretest.Start(t, coretest.Options{Now: clock.Now})
	dir := t.TempDir()
	run := func(store eventstore.Store) (*slawatch.Watcher, func()) {
		h := casehandler.New(env.Store, env.Dir, clock.Now, env.Log)
		w := slawatch.New(slawatch.Config{Store: store, Handler: h, Directory: env.Dir, Clock: clock, Retry: 10 * time.Millisecond, Dir: dir})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = w.Run(ctx) }()
		var once sync.Once
		stop := func() { once.Do(func() { cancel(); <-done }) }
		t.Cleanup(stop)
		return w, stop
	}
	w1, stop1 := run(env.Store)
	c := env.Raise(t, "river-pollution", "emergency").ID
	env.Do(t, c, coretest.Ecology, domain.Report{Assignee: "ecology-bureau"})
	settled(t, env, w1, clock)
	saved := w1.Position()
	stop1()
	if _, err := os.Stat(filepath.Join(dir, slawatch.CheckpointFile)); err != nil {
		t.Fatalf("no checkpoint after a stop: %v", err)
	}

	clock.Advance(time.Second) // the assist's report_by passes while no watcher runs
	store := &readsFrom{Store: env.Store}
	w2, _ := run(store)
	expectMarks(t, env, c, map[string]int{
		"overdue water-bureau report district":   1,
		"escalated water-bureau report district": 1,
	})
	settled(t, env, w2, clock)
	store.mu.Lock()
	defer store.mu.Unlock()
	if store.reads > 0 && store.lowest < saved {
		t.Fatalf("the restarted watcher read the log after %d; its checkpoint was at %d", store.lowest, saved)
	}
}
