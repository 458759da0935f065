package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/whistle-gov/whistle/cmd/whistled/whistledtest"
)

// apiChecker sends requests to a running whistled and checks each answer
// (status, headers, body) against the OpenAPI document it serves.
type apiChecker struct {
	t   *testing.T
	s   *whistledtest.Server
	v   validator.Validator
	ops map[string]bool // "METHOD path" checked, for the count
}

func newAPIChecker(t *testing.T, s *whistledtest.Server) *apiChecker {
	resp, err := http.Get(s.URL + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /v1/openapi.json without a token: %d", resp.StatusCode)
	}
	doc, err := libopenapi.NewDocument(raw)
	if err != nil {
		t.Fatal(err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return &apiChecker{t: t, s: s, v: v, ops: map[string]bool{}}
}

// do sends the request, checks request and answer against the document,
// checks the status is want, and returns the body.
func (c *apiChecker) do(method, path, principal string, body any, want int, headers ...string) []byte {
	c.t.Helper()
	var raw []byte
	if body != nil {
		raw, _ = json.Marshal(body)
	}
	req, err := http.NewRequest(method, c.s.URL+path, bytes.NewReader(raw))
	if err != nil {
		c.t.Fatal(err)
	}
	if principal != "" {
		req.Header.Set("Authorization", "Bearer "+c.s.Token(principal))
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		c.t.Errorf("%s %s: %d %s, want %d", method, path, resp.StatusCode, got, want)
	}
	// The validator reads both bodies: give it fresh readers.
	check := req.Clone(req.Context())
	check.Body = io.NopCloser(bytes.NewReader(raw))
	resp.Body = io.NopCloser(bytes.NewReader(got))
	// A request meant to be refused is not valid: only its answer is checked.
	validate := c.v.ValidateHttpRequestResponse
	if want >= 400 {
		validate = c.v.ValidateHttpResponse
	}
	if ok, errs := validate(check, resp); !ok {
		for _, e := range errs {
			detail := ""
			for _, s := range e.SchemaValidationErrors {
				detail += "; " + s.FieldPath + ": " + s.Reason
			}
			c.t.Errorf("%s %s (%d): %s: %s%s\n%s", method, path, resp.StatusCode, e.Message, e.Reason, detail, clipBody(got))
		}
	}
	c.ops[method+" "+strings.SplitN(path, "?", 2)[0]] = true
	return got
}

func clipBody(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "…"
	}
	return string(b)
}

// TestRealAnswersMatchTheOpenAPIDocument drives whistled through a case's
// whole life, its reads and its refusals, and validates every request and
// answer against the document GET /v1/openapi.json serves.
func TestRealAnswersMatchTheOpenAPIDocument(t *testing.T) {
	s := whistledtest.Start(t)
	c := newAPIChecker(t, s)
	const street, lead, assist, auditor = "street:longqiao", "department:ecology-bureau", "department:water-bureau", "auditor:auditor"

	c.do("GET", "/healthz", "", nil, 200)
	c.do("GET", "/readyz", "", nil, 200)
	c.do("GET", "/v1/me", street, nil, 200)
	c.do("GET", "/v1/directory", street, nil, 200)
	var raised struct {
		CaseID string `json:"case_id"`
	}
	if err := json.Unmarshal(c.do("POST", "/v1/whistles", street, raiseBody("longqiao", "wanhui", "river-pollution", "urgent"), 201,
		"Idempotency-Key", "openapi-1"), &raised); err != nil {
		t.Fatal(err)
	}
	id := raised.CaseID
	c.do("POST", "/v1/whistles", street, map[string]any{"street": "longqiao"}, 422)
	c.do("POST", "/v1/whistles", street, map[string]any{"Street": "longqiao"}, 400)
	c.do("POST", "/v1/whistles", "", raiseBody("longqiao", "wanhui", "river-pollution", "urgent"), 401)
	c.do("GET", "/v1/cases/"+id, street, nil, 200)
	c.do("GET", "/v1/cases/"+id, "department:judicial-office", nil, 403)
	c.do("GET", "/v1/cases/00000000-0000-7000-8000-000000000000", street, nil, 404)
	c.do("POST", "/v1/cases/"+id+"/resolve", lead, map[string]any{"note": "too early"}, 409)
	c.do("POST", "/v1/cases/"+id+"/report", lead, map[string]any{"note": "on site"}, 200)
	c.do("POST", "/v1/cases/"+id+"/report", assist, nil, 200)
	c.do("POST", "/v1/cases/"+id+"/progress", lead, map[string]any{"note": "sampling"}, 200)
	c.do("POST", "/v1/cases/"+id+"/resolve", assist, map[string]any{"note": "sluice closed"}, 200)
	c.do("POST", "/v1/cases/"+id+"/resolve", lead, map[string]any{"note": "cleaned", "evidence": []string{strings.Repeat("a", 64)}}, 422)
	c.do("POST", "/v1/cases/"+id+"/resolve", lead, map[string]any{"note": "cleaned"}, 200)
	c.do("POST", "/v1/cases/"+id+"/verify", street, map[string]any{"accepted": false, "note": "still smells"}, 200)
	c.do("POST", "/v1/cases/"+id+"/resolve", lead, map[string]any{"note": "cleaned again"}, 200)
	c.do("POST", "/v1/cases/"+id+"/verify", street, map[string]any{"accepted": true}, 200)
	c.do("POST", "/v1/cases/"+id+"/rate", street, map[string]any{"rating": "satisfied"}, 200)
	c.do("POST", "/v1/cases/"+id+"/rate", street, map[string]any{"rating": "satisfied"}, 409)

	var dispute struct {
		CaseID string `json:"case_id"`
	}
	json.Unmarshal(c.do("POST", "/v1/whistles", street, raiseBody("longqiao", "wanhui", "neighbour-dispute", "routine"), 201), &dispute)
	c.do("POST", "/v1/cases/"+dispute.CaseID+"/decline", "department:judicial-office", map[string]any{"reason": "not ours", "suggest": "ecology-bureau"}, 200)
	c.do("POST", "/v1/cases/"+dispute.CaseID+"/route", street, map[string]any{"lead": "judicial-office"}, 200)
	c.do("POST", "/v1/cases/"+dispute.CaseID+"/forget", street, map[string]any{"reason": "asked"}, 409)

	c.do("GET", "/v1/cases/"+id+"/history", auditor, nil, 200)
	c.do("GET", "/v1/cases/"+id+"/history?limit=2&after=1", street, nil, 200)
	c.do("GET", "/v1/cases?position=1", street, nil, 200)
	c.do("GET", "/v1/cases?status=closed&limit=1", auditor, nil, 200)
	c.do("GET", "/v1/cases?limit=x", street, nil, 422)
	c.do("GET", "/v1/stats?group_by=street", auditor, nil, 200)
	c.do("GET", "/v1/stats?group_by=category", street, nil, 200)
	c.do("GET", "/v1/stats?group_by=assignee", lead, nil, 200)
	c.do("GET", "/v1/stats?group_by=assignee", street, nil, 403)
	c.do("GET", "/v1/log?limit=5", auditor, nil, 200)
	c.do("GET", "/v1/log", street, nil, 403)
	c.do("GET", "/v1/queues/ecology-bureau", lead, nil, 200)
	c.do("GET", "/v1/queues/ecology-bureau", assist, nil, 403)
	c.do("GET", "/v1/readmodels/snapshot", auditor, nil, 200)
	c.do("GET", "/metrics", "", nil, 200)
	c.do("GET", "/", "", nil, 200)
	if len(c.ops) < 20 {
		t.Errorf("checked %d operations, want at least 20: %v", len(c.ops), c.ops)
	}
}
