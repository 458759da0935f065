package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeServer answers the routes the CLI calls with fixed answers in the
// API's shapes, and records every request, so that a test can run the CLI
// in-process and say what reached the server.
type fakeServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []string // "METHOD /path?query"
	bodies   map[string]string
}

// A case as long as real ones get: an id, names, and a title with a
// terminal's escape sequences in it (an OSC that sets the window title, a
// colour, a C1 CSI and a bidi override).
const (
	fakeCaseID   = "01a2357f-bcae-7b60-90c1-a374997dbf06"
	hostileTitle = "Oil on the creek \x1b]0;pwned\x07\x1b[31mRED\x1b[0m \u009b2J \u202eevil and a title long enough to need cutting on any terminal"
)

var fakeDirectory = map[string]any{
	"version": "sample-1",
	"streets": []any{map[string]any{"id": "longqiao", "name": "龙桥街道", "communities": []any{
		map[string]any{"id": "wanhui", "name": "万辉社区", "units": []string{"putian-university"}}}},
		map[string]any{"id": "zhenhai", "name": "镇海街道", "communities": []any{
			map[string]any{"id": "zhenhai", "name": "镇海社区", "units": []string{}}}}},
	"departments": []any{map[string]any{"id": "ecology-bureau", "name": "生态环境局"},
		map[string]any{"id": "urban-management-bureau", "name": "城管局"}},
	"units":      []any{map[string]any{"id": "putian-university", "name": "莆田学院"}},
	"categories": []any{map[string]any{"id": "river-pollution", "name": "河道污染", "kind": "issue", "lead": "ecology-bureau"}},
}

func fakeAssignment(assignee, role string) map[string]any {
	due := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	return map[string]any{"assignee": assignee, "role": role, "status": "assigned", "report_by": due,
		"resolve_by": due.Add(72 * time.Hour), "reported_at": nil, "resolved_at": nil, "overdue": true}
}

func fakeCase() map[string]any {
	return map[string]any{"case_id": fakeCaseID, "street": "longqiao", "community": "wanhui", "category": "river-pollution",
		"kind": "issue", "urgency": "urgent", "title": hostileTitle, "status": "routed", "version": 3,
		"raised_at": "2026-12-02T09:30:00Z", "closed_at": nil, "mediation": nil, "rating": nil,
		"assignments": []any{fakeAssignment("ecology-bureau", "lead"), fakeAssignment("urban-management-bureau", "assist")}}
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	f := &fakeServer{bodies: map[string]string{}}
	mux := http.NewServeMux()
	answer := func(v any) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(v)
		}
	}
	withPosition := fakeCase()
	withPosition["position"] = 42
	mux.HandleFunc("GET /v1/directory", answer(fakeDirectory))
	mux.HandleFunc("POST /v1/whistles", answer(withPosition))
	mux.HandleFunc("POST /v1/cases/{id}/{action}", answer(withPosition))
	mux.HandleFunc("GET /v1/cases/{id}", answer(fakeCase()))
	mux.HandleFunc("GET /v1/cases/{id}/history", answer(map[string]any{"events": []any{}, "chain_whole": true}))
	mux.HandleFunc("GET /v1/cases", func(w http.ResponseWriter, r *http.Request) {
		c := fakeCase()
		delete(c, "mediation")
		delete(c, "rating")
		page := map[string]any{"cases": []any{c}, "next": nil}
		if r.URL.Query().Get("cursor") == "" && r.URL.Query().Get("limit") == "1" {
			page["next"] = "page-2"
		}
		answer(page)(w, r)
	})
	mux.HandleFunc("GET /v1/queues/{assignee}", func(w http.ResponseWriter, r *http.Request) {
		item := map[string]any{"case_id": fakeCaseID, "assignee": r.PathValue("assignee"), "role": "lead", "status": "assigned",
			"report_by": "2026-12-02T10:00:00Z", "resolve_by": "2026-12-05T10:00:00Z", "reported_at": nil, "overdue": true,
			"street": "longqiao", "community": "wanhui", "category": "river-pollution", "kind": "issue", "urgency": "urgent",
			"title": hostileTitle, "case_status": "routed", "version": 3}
		if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
			w.Header().Set("Content-Type", "text/event-stream")
			data, _ := json.Marshal(item)
			change, _ := json.Marshal(map[string]any{"change": "reported", "case_id": fakeCaseID, "occurred_at": "2026-12-02T09:40:00Z",
				"category": "river-pollution", "urgency": "urgent", "title": hostileTitle,
				"assignment": map[string]any{"assignee": "ecology-bureau", "role": "lead", "status": "reported"}})
			w.Write([]byte(": heartbeat\n\nevent: assignment\ndata: " + string(data) + "\n\nevent: synced\nid: 7\ndata: {\"sequence\":7,\"open\":1}\n\n" +
				"event: change\nid: 8\ndata: " + string(change) + "\n\n"))
			return
		}
		answer(map[string]any{"assignee": r.PathValue("assignee"), "assignments": []any{item}, "position": 9})(w, r)
	})
	mux.HandleFunc("GET /v1/stats", func(w http.ResponseWriter, r *http.Request) {
		groupBy := r.URL.Query().Get("group_by")
		if groupBy == "" {
			groupBy = "street"
		}
		rate, secs := 0.875, 1234.0
		group := func(key string) map[string]any {
			return map[string]any{"key": key, "raised": 8, "closed": 7, "closed_on_time": 6, "closure_rate": rate, "on_time_closure_rate": rate,
				"assignments": 9, "reported_on_time": 8, "response_rate": rate, "disputes_resolved": 1, "disputes_success": 1,
				"mediation_success_rate": 1.0, "ratings": 7, "satisfaction_rate": rate, "median_report_seconds": secs,
				"p90_report_seconds": secs, "median_close_seconds": secs, "p90_close_seconds": secs, "overdue": 1, "escalations": 2}
		}
		answer(map[string]any{"group_by": groupBy, "from": nil, "to": nil, "groups": []any{group("longqiao"), group("zhenhai")}})(w, r)
	})
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body bytes.Buffer
		_, _ = body.ReadFrom(r.Body)
		f.mu.Lock()
		line := r.Method + " " + r.URL.RequestURI()
		f.requests = append(f.requests, line)
		f.bodies[line] = body.String()
		f.mu.Unlock()
		r.Body = http.NoBody
		if r.Header.Get("Authorization") != "Bearer test-token" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":{"code":"unauthorized","message":"unknown token"}}`))
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// reached lists the requests other than the directory's (which tables read
// for names).
func (f *fakeServer) reached() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.requests {
		if r != "GET /v1/directory" {
			out = append(out, r)
		}
	}
	return out
}

func (f *fakeServer) body(request string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bodies[request]
}

// result is one in-process run of the CLI.
type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs whistle with args against url, with the environment env adds
// to (COLUMNS, say).
func runCLI(t *testing.T, url string, env map[string]string, args ...string) result {
	t.Helper()
	return runCLIFor(t, 30*time.Second, url, env, args...)
}

// runCLIFor runs whistle until it ends or d has passed (then its context
// is cancelled, as Ctrl-C does), for a command that follows a stream.
func runCLIFor(t *testing.T, d time.Duration, url string, env map[string]string, args ...string) result {
	t.Helper()
	vars := map[string]string{"WHISTLE_URL": url, "WHISTLE_TOKEN": "test-token"}
	for k, v := range env {
		vars[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, func(k string) string { return vars[k] }, &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}
