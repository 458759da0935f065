package projections

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/whistle-gov/whistle/domain"
)

// streetGroupOf is groupOf for QueryStreet.
func streetGroupOf(t *testing.T, s *Stats, street, groupBy, key string, from, to time.Time) (map[string]any, bool) {
	t.Helper()
	res, err := s.QueryStreet(street, groupBy, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if res.GroupBy != groupBy {
		t.Fatalf("QueryStreet(%s, %s) answers group_by %q", street, groupBy, res.GroupBy)
	}
	return findGroup(t, res, key)
}

// TestStreetFigures gives events (through domain commands) and expects a
// street's own figures by category or urgency: its cases only, whatever
// the other street did with the same category or urgency.
func TestStreetFigures(t *testing.T) {
	minutes := func(m float64) float64 { return m * 60 }
	// twoStreets: longqiao has two river-pollution cases (one closed after
	// 3h20m, one open and overdue for water-bureau) and a manhole cover;
	// donghai has one river-pollution case, closed after 10h and rated.
	twoStreets := func(w *world) {
		a := w.raise("longqiao", "wanhui", "river-pollution", domain.UrgencyRoutine)
		b := w.raise("longqiao", "xiazhu", "river-pollution", domain.UrgencyUrgent)
		w.raise("longqiao", "wanhui", "manhole-cover", domain.UrgencyRoutine)
		d := w.raise("donghai", "dongyuan", "river-pollution", domain.UrgencyUrgent)
		w.advance(10*time.Minute).must(a, domain.Report{Assignee: "ecology-bureau"}).must(a, domain.Report{Assignee: "water-bureau"})
		w.must(b, domain.Report{Assignee: "ecology-bureau"})
		w.must(d, domain.Report{Assignee: "ecology-bureau"}).must(d, domain.Report{Assignee: "water-bureau"})
		w.advance(10 * time.Minute).checkAll() // b: water-bureau missed its 15m; the manhole cover is within its 30m
		w.advance(3*time.Hour).must(a, domain.Resolve{Assignee: "ecology-bureau"}).must(a, domain.Verify{Accepted: true})
		w.advance(6*time.Hour+40*time.Minute).must(d, domain.Resolve{Assignee: "ecology-bureau"}).must(d, domain.Verify{Accepted: true})
		w.must(d, domain.Rate{Rating: "unsatisfied"})
	}
	tests := []struct {
		name     string
		given    func(w *world)
		street   string
		groupBy  string
		key      string
		from, to time.Time // zero: the first week
		want     map[string]any
	}{
		{
			name: "a street's own river pollution: its two cases, not the other street's", given: twoStreets,
			street: "longqiao", groupBy: "category", key: "river-pollution",
			want: map[string]any{
				"raised": 2, "closed": 1, "closed_on_time": 1, "closure_rate": 0.5, "on_time_closure_rate": 0.5,
				"assignments": 4, "reported_on_time": 3, "response_rate": 0.75, "ratings": 0, "satisfaction_rate": nil,
				"median_close_seconds": minutes(200), "p90_close_seconds": minutes(200), "overdue": 1, "escalations": 1,
			},
		},
		{
			name: "the other street's river pollution: its one case", given: twoStreets,
			street: "donghai", groupBy: "category", key: "river-pollution",
			want: map[string]any{
				"raised": 1, "closed": 1, "closure_rate": 1, "assignments": 2, "reported_on_time": 2, "overdue": 0, "escalations": 0,
				"ratings": 1, "satisfaction_rate": 0, "median_close_seconds": minutes(600),
			},
		},
		{
			name: "a category only the other street raised is not in a street's groups", given: twoStreets,
			street: "donghai", groupBy: "category", key: "manhole-cover",
			want: map[string]any{absent: true},
		},
		{
			name: "a street's own figures by urgency", given: twoStreets,
			street: "longqiao", groupBy: "urgency", key: "urgent",
			want: map[string]any{"raised": 1, "closed": 0, "assignments": 2, "reported_on_time": 1, "overdue": 1, "escalations": 1},
		},
		{
			name: "the other street's urgent cases", given: twoStreets,
			street: "donghai", groupBy: "urgency", key: "urgent",
			want: map[string]any{"raised": 1, "closed": 1, "ratings": 1, "overdue": 0},
		},
		{
			name: "a street that raised nothing has no groups", given: twoStreets,
			street: "nowhere", groupBy: "category", key: "river-pollution",
			want: map[string]any{absent: true},
		},
		{
			name: "a rating after closure counts within the street (the case is forgotten meanwhile)",
			given: func(w *world) {
				id := w.raise("donghai", "dongyuan", "neighbour-dispute", domain.UrgencyRoutine)
				w.advance(time.Hour).must(id, domain.Report{Assignee: "judicial-office"})
				w.must(id, domain.Resolve{Assignee: "judicial-office", Mediation: "success"}).must(id, domain.Verify{Accepted: true})
				w.advance(48*time.Hour).must(id, domain.Rate{Rating: "basically_satisfied"})
				other := w.raise("longqiao", "wanhui", "neighbour-dispute", domain.UrgencyRoutine)
				w.must(other, domain.Report{Assignee: "judicial-office"})
				w.must(other, domain.Resolve{Assignee: "judicial-office", Mediation: "failure"}).must(other, domain.Verify{Accepted: true})
				w.must(other, domain.Rate{Rating: "unsatisfied"})
			},
			street: "donghai", groupBy: "category", key: "neighbour-dispute",
			want: map[string]any{
				"raised": 1, "closed": 1, "disputes_resolved": 1, "disputes_success": 1, "mediation_success_rate": 1,
				"ratings": 1, "satisfaction_rate": 0.9,
			},
		},
		{
			name: "a need claimed counts as an assignment reported in at once",
			given: func(w *world) {
				id := w.raise("longqiao", "wanhui", "after-school-care", domain.UrgencyRoutine)
				w.advance(5*time.Minute).must(id, domain.Claim{Assignee: "city-hospital"})
				w.raise("donghai", "dongyuan", "after-school-care", domain.UrgencyRoutine)
			},
			street: "longqiao", groupBy: "category", key: "after-school-care",
			want: map[string]any{"raised": 1, "assignments": 1, "reported_on_time": 1, "response_rate": 1, "median_report_seconds": 0},
		},
		{
			name: "a window is whole days: a case raised on another day is not counted",
			given: func(w *world) {
				w.raise("longqiao", "wanhui", "manhole-cover", domain.UrgencyRoutine)
				w.advance(24*time.Hour).raise("longqiao", "wanhui", "manhole-cover", domain.UrgencyRoutine)
				w.raise("donghai", "dongyuan", "manhole-cover", domain.UrgencyRoutine)
			},
			street: "longqiao", groupBy: "category", key: "manhole-cover", from: t0.Add(20 * time.Hour), to: t0.Add(21 * time.Hour),
			want: map[string]any{"raised": 1},
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
			got, ok := streetGroupOf(t, s, tc.street, tc.groupBy, tc.key, from, to)
			if tc.want[absent] == true {
				if ok {
					t.Fatalf("group %s=%s within %s: %v, want none", tc.groupBy, tc.key, tc.street, got)
				}
				return
			}
			if !ok {
				t.Fatalf("no group %s=%s within %s", tc.groupBy, tc.key, tc.street)
			}
			checkGroup(t, got, tc.want)
		})
	}
}

// casesOf keeps the reference's cases of one street: the reference for a
// street's own figures counts nothing else.
func casesOf(cases map[string]*refCase, street string) map[string]*refCase {
	out := map[string]*refCase{}
	for id, c := range cases {
		if c.street == street {
			out[id] = c
		}
	}
	return out
}

// TestStreetFiguresMatchReference: for random logs over both streets, a
// street's figures by category and by urgency equal a recount of that
// street's cases alone, for several windows; and the streets' groups add
// up to the global category and urgency groups, so no case is counted in
// another street or left out.
func TestStreetFiguresMatchReference(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 4} {
		w := simulate(t, seed, 500)
		s := statsOf(t, w)
		ref := recount(t, w.envelopes())
		last := w.now
		windows := [][2]time.Time{
			{t0.Add(-24 * time.Hour), last.Add(24 * time.Hour)},
			{t0, t0.Add(24 * time.Hour)},
			{t0.Add(30 * time.Hour), t0.Add(80 * time.Hour)},
		}
		streets := []string{"longqiao", "donghai"}
		for _, street := range streets {
			own := casesOf(ref, street)
			if len(own) == 0 || len(own) == len(ref) {
				t.Fatalf("seed %d: %d of %d cases in %s; the fixture needs cases in both streets", seed, len(own), len(ref), street)
			}
			for _, g := range StreetGroupBys() {
				for _, win := range windows {
					got, err := s.QueryStreet(street, g, win[0], win[1])
					if err != nil {
						t.Fatal(err)
					}
					label := "seed " + string(rune('0'+seed)) + " " + street + " by " + g + " " + win[0].Format(time.RFC3339) + "…" + win[1].Format(time.RFC3339)
					checkAgainstReference(t, label, got, refQuery(own, g, win[0], win[1], DefaultSatisfactionWeights()))
				}
			}
		}
		for _, g := range StreetGroupBys() {
			whole, err := s.Query(g, time.Time{}, time.Time{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			sum := map[string]int64{}
			for _, street := range streets {
				res, _ := s.QueryStreet(street, g, time.Time{}, time.Time{})
				for _, grp := range res.Groups {
					sum[grp.Key] += grp.Raised*1_000_000 + grp.Assignments*1_000 + grp.Closed
				}
			}
			for _, grp := range whole.Groups {
				if want := grp.Raised*1_000_000 + grp.Assignments*1_000 + grp.Closed; sum[grp.Key] != want {
					t.Errorf("seed %d %s=%s: the streets add up to %d (raised·10⁶+assignments·10³+closed), the whole is %d", seed, g, grp.Key, sum[grp.Key], want)
				}
				delete(sum, grp.Key)
			}
			if len(sum) > 0 {
				t.Errorf("seed %d: streets have %s groups the whole lacks: %v", seed, g, sum)
			}
		}
	}
}

// TestStreetFiguresMatchReferenceOverAYear: a street's figures over windows
// of a year, a quarter and a day, from the day buckets' trees.
func TestStreetFiguresMatchReferenceOverAYear(t *testing.T) {
	w := yearWorld(t, 2)
	s := statsOf(t, w)
	ref := recount(t, w.envelopes())
	day := 24 * time.Hour
	windows := [][2]time.Time{
		{t0, t0.Add(365 * day)},
		{t0.Add(100 * day), t0.Add(191 * day)},
		{t0.Add(200*day + 3*time.Hour), t0.Add(201 * day)},
	}
	for _, street := range []string{"longqiao", "donghai"} {
		own := casesOf(ref, street)
		for _, g := range StreetGroupBys() {
			for _, win := range windows {
				got, err := s.QueryStreet(street, g, win[0], win[1])
				if err != nil {
					t.Fatal(err)
				}
				checkAgainstReference(t, street+" by "+g+" "+win[0].Format(time.DateOnly)+"…"+win[1].Format(time.DateOnly), got, refQuery(own, g, win[0], win[1], DefaultSatisfactionWeights()))
			}
		}
	}
}

func TestQueryStreetRefusesBadParameters(t *testing.T) {
	s := statsOf(t, simulate(t, 2, 100))
	for _, g := range []string{"street", "community", "assignee", "day", "street_category", ""} {
		if _, err := s.QueryStreet("longqiao", g, time.Time{}, time.Time{}); !errors.Is(err, ErrBadQuery) || !strings.Contains(err.Error(), `"`+g+`"`) {
			t.Errorf("QueryStreet by %q: %v, want ErrBadQuery naming it", g, err)
		}
	}
	if _, err := s.QueryStreet("longqiao", "category", t0, t0.Add(-time.Second)); !errors.Is(err, ErrBadQuery) {
		t.Errorf("from after to: %v, want ErrBadQuery", err)
	}
	// The breakdowns within a street are not groupings of Query or QueryDays:
	// their keys would name every street.
	for _, g := range []string{"street_category", "street_urgency"} {
		if _, err := s.Query(g, time.Time{}, time.Time{}, nil); !errors.Is(err, ErrBadQuery) {
			t.Errorf("Query by %s: %v, want ErrBadQuery", g, err)
		}
		if _, err := s.QueryDays(g, "longqiao/river-pollution", time.Time{}, time.Time{}); !errors.Is(err, ErrBadQuery) {
			t.Errorf("QueryDays by %s: %v, want ErrBadQuery", g, err)
		}
	}
}

// TestQueryStreetKeepsStreetsApart: keys within a street join the street and
// the category with "/"; a street whose id holds "/" (not one a directory
// allows, but the fold takes what the log says) must not read another
// street's keys, nor lend it its own.
func TestQueryStreetKeepsStreetsApart(t *testing.T) {
	w := newWorld(t, 1)
	w.raise("longqiao", "wanhui", "manhole-cover", domain.UrgencyRoutine)
	raised := w.envelopes()[0]
	var data map[string]any
	if err := json.Unmarshal(raised.Data, &data); err != nil {
		t.Fatal(err)
	}
	s := newStats(t)
	// (street, category): "a" raises "b/c"; "a/b" raises "c"; "a%2Fb" raises "d".
	for i, sc := range [][2]string{{"a", "b/c"}, {"a/b", "c"}, {"a%2Fb", "d"}} {
		data["street"], data["category"] = sc[0], sc[1]
		env := raised
		env.CaseID = "case-" + string(rune('0'+i))
		env.Data, _ = json.Marshal(data)
		if err := applyOne(s, env); err != nil {
			t.Fatal(err)
		}
	}
	for street, want := range map[string][]string{"a": {"b/c"}, "a/b": {"c"}, "a%2Fb": {"d"}, "a%": nil} {
		res, err := s.QueryStreet(street, "category", time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, g := range res.Groups {
			if g.Raised != 1 {
				t.Errorf("street %q category %q: raised %d, want 1", street, g.Key, g.Raised)
			}
			got = append(got, g.Key)
		}
		if !slices.Equal(got, want) {
			t.Errorf("street %q by category: %v, want %v", street, got, want)
		}
	}
}

// TestStatsSnapshotOfFormat1IsRefused: a snapshot written before the
// breakdowns within a street lacks them and cannot be completed from what
// it holds; it is refused, saying why, so that its owner folds the log
// again, and the state is unchanged.
func TestStatsSnapshotOfFormat1IsRefused(t *testing.T) {
	s := statsOf(t, simulate(t, 2, 100))
	good, _ := s.MarshalBinary()
	var snap statsSnap
	if err := json.Unmarshal(good, &snap); err != nil {
		t.Fatal(err)
	}
	if statsFormat == "whistle-stats/1" {
		t.Fatal("the format was not bumped with the new buckets")
	}
	// What format 1 wrote: the same records, without the new dimensions.
	snap.Format = "whistle-stats/1"
	snap.Buckets = slices.DeleteFunc(snap.Buckets, func(b bucketSnap) bool {
		return b.Dim == "street_category" || b.Dim == "street_urgency"
	})
	old, _ := json.Marshal(snap)
	fresh := newStats(t)
	err := fresh.UnmarshalBinary(old)
	if !errors.Is(err, ErrBadSnapshot) || !strings.Contains(err.Error(), "whistle-stats/1") || !strings.Contains(err.Error(), "street_category") {
		t.Fatalf("a format 1 snapshot: %v, want ErrBadSnapshot naming the format and what it lacks", err)
	}
	if fresh.Position() != 0 {
		t.Fatalf("a refused snapshot moved the position to %d", fresh.Position())
	}
	// The current format round-trips, new buckets included.
	again := newStats(t)
	if err := again.UnmarshalBinary(good); err != nil {
		t.Fatal(err)
	}
	for _, street := range []string{"longqiao", "donghai"} {
		for _, g := range StreetGroupBys() {
			a, _ := s.QueryStreet(street, g, time.Time{}, time.Time{})
			b, _ := again.QueryStreet(street, g, time.Time{}, time.Time{})
			ja, _ := json.Marshal(a)
			jb, _ := json.Marshal(b)
			if len(a.Groups) == 0 || string(ja) != string(jb) {
				t.Fatalf("%s by %s: before the snapshot %s, after %s", street, g, ja, jb)
			}
		}
	}
}
