package projections

import (
	"testing"

	"github.com/whistle-gov/whistle/domain"
)

// TestModelsTakeEventsAfterClosure: a closed case's requester is revealed
// and forgotten (before and after its rating, which makes the figures
// forget the case): the board's version follows the case's own, and the
// figures go on counting (the rating after a reveal is counted) without a
// refusal.
func TestModelsTakeEventsAfterClosure(t *testing.T) {
	w := newWorld(t, 91)
	id := w.newID()
	w.must(id, domain.Raise{Street: "longqiao", Community: "wanhui", Category: "river-pollution", Urgency: "routine",
		Title: "creek", Requester: &domain.SealedRequester{KeyID: id, Ciphertext: []byte{1, 2, 3}}})
	w.must(id, domain.Report{Assignee: "ecology-bureau"}).
		must(id, domain.Resolve{Assignee: "ecology-bureau"}).
		must(id, domain.Verify{Accepted: true}).
		must(id, domain.RevealRequester{}).
		must(id, domain.Rate{Rating: "satisfied"}).
		must(id, domain.RevealRequester{}).
		must(id, domain.ForgetRequester{Reason: "asked to"})

	b := NewBoard()
	st, err := NewStats(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range w.commits {
		if err := b.ApplyCommit(c.pos, c.events, nil); err != nil {
			t.Fatalf("board: commit %d (%s): %v", c.pos, c.events[0].Type, err)
		}
		if err := st.ApplyCommit(c.pos, c.events, nil); err != nil {
			t.Fatalf("stats: commit %d (%s): %v", c.pos, c.events[0].Type, err)
		}
	}
	got, ok := b.Get(id)
	if want := w.cases[id].Version; !ok || got.Version != want {
		t.Errorf("board version %d (on board %v), want the case's %d", got.Version, ok, want)
	}
	res, err := st.Query("street", t0.AddDate(0, 0, -1), t0.AddDate(0, 0, 2), nil)
	if err != nil || len(res.Groups) != 1 {
		t.Fatalf("figures: %+v, %v", res, err)
	}
	if g := res.Groups[0]; g.Closed != 1 || g.Ratings != 1 {
		t.Errorf("figures count %d closed and %d ratings, want 1 and 1", g.Closed, g.Ratings)
	}
}
