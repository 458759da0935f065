package domain

import (
	"reflect"
	"testing"
	"time"
)

// check is one run of the SLA watcher at now: it asks for what is due, with
// Decide as the handler does, and appends it.
func (h *harness) check() []Event {
	h.t.Helper()
	direct := DueEscalations(h.c, h.dir, h.now)
	events, err := h.exec(system, CheckDeadlines{})
	if err != nil {
		h.t.Fatalf("CheckDeadlines refused: %v", err)
	}
	if !reflect.DeepEqual(direct, events) {
		h.t.Fatalf("Decide(CheckDeadlines) = %v, DueEscalations = %v", events, direct)
	}
	return events
}

func overdue(assignee string, role Role, d Deadline, level string, due time.Duration) Event {
	return AssignmentOverdue{Assignee: assignee, Role: role, Deadline: d, Level: level, Due: t0.Add(due)}
}

func escalated(assignee string, d Deadline, level string) Event {
	return CaseEscalated{Deadline: d, Level: level, Assignee: assignee}
}

// tick is one moment of a timeline: a command, or (with no command) a run of
// the SLA watcher that must yield exactly want.
type tick struct {
	name  string
	at    time.Duration
	actor Actor
	cmd   Command
	want  []Event
	// After the tick: NextDeadline (from t0; never: 0) and the assignees
	// flagged overdue.
	next    time.Duration
	overdue []string
}

func runTimeline(t *testing.T, h *harness, ticks []tick) {
	t.Helper()
	for i, tk := range ticks {
		h.at(tk.at)
		if tk.cmd != nil {
			h.must(tk.actor, tk.cmd)
		} else if got := h.check(); !reflect.DeepEqual(got, tk.want) {
			t.Fatalf("tick %d %q at +%s: due\n  %v\nwant\n  %v", i, tk.name, tk.at, got, tk.want)
		}
		var wantNext time.Time
		if tk.next != 0 {
			wantNext = t0.Add(tk.next)
		}
		if got := NextDeadline(h.c, h.dir, h.now); !got.Equal(wantNext) {
			t.Fatalf("tick %d %q: NextDeadline = %v, want %v", i, tk.name, got, wantNext)
		}
		var flagged []string
		for _, a := range h.c.Assignments {
			if a.Overdue {
				flagged = append(flagged, a.Assignee)
			}
		}
		if !reflect.DeepEqual(flagged, tk.overdue) {
			t.Fatalf("tick %d %q: overdue %v, want %v", i, tk.name, flagged, tk.overdue)
		}
	}
}

func TestEscalationLadder(t *testing.T) {
	const (
		eco = "ecology-bureau"
		wat = "water-bureau"
	)
	m := time.Minute
	h := raised(t, catIssue, UrgencyRoutine) // report_by +30m, resolve_by +72h
	runTimeline(t, h, []tick{
		{name: "before report_by nothing is due", at: 30*m - time.Second, next: 30 * m},
		{name: "right after raising nothing is due", at: 0, next: 30 * m},
		{name: "at report_by: overdue at the first rung, escalated to district", at: 30 * m,
			want: []Event{
				overdue(eco, RoleLead, DeadlineReport, "district", 30*m), escalated(eco, DeadlineReport, "district"),
				overdue(wat, RoleAssist, DeadlineReport, "district", 30*m), escalated(wat, DeadlineReport, "district"),
			},
			next: 60 * m, overdue: []string{eco, wat}},
		{name: "asked again at once: nothing twice", at: 30 * m, next: 60 * m, overdue: []string{eco, wat}},
		{name: "asked again later: nothing twice", at: 59 * m, next: 60 * m, overdue: []string{eco, wat}},
		{name: "the lead reports in late: accepted, no longer overdue", at: 45 * m,
			actor: ecology, cmd: Report{Assignee: eco, Note: "late"}, next: 60 * m, overdue: []string{wat}},
		{name: "at +30m after report_by: city, only for the one still missing", at: 60 * m,
			want: []Event{escalated(wat, DeadlineReport, "city")},
			next: 72 * time.Hour, overdue: []string{wat}},
		{name: "asked much later: the report ladder is done", at: 10 * time.Hour, next: 72 * time.Hour, overdue: []string{wat}},
		{name: "at resolve_by: both missed it", at: 72 * time.Hour,
			want: []Event{
				overdue(eco, RoleLead, DeadlineResolve, "district", 72*time.Hour), escalated(eco, DeadlineResolve, "district"),
				overdue(wat, RoleAssist, DeadlineResolve, "district", 72*time.Hour), escalated(wat, DeadlineResolve, "district"),
			},
			next: 72*time.Hour + 30*m, overdue: []string{eco, wat}},
		{name: "the lead resolves late: accepted", at: 72*time.Hour + 10*m,
			actor: ecology, cmd: Resolve{Assignee: eco}, next: 72*time.Hour + 30*m, overdue: []string{wat}},
		{name: "the assist reports in very late: still overdue for resolving", at: 72*time.Hour + 20*m,
			actor: water, cmd: Report{Assignee: wat}, next: 72*time.Hour + 30*m, overdue: []string{wat}},
		{name: "city for the resolve deadline of the assist only", at: 72*time.Hour + 30*m,
			want: []Event{escalated(wat, DeadlineResolve, "city")}, overdue: []string{wat}},
		{name: "nothing left", at: 100 * time.Hour, overdue: []string{wat}},
		{name: "the assist resolves", at: 101 * time.Hour, actor: water, cmd: Resolve{Assignee: wat}},
		{name: "closed", at: 102 * time.Hour, actor: street, cmd: Verify{Accepted: true}},
		{name: "closed: nothing is ever due", at: 1000 * time.Hour},
	})
	// The figures of the ladder are recorded.
	for _, k := range []struct {
		who   string
		d     Deadline
		level string
		want  bool
	}{
		{eco, DeadlineReport, "district", true}, {eco, DeadlineReport, "city", false},
		{wat, DeadlineReport, "city", true}, {eco, DeadlineResolve, "city", false}, {wat, DeadlineResolve, "city", true},
	} {
		if got := h.c.Escalated(k.who, k.d, k.level); got != k.want {
			t.Errorf("Escalated(%s, %s, %s) = %v, want %v", k.who, k.d, k.level, got, k.want)
		}
	}
}

func TestEscalationAfterTheWatcherWasDown(t *testing.T) {
	h := raised(t, catDispute, UrgencyEmergency) // report_by +5m, resolve_by +2h
	if got := NextDeadline(h.c, h.dir, t0); !got.Equal(t0.Add(5 * time.Minute)) {
		t.Fatalf("NextDeadline = %v, want report_by", got)
	}
	// Down for three hours: every rung of both deadlines at once, in order.
	runTimeline(t, h, []tick{
		{name: "everything missed", at: 3 * time.Hour, want: []Event{
			overdue("judicial-office", RoleLead, DeadlineReport, "district", 5*time.Minute),
			escalated("judicial-office", DeadlineReport, "district"),
			escalated("judicial-office", DeadlineReport, "city"),
			overdue("judicial-office", RoleLead, DeadlineResolve, "district", 2*time.Hour),
			escalated("judicial-office", DeadlineResolve, "district"),
			escalated("judicial-office", DeadlineResolve, "city"),
		}, overdue: []string{"judicial-office"}},
		{name: "nothing twice", at: 3*time.Hour + time.Second, overdue: []string{"judicial-office"}},
		{name: "a late report-in leaves the resolve deadline missed", at: 4 * time.Hour,
			actor: judicial, cmd: Report{Assignee: "judicial-office"}, overdue: []string{"judicial-office"}},
		{name: "a late resolution clears the flag", at: 5 * time.Hour,
			actor: judicial, cmd: Resolve{Assignee: "judicial-office", Mediation: "success"}},
	})
	if h.c.Status != StatusResolved {
		t.Fatalf("status %s", h.c.Status)
	}
}

func TestDueEscalationsIsPure(t *testing.T) {
	h := raised(t, catIssue, UrgencyRoutine)
	before := snapshot(t, h.c)
	a := DueEscalations(h.c, h.dir, t0.Add(5*time.Hour))
	b := DueEscalations(h.c, h.dir, t0.Add(5*time.Hour))
	if len(a) != 6 || !reflect.DeepEqual(a, b) {
		t.Fatalf("two asks differ or miss events: %v / %v", a, b)
	}
	if snapshot(t, h.c) != before {
		t.Fatal("DueEscalations changed the case")
	}
}

func TestOffersNeverEscalate(t *testing.T) {
	h := raised(t, catNeed, UrgencyRoutine)
	runTimeline(t, h, []tick{
		{name: "at the offers' report_by", at: 30 * time.Minute},
		{name: "long after", at: 1000 * time.Hour},
	})
	h2 := raised(t, catNeed, UrgencyUrgent)
	runTimeline(t, h2, []tick{
		{name: "after report_by of the offers", at: 20 * time.Minute},
		{name: "a claim: its resolve deadline counts from the claim", at: 25 * time.Minute,
			actor: hospital, cmd: Claim{Assignee: "city-hospital"}, next: 25*time.Minute + 24*time.Hour},
		{name: "the claimant never has a report deadline", at: 24 * time.Hour, next: 25*time.Minute + 24*time.Hour},
		{name: "the claimant misses resolve_by; the lapsed offers do not", at: 25*time.Minute + 24*time.Hour,
			want: []Event{
				overdue("city-hospital", RoleLead, DeadlineResolve, "district", 25*time.Minute+24*time.Hour),
				escalated("city-hospital", DeadlineResolve, "district"),
			}, next: 55*time.Minute + 24*time.Hour, overdue: []string{"city-hospital"}},
	})
}

func TestDeclinedAssignmentStopsEscalating(t *testing.T) {
	h := raised(t, catIssue, UrgencyRoutine)
	runTimeline(t, h, []tick{
		{name: "both late", at: 30 * time.Minute, want: []Event{
			overdue("ecology-bureau", RoleLead, DeadlineReport, "district", 30*time.Minute),
			escalated("ecology-bureau", DeadlineReport, "district"),
			overdue("water-bureau", RoleAssist, DeadlineReport, "district", 30*time.Minute),
			escalated("water-bureau", DeadlineReport, "district"),
		}, next: time.Hour, overdue: []string{"ecology-bureau", "water-bureau"}},
		{name: "the lead declines", at: 40 * time.Minute, actor: ecology, cmd: Decline{Assignee: "ecology-bureau", Reason: "not ours"},
			next: time.Hour, overdue: []string{"water-bureau"}},
		{name: "city only for the assist", at: time.Hour, want: []Event{escalated("water-bureau", DeadlineReport, "city")},
			next: 72 * time.Hour, overdue: []string{"water-bureau"}},
		{name: "the assist declines too", at: 2 * time.Hour, actor: water, cmd: Decline{Assignee: "water-bureau", Reason: "dry"}},
		{name: "nothing ever again", at: 100 * time.Hour},
	})
}

// An assignee declined and then routed to again gets new deadlines, and they
// escalate like the first ones.
func TestAssigneeRoutedAgainEscalatesAgain(t *testing.T) {
	h := raised(t, catDispute, UrgencyRoutine)
	runTimeline(t, h, []tick{
		{name: "report deadline missed", at: 30 * time.Minute, want: []Event{
			overdue("judicial-office", RoleLead, DeadlineReport, "district", 30*time.Minute),
			escalated("judicial-office", DeadlineReport, "district"),
		}, next: time.Hour, overdue: []string{"judicial-office"}},
		{name: "city", at: time.Hour, want: []Event{escalated("judicial-office", DeadlineReport, "city")},
			next: 72 * time.Hour, overdue: []string{"judicial-office"}},
		{name: "declined", at: 2 * time.Hour, actor: judicial, cmd: Decline{Assignee: "judicial-office", Reason: "wrong office"}},
		{name: "routed back by hand", at: 3 * time.Hour, actor: street, cmd: Route{Lead: "judicial-office"},
			next: 3*time.Hour + 30*time.Minute},
		{name: "the new report deadline is missed too", at: 3*time.Hour + 30*time.Minute, want: []Event{
			overdue("judicial-office", RoleLead, DeadlineReport, "district", 3*time.Hour+30*time.Minute),
			escalated("judicial-office", DeadlineReport, "district"),
		}, next: 4 * time.Hour, overdue: []string{"judicial-office"}},
		{name: "and goes to the city", at: 4 * time.Hour, want: []Event{escalated("judicial-office", DeadlineReport, "city")},
			next: 75 * time.Hour, overdue: []string{"judicial-office"}},
	})
}

func TestRejectionReopensTheResolveDeadline(t *testing.T) {
	h := raised(t, catDispute, UrgencyUrgent) // report_by +15m, resolve_by +24h
	runTimeline(t, h, []tick{
		{name: "report in", at: 10 * time.Minute, actor: judicial, cmd: Report{Assignee: "judicial-office"}, next: 24 * time.Hour},
		{name: "resolve in time", at: 20 * time.Hour, actor: judicial, cmd: Resolve{Assignee: "judicial-office", Mediation: "failure"}},
		{name: "resolved: resolve_by passes quietly", at: 25 * time.Hour},
		// Overdue is set by the watcher's event, not by the rejection itself.
		{name: "rejected after resolve_by: due at once", at: 26 * time.Hour, actor: street, cmd: Verify{Accepted: false},
			next: 24 * time.Hour},
		{name: "the watcher catches up", at: 26 * time.Hour, want: []Event{
			overdue("judicial-office", RoleLead, DeadlineResolve, "district", 24*time.Hour),
			escalated("judicial-office", DeadlineResolve, "district"),
			escalated("judicial-office", DeadlineResolve, "city"),
		}, overdue: []string{"judicial-office"}},
	})
}

func TestEscalationWithoutLadder(t *testing.T) {
	dir := newTestDirectory()
	dir.Escalation = nil
	if err := dir.Validate(); err != nil {
		t.Fatal(err)
	}
	h := newHarnessWith(t, dir)
	h.must(street, raiseOf(catDispute, UrgencyRoutine))
	runTimeline(t, h, []tick{
		{name: "before", at: time.Minute, next: 30 * time.Minute},
		{name: "one overdue mark, no level", at: 30 * time.Minute,
			want:    []Event{overdue("judicial-office", RoleLead, DeadlineReport, "", 30*time.Minute)},
			next:    72 * time.Hour,
			overdue: []string{"judicial-office"}},
		{name: "never twice", at: 50 * time.Hour, next: 72 * time.Hour, overdue: []string{"judicial-office"}},
		{name: "resolve deadline", at: 73 * time.Hour,
			want:    []Event{overdue("judicial-office", RoleLead, DeadlineResolve, "", 72*time.Hour)},
			overdue: []string{"judicial-office"}},
	})
}

func TestNextDeadlineWhenDueButNotRecorded(t *testing.T) {
	h := raised(t, catIssue, UrgencyRoutine)
	// Nothing recorded yet: the report deadline is the next moment, even asked
	// after it: the watcher must act at once.
	later := t0.Add(2 * time.Hour)
	if got := NextDeadline(h.c, h.dir, later); !got.Equal(t0.Add(30 * time.Minute)) {
		t.Fatalf("NextDeadline = %v, want the unrecorded report_by", got)
	}
	if !NextDeadline(closedCase(t).c, h.dir, later).IsZero() {
		t.Fatal("a closed case has a next deadline")
	}
}

// The overdue mark comes when the deadline passes, whatever the first rung's
// `after`; each rung comes `after` the deadline.
func TestOverdueMarkDoesNotWaitForTheFirstRung(t *testing.T) {
	dir := newTestDirectory()
	dir.Escalation = []EscalationStep{
		{Level: "street", After: Duration(10 * time.Minute)},
		{Level: "district", After: Duration(time.Hour)},
		{Level: "city", After: Duration(4 * time.Hour)},
	}
	if err := dir.Validate(); err != nil {
		t.Fatal(err)
	}
	h := newHarnessWith(t, dir)
	h.must(street, raiseOf(catDispute, UrgencyRoutine)) // report_by +30m
	const j = "judicial-office"
	m := time.Minute
	runTimeline(t, h, []tick{
		{name: "before", at: 29 * m, next: 30 * m},
		{name: "the deadline passes: overdue at once, no rung yet", at: 30 * m,
			want: []Event{overdue(j, RoleLead, DeadlineReport, "street", 30*m)},
			next: 40 * m, overdue: []string{j}},
		{name: "not twice", at: 39 * m, next: 40 * m, overdue: []string{j}},
		{name: "first rung", at: 40 * m, want: []Event{escalated(j, DeadlineReport, "street")},
			next: 90 * m, overdue: []string{j}},
		{name: "second rung", at: 90 * m, want: []Event{escalated(j, DeadlineReport, "district")},
			next: 270 * m, overdue: []string{j}},
		{name: "reported before the third rung: it never comes", at: 100 * m, actor: judicial, cmd: Report{Assignee: j},
			next: 72 * time.Hour},
		{name: "nothing at the third rung's time", at: 270 * m, next: 72 * time.Hour},
	})
	if h.c.Escalated(j, DeadlineReport, "city") || !h.c.Escalated(j, DeadlineReport, "street") {
		t.Fatal("the ladder's record is wrong")
	}
}
