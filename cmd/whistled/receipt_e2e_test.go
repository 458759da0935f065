package main

import (
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/whistle-gov/whistle/cmd/whistled/whistledtest"
)

type receiptAnswer struct {
	CaseID      string `json:"case_id"`
	Position    uint64 `json:"position"`
	Status      string `json:"status"`
	SecondRound bool   `json:"second_round"`
	Receipt     *struct {
		CaseNo string `json:"case_no"`
		Link   string `json:"link"`
	} `json:"receipt"`
	Callback *struct {
		Status   string `json:"status"`
		Attempts int    `json:"attempts"`
		Round    int    `json:"round"`
	} `json:"callback"`
	Assignments []struct {
		Assignee  string     `json:"assignee"`
		Role      string     `json:"role"`
		Status    string     `json:"status"`
		ResolveBy *time.Time `json:"resolve_by"`
	} `json:"assignments"`
}

type residentJSON struct {
	CaseNo      string `json:"case_no"`
	Status      string `json:"status"`
	StatusText  string `json:"status_text"`
	SecondRound bool   `json:"second_round"`
	CanRate     bool   `json:"can_rate"`
	Rating      string `json:"rating"`
	Timeline    []struct {
		Event string `json:"event"`
		Text  string `json:"text"`
	} `json:"timeline"`
}

// open sends a request without a token, as a resident's phone does.
func open(t *testing.T, s *whistledtest.Server, method, path, lang string, body any) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.URL+path, rd)
	if lang != "" {
		req.Header.Set("Accept-Language", lang)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, raw
}

// TestReceiptsCallbacksAndSecondRound drives a resident's case on the real
// whistled: the receipt of a raise, the resident's page (Chinese, English,
// JSON) and its 404 that says nothing, callbacks, the resident's rating and
// the second round it opens, the figures, a reissued link, the rate limit;
// then the data folder, every answer and the log hold no phone, name or
// token in clear, and a restart and a replay change nothing.
func TestReceiptsCallbacksAndSecondRound(t *testing.T) {
	s := whistledtest.Start(t)
	sm := pickSample(t, s)
	street, lead, auditor := "street:"+sm.street, principalOf(s, sm.issue.Lead), "auditor:auditor"
	body := raiseBody(sm.street, sm.community, sm.issue.ID, "routine")
	body["requester"] = map[string]string{"name": requesterName, "phone": requesterPhone}

	var c receiptAnswer
	st, raw := s.DoRaw("POST", "/v1/whistles", street, body)
	mustStatus(t, "raise", st, 201)
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	if c.Receipt == nil || !regexp.MustCompile(`^\d{8}-\d{4}$`).MatchString(c.Receipt.CaseNo) || !strings.HasPrefix(c.Receipt.Link, "/r/") {
		t.Fatalf("the raise answers receipt %+v", c.Receipt)
	}
	id, link, caseNo := c.CaseID, c.Receipt.Link, c.Receipt.CaseNo
	tokens := []string{strings.TrimPrefix(link, "/r/")}
	var answers [][]byte // every answer but the two that hand out a link
	keep := func(what string, b []byte) {
		answers = append(answers, b)
		mustNotHoldRequester(t, what, b)
	}
	var second receiptAnswer
	mustStatus(t, "a second raise", s.Do("POST", "/v1/whistles", street, raiseBody(sm.street, sm.community, sm.issue.ID, "routine"), &second), 201)
	if second.Receipt == nil || second.Receipt.CaseNo == caseNo {
		t.Fatalf("two raises share case number %s", caseNo)
	}

	// The page: no login, Chinese by default, English by Accept-Language.
	st, hdr, page := open(t, s, "GET", link, "", nil)
	mustStatus(t, "the page", st, 200)
	keep("the page", page)
	if !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") || !bytes.Contains(page, []byte(caseNo)) || !bytes.Contains(page, []byte("受理编号")) {
		t.Fatalf("the page (%s):\n%s", hdr.Get("Content-Type"), page)
	}
	if bytes.Contains(page, []byte("河道有异味")) || bytes.Contains(page, []byte("延寿溪")) {
		t.Fatalf("the page shows the case's title or address:\n%s", page)
	}
	st, _, page = open(t, s, "GET", link, "en-GB,en;q=0.9,zh;q=0.5", nil)
	keep("the page in English", page)
	if st != 200 || !bytes.Contains(page, []byte("Case number")) {
		t.Fatalf("the page in English: %d\n%s", st, page)
	}
	resident := func(what string) residentJSON {
		t.Helper()
		st, _, raw := open(t, s, "GET", link+"?format=json", "", nil)
		mustStatus(t, what, st, 200)
		keep(what, raw)
		var v residentJSON
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := resident("the page as JSON"); v.CaseNo != caseNo || v.Status != "routed" || v.CanRate || len(v.Timeline) < 2 {
		t.Fatalf("the page as JSON: %+v", v)
	}
	// A link that is not one: 404, the same whether its case exists or not.
	forged := tokens[0][:len(tokens[0])-4] + "AAAA"
	st1, _, b1 := open(t, s, "GET", "/r/"+forged, "", nil)
	st2, _, b2 := open(t, s, "GET", "/r/"+strings.Repeat("A", len(tokens[0])), "", nil)
	st3, _, b3 := open(t, s, "GET", "/r/short", "", nil)
	if st1 != 404 || st2 != 404 || st3 != 404 || !bytes.Equal(b1, b2) || !bytes.Equal(b2, b3) {
		t.Fatalf("links that are not: %d %s / %d %s / %d %s", st1, b1, st2, b2, st3, b3)
	}
	if st, _, b := open(t, s, "POST", "/r/"+forged+"/rating", "", map[string]string{"rating": "satisfied"}); st != 404 || !bytes.Equal(b, b1) {
		t.Fatalf("rating through a forged link: %d %s", st, b)
	}
	if st, _, _ := open(t, s, "POST", link+"/rating", "", map[string]string{"rating": "satisfied"}); st != 409 {
		t.Fatalf("rating before closure: %d", st)
	}

	// The receipt is the street's: the lead does not see it, the street
	// sees its number but not the link.
	st, raw = s.DoRaw("GET", "/v1/cases/"+id, street, nil)
	keep("the case as its street", raw)
	c = receiptAnswer{} // Unmarshal merges into what is there
	if err := json.Unmarshal(raw, &c); err != nil || c.Receipt == nil || c.Receipt.CaseNo != caseNo || c.Receipt.Link != "" {
		t.Fatalf("the case as its street: %d %s", st, raw)
	}
	st, raw = s.DoRaw("GET", "/v1/cases/"+id, lead, nil)
	keep("the case as the lead", raw)
	if bytes.Contains(raw, []byte(`"receipt"`)) {
		t.Fatalf("the lead sees the receipt: %s", raw)
	}

	// Resolved: the callback is due in the street's list.
	mustStatus(t, "report", s.Do("POST", "/v1/cases/"+id+"/report", lead, nil, nil), 200)
	mustStatus(t, "resolve", s.Do("POST", "/v1/cases/"+id+"/resolve", lead, map[string]string{"note": "cleaned"}, nil), 200)
	callbacks := func(what string) []string {
		t.Helper()
		st, raw := s.DoRaw("GET", "/v1/callbacks", street, nil)
		mustStatus(t, what, st, 200)
		keep(what, raw)
		var l struct {
			Callbacks []struct {
				CaseID string `json:"case_id"`
			} `json:"callbacks"`
		}
		_ = json.Unmarshal(raw, &l)
		var ids []string
		for _, cb := range l.Callbacks {
			ids = append(ids, cb.CaseID)
		}
		return ids
	}
	if got := callbacks("callbacks after resolution"); len(got) != 1 || got[0] != id {
		t.Fatalf("callbacks due %v, want %s", got, id)
	}
	mustStatus(t, "callback by the lead", s.Do("POST", "/v1/cases/"+id+"/callback", lead, map[string]any{"reached": false}, nil), 403)
	mustStatus(t, "callback without reached", s.Do("POST", "/v1/cases/"+id+"/callback", street, map[string]any{"note": "?"}, nil), 422)
	c = receiptAnswer{}
	mustStatus(t, "unreached callback", s.Do("POST", "/v1/cases/"+id+"/callback", street, map[string]any{"reached": false, "note": "no answer"}, &c), 200)
	if c.Callback == nil || c.Callback.Attempts != 1 || c.Callback.Status != "open" {
		t.Fatalf("after an unreached callback: %+v", c.Callback)
	}
	mustStatus(t, "verify", s.Do("POST", "/v1/cases/"+id+"/verify", street, map[string]any{"accepted": true}, nil), 200)

	// Unsatisfied through the link: a second round.
	if v := resident("the page once closed"); !v.CanRate || v.Status != "closed" {
		t.Fatalf("closed: %+v", v)
	}
	mustStatus(t, "a bad rating", func() int {
		st, _, _ := open(t, s, "POST", link+"/rating", "", map[string]string{"rating": "meh"})
		return st
	}(), 422)
	// Residents write their numbers into comments whatever the form says:
	// the comment is sealed like the requester, opened for the street.
	comment := "还是有味道，请回电 " + requesterPhone
	st, _, raw = open(t, s, "POST", link+"/rating", "", map[string]string{"rating": "unsatisfied", "comment": comment})
	mustStatus(t, "unsatisfied", st, 200)
	keep("the rating's answer", raw)
	before := time.Now()
	var rated struct {
		receiptAnswer
		ResidentRating *struct {
			Rating  string `json:"rating"`
			Comment string `json:"comment"`
		} `json:"resident_rating"`
	}
	mustStatus(t, "the case reopened", s.Do("GET", "/v1/cases/"+id, street, nil, &rated), 200)
	c = rated.receiptAnswer
	if c.Status != "in_progress" || !c.SecondRound || rated.ResidentRating == nil || rated.ResidentRating.Comment != comment || rated.ResidentRating.Rating != "unsatisfied" {
		t.Fatalf("after an unsatisfied rating: %+v %+v", c, rated.ResidentRating)
	}
	st, raw = s.DoRaw("GET", "/v1/cases/"+id, lead, nil)
	keep("the reopened case as the lead", raw)
	if st != 200 || bytes.Contains(raw, []byte("还是有味道")) {
		t.Fatalf("the lead reads the resident's comment: %d %s", st, raw)
	}
	for _, a := range c.Assignments {
		if a.Role == "lead" && (a.Status != "reported" || a.ResolveBy == nil || !a.ResolveBy.After(before.Add(24*time.Hour))) {
			t.Fatalf("the lead in the second round: %+v", a)
		}
	}
	if st, _, _ := open(t, s, "POST", link+"/rating", "", map[string]string{"rating": "satisfied"}); st != 409 {
		t.Fatalf("rating a reopened case: %d", st)
	}
	mustStatus(t, "resolve again", s.Do("POST", "/v1/cases/"+id+"/resolve", lead, map[string]string{"note": "dredged"}, nil), 200)
	mustStatus(t, "verify again", s.Do("POST", "/v1/cases/"+id+"/verify", street, map[string]any{"accepted": true}, nil), 200)
	if st, _, _ := open(t, s, "POST", link+"/rating", "", map[string]string{"rating": "satisfied", "comment": "谢谢，处理得很快"}); st != 200 {
		t.Fatalf("rating the second round: %d", st)
	}
	if st, _, _ := open(t, s, "POST", link+"/rating", "", map[string]string{"rating": "satisfied"}); st != 409 {
		t.Fatalf("rating twice: %d", st)
	}
	c = receiptAnswer{}
	mustStatus(t, "reached callback", s.Do("POST", "/v1/cases/"+id+"/callback", street, map[string]any{"reached": true, "rating": "basically_satisfied", "note": "ok"}, &c), 200)
	if c.Callback == nil || c.Callback.Status != "reached" || c.Callback.Round != 2 {
		t.Fatalf("after a reached callback: %+v", c.Callback)
	}
	if got := callbacks("callbacks at the end"); len(got) != 0 {
		t.Fatalf("callbacks still due: %v", got)
	}

	// The figures, against what happened: 2 callbacks, 1 reached, 1 second
	// round, 2 ratings through the link (unsatisfied, satisfied) and 1 by
	// callback (basically satisfied).
	var stats struct {
		Groups []struct {
			Key                  string   `json:"key"`
			Callbacks            int      `json:"callbacks"`
			CallbacksReached     int      `json:"callbacks_reached"`
			CallbackReachRate    *float64 `json:"callback_reach_rate"`
			SecondRounds         int      `json:"second_rounds"`
			Ratings              int      `json:"ratings"`
			SatisfactionRate     *float64 `json:"satisfaction_rate"`
			SatisfactionBySource struct {
				Resident struct{ Ratings int } `json:"resident"`
				Callback struct{ Ratings int } `json:"callback"`
			} `json:"satisfaction_by_source"`
		} `json:"groups"`
	}
	mustStatus(t, "stats", s.Do("GET", "/v1/stats?group_by=street&position="+strconv.FormatUint(c.Position, 10), auditor, nil, &stats), 200)
	found := false
	for _, g := range stats.Groups {
		if g.Key != sm.street {
			continue
		}
		found = true
		if g.Callbacks != 2 || g.CallbacksReached != 1 || g.SecondRounds != 1 || g.Ratings != 3 ||
			g.SatisfactionBySource.Resident.Ratings != 2 || g.SatisfactionBySource.Callback.Ratings != 1 ||
			g.CallbackReachRate == nil || *g.CallbackReachRate != 0.5 || g.SatisfactionRate == nil || *g.SatisfactionRate < 0.63 || *g.SatisfactionRate > 0.64 {
			t.Fatalf("figures of %s: %+v", sm.street, g)
		}
	}
	if !found {
		t.Fatalf("no figures for %s: %+v", sm.street, stats)
	}

	// A reissued link: the old one is dead.
	st, raw = s.DoRaw("POST", "/v1/cases/"+id+"/receipt", street, nil)
	mustStatus(t, "reissue", st, 200)
	var re receiptAnswer
	if err := json.Unmarshal(raw, &re); err != nil || re.Receipt == nil || re.Receipt.CaseNo != caseNo || re.Receipt.Link == "" || re.Receipt.Link == link {
		t.Fatalf("reissue: %s", raw)
	}
	mustStatus(t, "reissue by the lead", s.Do("POST", "/v1/cases/"+id+"/receipt", lead, nil, nil), 403)
	tokens = append(tokens, strings.TrimPrefix(re.Receipt.Link, "/r/"))
	if st, _, _ := open(t, s, "GET", link, "", nil); st != 404 {
		t.Fatalf("the old link: %d", st)
	}
	link = re.Receipt.Link
	if v := resident("the new link"); v.CaseNo != caseNo || v.Rating != "satisfied" || v.CanRate {
		t.Fatalf("the new link: %+v", v)
	}

	// The auditor's reads.
	for _, p := range []string{"/v1/cases/" + id + "/history", "/v1/log?after=0&limit=1000", "/v1/readmodels/snapshot", "/v1/cases"} {
		st, raw := s.DoRaw("GET", p, auditor, nil)
		mustStatus(t, p, st, 200)
		keep(p, raw)
	}
	noToken := func(what string, b []byte) {
		t.Helper()
		for _, tok := range tokens {
			if bytes.Contains(b, []byte(tok)) {
				t.Errorf("%s holds a receipt's token in clear", what)
			}
		}
	}
	for i, b := range answers {
		noToken("answer "+string(rune('0'+i%10)), b)
	}

	// The rate limit: a client hammering the open routes gets 429 with
	// Retry-After.
	limited := false
	for range 60 {
		st, hdr, _ := open(t, s, "GET", "/r/"+forged, "", nil)
		if st == 429 {
			if hdr.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
			limited = true
			break
		}
	}
	if !limited {
		t.Fatal("60 requests in a row were never limited")
	}

	s.Stop()
	grepDataFolder(t, s)
	walkData(t, s, func(path string, b []byte) {
		noToken(path, b)
		if bytes.Contains(b, []byte("还是有味道")) {
			t.Errorf("%s holds the resident's comment in clear", path)
		}
	})
	noToken("whistled's log", []byte(s.Logs()))
	mustNotHoldRequester(t, "whistled's log", []byte(s.Logs()))
	s.Restart()
	replay := exec.Command(buildWhistleCLI(t), "replay", "--quiet")
	replay.Env = append(os.Environ(), "WHISTLE_URL="+s.URL, "WHISTLE_TOKEN="+s.Token(auditor))
	out, err := replay.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "no differences") {
		t.Fatalf("whistle replay: %v\n%s", err, out)
	}
	var after receiptAnswer
	mustStatus(t, "after the restart", s.Do("GET", "/v1/cases/"+id, street, nil, &after), 200)
	if after.Receipt == nil || after.Receipt.CaseNo != caseNo || after.Callback == nil || after.Callback.Status != "reached" || !after.SecondRound {
		t.Fatalf("after the restart: %+v", after)
	}

	// Forgetting the requester takes the first round's comment with it.
	mustStatus(t, "forget", s.Do("POST", "/v1/cases/"+id+"/forget", street, map[string]string{"reason": "居民申请删除"}, nil), 200)
	var forgotten struct {
		ResidentRating *struct {
			Comment          string `json:"comment"`
			CommentForgotten bool   `json:"comment_forgotten"`
		} `json:"resident_rating"`
	}
	mustStatus(t, "after forget", s.Do("GET", "/v1/cases/"+id, street, nil, &forgotten), 200)
	if forgotten.ResidentRating == nil || forgotten.ResidentRating.Comment != "" || !forgotten.ResidentRating.CommentForgotten {
		t.Fatalf("after forget: %+v", forgotten.ResidentRating)
	}
}

// walkData hands every file under the data folder to check.
func walkData(t *testing.T, s *whistledtest.Server, check func(path string, b []byte)) {
	t.Helper()
	err := filepath.WalkDir(s.Data, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err == nil {
			check(path, b)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRetriesAndTicketsKeepTheirLink: a keyed raise retried, and a ticket
// sent again, each on the other of two whistled sharing one NATS, are
// answered with the case their first try made and with its link (which is
// stored only hashed); the platform that sent a ticket gets its receipt to
// pass on, and the link opens the resident's page.
func TestRetriesAndTicketsKeepTheirLink(t *testing.T) {
	natsURL := startExternalNATS(t)
	s1 := whistledtest.Start(t, "--nats", natsURL)
	shared := filepath.Join(t.TempDir(), "principals.json")
	raw, err := os.ReadFile(filepath.Join(s1.Data, "principals.json"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, shared, string(raw))
	s2 := whistledtest.Start(t, "--nats", natsURL, "--principals", shared)
	for k, v := range s1.Tokens {
		s2.Tokens[k] = v
	}
	sm := pickSample(t, s1)
	street := "street:" + sm.street
	body := raiseBody(sm.street, sm.community, sm.issue.ID, "routine")
	body["requester"] = map[string]string{"name": requesterName, "phone": requesterPhone}

	var first, retry receiptAnswer
	mustStatus(t, "keyed raise", s1.Do("POST", "/v1/whistles", street, body, &first, "Idempotency-Key", "desk-7-call-0042"), 201)
	mustStatus(t, "the same raise on the other instance", s2.Do("POST", "/v1/whistles", street, body, &retry, "Idempotency-Key", "desk-7-call-0042"), 201)
	if first.Receipt == nil || first.Receipt.Link == "" || retry.Receipt == nil || retry.CaseID != first.CaseID ||
		retry.Receipt.CaseNo != first.Receipt.CaseNo || retry.Receipt.Link != first.Receipt.Link {
		t.Fatalf("raise %+v, retried %+v", first.Receipt, retry.Receipt)
	}

	var sent, again, seen receiptAnswer
	mustStatus(t, "send", s1.Do("POST", "/v1/tickets", hotline, ticketBody("12345-0777", "井盖破损"), &sent), 201)
	mustStatus(t, "send again on the other instance", s2.Do("POST", "/v1/tickets", hotline, ticketBody("12345-0777", "井盖破损"), &again), 200)
	if sent.Receipt == nil || !strings.HasPrefix(sent.Receipt.Link, "/r/") || again.Receipt == nil ||
		again.CaseID != sent.CaseID || again.Receipt.Link != sent.Receipt.Link || again.Receipt.CaseNo != sent.Receipt.CaseNo {
		t.Fatalf("ticket %+v, sent again %+v", sent.Receipt, again.Receipt)
	}
	if sent.Receipt.Link == first.Receipt.Link {
		t.Fatal("a raise and a ticket share a link")
	}
	// A later read shows the number, never the link (it is not kept).
	mustStatus(t, "the street reads", s2.Do("GET", "/v1/cases/"+sent.CaseID, "street:longqiao", nil, &seen), 200)
	if seen.Receipt == nil || seen.Receipt.CaseNo != sent.Receipt.CaseNo || seen.Receipt.Link != "" {
		t.Fatalf("the street reads receipt %+v", seen.Receipt)
	}
	for _, link := range []string{first.Receipt.Link, sent.Receipt.Link} {
		st, _, page := open(t, s2, "GET", link+"?format=json", "", nil)
		var v residentJSON
		if st != 200 || json.Unmarshal(page, &v) != nil || v.CaseNo == "" {
			t.Fatalf("%s: %d %s", link, st, page)
		}
	}
}
