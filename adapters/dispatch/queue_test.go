package dispatch

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/whistle-gov/whistle/adapters/casehandler"
	"github.com/whistle-gov/whistle/adapters/testenv"
	"github.com/whistle-gov/whistle/domain"
)

// runQueues follows env's log with a fresh view until the test ends.
func runQueues(t *testing.T, env *testenv.Env) *Queues {
	t.Helper()
	q := NewQueues(env.Store, nil)
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
	q.items["x"] = map[string]QueueItem{
		"a": {CaseID: "a", ReportBy: at(5)},
		"b": {CaseID: "b", ReportBy: at(9), Overdue: true},
		"c": {CaseID: "c", ReportBy: at(1)},
		"d": {CaseID: "d"},
	}
	var got []string
	for _, it := range q.Open("x") {
		got = append(got, it.CaseID)
	}
	if fmt.Sprint(got) != "[b c a d]" {
		t.Fatalf("order %v, want [b c a d]", got)
	}
}
