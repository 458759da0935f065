package projections

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/whistle-gov/whistle/domain"
)

func newStats(t testing.TB) *Stats {
	t.Helper()
	s, err := NewStats(nil, figuresZone)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// statsOf folds a world's whole log, commit by commit.
func statsOf(t testing.TB, w *world) *Stats {
	t.Helper()
	s := newStats(t)
	for _, c := range w.commits {
		if err := s.ApplyCommit(c.pos, c.events, nil); err != nil {
			t.Fatalf("apply commit %d: %v", c.pos, err)
		}
	}
	return s
}

func groupOf(t *testing.T, s *Stats, groupBy, key string, from, to time.Time) (map[string]any, bool) {
	t.Helper()
	res, err := s.Query(groupBy, from, to, nil)
	if err != nil {
		t.Fatal(err)
	}
	return findGroup(t, res, key)
}

// findGroup returns res's group of key as its JSON fields, if res has one.
func findGroup(t *testing.T, res Result, key string) (map[string]any, bool) {
	t.Helper()
	for _, g := range res.Groups {
		if g.Key == key {
			b, _ := json.Marshal(g)
			m := map[string]any{}
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			return m, true
		}
	}
	return nil, false
}

// absent marks a group that must not appear.
const absent = "absent"

// TestFigures gives events (through domain commands) and expects figures.
// Durations are checked within the histogram's 2%.
func TestFigures(t *testing.T) {
	minutes := func(m float64) float64 { return m * 60 }
	tests := []struct {
		name     string
		given    func(w *world)
		groupBy  string
		key      string
		from, to time.Time // zero: the first week
		want     map[string]any
	}{
		{
			name: "an issue reported, resolved and closed on time, rated satisfied",
			given: func(w *world) {
				id := w.raise("longqiao", "wanhui", "river-pollution", domain.UrgencyRoutine)
				w.advance(10*time.Minute).must(id, domain.Report{Assignee: "ecology-bureau"})
				w.advance(10*time.Minute).must(id, domain.Report{Assignee: "water-bureau"})
				w.advance(2*time.Hour).must(id, domain.Resolve{Assignee: "ecology-bureau"})
				w.advance(time.Hour).must(id, domain.Verify{Accepted: true})
				w.advance(time.Hour).must(id, domain.Rate{Rating: "satisfied"})
			},
			groupBy: "street", key: "longqiao",
			want: map[string]any{
				"raised": 1, "closed": 1, "closed_on_time": 1, "closure_rate": 1, "on_time_closure_rate": 1,
				"assignments": 2, "reported_on_time": 2, "response_rate": 1,
				"disputes_resolved": 0, "mediation_success_rate": nil, "ratings": 1, "satisfaction_rate": 1,
				"median_report_seconds": minutes(10), "p90_report_seconds": minutes(20),
				"median_close_seconds": minutes(200), "p90_close_seconds": minutes(200), "overdue": 0, "escalations": 0,
			},
		},
		{
			name: "an assist counts its assignment and the case it holds",
			given: func(w *world) {
				id := w.raise("longqiao", "wanhui", "river-pollution", domain.UrgencyRoutine)
				w.advance(10*time.Minute).must(id, domain.Report{Assignee: "ecology-bureau"})
				w.advance(10*time.Minute).must(id, domain.Report{Assignee: "water-bureau"})
				w.advance(2*time.Hour).must(id, domain.Resolve{Assignee: "ecology-bureau"})
				w.advance(time.Hour).must(id, domain.Verify{Accepted: true})
				w.advance(time.Hour).must(id, domain.Rate{Rating: "basically_satisfied"})
			},
			groupBy: "assignee", key: "water-bureau",
			want: map[string]any{
				"raised": 1, "closed": 1, "closure_rate": 1, "assignments": 1, "reported_on_time": 1, "response_rate": 1,
				"ratings": 1, "satisfaction_rate": 0.9, "median_report_seconds": minutes(20), "median_close_seconds": minutes(200),
			},
		},
		{
			name: "a late report-in: overdue once, escalated per rung, not on time",
			given: func(w *world) {
				id := w.raise("longqiao", "xiazhu", "manhole-cover", domain.UrgencyUrgent) // report within 15m
				w.advance(16 * time.Minute).checkAll()                                     // overdue + district
				w.advance(30 * time.Minute).checkAll()                                     // city
				w.advance(4*time.Minute).must(id, domain.Report{Assignee: "urban-management"})
			},
			groupBy: "community", key: "xiazhu",
			want: map[string]any{
				"raised": 1, "closed": 0, "closure_rate": 0, "on_time_closure_rate": 0,
				"assignments": 1, "reported_on_time": 0, "response_rate": 0, "median_report_seconds": minutes(50),
				"overdue": 1, "escalations": 2, "ratings": 0, "satisfaction_rate": nil, "median_close_seconds": nil,
			},
		},
		{
			name: "overdue and escalations count for the assignee that missed the deadline only",
			given: func(w *world) {
				id := w.raise("longqiao", "wanhui", "river-pollution", domain.UrgencyRoutine)
				w.advance(10*time.Minute).must(id, domain.Report{Assignee: "ecology-bureau"})
				w.advance(25 * time.Minute).checkAll() // water-bureau missed report_by
			},
			groupBy: "assignee", key: "ecology-bureau",
			want: map[string]any{"raised": 1, "assignments": 1, "reported_on_time": 1, "overdue": 0, "escalations": 0},
		},
		{
			name: "a report-in exactly at report_by is on time",
			given: func(w *world) {
				id := w.raise("longqiao", "xiazhu", "manhole-cover", domain.UrgencyRoutine)
				w.advance(30*time.Minute).must(id, domain.Report{Assignee: "urban-management"})
			},
			groupBy: "category", key: "manhole-cover",
			want: map[string]any{"assignments": 1, "reported_on_time": 1, "response_rate": 1},
		},
		{
			name: "closed after the lead's resolve_by: closed, not on time",
			given: func(w *world) {
				id := w.raise("donghai", "dongyuan", "manhole-cover", domain.UrgencyEmergency) // resolve within 2h
				w.advance(time.Minute).must(id, domain.Report{Assignee: "urban-management"})
				w.advance(3*time.Hour).must(id, domain.Resolve{Assignee: "urban-management"})
				w.advance(10*time.Minute).must(id, domain.Verify{Accepted: true})
			},
			groupBy: "urgency", key: "emergency",
			want: map[string]any{
				"raised": 1, "closed": 1, "closed_on_time": 0, "closure_rate": 1, "on_time_closure_rate": 0,
				"median_close_seconds": minutes(191), "ratings": 0, "satisfaction_rate": nil,
			},
		},
		{
			name: "a dispute resolved with success, rejected, resolved again with failure counts once, as a failure",
			given: func(w *world) {
				id := w.raise("longqiao", "wanhui", "neighbour-dispute", domain.UrgencyRoutine)
				w.advance(5*time.Minute).must(id, domain.Report{Assignee: "judicial-office"})
				w.advance(time.Hour).must(id, domain.Resolve{Assignee: "judicial-office", Mediation: "success"})
				w.advance(time.Hour).must(id, domain.Verify{Accepted: false})
				w.advance(time.Hour).must(id, domain.Resolve{Assignee: "judicial-office", Mediation: "failure"})
				w.advance(time.Hour).must(id, domain.Verify{Accepted: true})
			},
			groupBy: "category", key: "neighbour-dispute",
			want: map[string]any{"disputes_resolved": 1, "disputes_success": 0, "mediation_success_rate": 0, "closed": 1},
		},
		{
			name: "a dispute that failed and then succeeded counts as a success",
			given: func(w *world) {
				id := w.raise("longqiao", "wanhui", "neighbour-dispute", domain.UrgencyRoutine)
				w.advance(5*time.Minute).must(id, domain.Report{Assignee: "judicial-office"})
				w.advance(time.Hour).must(id, domain.Resolve{Assignee: "judicial-office", Mediation: "failure"})
				w.advance(time.Hour).must(id, domain.Verify{Accepted: false})
				w.advance(time.Hour).must(id, domain.Resolve{Assignee: "judicial-office", Mediation: "success"})
			},
			groupBy: "assignee", key: "judicial-office",
			want: map[string]any{"disputes_resolved": 1, "disputes_success": 1, "mediation_success_rate": 1, "closed": 0},
		},
		{
			name: "two disputes, one success, one failure; an assist's outcome does not count",
			given: func(w *world) {
				a := w.raise("longqiao", "wanhui", "rent-dispute", domain.UrgencyRoutine)
				b := w.raise("longqiao", "wanhui", "neighbour-dispute", domain.UrgencyRoutine)
				w.advance(5*time.Minute).must(a, domain.Report{Assignee: "judicial-office"}).must(a, domain.Report{Assignee: "housing-bureau"})
				w.must(b, domain.Report{Assignee: "judicial-office"})
				w.advance(time.Hour).must(a, domain.Resolve{Assignee: "housing-bureau", Mediation: "failure"})
				w.must(a, domain.Resolve{Assignee: "judicial-office", Mediation: "success"})
				w.must(b, domain.Resolve{Assignee: "judicial-office", Mediation: "failure"})
			},
			groupBy: "street", key: "longqiao",
			want: map[string]any{"raised": 2, "disputes_resolved": 2, "disputes_success": 1, "mediation_success_rate": 0.5},
		},
		{
			name: "a need: offers are not assignments; a claim is made and reported in at once",
			given: func(w *world) {
				id := w.raise("longqiao", "wanhui", "after-school-care", domain.UrgencyRoutine)
				w.advance(40*time.Minute).must(id, domain.Claim{Assignee: "city-hospital"})
			},
			groupBy: "street", key: "longqiao",
			want: map[string]any{
				"raised": 1, "assignments": 1, "reported_on_time": 1, "response_rate": 1,
				"median_report_seconds": 0, "p90_report_seconds": 0,
			},
		},
		{
			name: "a need: the claimant counts the case",
			given: func(w *world) {
				id := w.raise("longqiao", "wanhui", "after-school-care", domain.UrgencyRoutine)
				w.advance(40*time.Minute).must(id, domain.Claim{Assignee: "city-hospital"})
			},
			groupBy: "assignee", key: "city-hospital",
			want: map[string]any{"raised": 1, "assignments": 1, "reported_on_time": 1},
		},
		{
			name: "a need: a unit only offered it does not count it",
			given: func(w *world) {
				id := w.raise("longqiao", "wanhui", "after-school-care", domain.UrgencyRoutine)
				w.advance(40*time.Minute).must(id, domain.Claim{Assignee: "city-hospital"})
			},
			groupBy: "assignee", key: "putian-university",
			want: map[string]any{absent: true},
		},
		{
			name: "declined and routed by hand: two assignments, the new lead's deadline decides",
			given: func(w *world) {
				id := w.raise("longqiao", "xiazhu", "manhole-cover", domain.UrgencyUrgent)
				w.advance(5*time.Minute).must(id, domain.Decline{Assignee: "urban-management", Reason: "not ours"})
				w.advance(20*time.Hour).must(id, domain.Route{Lead: "housing-bureau"})
				w.advance(10*time.Minute).must(id, domain.Report{Assignee: "housing-bureau"})
				w.advance(10*time.Hour).must(id, domain.Resolve{Assignee: "housing-bureau"})
				w.advance(time.Hour).must(id, domain.Verify{Accepted: true}) // 31h after raising, 11h after routing
			},
			groupBy: "street", key: "longqiao",
			want: map[string]any{
				"assignments": 2, "reported_on_time": 1, "response_rate": 0.5, "median_report_seconds": minutes(10),
				"closed": 1, "closed_on_time": 1, "on_time_closure_rate": 1,
			},
		},
		{
			name: "on-time closure uses the latest lead that did not decline",
			given: func(w *world) {
				id := w.raise("longqiao", "xiazhu", "manhole-cover", domain.UrgencyUrgent) // resolve_by +24h
				w.advance(5*time.Minute).must(id, domain.Report{Assignee: "urban-management"})
				w.advance(20*time.Hour).must(id, domain.Route{Lead: "housing-bureau"}) // resolve_by +44h
				w.advance(time.Minute).must(id, domain.Decline{Assignee: "housing-bureau", Reason: "not ours"})
				w.advance(10*time.Hour).must(id, domain.Resolve{Assignee: "urban-management"})
				w.must(id, domain.Verify{Accepted: true}) // after the remaining lead's resolve_by
			},
			groupBy: "street", key: "longqiao",
			want: map[string]any{"closed": 1, "closed_on_time": 0, "on_time_closure_rate": 0, "assignments": 2},
		},
		{
			name: "an assignee that declined keeps the case it held",
			given: func(w *world) {
				id := w.raise("longqiao", "xiazhu", "manhole-cover", domain.UrgencyUrgent)
				w.advance(5*time.Minute).must(id, domain.Decline{Assignee: "urban-management", Reason: "not ours"})
				w.advance(time.Hour).must(id, domain.Route{Lead: "housing-bureau"})
				w.advance(10*time.Minute).must(id, domain.Report{Assignee: "housing-bureau"})
				w.advance(time.Hour).must(id, domain.Resolve{Assignee: "housing-bureau"})
				w.advance(time.Hour).must(id, domain.Verify{Accepted: true})
			},
			groupBy: "assignee", key: "urban-management",
			want: map[string]any{"raised": 1, "closed": 1, "assignments": 1, "reported_on_time": 0, "response_rate": 0, "median_report_seconds": nil},
		},
		{
			name: "an assignee that joins late is credited with the case so far",
			given: func(w *world) {
				id := w.raise("longqiao", "wanhui", "neighbour-dispute", domain.UrgencyRoutine)
				w.advance(5*time.Minute).must(id, domain.Report{Assignee: "judicial-office"})
				w.advance(time.Hour).must(id, domain.Resolve{Assignee: "judicial-office", Mediation: "success"})
				w.advance(time.Hour).must(id, domain.Verify{Accepted: false})
				w.advance(time.Minute).must(id, domain.Route{Assist: []string{"housing-bureau"}})
			},
			groupBy: "assignee", key: "housing-bureau",
			want: map[string]any{"raised": 1, "disputes_resolved": 1, "disputes_success": 1, "mediation_success_rate": 1, "assignments": 1, "reported_on_time": 0},
		},
		{
			name: "ratings weigh satisfied 1, basically satisfied 0.9, unsatisfied 0; unrated cases do not count",
			given: func(w *world) {
				for _, rating := range []string{"satisfied", "basically_satisfied", "unsatisfied", ""} {
					id := w.raise("donghai", "dongyuan", "manhole-cover", domain.UrgencyRoutine)
					w.advance(time.Minute).must(id, domain.Report{Assignee: "urban-management"})
					w.advance(time.Minute).must(id, domain.Resolve{Assignee: "urban-management"})
					w.advance(time.Minute).must(id, domain.Verify{Accepted: true})
					if rating != "" {
						w.advance(24*time.Hour).must(id, domain.Rate{Rating: rating})
					}
				}
			},
			groupBy: "street", key: "donghai",
			want: map[string]any{"raised": 4, "closed": 4, "ratings": 3, "satisfaction_rate": 1.9 / 3},
		},
		{
			name: "a case counts on the day it was raised, not the day it closed",
			given: func(w *world) {
				id := w.raise("longqiao", "wanhui", "manhole-cover", domain.UrgencyRoutine)
				w.advance(49*time.Hour).must(id, domain.Report{Assignee: "urban-management"})
				w.must(id, domain.Resolve{Assignee: "urban-management"}).must(id, domain.Verify{Accepted: true})
			},
			groupBy: "day", key: "2026-11-25", from: t0.Add(48 * time.Hour), to: t0.Add(72 * time.Hour),
			want: map[string]any{absent: true},
		},
		{
			name: "a case counts on the day it was raised: the day group",
			given: func(w *world) {
				id := w.raise("longqiao", "wanhui", "manhole-cover", domain.UrgencyRoutine)
				w.advance(49*time.Hour).must(id, domain.Report{Assignee: "urban-management"})
				w.must(id, domain.Resolve{Assignee: "urban-management"}).must(id, domain.Verify{Accepted: true})
			},
			groupBy: "day", key: "2026-11-23", from: t0, to: t0.Add(time.Hour),
			want: map[string]any{"raised": 1, "closed": 1, "assignments": 1, "reported_on_time": 0, "median_close_seconds": minutes(49 * 60)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, 7)
			tc.given(w)
			s := statsOf(t, w)
			from, to := tc.from, tc.to
			if from.IsZero() {
				from, to = t0, t0.Add(7*24*time.Hour)
			}
			got, ok := groupOf(t, s, tc.groupBy, tc.key, from, to)
			if tc.want[absent] == true {
				if ok {
					t.Fatalf("group %s=%s: %v, want none", tc.groupBy, tc.key, got)
				}
				return
			}
			if !ok {
				t.Fatalf("no group %s=%s", tc.groupBy, tc.key)
			}
			checkGroup(t, got, tc.want)
		})
	}
}

// checkGroup compares a group's fields with want's (a nil want: the field
// is null), times within the histograms' relative error.
func checkGroup(t *testing.T, got, want map[string]any) {
	t.Helper()
	for field, w := range want {
		if field == absent {
			continue
		}
		g, present := got[field]
		if !present {
			t.Errorf("%s: missing from the group", field)
			continue
		}
		if w == nil || g == nil {
			if w != g {
				t.Errorf("%s: got %v, want %v", field, g, w)
			}
			continue
		}
		wf := toFloat(w)
		gf := g.(float64)
		tol := 1e-9
		if strings.HasSuffix(field, "_seconds") {
			tol = histAlpha*wf + 0.001
		}
		if math.Abs(gf-wf) > tol {
			t.Errorf("%s: got %v, want %v", field, gf, wf)
		}
	}
}

func toFloat(v any) float64 {
	switch v := v.(type) {
	case int:
		return float64(v)
	case float64:
		return v
	}
	panic("not a number")
}

func TestQueryWindowIsWholeDays(t *testing.T) {
	w := newWorld(t, 1)
	w.raise("longqiao", "wanhui", "manhole-cover", domain.UrgencyRoutine) // 08:00 UTC on the 23rd, 16:00 in Shanghai
	s := statsOf(t, w)
	// From noon to noon UTC (20:00 to 20:00 in Shanghai) touches the 23rd
	// and the 24th of the figures' zone, whole.
	res, err := s.Query("street", t0.Add(4*time.Hour), t0.Add(28*time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Groups) != 1 || res.Groups[0].Raised != 1 {
		t.Fatalf("groups %+v, want the case of the 23rd", res.Groups)
	}
	if want := time.Date(2026, 11, 23, 0, 0, 0, 0, figuresZone); !res.From.Equal(want) {
		t.Errorf("from %s, want %s", res.From, want)
	}
	if want := time.Date(2026, 11, 25, 0, 0, 0, 0, figuresZone); !res.To.Equal(want) {
		t.Errorf("to %s, want %s", res.To, want)
	}
	// A window ending at midnight of the 23rd holds nothing of the 23rd.
	res, _ = s.Query("street", t0.Add(-32*time.Hour), time.Date(2026, 11, 23, 0, 0, 0, 0, figuresZone), nil)
	if len(res.Groups) != 0 {
		t.Errorf("groups %+v, want none before the 23rd", res.Groups)
	}
	// Unbounded on both sides: everything, with null bounds.
	res, _ = s.Query("street", time.Time{}, time.Time{}, nil)
	if len(res.Groups) != 1 || res.From != nil || res.To != nil {
		t.Errorf("unbounded: %+v", res)
	}
	b, _ := json.Marshal(res)
	for _, field := range []string{`"group_by":"street"`, `"from":null`, `"to":null`, `"groups":[{"key":"longqiao"`, `"closure_rate":0`, `"satisfaction_rate":null`} {
		if !strings.Contains(string(b), field) {
			t.Errorf("JSON %s lacks %s", b, field)
		}
	}
}

func TestQueryRefusesBadParameters(t *testing.T) {
	s := newStats(t)
	_, err := s.Query("district", time.Time{}, time.Time{}, nil)
	if !errors.Is(err, ErrBadQuery) || !strings.Contains(err.Error(), `"district"`) {
		t.Errorf("group_by district: %v, want ErrBadQuery naming it", err)
	}
	_, err = s.Query("street", t0, t0.Add(-time.Second), nil)
	if !errors.Is(err, ErrBadQuery) {
		t.Errorf("from after to: %v, want ErrBadQuery", err)
	}
	for _, g := range GroupBys() {
		if _, err := s.Query(g, time.Time{}, time.Time{}, nil); err != nil {
			t.Errorf("group_by %s: %v", g, err)
		}
	}
}

func TestQueryFilterAndOrder(t *testing.T) {
	w := simulate(t, 3, 300)
	s := statsOf(t, w)
	res, err := s.Query("assignee", time.Time{}, time.Time{}, func(k string) bool { return strings.HasSuffix(k, "-bureau") })
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Groups) == 0 {
		t.Fatal("no bureau groups")
	}
	for i, g := range res.Groups {
		if !strings.HasSuffix(g.Key, "-bureau") {
			t.Errorf("filter let %s through", g.Key)
		}
		if i > 0 && res.Groups[i-1].Key >= g.Key {
			t.Errorf("groups not sorted: %s before %s", res.Groups[i-1].Key, g.Key)
		}
	}
}

func TestNewStatsValidatesWeights(t *testing.T) {
	for _, bad := range []map[string]float64{
		{"satisfied": 1, "basically_satisfied": 0.9},
		{"satisfied": 1, "basically_satisfied": 1.5, "unsatisfied": 0},
		{"satisfied": 1, "basically_satisfied": 0.9, "unsatisfied": 0, "delighted": 1},
	} {
		if _, err := NewStats(bad, nil); err == nil {
			t.Errorf("weights %v accepted", bad)
		}
	}
	s, err := NewStats(map[string]float64{"satisfied": 1, "basically_satisfied": 0.5, "unsatisfied": 0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, 1)
	id := w.raise("longqiao", "wanhui", "manhole-cover", domain.UrgencyRoutine)
	w.must(id, domain.Report{Assignee: "urban-management"}).must(id, domain.Resolve{Assignee: "urban-management"})
	w.must(id, domain.Verify{Accepted: true}).must(id, domain.Rate{Rating: "basically_satisfied"})
	for _, env := range w.envelopes() {
		if err := applyOne(s, env); err != nil {
			t.Fatal(err)
		}
	}
	res, _ := s.Query("street", time.Time{}, time.Time{}, nil)
	if got := *res.Groups[0].SatisfactionRate; got != 0.5 {
		t.Errorf("satisfaction %v with weight 0.5", got)
	}
}

// TestStatsMatchesReference: the figures of a random log of several hundred
// events equal a recount written separately, for every grouping and for
// several windows.
func TestStatsMatchesReference(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 4} {
		w := simulate(t, seed, 500)
		envs := w.envelopes()
		s := statsOf(t, w)
		ref := recount(t, envs)
		last := w.now
		windows := [][2]time.Time{
			{t0.Add(-24 * time.Hour), last.Add(24 * time.Hour)},
			{t0, t0.Add(24 * time.Hour)},
			{t0.Add(30 * time.Hour), t0.Add(80 * time.Hour)},
			{t0.Add(2*24*time.Hour + 5*time.Hour), t0.Add(2*24*time.Hour + 7*time.Hour)},
		}
		for _, g := range GroupBys() {
			for _, win := range windows {
				got, err := s.Query(g, win[0], win[1], nil)
				if err != nil {
					t.Fatal(err)
				}
				label := "seed " + string(rune('0'+seed)) + " " + g + " " + win[0].Format(time.RFC3339) + "…" + win[1].Format(time.RFC3339)
				checkAgainstReference(t, label, got, refQuery(ref, g, win[0], win[1], DefaultSatisfactionWeights()))
			}
		}
	}
}

// TestStatsKeepsClosedCasesSmall: a closed case, rated or not, keeps only a
// small record (callbacks, ratings and a second round may still come), of
// one shared profile.
func TestStatsKeepsClosedCasesSmall(t *testing.T) {
	w := newWorld(t, 1)
	a := w.raise("longqiao", "wanhui", "river-pollution", domain.UrgencyRoutine)
	b := w.raise("longqiao", "wanhui", "river-pollution", domain.UrgencyRoutine)
	for _, id := range []string{a, b} {
		w.must(id, domain.Report{Assignee: "ecology-bureau"}).must(id, domain.Resolve{Assignee: "ecology-bureau"})
		w.must(id, domain.Verify{Accepted: true})
	}
	w.must(a, domain.Rate{Rating: "satisfied"})
	s := statsOf(t, w)
	if len(s.open) != 0 {
		t.Errorf("%d open cases kept, want 0", len(s.open))
	}
	if _, ok := s.closed[b]; !ok || len(s.closed) != 2 {
		t.Errorf("closed records %v, want both", s.closed)
	}
	if len(s.profiles) != 1 {
		t.Errorf("%d profiles for two cases of the same keys, want 1", len(s.profiles))
	}
	// The late rating still counts, and the record stays.
	w.must(b, domain.Rate{Rating: "unsatisfied"})
	last := w.commits[len(w.commits)-1]
	if err := s.ApplyCommit(last.pos, last.events, nil); err != nil {
		t.Fatal(err)
	}
	if len(s.closed) != 2 {
		t.Errorf("closed records %v after the rating, want both", s.closed)
	}
	res, _ := s.Query("assignee", time.Time{}, time.Time{}, nil)
	for _, g := range res.Groups {
		if g.Ratings != 2 || *g.SatisfactionRate != 0.5 {
			t.Errorf("%s: %d ratings, satisfaction %v; want 2 and 0.5", g.Key, g.Ratings, *g.SatisfactionRate)
		}
	}
}

// TestStatsRedeliveryAndGaps: a redelivered event of a case still held, or a
// redelivered commit, changes nothing; a gap is refused and changes nothing.
func TestStatsRedeliveryAndGaps(t *testing.T) {
	w := simulate(t, 5, 300)
	want := statsOf(t, w)

	// Every event twice in a row, through Apply. A rating finishes its case,
	// so its redelivery is refused as an unknown case; nothing else is.
	s := newStats(t)
	for _, env := range w.envelopes() {
		if err := applyOne(s, env); err != nil {
			t.Fatal(err)
		}
		err := applyOne(s, env)
		if err != nil && !(env.Type == domain.TypeSatisfactionRated && errors.Is(err, ErrUnknownCase)) {
			t.Fatalf("redelivered %s: %v", env.Type, err)
		}
	}
	s.pos = want.pos
	if d := Diff(want, s); len(d) > 0 {
		t.Fatalf("redelivery changed the figures:\n%s", strings.Join(d, "\n"))
	}

	// Every commit twice, through ApplyCommit: the position skips them.
	s = newStats(t)
	for _, c := range w.commits {
		for range 2 {
			if err := s.ApplyCommit(c.pos, c.events, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if d := Diff(want, s); len(d) > 0 {
		t.Fatalf("redelivered commits changed the figures:\n%s", strings.Join(d, "\n"))
	}

	// A gap.
	w2 := newWorld(t, 9)
	id := w2.raise("longqiao", "wanhui", "manhole-cover", domain.UrgencyRoutine)
	w2.must(id, domain.Report{Assignee: "urban-management"})
	envs := w2.envelopes()
	s = newStats(t)
	if err := applyOne(s, envs[0]); err != nil {
		t.Fatal(err)
	}
	before, _ := s.MarshalBinary()
	if err := applyOne(s, envs[2]); !errors.Is(err, ErrVersionGap) {
		t.Errorf("gap: %v, want ErrVersionGap", err)
	}
	if err := applyOne(s, domain.Envelope{CaseID: "nope", Type: domain.TypeCaseClosed, Version: 3, Data: []byte(`{}`)}); !errors.Is(err, ErrUnknownCase) {
		t.Errorf("unknown case: %v, want ErrUnknownCase", err)
	}
	if err := applyOne(s, domain.Envelope{CaseID: "nope", Type: "CaseReopened", Version: 3}); err == nil {
		t.Error("an unknown event type was accepted")
	}
	after, _ := s.MarshalBinary()
	if string(before) != string(after) {
		t.Error("a refused event changed the state")
	}
}

// TestStatsRestartMidway: for random logs and random cut points, a model
// snapshotted and restored midway, then fed the rest, equals one fed
// everything: no figure changes with a restart.
func TestStatsRestartMidway(t *testing.T) {
	for seed := uint64(10); seed < 16; seed++ {
		w := simulate(t, seed, 300)
		want := statsOf(t, w)
		wantBytes, err := want.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		for _, cut := range []int{0, 1, len(w.commits) / 3, len(w.commits) / 2, len(w.commits) - 1, len(w.commits)} {
			first := newStats(t)
			for _, c := range w.commits[:cut] {
				if err := first.ApplyCommit(c.pos, c.events, nil); err != nil {
					t.Fatal(err)
				}
			}
			snap, err := first.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			resumed := newStats(t)
			if err := resumed.UnmarshalBinary(snap); err != nil {
				t.Fatalf("seed %d cut %d: restore: %v", seed, cut, err)
			}
			if resumed.Position() != uint64(cut) {
				t.Errorf("seed %d cut %d: restored position %d", seed, cut, resumed.Position())
			}
			// The subscription resumes after the snapshot's position; a
			// redelivery of everything is skipped by position too.
			for _, c := range w.commits {
				if err := resumed.ApplyCommit(c.pos, c.events, nil); err != nil {
					t.Fatal(err)
				}
			}
			if d := Diff(want, resumed); len(d) > 0 {
				t.Fatalf("seed %d cut %d: restart changed the state:\n%s", seed, cut, strings.Join(d, "\n"))
			}
			got, _ := resumed.MarshalBinary()
			if string(got) != string(wantBytes) {
				t.Fatalf("seed %d cut %d: snapshots differ", seed, cut)
			}
			for _, g := range GroupBys() {
				a, _ := want.Query(g, time.Time{}, time.Time{}, nil)
				b, _ := resumed.Query(g, time.Time{}, time.Time{}, nil)
				ja, _ := json.Marshal(a)
				jb, _ := json.Marshal(b)
				if string(ja) != string(jb) {
					t.Fatalf("seed %d cut %d: %s figures differ after restart", seed, cut, g)
				}
			}
			for _, street := range []string{"longqiao", "donghai"} {
				for _, g := range StreetGroupBys() {
					a, _ := want.QueryStreet(street, g, time.Time{}, time.Time{})
					b, _ := resumed.QueryStreet(street, g, time.Time{}, time.Time{})
					ja, _ := json.Marshal(a)
					jb, _ := json.Marshal(b)
					if string(ja) != string(jb) {
						t.Fatalf("seed %d cut %d: %s's figures by %s differ after restart", seed, cut, street, g)
					}
				}
			}
		}
	}
}

func TestStatsSnapshotRefusesGarbage(t *testing.T) {
	w := simulate(t, 2, 100)
	s := statsOf(t, w)
	good, _ := s.MarshalBinary()
	for name, data := range map[string]string{
		"not json":       "{",
		"other format":   strings.Replace(string(good), statsFormat, "whistle-stats/0", 1),
		"unknown count":  strings.Replace(string(good), `"raised"`, `"razed"`, 1),
		"bad day":        strings.Replace(string(good), `"day":"2026-11-23"`, `"day":"23/11/2026"`, 1),
		"missing bucket": `{"format":"` + statsFormat + `","position":1,"buckets":[],"open":[{"case_id":"x","version":1,"raised_at":"2026-11-23T08:00:00Z","street":"longqiao"}],"closed":[]}`,
	} {
		fresh := newStats(t)
		if err := fresh.UnmarshalBinary([]byte(data)); !errors.Is(err, ErrBadSnapshot) {
			t.Errorf("%s: %v, want ErrBadSnapshot", name, err)
		}
		if got, _ := fresh.MarshalBinary(); !strings.Contains(string(got), `"buckets":[]`) {
			t.Errorf("%s: a refused snapshot changed the state", name)
		}
	}
}

func TestDiffStatsNamesEveryDifference(t *testing.T) {
	w := newWorld(t, 1)
	id := w.raise("longqiao", "wanhui", "manhole-cover", domain.UrgencyRoutine)
	w.advance(10*time.Minute).must(id, domain.Report{Assignee: "urban-management"})
	w.must(id, domain.Resolve{Assignee: "urban-management"}).must(id, domain.Verify{Accepted: true})
	live := statsOf(t, w)
	replay := newStats(t)
	envs := w.envelopes()
	for _, env := range envs[:len(envs)-1] { // the replay misses the closure
		if err := replay.ApplyCommit(1000+replay.Position(), []domain.Envelope{env}, nil); err != nil {
			t.Fatal(err)
		}
	}
	d := Diff(live, replay)
	joined := strings.Join(d, "\n")
	for _, want := range []string{
		fmt.Sprintf("stats position: live 4, replay %d", replay.Position()),
		"stats street=longqiao day=2026-11-23 closed: live 1, replay 0",
		"stats assignee=urban-management day=2026-11-23 closed_on_time: live 1, replay 0",
		"stats street_category=longqiao/manhole-cover day=2026-11-23 closed: live 1, replay 0",
		"stats street_urgency=longqiao/routine day=2026-11-23 close_seconds near",
		"stats day=2026-11-23 day=2026-11-23 close_seconds near",
		"stats open case " + id + ": live none, replay {",
		"stats closed case awaiting rating " + id + ": live {",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("diff lacks %q:\n%s", want, joined)
		}
	}
	if d := Diff(live, live); len(d) != 0 {
		t.Errorf("a model differs from itself: %v", d)
	}
}

// TestStatsConcurrentUse: one writer, several readers (run with -race).
func TestStatsConcurrentUse(t *testing.T) {
	w := simulate(t, 6, 200)
	s := newStats(t)
	var wg sync.WaitGroup
	done := make(chan struct{})
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := s.Query("assignee", time.Time{}, time.Time{}, nil); err != nil {
					t.Error(err)
					return
				}
				_, _ = s.MarshalBinary()
			}
		})
	}
	for _, c := range w.commits {
		if err := s.ApplyCommit(c.pos, c.events, nil); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	if !s.Reached(uint64(len(w.commits))) || s.Reached(uint64(len(w.commits)+1)) {
		t.Errorf("position %d after %d commits", s.Position(), len(w.commits))
	}
}

// windowDirect sums a series' day buckets in [lo, hi) one by one.
func windowDirect(sr *series, lo, hi int32) (counts, *histAcc, *histAcc) {
	var n counts
	report, closing := newHistAcc(), newHistAcc()
	for k, d := range sr.days {
		if d >= lo && d < hi {
			b := sr.buckets[k]
			for j, v := range b.n {
				n[j] += v
			}
			report.merge(&b.report, 1)
			closing.merge(&b.close, 1)
		}
	}
	return n, report, closing
}

// TestTreeAgreesWithDayBuckets: for every key and every window, the Fenwick
// tree's prefix difference equals merging the day buckets one by one, also
// when cases arrive out of day order (the tree is rebuilt on an earlier
// base) and after a restore (the tree is rebuilt from the snapshot).
func TestTreeAgreesWithDayBuckets(t *testing.T) {
	w := simulate(t, 8, 400)
	// Cases raised on earlier days, after the rest: the log is in log order,
	// not in day order.
	for _, back := range []int{3, 40, 1, 90} {
		w.now = t0.Add(-time.Duration(back) * 24 * time.Hour)
		id := w.raise("donghai", "dongyuan", "manhole-cover", domain.UrgencyRoutine)
		w.advance(time.Hour).must(id, domain.Report{Assignee: "urban-management"})
		w.must(id, domain.Resolve{Assignee: "urban-management"}).must(id, domain.Verify{Accepted: true})
	}
	live := statsOf(t, w)
	snap, _ := live.MarshalBinary()
	restored := newStats(t)
	if err := restored.UnmarshalBinary(snap); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Stats{live, restored} {
		for d := range numDims {
			for key, sr := range s.series[d] {
				first, last := sr.days[0]-1, sr.days[len(sr.days)-1]+2
				for lo := first; lo < last; lo++ {
					for hi := lo; hi <= last; hi++ {
						want, wr, wc := windowDirect(sr, lo, hi)
						var got counts
						gr, gc := newHistAcc(), newHistAcc()
						sr.tree.addPrefix(int64(hi), 1, &got, gr, gc)
						sr.tree.addPrefix(int64(lo), -1, &got, gr, gc)
						if got != want {
							t.Fatalf("%s=%s [%s, %s): tree %v, days %v", dimNames[d], key, dayKey(lo), dayKey(hi), got, want)
						}
						for _, q := range []float64{0.1, 0.5, 0.9, 1} {
							if !closeTo(gr.quantile(q), wr.quantile(q), 0, 0) || !closeTo(gc.quantile(q), wc.quantile(q), 0, 0) {
								t.Fatalf("%s=%s [%s, %s): quantile %v differs", dimNames[d], key, dayKey(lo), dayKey(hi), q)
							}
						}
					}
				}
			}
		}
	}
}

// TestStatsMatchesReferenceOverAYear: windows of a month, a quarter and a
// year, aligned or not, over a year of cases.
func TestStatsMatchesReferenceOverAYear(t *testing.T) {
	w := yearWorld(t, 2)
	s := statsOf(t, w)
	ref := recount(t, w.envelopes())
	day := 24 * time.Hour
	windows := [][2]time.Time{
		{t0, t0.Add(365 * day)},
		{t0.Add(-10 * day), t0.Add(400 * day)},
		{t0.Add(38*day + 7*time.Hour), t0.Add(69*day + time.Hour)},
		{t0.Add(100 * day), t0.Add(191 * day)},
		{t0.Add(200 * day), t0.Add(201 * day)},
	}
	for _, g := range GroupBys() {
		for _, win := range windows {
			got, err := s.Query(g, win[0], win[1], nil)
			if err != nil {
				t.Fatal(err)
			}
			checkAgainstReference(t, g+" "+win[0].Format(time.DateOnly)+"…"+win[1].Format(time.DateOnly), got, refQuery(ref, g, win[0], win[1], DefaultSatisfactionWeights()))
		}
	}
}

// TestQueryDaysSplitsOneKeyByDay: a key's day series holds, for each day,
// exactly what Query counts for that key over that day alone, and nothing of
// any other key.
func TestQueryDaysSplitsOneKeyByDay(t *testing.T) {
	w := simulate(t, 5, 500)
	s := statsOf(t, w)
	for _, g := range []string{"street", "community", "assignee", "category"} {
		all, err := s.Query(g, time.Time{}, time.Time{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, total := range all.Groups {
			days, err := s.QueryDays(g, total.Key, time.Time{}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if days.GroupBy != "day" || len(days.Groups) < 2 {
				t.Fatalf("%s %s: %d days grouped by %q; the fixture spans several days", g, total.Key, len(days.Groups), days.GroupBy)
			}
			var raised, closed, assignments int64
			for _, day := range days.Groups {
				start, err := time.ParseInLocation("2006-01-02", day.Key, figuresZone)
				if err != nil {
					t.Fatalf("day key %q: %v", day.Key, err)
				}
				one, err := s.Query(g, start, start.AddDate(0, 0, 1), func(k string) bool { return k == total.Key })
				if err != nil || len(one.Groups) != 1 {
					t.Fatalf("%s %s on %s: %v, %d groups", g, total.Key, day.Key, err, len(one.Groups))
				}
				want := one.Groups[0]
				want.Key = day.Key
				gotJSON, _ := json.Marshal(day)
				wantJSON, _ := json.Marshal(want)
				if string(gotJSON) != string(wantJSON) {
					t.Fatalf("%s %s on %s:\nday series %s\nquery      %s", g, total.Key, day.Key, gotJSON, wantJSON)
				}
				raised, closed, assignments = raised+day.Raised, closed+day.Closed, assignments+day.Assignments
			}
			if raised != total.Raised || closed != total.Closed || assignments != total.Assignments {
				t.Fatalf("%s %s: days sum to raised %d closed %d assignments %d, the whole to %d %d %d",
					g, total.Key, raised, closed, assignments, total.Raised, total.Closed, total.Assignments)
			}
		}
	}
	if _, err := s.QueryDays("day", "2026-01-01", time.Time{}, time.Time{}); !errors.Is(err, ErrBadQuery) {
		t.Fatalf("day by day: %v, want ErrBadQuery", err)
	}
	none, err := s.QueryDays("street", "nowhere", time.Time{}, time.Time{})
	if err != nil || len(none.Groups) != 0 {
		t.Fatalf("unknown key: %v, %d groups", err, len(none.Groups))
	}
}

// TestDaysAreTheCalendarsDays: a case raised at 17:00 UTC on 1 December is
// raised at 01:00 on the 2nd in Shanghai, and counts on the 2nd; figures
// counted in UTC would put it on the 1st.
func TestDaysAreTheCalendarsDays(t *testing.T) {
	w := newWorld(t, 1)
	w.now = time.Date(2026, 12, 1, 17, 0, 0, 0, time.UTC)
	w.raise("longqiao", "wanhui", "manhole-cover", domain.UrgencyRoutine)
	for _, tc := range []struct {
		zone *time.Location
		day  string
	}{{figuresZone, "2026-12-02"}, {time.UTC, "2026-12-01"}} {
		s, err := NewStats(nil, tc.zone)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range w.commits {
			if err := s.ApplyCommit(c.pos, c.events, nil); err != nil {
				t.Fatal(err)
			}
		}
		byDay, err := s.Query("day", time.Time{}, time.Time{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(byDay.Groups) != 1 || byDay.Groups[0].Key != tc.day || byDay.Groups[0].Raised != 1 {
			t.Errorf("%s: by day %+v, want one case on %s", tc.zone, byDay.Groups, tc.day)
		}
		// A window of that day, given as the day's midnight in the zone, holds it.
		from, _ := time.ParseInLocation(time.DateOnly, tc.day, tc.zone)
		one, err := s.Query("street", from, from.AddDate(0, 0, 1), nil)
		if err != nil || len(one.Groups) != 1 || one.Groups[0].Raised != 1 {
			t.Errorf("%s: the window of %s holds %+v, %v", tc.zone, tc.day, one.Groups, err)
		}
		if !one.From.Equal(from) || one.From.Location() != tc.zone {
			t.Errorf("%s: from %s, want %s", tc.zone, one.From, from)
		}
	}
}

// A snapshot counts days in one zone: figures of another zone, or of format
// 2 (UTC days), refuse it, and their owner folds the log again.
func TestSnapshotOfAnotherZoneIsRefused(t *testing.T) {
	w := simulate(t, 3, 60)
	s := statsOf(t, w)
	snap, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	utc, err := NewStats(nil, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"another zone": snap,
		"format 2":     []byte(strings.Replace(string(snap), statsFormat, "whistle-stats/2", 1)),
	} {
		for how, restore := range map[string]func([]byte) error{
			"whole":    utc.UnmarshalBinary,
			"streamed": func(b []byte) error { return utc.ReadSnapshot(json.NewDecoder(bytes.NewReader(b)), nil) },
		} {
			err := restore(data)
			if !errors.Is(err, ErrBadSnapshot) || !strings.Contains(err.Error(), "UTC") {
				t.Errorf("%s, %s: %v; want ErrBadSnapshot naming UTC", name, how, err)
			}
		}
	}
	if utc.Position() != 0 {
		t.Errorf("a refused snapshot moved the figures to position %d", utc.Position())
	}
	same := newStats(t)
	if err := same.UnmarshalBinary(snap); err != nil || same.Position() != s.Position() {
		t.Errorf("the same zone restores: %v at %d", err, same.Position())
	}
}
