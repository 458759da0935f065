package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/whistle-gov/whistle/cmd/whistled/whistledtest"
)

// The paths through a case that TestDashboardInABrowser does not take, in a
// real browser against the real whistled: the lead department declines its
// assignment (with a reason and a suggestion), the street reads why in the
// timeline and routes the case by hand to the suggested department, which
// sees it arrive live, reports in and resolves; the street rejects the
// result, the resolution comes back to the department's queue, it resolves
// again, and the street accepts and closes the case. Every step is checked
// on the page and, through the HTTP API, in the case itself. Screenshots
// are saved as flow-NN-*.png next to the other test's.
func TestDashboardDeclineRouteReject(t *testing.T) {
	chrome := findChromium()
	if chrome == "" {
		t.Skip("chromium is not installed; install Debian's chromium (apt-get install -y chromium) to run the dashboard's browser test; .ci/run does")
	}
	const (
		category = "rubbish"                 // led by the urban management bureau, with no assist
		d1       = "urban-management-bureau" // the lead the directory names; it declines
		d2       = "enforcement-bureau"      // the department the street routes to by hand
	)
	s := whistledtest.Start(t)
	shots := artifactDir(t)
	browser := startBrowser(t, chrome, 90*time.Second)
	b := &browserRun{t: t, shots: shots, url: s.URL}

	street := newTab(t, browser, "street")
	dept1 := newTab(t, browser, "declining department")
	dept2 := newTab(t, browser, "department routed to")
	b.signIn(street, s.Token("street:longqiao"), "#raise-form")
	b.signIn(dept1, s.Token("department:"+d1), "#view-queue")
	b.signIn(dept2, s.Token("department:"+d2), "#view-queue")
	for _, tab := range []context.Context{dept1, dept2} {
		b.waitJS(tab, "the live queue connects", `document.querySelector("#queue-conn.live") !== null && document.getElementById("queue-empty") !== null`)
	}
	b.do(street, "open the case list", chromedp.Click(chromedp.ID("nav-cases")))
	b.waitJS(street, "the cases view shows", `document.getElementById("view-cases") !== null`)

	// 1. The street raises a whistle; the directory sends it to d1.
	title := fmt.Sprintf("万辉社区 3号楼垃圾堆放 %d", time.Now().UnixNano()%100000)
	caseID := raiseByAPI(t, s, category, title)
	c := flowGetCase(t, s, "street:longqiao", caseID)
	if c.Status != "routed" || len(c.Assignments) != 1 || c.Assignments[0].Assignee != d1 || c.Assignments[0].Role != "lead" {
		t.Fatalf("the raised case: %+v, want routed to %s alone", c, d1)
	}
	caseItem := `#case-list li[data-case-id="` + caseID + `"]`
	b.waitJS(street, "the raised case shows", refreshUntil(`document.querySelector('`+caseItem+`[data-status="routed"]') !== null`, "cases-refresh"))
	b.shot(street, "flow-01-street-raised")

	// 2. d1 sees it in its live queue and declines it: first without a
	// reason, which the form refuses, then with one and a suggestion.
	item := `#queue-list li[data-case-id="` + caseID + `"]`
	b.waitJS(dept1, "the whistle arrives in d1's queue", `document.querySelector('`+item+`[data-status="assigned"]') !== null`)
	if got := b.evalString(dept1, `document.querySelector('`+item+` h3').textContent`); !strings.Contains(got, title) {
		t.Errorf("d1's queue item title %q, want %q", got, title)
	}
	b.shot(dept1, "flow-02-d1-queue")
	declineForm := item + ` form[data-action="decline"]`
	b.do(dept1, "open the decline form", chromedp.Click(chromedp.CSS(item+` details:has(form[data-action="decline"]) > summary`)))
	b.do(dept1, "decline without a reason", chromedp.SendKeys(chromedp.CSS(declineForm+` input[type="text"]`), "\r"))
	b.waitJS(dept1, "a reason is asked for", `document.querySelector('`+declineForm+` .error').textContent !== ""`)
	if got := flowGetCase(t, s, "street:longqiao", caseID); got.Version != c.Version || got.Status != "routed" {
		t.Fatalf("a decline the form refused changed the case: %+v", got)
	}
	const reason = "垃圾堆放在小区内部道路，属物业管理范围，建议执法局督促物业清运"
	b.do(dept1, "fill the decline form",
		chromedp.SetValue(chromedp.CSS(declineForm+` select`), d2),
		chromedp.SendKeys(chromedp.CSS(declineForm+` input[type="text"]`), reason),
	)
	b.shot(dept1, "flow-03-d1-decline-form")
	b.do(dept1, "submit the decline by Enter", chromedp.SendKeys(chromedp.CSS(declineForm+` input[type="text"]`), "\r"))
	b.waitJS(dept1, "the declined case leaves d1's queue", `document.querySelector('`+item+`') === null && document.getElementById("queue-empty") !== null`)
	b.shot(dept1, "flow-04-d1-queue-after-decline")

	c = flowGetCase(t, s, "street:longqiao", caseID)
	if a := c.assignment(d1); c.Status != "unassigned" || a == nil || a.Status != "declined" || a.DeclineReason != reason || a.DeclineSuggest != d2 {
		t.Fatalf("the case after d1 declined: %+v, want unassigned, d1 declined with the reason", c)
	}
	if e := flowLastEvent(t, s, caseID, "AssignmentDeclined"); e.Actor.ID != d1 || e.Data["reason"] != reason || e.Data["suggest"] != d2 {
		t.Errorf("the decline event: %+v, want by %s with the reason and the suggestion %s", e, d1, d2)
	}
	if q := flowQueue(t, s, d1); slices.ContainsFunc(q, func(it flowQueueItem) bool { return it.CaseID == caseID }) {
		t.Errorf("the declined case is still in d1's queue: %+v", q)
	}

	// 3. The street sees the case come back unassigned, reads why in its
	// timeline, and routes it by hand to the department d1 suggested.
	b.waitJS(street, "the case shows unassigned with a route form",
		refreshUntil(`document.querySelector('`+caseItem+`[data-status="unassigned"] form[data-action="route"]') !== null`, "cases-refresh"))
	if got := b.eval(street, `document.querySelector('`+caseItem+` .asg .badge.s-declined') !== null`); got != "true" {
		t.Errorf("the street's case does not show d1's assignment declined")
	}
	// The case itself says why and whom d1 suggested, and the route form
	// proposes that department.
	b.waitJS(street, "the case shows the decline's reason and suggestion",
		refreshUntil(`document.querySelector('`+caseItem+` .asg .decline-suggest') !== null`, "cases-refresh"))
	if got := b.evalString(street, `document.querySelector('`+caseItem+` .asg').textContent`); !strings.Contains(got, reason) || !strings.Contains(got, "综合行政执法局") {
		t.Errorf("the street's case shows %q, want d1's reason and the suggested department's name", got)
	}
	if got := b.evalString(street, `document.querySelector('`+caseItem+` form[data-action="route"] select').value`); got != d2 {
		t.Errorf("the route form proposes %q, want the suggested %s", got, d2)
	}
	b.shot(street, "flow-05-street-unassigned")
	b.do(street, "open the timeline", chromedp.Click(chromedp.CSS(caseItem+` button[data-action="timeline"]`)))
	declined := `#timeline-events li[data-type="AssignmentDeclined"]`
	b.waitJS(street, "the timeline shows the decline", `document.querySelector('`+declined+`') !== null`)
	declineText := b.evalString(street, `document.querySelector('`+declined+`').textContent`)
	if !strings.Contains(declineText, reason) || !strings.Contains(declineText, "综合行政执法局") {
		t.Errorf("the timeline's decline shows %q, want the reason and the suggested department's name", declineText)
	}
	b.shot(street, "flow-06-street-timeline-declined")
	b.do(street, "back to the case list", chromedp.Click(chromedp.ID("nav-cases")))
	routeForm := caseItem + ` form[data-action="route"]`
	b.waitJS(street, "the route form shows", `document.querySelector('`+routeForm+`') !== null`)
	if got := b.evalString(street, `document.querySelector('`+routeForm+` select').value`); got != d2 {
		t.Fatalf("after the timeline, the route form proposes %q, want the suggested %s", got, d2)
	}
	b.shot(street, "flow-07-street-route-form")
	b.do(street, "route by hand", chromedp.Click(chromedp.CSS(routeForm+` button[type="submit"]`)))
	b.waitJS(street, "the case shows routed", `document.querySelector('`+caseItem+`[data-status="routed"]') !== null`)
	b.shot(street, "flow-08-street-routed")

	c = flowGetCase(t, s, "street:longqiao", caseID)
	if a := c.assignment(d2); c.Status != "routed" || a == nil || a.Role != "lead" || a.Status != "assigned" {
		t.Fatalf("the case after routing by hand: %+v, want routed to %s as the lead", c, d2)
	}
	if e := flowLastEvent(t, s, caseID, "AssignmentMade"); e.Actor.Role != "street" || e.Data["assignee"] != d2 || e.Data["by_hand"] != true {
		t.Errorf("the routing event: %+v, want %s assigned by hand by the street", e, d2)
	}

	// 4. d2 sees it arrive live, reports in and resolves.
	b.waitJS(dept2, "the routed case arrives in d2's queue", `document.querySelector('`+item+`[data-status="assigned"]') !== null`)
	b.shot(dept2, "flow-09-d2-queue-arrived")
	b.do(dept2, "report in", chromedp.Click(chromedp.CSS(item+` button[data-action="report"]`)))
	b.waitJS(dept2, "d2 is reported in", `document.querySelector('`+item+`[data-status="reported"] form[data-action="resolve"]') !== null`)
	b.resolveInQueue(dept2, item, "已督促物业清运，现场已清理")
	b.shot(dept2, "flow-10-d2-queue-resolved")
	if c = flowGetCase(t, s, "street:longqiao", caseID); c.Status != "resolved" || c.assignment(d2).Status != "resolved" {
		t.Fatalf("the case after d2 resolved: %+v", c)
	}

	// 5. The street rejects the result, with a note, by keyboard.
	verifyForm := caseItem + ` form[data-action="verify"]`
	b.waitJS(street, "the case shows resolved", refreshUntil(`document.querySelector('`+caseItem+`[data-status="resolved"] form[data-action="verify"]') !== null`, "cases-refresh"))
	const rejectNote = "现场复查仍有垃圾残留，请彻底清理"
	b.do(street, "fill the rejection",
		chromedp.Click(chromedp.CSS(verifyForm+` input[type="radio"][value="no"]`)),
		chromedp.SendKeys(chromedp.CSS(verifyForm+` input[type="text"]`), rejectNote),
	)
	b.shot(street, "flow-11-street-reject-form")
	if got := b.eval(street, `document.querySelector('`+verifyForm+` input[value="no"]').checked`); got != "true" {
		t.Fatalf("the reject choice did not hold in the verify form")
	}
	b.do(street, "submit the rejection by Enter", chromedp.SendKeys(chromedp.CSS(verifyForm+` input[type="text"]`), "\r"))
	b.waitJS(street, "the case is back in progress", `document.querySelector('`+caseItem+`[data-status="in_progress"]') !== null`)
	if got := b.eval(street, `document.querySelector('`+caseItem+` .asg .badge.s-reported') !== null`); got != "true" {
		t.Errorf("the street's case does not show d2's assignment reported in again")
	}
	b.shot(street, "flow-12-street-rejected")

	c = flowGetCase(t, s, "street:longqiao", caseID)
	if a := c.assignment(d2); c.Status != "in_progress" || a == nil || a.Status != "reported" || c.ClosedAt != nil {
		t.Fatalf("the case after the rejection: %+v, want in progress with %s reported in again", c, d2)
	}
	if e := flowLastEvent(t, s, caseID, "ResolutionRejected"); e.Actor.Role != "street" || e.Data["note"] != rejectNote {
		t.Errorf("the rejection event: %+v, want the street's with its note", e)
	}
	if q := flowQueue(t, s, d2); !slices.ContainsFunc(q, func(it flowQueueItem) bool { return it.CaseID == caseID && it.Status == "reported" }) {
		t.Errorf("d2's queue after the rejection: %+v, want the case reported in", q)
	}

	// d2's assignment comes back to its queue, reported in: it resolves
	// again without reporting in again.
	b.waitJS(dept2, "the rejected case is back in d2's queue", `document.querySelector('`+item+`[data-status="reported"] form[data-action="resolve"]') !== null`)
	if got := b.eval(dept2, `document.querySelector('`+item+` button[data-action="report"]') === null`); got != "true" {
		t.Errorf("d2 is asked to report in again after the rejection")
	}
	b.shot(dept2, "flow-13-d2-queue-reopened")
	b.resolveInQueue(dept2, item, "已彻底清理并冲洗地面")
	b.shot(dept2, "flow-14-d2-queue-resolved-again")

	// The street accepts, and the case closes.
	b.waitJS(street, "the case shows resolved again", refreshUntil(`document.querySelector('`+caseItem+`[data-status="resolved"] form[data-action="verify"]') !== null`, "cases-refresh"))
	if got := b.eval(street, `document.querySelector('`+verifyForm+` input[value="yes"]').checked`); got != "true" {
		t.Errorf("the verify form does not offer acceptance first")
	}
	b.do(street, "accept", chromedp.Click(chromedp.CSS(verifyForm+` button[type="submit"]`)))
	b.waitJS(street, "the case is closed", `document.querySelector('`+caseItem+`[data-status="closed"]') !== null`)
	b.shot(street, "flow-15-street-closed")

	c = flowGetCase(t, s, "street:longqiao", caseID)
	if c.Status != "closed" || c.ClosedAt == nil || c.assignment(d2).Status != "resolved" || c.assignment(d1).Status != "declined" {
		t.Fatalf("the case at the end: %+v, want closed, %s resolved and %s declined", c, d2, d1)
	}
	for _, who := range []string{d1, d2} {
		if q := flowQueue(t, s, who); slices.ContainsFunc(q, func(it flowQueueItem) bool { return it.CaseID == caseID }) {
			t.Errorf("the closed case is still in %s's queue: %+v", who, q)
		}
	}

	// The whole story in the timeline, its hash chain checked by the browser.
	b.do(street, "open the timeline", chromedp.Click(chromedp.CSS(caseItem+` button[data-action="timeline"]`)))
	b.waitJS(street, "the chain is checked", `document.querySelector('#chain-browser[data-ok]') !== null && document.querySelector('#timeline-events li[data-type="CaseClosed"]') !== null`)
	if got := b.eval(street, `document.getElementById("chain-browser").dataset.ok + " " + document.getElementById("chain-server").dataset.ok`); got != `"true true"` {
		t.Errorf("chain verdicts (browser, server) = %s, want true true", got)
	}
	got := b.evalString(street, `[...document.querySelectorAll("#timeline-events li")].map(li => li.dataset.type).join(",")`)
	want := "WhistleRaised,AssignmentMade,AssignmentDeclined,AssignmentMade,AssignmentReported,AssignmentResolved,ResolutionRejected,AssignmentResolved,ResolutionVerified,CaseClosed"
	if got != want {
		t.Errorf("timeline events:\n got %s\nwant %s", got, want)
	}
	b.shot(street, "flow-16-street-timeline")
	t.Logf("dashboard screenshots in %s", shots)
}

// resolveInQueue resolves the queue item with a note through its resolve
// form, and waits until the item leaves the queue.
func (b *browserRun) resolveInQueue(ctx context.Context, item, note string) {
	b.t.Helper()
	form := item + ` form[data-action="resolve"]`
	b.do(ctx, "open the resolve form", chromedp.Click(chromedp.CSS(item+` details:has(form[data-action="resolve"]) > summary`)))
	b.do(ctx, "write the resolution", chromedp.SendKeys(chromedp.CSS(form+` textarea`), note))
	b.do(ctx, "submit the resolution", chromedp.Click(chromedp.CSS(form+` button[type="submit"]`)))
	b.waitJS(ctx, "the resolved assignment leaves the queue", `document.querySelector('`+item+`') === null`)
}

// refreshUntil is a waitJS expression: true once cond holds and no refresh
// it asked for is under way (its redraw would wipe what the test goes on to
// fill in). Until then it presses the view's refresh button at most once a
// second, for a change the page's live stream may have missed: the stream
// connects after sign-in. A pressed refresh marks the view; the redraw that
// ends it replaces the view, mark and all.
func refreshUntil(cond, button string) string {
	return `(() => {
		const view = document.querySelector("section.view");
		const now = Date.now();
		if (view && now - Number(view.dataset.refreshing || 0) < 5000) return false;
		if (` + cond + `) return true;
		const btn = document.getElementById("` + button + `");
		if (view && btn && now - (window.__refreshedAt || 0) > 1000) {
			window.__refreshedAt = now;
			view.dataset.refreshing = String(now);
			btn.click();
		}
		return false;
	})()`
}

type flowCase struct {
	CaseID      string           `json:"case_id"`
	Status      string           `json:"status"`
	Version     uint64           `json:"version"`
	ClosedAt    *time.Time       `json:"closed_at"`
	Assignments []flowAssignment `json:"assignments"`
}

type flowAssignment struct {
	Assignee       string `json:"assignee"`
	Role           string `json:"role"`
	Status         string `json:"status"`
	DeclineReason  string `json:"decline_reason"`
	DeclineSuggest string `json:"decline_suggest"`
}

// assignment returns the assignee's latest assignment, or nil.
func (c flowCase) assignment(assignee string) *flowAssignment {
	for i := len(c.Assignments) - 1; i >= 0; i-- {
		if c.Assignments[i].Assignee == assignee {
			return &c.Assignments[i]
		}
	}
	return nil
}

func flowGetCase(t *testing.T, s *whistledtest.Server, principal, id string) flowCase {
	t.Helper()
	var c flowCase
	if code := s.Do("GET", "/v1/cases/"+id, principal, nil, &c); code != http.StatusOK {
		t.Fatalf("GET case %s as %s: %d", id, principal, code)
	}
	return c
}

type flowEvent struct {
	Type  string `json:"type"`
	Actor struct {
		Role string `json:"role"`
		ID   string `json:"id"`
	} `json:"actor"`
	Data map[string]any `json:"data"`
}

// flowLastEvent returns the case's last event of the type, read as an auditor.
func flowLastEvent(t *testing.T, s *whistledtest.Server, id, typ string) flowEvent {
	t.Helper()
	var h struct {
		Events []flowEvent `json:"events"`
	}
	if code := s.Do("GET", "/v1/cases/"+id+"/history", "auditor:auditor", nil, &h); code != http.StatusOK {
		t.Fatalf("GET the history of %s: %d", id, code)
	}
	for i := len(h.Events) - 1; i >= 0; i-- {
		if h.Events[i].Type == typ {
			return h.Events[i]
		}
	}
	raw, _ := json.Marshal(h.Events)
	t.Fatalf("no %s in the history of %s: %s", typ, id, raw)
	return flowEvent{}
}

type flowQueueItem struct {
	CaseID string `json:"case_id"`
	Status string `json:"status"`
}

// flowQueue reads a department's open assignments as that department.
func flowQueue(t *testing.T, s *whistledtest.Server, assignee string) []flowQueueItem {
	t.Helper()
	var q struct {
		Assignments []flowQueueItem `json:"assignments"`
	}
	if code := s.Do("GET", "/v1/queues/"+assignee, "department:"+assignee, nil, &q); code != http.StatusOK {
		t.Fatalf("GET the queue of %s: %d", assignee, code)
	}
	return q.Assignments
}
