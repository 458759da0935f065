package main

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/whistle-gov/whistle/cmd/whistled/whistledtest"
)

// The case list in a browser, as an auditor: 41 cases are compact rows in
// pages of 20 (the cards made 41 cases 10,257 px tall), found by text and by
// number, narrowed by street, community, category, overdue and dates, and
// plotted by their coordinates; a case of 镇海社区 in 镇海街道 (a street and
// a community that share the id "zhenhai") names both.
func TestDashboardCaseListFindsAndPages(t *testing.T) {
	chrome := findChromium()
	if chrome == "" {
		t.Skip("chromium is not installed; install Debian's chromium (apt-get install -y chromium) to run the dashboard's browser test; .ci/run does")
	}
	s := whistledtest.Start(t)
	const total, zhenhai, located = 41, 11, 30
	ids := make([]string, 0, total)
	for i := range total {
		street, community, category := "longqiao", "wanhui", "river-pollution"
		if i < zhenhai {
			street, community = "zhenhai", "zhenhai"
		}
		if i%3 == 0 {
			category = "broken-manhole-cover"
		}
		body := map[string]any{"street": street, "community": community, "category": category, "urgency": "routine",
			"title": fmt.Sprintf("测试案件 第%02d号", i)}
		if i < located {
			body["location"] = map[string]any{"address": "莆田", "lat": 25.43 + float64(i)*0.001, "lon": 119.0 + float64(i%7)*0.002}
		}
		var c struct {
			CaseID string `json:"case_id"`
		}
		if code := s.Do("POST", "/v1/whistles", "street:"+street, body, &c); code != http.StatusCreated {
			t.Fatalf("raise %d: %d", i, code)
		}
		ids = append(ids, c.CaseID)
	}
	manhole := 0
	for i := range total {
		if i%3 == 0 {
			manhole++
		}
	}

	browser := startBrowser(t, chrome, 120*time.Second)
	tab := newTab(t, browser, "leader")
	b := &browserRun{t: t, shots: artifactDir(t), url: s.URL}
	b.signIn(tab, s.Token("auditor:auditor"), "#view-figures")
	b.do(tab, "open all cases", chromedp.Click(chromedp.ID("nav-cases")))
	rows := `document.querySelectorAll("#case-list li.item").length`
	b.waitJS(tab, "the first page of cases", rows+` === 20 && document.getElementById("cases-count").textContent.includes("41")`)
	b.waitJS(tab, "the plot of the cases with coordinates", `document.querySelectorAll("#cases-plot circle").length === `+strconv.Itoa(located))
	b.shot(tab, "cases-01-list")
	if h := b.eval(tab, `document.documentElement.scrollHeight`); atoi(t, h) > 3000 {
		t.Errorf("the case list of %d cases is %s px tall, want compact rows (under 3000)", total, h)
	}

	// Pages.
	b.do(tab, "the next page", chromedp.Click(chromedp.ID("cases-next")))
	b.waitJS(tab, "page 2", rows+` === 20 && document.getElementById("cases-page").textContent.includes("2")`)
	b.do(tab, "the last page", chromedp.Click(chromedp.ID("cases-next")))
	b.waitJS(tab, "page 3 holds the last case", rows+` === 1 && document.getElementById("cases-next").disabled`)

	set := func(id, value string) {
		b.t.Helper()
		b.eval(tab, `(() => { const el = document.getElementById("`+id+`"); `+
			`if (el.type === "checkbox") el.checked = `+strconv.Quote(value)+` === "on"; else el.value = `+strconv.Quote(value)+`; `+
			`el.dispatchEvent(new Event(el.type === "search" ? "input" : "change")); return true; })()`)
	}
	count := func(want int, what string) {
		b.t.Helper()
		b.waitJS(tab, what, `document.getElementById("cases-count").textContent.startsWith("显示 `+strconv.Itoa(want)+` 件") || document.getElementById("cases-count").textContent.startsWith("`+strconv.Itoa(want)+` shown")`)
	}
	// Search by text, and by number (the end of a case id).
	set("cases-q", "第07号")
	count(1, "a search by title finds one case")
	if got := b.evalString(tab, `document.querySelector("#case-list li.item").dataset.caseId`); got != ids[7] {
		t.Errorf("the search for 第07号 shows %s, want %s", got, ids[7])
	}
	set("cases-q", ids[33][len(ids[33])-10:])
	count(1, "a search by number finds one case")
	set("cases-q", "")
	count(total, "an empty search shows all")

	// Filters.
	set("cases-street", "zhenhai")
	count(zhenhai, "the street filter")
	b.waitJS(tab, "the communities offered are the street's", `(() => { const v = [...document.querySelectorAll("#cases-community option")].map(o => o.value); return v.includes("zhenhai") && !v.includes("wanhui"); })()`)
	set("cases-community", "zhenhai")
	count(zhenhai, "the community filter")
	// 镇海街道's own community: each name where it belongs (a street and its
	// community share the id "zhenhai"; the page said 镇海社区 · 镇海社区).
	if where := b.evalString(tab, `[...new Set([...document.querySelectorAll("#case-list .meta .where")].map(e => e.textContent))].join("|")`); where != "镇海社区 · 镇海街道" {
		t.Errorf("the cases of 镇海社区 in 镇海街道 show %q, want 镇海社区 · 镇海街道", where)
	}
	b.shot(tab, "cases-02-street-filter")
	set("cases-street", "")
	set("cases-category", "broken-manhole-cover")
	count(manhole, "the category filter")
	set("cases-category", "")
	set("cases-overdue", "on")
	count(0, "nothing is overdue yet")
	set("cases-overdue", "off")
	tomorrow := time.Now().Add(24 * time.Hour).Format("2006-01-02")
	set("cases-from", tomorrow)
	count(0, "nothing raised from tomorrow")
	set("cases-from", time.Now().Add(-24*time.Hour).Format("2006-01-02"))
	set("cases-to", tomorrow)
	count(total, "all raised in the last days")
	b.shot(tab, "cases-03-filtered")
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		t.Fatalf("%q is not a number", s)
	}
	return n
}
