package domain

import (
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// Replaying the sealed history, cut after any command, gives the state that
// Apply built at that point; the harness also checks it after every command.
func TestReplayEqualsApply(t *testing.T) {
	h := newHarness(t)
	type point struct {
		events int
		state  string
	}
	var points []point
	record := func() { points = append(points, point{len(h.history), snapshot(t, h.c)}) }
	do := func(at time.Duration, actor Actor, cmd Command) {
		h.at(at)
		h.must(actor, cmd)
		record()
	}
	do(0, street, raiseOf(catConstruction, UrgencyEmergency))
	do(time.Minute, urban, Report{Assignee: "urban-management", Note: "on site"})
	h.at(10 * time.Minute)
	if len(h.check()) == 0 {
		t.Fatal("the assists missed report_by and nothing was due")
	}
	record()
	do(11*time.Minute, university, Decline{Assignee: "putian-university", Reason: "not a school matter"})
	do(12*time.Minute, police, NoteProgress{Assignee: "police-station", Note: "patrol sent"})
	do(20*time.Minute, urban, Resolve{Assignee: "urban-management"})
	do(21*time.Minute, street, Verify{Accepted: false, Note: "the wall still stands"})
	do(30*time.Minute, street, Route{Assist: []string{"putian-university"}})
	do(time.Hour, urban, Resolve{Assignee: "urban-management", Note: "demolished"})
	do(2*time.Hour, street, Verify{Accepted: true})
	do(3*time.Hour, street, Rate{Rating: "satisfied"})

	stored := roundTrip(t, h.history)
	for _, p := range points {
		c, err := Replay(h.c.ID, stored[:p.events])
		if err != nil {
			t.Fatalf("Replay of %d events: %v", p.events, err)
		}
		if got := snapshot(t, c); got != p.state {
			t.Fatalf("replay of %d events:\n got %s\nwant %s", p.events, got, p.state)
		}
	}
	final, err := Replay(h.c.ID, stored)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(final, h.c) {
		t.Fatalf("replayed %s\napplied  %s", snapshot(t, final), snapshot(t, h.c))
	}
	if final.Status != StatusClosed || final.Version != uint64(len(stored)) || len(final.Commands) != len(points) {
		t.Fatalf("final: status %s, version %d, %d commands", final.Status, final.Version, len(final.Commands))
	}
	// Every command is remembered with the version after it.
	for _, env := range stored {
		if v := final.Commands[env.CorrelationID]; v <= env.Version {
			t.Fatalf("command %s: version after %d, but its event is at %d", env.CorrelationID, v, env.Version)
		}
	}
	if !final.Escalated("police-station", DeadlineReport, "district") || final.Escalated("urban-management", DeadlineReport, "district") {
		t.Fatal("escalations were not replayed")
	}
}

func TestReplayRefusesUnknownEvents(t *testing.T) {
	h := raised(t, catIssue, UrgencyRoutine)
	bad := roundTrip(t, h.history)
	bad[1].Type = "AssignmentTeleported"
	if _, err := Replay(h.c.ID, bad); err == nil || !strings.Contains(err.Error(), "version 1") {
		t.Fatalf("Replay = %v, want an error naming version 1", err)
	}
	empty, err := Replay(h.c.ID, nil)
	if err != nil || empty.Exists() || empty.ID != h.c.ID {
		t.Fatalf("Replay(nil) = %+v, %v", empty, err)
	}
}

// A case built without NewCase still folds events (maps are made on demand).
func TestApplyOnZeroCase(t *testing.T) {
	h := raised(t, catIssue, UrgencyRoutine)
	h.at(time.Hour)
	h.check()
	c := &Case{ID: h.c.ID}
	for _, env := range roundTrip(t, h.history) {
		e, err := DecodeEvent(env.Type, env.Data)
		if err != nil {
			t.Fatal(err)
		}
		c.Apply(env, e)
	}
	if snapshot(t, c) != snapshot(t, h.c) || !c.Escalated("ecology-bureau", DeadlineReport, "city") || len(c.Commands) != 2 {
		t.Fatalf("zero case folded to %s", snapshot(t, c))
	}
	var nilCase *Case
	if nilCase.Exists() {
		t.Fatal("a nil case exists")
	}
}

func TestStatusDerivation(t *testing.T) {
	at := t0.Add(time.Hour)
	made := func(id string, role Role) Event {
		return AssignmentMade{Assignee: id, Role: role, ReportBy: at, ResolveBy: at.Add(time.Hour)}
	}
	raise := WhistleRaised{Street: "longqiao", Community: "wanhui", Category: catIssue, Kind: KindIssue, Urgency: UrgencyRoutine, Title: "t"}
	tests := []struct {
		name   string
		events []Event
		want   Status
	}{
		{"raised with no assignment", []Event{raise}, StatusUnassigned},
		{"a lead assigned", []Event{raise, made("a", RoleLead)}, StatusRouted},
		{"only offers", []Event{raise, made("u1", RoleOffer), made("u2", RoleOffer)}, StatusRouted},
		{"an assist reported in", []Event{raise, made("a", RoleLead), made("b", RoleAssist),
			AssignmentReported{Assignee: "b", Role: RoleAssist}}, StatusInProgress},
		{"overdue changes no status", []Event{raise, made("a", RoleLead),
			AssignmentOverdue{Assignee: "a", Role: RoleLead, Deadline: DeadlineReport, Level: "district"},
			CaseEscalated{Assignee: "a", Deadline: DeadlineReport, Level: "district"}}, StatusRouted},
		{"one of two leads resolved", []Event{raise, made("a", RoleLead), made("b", RoleLead),
			AssignmentReported{Assignee: "a"}, AssignmentResolved{Assignee: "a", Role: RoleLead}}, StatusInProgress},
		{"every lead resolved, the assist not", []Event{raise, made("a", RoleLead), made("b", RoleAssist),
			AssignmentReported{Assignee: "a"}, AssignmentResolved{Assignee: "a", Role: RoleLead}}, StatusResolved},
		{"a resolved lead and a declined one", []Event{raise, made("a", RoleLead), made("b", RoleLead),
			AssignmentReported{Assignee: "a"}, AssignmentResolved{Assignee: "a", Role: RoleLead},
			AssignmentDeclined{Assignee: "b", Role: RoleLead, Reason: "r"}}, StatusResolved},
		{"the only lead declined, an assist left", []Event{raise, made("a", RoleLead), made("b", RoleAssist),
			AssignmentDeclined{Assignee: "a", Role: RoleLead, Reason: "r"}}, StatusUnassigned},
		{"every offer declined", []Event{raise, made("u1", RoleOffer), made("u2", RoleOffer),
			AssignmentDeclined{Assignee: "u1", Role: RoleOffer, Reason: "r"}, AssignmentDeclined{Assignee: "u2", Role: RoleOffer, Reason: "r"}}, StatusUnassigned},
		{"claimed", []Event{raise, made("u1", RoleOffer), made("u2", RoleOffer),
			NeedClaimed{Assignee: "u2", Role: RoleLead, ResolveBy: at}}, StatusInProgress},
		{"claimed, the claimant declines", []Event{raise, made("u1", RoleOffer), made("u2", RoleOffer),
			NeedClaimed{Assignee: "u2", Role: RoleLead, ResolveBy: at}, AssignmentDeclined{Assignee: "u2", Role: RoleLead, Reason: "r"}}, StatusUnassigned},
		{"rejected", []Event{raise, made("a", RoleLead), AssignmentReported{Assignee: "a"},
			AssignmentResolved{Assignee: "a", Role: RoleLead}, ResolutionRejected{}}, StatusInProgress},
		{"verified, not yet closed", []Event{raise, made("a", RoleLead), AssignmentReported{Assignee: "a"},
			AssignmentResolved{Assignee: "a", Role: RoleLead}, ResolutionVerified{}}, StatusResolved},
		{"closed", []Event{raise, made("a", RoleLead), AssignmentReported{Assignee: "a"},
			AssignmentResolved{Assignee: "a", Role: RoleLead}, ResolutionVerified{}, CaseClosed{}}, StatusClosed},
		{"rated after closing", []Event{raise, made("a", RoleLead), AssignmentReported{Assignee: "a"},
			AssignmentResolved{Assignee: "a", Role: RoleLead}, ResolutionVerified{}, CaseClosed{}, SatisfactionRated{Rating: RatingSatisfied}}, StatusClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCase(uuid.NewString())
			for i, e := range tt.events {
				c.Evolve(e, at.Add(time.Duration(i)*time.Minute))
			}
			if c.Status != tt.want {
				t.Fatalf("status %s, want %s (%s)", c.Status, tt.want, snapshot(t, c))
			}
		})
	}
}

func TestOverdueFlag(t *testing.T) {
	at := t0.Add(time.Hour)
	tests := []struct {
		name   string
		events []Event
		want   bool
	}{
		{"report missed", []Event{AssignmentOverdue{Assignee: "a", Deadline: DeadlineReport}}, true},
		{"report missed, then reported", []Event{AssignmentOverdue{Assignee: "a", Deadline: DeadlineReport}, AssignmentReported{Assignee: "a"}}, false},
		{"resolve missed, reported", []Event{AssignmentReported{Assignee: "a"}, AssignmentOverdue{Assignee: "a", Deadline: DeadlineResolve}}, true},
		{"resolve missed, then resolved", []Event{AssignmentReported{Assignee: "a"},
			AssignmentOverdue{Assignee: "a", Deadline: DeadlineResolve}, AssignmentResolved{Assignee: "a"}}, false},
		{"resolve missed, resolved, rejected", []Event{AssignmentReported{Assignee: "a"},
			AssignmentOverdue{Assignee: "a", Deadline: DeadlineResolve}, AssignmentResolved{Assignee: "a"}, ResolutionRejected{}}, true},
		{"report missed, then declined", []Event{AssignmentOverdue{Assignee: "a", Deadline: DeadlineReport},
			AssignmentDeclined{Assignee: "a", Reason: "r"}}, false},
		{"both missed, reported late", []Event{AssignmentOverdue{Assignee: "a", Deadline: DeadlineReport},
			AssignmentOverdue{Assignee: "a", Deadline: DeadlineResolve}, AssignmentReported{Assignee: "a"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCase(uuid.NewString())
			c.Evolve(AssignmentMade{Assignee: "a", Role: RoleLead, ReportBy: at, ResolveBy: at}, t0)
			for _, e := range tt.events {
				c.Evolve(e, at)
			}
			if got := c.Assignment("a").Overdue; got != tt.want {
				t.Fatalf("overdue = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAssignmentLookups(t *testing.T) {
	c := NewCase(uuid.NewString())
	c.Evolve(AssignmentMade{Assignee: "a", Role: RoleLead}, t0)
	c.Evolve(AssignmentDeclined{Assignee: "a", Role: RoleLead, Reason: "r"}, t0)
	c.Evolve(AssignmentMade{Assignee: "a", Role: RoleAssist}, t0)
	if a := c.Assignment("a"); a == nil || a.Role != RoleAssist || a.Status != Assigned {
		t.Fatalf("Assignment(a) = %+v, want the latest", a)
	}
	if !c.Involves("a") || c.Involves("b") || c.Assignment("b") != nil {
		t.Fatal("Involves is wrong")
	}
	if a := c.Assignment("a"); a.ReportBy != nil || a.ResolveBy != nil {
		t.Fatal("zero deadlines became times")
	}
}

// The case and its assignments marshal to the shapes of DESIGN.md.
func TestCaseJSONShape(t *testing.T) {
	h := runScenario(t, []step{
		{actor: street, cmd: raiseOf(catDispute, UrgencyRoutine), want: typesRaisedDispute},
		{actor: judicial, cmd: Report{Assignee: "judicial-office"}, want: one(TypeAssignmentReported)},
		{actor: judicial, cmd: Resolve{Assignee: "judicial-office", Mediation: "success"}, want: one(TypeAssignmentResolved)},
		{at: time.Hour, actor: street, cmd: Verify{Accepted: true}, want: typesClose},
		{actor: street, cmd: Rate{Rating: "satisfied"}, want: one(TypeSatisfactionRated)},
	})
	b, err := json.Marshal(h.c)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"case_id", "street", "community", "category", "kind", "urgency", "status", "version",
		"raised_at", "closed_at", "assignments", "mediation", "rating"} {
		if _, ok := got[k]; !ok {
			t.Errorf("case JSON lacks %q: %s", k, b)
		}
	}
	for _, k := range []string{"LastHash", "Commands", "RequestSHA256", "escalated", "Escalations"} {
		if _, ok := got[k]; ok {
			t.Errorf("case JSON exposes %q", k)
		}
	}
	want := map[string]string{"case_id": `"` + h.c.ID + `"`, "kind": `"dispute"`, "status": `"closed"`, "version": "7",
		"mediation": `"success"`, "rating": `"satisfied"`, "closed_at": `"2026-03-02T10:00:00Z"`, "raised_at": `"2026-03-02T09:00:00Z"`}
	for k, v := range want {
		if string(got[k]) != v {
			t.Errorf("case %s = %s, want %s", k, got[k], v)
		}
	}
	var as []map[string]json.RawMessage
	if err := json.Unmarshal(got["assignments"], &as); err != nil || len(as) != 1 {
		t.Fatalf("assignments %s: %v", got["assignments"], err)
	}
	var keys []string
	for k := range as[0] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	wantKeys := []string{"assignee", "overdue", "report_by", "reported_at", "resolve_by", "resolved_at", "role", "status"}
	if !reflect.DeepEqual(keys, wantKeys) {
		t.Errorf("assignment keys %v, want %v", keys, wantKeys)
	}
	if string(as[0]["status"]) != `"resolved"` || string(as[0]["role"]) != `"lead"` || string(as[0]["overdue"]) != "false" {
		t.Errorf("assignment %s", got["assignments"])
	}
	// An open case shows null for what has not happened.
	open := raised(t, catIssue, UrgencyRoutine)
	b, _ = json.Marshal(open.c)
	for _, k := range []string{`"closed_at":null`, `"mediation":null`, `"rating":null`, `"reported_at":null`, `"resolved_at":null`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("open case JSON lacks %s: %s", k, b)
		}
	}
}

func TestParsers(t *testing.T) {
	for _, s := range []string{"issue", "dispute", "need"} {
		if k, err := ParseKind(s); err != nil || string(k) != s {
			t.Errorf("ParseKind(%q) = %q, %v", s, k, err)
		}
	}
	for _, s := range []string{"routine", "urgent", "emergency"} {
		if u, err := ParseUrgency(s); err != nil || string(u) != s {
			t.Errorf("ParseUrgency(%q) = %q, %v", s, u, err)
		}
	}
	for _, s := range []string{"satisfied", "basically_satisfied", "unsatisfied"} {
		if r, err := ParseRating(s); err != nil || string(r) != s {
			t.Errorf("ParseRating(%q) = %q, %v", s, r, err)
		}
	}
	for _, s := range []string{"routed", "in_progress", "resolved", "closed", "unassigned"} {
		if st, err := ParseStatus(s); err != nil || string(st) != s {
			t.Errorf("ParseStatus(%q) = %q, %v", s, st, err)
		}
	}
	for _, s := range []string{"street", "department", "unit", "auditor"} {
		if r, err := ParsePrincipalRole(s); err != nil || string(r) != s {
			t.Errorf("ParsePrincipalRole(%q) = %q, %v", s, r, err)
		}
	}
	bad := []struct {
		name string
		err  error
	}{
		{"kind", func() error { _, err := ParseKind("Issue"); return err }()},
		{"urgency", func() error { _, err := ParseUrgency(""); return err }()},
		{"rating", func() error { _, err := ParseRating("happy"); return err }()},
		{"mediation", func() error { _, err := ParseMediation("draw"); return err }()},
		{"status", func() error { _, err := ParseStatus("open"); return err }()},
		{"role", func() error { _, err := ParsePrincipalRole("system"); return err }()},
	}
	for _, b := range bad {
		if b.err == nil || !strings.Contains(b.err.Error(), "unknown") {
			t.Errorf("%s: a bad value was accepted or the error does not say so: %v", b.name, b.err)
		}
	}
	if !ecology.IsAssignee() || !university.IsAssignee() || street.IsAssignee() || system.IsAssignee() {
		t.Error("IsAssignee is wrong")
	}
	if ecology.String() != "department:ecology-bureau" {
		t.Errorf("Actor.String() = %q", ecology.String())
	}
}
