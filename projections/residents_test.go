package projections

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/whistle-gov/whistle/domain"
)

func hashOf(token string) string {
	s := sha256.Sum256([]byte(token))
	return hex.EncodeToString(s[:])
}

// residentWorld: four cases with requesters and receipts in longqiao, one
// without. Written out, what the figures must count:
//   - a: closed; callbacks unreached, reached with "satisfied"; the resident
//     rates "unsatisfied" → second round; resolved and closed again; the
//     resident rates "satisfied" (round 2).
//   - b: closed; POST /rate "basically_satisfied" (a reached callback).
//   - c: closed; three unreached callbacks (the task ends); the resident
//     rates "satisfied".
//   - d: resolved, not closed: its callback is due.
//   - e: no requester: closed, no callback task.
//
// callbacks 1+1+1+3 = 6, reached 2 (a, b), second rounds 1; ratings: callback
// 2 (satisfied, basically satisfied), resident 3 (unsatisfied, satisfied,
// satisfied).
func residentWorld(t *testing.T) (*world, map[string]string) {
	w := newWorld(t, 5)
	ids := map[string]string{}
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		id := w.newID()
		ids[name] = id
		r := domain.Raise{Street: "longqiao", Community: "wanhui", Category: "river-pollution", Urgency: "routine", Title: "creek " + name,
			Receipt: &domain.Receipt{CaseNo: "20261123-000" + name, TokenSHA256: hashOf(name)}}
		if name != "e" {
			r.Requester = &domain.SealedRequester{KeyID: id, Ciphertext: []byte{1, 2, 3}}
		}
		w.must(id, r).must(id, domain.Report{Assignee: "ecology-bureau"}).must(id, domain.Resolve{Assignee: "ecology-bureau"})
		if name != "d" {
			w.must(id, domain.Verify{Accepted: true})
		}
	}
	unreached := domain.RecordCallback{Reached: false, Note: "no answer"}
	a, b, c := ids["a"], ids["b"], ids["c"]
	w.advance(time.Hour)
	w.must(a, unreached).must(a, domain.RecordCallback{Reached: true, Rating: "satisfied"})
	w.must(a, domain.RateByResident{TokenSHA256: hashOf("a"), Rating: "unsatisfied"})
	w.advance(time.Hour)
	w.must(a, domain.Resolve{Assignee: "ecology-bureau"}).must(a, domain.Verify{Accepted: true})
	w.must(a, domain.RateByResident{TokenSHA256: hashOf("a"), Rating: "satisfied"})
	w.must(b, domain.Rate{Rating: "basically_satisfied"})
	w.must(c, unreached).must(c, unreached).must(c, unreached)
	w.must(c, domain.RateByResident{TokenSHA256: hashOf("c"), Rating: "satisfied"})
	return w, ids
}

func TestResidentFigures(t *testing.T) {
	w, _ := residentWorld(t)
	s := statsOf(t, w)
	res, err := s.Query("street", time.Time{}, time.Time{}, nil)
	if err != nil || len(res.Groups) != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	g := res.Groups[0]
	if g.Raised != 5 || g.Closed != 4 || g.Callbacks != 6 || g.CallbacksReached != 2 || g.SecondRounds != 1 || g.Ratings != 5 {
		t.Errorf("raised %d closed %d callbacks %d reached %d second rounds %d ratings %d; want 5 4 6 2 1 5",
			g.Raised, g.Closed, g.Callbacks, g.CallbacksReached, g.SecondRounds, g.Ratings)
	}
	near := func(p *float64, want float64) bool { return p != nil && *p > want-1e-9 && *p < want+1e-9 }
	if !near(g.CallbackReachRate, 2.0/6) {
		t.Errorf("reach rate %v, want 1/3", g.CallbackReachRate)
	}
	src := g.SatisfactionBySource
	if src.Resident.Ratings != 3 || !near(src.Resident.SatisfactionRate, 2.0/3) {
		t.Errorf("resident source %d ratings at %v, want 3 at 2/3", src.Resident.Ratings, src.Resident.SatisfactionRate)
	}
	if src.Callback.Ratings != 2 || !near(src.Callback.SatisfactionRate, 1.9/2) {
		t.Errorf("callback source %d ratings at %v, want 2 at 0.95", src.Callback.Ratings, src.Callback.SatisfactionRate)
	}
	if !near(g.SatisfactionRate, 3.9/5) {
		t.Errorf("satisfaction %v, want 3.9/5 (both sources)", g.SatisfactionRate)
	}
	// The second round's closure is not a second closure.
	if byAssignee, _ := s.Query("assignee", time.Time{}, time.Time{}, nil); byAssignee.Groups[0].Closed != 4 {
		t.Errorf("ecology-bureau closed %d, want 4", byAssignee.Groups[0].Closed)
	}
}

// TestResidentBoard: the street's callback list holds the cases whose
// callback is due (a second round has a callback of its own); a second round shows on the board and in the lead's
// queue; the board's version follows every case.
func TestResidentBoard(t *testing.T) {
	w, ids := residentWorld(t)
	b := boardOf(t, w)
	list := b.Callbacks("longqiao")
	// d waits since its resolution; a's second round since it was resolved again.
	if len(list) != 2 || list[0].CaseID != ids["d"] || list[1].CaseID != ids["a"] || list[1].Callback.Round != 2 {
		t.Fatalf("callbacks due %+v, want d's and a's second round", list)
	}
	if other := b.Callbacks("xindu"); len(other) != 0 {
		t.Fatalf("another street's list: %+v", other)
	}
	for name, id := range ids {
		got, _ := b.Get(id)
		if want := w.cases[id]; got.Version != want.Version || got.Status != want.Status || got.SecondRound != want.SecondRound {
			t.Errorf("%s: board %d %s %v, case %d %s %v", name, got.Version, got.Status, got.SecondRound, want.Version, want.Status, want.SecondRound)
		}
	}
	if got, _ := b.Get(ids["a"]); !got.SecondRound || got.Callback == nil || got.Callback.Round != 2 || got.Callback.Status != domain.CallbackOpen {
		t.Errorf("a after its second round: %+v", got.Callback)
	}
	// Reopened, the case was in the lead's queue with the new resolve_by.
	w2, ids2 := residentWorld(t)
	cut := 0
	for i, c := range w2.commits {
		if c.events[len(c.events)-1].Type == domain.TypeSecondRoundOpened {
			cut = i + 1
		}
	}
	mid := NewBoard()
	for _, c := range w2.commits[:cut] {
		if err := mid.ApplyCommit(c.pos, c.events, nil); err != nil {
			t.Fatal(err)
		}
	}
	found := false
	for _, it := range mid.Open("ecology-bureau") {
		if it.CaseID == ids2["a"] && it.Status == domain.Reported && it.CaseStatus == domain.StatusInProgress {
			found = true
		}
	}
	if !found {
		t.Errorf("the second round is not in the lead's queue: %+v", mid.Open("ecology-bureau"))
	}
}

// TestResidentSnapshotsResume: stopped after any commit, snapshotted and
// resumed, the board and the figures end as a fold from the start does.
func TestResidentSnapshotsResume(t *testing.T) {
	w, _ := residentWorld(t)
	wantB, wantS := boardOf(t, w), statsOf(t, w)
	for cut := range w.commits {
		b, s := NewBoard(), newStats(t)
		for _, c := range w.commits[:cut] {
			if err := b.ApplyCommit(c.pos, c.events, nil); err != nil {
				t.Fatal(err)
			}
			if err := s.ApplyCommit(c.pos, c.events, nil); err != nil {
				t.Fatal(err)
			}
		}
		bs, _ := b.MarshalBinary()
		ss, _ := s.MarshalBinary()
		b2, s2 := NewBoard(), newStats(t)
		if err := b2.UnmarshalBinary(bs); err != nil {
			t.Fatalf("cut %d: board: %v", cut, err)
		}
		if err := s2.UnmarshalBinary(ss); err != nil {
			t.Fatalf("cut %d: stats: %v", cut, err)
		}
		for _, c := range w.commits[cut:] {
			if err := b2.ApplyCommit(c.pos, c.events, nil); err != nil {
				t.Fatalf("cut %d: board: %v", cut, err)
			}
			if err := s2.ApplyCommit(c.pos, c.events, nil); err != nil {
				t.Fatalf("cut %d: stats: %v", cut, err)
			}
		}
		if d := append(Diff(wantB, b2), Diff(wantS, s2)...); len(d) > 0 {
			t.Fatalf("cut %d: resumed models differ:\n%s", cut, strings.Join(d, "\n"))
		}
	}
}
