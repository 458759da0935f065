package domain

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// ticketOf is the 12345 hotline sending longqiao a ticket; what it lacks
// (category, community, urgency) the street fills in when it accepts.
func ticketOf(externalID string) ReceiveTicket {
	return ReceiveTicket{Platform: "hotline-12345", ExternalID: externalID, Street: "longqiao",
		Title: "小区井盖破损", Description: "市民来电：井盖缺了一角", Channel: "phone"}
}

// received returns a harness whose ticket came in at t0 (17:00 on a Monday
// in Shanghai).
func received(t *testing.T, cmd ReceiveTicket) *harness {
	t.Helper()
	h := newHarness(t)
	h.must(platform, cmd)
	return h
}

func TestTicketReceived(t *testing.T) {
	replyBy := t0.Add(48 * time.Hour)
	cmd := ticketOf("20260302-0017")
	cmd.ReplyBy = &replyBy
	h := newHarness(t)
	events := h.must(platform, cmd)
	// 17:00 Monday + 1wh (accept_within's default): 30 minutes on Monday,
	// 30 on Tuesday from 08:30 → 09:00 Tuesday in Shanghai, 01:00 UTC.
	acceptBy := time.Date(2026, 3, 3, 1, 0, 0, 0, time.UTC)
	want := TicketReceived{Platform: "hotline-12345", ExternalID: "20260302-0017", Street: "longqiao", Title: cmd.Title,
		Description: cmd.Description, ReplyBy: &replyBy, Channel: ChannelPhone, Priority: PriorityNormal, AcceptBy: acceptBy,
		DirectoryVersion: "test-1"}
	if len(events) != 1 || !reflect.DeepEqual(events[0], want) {
		t.Fatalf("events %#v, want %#v", events, want)
	}
	c := h.c
	if c.Status != StatusReceived || !c.IsTicket() || c.Source.Platform != "hotline-12345" || c.Source.ExternalID != "20260302-0017" ||
		!c.Source.ReplyBy.Equal(replyBy) || c.Source.Channel != ChannelPhone || c.Priority != PriorityNormal ||
		!c.AcceptBy.Equal(acceptBy) || !c.RaisedAt.Equal(t0) || len(c.Assignments) != 0 {
		t.Fatalf("case %+v, source %+v", c, c.Source)
	}
	// The case shows where it came from.
	b, _ := json.Marshal(c)
	var shown map[string]any
	_ = json.Unmarshal(b, &shown)
	if shown["status"] != "received" || shown["source"].(map[string]any)["external_id"] != "20260302-0017" || shown["priority"] != "normal" {
		t.Errorf("case JSON %s", b)
	}
	// Once received, the same case takes no second ticket (the adapter
	// answers a repeat from the first one).
	h.refused(platform, cmd, ErrInvalidTransition, "", "already exists")

	// A reply deadline sooner than accept_within bounds accept_by.
	soon := t0.Add(10 * time.Minute)
	early := ticketOf("20260302-0018")
	early.ReplyBy, early.Priority, early.Urgency = &soon, "media_exposed", "urgent"
	e := received(t, early).c
	if !e.AcceptBy.Equal(soon) || e.Priority != PriorityMediaExposed || e.Urgency != UrgencyUrgent {
		t.Errorf("accept_by %s priority %s urgency %s; want the reply deadline, media_exposed, urgent", e.AcceptBy, e.Priority, e.Urgency)
	}
}

func TestReceiveTicketRefuses(t *testing.T) {
	bad := func(edit func(*ReceiveTicket)) ReceiveTicket {
		cmd := ticketOf("20260302-0099")
		edit(&cmd)
		return cmd
	}
	for _, tt := range []struct {
		name, field, why string
		cmd              ReceiveTicket
	}{
		{"unknown platform", "platform", `unknown platform "wechat"`, bad(func(c *ReceiveTicket) { c.Platform = "wechat" })},
		{"no external id", "external_id", "is required", bad(func(c *ReceiveTicket) { c.ExternalID = " " })},
		{"external id with a space", "external_id", "may not hold spaces", bad(func(c *ReceiveTicket) { c.ExternalID = "2026 0001" })},
		{"unknown street", "street", `unknown street "lichengqu"`, bad(func(c *ReceiveTicket) { c.Street = "lichengqu" })},
		{"unknown category", "category", `unknown category "potholes"`, bad(func(c *ReceiveTicket) { c.Category = "potholes" })},
		{"another street's community", "community", `no community "xindu-centre"`, bad(func(c *ReceiveTicket) { c.Community = "xindu-centre" })},
		{"bad urgency", "urgency", "unknown urgency", bad(func(c *ReceiveTicket) { c.Urgency = "asap" })},
		{"no title", "title", "title is required", bad(func(c *ReceiveTicket) { c.Title = "" })},
		{"bad channel", "channel", `unknown channel "fax"`, bad(func(c *ReceiveTicket) { c.Channel = "fax" })},
		{"bad priority", "priority", `unknown priority "vip"`, bad(func(c *ReceiveTicket) { c.Priority = "vip" })},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sender := Actor{Role: ActorPlatform, ID: tt.cmd.Platform} // the adapter names the caller as the platform
			newHarness(t).refused(sender, tt.cmd, ErrInvalidValue, tt.field, tt.why)
		})
	}
}

func TestAuthorizeTickets(t *testing.T) {
	ticket := received(t, ticketOf("20260302-0020")).c
	for _, tt := range []struct {
		name  string
		c     *Case
		actor Actor
		cmd   Command
		err   error
		field string
		why   string
	}{
		{"the platform sends", nil, platform, ticketOf("x-1"), nil, "", ""},
		{"a street sends a ticket", nil, street, ticketOf("x-1"), ErrNotYours, "", "only a platform may send a ticket"},
		{"a platform sends as another", nil, Actor{Role: ActorPlatform, ID: "digital-city"}, ticketOf("x-1"), ErrNotYours, "platform", `may not send tickets as "hotline-12345"`},
		{"a district sends a ticket", nil, district, ticketOf("x-1"), ErrNotYours, "", "only a platform"},
		{"an auditor sends a ticket", nil, auditor, ticketOf("x-1"), ErrNotYours, "", "auditors only read"},
		{"its street accepts", ticket, street, AcceptTicket{}, nil, "", ""},
		{"its street returns", ticket, street, ReturnTicket{Reason: "x"}, nil, "", ""},
		{"another street accepts", ticket, otherStreet, AcceptTicket{}, ErrNotYours, "", "belongs to street"},
		{"the district accepts", ticket, district, AcceptTicket{}, ErrNotYours, "", "only a street may accept"},
		{"the platform accepts", ticket, platform, AcceptTicket{}, ErrNotYours, "", "only a street may accept"},
		{"the platform returns", ticket, platform, ReturnTicket{Reason: "x"}, ErrNotYours, "", "only a street may return"},
		{"a department accepts", ticket, ecology, AcceptTicket{}, ErrNotYours, "", "only a street may accept"},
		{"accepting a case not received", nil, street, AcceptTicket{}, ErrNoCase, "", "no such case"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := Authorize(tt.c, tt.actor, tt.cmd)
			if tt.err == nil {
				if err != nil {
					t.Fatalf("Authorize refused: %v", err)
				}
				return
			}
			checkRefusal(t, err, tt.err, tt.field, tt.why)
		})
	}
}

func TestAcceptTicketRoutesWithinReplyBy(t *testing.T) {
	replyBy := t0.Add(30 * time.Hour) // sooner than routine's 72h
	cmd := ticketOf("20260302-0030")
	cmd.ReplyBy = &replyBy
	h := received(t, cmd)
	h.at(20*time.Minute).refused(street, Route{Lead: "urban-management"}, ErrInvalidTransition, "", "waiting for its street to sign")
	h.refused(ecology, Report{Assignee: "ecology-bureau"}, ErrNotYours, "", "holds no assignment")
	h.refused(street, AcceptTicket{}, ErrInvalidValue, "category", "names no category")
	h.refused(street, AcceptTicket{Category: catIssue}, ErrInvalidValue, "community", "names no community")
	h.refused(street, AcceptTicket{Category: "potholes", Community: "wanhui"}, ErrInvalidValue, "category", "unknown category")
	h.refused(street, AcceptTicket{Category: catIssue, Community: "xindu-centre"}, ErrInvalidValue, "community", "no community")

	events := h.must(street, AcceptTicket{Category: catIssue, Community: "wanhui"})
	now := t0.Add(20 * time.Minute)
	want := []Event{
		TicketAccepted{Category: catIssue, Kind: KindIssue, Community: "wanhui", Urgency: UrgencyRoutine},
		AssignmentMade{Assignee: "ecology-bureau", Role: RoleLead, ReportBy: now.Add(30 * time.Minute), ResolveBy: replyBy},
		AssignmentMade{Assignee: "water-bureau", Role: RoleAssist, ReportBy: now.Add(30 * time.Minute), ResolveBy: replyBy},
	}
	if !reflect.DeepEqual(events, want) {
		t.Fatalf("accept: %#v\nwant %#v", events, want)
	}
	if h.c.Status != StatusRouted || h.c.Category != catIssue || h.c.Kind != KindIssue || h.c.AcceptedAt == nil {
		t.Fatalf("case after accept: %+v", h.c)
	}
	h.refused(street, AcceptTicket{}, ErrInvalidTransition, "", "already signed for")
	h.refused(street, ReturnTicket{Reason: "不属本街道"}, ErrInvalidTransition, "", "not yet signed for")
	// Routing by hand later stays within reply_by too.
	routed := h.at(29*time.Hour+50*time.Minute).must(street, Route{Assist: []string{"urban-management"}})
	made := routed[len(routed)-1].(AssignmentMade)
	if !made.ResolveBy.Equal(replyBy) || !made.ReportBy.Equal(replyBy) {
		t.Errorf("routed by hand: report_by %s resolve_by %s, want both at reply_by %s", made.ReportBy, made.ResolveBy, replyBy)
	}
}

func TestTicketReplyOnVerify(t *testing.T) {
	cmd := ticketOf("20260302-0040")
	cmd.Category, cmd.Community = catDispute, "wanhui"
	h := received(t, cmd)
	h.must(street, AcceptTicket{})
	h.must(judicial, Report{Assignee: "judicial-office"})
	h.must(judicial, Resolve{Assignee: "judicial-office", Mediation: "success"})
	h.refused(street, Verify{Accepted: true}, ErrInvalidValue, "reply", "closes with a reply to its platform hotline-12345")
	h.refused(street, Verify{Accepted: false, Reply: "x"}, ErrInvalidValue, "reply", "when its case is accepted")
	events := h.must(street, Verify{Accepted: true, Reply: "经调解，双方达成协议"})
	if v, ok := events[0].(ResolutionVerified); !ok || v.Reply != "经调解，双方达成协议" || h.c.Status != StatusClosed {
		t.Fatalf("verify: %#v, status %s", events, h.c.Status)
	}
	// A case its street raised owes nobody a reply.
	r := raised(t, catDispute, UrgencyRoutine)
	r.must(judicial, Report{Assignee: "judicial-office"})
	r.must(judicial, Resolve{Assignee: "judicial-office", Mediation: "success"})
	r.refused(street, Verify{Accepted: true, Reply: "x"}, ErrInvalidValue, "reply", "not here")
	r.must(street, Verify{Accepted: true})
}

func TestReturnTicket(t *testing.T) {
	h := received(t, ticketOf("20260302-0050"))
	h.refused(street, ReturnTicket{Reason: "  "}, ErrInvalidValue, "reason", "needs a reason")
	events := h.must(street, ReturnTicket{Reason: "不属本街道辖区"})
	if !reflect.DeepEqual(events, []Event{TicketReturned{Reason: "不属本街道辖区"}}) || h.c.Status != StatusReturned || h.c.ReturnReason != "不属本街道辖区" {
		t.Fatalf("return: %#v, case %+v", events, h.c)
	}
	for _, cmd := range []Command{AcceptTicket{Category: catIssue, Community: "wanhui"}, ReturnTicket{Reason: "again"}, Route{Lead: "urban-management"}, Rate{Rating: "satisfied"}} {
		h.refused(street, cmd, ErrInvalidTransition, "", "returned to its platform")
	}
	if events, err := Decide(h.c, CheckDeadlines{}, h.dir, t0.Add(72*time.Hour)); err != nil || len(events) != 0 {
		t.Errorf("a returned ticket has deadlines: %v, %v", events, err)
	}
	if next := NextDeadline(h.c, h.dir, t0); !next.IsZero() {
		t.Errorf("a returned ticket's next deadline is %s", next)
	}
	// A case its street raised is neither accepted nor returned.
	r := raised(t, catIssue, UrgencyRoutine)
	r.refused(street, AcceptTicket{}, ErrInvalidTransition, "", "only a ticket")
	r.refused(street, ReturnTicket{Reason: "x"}, ErrInvalidTransition, "", "only a ticket")
}

// An unsigned ticket goes overdue at accept_by and up the ladder like any
// deadline, in its street's name; signing for it ends that.
func TestTicketAcceptDeadline(t *testing.T) {
	h := received(t, ticketOf("20260302-0060"))
	acceptBy := *h.c.AcceptBy
	if next := NextDeadline(h.c, h.dir, t0); !next.Equal(acceptBy) {
		t.Fatalf("next deadline %s, want accept_by %s", next, acceptBy)
	}
	if events := DueEscalations(h.c, h.dir, acceptBy.Add(-time.Second)); len(events) != 0 {
		t.Fatalf("before accept_by: %v", events)
	}
	h.now = acceptBy
	events := h.must(system, CheckDeadlines{})
	want := []Event{
		AssignmentOverdue{Assignee: "longqiao", Role: RoleStreet, Deadline: DeadlineAccept, Level: "district", Due: acceptBy},
		CaseEscalated{Deadline: DeadlineAccept, Level: "district", Assignee: "longqiao"},
	}
	if !reflect.DeepEqual(events, want) {
		t.Fatalf("at accept_by: %#v\nwant %#v", events, want)
	}
	if next := NextDeadline(h.c, h.dir, acceptBy); !next.Equal(acceptBy.Add(30 * time.Minute)) {
		t.Fatalf("next deadline %s, want the city rung 30m later", next)
	}
	if events := DueEscalations(h.c, h.dir, acceptBy.Add(time.Minute)); len(events) != 0 {
		t.Fatalf("marked twice: %v", events)
	}
	h.now = acceptBy.Add(30 * time.Minute)
	if events := h.must(system, CheckDeadlines{}); !reflect.DeepEqual(events, []Event{CaseEscalated{Deadline: DeadlineAccept, Level: "city", Assignee: "longqiao"}}) {
		t.Fatalf("30m later: %#v", events)
	}
	// Signed for late: the accept deadline is over, the assignments' begin.
	h.must(street, AcceptTicket{Category: catIssue, Community: "wanhui"})
	if events := DueEscalations(h.c, h.dir, h.now.Add(time.Minute)); len(events) != 0 {
		t.Fatalf("after accept: %v", events)
	}
	if next := NextDeadline(h.c, h.dir, h.now); !next.Equal(*h.c.Assignment("ecology-bureau").ReportBy) {
		t.Errorf("after accept the next deadline is %s, want the lead's report_by", next)
	}
}

// A ticket for a need: the offers and the claim stay within reply_by.
func TestTicketNeedWithinReplyBy(t *testing.T) {
	replyBy := t0.Add(20 * time.Minute)
	cmd := ticketOf("20260302-0070")
	cmd.ReplyBy, cmd.Category, cmd.Community = &replyBy, catNeed, "wanhui"
	h := received(t, cmd)
	events := h.must(street, AcceptTicket{})
	for _, e := range events[1:] {
		if made := e.(AssignmentMade); made.Role != RoleOffer || !made.ReportBy.Equal(replyBy) {
			t.Errorf("offer %+v, want report_by at reply_by", made)
		}
	}
	claimed := h.must(school, Claim{Assignee: "no1-middle-school"})
	if got := claimed[0].(NeedClaimed).ResolveBy; !got.Equal(replyBy) {
		t.Errorf("claimed with resolve_by %s, want reply_by %s", got, replyBy)
	}
}

func TestTicketEventsDecode(t *testing.T) {
	reply := t0.Add(time.Hour)
	for _, e := range []Event{
		TicketReceived{Platform: "hotline-12345", ExternalID: "a-1", Street: "longqiao", Title: "t", Category: catIssue, Community: "wanhui",
			Urgency: UrgencyUrgent, ReplyBy: &reply, Channel: ChannelApp, Priority: PriorityLeaderAssigned, AcceptBy: t0, DirectoryVersion: "test-1"},
		TicketAccepted{Category: catIssue, Kind: KindIssue, Community: "wanhui", Urgency: UrgencyRoutine},
		TicketReturned{Reason: "r"},
		ResolutionVerified{Note: "n", Reply: "r"},
	} {
		data, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeEvent(e.EventType(), data)
		if err != nil || !reflect.DeepEqual(got, e) {
			t.Errorf("%s %s decoded as %#v, %v", e.EventType(), data, got, err)
		}
	}
	for _, s := range []string{"received", "returned"} {
		if _, err := ParseStatus(s); err != nil {
			t.Errorf("ParseStatus(%s): %v", s, err)
		}
	}
}
