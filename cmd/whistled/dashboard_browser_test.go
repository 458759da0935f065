package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/whistle-gov/whistle/cmd/whistled/whistledtest"
)

// The dashboard in a real browser: headless Chromium, driven over the
// DevTools protocol, against the real whistled. A street raises a whistle
// through the form, a department sees it arrive in its live queue (another
// browser context), reports in and resolves it, the street verifies and
// rates it, checks its hash chain in the browser, and a leader sees the
// figures change. Every view is saved as a screenshot in $WHISTLE_ARTIFACTS
// (or the test's temporary folder), and the paths are logged.
func TestDashboardInABrowser(t *testing.T) {
	chrome := findChromium()
	if chrome == "" {
		t.Skip("chromium is not installed; install Debian's chromium (apt-get install -y chromium) to run the dashboard's browser test; .ci/run does")
	}
	// The sample directory, with an emergency's report-in due in 2 s, so
	// that the overdue list and a late countdown have something to show.
	sample, err := os.ReadFile(filepath.Join("..", "..", "adapters", "config", "sample-directory.json"))
	if err != nil {
		t.Fatal(err)
	}
	var directory map[string]any
	if err := json.Unmarshal(sample, &directory); err != nil {
		t.Fatal(err)
	}
	directory["sla"].(map[string]any)["emergency"].(map[string]any)["report_within"] = "2s"
	dirFile := filepath.Join(t.TempDir(), "directory.json")
	if b, err := json.Marshal(directory); err != nil || os.WriteFile(dirFile, b, 0o600) != nil {
		t.Fatalf("write the test directory: %v", err)
	}
	s := whistledtest.Start(t, "--directory", dirFile)
	shots := artifactDir(t)
	var late struct {
		CaseID string `json:"case_id"`
	}
	if code := s.Do("POST", "/v1/whistles", "street:longqiao", map[string]any{
		"street": "longqiao", "community": "wanhui", "category": "broken-manhole-cover", "urgency": "emergency",
		"title": "万辉社区井盖破损", "location": map[string]string{"address": "万辉社区 2号楼前"},
	}, &late); code != http.StatusCreated {
		t.Fatalf("raise an emergency: %d", code)
	}

	browser := startBrowser(t, chrome, 90*time.Second)

	// One browser context each: separate storage, as separate people.
	street := newTab(t, browser, "street")
	dept := newTab(t, browser, "department")
	leader := newTab(t, browser, "leader")
	b := &browserRun{t: t, shots: shots, url: s.URL}

	// Sign in, by keyboard: type the token and press Enter.
	b.do(street, "open the page", chromedp.Navigate(s.URL+"/"), chromedp.WaitVisible(chromedp.ID("signin-token")))
	b.shot(street, "01-sign-in")
	b.signIn(street, s.Token("street:longqiao"), "#raise-form")
	b.signIn(dept, s.Token("department:ecology-bureau"), "#view-queue")
	b.signIn(leader, s.Token("auditor:auditor"), "#view-figures")
	if got := b.eval(street, `sessionStorage.getItem("whistle.token") !== null && !location.href.includes(sessionStorage.getItem("whistle.token"))`); got != "true" {
		t.Errorf("the token is not kept in session storage alone: %s", got)
	}
	b.waitJS(dept, "the live queue connects", `document.querySelector("#queue-conn.live") !== null && document.getElementById("queue-empty") !== null`)
	b.shot(dept, "02-department-queue-empty")

	b.waitJS(leader, "the figures load", `document.querySelector("#tile-closed .v") !== null`)
	closedBefore := b.tile(leader, "closed")
	b.shot(leader, "03-leader-figures-before")

	// The street raises a whistle through the form. The title holds the
	// characters that JSON encoders treat differently (<, >, &), so that the
	// browser's hash check meets them.
	title := fmt.Sprintf("延寿溪排口 <油污> & 泡沫 %d", time.Now().UnixNano()%100000)
	b.do(street, "fill the raise form",
		chromedp.SetValue(chromedp.ID("raise-community"), "yanshou-creek"),
		chromedp.SetValue(chromedp.ID("raise-category"), "river-pollution"),
		chromedp.SetValue(chromedp.ID("raise-urgency"), "urgent"),
		chromedp.SendKeys(chromedp.ID("raise-title"), title),
		chromedp.SendKeys(chromedp.ID("raise-description"), "下磨溪口水面有油污，长约百米"),
		chromedp.SendKeys(chromedp.ID("raise-address"), "龙桥街道 延寿溪 3号排口"),
	)
	b.shot(street, "04-street-raise-filled")
	b.do(street, "submit the whistle", chromedp.Click(chromedp.ID("raise-submit")))
	titleJS, _ := json.Marshal(title)
	findRaised := `[...document.querySelectorAll("#recent-cases li[data-case-id]")].find(li => li.querySelector("h3").textContent.includes(` + string(titleJS) + `))`
	b.waitJS(street, "the raised case shows", findRaised+` !== undefined`)
	caseID := b.evalString(street, findRaised+`.dataset.caseId`)
	if len(caseID) != 36 {
		t.Fatalf("no case id on the raised case: %q", caseID)
	}
	b.waitJS(street, "countdowns tick", `[...document.querySelectorAll("#recent-cases .countdown")].some(e => /\d:\d\d/.test(e.textContent))`)
	b.shot(street, "05-street-raised")
	item := `#queue-list li[data-case-id="` + caseID + `"]`

	// The department sees it arrive live, reports in and resolves it.
	b.waitJS(dept, "the whistle arrives in the live queue", `document.querySelector('`+item+`[data-status="assigned"]') !== null`)
	if got := b.evalString(dept, `document.querySelector('`+item+` h3').textContent`); !strings.Contains(got, title) {
		t.Errorf("queue item title %s, want the raised title", got)
	}
	b.shot(dept, "06-department-queue-live")
	b.do(dept, "report in", chromedp.Click(chromedp.CSS(item+` button[data-action="report"]`)))
	b.waitJS(dept, "the assignment is reported", `document.querySelector('`+item+`[data-status="reported"]') !== null`)
	resolveForm := item + ` form[data-action="resolve"]`
	b.do(dept, "open the resolve form", chromedp.Click(chromedp.CSS(item+` details:has(form[data-action="resolve"]) > summary`)))
	b.do(dept, "resolve",
		chromedp.SendKeys(chromedp.CSS(resolveForm+` textarea`), "已清理油污，排口封堵"),
	)
	b.shot(dept, "07-department-resolve-form")
	b.do(dept, "submit the resolution", chromedp.Click(chromedp.CSS(resolveForm+` button[type="submit"]`)))
	b.waitJS(dept, "the resolved assignment leaves the queue", `document.querySelector('`+item+`') === null`)
	b.shot(dept, "08-department-queue-after")

	// The street sees it resolved (over its notification stream), verifies
	// and rates it.
	b.do(street, "open the case list", chromedp.Click(chromedp.ID("nav-cases")))
	caseItem := `#case-list li[data-case-id="` + caseID + `"]`
	b.waitJS(street, "the case shows resolved", `document.querySelector('`+caseItem+`[data-status="resolved"]') !== null`)
	b.shot(street, "09-street-cases-resolved")
	b.do(street, "verify", chromedp.Click(chromedp.CSS(caseItem+` form[data-action="verify"] button[type="submit"]`)))
	b.waitJS(street, "the case is closed", `document.querySelector('`+caseItem+`[data-status="closed"] form[data-action="rate"]') !== null`)
	b.do(street, "rate",
		chromedp.SetValue(chromedp.CSS(caseItem+` form[data-action="rate"] select`), "satisfied"),
		chromedp.Click(chromedp.CSS(caseItem+` form[data-action="rate"] button[type="submit"]`)),
	)
	b.waitJS(street, "the rating is recorded", `document.querySelector('`+caseItem+`[data-rating="satisfied"]') !== null`)
	b.shot(street, "10-street-cases-closed")

	// The case's timeline, its hash chain checked by the browser itself.
	b.do(street, "open the timeline", chromedp.Click(chromedp.CSS(caseItem+` button[data-action="timeline"]`)))
	b.waitJS(street, "the chain is checked", `document.getElementById("chain-browser") !== null`)
	if got := b.eval(street, `document.getElementById("chain-browser").dataset.ok + " " + document.getElementById("chain-server").dataset.ok`); got != `"true true"` {
		t.Errorf("chain verdicts (browser, server) = %s, want true true: %s", got, b.eval(street, `document.getElementById("chain-browser").textContent`))
	}
	events := b.eval(street, `[...document.querySelectorAll("#timeline-events li")].map(li => li.dataset.type).join(",")`)
	for _, typ := range []string{"WhistleRaised", "AssignmentMade", "AssignmentReported", "AssignmentResolved", "ResolutionVerified", "CaseClosed", "SatisfactionRated"} {
		if !strings.Contains(events, typ) {
			t.Errorf("timeline lacks %s: %s", typ, events)
		}
	}
	b.shot(street, "11-street-timeline")

	// The leader's figures change, and its other views show the case.
	b.waitJS(leader, "the closed count goes up", `(() => {
		const v = document.querySelector("#tile-closed .v");
		if (v && Number(v.textContent) >= `+strconv.Itoa(closedBefore+1)+`) return true;
		const btn = document.getElementById("figures-refresh");
		if (btn && !window.__refreshing) { window.__refreshing = true; btn.click(); setTimeout(() => { window.__refreshing = false; }, 500); }
		return false;
	})()`)
	if got := b.tile(leader, "closed"); got != closedBefore+1 {
		t.Errorf("closed went from %d to %d, want +1", closedBefore, got)
	}
	for _, chart := range []string{"chart-daily", "chart-depts", "chart-streets", "chart-medsat"} {
		b.waitJS(leader, chart+" is drawn", `document.querySelector("#`+chart+` svg") !== null`)
	}
	b.shot(leader, "12-leader-figures-after")

	// The leader's breakdown by category, narrowed to one street with the
	// selector (GET /v1/stats?street=): none for Zhenhai, which raised
	// nothing; Longqiao's river pollution as the API gives it. The selector
	// keeps the focus through the redraw.
	b.waitJS(leader, "the breakdown by category shows every street's", `document.querySelector('#figures-categories[data-street=""] tr[data-key="river-pollution"]') !== null`)
	pickStreet := func(id string) {
		b.eval(leader, `(() => { const s = document.getElementById("figures-street"); s.focus(); s.value = "`+id+`"; s.dispatchEvent(new Event("change")); return true; })()`)
	}
	pickStreet("zhenhai")
	b.waitJS(leader, "Zhenhai's breakdown, empty", `document.querySelector('#figures-categories[data-street="zhenhai"] .empty') !== null`)
	pickStreet("longqiao")
	b.waitJS(leader, "Longqiao's breakdown", `document.querySelector('#figures-categories[data-street="longqiao"] tr[data-key="river-pollution"]') !== null`)
	if got := b.evalString(leader, `document.activeElement.id`); got != "figures-street" {
		t.Errorf("after choosing a street the focus is on %q, want the street selector", got)
	}
	b.checkFigureRow(leader, s, "auditor:auditor", "/v1/stats?group_by=category&street=longqiao", "figures-categories", "river-pollution", "河道污染", "zh")
	b.shot(leader, "12b-leader-figures-one-street")
	b.do(leader, "open the overdue list", chromedp.Click(chromedp.ID("nav-overdue")))
	b.waitJS(leader, "the overdue emergency is listed", `document.querySelector('#overdue-list li[data-case-id="`+late.CaseID+`"].overdue') !== null || (document.querySelector("#view-overdue button")?.click(), false)`)
	if got := b.eval(leader, `document.querySelector('#overdue-list li[data-case-id="`+caseID+`"]') === null`); got != "true" {
		t.Errorf("the case handled in time is on the overdue list")
	}
	b.shot(leader, "13-leader-overdue")
	b.do(leader, "open all cases", chromedp.Click(chromedp.ID("nav-cases")))
	b.waitJS(leader, "the cases view loads", `document.getElementById("view-cases") !== null`)
	b.waitJS(leader, "the closed case is listed", `document.querySelector('#case-list li[data-case-id="`+caseID+`"][data-status="closed"]') !== null || (document.getElementById("cases-refresh")?.click(), false)`)
	b.shot(leader, "14-leader-cases")
	b.do(leader, "open the timeline", chromedp.Navigate(s.URL+"/#timeline/"+caseID))
	b.waitJS(leader, "the leader's chain check", `document.querySelector('#chain-browser[data-ok="true"]') !== null`)
	b.shot(leader, "15-leader-timeline")

	// The browser's own check catches a history altered on its way: the
	// page's fetch changes one event's title, and the check says where.
	b.eval(leader, `(() => {
		const orig = window.fetch;
		window.fetch = async (url, init) => {
			const res = await orig(url, init);
			if (!String(url).endsWith("/history")) return res;
			const h = await res.json();
			h.events[0].data.title += "!";
			return new Response(JSON.stringify(h), {status: 200, headers: {"Content-Type": "application/json"}});
		};
		return true;
	})()`)
	b.do(leader, "check the chain again", chromedp.Click(chromedp.ID("timeline-recheck")))
	b.waitJS(leader, "the altered history is caught", `document.querySelector('#chain-browser[data-ok="false"]') !== null`)
	if got := b.evalString(leader, `document.getElementById("chain-browser").textContent`); !strings.Contains(got, " 0") {
		t.Errorf("the browser's verdict on an altered first event: %s", got)
	}
	b.shot(leader, "16-leader-timeline-altered")

	// A dispute and a need, in a fourth browser context: the judicial office
	// must give the mediation outcome to resolve; then, signed in as a
	// resident unit, it claims a need offered to its community.
	dispute := raiseByAPI(t, s, "neighbour-dispute", "万辉社区楼上漏水纠纷")
	need := raiseByAPI(t, s, "after-school-care", "万辉社区四点半课堂需要志愿者")
	other := newTab(t, browser, "judicial office, then unit")
	b.signIn(other, s.Token("department:judicial-office"), "#view-queue")
	ditem := `#queue-list li[data-case-id="` + dispute + `"]`
	b.waitJS(other, "the dispute is queued", `document.querySelector('`+ditem+`[data-status="assigned"]') !== null`)
	b.do(other, "report in to the dispute", chromedp.Click(chromedp.CSS(ditem+` button[data-action="report"]`)))
	b.waitJS(other, "the dispute is reported", `document.querySelector('`+ditem+`[data-status="reported"]') !== null`)
	dform := ditem + ` form[data-action="resolve"]`
	b.do(other, "resolve without an outcome",
		chromedp.Click(chromedp.CSS(ditem+` details:has(form[data-action="resolve"]) > summary`)),
		chromedp.Click(chromedp.CSS(dform+` button[type="submit"]`)))
	b.waitJS(other, "the outcome is asked for", `document.querySelector('`+dform+` .error').textContent !== ""`)
	b.do(other, "choose success", chromedp.Click(chromedp.CSS(dform+` input[value="success"]`)))
	b.shot(other, "17-judicial-office-mediation")
	b.do(other, "resolve the dispute", chromedp.Click(chromedp.CSS(dform+` button[type="submit"]`)))
	b.waitJS(other, "the dispute leaves the queue", `document.querySelector('`+ditem+`') === null`)
	var mediated struct {
		Status    string  `json:"status"`
		Mediation *string `json:"mediation"`
	}
	if s.Do("GET", "/v1/cases/"+dispute, "auditor:auditor", nil, &mediated); mediated.Status != "resolved" || mediated.Mediation == nil || *mediated.Mediation != "success" {
		t.Errorf("the dispute after the dashboard resolved it: %+v", mediated)
	}
	b.do(other, "sign out", chromedp.Click(chromedp.ID("sign-out")))
	b.signIn(other, s.Token("unit:putian-university"), "#view-queue")
	nitem := `#queue-list li[data-case-id="` + need + `"]`
	b.waitJS(other, "the need is offered", `document.querySelector('`+nitem+`[data-status="assigned"] button[data-action="claim"]') !== null`)
	b.shot(other, "18-unit-offer")
	b.do(other, "claim the need", chromedp.Click(chromedp.CSS(nitem+` button[data-action="claim"]`)))
	b.waitJS(other, "the claimant leads, reported in", `document.querySelector('`+nitem+`[data-status="reported"] form[data-action="resolve"]') !== null`)
	b.shot(other, "19-unit-claimed")

	// English, switched in the page, and a phone-sized screen.
	b.do(street, "switch to English", chromedp.Click(chromedp.ID("lang-switch")))
	b.waitJS(street, "the page is in English", `document.documentElement.lang === "en" && document.getElementById("nav-raise").textContent === "Blow the whistle"`)
	b.do(street, "go to the raise form", chromedp.Click(chromedp.ID("nav-raise")))
	b.shot(street, "20-street-raise-english")
	b.do(street, "the street's own figures", chromedp.Click(chromedp.ID("nav-figures")))
	b.waitJS(street, "the street's figures load", `document.querySelector("#tile-closed .v") !== null && document.querySelector("#chart-communities svg") !== null`)
	// Its own cases by category and by urgency, as GET /v1/stats gives them
	// to the street: the river pollution raised through the form, closed
	// and rated, under its name in the directory; and it was urgent.
	b.waitJS(street, "the street's breakdowns show", `document.querySelector('#figures-categories tr[data-key="river-pollution"]') !== null && document.querySelector('#figures-urgency tr[data-key="urgent"]') !== null`)
	b.checkFigureRow(street, s, "street:longqiao", "/v1/stats?group_by=category", "figures-categories", "river-pollution", "河道污染", "en")
	b.checkFigureRow(street, s, "street:longqiao", "/v1/stats?group_by=urgency", "figures-urgency", "urgent", "urgent", "en")
	if got := b.eval(street, `[...document.querySelectorAll("#figures-categories tbody th, #figures-urgency tbody th")].every(th => th.scope === "row") && [...document.querySelectorAll(".figtable thead th")].every(th => th.scope === "col")`); got != "true" {
		t.Errorf("the breakdowns' headers lack their scope")
	}
	b.shot(street, "21-street-figures-english")
	b.do(street, "phone width", chromedp.EmulateViewport(360, 740), chromedp.Click(chromedp.ID("nav-raise")))
	b.waitJS(street, "the layout settles", `document.getElementById("raise-form") !== null`)
	if got := b.eval(street, `document.documentElement.scrollWidth <= window.innerWidth + 1`); got != "true" {
		t.Errorf("the raise form is wider than a 360px screen: scrollWidth %s", b.eval(street, `document.documentElement.scrollWidth`))
	}
	b.shot(street, "22-street-raise-phone")
	b.do(street, "phone: cases", chromedp.Click(chromedp.ID("nav-cases")))
	b.waitJS(street, "the case list at phone width", `document.querySelector('`+caseItem+`') !== null`)
	if got := b.eval(street, `document.documentElement.scrollWidth <= window.innerWidth + 1`); got != "true" {
		t.Errorf("the case list is wider than a 360px screen: scrollWidth %s", b.eval(street, `document.documentElement.scrollWidth`))
	}
	b.shot(street, "23-street-cases-phone")
	b.do(other, "phone: queue", chromedp.EmulateViewport(360, 740))
	b.shot(other, "24-unit-queue-phone")
	b.do(leader, "phone: figures", chromedp.EmulateViewport(360, 740), chromedp.Click(chromedp.ID("nav-figures")))
	b.waitJS(leader, "the figures at phone width", `document.getElementById("view-figures") !== null`)
	b.shot(leader, "25-leader-figures-phone")
	b.do(street, "back to Chinese", chromedp.Click(chromedp.ID("lang-switch")))
	b.do(street, "phone: the street's figures", chromedp.Click(chromedp.ID("nav-figures")))
	b.waitJS(street, "the breakdowns at phone width, in Chinese", `document.documentElement.lang === "zh-CN" && document.querySelector('#figures-urgency tr[data-key="urgent"] th')?.textContent === "紧急"`)
	b.checkFigureRow(street, s, "street:longqiao", "/v1/stats?group_by=category", "figures-categories", "river-pollution", "河道污染", "zh")
	if got := b.eval(street, `document.documentElement.scrollWidth <= window.innerWidth + 1 && [...document.querySelectorAll(".figtable")].every(t => t.scrollWidth <= t.parentElement.clientWidth + 1)`); got != "true" {
		t.Errorf("the street's figures are wider than a 360px screen: scrollWidth %s", b.eval(street, `document.documentElement.scrollWidth`))
	}
	b.shot(street, "26-street-figures-phone")

	// Signing out forgets the token.
	b.do(street, "sign out", chromedp.Click(chromedp.ID("sign-out")))
	b.waitJS(street, "signed out", `document.getElementById("signin-token") !== null && !document.getElementById("view-signin").hidden && sessionStorage.getItem("whistle.token") === null`)
	t.Logf("dashboard screenshots in %s", shots)
}

type browserRun struct {
	t     *testing.T
	shots string
	url   string
}

// startBrowser starts headless Chromium for one test and returns its
// browser context; a test still running after limit ends the browser, and
// with it every step.
func startBrowser(t *testing.T, chrome string, limit time.Duration) context.Context {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.NoSandbox, // CI runs as root
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("lang", "zh-CN"), // a Chinese office's browser; a test may switch to English
		chromedp.Flag("accept-lang", "zh-CN,zh"),
	)...)
	t.Cleanup(cancelAlloc)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start chromium %s: %v", chrome, err)
	}
	deadline, cancelDeadline := context.WithTimeout(context.Background(), limit)
	t.Cleanup(cancelDeadline)
	go func() {
		<-deadline.Done()
		cancelBrowser() // a hung step ends the browser, and with it the test
	}()
	return browser
}

func newTab(t *testing.T, browser context.Context, name string) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open the %s's browser context: %v", name, err)
	}
	return ctx
}

func (b *browserRun) do(ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	step, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(step, steps...); err != nil {
		b.fail(ctx, what, err)
	}
}

// waitJS waits until the expression is true in the page.
func (b *browserRun) waitJS(ctx context.Context, what, expr string) {
	b.t.Helper()
	step, cancel := context.WithTimeout(ctx, 25*time.Second)
	defer cancel()
	if _, err := chromedp.Run(step, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		b.fail(ctx, "wait until "+what, err)
	}
}

// eval returns the expression's value as JSON.
func (b *browserRun) eval(ctx context.Context, expr string) string {
	b.t.Helper()
	step, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	raw, err := chromedp.Run(step, chromedp.Evaluate[[]byte](expr))
	if err != nil {
		b.fail(ctx, "evaluate "+expr, err)
	}
	return string(raw)
}

// evalString returns the value of an expression that gives a string.
func (b *browserRun) evalString(ctx context.Context, expr string) string {
	b.t.Helper()
	var v string
	if raw := b.eval(ctx, expr); json.Unmarshal([]byte(raw), &v) != nil {
		b.t.Fatalf("%s gives %s, not a string", expr, raw)
	}
	return v
}

func (b *browserRun) tile(ctx context.Context, name string) int {
	b.t.Helper()
	s := strings.Trim(b.eval(ctx, `document.querySelector("#tile-`+name+` .v").textContent`), `"`)
	n, err := strconv.Atoi(s)
	if err != nil {
		b.t.Fatalf("tile %s shows %q, not a count", name, s)
	}
	return n
}

// checkFigureRow checks one row of a figures table (#figures-categories,
// #figures-urgency) against the group of the same key that GET path gives
// principal: its name, raised and closed counts, rates and median time to
// close, as the page formats them in lang. The group must have been raised.
func (b *browserRun) checkFigureRow(ctx context.Context, s *whistledtest.Server, principal, path, table, key, name, lang string) {
	b.t.Helper()
	var ans struct {
		Groups []struct {
			Key                string   `json:"key"`
			Raised             int64    `json:"raised"`
			Closed             int64    `json:"closed"`
			ClosureRate        *float64 `json:"closure_rate"`
			ResponseRate       *float64 `json:"response_rate"`
			MedianCloseSeconds *float64 `json:"median_close_seconds"`
		} `json:"groups"`
	}
	if code := s.Do("GET", path, principal, nil, &ans); code != http.StatusOK {
		b.t.Fatalf("GET %s as %s: %d", path, principal, code)
	}
	want := map[string]string{"name": name}
	for _, g := range ans.Groups {
		if g.Key == key {
			want["raised"] = strconv.FormatInt(g.Raised, 10)
			want["closed"] = strconv.FormatInt(g.Closed, 10)
			want["closure"] = pctText(g.ClosureRate)
			want["response"] = pctText(g.ResponseRate)
			want["median-close"] = spanText(g.MedianCloseSeconds, lang)
		}
	}
	if want["raised"] == "" || want["raised"] == "0" {
		b.t.Fatalf("GET %s as %s has no cases raised for %s: %+v", path, principal, key, ans.Groups)
	}
	var got map[string]string
	raw := b.eval(ctx, `(() => {
		const r = document.querySelector('#`+table+` tr[data-key="`+key+`"]');
		if (!r) return null;
		const o = { name: r.querySelector('th[scope="row"]').textContent };
		for (const td of r.querySelectorAll("td[data-col]")) o[td.dataset.col] = td.textContent;
		return o;
	})()`)
	if err := json.Unmarshal([]byte(raw), &got); err != nil || got == nil {
		b.t.Fatalf("#%s has no row for %s: %s", table, key, raw)
	}
	for k, v := range want {
		if got[k] != v {
			b.t.Errorf("#%s row %s: %s shows %q, want %q (GET %s as %s)", table, key, k, got[k], v, path, principal)
		}
	}
}

// pctText and spanText format a rate and a duration as the dashboard does.
func pctText(v *float64) string {
	if v == nil {
		return "—"
	}
	return fmt.Sprintf("%.1f%%", *v*100)
}

func spanText(v *float64, lang string) string {
	if v == nil {
		return "—"
	}
	sec := int64(math.Max(0, math.Round(*v)))
	var parts []int64
	var format string
	switch {
	case sec < 60:
		parts, format = []int64{sec}, map[string]string{"zh": "{0} 秒", "en": "{0} s"}[lang]
	case sec < 3600:
		parts, format = []int64{sec / 60}, map[string]string{"zh": "{0} 分钟", "en": "{0} min"}[lang]
	case sec < 86400:
		parts, format = []int64{sec / 3600, sec % 3600 / 60}, map[string]string{"zh": "{0} 小时 {1} 分", "en": "{0} h {1} min"}[lang]
	default:
		parts, format = []int64{sec / 86400, sec % 86400 / 3600}, map[string]string{"zh": "{0} 天 {1} 小时", "en": "{0} d {1} h"}[lang]
	}
	for i, p := range parts {
		format = strings.ReplaceAll(format, "{"+strconv.Itoa(i)+"}", strconv.FormatInt(p, 10))
	}
	return format
}

func (b *browserRun) signIn(ctx context.Context, token, landed string) {
	b.t.Helper()
	b.do(ctx, "sign in",
		chromedp.Navigate(b.url+"/"),
		chromedp.WaitVisible(chromedp.ID("signin-token")),
		chromedp.SendKeys(chromedp.ID("signin-token"), token+"\r"),
		chromedp.WaitVisible(chromedp.CSS(landed)),
	)
}

// shot saves a full-page screenshot of the tab.
func (b *browserRun) shot(ctx context.Context, name string) {
	b.t.Helper()
	step, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	png, err := chromedp.Run(step, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(b.shots, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Errorf("save screenshot: %v", err)
		return
	}
	b.t.Logf("screenshot %s", p)
}

// fail saves what the tab shows and ends the test.
func (b *browserRun) fail(ctx context.Context, what string, err error) {
	b.t.Helper()
	shot, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if png, serr := chromedp.Run(shot, chromedp.FullScreenshot(100)); serr == nil {
		p := filepath.Join(b.shots, "failed.png")
		_ = os.WriteFile(p, png, 0o644)
		b.t.Logf("screenshot at the failure: %s", p)
	}
	text, _ := chromedp.Run(shot, chromedp.Evaluate[string](`document.body.innerText.slice(0, 2000)`))
	b.t.Fatalf("%s: %v\npage text:\n%s", what, err, text)
}

// raiseByAPI raises a case in Wanhui community as Longqiao street and
// returns its id.
func raiseByAPI(t *testing.T, s *whistledtest.Server, category, title string) string {
	t.Helper()
	var c struct {
		CaseID string `json:"case_id"`
	}
	if code := s.Do("POST", "/v1/whistles", "street:longqiao", map[string]any{
		"street": "longqiao", "community": "wanhui", "category": category, "urgency": "routine", "title": title,
	}, &c); code != http.StatusCreated {
		t.Fatalf("raise %s: %d", category, code)
	}
	return c.CaseID
}

// findChromium returns the path of Debian's chromium (or another Chrome), or
// "" when none is installed.
func findChromium() string {
	if p := os.Getenv("WHISTLE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// artifactDir is $WHISTLE_ARTIFACTS/dashboard when set (CI keeps it), else a
// temporary folder of the test.
func artifactDir(t *testing.T) string {
	t.Helper()
	if root := os.Getenv("WHISTLE_ARTIFACTS"); root != "" {
		dir := filepath.Join(root, "dashboard")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.TempDir()
}
