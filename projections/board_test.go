package projections

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/whistle-gov/whistle/domain"
)

func boardOf(t testing.TB, w *world) *Board {
	t.Helper()
	b := NewBoard()
	for _, c := range w.commits {
		if err := b.ApplyCommit(c.pos, c.events, nil); err != nil {
			t.Fatalf("apply commit %d: %v", c.pos, err)
		}
	}
	return b
}

// fromDomain is what the board should show for a case, read off the domain's
// own fold.
func fromDomain(c *domain.Case) CaseSummary {
	s := CaseSummary{
		CaseID: c.ID, Street: c.Street, Community: c.Community, Category: c.Category, Kind: c.Kind,
		Urgency: c.Urgency, Title: c.Title, Status: c.Status, RaisedAt: *c.RaisedAt, ClosedAt: c.ClosedAt,
		Version: c.Version, Assignments: []AssignmentSummary{},
		Source: c.Source, Priority: c.Priority, AcceptBy: c.AcceptBy, ReturnedAt: c.ReturnedAt,
		AcceptOverdue: c.MissedAccept && c.Status == domain.StatusReceived,
	}
	for _, a := range c.Assignments {
		s.Assignments = append(s.Assignments, AssignmentSummary{
			Assignee: a.Assignee, Role: a.Role, Status: a.Status, ReportBy: a.ReportBy, ResolveBy: a.ResolveBy, Overdue: a.Overdue,
		})
	}
	return s
}

func summaryJSON(s CaseSummary) string {
	s.Position = 0
	b, _ := json.Marshal(s)
	return string(b)
}

// TestBoardAgreesWithDomain: on random logs, every case's summary equals
// what domain.Case's own fold says (status, version, assignments and their
// overdue flags).
func TestBoardAgreesWithDomain(t *testing.T) {
	for seed := uint64(20); seed < 26; seed++ {
		w := simulate(t, seed, 400)
		b := boardOf(t, w)
		if b.Len() != len(w.ids) {
			t.Fatalf("seed %d: %d cases on the board, %d raised", seed, b.Len(), len(w.ids))
		}
		overdue := 0
		for _, id := range w.ids {
			got, ok := b.Get(id)
			if !ok {
				t.Fatalf("seed %d: case %s missing", seed, id)
			}
			want := fromDomain(w.cases[id])
			if summaryJSON(got) != summaryJSON(want) {
				t.Fatalf("seed %d: case %s\nboard  %s\ndomain %s", seed, id, summaryJSON(got), summaryJSON(want))
			}
			if got.Overdue() {
				overdue++
			}
		}
		if overdue == 0 {
			t.Errorf("seed %d: no overdue case: the fixture does not exercise the flags", seed)
		}
	}
}

func TestBoardPositions(t *testing.T) {
	w := simulate(t, 1, 100)
	b := boardOf(t, w)
	lastPos := map[string]uint64{}
	for _, c := range w.commits {
		for _, e := range c.events {
			lastPos[e.CaseID] = c.pos
		}
	}
	for id, pos := range lastPos {
		if got, _ := b.Get(id); got.Position != pos {
			t.Errorf("case %s at position %d, want %d", id, got.Position, pos)
		}
	}
	if n := uint64(len(w.commits)); b.Position() != n || !b.Reached(n) || b.Reached(n+1) {
		t.Errorf("board position %d after %d commits", b.Position(), n)
	}
}

// TestBoardFiltersAndPaging: for many filters, paging visits every matching
// case exactly once, newest first, and no other.
func TestBoardFiltersAndPaging(t *testing.T) {
	w := simulate(t, 30, 600)
	b := boardOf(t, w)
	yes, no := true, false
	queries := []ListQuery{{}, {Overdue: &yes}, {Overdue: &no}, {Street: "longqiao", Status: "closed"}, {Assignee: "judicial-office", Overdue: &yes}, {Street: "nowhere"}}
	for _, st := range []domain.Status{domain.StatusRouted, domain.StatusInProgress, domain.StatusResolved, domain.StatusClosed, domain.StatusUnassigned} {
		queries = append(queries, ListQuery{Status: string(st)})
	}
	for _, s := range []string{"longqiao", "donghai"} {
		queries = append(queries, ListQuery{Street: s})
	}
	for _, c := range []string{"wanhui", "xiazhu", "dongyuan"} {
		queries = append(queries, ListQuery{Community: c})
	}
	for _, c := range []string{"river-pollution", "manhole-cover", "neighbour-dispute", "rent-dispute", "after-school-care"} {
		queries = append(queries, ListQuery{Category: c})
	}
	for _, u := range domain.Urgencies() {
		queries = append(queries, ListQuery{Urgency: string(u)})
	}
	for _, a := range []string{"ecology-bureau", "water-bureau", "judicial-office", "urban-management", "housing-bureau", "putian-university", "city-hospital", "no6-school"} {
		queries = append(queries, ListQuery{Assignee: a})
	}
	nonEmpty := 0
	for _, q := range queries {
		// What should match, from the domain's own state.
		var want []string
		for _, id := range w.ids {
			s := fromDomain(w.cases[id])
			if q.match(&s) {
				want = append(want, id)
			}
		}
		for _, limit := range []int{1, 7, 0} {
			q := q
			q.Limit = limit
			var got []CaseSummary
			pages := 0
			for {
				page, next, err := b.List(q)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				wantMax := limit
				if limit == 0 {
					wantMax = DefaultListLimit
				}
				if len(page) > wantMax {
					t.Fatalf("%+v: a page of %d", q, len(page))
				}
				if next != "" && len(page) == 0 {
					t.Fatalf("%+v: an empty page with a next cursor", q)
				}
				got = append(got, page...)
				if next == "" {
					break
				}
				q.Cursor = next
			}
			ids := make([]string, len(got))
			for i, s := range got {
				ids[i] = s.CaseID
				if i > 0 {
					prev := got[i-1]
					if prev.RaisedAt.Before(s.RaisedAt) || prev.RaisedAt.Equal(s.RaisedAt) && prev.CaseID <= s.CaseID {
						t.Fatalf("%+v: %s listed before %s", q, prev.CaseID, s.CaseID)
					}
				}
			}
			sortedGot, sortedWant := slices.Sorted(slices.Values(ids)), slices.Sorted(slices.Values(want))
			if !slices.Equal(sortedGot, sortedWant) {
				t.Fatalf("%+v limit %d: listed %d cases, want %d\n got  %v\n want %v", q, limit, len(ids), len(want), sortedGot, sortedWant)
			}
			if limit == 1 && pages != max(len(want), 1) {
				t.Errorf("%+v: %d pages of one for %d cases", q, pages, len(want))
			}
		}
		if len(want) > 0 {
			nonEmpty++
		}
	}
	if nonEmpty < len(queries)-2 {
		t.Errorf("only %d of %d filters match anything: the fixture is too thin", nonEmpty, len(queries))
	}
}

func TestBoardListLimitsAndCursor(t *testing.T) {
	b := NewBoard()
	page, next, err := b.List(ListQuery{})
	if err != nil || len(page) != 0 || next != "" || page == nil {
		t.Fatalf("empty board: %v %q %v", page, next, err)
	}
	// 600 cases, ten raised at each instant, so ties are broken by id.
	w := newWorld(t, 1)
	for i := range 600 {
		if i%10 == 0 {
			w.advance(time.Second)
		}
		w.raise("longqiao", "wanhui", "manhole-cover", domain.UrgencyRoutine)
	}
	b = boardOf(t, w)
	if page, _, _ := b.List(ListQuery{}); len(page) != DefaultListLimit {
		t.Errorf("default page of %d", len(page))
	}
	page, next, _ = b.List(ListQuery{Limit: 100000})
	if len(page) != MaxListLimit || next == "" {
		t.Errorf("page of %d with limit 100000, next %q", len(page), next)
	}
	rest, next2, _ := b.List(ListQuery{Limit: 100000, Cursor: next})
	if len(rest) != 100 || next2 != "" {
		t.Errorf("second page of %d, next %q", len(rest), next2)
	}
	for _, bad := range []string{"!!!", "AAAA", "bm90IGEgY3Vyc29y"} {
		if _, _, err := b.List(ListQuery{Cursor: bad}); !errors.Is(err, ErrBadQuery) {
			t.Errorf("cursor %q: %v, want ErrBadQuery", bad, err)
		}
	}
}

func TestBoardRedeliveryAndGaps(t *testing.T) {
	w := simulate(t, 31, 300)
	want := NewBoard()
	got := NewBoard()
	// Every event as a commit of its own, then again at the next position:
	// the version, not the position, skips it.
	for i, env := range w.envelopes() {
		pos := uint64(2*i + 1)
		if err := want.ApplyCommit(pos, []domain.Envelope{env}, nil); err != nil {
			t.Fatal(err)
		}
		for redelivery := range uint64(2) {
			if err := got.ApplyCommit(pos+redelivery, []domain.Envelope{env}, nil); err != nil {
				t.Fatalf("redelivered %s: %v", env.Type, err)
			}
		}
	}
	want.pos = got.pos
	if d := Diff(want, got); len(d) > 0 {
		t.Fatalf("redelivery changed the board:\n%s", strings.Join(d, "\n"))
	}
	envs := w.envelopes()
	fresh := NewBoard()
	if err := applyOne(fresh, envs[0]); err != nil {
		t.Fatal(err)
	}
	var later domain.Envelope
	for _, e := range envs {
		if e.CaseID == envs[0].CaseID && e.Version == 2 {
			later = e
		}
	}
	if err := applyOne(fresh, later); !errors.Is(err, ErrVersionGap) {
		t.Errorf("gap: %v, want ErrVersionGap", err)
	}
	if err := applyOne(fresh, domain.Envelope{CaseID: "nope", Type: domain.TypeCaseClosed, Version: 0, Data: []byte(`{}`)}); !errors.Is(err, ErrUnexpectedEvent) {
		t.Errorf("case starting with CaseClosed: %v, want ErrUnexpectedEvent", err)
	}
	if s, _ := fresh.Get(envs[0].CaseID); s.Version != 1 {
		t.Errorf("a refused event changed the case: version %d", s.Version)
	}
}

// TestBoardRestartMidway: restoring a snapshot taken midway and applying the
// rest gives the same board as applying everything.
func TestBoardRestartMidway(t *testing.T) {
	for seed := uint64(40); seed < 44; seed++ {
		w := simulate(t, seed, 300)
		want := boardOf(t, w)
		wantBytes, _ := want.MarshalBinary()
		for _, cut := range []int{0, 1, len(w.commits) / 4, len(w.commits) / 2, len(w.commits) - 1} {
			first := NewBoard()
			for _, c := range w.commits[:cut] {
				if err := first.ApplyCommit(c.pos, c.events, nil); err != nil {
					t.Fatal(err)
				}
			}
			snap, err := first.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			resumed := NewBoard()
			if err := resumed.UnmarshalBinary(snap); err != nil {
				t.Fatalf("seed %d cut %d: restore: %v", seed, cut, err)
			}
			for _, c := range w.commits {
				if err := resumed.ApplyCommit(c.pos, c.events, nil); err != nil {
					t.Fatal(err)
				}
			}
			if d := Diff(want, resumed); len(d) > 0 {
				t.Fatalf("seed %d cut %d: restart changed the board:\n%s", seed, cut, strings.Join(d, "\n"))
			}
			if got, _ := resumed.MarshalBinary(); string(got) != string(wantBytes) {
				t.Fatalf("seed %d cut %d: snapshots differ", seed, cut)
			}
		}
	}
}

func TestBoardSnapshotRefusesGarbage(t *testing.T) {
	w := simulate(t, 2, 60)
	b := boardOf(t, w)
	good, _ := b.MarshalBinary()
	var snap boardSnap
	_ = json.Unmarshal(good, &snap)
	reversed := snap
	reversed.Cases = slices.Clone(snap.Cases)
	slices.Reverse(reversed.Cases)
	outOfOrder, _ := json.Marshal(reversed)
	for name, data := range map[string]string{
		"not json":     "[",
		"other format": strings.Replace(string(good), boardFormat, "whistle-board/9", 1),
		"out of order": string(outOfOrder),
	} {
		fresh := NewBoard()
		if err := fresh.UnmarshalBinary([]byte(data)); !errors.Is(err, ErrBadSnapshot) {
			t.Errorf("%s: %v, want ErrBadSnapshot", name, err)
		}
		if fresh.Len() != 0 {
			t.Errorf("%s: a refused snapshot changed the board", name)
		}
	}
}

func TestDiffBoardNamesEveryDifference(t *testing.T) {
	w := newWorld(t, 1)
	id := w.raise("longqiao", "wanhui", "manhole-cover", domain.UrgencyRoutine)
	other := w.raise("longqiao", "wanhui", "manhole-cover", domain.UrgencyRoutine)
	w.advance(10*time.Minute).must(id, domain.Report{Assignee: "urban-management"})
	w.must(id, domain.Resolve{Assignee: "urban-management"}).must(id, domain.Verify{Accepted: true})
	live := boardOf(t, w)
	replay := NewBoard()
	envs := w.envelopes()
	for _, env := range envs[:len(envs)-1] {
		if env.CaseID == other {
			continue
		}
		if err := replay.ApplyCommit(1000+replay.Position(), []domain.Envelope{env}, nil); err != nil {
			t.Fatal(err)
		}
	}
	joined := strings.Join(Diff(live, replay), "\n")
	for _, want := range []string{
		fmt.Sprintf("board position: live %d, replay %d", len(w.commits), replay.Position()),
		"board case " + other + ": only in live",
		"board case " + id + ` status: live "closed", replay "resolved"`,
		"board case " + id + ` version: live 6, replay 5`,
		"board case " + id + " closed_at: live \"2026-11-23T08:10:00Z\", replay null",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("diff lacks %q:\n%s", want, joined)
		}
	}
}

// TestBoardRetiresOldClosedCases: a closed case leaves the board once it has
// been closed longer than ClosedRetention; an open case stays however old; a
// late rating of a retired case is taken quietly; a restart midway and a
// replay drop exactly the same cases.
func TestBoardRetiresOldClosedCases(t *testing.T) {
	w := newWorld(t, 77)
	closedEarly := w.raise("longqiao", "wanhui", "river-pollution", domain.UrgencyRoutine)
	w.must(closedEarly, domain.Report{Assignee: "ecology-bureau"}).
		must(closedEarly, domain.Resolve{Assignee: "ecology-bureau", Note: "sealed"}).
		must(closedEarly, domain.Verify{Accepted: true})
	openOld := w.raise("longqiao", "wanhui", "river-pollution", domain.UrgencyRoutine)
	w.advance(ClosedRetention + 48*time.Hour)
	closedLate := w.raise("longqiao", "wanhui", "river-pollution", domain.UrgencyRoutine)
	w.must(closedLate, domain.Report{Assignee: "ecology-bureau"}).
		must(closedLate, domain.Resolve{Assignee: "ecology-bureau"}).
		must(closedLate, domain.Verify{Accepted: true})
	w.must(closedEarly, domain.Rate{Rating: "satisfied"}) // long after it left the board

	b := boardOf(t, w)
	if _, ok := b.Get(closedEarly); ok {
		t.Errorf("case closed %s before the latest event is still on the board", ClosedRetention+48*time.Hour)
	}
	for _, id := range []string{openOld, closedLate} {
		if _, ok := b.Get(id); !ok {
			t.Errorf("case %s left the board; only old closed cases leave", id)
		}
	}
	if b.Len() != 2 || b.Retired() != 1 {
		t.Errorf("board holds %d cases and retired %d; want 2 and 1", b.Len(), b.Retired())
	}
	list, _, err := b.List(ListQuery{Limit: 10})
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %d cases, %v; want the 2 on the board", len(list), err)
	}
	for cut := range w.commits {
		first := NewBoard()
		for _, c := range w.commits[:cut] {
			if err := first.ApplyCommit(c.pos, c.events, nil); err != nil {
				t.Fatal(err)
			}
		}
		snap, _ := first.MarshalBinary()
		resumed := NewBoard()
		if err := resumed.UnmarshalBinary(snap); err != nil {
			t.Fatalf("cut %d: restore: %v", cut, err)
		}
		for _, c := range w.commits[cut:] {
			if err := resumed.ApplyCommit(c.pos, c.events, nil); err != nil {
				t.Fatalf("cut %d: %v", cut, err)
			}
		}
		if d := Diff(b, resumed); len(d) > 0 {
			t.Fatalf("cut %d: restart changed the board:\n%s", cut, strings.Join(d, "\n"))
		}
	}
}
