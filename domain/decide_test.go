package domain

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// step is one command of a scenario, with what it must produce or why it must
// be refused.
type step struct {
	name  string
	at    time.Duration // sets the clock to t0+at when not 0
	actor Actor
	cmd   Command
	// On success: the event types, in order, and the case status after.
	want   []string
	status Status
	// On refusal: the sentinel, the field and a part of the reason.
	err   error
	field string
	why   string
	check func(t *testing.T, h *harness, events []Event)
}

func runScenario(t *testing.T, steps []step) *harness {
	t.Helper()
	h := newHarness(t)
	for i, s := range steps {
		if s.at != 0 {
			h.at(s.at)
		}
		var events []Event
		if s.err != nil {
			h.refused(s.actor, s.cmd, s.err, s.field, s.why)
		} else {
			events = h.must(s.actor, s.cmd)
			if got := eventTypes(events); !reflect.DeepEqual(got, s.want) {
				t.Fatalf("step %d %q: events %v, want %v", i, s.name, got, s.want)
			}
		}
		if s.status != "" && h.c.Status != s.status {
			t.Fatalf("step %d %q: case is %s, want %s", i, s.name, h.c.Status, s.status)
		}
		if s.check != nil {
			s.check(t, h, events)
		}
	}
	return h
}

var (
	typesRaisedIssue   = []string{TypeWhistleRaised, TypeAssignmentMade, TypeAssignmentMade}
	typesRaisedDispute = []string{TypeWhistleRaised, TypeAssignmentMade}
	typesRaisedNeed    = []string{TypeWhistleRaised, TypeAssignmentMade, TypeAssignmentMade, TypeAssignmentMade}
	typesClose         = []string{TypeResolutionVerified, TypeCaseClosed}
	one                = func(typ string) []string { return []string{typ} }
)

// wantAssignment checks an assignee's latest assignment.
func wantAssignment(t *testing.T, h *harness, id string, role Role, status AssignmentStatus) *Assignment {
	t.Helper()
	a := h.assignment(id)
	if a.Role != role || a.Status != status {
		t.Fatalf("%s holds %s %s, want %s %s", id, a.Role, a.Status, role, status)
	}
	return a
}

func TestCaseRules(t *testing.T) {
	scenarios := map[string][]step{
		"issue: lead and assist report in, note progress, resolve; the street verifies and rates": {
			{name: "raise", actor: street, cmd: raiseOf(catIssue, UrgencyRoutine), want: typesRaisedIssue, status: StatusRouted,
				check: func(t *testing.T, h *harness, events []Event) {
					c := h.c
					if c.Kind != KindIssue || c.Street != "longqiao" || c.Community != "wanhui" || c.Category != catIssue ||
						c.Urgency != UrgencyRoutine || !sameTime(c.RaisedAt, t0) || c.ClosedAt != nil || c.Version != 3 {
						t.Fatalf("raised case: %s", snapshot(t, c))
					}
					for _, id := range []string{"ecology-bureau", "water-bureau"} {
						role := RoleLead
						if id == "water-bureau" {
							role = RoleAssist
						}
						a := wantAssignment(t, h, id, role, Assigned)
						if !sameTime(a.ReportBy, t0.Add(30*time.Minute)) || !sameTime(a.ResolveBy, t0.Add(72*time.Hour)) ||
							a.ReportedAt != nil || a.ResolvedAt != nil || a.Overdue {
							t.Fatalf("%s: %+v", id, a)
						}
					}
					if ev := events[0].(WhistleRaised); ev.DirectoryVersion != "test-1" || ev.Kind != KindIssue {
						t.Fatalf("WhistleRaised = %+v", ev)
					}
				}},
			{name: "lead resolves before reporting in", actor: ecology, cmd: Resolve{Assignee: "ecology-bureau"},
				err: ErrInvalidTransition, why: "must report in before resolving"},
			{name: "lead notes progress before reporting in", actor: ecology, cmd: NoteProgress{Assignee: "ecology-bureau", Note: "on the way"},
				want: one(TypeProgressNoted), status: StatusRouted},
			{name: "lead reports in", at: 10 * time.Minute, actor: ecology, cmd: Report{Assignee: "ecology-bureau", Note: "on site"},
				want: one(TypeAssignmentReported), status: StatusInProgress,
				check: func(t *testing.T, h *harness, events []Event) {
					a := wantAssignment(t, h, "ecology-bureau", RoleLead, Reported)
					if !sameTime(a.ReportedAt, t0.Add(10*time.Minute)) {
						t.Fatalf("reported_at = %v", a.ReportedAt)
					}
					if ev := events[0].(AssignmentReported); ev.Role != RoleLead || ev.Note != "on site" {
						t.Fatalf("AssignmentReported = %+v", ev)
					}
				}},
			{name: "lead reports in twice", actor: ecology, cmd: Report{Assignee: "ecology-bureau"},
				err: ErrInvalidTransition, why: "cannot report in: its assignment is reported"},
			{name: "assist reports in", at: 20 * time.Minute, actor: water, cmd: Report{Assignee: "water-bureau"},
				want: one(TypeAssignmentReported), status: StatusInProgress},
			{name: "a mediation outcome on an issue", actor: ecology, cmd: Resolve{Assignee: "ecology-bureau", Mediation: "success"},
				err: ErrInvalidValue, field: "mediation", why: "only a dispute"},
			{name: "a note too long", actor: ecology, cmd: NoteProgress{Assignee: "ecology-bureau", Note: strings.Repeat("字", MaxText+1)},
				err: ErrInvalidValue, field: "note", why: "at most 4000"},
			{name: "a note that is not UTF-8", actor: ecology, cmd: NoteProgress{Assignee: "ecology-bureau", Note: "\xff"},
				err: ErrInvalidValue, field: "note", why: "not valid UTF-8"},
			{name: "the lead acts for the assist", actor: ecology, cmd: Report{Assignee: "water-bureau"},
				err: ErrNotYours, why: "ecology-bureau holds no assignment"},
			{name: "verify before resolution", actor: street, cmd: Verify{Accepted: true},
				err: ErrInvalidTransition, why: "only a resolved case can be verified; this one is in_progress"},
			{name: "rate before closure", actor: street, cmd: Rate{Rating: "satisfied"},
				err: ErrInvalidTransition, why: "a rating follows closure; this case is in_progress"},
			{name: "assist progress", at: 2 * time.Hour, actor: water, cmd: NoteProgress{Assignee: "water-bureau", Note: "sampling"},
				want: one(TypeProgressNoted), status: StatusInProgress},
			{name: "assist resolves; the lead has not", at: 24 * time.Hour, actor: water, cmd: Resolve{Assignee: "water-bureau", Note: "sluice closed"},
				want: one(TypeAssignmentResolved), status: StatusInProgress},
			{name: "assist resolves twice", actor: water, cmd: Resolve{Assignee: "water-bureau"},
				err: ErrInvalidTransition, why: "cannot resolve: its assignment is resolved"},
			{name: "assist notes progress once resolved", actor: water, cmd: NoteProgress{Assignee: "water-bureau"},
				err: ErrInvalidTransition, why: "cannot note progress"},
			{name: "lead resolves", at: 30 * time.Hour, actor: ecology, cmd: Resolve{Assignee: "ecology-bureau", Note: "cleaned"},
				want: one(TypeAssignmentResolved), status: StatusResolved,
				check: func(t *testing.T, h *harness, events []Event) {
					a := wantAssignment(t, h, "ecology-bureau", RoleLead, Resolved)
					if !sameTime(a.ResolvedAt, t0.Add(30*time.Hour)) || h.c.Mediation != nil {
						t.Fatalf("resolved lead %+v, mediation %v", a, h.c.Mediation)
					}
				}},
			{name: "route while resolved", actor: street, cmd: Route{Lead: "urban-management"},
				err: ErrInvalidTransition, why: "verify it before routing again"},
			{name: "street accepts", at: 31 * time.Hour, actor: street, cmd: Verify{Accepted: true, Note: "the creek is clear"},
				want: typesClose, status: StatusClosed,
				check: func(t *testing.T, h *harness, _ []Event) {
					if !sameTime(h.c.ClosedAt, t0.Add(31*time.Hour)) || h.c.Rating != nil {
						t.Fatalf("closed case: %s", snapshot(t, h.c))
					}
				}},
			{name: "an unknown rating", actor: street, cmd: Rate{Rating: "meh"},
				err: ErrInvalidValue, field: "rating", why: `unknown rating "meh"`},
			{name: "rating", at: 32 * time.Hour, actor: street, cmd: Rate{Rating: "satisfied"},
				want: one(TypeSatisfactionRated), status: StatusClosed,
				check: func(t *testing.T, h *harness, _ []Event) {
					if h.c.Rating == nil || *h.c.Rating != RatingSatisfied {
						t.Fatalf("rating = %v", h.c.Rating)
					}
				}},
			{name: "rating twice", actor: street, cmd: Rate{Rating: "unsatisfied"},
				err: ErrInvalidTransition, why: "already rated satisfied; a rating is recorded once"},
		},

		"issue with two assists, one of them a resident unit": {
			{name: "raise", actor: street, cmd: raiseOf(catConstruction, UrgencyUrgent),
				want: []string{TypeWhistleRaised, TypeAssignmentMade, TypeAssignmentMade, TypeAssignmentMade}, status: StatusRouted,
				check: func(t *testing.T, h *harness, _ []Event) {
					wantAssignment(t, h, "urban-management", RoleLead, Assigned)
					wantAssignment(t, h, "police-station", RoleAssist, Assigned)
					a := wantAssignment(t, h, "putian-university", RoleAssist, Assigned)
					if !sameTime(a.ReportBy, t0.Add(15*time.Minute)) || !sameTime(a.ResolveBy, t0.Add(24*time.Hour)) {
						t.Fatalf("urgent deadlines: %+v", a)
					}
				}},
			{name: "the unit assist reports in first", actor: university, cmd: Report{Assignee: "putian-university"},
				want: one(TypeAssignmentReported), status: StatusInProgress},
			{name: "the unit assist claims", actor: university, cmd: Claim{Assignee: "putian-university"},
				err: ErrInvalidTransition, why: "only a need offered to putian-university can be claimed"},
			{name: "lead reports in", actor: urban, cmd: Report{Assignee: "urban-management"},
				want: one(TypeAssignmentReported), status: StatusInProgress},
			{name: "lead resolves while assists have not", actor: urban, cmd: Resolve{Assignee: "urban-management"},
				want: one(TypeAssignmentResolved), status: StatusResolved},
			{name: "an assist that never reported in may still decline", actor: police, cmd: Decline{Assignee: "police-station", Reason: "no crime"},
				want: one(TypeAssignmentDeclined), status: StatusResolved},
			{name: "accept", actor: street, cmd: Verify{Accepted: true}, want: typesClose, status: StatusClosed},
		},

		"dispute: mediation success": {
			{name: "raise", actor: street, cmd: raiseOf(catDispute, UrgencyRoutine), want: typesRaisedDispute, status: StatusRouted,
				check: func(t *testing.T, h *harness, _ []Event) {
					wantAssignment(t, h, "judicial-office", RoleLead, Assigned)
					if h.c.Kind != KindDispute || len(h.c.Assignments) != 1 || h.c.Mediation != nil {
						t.Fatalf("raised dispute: %s", snapshot(t, h.c))
					}
				}},
			{name: "report in", actor: judicial, cmd: Report{Assignee: "judicial-office"}, want: one(TypeAssignmentReported), status: StatusInProgress},
			{name: "resolve without an outcome", actor: judicial, cmd: Resolve{Assignee: "judicial-office", Note: "talked"},
				err: ErrInvalidValue, field: "mediation", why: "mediation success or failure"},
			{name: "resolve with an unknown outcome", actor: judicial, cmd: Resolve{Assignee: "judicial-office", Mediation: "partial"},
				err: ErrInvalidValue, field: "mediation", why: `unknown mediation outcome "partial"`},
			{name: "resolve with success", actor: judicial, cmd: Resolve{Assignee: "judicial-office", Mediation: "success"},
				want: one(TypeAssignmentResolved), status: StatusResolved,
				check: func(t *testing.T, h *harness, events []Event) {
					if h.c.Mediation == nil || *h.c.Mediation != MediationSuccess {
						t.Fatalf("mediation = %v", h.c.Mediation)
					}
					if ev := events[0].(AssignmentResolved); ev.Mediation != MediationSuccess || ev.Role != RoleLead {
						t.Fatalf("AssignmentResolved = %+v", ev)
					}
				}},
			{name: "accept", actor: street, cmd: Verify{Accepted: true}, want: typesClose, status: StatusClosed},
			{name: "rate", actor: street, cmd: Rate{Rating: "basically_satisfied"}, want: one(TypeSatisfactionRated), status: StatusClosed},
		},

		"dispute: mediation failure, rejected, then success": {
			{name: "raise", actor: street, cmd: raiseOf(catDispute, UrgencyEmergency), want: typesRaisedDispute, status: StatusRouted},
			{name: "report in", actor: judicial, cmd: Report{Assignee: "judicial-office"}, want: one(TypeAssignmentReported), status: StatusInProgress},
			{name: "resolve with failure", actor: judicial, cmd: Resolve{Assignee: "judicial-office", Mediation: "failure"},
				want: one(TypeAssignmentResolved), status: StatusResolved,
				check: func(t *testing.T, h *harness, _ []Event) {
					if h.c.Mediation == nil || *h.c.Mediation != MediationFailure {
						t.Fatalf("mediation = %v", h.c.Mediation)
					}
				}},
			{name: "the street sends it back", actor: street, cmd: Verify{Accepted: false, Note: "try again"},
				want: one(TypeResolutionRejected), status: StatusInProgress},
			{name: "resolve again with success, without reporting in", actor: judicial, cmd: Resolve{Assignee: "judicial-office", Mediation: "success"},
				want: one(TypeAssignmentResolved), status: StatusResolved,
				check: func(t *testing.T, h *harness, _ []Event) {
					if h.c.Mediation == nil || *h.c.Mediation != MediationSuccess {
						t.Fatalf("the latest mediation is not the case's: %v", h.c.Mediation)
					}
				}},
			{name: "accept", actor: street, cmd: Verify{Accepted: true}, want: typesClose, status: StatusClosed},
		},

		"need: offered to every unit; the first claim wins, the other offers lapse": {
			{name: "raise", actor: street, cmd: raiseOf(catNeed, UrgencyRoutine), want: typesRaisedNeed, status: StatusRouted,
				check: func(t *testing.T, h *harness, events []Event) {
					var got []string
					for _, e := range events[1:] {
						m := e.(AssignmentMade)
						if m.Role != RoleOffer || !m.ReportBy.Equal(t0.Add(30*time.Minute)) || !m.ResolveBy.IsZero() {
							t.Fatalf("offer = %+v", m)
						}
						got = append(got, m.Assignee)
					}
					if want := []string{"putian-university", "no1-middle-school", "city-hospital"}; !reflect.DeepEqual(got, want) {
						t.Fatalf("offers to %v, want every unit of the community %v", got, want)
					}
					if h.c.Kind != KindNeed {
						t.Fatalf("kind %s", h.c.Kind)
					}
				}},
			{name: "an offered unit reports in", actor: school, cmd: Report{Assignee: "no1-middle-school"},
				err: ErrInvalidTransition, why: "claim it instead of reporting in"},
			{name: "an offered unit notes progress", actor: school, cmd: NoteProgress{Assignee: "no1-middle-school"},
				err: ErrInvalidTransition, why: "cannot note progress"},
			{name: "an offered unit resolves", actor: school, cmd: Resolve{Assignee: "no1-middle-school"},
				err: ErrInvalidTransition, why: "claim the need before resolving it"},
			{name: "a department not offered claims", actor: ecology, cmd: Claim{Assignee: "ecology-bureau"},
				err: ErrNotYours, why: "holds no assignment"},
			{name: "the school claims", at: 12 * time.Minute, actor: school, cmd: Claim{Assignee: "no1-middle-school", Note: "room 101"},
				want: one(TypeNeedClaimed), status: StatusInProgress,
				check: func(t *testing.T, h *harness, events []Event) {
					claimed := t0.Add(12 * time.Minute)
					ev := events[0].(NeedClaimed)
					if ev.Role != RoleLead || !ev.ResolveBy.Equal(claimed.Add(72*time.Hour)) || ev.Note != "room 101" {
						t.Fatalf("NeedClaimed = %+v", ev)
					}
					a := wantAssignment(t, h, "no1-middle-school", RoleLead, Reported)
					if !sameTime(a.ReportedAt, claimed) || !sameTime(a.ReportBy, claimed) ||
						!sameTime(a.ResolveBy, claimed.Add(72*time.Hour)) || a.Overdue {
						t.Fatalf("the claimant is not a lead reported at claim time: %+v", a)
					}
					wantAssignment(t, h, "putian-university", RoleOffer, Lapsed)
					wantAssignment(t, h, "city-hospital", RoleOffer, Lapsed)
				}},
			{name: "a second claim", actor: university, cmd: Claim{Assignee: "putian-university"},
				err: ErrInvalidTransition, why: "the offer to putian-university is lapsed"},
			{name: "the claimant claims again", actor: school, cmd: Claim{Assignee: "no1-middle-school"},
				err: ErrInvalidTransition, why: "only a need offered to no1-middle-school can be claimed"},
			{name: "a lapsed offer reports in", actor: hospital, cmd: Report{Assignee: "city-hospital"},
				err: ErrInvalidTransition, why: "its assignment is lapsed"},
			{name: "a lapsed offer declines", actor: hospital, cmd: Decline{Assignee: "city-hospital", Reason: "late"},
				err: ErrInvalidTransition, why: "cannot decline: its assignment is lapsed"},
			{name: "the claimant resolves with a mediation outcome", actor: school, cmd: Resolve{Assignee: "no1-middle-school", Mediation: "success"},
				err: ErrInvalidValue, field: "mediation", why: "only a dispute"},
			{name: "the claimant notes progress", actor: school, cmd: NoteProgress{Assignee: "no1-middle-school", Note: "12 pupils"},
				want: one(TypeProgressNoted), status: StatusInProgress},
			{name: "the claimant resolves without reporting in", actor: school, cmd: Resolve{Assignee: "no1-middle-school"},
				want: one(TypeAssignmentResolved), status: StatusResolved},
			{name: "accept", actor: street, cmd: Verify{Accepted: true}, want: typesClose, status: StatusClosed},
			{name: "rate", actor: street, cmd: Rate{Rating: "unsatisfied"}, want: one(TypeSatisfactionRated), status: StatusClosed},
		},

		"need: every offer declined leaves it unassigned; routing by hand restores it": {
			{name: "raise", actor: street, cmd: raiseOf(catNeed, UrgencyRoutine), want: typesRaisedNeed, status: StatusRouted},
			{name: "decline without a reason", actor: university, cmd: Decline{Assignee: "putian-university"},
				err: ErrInvalidValue, field: "reason", why: "a decline needs a reason"},
			{name: "the university declines", actor: university, cmd: Decline{Assignee: "putian-university", Reason: "exams"},
				want: one(TypeAssignmentDeclined), status: StatusRouted},
			{name: "the school declines", actor: school, cmd: Decline{Assignee: "no1-middle-school", Reason: "no room"},
				want: one(TypeAssignmentDeclined), status: StatusRouted},
			{name: "the hospital declines", actor: hospital, cmd: Decline{Assignee: "city-hospital", Reason: "no staff"},
				want: one(TypeAssignmentDeclined), status: StatusUnassigned},
			{name: "a declined offer is claimed", actor: school, cmd: Claim{Assignee: "no1-middle-school"},
				err: ErrInvalidTransition, why: "the offer to no1-middle-school is declined"},
			{name: "the street routes the school as lead", at: time.Hour, actor: street, cmd: Route{Lead: "no1-middle-school"},
				want: one(TypeAssignmentMade), status: StatusRouted,
				check: func(t *testing.T, h *harness, events []Event) {
					if ev := events[0].(AssignmentMade); !ev.ByHand || ev.Role != RoleLead || !ev.ReportBy.Equal(t0.Add(90*time.Minute)) {
						t.Fatalf("AssignmentMade = %+v", ev)
					}
				}},
			{name: "the school reports in", actor: school, cmd: Report{Assignee: "no1-middle-school"},
				want: one(TypeAssignmentReported), status: StatusInProgress},
		},

		"need: a lead routed by hand ends the open offers": {
			{name: "raise", actor: street, cmd: raiseOf(catNeed, UrgencyRoutine), want: typesRaisedNeed, status: StatusRouted},
			{name: "route a department as lead", actor: street, cmd: Route{Lead: "urban-management"},
				want: []string{TypeAssignmentDeclined, TypeAssignmentDeclined, TypeAssignmentDeclined, TypeAssignmentMade}, status: StatusRouted},
			{name: "an offer is claimed afterwards", actor: university, cmd: Claim{Assignee: "putian-university"},
				err: ErrInvalidTransition, why: "is declined"},
		},

		"need: a unit offered the need and routed by hand as an assist": {
			{name: "raise", actor: street, cmd: raiseOf(catNeed, UrgencyRoutine), want: typesRaisedNeed, status: StatusRouted},
			{name: "route the university as an assist: its own offer ends", actor: street, cmd: Route{Assist: []string{"putian-university"}},
				want: []string{TypeAssignmentDeclined, TypeAssignmentMade}, status: StatusRouted,
				check: func(t *testing.T, h *harness, _ []Event) {
					wantAssignment(t, h, "putian-university", RoleAssist, Assigned)
					for _, a := range h.c.Assignments {
						if a.Assignee == "putian-university" && a.Role == RoleOffer && a.Status != Declined {
							t.Fatalf("the university's offer is still %s under its assist", a.Status)
						}
					}
					wantAssignment(t, h, "no1-middle-school", RoleOffer, Assigned)
				}},
			{name: "a lead routed by hand ends the other offers, not the assist", actor: street, cmd: Route{Lead: "urban-management"},
				want: []string{TypeAssignmentDeclined, TypeAssignmentDeclined, TypeAssignmentMade}, status: StatusRouted,
				check: func(t *testing.T, h *harness, _ []Event) {
					wantAssignment(t, h, "putian-university", RoleAssist, Assigned)
					wantAssignment(t, h, "no1-middle-school", RoleOffer, Declined)
					wantAssignment(t, h, "city-hospital", RoleOffer, Declined)
				}},
			{name: "the assist reports in", actor: university, cmd: Report{Assignee: "putian-university"},
				want: one(TypeAssignmentReported), status: StatusInProgress},
		},

		"decline with reason; the street routes by hand": {
			{name: "raise", actor: street, cmd: raiseOf(catIssue, UrgencyRoutine), want: typesRaisedIssue, status: StatusRouted},
			{name: "decline without a reason", actor: ecology, cmd: Decline{Assignee: "ecology-bureau"},
				err: ErrInvalidValue, field: "reason", why: "a decline needs a reason"},
			{name: "decline with a blank reason", actor: ecology, cmd: Decline{Assignee: "ecology-bureau", Reason: " \t "},
				err: ErrInvalidValue, field: "reason", why: "a decline needs a reason"},
			{name: "decline suggesting an unknown assignee", actor: ecology, cmd: Decline{Assignee: "ecology-bureau", Reason: "not ours", Suggest: "fire-brigade"},
				err: ErrInvalidValue, field: "suggest", why: `unknown department or unit "fire-brigade"`},
			{name: "the assist reports in", at: 5 * time.Minute, actor: water, cmd: Report{Assignee: "water-bureau"},
				want: one(TypeAssignmentReported), status: StatusInProgress},
			{name: "the lead declines; no lead remains", at: 10 * time.Minute, actor: ecology,
				cmd:  Decline{Assignee: "ecology-bureau", Reason: "construction waste, not pollution", Suggest: "urban-management"},
				want: one(TypeAssignmentDeclined), status: StatusUnassigned,
				check: func(t *testing.T, h *harness, events []Event) {
					a := wantAssignment(t, h, "ecology-bureau", RoleLead, Declined)
					if a.DeclineNote != "construction waste, not pollution" || a.DeclineSuggest != "urban-management" || a.Overdue {
						t.Fatalf("declined assignment %+v", a)
					}
					if ev := events[0].(AssignmentDeclined); ev.Suggest != "urban-management" || ev.Role != RoleLead {
						t.Fatalf("AssignmentDeclined = %+v", ev)
					}
				}},
			{name: "the declined lead reports in", actor: ecology, cmd: Report{Assignee: "ecology-bureau"},
				err: ErrInvalidTransition, why: "its assignment is declined"},
			{name: "the declined lead declines again", actor: ecology, cmd: Decline{Assignee: "ecology-bureau", Reason: "still not ours"},
				err: ErrInvalidTransition, why: "cannot decline: its assignment is declined"},
			{name: "the declined lead resolves", actor: ecology, cmd: Resolve{Assignee: "ecology-bureau"},
				err: ErrInvalidTransition, why: "cannot resolve: its assignment is declined"},
			{name: "verify an unassigned case", actor: street, cmd: Verify{Accepted: true},
				err: ErrInvalidTransition, why: "this one is unassigned"},
			{name: "a department routes", actor: ecology, cmd: Route{Lead: "urban-management"},
				err: ErrNotYours, why: "only a street may route"},
			{name: "route to nobody", actor: street, cmd: Route{},
				err: ErrInvalidValue, field: "lead", why: "name a lead or an assist"},
			{name: "route to an unknown lead", actor: street, cmd: Route{Lead: "fire-brigade"},
				err: ErrInvalidValue, field: "lead", why: `unknown department or unit "fire-brigade"`},
			{name: "route to a street", actor: street, cmd: Route{Lead: "longqiao"},
				err: ErrInvalidValue, field: "lead", why: "unknown department or unit"},
			{name: "route to an unknown assist", actor: street, cmd: Route{Lead: "urban-management", Assist: []string{"police-station", "zoo"}},
				err: ErrInvalidValue, field: "assist[1]", why: `unknown department or unit "zoo"`},
			{name: "route naming one assignee twice", actor: street, cmd: Route{Lead: "urban-management", Assist: []string{"urban-management"}},
				err: ErrInvalidValue, field: "assist[0]", why: `"urban-management" is named twice`},
			{name: "route to an assignee already active", actor: street, cmd: Route{Lead: "urban-management", Assist: []string{"water-bureau"}},
				err: ErrInvalidTransition, field: "assist[0]", why: `"water-bureau" already holds a assist assignment that is reported`},
			{name: "route a new lead and an assist", at: time.Hour, actor: street, cmd: Route{Lead: "urban-management", Assist: []string{"police-station"}},
				want: []string{TypeAssignmentMade, TypeAssignmentMade}, status: StatusInProgress,
				check: func(t *testing.T, h *harness, events []Event) {
					for _, e := range events {
						if m := e.(AssignmentMade); !m.ByHand || !m.ReportBy.Equal(t0.Add(90*time.Minute)) || !m.ResolveBy.Equal(t0.Add(73*time.Hour)) {
							t.Fatalf("AssignmentMade by hand = %+v", m)
						}
					}
					wantAssignment(t, h, "urban-management", RoleLead, Assigned)
					wantAssignment(t, h, "police-station", RoleAssist, Assigned)
				}},
			{name: "route the same lead again", actor: street, cmd: Route{Lead: "urban-management"},
				err: ErrInvalidTransition, field: "lead", why: `"urban-management" already holds a lead assignment that is assigned`},
			{name: "the new lead reports in", actor: urban, cmd: Report{Assignee: "urban-management"},
				want: one(TypeAssignmentReported), status: StatusInProgress},
			{name: "the new lead resolves", actor: urban, cmd: Resolve{Assignee: "urban-management"},
				want: one(TypeAssignmentResolved), status: StatusResolved},
			{name: "accept", actor: street, cmd: Verify{Accepted: true}, want: typesClose, status: StatusClosed},
		},

		"the lead declines at once: unassigned, then routed again": {
			{name: "raise", actor: street, cmd: raiseOf(catDispute, UrgencyRoutine), want: typesRaisedDispute, status: StatusRouted},
			{name: "the lead declines", actor: judicial, cmd: Decline{Assignee: "judicial-office", Reason: "civil court matter"},
				want: one(TypeAssignmentDeclined), status: StatusUnassigned},
			{name: "route the declined lead back", actor: street, cmd: Route{Lead: "judicial-office"},
				want: one(TypeAssignmentMade), status: StatusRouted,
				check: func(t *testing.T, h *harness, _ []Event) {
					wantAssignment(t, h, "judicial-office", RoleLead, Assigned)
					if n := len(h.c.Assignments); n != 2 {
						t.Fatalf("%d assignments, want the declined one and the new one", n)
					}
				}},
		},

		"verify reject: resolved assignments go back to reported and resolve again": {
			{name: "raise", actor: street, cmd: raiseOf(catIssue, UrgencyRoutine), want: typesRaisedIssue, status: StatusRouted},
			{name: "lead reports in", at: 10 * time.Minute, actor: ecology, cmd: Report{Assignee: "ecology-bureau"}, want: one(TypeAssignmentReported), status: StatusInProgress},
			{name: "assist reports in", at: 15 * time.Minute, actor: water, cmd: Report{Assignee: "water-bureau"}, want: one(TypeAssignmentReported), status: StatusInProgress},
			{name: "assist resolves", at: 20 * time.Hour, actor: water, cmd: Resolve{Assignee: "water-bureau"}, want: one(TypeAssignmentResolved), status: StatusInProgress},
			{name: "lead resolves", at: 21 * time.Hour, actor: ecology, cmd: Resolve{Assignee: "ecology-bureau"}, want: one(TypeAssignmentResolved), status: StatusResolved},
			{name: "another street verifies", actor: otherStreet, cmd: Verify{Accepted: true},
				err: ErrNotYours, why: `case belongs to street "longqiao", not "xindu"`},
			{name: "the street rejects", at: 22 * time.Hour, actor: street, cmd: Verify{Accepted: false, Note: "still smells"},
				want: one(TypeResolutionRejected), status: StatusInProgress,
				check: func(t *testing.T, h *harness, _ []Event) {
					a := wantAssignment(t, h, "ecology-bureau", RoleLead, Reported)
					b := wantAssignment(t, h, "water-bureau", RoleAssist, Reported)
					if a.ResolvedAt != nil || b.ResolvedAt != nil {
						t.Fatal("resolved_at survived the rejection")
					}
					if !sameTime(a.ReportedAt, t0.Add(10*time.Minute)) || !sameTime(b.ReportedAt, t0.Add(15*time.Minute)) {
						t.Fatal("reported_at changed on rejection")
					}
					if h.c.ClosedAt != nil {
						t.Fatal("a rejected case has closed_at")
					}
				}},
			{name: "verify again", actor: street, cmd: Verify{Accepted: true},
				err: ErrInvalidTransition, why: "only a resolved case can be verified; this one is in_progress"},
			{name: "the lead need not report in again", actor: ecology, cmd: Report{Assignee: "ecology-bureau"},
				err: ErrInvalidTransition, why: "cannot report in: its assignment is reported"},
			{name: "the lead resolves again", at: 30 * time.Hour, actor: ecology, cmd: Resolve{Assignee: "ecology-bureau", Note: "dredged"},
				want: one(TypeAssignmentResolved), status: StatusResolved,
				check: func(t *testing.T, h *harness, _ []Event) {
					wantAssignment(t, h, "water-bureau", RoleAssist, Reported)
				}},
			{name: "accept", at: 31 * time.Hour, actor: street, cmd: Verify{Accepted: true}, want: typesClose, status: StatusClosed},
		},
	}
	for name, steps := range scenarios {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			runScenario(t, steps)
		})
	}
}

// closedCase returns a harness with a closed issue.
func closedCase(t *testing.T) *harness {
	t.Helper()
	return runScenario(t, []step{
		{actor: street, cmd: raiseOf(catIssue, UrgencyRoutine), want: typesRaisedIssue},
		{actor: ecology, cmd: Report{Assignee: "ecology-bureau"}, want: one(TypeAssignmentReported)},
		{actor: ecology, cmd: Resolve{Assignee: "ecology-bureau"}, want: one(TypeAssignmentResolved)},
		{actor: street, cmd: Verify{Accepted: true}, want: typesClose, status: StatusClosed},
	})
}

func TestClosedCaseRefusesEverythingButRate(t *testing.T) {
	tests := []struct {
		actor Actor
		cmd   Command
		why   string
	}{
		{street, raiseOf(catIssue, UrgencyRoutine), "has already been raised"},
		{water, Report{Assignee: "water-bureau"}, "case is closed"},
		{water, NoteProgress{Assignee: "water-bureau"}, "case is closed"},
		{water, Resolve{Assignee: "water-bureau"}, "case is closed"},
		{water, Decline{Assignee: "water-bureau", Reason: "too late"}, "case is closed"},
		{ecology, Claim{Assignee: "ecology-bureau"}, "case is closed"},
		{street, Route{Lead: "urban-management"}, "case is closed"},
		{street, Verify{Accepted: true}, "case is closed"},
		{street, Verify{Accepted: false}, "case is closed"},
	}
	h := closedCase(t)
	for _, tt := range tests {
		t.Run(tt.cmd.CommandName(), func(t *testing.T) {
			h.t = t
			h.refused(tt.actor, tt.cmd, ErrInvalidTransition, "", tt.why)
			if h.c.Status != StatusClosed {
				t.Fatalf("status %s", h.c.Status)
			}
		})
	}
	h.t = t
	events, err := Decide(h.c, CheckDeadlines{}, h.dir, t0.Add(1000*time.Hour))
	if err != nil || len(events) != 0 {
		t.Fatalf("deadlines of a closed case: %v, %v", eventTypes(events), err)
	}
	if got := h.must(street, Rate{Rating: "basically_satisfied"}); !reflect.DeepEqual(eventTypes(got), one(TypeSatisfactionRated)) {
		t.Fatalf("rate on a closed case: %v", eventTypes(got))
	}
	if h.c.Rating == nil || *h.c.Rating != RatingBasicallySatisfied || h.c.Status != StatusClosed {
		t.Fatalf("after rating: %s", snapshot(t, h.c))
	}
}

func TestRateRefusedBeforeClosure(t *testing.T) {
	steps := []step{
		{actor: street, cmd: raiseOf(catIssue, UrgencyRoutine), want: typesRaisedIssue, status: StatusRouted},
		{actor: street, cmd: Rate{Rating: "satisfied"}, err: ErrInvalidTransition, why: "this case is routed"},
		{actor: ecology, cmd: Report{Assignee: "ecology-bureau"}, want: one(TypeAssignmentReported), status: StatusInProgress},
		{actor: street, cmd: Rate{Rating: "satisfied"}, err: ErrInvalidTransition, why: "this case is in_progress"},
		{actor: ecology, cmd: Resolve{Assignee: "ecology-bureau"}, want: one(TypeAssignmentResolved), status: StatusResolved},
		{actor: street, cmd: Rate{Rating: "satisfied"}, err: ErrInvalidTransition, why: "a rating follows closure; this case is resolved"},
		{actor: ecology, cmd: Decline{Assignee: "water-bureau", Reason: "x"}, err: ErrNotYours, why: "holds no assignment"},
		{actor: water, cmd: Decline{Assignee: "water-bureau", Reason: "x"}, want: one(TypeAssignmentDeclined), status: StatusResolved},
	}
	h := runScenario(t, steps)
	if h.c.Rating != nil {
		t.Fatal("a refused rating was recorded")
	}
}

func TestRaise(t *testing.T) {
	lat, lon, far := 25.43, 119.01, 91.0
	tests := []struct {
		name   string
		edit   func(r *Raise)
		err    error
		field  string
		why    string
		report time.Duration // on success: report_within of the lead or offers
		solve  time.Duration
	}{
		{name: "routine issue", edit: func(r *Raise) {}, report: 30 * time.Minute, solve: 72 * time.Hour},
		{name: "urgent", edit: func(r *Raise) { r.Urgency = "urgent" }, report: 15 * time.Minute, solve: 24 * time.Hour},
		{name: "emergency", edit: func(r *Raise) { r.Urgency = "emergency" }, report: 5 * time.Minute, solve: 2 * time.Hour},
		{name: "with a location", edit: func(r *Raise) { r.Location = &Location{Address: "木兰溪 3号", Lat: &lat, Lon: &lon} },
			report: 30 * time.Minute, solve: 72 * time.Hour},
		{name: "title of exactly the limit", edit: func(r *Raise) { r.Title = strings.Repeat("井", MaxTitle) },
			report: 30 * time.Minute, solve: 72 * time.Hour},
		{name: "unknown street", edit: func(r *Raise) { r.Street = "nowhere" }, err: ErrInvalidValue, field: "street", why: `unknown street "nowhere"`},
		{name: "community of another street", edit: func(r *Raise) { r.Community = "xindu-centre" },
			err: ErrInvalidValue, field: "community", why: `street "longqiao" has no community "xindu-centre"`},
		{name: "unknown category", edit: func(r *Raise) { r.Category = "noise" }, err: ErrInvalidValue, field: "category", why: `unknown category "noise"`},
		{name: "unknown urgency", edit: func(r *Raise) { r.Urgency = "asap" }, err: ErrInvalidValue, field: "urgency", why: `unknown urgency "asap"`},
		{name: "missing urgency", edit: func(r *Raise) { r.Urgency = "" }, err: ErrInvalidValue, field: "urgency", why: "unknown urgency"},
		{name: "blank title", edit: func(r *Raise) { r.Title = "  " }, err: ErrInvalidValue, field: "title", why: "a title is required"},
		{name: "title too long", edit: func(r *Raise) { r.Title = strings.Repeat("井", MaxTitle+1) },
			err: ErrInvalidValue, field: "title", why: "title has 201 characters, at most 200"},
		{name: "description not UTF-8", edit: func(r *Raise) { r.Description = "bad \xc3\x28" },
			err: ErrInvalidValue, field: "description", why: "not valid UTF-8"},
		{name: "address too long", edit: func(r *Raise) { r.Location = &Location{Address: strings.Repeat("a", MaxTitle+1)} },
			err: ErrInvalidValue, field: "location.address", why: "at most 200"},
		{name: "latitude out of range", edit: func(r *Raise) { r.Location = &Location{Lat: &far, Lon: &lon} },
			err: ErrInvalidValue, field: "location.lat", why: "outside -90..90"},
		{name: "longitude out of range", edit: func(r *Raise) { r.Location = &Location{Lat: &lat, Lon: ptrFloat(-181)} },
			err: ErrInvalidValue, field: "location.lon", why: "outside -180..180"},
		{name: "latitude without longitude", edit: func(r *Raise) { r.Location = &Location{Lat: &lat} },
			err: ErrInvalidValue, field: "location", why: "both lat and lon"},
		{name: "a need where no unit co-builds", edit: func(r *Raise) { r.Category = catNeed; r.Community = "qiaodong" },
			err: ErrInvalidValue, field: "community", why: `community "qiaodong" has no resident units`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			cmd := raiseOf(catIssue, UrgencyRoutine)
			cmd.RequestSHA256 = "c0ffee"
			tt.edit(&cmd)
			if tt.err != nil {
				// The street raising is the one named, so that Authorize passes
				// and Decide judges the values.
				h.refused(Actor{Role: ActorStreet, ID: cmd.Street}, cmd, tt.err, tt.field, tt.why)
				if h.c.Exists() {
					t.Fatal("a refused raise raised the case")
				}
				return
			}
			events := h.must(street, cmd)
			w := events[0].(WhistleRaised)
			if w.Title != cmd.Title || w.Location != cmd.Location || w.RequestSHA256 != "c0ffee" || h.c.RequestSHA256 != "c0ffee" {
				t.Fatalf("WhistleRaised = %+v", w)
			}
			lead := events[1].(AssignmentMade)
			if lead.Assignee != "ecology-bureau" || lead.Role != RoleLead || lead.ByHand ||
				!lead.ReportBy.Equal(t0.Add(tt.report)) || !lead.ResolveBy.Equal(t0.Add(tt.solve)) {
				t.Fatalf("lead = %+v, want report within %s and resolve within %s", lead, tt.report, tt.solve)
			}
			if h.c.Status != StatusRouted || h.c.Urgency != Urgency(cmd.Urgency) {
				t.Fatalf("raised case %s", snapshot(t, h.c))
			}
			h.refused(street, cmd, ErrInvalidTransition, "", "has already been raised")
		})
	}
}

func ptrFloat(f float64) *float64 { return &f }

func TestAuthorize(t *testing.T) {
	issue := raised(t, catIssue, UrgencyRoutine).c
	need := raised(t, catNeed, UrgencyRoutine).c
	notRaised := NewCase(uuid.NewString())
	tests := []struct {
		name  string
		c     *Case
		actor Actor
		cmd   Command
		err   error // nil: allowed
		field string
		why   string
	}{
		{"a street raises in its own name", nil, street, raiseOf(catIssue, UrgencyRoutine), nil, "", ""},
		{"a street raises for another street", nil, otherStreet, raiseOf(catIssue, UrgencyRoutine), ErrNotYours, "street", `street "longqiao", not "xindu"`},
		{"a department raises", nil, ecology, raiseOf(catIssue, UrgencyRoutine), ErrNotYours, "", "only a street may raise"},
		{"a unit raises", nil, university, raiseOf(catNeed, UrgencyRoutine), ErrNotYours, "", "only a street may raise"},
		{"an auditor raises", nil, auditor, raiseOf(catIssue, UrgencyRoutine), ErrNotYours, "", "auditors only read"},
		{"an auditor verifies", issue, auditor, Verify{Accepted: true}, ErrNotYours, "", "auditors only read"},
		{"an auditor reports in", issue, auditor, Report{Assignee: "audit-office"}, ErrNotYours, "", "auditors only read"},
		{"an auditor checks deadlines", issue, auditor, CheckDeadlines{}, ErrNotYours, "", "auditors only read"},
		{"the street routes its case", issue, street, Route{Lead: "urban-management"}, nil, "", ""},
		{"the street verifies its case", issue, street, Verify{}, nil, "", ""},
		{"the street rates its case", issue, street, Rate{Rating: "satisfied"}, nil, "", ""},
		{"another street routes", issue, otherStreet, Route{Lead: "urban-management"}, ErrNotYours, "", "belongs to street"},
		{"another street verifies", issue, otherStreet, Verify{Accepted: true}, ErrNotYours, "", "belongs to street"},
		{"another street rates", issue, otherStreet, Rate{Rating: "satisfied"}, ErrNotYours, "", "belongs to street"},
		{"a department routes", issue, ecology, Route{Lead: "urban-management"}, ErrNotYours, "", "only a street may route"},
		{"a unit verifies", need, university, Verify{Accepted: true}, ErrNotYours, "", "only a street may verify"},
		{"the lead reports in", issue, ecology, Report{Assignee: "ecology-bureau"}, nil, "", ""},
		{"the assist resolves", issue, water, Resolve{Assignee: "water-bureau"}, nil, "", ""},
		{"the street reports in", issue, street, Report{Assignee: "longqiao"}, ErrNotYours, "", "only a department or unit may report"},
		{"a department acts for another", issue, water, Report{Assignee: "ecology-bureau"}, ErrNotYours, "", "water-bureau holds no assignment"},
		{"a department not in the case reports in", issue, urban, Report{Assignee: "urban-management"}, ErrNotYours, "", "urban-management holds no assignment"},
		{"a department not in the case notes progress", issue, urban, NoteProgress{Assignee: "urban-management"}, ErrNotYours, "", "holds no assignment"},
		{"a department not in the case resolves", issue, police, Resolve{Assignee: "police-station"}, ErrNotYours, "", "holds no assignment"},
		{"a department not in the case declines", issue, police, Decline{Assignee: "police-station", Reason: "x"}, ErrNotYours, "", "holds no assignment"},
		{"a unit not in the case claims", issue, university, Claim{Assignee: "putian-university"}, ErrNotYours, "", "holds no assignment"},
		{"an offered unit claims", need, school, Claim{Assignee: "no1-middle-school"}, nil, "", ""},
		{"an offered unit declines", need, hospital, Decline{Assignee: "city-hospital", Reason: "x"}, nil, "", ""},
		{"a department claims a need", need, ecology, Claim{Assignee: "ecology-bureau"}, ErrNotYours, "", "holds no assignment"},
		{"the SLA watcher checks deadlines", issue, system, CheckDeadlines{}, nil, "", ""},
		{"a street checks deadlines", issue, street, CheckDeadlines{}, ErrNotYours, "", "only the SLA watcher"},
		{"the system routes", issue, system, Route{Lead: "urban-management"}, ErrNotYours, "", "only a street may route"},
		{"routing a case not raised (nil)", nil, street, Route{Lead: "urban-management"}, ErrNoCase, "", "no such case"},
		{"reporting in on a case not raised (nil)", nil, ecology, Report{Assignee: "ecology-bureau"}, ErrNoCase, "", "no such case"},
		{"verifying a case not raised", notRaised, street, Verify{Accepted: true}, ErrNoCase, "", "no such case"},
		{"claiming on a case not raised", notRaised, university, Claim{Assignee: "putian-university"}, ErrNoCase, "", "no such case"},
		{"an unknown command", issue, street, bogus{}, ErrInvalidValue, "", "unknown command"},
		// A district is over streets but acts as neither a street nor an
		// assignee, even under the id of one; a platform sends tickets only.
		{"a district raises", nil, district, raiseOf(catIssue, UrgencyRoutine), ErrNotYours, "", "only a street may raise"},
		{"a district named as the street raises", nil, Actor{Role: ActorDistrict, ID: "longqiao"}, raiseOf(catIssue, UrgencyRoutine),
			ErrNotYours, "", "only a street may raise"},
		{"a district routes", issue, district, Route{Lead: "urban-management"}, ErrNotYours, "", "only a street may route"},
		{"a district verifies", issue, district, Verify{Accepted: true}, ErrNotYours, "", "only a street may verify"},
		{"a district named as the lead reports in", issue, Actor{Role: ActorDistrict, ID: "ecology-bureau"}, Report{Assignee: "ecology-bureau"},
			ErrNotYours, "", "only a department or unit may report"},
		{"a district resolves", issue, district, Resolve{Assignee: "ecology-bureau"}, ErrNotYours, "", "only a department or unit may resolve"},
		{"a platform raises", nil, platform, raiseOf(catIssue, UrgencyRoutine), ErrNotYours, "", "only a street may raise"},
		{"a platform reports in", issue, platform, Report{Assignee: "ecology-bureau"}, ErrNotYours, "", "only a department or unit may report"},
	}
	for _, tt := range tests {
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

type bogus struct{}

func (bogus) CommandName() string { return "bogus" }

func TestDecideOnCasesNotRaised(t *testing.T) {
	dir := testDirectory(t)
	id := uuid.NewString()
	for _, cmd := range []Command{Report{Assignee: "ecology-bureau"}, Route{Lead: "ecology-bureau"}, Verify{}, Rate{Rating: "satisfied"}, CheckDeadlines{}} {
		_, err := Decide(NewCase(id), cmd, dir, t0)
		checkRefusal(t, err, ErrNoCase, "", "no case "+id)
		_, err = Decide(nil, cmd, dir, t0)
		checkRefusal(t, err, ErrNoCase, "", "no such case")
	}
	// A raise needs no prior state at all.
	events, err := Decide(nil, raiseOf(catDispute, UrgencyRoutine), dir, t0)
	if err != nil || !reflect.DeepEqual(eventTypes(events), typesRaisedDispute) {
		t.Fatalf("raise on a nil case: %v, %v", eventTypes(events), err)
	}
	// Decide does not authorize, but it refuses an assignee that holds nothing.
	h := raised(t, catIssue, UrgencyRoutine)
	_, err = Decide(h.c, Report{Assignee: "police-station"}, dir, t0)
	checkRefusal(t, err, ErrNotYours, "", "police-station holds no assignment")
	_, err = Decide(h.c, bogus{}, dir, t0)
	checkRefusal(t, err, ErrInvalidValue, "", "unknown command")
}

func TestCommandNames(t *testing.T) {
	tests := []struct {
		cmd  Command
		name string
	}{
		{Raise{}, "raise"}, {Report{}, "report"}, {NoteProgress{}, "progress"}, {Resolve{}, "resolve"}, {Decline{}, "decline"},
		{Claim{}, "claim"}, {Route{}, "route"}, {Verify{}, "verify"}, {Rate{}, "rate"}, {CheckDeadlines{}, "check_deadlines"},
	}
	for _, tt := range tests {
		if got := tt.cmd.CommandName(); got != tt.name {
			t.Errorf("%T.CommandName() = %q, want %q", tt.cmd, got, tt.name)
		}
	}
}

// Every free text of a command is bounded and must be UTF-8; the field is named.
func TestTextLimits(t *testing.T) {
	long := strings.Repeat("字", MaxText+1)
	tests := []struct {
		category string
		actor    Actor
		cmd      Command
		field    string
	}{
		{catIssue, ecology, Report{Assignee: "ecology-bureau", Note: long}, "note"},
		{catIssue, ecology, NoteProgress{Assignee: "ecology-bureau", Note: "\xc0"}, "note"},
		{catIssue, ecology, Resolve{Assignee: "ecology-bureau", Note: long}, "note"},
		{catIssue, ecology, Decline{Assignee: "ecology-bureau", Reason: long}, "reason"},
		{catIssue, ecology, Decline{Assignee: "ecology-bureau", Reason: "bad \xff byte"}, "reason"},
		{catNeed, school, Claim{Assignee: "no1-middle-school", Note: long}, "note"},
		{catIssue, street, Verify{Accepted: true, Note: long}, "note"},
	}
	for _, tt := range tests {
		t.Run(tt.cmd.CommandName()+"/"+tt.field, func(t *testing.T) {
			h := raised(t, tt.category, UrgencyRoutine)
			why := "at most 4000"
			if !strings.Contains(long, fieldText(tt.cmd)) {
				why = "not valid UTF-8"
			}
			h.refused(tt.actor, tt.cmd, ErrInvalidValue, tt.field, why)
		})
	}
	// At the limit is fine.
	h := raised(t, catIssue, UrgencyRoutine)
	h.must(ecology, Report{Assignee: "ecology-bureau", Note: strings.Repeat("字", MaxText)})
}

func fieldText(cmd Command) string {
	switch c := cmd.(type) {
	case Report:
		return c.Note
	case NoteProgress:
		return c.Note
	case Resolve:
		return c.Note
	case Decline:
		return c.Reason
	case Claim:
		return c.Note
	case Verify:
		return c.Note
	}
	return ""
}
