package httpclient_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/whistle-gov/whistle/adapters/httpclient"
	"github.com/whistle-gov/whistle/adapters/sse"
)

func newClient(t *testing.T, h http.HandlerFunc) *httpclient.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := httpclient.New(srv.URL, "tok")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// An answer other than 2xx is an *Error with the API's code, message and
// field, matching its status's sentinel; a body of another shape still
// gives the status.
func TestErrorsAreDecoded(t *testing.T) {
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/whistles":
			w.WriteHeader(http.StatusUnprocessableEntity)
			fmt.Fprint(w, `{"error":{"code":"invalid_value","message":"title is required","field":"title"}}`)
		case "/v1/stats":
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `<html>busy</html>`)
		default:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":{"code":"not_found","message":"no case x"}}`)
		}
	})
	ctx := context.Background()
	_, err := c.Raise(ctx, httpclient.RaiseRequest{Street: "longqiao"}, "")
	var e *httpclient.Error
	if !errors.As(err, &e) || e.Status != 422 || e.Code != "invalid_value" || e.Field != "title" || e.Message != "title is required" ||
		e.Method != "POST" || e.Path != "/v1/whistles" {
		t.Fatalf("raise: %#v", err)
	}
	if !errors.Is(err, httpclient.ErrInvalid) || errors.Is(err, httpclient.ErrNotFound) {
		t.Errorf("raise: errors.Is does not match 422 alone: %v", err)
	}
	if err.Error() != "422 invalid_value: title is required (field title)" {
		t.Errorf("raise: %q", err.Error())
	}
	_, err = c.Case(ctx, "x", time.Time{})
	if !errors.Is(err, httpclient.ErrNotFound) || err.Error() != "404 not_found: no case x" {
		t.Errorf("case: %v", err)
	}
	_, err = c.Stats(ctx, httpclient.StatsQuery{})
	if !errors.As(err, &e) || !errors.Is(err, httpclient.ErrUnavailable) || e.RetryAfter != 3*time.Second || e.Code != "" ||
		err.Error() != "503: Service Unavailable" {
		t.Errorf("stats: %v", err)
	}
}

func TestNewAndNoToken(t *testing.T) {
	for _, u := range []string{"ftp://x", "127.0.0.1:8080", "http://"} {
		if _, err := httpclient.New(u, "t"); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
	c, err := httpclient.New("", "")
	if err != nil || c.URL() != httpclient.DefaultURL {
		t.Fatalf("New default: %v %v", c, err)
	}
	if _, err := c.Directory(context.Background()); !errors.Is(err, httpclient.ErrNoToken) {
		t.Errorf("no token: %v", err)
	}
}

// Requests carry the token, the idempotency key, the language; the query
// holds only what was set.
func TestRequests(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("Authorization")+" "+r.Header.Get("Idempotency-Key")+" "+r.Header.Get("Accept-Language"))
		mu.Unlock()
		switch {
		case strings.HasPrefix(r.URL.Path, "/v1/cases") && r.URL.Query().Get("cursor") == "":
			fmt.Fprint(w, `{"cases":[{"case_id":"a"}],"next":"c2"}`)
		case strings.HasPrefix(r.URL.Path, "/v1/cases"):
			fmt.Fprint(w, `{"cases":[{"case_id":"b"}],"next":null}`)
		default:
			fmt.Fprint(w, `{}`)
		}
	}))
	defer srv.Close()
	c, err := httpclient.New(srv.URL+"/", "tok", httpclient.WithLanguage("en"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Report(ctx, "a b", httpclient.NoteBody{}, "key-1"); err != nil {
		t.Fatal(err)
	}
	var ids []string
	err = c.EachCasePage(ctx, httpclient.CaseFilter{Status: "closed", Limit: 1}, func(p *httpclient.CasePage) error {
		for _, cs := range p.Cases {
			ids = append(ids, cs.CaseID)
		}
		return nil
	})
	if err != nil || strings.Join(ids, ",") != "a,b" {
		t.Fatalf("EachCasePage: %v %v", ids, err)
	}
	if _, err := c.Stats(ctx, httpclient.StatsQuery{GroupBy: "day", From: "2026-11-01", Position: 7}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"POST /v1/cases/a%20b/report Bearer tok key-1 en",
		"GET /v1/cases?limit=1&status=closed Bearer tok  en",
		"GET /v1/cases?cursor=c2&limit=1&status=closed Bearer tok  en",
		"GET /v1/stats?from=2026-11-01&group_by=day&position=7 Bearer tok  en",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// FollowQueue passes every event but heartbeats on, reconnects after a drop
// with Last-Event-ID, ends with the caller's error or at a 4xx, and returns
// nil when its context ends.
func TestFollowQueue(t *testing.T) {
	var mu sync.Mutex
	var lastIDs []string
	connections := 0
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") != "text/event-stream" {
			t.Errorf("Accept %q", r.Header.Get("Accept"))
		}
		if r.URL.Path == "/v1/queues/other" {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"error":{"code":"forbidden","message":"only other itself"}}`)
			return
		}
		mu.Lock()
		connections++
		n := connections
		lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
		mu.Unlock()
		fmt.Fprintf(w, ": heartbeat\n\nevent: change\nid: %d\ndata: {}\n\n", n)
	})
	ctx := context.Background()
	var events []string
	drops := 0
	stop := errors.New("enough")
	err := c.FollowQueue(ctx, "water-bureau", func(ev sse.Event) error {
		events = append(events, ev.Name+"#"+ev.ID)
		if len(events) == 3 {
			return stop
		}
		return nil
	}, httpclient.FollowOptions{Retry: time.Millisecond, Dropped: func(error) { drops++ }})
	if !errors.Is(err, stop) {
		t.Fatalf("FollowQueue: %v", err)
	}
	if strings.Join(events, " ") != "change#1 change#2 change#3" || drops != 2 {
		t.Errorf("events %v, drops %d", events, drops)
	}
	if strings.Join(lastIDs, ",") != ",1,2" {
		t.Errorf("Last-Event-ID %q, want none, 1, 2", lastIDs)
	}
	err = c.FollowQueue(ctx, "other", func(sse.Event) error { return nil }, httpclient.FollowOptions{})
	if !errors.Is(err, httpclient.ErrForbidden) {
		t.Errorf("another's queue: %v", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := c.FollowQueue(cctx, "water-bureau", func(sse.Event) error { return nil }, httpclient.FollowOptions{Retry: time.Millisecond}); err != nil {
		t.Errorf("a cancelled follow: %v", err)
	}
}

// The client links none of the server's packages: programs that use it
// (the CLI first) do not carry the server.
func TestLinksNoServerPackage(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/whistle-gov/whistle/adapters/httpclient").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := map[string]bool{
		"github.com/whistle-gov/whistle/adapters/httpclient": true,
		"github.com/whistle-gov/whistle/adapters/sse":        true,
		"github.com/whistle-gov/whistle/domain":              true,
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/whistle-gov/whistle/") && !allowed[pkg] && !strings.HasPrefix(pkg, "github.com/whistle-gov/whistle/domain/") {
			t.Errorf("httpclient links %s", pkg)
		}
	}
}
