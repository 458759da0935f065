package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/whistle-gov/whistle/cmd/whistled/whistledtest"
	"github.com/whistle-gov/whistle/domain"
)

type assignment struct {
	Assignee string `json:"assignee"`
	Role     string `json:"role"`
	Status   string `json:"status"`
	ReportBy string `json:"report_by"`
}

type caseView struct {
	CaseID      string       `json:"case_id"`
	Street      string       `json:"street"`
	Kind        string       `json:"kind"`
	Status      string       `json:"status"`
	Version     int          `json:"version"`
	Assignments []assignment `json:"assignments"`
	Mediation   *string      `json:"mediation"`
	Rating      *string      `json:"rating"`
	ClosedAt    *string      `json:"closed_at"`
}

type history struct {
	Events []struct {
		Type          string `json:"type"`
		Version       int    `json:"version"`
		CorrelationID string `json:"correlation_id"`
		Hash          string `json:"hash"`
	} `json:"events"`
	ChainWhole bool `json:"chain_whole"`
}

type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
}

func raiseBody(street, community, category, urgency string) map[string]any {
	return map[string]any{"street": street, "community": community, "category": category, "urgency": urgency,
		"title": "河道有异味 smell from the creek", "description": "reported by a grid worker",
		"location": map[string]any{"address": "延寿溪 下游", "lat": 25.43, "lon": 119.0}}
}

// sample picks a street, a community with at least two units, and one
// category of each kind from the directory the server runs with.
type sample struct {
	street, community    string
	issue, dispute, need domain.Category
	units                []string
}

func pickSample(t *testing.T, s *whistledtest.Server) sample {
	t.Helper()
	var dir domain.Directory
	if st := s.Do("GET", "/v1/directory", "auditor:auditor", nil, &dir); st != 200 {
		t.Fatalf("GET /v1/directory: %d", st)
	}
	var out sample
	for _, st := range dir.Streets {
		for _, c := range st.Communities {
			if len(c.Units) >= 2 && out.street == "" {
				out.street, out.community, out.units = st.ID, c.ID, c.Units
			}
		}
	}
	for _, c := range dir.Categories {
		switch {
		case c.Kind == domain.KindIssue && out.issue.ID == "" && len(c.Assist) > 0:
			out.issue = c
		case c.Kind == domain.KindDispute && out.dispute.ID == "":
			out.dispute = c
		case c.Kind == domain.KindNeed && out.need.ID == "":
			out.need = c
		}
	}
	if out.street == "" || out.issue.ID == "" || out.dispute.ID == "" || out.need.ID == "" {
		t.Fatalf("sample directory lacks a community with two units or a category of each kind: %+v", out)
	}
	return out
}

func principalOf(s *whistledtest.Server, assignee string) string {
	if _, ok := s.Tokens["department:"+assignee]; ok {
		return "department:" + assignee
	}
	return "unit:" + assignee
}

func mustStatus(t *testing.T, what string, got, want int) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: status %d, want %d", what, got, want)
	}
}

func TestWalkIssueDisputeAndNeedToClosure(t *testing.T) {
	s := whistledtest.Start(t)
	sm := pickSample(t, s)
	street := "street:" + sm.street

	// An issue: lead and assist report in and resolve; the street verifies; a rating follows.
	var c caseView
	mustStatus(t, "raise issue", s.Do("POST", "/v1/whistles", street, raiseBody(sm.street, sm.community, sm.issue.ID, "urgent"), &c), 201)
	if c.Status != "routed" || len(c.Assignments) != 1+len(sm.issue.Assist) || c.Assignments[0].Role != "lead" || c.Assignments[0].Assignee != sm.issue.Lead {
		t.Fatalf("raised issue: %+v", c)
	}
	lead := principalOf(s, sm.issue.Lead)
	assist := principalOf(s, sm.issue.Assist[0])
	id := c.CaseID
	mustStatus(t, "lead reports", s.Do("POST", "/v1/cases/"+id+"/report", lead, nil, &c), 200)
	if c.Status != "in_progress" {
		t.Fatalf("after report: %s", c.Status)
	}
	mustStatus(t, "assist reports", s.Do("POST", "/v1/cases/"+id+"/report", assist, map[string]string{"note": "on site"}, nil), 200)
	mustStatus(t, "assist progress", s.Do("POST", "/v1/cases/"+id+"/progress", assist, map[string]string{"note": "sampling water"}, nil), 200)
	mustStatus(t, "lead resolves", s.Do("POST", "/v1/cases/"+id+"/resolve", lead, map[string]string{"note": "outfall sealed"}, &c), 200)
	if c.Status != "resolved" {
		t.Fatalf("after the lead resolved: %s", c.Status)
	}
	mustStatus(t, "verify", s.Do("POST", "/v1/cases/"+id+"/verify", street, map[string]any{"accepted": true}, &c), 200)
	if c.Status != "closed" || c.ClosedAt == nil {
		t.Fatalf("after verify: %+v", c)
	}
	mustStatus(t, "rate", s.Do("POST", "/v1/cases/"+id+"/rate", street, map[string]string{"rating": "satisfied"}, &c), 200)
	mustStatus(t, "rate twice", s.Do("POST", "/v1/cases/"+id+"/rate", street, map[string]string{"rating": "unsatisfied"}, nil), 409)
	var h history
	mustStatus(t, "history", s.Do("GET", "/v1/cases/"+id+"/history", "auditor:auditor", nil, &h), 200)
	if !h.ChainWhole || len(h.Events) != c.Version {
		t.Fatalf("history: whole=%v events=%d version=%d", h.ChainWhole, len(h.Events), c.Version)
	}
	wantTypes := []string{"WhistleRaised", "AssignmentMade"}
	for i, w := range wantTypes {
		if h.Events[i].Type != w {
			t.Fatalf("event %d is %s, want %s", i, h.Events[i].Type, w)
		}
	}
	if last := h.Events[len(h.Events)-1].Type; last != "SatisfactionRated" {
		t.Fatalf("last event %s", last)
	}

	// A dispute: mediation is required; a rejected resolution is resolved again without reporting in again.
	mustStatus(t, "raise dispute", s.Do("POST", "/v1/whistles", street, raiseBody(sm.street, sm.community, sm.dispute.ID, "routine"), &c), 201)
	id, mediator := c.CaseID, principalOf(s, sm.dispute.Lead)
	mustStatus(t, "mediator reports", s.Do("POST", "/v1/cases/"+id+"/report", mediator, nil, nil), 200)
	var e apiError
	mustStatus(t, "resolve without mediation", s.Do("POST", "/v1/cases/"+id+"/resolve", mediator, map[string]string{"note": "talked"}, &e), 422)
	if e.Error.Field != "mediation" {
		t.Fatalf("422 names field %q, want mediation", e.Error.Field)
	}
	mustStatus(t, "resolve failure", s.Do("POST", "/v1/cases/"+id+"/resolve", mediator, map[string]string{"mediation": "failure"}, nil), 200)
	mustStatus(t, "reject", s.Do("POST", "/v1/cases/"+id+"/verify", street, map[string]any{"accepted": false, "note": "neighbours still arguing"}, &c), 200)
	if c.Status != "in_progress" || c.Assignments[0].Status != "reported" {
		t.Fatalf("after reject: %+v", c)
	}
	mustStatus(t, "resolve success", s.Do("POST", "/v1/cases/"+id+"/resolve", mediator, map[string]string{"mediation": "success"}, nil), 200)
	mustStatus(t, "verify dispute", s.Do("POST", "/v1/cases/"+id+"/verify", street, map[string]any{"accepted": true}, &c), 200)
	if c.Status != "closed" || c.Mediation == nil || *c.Mediation != "success" {
		t.Fatalf("closed dispute: %+v", c)
	}

	// A need: offered to every unit of the community; of concurrent claims exactly one wins.
	mustStatus(t, "raise need", s.Do("POST", "/v1/whistles", street, raiseBody(sm.street, sm.community, sm.need.ID, "routine"), &c), 201)
	id = c.CaseID
	if len(c.Assignments) != len(sm.units) {
		t.Fatalf("need offered to %d units, community has %d", len(c.Assignments), len(sm.units))
	}
	var wins atomic.Int32
	var winner atomic.Value
	var wg sync.WaitGroup
	for _, u := range sm.units {
		wg.Add(1)
		go func(u string) {
			defer wg.Done()
			switch st := s.Do("POST", "/v1/cases/"+id+"/claim", "unit:"+u, nil, nil); st {
			case 200:
				wins.Add(1)
				winner.Store(u)
			case 409:
			default:
				t.Errorf("claim by %s: %d", u, st)
			}
		}(u)
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d claims won, want exactly 1", wins.Load())
	}
	claimant := "unit:" + winner.Load().(string)
	mustStatus(t, "get need", s.Do("GET", "/v1/cases/"+id, claimant, nil, &c), 200)
	for _, a := range c.Assignments {
		want := "lapsed"
		if "unit:"+a.Assignee == claimant {
			want = "reported"
		}
		if a.Status != want {
			t.Fatalf("after claim, %s is %s, want %s", a.Assignee, a.Status, want)
		}
	}
	mustStatus(t, "claimant resolves", s.Do("POST", "/v1/cases/"+id+"/resolve", claimant, nil, nil), 200)
	mustStatus(t, "verify need", s.Do("POST", "/v1/cases/"+id+"/verify", street, map[string]any{"accepted": true}, &c), 200)
	if c.Status != "closed" {
		t.Fatalf("need not closed: %s", c.Status)
	}
}

func TestRefusalsAnswerAsDesignedAndAppendNothing(t *testing.T) {
	s := whistledtest.Start(t)
	sm := pickSample(t, s)
	street := "street:" + sm.street
	var c caseView
	mustStatus(t, "raise", s.Do("POST", "/v1/whistles", street, raiseBody(sm.street, sm.community, sm.issue.ID, "routine"), &c), 201)
	id := c.CaseID
	lead := principalOf(s, sm.issue.Lead)
	var other string
	for k := range s.Tokens {
		if strings.HasPrefix(k, "street:") && k != street {
			other = k
		}
	}
	big := `{"street":"` + strings.Repeat("x", 70<<10) + `"}`
	cases := []struct {
		name, method, path, principal string
		body                          any
		status                        int
		field                         string
	}{
		{"no token", "POST", "/v1/whistles", "", raiseBody(sm.street, sm.community, sm.issue.ID, "routine"), 401, ""},
		{"another street's whistle", "POST", "/v1/whistles", other, raiseBody(sm.street, sm.community, sm.issue.ID, "routine"), 403, "street"},
		{"auditor writes", "POST", "/v1/cases/" + id + "/verify", "auditor:auditor", map[string]any{"accepted": true}, 403, ""},
		{"other street verifies", "POST", "/v1/cases/" + id + "/verify", other, map[string]any{"accepted": true}, 403, ""},
		{"unassigned department", "POST", "/v1/cases/" + id + "/report", principalOf(s, sm.dispute.Lead), nil, 403, ""},
		{"unknown field", "POST", "/v1/cases/" + id + "/report", lead, map[string]any{"note": "x", "urgency": "high"}, 400, "urgency"},
		{"malformed JSON", "POST", "/v1/whistles", street, `{"street": `, 400, ""},
		{"wrong type", "POST", "/v1/whistles", street, `{"street": 7}`, 400, "street"},
		{"body over 64 KiB", "POST", "/v1/whistles", street, big, 413, ""},
		{"unknown category", "POST", "/v1/whistles", street, raiseBody(sm.street, sm.community, "no-such-category", "routine"), 422, "category"},
		{"unknown urgency", "POST", "/v1/whistles", street, raiseBody(sm.street, sm.community, sm.issue.ID, "whenever"), 422, "urgency"},
		{"missing title", "POST", "/v1/whistles", street, map[string]any{"street": sm.street, "community": sm.community, "category": sm.issue.ID, "urgency": "routine"}, 422, "title"},
		{"resolve before report", "POST", "/v1/cases/" + id + "/resolve", lead, nil, 409, ""},
		{"mediation on an issue", "POST", "/v1/cases/" + id + "/resolve", lead, map[string]string{"mediation": "success"}, 422, "mediation"},
		{"verify unresolved", "POST", "/v1/cases/" + id + "/verify", street, map[string]any{"accepted": true}, 409, ""},
		{"rate open case", "POST", "/v1/cases/" + id + "/rate", street, map[string]any{"rating": "satisfied"}, 409, ""},
		{"decline without reason", "POST", "/v1/cases/" + id + "/decline", lead, map[string]any{"reason": ""}, 422, "reason"},
		{"route to nobody known", "POST", "/v1/cases/" + id + "/route", street, map[string]any{"lead": "no-such-bureau"}, 422, "lead"},
		{"unknown case", "GET", "/v1/cases/0190c1f4-7b2a-7c3e-9d6f-2a1b3c4d5e6f", "auditor:auditor", nil, 404, ""},
		{"not a case id", "GET", "/v1/cases/nope", "auditor:auditor", nil, 404, ""},
		{"other street reads", "GET", "/v1/cases/" + id, other, nil, 403, ""},
		{"unknown command", "POST", "/v1/cases/" + id + "/explode", street, nil, 404, ""},
	}
	for _, tc := range cases {
		var e apiError
		st := s.Do(tc.method, tc.path, tc.principal, tc.body, &e)
		if st != tc.status {
			t.Errorf("%s: status %d, want %d (%+v)", tc.name, st, tc.status, e)
			continue
		}
		if e.Error.Code == "" || e.Error.Message == "" {
			t.Errorf("%s: error shape missing code or message: %+v", tc.name, e)
		}
		if e.Error.Field != tc.field {
			t.Errorf("%s: field %q, want %q (%s)", tc.name, e.Error.Field, tc.field, e.Error.Message)
		}
	}
	var h history
	mustStatus(t, "history", s.Do("GET", "/v1/cases/"+id+"/history", "auditor:auditor", nil, &h), 200)
	if len(h.Events) != c.Version {
		t.Fatalf("refusals appended events: history has %d, raise left %d", len(h.Events), c.Version)
	}

	// Idempotency-Key: a retry answers the first case; the same key with another body is refused.
	body := raiseBody(sm.street, sm.community, sm.issue.ID, "routine")
	var first, again caseView
	mustStatus(t, "keyed raise", s.Do("POST", "/v1/whistles", street, body, &first, "Idempotency-Key", "grid-42-0001"), 201)
	mustStatus(t, "keyed retry", s.Do("POST", "/v1/whistles", street, body, &again, "Idempotency-Key", "grid-42-0001"), 201)
	if first.CaseID != again.CaseID || again.Version != first.Version {
		t.Fatalf("retry answered %s v%d, first %s v%d", again.CaseID, again.Version, first.CaseID, first.Version)
	}
	body["title"] = "another problem"
	var e apiError
	mustStatus(t, "same key, other body", s.Do("POST", "/v1/whistles", street, body, &e, "Idempotency-Key", "grid-42-0001"), 409)
	// The key is scoped to the principal: another street's same key raises another case.
	var dir domain.Directory
	s.Do("GET", "/v1/directory", other, nil, &dir)
	otherID := strings.TrimPrefix(other, "street:")
	otherStreet, _ := findStreet(dir, otherID)
	var theirs caseView
	mustStatus(t, "same key, other street", s.Do("POST", "/v1/whistles", other,
		raiseBody(otherID, otherStreet.Communities[0].ID, sm.issue.ID, "routine"), &theirs, "Idempotency-Key", "grid-42-0001"), 201)
	if theirs.CaseID == first.CaseID {
		t.Fatal("an Idempotency-Key is shared between principals")
	}
}

func findStreet(dir domain.Directory, id string) (domain.Street, bool) {
	for _, st := range dir.Streets {
		if st.ID == id {
			return st, true
		}
	}
	return domain.Street{}, false
}

func TestRestartKeepsEverythingAcknowledged(t *testing.T) {
	s := whistledtest.Start(t)
	sm := pickSample(t, s)
	street := "street:" + sm.street

	// A load of concurrent whistles, cut by SIGKILL in the middle.
	var mu sync.Mutex
	acked := map[string]int{} // case id → version acknowledged
	stop := raiseLoad(s, 8, 10*time.Second, street, raiseBody(sm.street, sm.community, sm.issue.ID, "routine"), true,
		func(st int, id string, version int) {
			if st == 201 {
				mu.Lock()
				acked[id] = version
				mu.Unlock()
			}
		})
	time.Sleep(1500 * time.Millisecond)
	s.Kill()
	stop()
	if len(acked) == 0 {
		t.Fatal("no whistle was acknowledged before the kill")
	}
	s.Restart()
	for id, version := range acked {
		var h history
		mustStatus(t, "history after SIGKILL", s.Do("GET", "/v1/cases/"+id+"/history", "auditor:auditor", nil, &h), 200)
		if len(h.Events) != version || !h.ChainWhole {
			t.Fatalf("case %s after SIGKILL: %d events (whole %v), %d acknowledged", id, len(h.Events), h.ChainWhole, version)
		}
	}
	t.Logf("%d whistles acknowledged before SIGKILL, all found after restart", len(acked))

	// A clean SIGTERM, then the case's next step still works.
	var some string
	for id := range acked {
		some = id
		break
	}
	s.Stop()
	s.Restart()
	mustStatus(t, "report after restart", s.Do("POST", "/v1/cases/"+some+"/report", principalOf(s, sm.issue.Lead), nil, nil), 200)
	if st := s.Do("GET", "/readyz", "", nil, nil); st != 200 {
		t.Fatalf("readyz after restart: %d", st)
	}
}

// raiseLoad keeps workers raising whistles of body as principal, each with
// its own client and timeout, until the returned stop is called, which waits
// for them; with untilDown a worker also ends when a request fails (the
// server is gone). answer is told every outcome from the worker's goroutine
// (status 0: the request failed) and may sleep to back off.
func raiseLoad(s *whistledtest.Server, workers int, timeout time.Duration, principal string, body map[string]any, untilDown bool, answer func(status int, id string, version int)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: timeout}
			for {
				select {
				case <-done:
					return
				default:
				}
				st, id, version := raiseRaw(client, s, principal, body)
				answer(st, id, version)
				if st == 0 && untilDown {
					return
				}
			}
		}()
	}
	return func() {
		close(done)
		wg.Wait()
	}
}

// raiseRaw raises a whistle without failing the test on a transport error,
// which a SIGKILL makes expected. Status 0 means the request failed.
func raiseRaw(client *http.Client, s *whistledtest.Server, principal string, body map[string]any) (int, string, int) {
	req, err := newJSONRequest("POST", s.URL+"/v1/whistles", body)
	if err != nil {
		return 0, "", 0
	}
	req.Header.Set("Authorization", "Bearer "+s.Token(principal))
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", 0
	}
	defer resp.Body.Close()
	var c caseView
	if err := decodeJSON(resp.Body, &c); err != nil {
		return 0, "", 0
	}
	return resp.StatusCode, c.CaseID, c.Version
}

func TestBadDirectoryStopsStartUp(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/directory.json"
	writeFile(t, path, `{"version": "x", "streets": [{"id": "s", "name": "S", "communities": [{"id": "c", "name": "C", "units": ["nobody"]}]}]}`)
	out, err := runWhistled(t, "--data", dir, "--addr", "127.0.0.1:0", "--directory", path)
	if err == nil {
		t.Fatal("whistled started with a bad directory")
	}
	for _, want := range []string{path, "$.streets[0].communities[0].units[0]", "nobody"} {
		if !strings.Contains(out, want) {
			t.Errorf("start-up error %q does not name %q", out, want)
		}
	}
}

func newJSONRequest(method, url string, body any) (*http.Request, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}

func decodeJSON(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// runWhistled runs the binary to its end (for start-up failures) and returns
// what it printed.
func runWhistled(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(whistledtest.Binary(t), args...)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("whistled %v did not exit: %s", args, out)
	}
	return string(out), err
}
