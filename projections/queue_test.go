package projections

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/whistle-gov/whistle/domain"
)

// shape summarises a queue as "role status[ overdue]" by case, for
// comparisons.
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

func expectQueue(t *testing.T, b *Board, assignee string, want map[string]string) {
	t.Helper()
	if got := shape(b.Open(assignee)); !reflect.DeepEqual(got, want) {
		t.Fatalf("queue of %s: %v, want %v", assignee, got, want)
	}
}

// queuedCases counts the cases the board's index by assignee holds.
func queuedCases(b *Board) int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	ids := map[string]bool{}
	for _, q := range b.queues {
		for id := range q {
			ids[id] = true
		}
	}
	return len(ids)
}

// restored is b through its snapshot: what a restart holds.
func restored(t *testing.T, b *Board) *Board {
	t.Helper()
	data, err := b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	out := NewBoard()
	if err := out.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	return out
}

var units = []string{"putian-university", "city-hospital"} // wanhui's

func TestQueuesHoldOpenAssignments(t *testing.T) {
	w := newWorld(t, 3)
	issue := w.raise("longqiao", "wanhui", "river-pollution", domain.UrgencyUrgent)
	need := w.raise("longqiao", "wanhui", "after-school-care", domain.UrgencyRoutine)
	b := boardOf(t, w)
	expectQueue(t, b, "ecology-bureau", map[string]string{issue: "lead assigned"})
	expectQueue(t, b, "water-bureau", map[string]string{issue: "assist assigned"})
	for _, u := range units {
		expectQueue(t, b, u, map[string]string{need: "offer assigned"})
	}

	w.must(issue, domain.Report{Assignee: "ecology-bureau"})
	w.must(need, domain.Claim{Assignee: units[0]})
	b = boardOf(t, w)
	expectQueue(t, b, "ecology-bureau", map[string]string{issue: "lead reported"})
	expectQueue(t, b, units[0], map[string]string{need: "lead reported"})
	expectQueue(t, b, units[1], map[string]string{})

	// The assist misses its report-in deadline: the overdue flag shows.
	w.advance(16 * time.Minute).checkAll()
	b = boardOf(t, w)
	expectQueue(t, b, "water-bureau", map[string]string{issue: "assist assigned overdue"})
	if n := b.Overdue(); n != 1 {
		t.Fatalf("%d overdue assignments, want 1", n)
	}

	w.must(issue, domain.Resolve{Assignee: "ecology-bureau"})
	b = boardOf(t, w)
	expectQueue(t, b, "ecology-bureau", map[string]string{})
	// A rejection gives the lead its work back.
	w.must(issue, domain.Verify{Accepted: false})
	b = boardOf(t, w)
	expectQueue(t, b, "ecology-bureau", map[string]string{issue: "lead reported"})
	w.must(issue, domain.Resolve{Assignee: "ecology-bureau"}).must(issue, domain.Verify{Accepted: true})
	b = boardOf(t, w)
	expectQueue(t, b, "water-bureau", map[string]string{})
	if n := b.Overdue(); n != 0 {
		t.Fatalf("%d overdue assignments once the case closed, want 0", n)
	}

	// A board restored from its snapshot (a restart) agrees.
	again := restored(t, b)
	for _, a := range []string{"ecology-bureau", "water-bureau", units[0], units[1]} {
		if got, want := again.Open(a), b.Open(a); !reflect.DeepEqual(got, want) {
			t.Fatalf("restored queue of %s: %+v, live one %+v", a, got, want)
		}
	}
	if n := queuedCases(b); n != 1 {
		t.Fatalf("the queues hold %d cases, want 1 (the need still open)", n)
	}
	if n := queuedCases(again); n != 1 {
		t.Fatalf("the restored queues hold %d cases, want 1 (the need still open)", n)
	}
}

func TestQueuesTakeBackCasesWithNothingOpen(t *testing.T) {
	w := newWorld(t, 4)
	// Every lead declines: the case has nothing open and leaves the queues...
	c := w.raise("longqiao", "wanhui", "neighbour-dispute", domain.UrgencyRoutine)
	w.must(c, domain.Decline{Assignee: "judicial-office", Reason: "not a dispute"})
	b := boardOf(t, w)
	if n := queuedCases(b); n != 0 {
		t.Fatalf("the queues hold %d cases with nothing open", n)
	}
	// ...until the street routes it by hand.
	w.must(c, domain.Route{Lead: "water-bureau"})
	b = boardOf(t, w)
	expectQueue(t, b, "water-bureau", map[string]string{c: "lead assigned"})
	if it := b.Open("water-bureau")[0]; it.Street != "longqiao" || it.Category != "neighbour-dispute" || it.Version != 3 {
		t.Fatalf("item of a case routed again: %+v", it)
	}
}

func TestQueueOrderPutsOverdueFirst(t *testing.T) {
	at := func(m int) *time.Time { t := time.Date(2026, 1, 1, 0, m, 0, 0, time.UTC); return &t }
	items := []QueueItem{
		{CaseID: "a", ReportBy: at(5)},
		{CaseID: "b", ReportBy: at(9), Overdue: true},
		{CaseID: "c", ReportBy: at(1)},
		{CaseID: "d"},
	}
	sortQueue(items)
	var got []string
	for _, it := range items {
		got = append(got, it.CaseID)
	}
	if fmt.Sprint(got) != "[b c a d]" {
		t.Fatalf("order %v, want [b c a d]", got)
	}
}

// A board restored from a snapshot taken midway, then fed the rest of the
// log, holds the same queues as the board that never stopped.
func TestQueuesRestoredMidwayAgree(t *testing.T) {
	w := newWorld(t, 5)
	var cases []string
	for range 8 {
		cases = append(cases, w.raise("longqiao", "wanhui", "river-pollution", domain.UrgencyUrgent))
	}
	midway := restored(t, boardOf(t, w))
	from := len(w.commits)
	for i, c := range cases {
		w.must(c, domain.Report{Assignee: "ecology-bureau"})
		if i%2 == 0 {
			w.must(c, domain.Resolve{Assignee: "ecology-bureau"})
		}
	}
	w.must(cases[0], domain.Verify{Accepted: true})
	w.must(cases[2], domain.Verify{Accepted: false})
	for _, c := range w.commits[from:] {
		if err := midway.ApplyCommit(c.pos, c.events, nil); err != nil {
			t.Fatal(err)
		}
	}
	full := boardOf(t, w)
	want := map[string]string{}
	for i, c := range cases {
		if i == 2 || i%2 == 1 {
			want[c] = "lead reported"
		}
	}
	expectQueue(t, midway, "ecology-bureau", want)
	for _, a := range []string{"ecology-bureau", "water-bureau"} {
		if got, wantAll := midway.Open(a), full.Open(a); !reflect.DeepEqual(got, wantAll) {
			t.Fatalf("queue of %s restored midway:\n%+v\nnever stopped:\n%+v", a, got, wantAll)
		}
	}
	if len(full.Open("water-bureau")) != 7 { // the closed case's assist left
		t.Fatalf("water-bureau queue: %d items, want 7", len(full.Open("water-bureau")))
	}
}

// A redelivered commit changes no queue; the position is the last commit's.
func TestQueuesRedelivery(t *testing.T) {
	w := newWorld(t, 6)
	a := w.raise("longqiao", "wanhui", "river-pollution", domain.UrgencyUrgent)
	c := w.raise("longqiao", "wanhui", "river-pollution", domain.UrgencyRoutine)
	w.must(a, domain.Report{Assignee: "ecology-bureau"})
	w.must(c, domain.Report{Assignee: "ecology-bureau"})
	w.must(c, domain.Resolve{Assignee: "ecology-bureau"})
	b := boardOf(t, w)
	before := b.Open("ecology-bureau")
	for _, c := range w.commits {
		if err := b.ApplyCommit(c.pos, c.events, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := b.Position(), w.commits[len(w.commits)-1].pos; got != want {
		t.Fatalf("position %d, want %d", got, want)
	}
	if got := b.Open("ecology-bureau"); !reflect.DeepEqual(got, before) {
		t.Fatalf("redelivered, the queue is %+v, was %+v", got, before)
	}
	expectQueue(t, b, "ecology-bureau", map[string]string{a: "lead reported"})
}

// A raise is one commit (WhistleRaised, then its assignments): its
// assignments are in their queues once the commit is applied.
func TestQueuesHoldRaises(t *testing.T) {
	w := newWorld(t, 7)
	for range 5 {
		w.raise("longqiao", "wanhui", "river-pollution", domain.UrgencyUrgent)
		w.raise("longqiao", "wanhui", "after-school-care", domain.UrgencyRoutine)
	}
	b := boardOf(t, w)
	if n := len(b.Open("ecology-bureau")); n != 5 {
		t.Fatalf("ecology-bureau queue: %d items, want 5", n)
	}
	if n := len(b.Open(units[1])); n != 5 {
		t.Fatalf("%s queue: %d offers, want 5", units[1], n)
	}
}

// fromDomainQueue is what an assignee's queue should hold, read off the
// domain's own fold of every case.
func fromDomainQueue(w *world, assignee string) []QueueItem {
	out := []QueueItem{}
	for _, id := range w.ids {
		c := w.cases[id]
		if !c.HasOpenWork(assignee) {
			continue
		}
		a := c.Assignment(assignee)
		out = append(out, QueueItem{
			CaseID: c.ID, Assignee: assignee, Role: a.Role, Status: a.Status, ReportBy: a.ReportBy, ResolveBy: a.ResolveBy,
			ReportedAt: a.ReportedAt, Overdue: a.Overdue, Street: c.Street, Community: c.Community, Category: c.Category,
			Kind: c.Kind, Urgency: c.Urgency, Title: c.Title, CaseStatus: c.Status, Version: c.Version - 1,
		})
	}
	sortQueue(out)
	return out
}

// TestQueuesAgreeWithDomain: on random logs, every assignee's queue, live
// and restored from a snapshot, is what domain.Case's own fold says, and so
// is the count of overdue work.
func TestQueuesAgreeWithDomain(t *testing.T) {
	for seed := range uint64(4) {
		w := simulate(t, 40+seed, 400)
		live := boardOf(t, w)
		again := restored(t, live)
		overdue, items := 0, 0
		var assignees []string
		for _, o := range append(slices.Clone(w.dir.Departments), w.dir.Units...) {
			assignees = append(assignees, o.ID)
		}
		for _, assignee := range assignees {
			want := fromDomainQueue(w, assignee)
			for name, b := range map[string]*Board{"live": live, "restored": again} {
				if got := b.Open(assignee); !reflect.DeepEqual(got, want) {
					t.Fatalf("seed %d, %s queue of %s:\n%s\nwant (the domain's):\n%s", seed, name, assignee, queueLines(got), queueLines(want))
				}
			}
			items += len(want)
			for _, it := range want {
				if it.Overdue {
					overdue++
				}
			}
		}
		if items == 0 || overdue == 0 {
			t.Fatalf("seed %d: test setup: %d open assignments, %d overdue; want some of each", seed, items, overdue)
		}
		if live.Overdue() != overdue || again.Overdue() != overdue {
			t.Fatalf("seed %d: overdue %d live, %d restored; the domain says %d", seed, live.Overdue(), again.Overdue(), overdue)
		}
	}
}

func queueLines(items []QueueItem) string {
	lines := make([]string, len(items))
	for i, it := range items {
		lines[i] = fmt.Sprintf("%+v", it)
	}
	return strings.Join(lines, "\n")
}

// TestBoardSnapshotOfFormat1IsRefused: a board snapshot of format 1 lacks
// the open cases' domain state (report-in times, decline notes,
// escalations) that the queues show and the fold goes on from; it is
// refused, saying why, so that its owner folds the log again, and the
// board is unchanged.
func TestBoardSnapshotOfFormat1IsRefused(t *testing.T) {
	b := boardOf(t, simulate(t, 2, 100))
	good, err := b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if boardFormat == "whistle-board/1" {
		t.Fatal("the format was not bumped with the open cases' state")
	}
	old := []byte(strings.Replace(string(good), `"format":"`+boardFormat+`"`, `"format":"whistle-board/1"`, 1))
	fresh := NewBoard()
	err = fresh.UnmarshalBinary(old)
	if !errors.Is(err, ErrBadSnapshot) || !strings.Contains(err.Error(), "whistle-board/1") || !strings.Contains(err.Error(), "report-in times") {
		t.Fatalf("a format 1 snapshot: %v, want ErrBadSnapshot naming the format and what it lacks", err)
	}
	if fresh.Position() != 0 || fresh.Len() != 0 {
		t.Fatalf("a refused snapshot changed the board: position %d, %d cases", fresh.Position(), fresh.Len())
	}
}
