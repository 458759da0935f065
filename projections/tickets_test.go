package projections

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/whistle-gov/whistle/domain"
)

// ticketStep sends a ticket from the platform, naming some of its keys and
// not others, or has a street sign for (accept) or return a waiting one.
func (w *world) ticketStep(r *rand.Rand) {
	w.t.Helper()
	var waiting []string
	for _, id := range w.ids {
		if w.cases[id].Status == domain.StatusReceived {
			waiting = append(waiting, id)
		}
	}
	if len(waiting) == 0 || r.Float64() < 0.4 {
		id := w.newID()
		cmd := domain.ReceiveTicket{Platform: "hotline-12345", ExternalID: "T-" + id[:8], Street: "longqiao", Title: "ticket " + id[:8]}
		if r.Float64() < 0.5 {
			cmd.Category = []string{"river-pollution", "manhole-cover", "neighbour-dispute"}[r.IntN(3)]
		}
		if r.Float64() < 0.5 {
			cmd.Community = "wanhui"
		}
		if r.Float64() < 0.3 {
			cmd.Urgency = "urgent"
		}
		if r.Float64() < 0.3 {
			reply := w.now.Add(time.Duration(1+r.IntN(96)) * time.Hour)
			cmd.ReplyBy = &reply
		}
		w.must(id, cmd)
		return
	}
	id := waiting[r.IntN(len(waiting))]
	if r.Float64() < 0.25 {
		w.must(id, domain.ReturnTicket{Reason: "不属本街道"})
		return
	}
	w.must(id, domain.AcceptTicket{Category: []string{"river-pollution", "manhole-cover", "after-school-care"}[r.IntN(3)], Community: "xiazhu"})
}

// ticketWorld is a random log with tickets in every state.
func ticketWorld(t *testing.T, seed uint64) *world {
	t.Helper()
	w := simulateWith(t, seed, 350, true)
	got := kinds(w.envelopes())
	for _, typ := range []string{domain.TypeTicketReceived, domain.TypeTicketAccepted, domain.TypeTicketReturned} {
		if got[typ] == 0 {
			t.Fatalf("seed %d: the fixture has no %s", seed, typ)
		}
	}
	return w
}

func TestBoardTicketsAgreeWithDomain(t *testing.T) {
	sawOverdue := false
	for seed := uint64(60); seed < 64; seed++ {
		w := ticketWorld(t, seed)
		b := boardOf(t, w)
		inbox := map[string]bool{}
		for _, it := range b.Inbox("longqiao") {
			inbox[it.CaseID] = true
			if it.Overdue != w.cases[it.CaseID].MissedAccept {
				t.Errorf("seed %d: case %s overdue %v in the inbox", seed, it.CaseID, it.Overdue)
			}
		}
		for _, id := range w.ids {
			c := w.cases[id]
			sawOverdue = sawOverdue || c.MissedAccept
			got, ok := b.Get(id)
			if !ok {
				t.Fatalf("seed %d: case %s missing", seed, id)
			}
			if want := fromDomain(c); summaryJSON(got) != summaryJSON(want) {
				t.Fatalf("seed %d: case %s\nboard  %s\ndomain %s", seed, id, summaryJSON(got), summaryJSON(want))
			}
			if waiting := c.Status == domain.StatusReceived; inbox[id] != waiting {
				t.Errorf("seed %d: case %s (%s) in the inbox: %v", seed, id, c.Status, inbox[id])
			}
		}
		if n := len(b.Inbox("donghai")); n != 0 {
			t.Errorf("seed %d: donghai's inbox holds %d tickets sent to longqiao", seed, n)
		}
	}
	if !sawOverdue {
		t.Error("no ticket missed its accept deadline: the fixture does not exercise it")
	}
}

// TestTicketsRestartMidway: the board and the figures restored from a
// snapshot taken anywhere in a log with tickets go on to the same state as
// a fold from the start.
func TestTicketsRestartMidway(t *testing.T) {
	for seed := uint64(70); seed < 73; seed++ {
		w := ticketWorld(t, seed)
		wantB, wantS := boardOf(t, w), statsOf(t, w)
		for _, cut := range []int{1, len(w.commits) / 3, len(w.commits) / 2, len(w.commits) - 1} {
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
			b, s = NewBoard(), newStats(t)
			if err := b.UnmarshalBinary(bs); err != nil {
				t.Fatalf("seed %d cut %d: board: %v", seed, cut, err)
			}
			if err := s.UnmarshalBinary(ss); err != nil {
				t.Fatalf("seed %d cut %d: stats: %v", seed, cut, err)
			}
			for _, c := range w.commits[cut:] {
				if err := b.ApplyCommit(c.pos, c.events, nil); err != nil {
					t.Fatal(err)
				}
				if err := s.ApplyCommit(c.pos, c.events, nil); err != nil {
					t.Fatal(err)
				}
			}
			if d := append(Diff(wantB, b), Diff(wantS, s)...); len(d) > 0 {
				t.Fatalf("seed %d cut %d: restart changed the models:\n%s", seed, cut, strings.Join(d, "\n"))
			}
			if x, y := jsonOf(wantB.Inbox("longqiao")), jsonOf(b.Inbox("longqiao")); x != y {
				t.Fatalf("seed %d cut %d: the inbox differs after a restart", seed, cut)
			}
		}
	}
}

// TestStatsCountTickets: received, accepted and returned tickets are
// counted; raised counts raises and signed tickets only, so a returned one
// is in no rate; nothing stays under a ticket's keys before it was signed.
func TestStatsCountTickets(t *testing.T) {
	w := ticketWorld(t, 80)
	s := statsOf(t, w)
	var received, accepted, returned, raised, overdue int64
	for _, id := range w.ids {
		c := w.cases[id]
		if c.IsTicket() {
			received++
			if c.AcceptedAt != nil {
				accepted++
			}
			if c.Status == domain.StatusReturned {
				returned++
			}
		}
		if !c.IsTicket() || c.AcceptedAt != nil {
			raised++
		}
	}
	for _, env := range w.envelopes() {
		if env.Type == domain.TypeAssignmentOverdue {
			overdue++
		}
	}
	for _, g := range GroupBys() {
		res, err := s.Query(g, time.Time{}, time.Time{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var sum Group
		for _, gr := range res.Groups {
			if gr.Key == "" && (gr.Raised != 0 || gr.TicketsReceived == 0) {
				// Only a ticket returned unsigned keeps the keys it lacked.
				t.Errorf("group_by %s: a group with no key: %+v", g, gr)
			}
			sum.TicketsReceived += gr.TicketsReceived
			sum.TicketsAccepted += gr.TicketsAccepted
			sum.TicketsReturned += gr.TicketsReturned
			sum.Raised += gr.Raised
			sum.Overdue += gr.Overdue
		}
		if g == "assignee" {
			continue // a case counts once per assignee there
		}
		got := fmt.Sprintf("received %d accepted %d returned %d raised %d overdue %d", sum.TicketsReceived, sum.TicketsAccepted, sum.TicketsReturned, sum.Raised, sum.Overdue)
		want := fmt.Sprintf("received %d accepted %d returned %d raised %d overdue %d", received, accepted, returned, raised, overdue)
		if got != want {
			t.Errorf("group_by %s: %s, want %s", g, got, want)
		}
	}
	if returned == 0 || accepted == 0 {
		t.Errorf("the fixture lacks a state: received %d accepted %d returned %d", received, accepted, returned)
	}
}

func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
