package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/whistle-gov/whistle/cmd/whistled/whistledtest"
)

// TestResidentPageInABrowser: the resident's page on a 360 px phone screen
// in Chinese and in English, no wider than the screen, with no personal
// data; the resident rates through its form; the street's callback list
// shows the case, reveals the phone on demand (recorded), and issues a
// receipt for printing or SMS. Screenshots in $WHISTLE_ARTIFACTS or the
// test's folder.
func TestResidentPageInABrowser(t *testing.T) {
	chrome := findChromium()
	if chrome == "" {
		t.Skip("chromium is not installed; install Debian's chromium (apt-get install -y chromium) to run the browser tests")
	}
	s := whistledtest.Start(t)
	shots := artifactDir(t)
	body := raiseBody("longqiao", "wanhui", "river-pollution", "routine")
	body["requester"] = map[string]string{"name": requesterName, "phone": requesterPhone}
	var c receiptAnswer
	mustStatus(t, "raise", s.Do("POST", "/v1/whistles", "street:longqiao", body, &c), 201)
	id, link := c.CaseID, c.Receipt.Link
	lead := principalOf(s, "ecology-bureau")
	mustStatus(t, "report", s.Do("POST", "/v1/cases/"+id+"/report", lead, nil, nil), 200)
	mustStatus(t, "resolve", s.Do("POST", "/v1/cases/"+id+"/resolve", lead, map[string]string{"note": "cleaned"}, nil), 200)
	mustStatus(t, "verify", s.Do("POST", "/v1/cases/"+id+"/verify", "street:longqiao", map[string]any{"accepted": true}, nil), 200)

	browser := startBrowser(t, chrome, 90*time.Second)
	b := &browserRun{t: t, shots: shots, url: s.URL}
	fits := `document.documentElement.scrollWidth <= 360`
	for _, tc := range []struct{ lang, query, label, status string }{
		{"zh", "", "受理编号", "已办结"},
		{"en", "?lang=en", "Case number", "closed"},
	} {
		phone := newTab(t, browser, "resident-"+tc.lang)
		b.do(phone, "open the page on a phone ("+tc.lang+")",
			chromedp.EmulateViewport(360, 740),
			chromedp.Navigate(s.URL+link+tc.query),
			chromedp.WaitVisible(chromedp.ID("case-no")))
		text := b.evalString(phone, `document.body.innerText`)
		if !strings.Contains(text, tc.label) || !strings.Contains(text, c.Receipt.CaseNo) || !strings.Contains(text, tc.status) {
			t.Errorf("the page in %s says:\n%s", tc.lang, text)
		}
		for _, clear := range []string{requesterName, requesterPhone, "河道有异味"} {
			if strings.Contains(text, clear) {
				t.Errorf("the page in %s shows %q", tc.lang, clear)
			}
		}
		if got := b.eval(phone, fits); got != "true" {
			t.Errorf("the page in %s is wider than a 360 px screen (%s px)", tc.lang, b.eval(phone, `document.documentElement.scrollWidth`))
		}
		b.shot(phone, "resident-"+tc.lang+"-360")
		if tc.lang == "zh" {
			b.do(phone, "rate through the page",
				chromedp.Click(chromedp.CSS(`input[value="basically_satisfied"]`)),
				chromedp.SendKeys(chromedp.ID("comment"), "处理及时"),
				chromedp.Click(chromedp.CSS(`#rate button[type=submit]`)))
			// The page reloads itself once the rating is taken: wait for
			// the new document, then for what it says.
			rated := `document.readyState === "complete" && document.body.innerText.includes("感谢您的评价") && document.body.innerText.includes("您的评价：基本满意")`
			deadline := time.Now().Add(20 * time.Second)
			for {
				step, cancel := context.WithTimeout(phone, 5*time.Second)
				raw, err := chromedp.Run(step, chromedp.Evaluate[[]byte](rated))
				cancel()
				if err == nil && string(raw) == "true" {
					break
				}
				if time.Now().After(deadline) {
					b.fail(phone, "wait until the rating shows", err)
				}
				time.Sleep(200 * time.Millisecond) // the reload may be under way: try again
			}
			b.shot(phone, "resident-zh-360-rated")
		}
	}

	// The street: the callback list, the phone on demand, a receipt.
	street := newTab(t, browser, "street")
	b.signIn(street, s.Token("street:longqiao"), "#raise-form")
	item := `#callback-list li[data-case-id="` + id + `"]`
	b.do(street, "open the callbacks", chromedp.Navigate(s.URL+"/#callbacks"), chromedp.WaitVisible(chromedp.CSS(item)))
	if got := b.evalString(street, `document.querySelector('`+item+`').innerText`); strings.Contains(got, requesterPhone) {
		t.Errorf("the callback list shows the phone before it is asked for: %s", got)
	}
	b.shot(street, "street-callbacks")
	b.do(street, "reveal the phone", chromedp.Click(chromedp.CSS(item+` button[data-action="reveal"]`)))
	b.waitJS(street, "the phone shows", `document.querySelector('`+item+` .phone-number')?.textContent === "`+requesterPhone+`"`)
	b.shot(street, "street-callbacks-phone")
	var h struct {
		Events []struct {
			Type string `json:"type"`
		} `json:"events"`
	}
	mustStatus(t, "history", s.Do("GET", "/v1/cases/"+id+"/history", "auditor:auditor", nil, &h), 200)
	if last := h.Events[len(h.Events)-1].Type; last != "RequesterRevealed" {
		t.Errorf("the reveal is not recorded: the last event is %s", last)
	}
	b.do(street, "call back", chromedp.Click(chromedp.CSS(item+` form[data-action="callback"] button[type=submit]`)))
	b.waitJS(street, "the callback list empties", `document.getElementById("callbacks-empty") !== null`)

	caseItem := `#case-list li[data-case-id="` + id + `"]`
	b.do(street, "open the cases", chromedp.Navigate(s.URL+"/#cases"), chromedp.WaitVisible(chromedp.CSS(caseItem)))
	b.do(street, "issue a receipt", chromedp.Click(chromedp.CSS(caseItem+` button[data-action="receipt"]`)))
	b.waitJS(street, "the receipt shows", `document.querySelector('`+caseItem+` .receipt .case-no')?.textContent === "`+c.Receipt.CaseNo+`"`)
	newLink := b.evalString(street, `document.querySelector('`+caseItem+` .receipt-link').textContent`)
	if !strings.HasPrefix(newLink, s.URL+"/r/") || strings.HasSuffix(newLink, link) {
		t.Errorf("the receipt's link %q: want a new one", newLink)
	}
	b.shot(street, "street-receipt")
}
