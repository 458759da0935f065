package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/whistle-gov/whistle/adapters/config"
	"github.com/whistle-gov/whistle/cmd/whistled/whistledtest"
	"github.com/whistle-gov/whistle/domain"
)

const hotline = "platform:hotline-12345"

type ticketCase struct {
	CaseID string `json:"case_id"`
	Status string `json:"status"`
	Source *struct {
		Platform   string `json:"platform"`
		ExternalID string `json:"external_id"`
		Channel    string `json:"channel"`
	} `json:"source"`
	Priority    string     `json:"priority"`
	AcceptBy    *time.Time `json:"accept_by"`
	Assignments []struct {
		Assignee  string     `json:"assignee"`
		Role      string     `json:"role"`
		ResolveBy *time.Time `json:"resolve_by"`
	} `json:"assignments"`
}

type replyView struct {
	Seq        uint64 `json:"seq"`
	CaseID     string `json:"case_id"`
	ExternalID string `json:"external_id"`
	Outcome    string `json:"outcome"`
	Reply      string `json:"reply"`
}

type outboxView struct {
	Replies []replyView `json:"replies"`
	Next    uint64      `json:"next"`
}

func ticketBody(ext, title string) map[string]any {
	return map[string]any{"external_id": ext, "street": "longqiao", "title": title, "description": "市民来电反映",
		"channel": "phone", "priority": "leader_assigned", "requester": map[string]string{"name": requesterName, "phone": requesterPhone}}
}

// replies waits until the platform's outbox holds at least n replies and
// returns them all.
func replies(t *testing.T, s *whistledtest.Server, principal string, n int) []replyView {
	t.Helper()
	var out outboxView
	deadline := time.Now().Add(15 * time.Second)
	for {
		mustStatus(t, "outbox", s.Do("GET", "/v1/outbox/hotline-12345?after=0", principal, nil, &out), 200)
		if len(out.Replies) >= n || time.Now().After(deadline) {
			return out.Replies
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// closeTicket signs for the ticket, has its lead report in and resolve, and
// verifies it with a reply.
func closeTicket(t *testing.T, s *whistledtest.Server, id string) {
	t.Helper()
	var c ticketCase
	mustStatus(t, "accept", s.Do("POST", "/v1/cases/"+id+"/accept", "street:longqiao", map[string]string{"category": "broken-manhole-cover", "community": "wanhui"}, &c), 200)
	if c.Status != "routed" || len(c.Assignments) == 0 {
		t.Fatalf("accepted: %+v", c)
	}
	lead := principalOf(s, c.Assignments[0].Assignee)
	mustStatus(t, "report", s.Do("POST", "/v1/cases/"+id+"/report", lead, nil, nil), 200)
	mustStatus(t, "resolve", s.Do("POST", "/v1/cases/"+id+"/resolve", lead, map[string]string{"note": "已更换井盖"}, nil), 200)
	st, raw := s.DoRaw("POST", "/v1/cases/"+id+"/verify", "street:longqiao", map[string]any{"accepted": true})
	if st != 422 || !strings.Contains(string(raw), `"field":"reply"`) {
		t.Fatalf("verify without a reply: %d %s", st, raw)
	}
	mustStatus(t, "verify", s.Do("POST", "/v1/cases/"+id+"/verify", "street:longqiao", map[string]any{"accepted": true, "reply": "井盖已更换，感谢反映"}, &c), 200)
	if c.Status != "closed" {
		t.Fatalf("verified: %s", c.Status)
	}
}

func TestTicketSentAcceptedClosedAndReplied(t *testing.T) {
	s := whistledtest.Start(t)
	var c, again ticketCase
	mustStatus(t, "send", s.Do("POST", "/v1/tickets", hotline, ticketBody("12345-0001", "井盖破损"), &c), 201)
	if c.Status != "received" || c.Source == nil || c.Source.Platform != "hotline-12345" || c.Source.ExternalID != "12345-0001" || c.Priority != "leader_assigned" || c.AcceptBy == nil {
		t.Fatalf("sent: %+v", c)
	}
	mustStatus(t, "send again", s.Do("POST", "/v1/tickets", hotline, ticketBody("12345-0001", "井盖破损"), &again), 200)
	if again.CaseID != c.CaseID {
		t.Fatalf("sent again: case %s, first %s", again.CaseID, c.CaseID)
	}
	mustStatus(t, "another body", s.Do("POST", "/v1/tickets", hotline, ticketBody("12345-0001", "路灯不亮"), nil), 409)
	for field, body := range map[string]map[string]any{
		"street":   {"external_id": "x-1", "street": "nowhere", "title": "t"},
		"category": {"external_id": "x-2", "street": "longqiao", "title": "t", "category": "nothing-like-it"},
		"priority": {"external_id": "x-3", "street": "longqiao", "title": "t", "priority": "urgent!"},
	} {
		st, raw := s.DoRaw("POST", "/v1/tickets", hotline, body)
		if st != 422 || !strings.Contains(string(raw), `"field":"`+field+`"`) {
			t.Errorf("bad %s: %d %s", field, st, raw)
		}
	}
	mustStatus(t, "an unknown field", s.Do("POST", "/v1/tickets", hotline, `{"external_id":"x-4","street":"longqiao","title":"t","colour":"red"}`, nil), 400)
	mustStatus(t, "a street sends a ticket", s.Do("POST", "/v1/tickets", "street:longqiao", ticketBody("x-5", "t"), nil), 403)

	// Who reads it: the platform that sent it and its street, not another.
	mustStatus(t, "platform reads", s.Do("GET", "/v1/cases/"+c.CaseID, hotline, nil, nil), 200)
	mustStatus(t, "other platform reads", s.Do("GET", "/v1/cases/"+c.CaseID, "platform:digital-city-management", nil, nil), 403)
	mustStatus(t, "other street reads", s.Do("GET", "/v1/cases/"+c.CaseID, "street:zhenhai", nil, nil), 403)
	var list struct {
		Cases []ticketCase `json:"cases"`
	}
	mustStatus(t, "platform lists", s.Do("GET", "/v1/cases?position=1", hotline, nil, &list), 200)
	for _, lc := range list.Cases {
		if lc.Source == nil || lc.Source.Platform != "hotline-12345" {
			t.Errorf("the platform lists a case it did not send: %+v", lc)
		}
	}
	var inbox struct {
		Tickets []struct {
			CaseID   string     `json:"case_id"`
			AcceptBy *time.Time `json:"accept_by"`
		} `json:"tickets"`
	}
	mustStatus(t, "inbox", s.Do("GET", "/v1/streets/longqiao/inbox", "street:longqiao", nil, &inbox), 200)
	if len(inbox.Tickets) != 1 || inbox.Tickets[0].CaseID != c.CaseID {
		t.Fatalf("inbox: %+v", inbox)
	}
	mustStatus(t, "another street's inbox", s.Do("GET", "/v1/streets/longqiao/inbox", "street:zhenhai", nil, nil), 403)

	closeTicket(t, s, c.CaseID)

	// A second ticket, returned.
	var r ticketCase
	mustStatus(t, "send 2", s.Do("POST", "/v1/tickets", hotline, ticketBody("12345-0002", "噪音扰民"), &r), 201)
	mustStatus(t, "return without a reason", s.Do("POST", "/v1/cases/"+r.CaseID+"/return", "street:longqiao", map[string]string{}, nil), 422)
	mustStatus(t, "return", s.Do("POST", "/v1/cases/"+r.CaseID+"/return", "street:longqiao", map[string]string{"reason": "不属本街道辖区"}, &r), 200)
	if r.Status != "returned" {
		t.Fatalf("returned: %s", r.Status)
	}
	mustStatus(t, "accept after return", s.Do("POST", "/v1/cases/"+r.CaseID+"/accept", "street:longqiao", map[string]string{"category": "broken-manhole-cover", "community": "wanhui"}, nil), 409)

	got := replies(t, s, hotline, 2)
	if len(got) != 2 || got[0].CaseID != c.CaseID || got[0].Outcome != "closed" || got[0].Reply != "井盖已更换，感谢反映" || got[0].ExternalID != "12345-0001" ||
		got[1].CaseID != r.CaseID || got[1].Outcome != "returned" || got[1].Reply != "不属本街道辖区" || got[0].Seq == 0 || got[1].Seq <= got[0].Seq {
		t.Fatalf("replies: %+v", got)
	}
	var page outboxView
	mustStatus(t, "after the first", s.Do("GET", fmt.Sprintf("/v1/outbox/hotline-12345?after=%d", got[0].Seq), hotline, nil, &page), 200)
	if len(page.Replies) != 1 || page.Replies[0].CaseID != r.CaseID || page.Next != got[1].Seq {
		t.Fatalf("page after %d: %+v", got[0].Seq, page)
	}
	mustStatus(t, "auditor reads the outbox", s.Do("GET", "/v1/outbox/hotline-12345", "auditor:auditor", nil, nil), 200)
	mustStatus(t, "another platform's outbox", s.Do("GET", "/v1/outbox/hotline-12345", "platform:digital-city-management", nil, nil), 403)
	mustStatus(t, "bad after", s.Do("GET", "/v1/outbox/hotline-12345?after=x", hotline, nil, nil), 422)

	// The figures count both tickets; only the signed one is raised.
	var stats struct {
		Groups []struct {
			Key             string `json:"key"`
			Raised          int    `json:"raised"`
			TicketsReceived int    `json:"tickets_received"`
			TicketsAccepted int    `json:"tickets_accepted"`
			TicketsReturned int    `json:"tickets_returned"`
		} `json:"groups"`
	}
	mustStatus(t, "stats", s.Do("GET", "/v1/stats?group_by=street", "auditor:auditor", nil, &stats), 200)
	if len(stats.Groups) != 1 || stats.Groups[0].Raised != 1 || stats.Groups[0].TicketsReceived != 2 || stats.Groups[0].TicketsAccepted != 1 || stats.Groups[0].TicketsReturned != 1 {
		t.Fatalf("stats: %+v", stats)
	}
	mustNotHoldRequester(t, "the outbox", []byte(fmt.Sprint(got)))

	// A restart publishes nothing again.
	s.Stop()
	s.Restart()
	time.Sleep(time.Second)
	if again := replies(t, s, hotline, 2); len(again) != 2 {
		t.Fatalf("after a restart: %d replies", len(again))
	}
}

// TestTicketReplyOnceAcrossAKill: whistled is killed right after the
// closure is acknowledged, before or while the reply is published; started
// again, the outbox holds exactly one reply for the case, and after a
// second kill still one.
func TestTicketReplyOnceAcrossAKill(t *testing.T) {
	s := whistledtest.Start(t)
	var c ticketCase
	mustStatus(t, "send", s.Do("POST", "/v1/tickets", hotline, ticketBody("12345-0100", "井盖破损"), &c), 201)
	closeTicket(t, s, c.CaseID)
	s.Kill() // SIGKILL at once: the dispatcher lags the command by milliseconds
	s.Restart()
	count := func() int {
		n := 0
		for _, r := range replies(t, s, hotline, 1) {
			if r.CaseID == c.CaseID {
				n++
			}
		}
		return n
	}
	if n := count(); n != 1 {
		t.Fatalf("after a kill: %d replies for the case", n)
	}
	time.Sleep(1500 * time.Millisecond) // past a checkpoint
	s.Kill()
	s.Restart()
	time.Sleep(time.Second)
	if n := count(); n != 1 {
		t.Fatalf("after a second kill: %d replies for the case", n)
	}
}

// TestHolidayBetweenTicketAndDeadline: with a holiday on the next working
// day, a ticket's accept deadline and its lead's resolve deadline (in
// working days) skip it.
func TestHolidayBetweenTicketAndDeadline(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "adapters", "config", "sample-directory.json"))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := config.ParseDirectory("sample", raw)
	if err != nil {
		t.Fatal(err)
	}
	cal := plain.WorkCalendar()
	loc := cal.Location()
	now := time.Now().In(loc)
	// The next two working days from tomorrow become holidays.
	var holidays []string
	for d := now.AddDate(0, 0, 1); len(holidays) < 2; d = d.AddDate(0, 0, 1) {
		if cal.IsWorkingDay(d) {
			holidays = append(holidays, d.Format("2006-01-02"))
		}
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	calDoc := doc["calendar"].(map[string]any)
	hs := calDoc["holidays"].([]any)
	for _, h := range holidays {
		hs = append(hs, h)
	}
	calDoc["holidays"] = hs
	sla := doc["sla"].(map[string]any)["routine"].(map[string]any)
	sla["accept_within"], sla["resolve_within"] = "2wh", "1wd"
	edited, _ := json.Marshal(doc)
	path := filepath.Join(t.TempDir(), "directory.json")
	if err := os.WriteFile(path, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	withHolidays, err := config.ParseDirectory(path, edited)
	if err != nil {
		t.Fatal(err)
	}
	s := whistledtest.Start(t, "--directory", path)
	var c ticketCase
	mustStatus(t, "send", s.Do("POST", "/v1/tickets", hotline, ticketBody("12345-0200", "井盖破损"), &c), 201)
	var hist struct {
		Events []domain.Envelope `json:"events"`
	}
	mustStatus(t, "history", s.Do("GET", "/v1/cases/"+c.CaseID+"/history", "auditor:auditor", nil, &hist), 200)
	received := hist.Events[0].OccurredAt
	slaOf := withHolidays.SLAFor(domain.UrgencyRoutine)
	if want := withHolidays.Deadline(received, slaOf.AcceptWithin); !c.AcceptBy.Equal(want) {
		t.Errorf("accept_by %s, want %s", c.AcceptBy, want)
	}
	mustStatus(t, "accept", s.Do("POST", "/v1/cases/"+c.CaseID+"/accept", "street:longqiao", map[string]string{"category": "broken-manhole-cover", "community": "wanhui"}, &c), 200)
	mustStatus(t, "history", s.Do("GET", "/v1/cases/"+c.CaseID+"/history", "auditor:auditor", nil, &hist), 200)
	accepted := hist.Events[len(hist.Events)-1].OccurredAt
	resolveBy := *c.Assignments[0].ResolveBy
	want := withHolidays.Deadline(accepted, slaOf.ResolveWithin)
	without := plain.Deadline(accepted, slaOf.ResolveWithin)
	if !resolveBy.Equal(want) {
		t.Fatalf("resolve_by %s, want %s", resolveBy, want)
	}
	for _, h := range holidays {
		if resolveBy.In(loc).Format("2006-01-02") == h {
			t.Errorf("resolve_by %s falls on the holiday %s", resolveBy.In(loc), h)
		}
	}
	if !resolveBy.After(without) {
		t.Errorf("resolve_by %s does not skip the holidays %v (without them %s)", resolveBy.In(loc), holidays, without.In(loc))
	}
}
