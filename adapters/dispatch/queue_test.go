package dispatch

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/whistle-gov/whistle/adapters/casehandler"
	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/adapters/testenv"
	"github.com/whistle-gov/whistle/domain"
)

// runQueues follows env's log with a fresh view until the test ends.
func runQueues(t *testing.T, env *testenv.Env) *Queues {
	t.Helper()
	return runQueuesOf(t, NewQueues(env.Store, nil))
}

func runQueuesOf(t *testing.T, q *Queues) *Queues {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = q.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return q
}

// caughtUp waits until the view has folded the whole log.
func caughtUp(t *testing.T, env *testenv.Env, q *Queues) {
	t.Helper()
	head, err := env.Store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := q.WaitFor(ctx, head); err != nil {
		t.Fatal(err)
	}
}

// shape summarises a queue as "case status[!]" for comparisons.
func shape(items []QueueItem) map[string]string {
	out := map[string]string{}
	for _, it := range items {
		s := string(it.Role) + " " + string(it.Status)
		if it.Overdue {
			s += " overdue"
		}
		out[it.CaseID] = s
	}
	return out
}

func expectQueue(t *testing.T, q *Queues, assignee string, want map[string]string) {
	t.Helper()
	if got := shape(q.Open(assignee)); !reflect.DeepEqual(got, want) {
		t.Fatalf("queue of %s: %v, want %v", assignee, got, want)
	}
}

func TestQueuesHoldOpenAssignments(t *testing.T) {
	clock := struct {
		sync.Mutex
		now time.Time
	}{now: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
	now := func() time.Time { clock.Lock(); defer clock.Unlock(); return clock.now }
	env := testenv.Start(t, testenv.Options{Now: now})
	q := runQueues(t, env)

	issue := env.Raise(t, "river-pollution", "urgent").ID
	need := env.Raise(t, "after-school-care", "routine").ID
	caughtUp(t, env, q)
	expectQueue(t, q, "ecology-bureau", map[string]string{issue: "lead assigned"})
	expectQueue(t, q, "water-bureau", map[string]string{issue: "assist assigned"})
	for _, u := range testenv.Units {
		expectQueue(t, q, u.ID, map[string]string{need: "offer assigned"})
	}

	env.Do(t, issue, testenv.Ecology, domain.Report{Assignee: "ecology-bureau"})
	env.Do(t, need, testenv.Units[0], domain.Claim{Assignee: testenv.Units[0].ID})
	caughtUp(t, env, q)
	expectQueue(t, q, "ecology-bureau", map[string]string{issue: "lead reported"})
	expectQueue(t, q, testenv.Units[0].ID, map[string]string{need: "lead reported"})
	expectQueue(t, q, testenv.Units[1].ID, map[string]string{})

	// The assist misses its report-in deadline: the overdue flag shows.
	clock.Lock()
	clock.now = clock.now.Add(16 * time.Minute)
	clock.Unlock()
	if _, err := env.Handler.Execute(context.Background(), casehandler.Request{
		CaseID: issue, CommandID: uuid.NewString(), Actor: domain.Actor{Role: domain.ActorSystem, ID: "sla-watcher"}, Command: domain.CheckDeadlines{},
	}); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, env, q)
	expectQueue(t, q, "water-bureau", map[string]string{issue: "assist assigned overdue"})

	env.Do(t, issue, testenv.Ecology, domain.Resolve{Assignee: "ecology-bureau"})
	caughtUp(t, env, q)
	expectQueue(t, q, "ecology-bureau", map[string]string{})
	// A rejection gives the lead its work back: the case is read again.
	env.Do(t, issue, testenv.Street, domain.Verify{Accepted: false})
	caughtUp(t, env, q)
	expectQueue(t, q, "ecology-bureau", map[string]string{issue: "lead reported"})
	env.Do(t, issue, testenv.Ecology, domain.Resolve{Assignee: "ecology-bureau"})
	env.Do(t, issue, testenv.Street, domain.Verify{Accepted: true})
	caughtUp(t, env, q)
	expectQueue(t, q, "water-bureau", map[string]string{})

	// A view rebuilt from the log (a restart) agrees.
	q2 := runQueues(t, env)
	caughtUp(t, env, q2)
	for _, a := range []string{"ecology-bureau", "water-bureau", testenv.Units[0].ID, testenv.Units[1].ID} {
		if got, want := shape(q2.Open(a)), shape(q.Open(a)); !reflect.DeepEqual(got, want) {
			t.Fatalf("rebuilt queue of %s: %v, live one %v", a, got, want)
		}
	}
	if n := q.tracker.Len(); n != 1 {
		t.Fatalf("the view holds %d cases, want 1 (the need still open)", n)
	}
}

func TestQueuesReadCasesTheyForgot(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	// Every lead declines: the case has nothing open and is forgotten...
	c := env.Raise(t, "neighbour-dispute", "routine").ID
	env.Do(t, c, domain.Actor{Role: domain.ActorDepartment, ID: "judicial-office"}, domain.Decline{Assignee: "judicial-office", Reason: "not a dispute"})
	q := runQueues(t, env)
	caughtUp(t, env, q)
	if q.tracker.Len() != 0 {
		t.Fatalf("the view holds %d cases with nothing open", q.tracker.Len())
	}
	// ...until the street routes it by hand.
	env.Do(t, c, testenv.Street, domain.Route{Lead: "water-bureau"})
	caughtUp(t, env, q)
	expectQueue(t, q, "water-bureau", map[string]string{c: "lead assigned"})
	if it := q.Open("water-bureau")[0]; it.Street != "longqiao" || it.Category != "neighbour-dispute" || it.Version != 3 {
		t.Fatalf("item of a case read again: %+v", it)
	}
}

func TestQueueOrderPutsOverdueFirst(t *testing.T) {
	at := func(m int) *time.Time { t := time.Date(2026, 1, 1, 0, m, 0, 0, time.UTC); return &t }
	q := NewQueues(nil, nil)
	h := &caseHead{}
	q.items["x"] = map[string]queued{
		"a": {head: h, reportBy: *at(5)},
		"b": {head: h, reportBy: *at(9), overdue: true},
		"c": {head: h, reportBy: *at(1)},
		"d": {head: h},
	}
	var got []string
	for _, it := range q.Open("x") {
		got = append(got, it.CaseID)
	}
	if fmt.Sprint(got) != "[b c a d]" {
		t.Fatalf("order %v, want [b c a d]", got)
	}
}

// A view that holds the full state of only a few cases still follows every
// open case: an event of a case it forgot is folded into the case read again
// from its stream, and the queues agree with a view that forgets nothing.
func TestQueuesBoundedTrackerAgrees(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	small := runQueuesOf(t, newQueues(env.Store, nil, 2))
	full := runQueuesOf(t, newQueues(env.Store, nil, 0))
	var cases []string
	for range 8 {
		cases = append(cases, env.Raise(t, "river-pollution", "urgent").ID)
	}
	caughtUp(t, env, small)
	if n := small.tracker.Len(); n > 2 {
		t.Fatalf("the bounded view holds %d cases, want at most 2", n)
	}
	// The oldest cases were forgotten; their events still count.
	for i, c := range cases {
		env.Do(t, c, testenv.Ecology, domain.Report{Assignee: "ecology-bureau"})
		if i%2 == 0 {
			env.Do(t, c, testenv.Ecology, domain.Resolve{Assignee: "ecology-bureau"})
		}
	}
	env.Do(t, cases[0], testenv.Street, domain.Verify{Accepted: true})
	env.Do(t, cases[2], testenv.Street, domain.Verify{Accepted: false})
	caughtUp(t, env, small)
	caughtUp(t, env, full)
	want := map[string]string{}
	for i, c := range cases {
		switch {
		case i == 2 || i%2 == 1:
			want[c] = "lead reported"
		}
	}
	expectQueue(t, small, "ecology-bureau", want)
	for _, a := range []string{"ecology-bureau", "water-bureau"} {
		got, wantAll := small.Open(a), full.Open(a)
		if !reflect.DeepEqual(got, wantAll) {
			t.Fatalf("queue of %s with a bounded tracker:\n%+v\nwith an unbounded one:\n%+v", a, got, wantAll)
		}
	}
	if len(full.Open("water-bureau")) != 7 { // the closed case's assist left
		t.Fatalf("water-bureau queue: %d items, want 7", len(full.Open("water-bureau")))
	}
	if n := small.tracker.Len(); n > 2 {
		t.Fatalf("the bounded view holds %d cases, want at most 2", n)
	}
}

// Commits applied as one batch give the same queues as one at a time, and
// move the position to the batch's last commit.
func TestQueuesApplyBatch(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	a := env.Raise(t, "river-pollution", "urgent").ID
	b := env.Raise(t, "river-pollution", "routine").ID
	env.Do(t, a, testenv.Ecology, domain.Report{Assignee: "ecology-bureau"})
	env.Do(t, b, testenv.Ecology, domain.Report{Assignee: "ecology-bureau"})
	env.Do(t, b, testenv.Ecology, domain.Resolve{Assignee: "ecology-bureau"})
	ctx := context.Background()
	commits, err := env.Store.ReadAll(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	batched, single := newQueues(env.Store, nil, 1), newQueues(env.Store, nil, 0)
	if err := batched.ApplyBatch(ctx, commits); err != nil {
		t.Fatal(err)
	}
	for _, c := range commits {
		if err := single.Apply(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := batched.ApplyBatch(ctx, commits); err != nil { // a redelivery changes nothing
		t.Fatal(err)
	}
	if got, want := batched.Position(), commits[len(commits)-1].Position; got != want {
		t.Fatalf("position %d, want %d", got, want)
	}
	for _, as := range []string{"ecology-bureau", "water-bureau"} {
		if got, want := batched.Open(as), single.Open(as); !reflect.DeepEqual(got, want) {
			t.Fatalf("queue of %s batched %+v, one at a time %+v", as, got, want)
		}
	}
	expectQueue(t, batched, "ecology-bureau", map[string]string{a: "lead reported"})
}

// countingStore counts the case streams read.
type countingStore struct {
	eventstore.Store
	reads atomic.Int64
}

func (s *countingStore) ReadStream(ctx context.Context, stream string) ([]eventstore.RecordedEvent, error) {
	s.reads.Add(1)
	return s.Store.ReadStream(ctx, stream)
}

// A raise is one commit (WhistleRaised, then its assignments): the view
// folds it into the case it starts, without reading the case's stream (it
// used to forget the case between WhistleRaised and AssignmentMade, and read
// every raised case again, which kept it thousands of commits behind the log
// under load).
func TestQueuesFoldRaisesWithoutReading(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	store := &countingStore{Store: env.Store}
	q := runQueuesOf(t, newQueues(store, nil, 0))
	for range 5 {
		env.Raise(t, "river-pollution", "urgent")
		env.Raise(t, "after-school-care", "routine")
	}
	caughtUp(t, env, q)
	if n := store.reads.Load(); n != 0 {
		t.Fatalf("the view read %d case streams to fold raises", n)
	}
	if n := len(q.Open("ecology-bureau")); n != 5 {
		t.Fatalf("ecology-bureau queue: %d items, want 5", n)
	}
}
