package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/whistle-gov/whistle/adapters/coretest"
	"github.com/whistle-gov/whistle/adapters/httpapi"
	"github.com/whistle-gov/whistle/domain"
)

// TestStreamsPerPrincipalAreBounded: a principal past its streams gets
// 429 with Retry-After and the error shape; others are not affected, and
// a stream that ends frees its place.
func TestStreamsPerPrincipalAreBounded(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	url := serveWith(t, env, time.Hour, func(c *httpapi.Config) { c.MaxStreamsPerPrincipal = 2 })
	open := func(token string) (*http.Response, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", url+"/v1/queues/water-bureau", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		t.Cleanup(func() { cancel(); resp.Body.Close() })
		return resp, cancel
	}
	first, closeFirst := open("department:water-bureau")
	second, _ := open("department:water-bureau")
	if first.StatusCode != 200 || second.StatusCode != 200 {
		t.Fatalf("two streams: %d %d", first.StatusCode, second.StatusCode)
	}
	third, _ := open("department:water-bureau")
	var e httpapi.ErrorBody
	_ = json.NewDecoder(third.Body).Decode(&e)
	if third.StatusCode != 429 || third.Header.Get("Retry-After") == "" || e.Error.Code != "too_many_streams" ||
		!strings.Contains(e.Error.Message, "--max-streams-per-principal") {
		t.Fatalf("a third stream: %d Retry-After %q %+v, want 429 too_many_streams with Retry-After", third.StatusCode, third.Header.Get("Retry-After"), e)
	}
	// The queue as JSON is no stream: not counted.
	if st, _, e := call(t, &httptest.Server{URL: url}, "GET", "/v1/queues/water-bureau", "", "Authorization", "Bearer department:water-bureau"); st != 200 {
		t.Fatalf("the queue as JSON: %d %+v", st, e)
	}
	if auditor, _ := open("auditor:auditor"); auditor.StatusCode != 200 {
		t.Fatalf("another principal: %d", auditor.StatusCode)
	}
	closeFirst()
	coretest.Eventually(t, 5*time.Second, "a place freed by a stream that ended", func() error {
		resp, cancel := open("department:water-bureau")
		defer cancel()
		if resp.StatusCode != 200 {
			return fmt.Errorf("%d", resp.StatusCode)
		}
		return nil
	})
}

// TestInFlightBoundSheds: with every slot taken by a slow client (its body
// trickles in), a request is answered 503 at once with Retry-After, while
// /healthz is answered 200; once they finish, requests are served again.
func TestInFlightBoundSheds(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	url := serveWith(t, env, time.Hour, func(c *httpapi.Config) { c.MaxInFlight = 3 })
	srv := &httptest.Server{URL: url}
	bodies := make([]*io.PipeWriter, 3)
	done := make(chan int, len(bodies))
	for i := range bodies {
		pr, pw := io.Pipe()
		bodies[i] = pw
		req, _ := http.NewRequest("POST", url+"/v1/whistles", pr)
		req.Header.Set("Authorization", "Bearer street:longqiao")
		req.ContentLength = -1
		go func() {
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
		_, _ = pw.Write([]byte(`{"street":"longqiao",`)) // the handler is reading: the slot is taken
	}
	coretest.Eventually(t, 5*time.Second, "a request shed", func() error {
		st, h, e := call(t, srv, "GET", "/v1/directory", "")
		if st != 503 || h.Get("Retry-After") == "" || e.Error.Code != "overloaded" || !strings.Contains(e.Error.Message, "--max-in-flight") {
			return fmt.Errorf("%d Retry-After %q %+v", st, h.Get("Retry-After"), e)
		}
		return nil
	})
	for _, path := range []string{"/healthz", "/readyz"} {
		if st, _, e := call(t, srv, "GET", path, ""); st != 200 {
			t.Errorf("%s under load: %d %+v, want 200", path, st, e)
		}
	}
	for _, pw := range bodies {
		_, _ = pw.Write([]byte(`"community":"wanhui","category":"river-pollution","urgency":"routine","title":"t"}`))
		pw.Close()
	}
	for range bodies {
		if st := <-done; st != 201 {
			t.Errorf("a slow raise: %d, want 201", st)
		}
	}
	if st, _, e := call(t, srv, "GET", "/v1/directory", ""); st != 200 {
		t.Errorf("after the load: %d %+v", st, e)
	}
}

// TestHistoryPages: the history comes in pages of ?limit= after ?after=,
// with next; put together they are the whole history.
func TestHistoryPages(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	srv, _ := commandAPI(t, env)
	id := env.Raise(t, "river-pollution", "routine").ID
	env.Do(t, id, coretest.Ecology, domain.Report{Assignee: "ecology-bureau"})
	for i := range 5 {
		env.Do(t, id, coretest.Ecology, domain.NoteProgress{Assignee: "ecology-bureau", Note: fmt.Sprint("note ", i)})
	}
	whole := env.History(t, id)
	get := func(query string) (int, httpapi.HistoryAnswer, httpapi.ErrorBody) {
		req, _ := http.NewRequest("GET", srv.URL+"/v1/cases/"+id+"/history"+query, nil)
		req.Header.Set("Authorization", "Bearer street:longqiao")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var a httpapi.HistoryAnswer
		var e httpapi.ErrorBody
		_ = json.Unmarshal(raw, &a)
		_ = json.Unmarshal(raw, &e)
		return resp.StatusCode, a, e
	}
	var got []domain.Envelope
	query := "?limit=3"
	for pages := 0; ; pages++ {
		if pages > len(whole) {
			t.Fatal("the pages do not end")
		}
		st, a, e := get(query)
		if st != 200 || len(a.Events) > 3 || !a.ChainWhole || a.Total != uint64(len(whole)) {
			t.Fatalf("%s: %d %d events chain %v total %d %+v", query, st, len(a.Events), a.ChainWhole, a.Total, e)
		}
		got = append(got, a.Events...)
		if a.Next == nil {
			break
		}
		query = fmt.Sprintf("?limit=3&after=%d", *a.Next)
	}
	if len(got) != len(whole) {
		t.Fatalf("%d events in pages, %d in the stream", len(got), len(whole))
	}
	for i := range got {
		if got[i].ID != whole[i].ID {
			t.Fatalf("event %d: %s in pages, %s in the stream", i, got[i].ID, whole[i].ID)
		}
	}
	if st, a, _ := get(fmt.Sprintf("?after=%d", len(whole))); st != 200 || len(a.Events) != 0 || a.Next != nil {
		t.Errorf("after the end: %d %+v", st, a)
	}
	for _, tc := range []struct{ query, code, field string }{
		{"?limit=0", "invalid_value", "limit"},
		{"?limit=1001", "invalid_value", "limit"},
		{"?limit=ten", "invalid_value", "limit"},
		{"?after=-1", "invalid_value", "after"},
		{"?page=2", "unknown_field", "page"},
		{"?limit=2&limit=3", "malformed", "limit"},
	} {
		if st, _, e := get(tc.query); st < 400 || e.Error.Code != tc.code || e.Error.Field != tc.field {
			t.Errorf("%s: %d %+v, want %s naming %s", tc.query, st, e, tc.code, tc.field)
		}
	}
}

// TestCaseEventLimit: a case at its limit refuses more notes with 409
// case_event_limit naming the limit; resolving it is still allowed.
func TestCaseEventLimit(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	env.Handler.SetMaxEvents(12)
	srv, _ := commandAPI(t, env)
	id := env.Raise(t, "river-pollution", "routine").ID
	env.Do(t, id, coretest.Ecology, domain.Report{Assignee: "ecology-bureau"})
	before := len(env.History(t, id))
	note := `{"note":"还在处理"}`
	dept := []string{"Authorization", "Bearer department:ecology-bureau"}
	var st int
	var e httpapi.ErrorBody
	for range 20 {
		if st, _, e = call(t, srv, "POST", "/v1/cases/"+id+"/progress", note, dept...); st != 200 {
			break
		}
	}
	if st != 409 || e.Error.Code != "case_event_limit" || !strings.Contains(e.Error.Message, "12") || !strings.Contains(e.Error.Message, "--max-events-per-case") {
		t.Fatalf("notes past the limit: %d %+v, want 409 case_event_limit naming 12", st, e)
	}
	if n := len(env.History(t, id)); n != 12 {
		t.Fatalf("%d events (%d before the notes), want the limit, 12", n, before)
	}
	if st, _, e := call(t, srv, "POST", "/v1/cases/"+id+"/resolve", `{"note":"清理完毕"}`, dept...); st != 200 {
		t.Fatalf("resolve at the limit: %d %+v, want 200 (settling commands have a margin)", st, e)
	}
}
