package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/whistle-gov/whistle/adapters/coretest"
	"github.com/whistle-gov/whistle/adapters/dispatch"
	"github.com/whistle-gov/whistle/adapters/httpapi"
	"github.com/whistle-gov/whistle/adapters/readmodel"
	"github.com/whistle-gov/whistle/adapters/sse"
	"github.com/whistle-gov/whistle/domain"
	"github.com/whistle-gov/whistle/projections"
)

// runQueues follows env's log with read models (in a fresh folder) until
// the test ends, and returns their queue view.
func runQueues(t *testing.T, env *coretest.Env) *readmodel.Queues {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r, err := readmodel.Open(ctx, readmodel.Config{Store: env.Store, Directory: env.Dir, Dir: t.TempDir(), Log: env.Log})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = r.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return r.Queues()
}

// serve runs the API with the queue routes over env, with a dispatcher and a
// queue view.
func serve(t *testing.T, env *coretest.Env, heartbeat time.Duration) string {
	t.Helper()
	return serveWith(t, env, heartbeat, nil)
}

// serveWith is serve with the API's configuration changed by tune.
func serveWith(t *testing.T, env *coretest.Env, heartbeat time.Duration, tune func(*httpapi.Config)) string {
	t.Helper()
	disp, err := dispatch.New(context.Background(), dispatch.Config{Store: env.Store, Conn: env.Conn, Instance: "test-" + t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	queues := runQueues(t, env)
	feed, err := dispatch.NewFeed(env.Conn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = disp.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	cfg := httpapi.Config{Handler: env.Handler, Store: env.Store, Directory: env.Dir, Auth: coretest.Tokens{}, Log: env.Log,
		Queues: queues, Feed: feed, Heartbeat: heartbeat}
	if tune != nil {
		tune(&cfg)
	}
	api := httpapi.New(cfg)
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return srv.URL
}

// openStream starts an event stream and returns its events; it ends with
// the test.
func openStream(t *testing.T, url, token, lastID string) <-chan sse.Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	ch := make(chan sse.Event, 100)
	go func() {
		defer resp.Body.Close()
		defer close(ch)
		_ = sse.Read(resp.Body, func(ev sse.Event) error { ch <- ev; return nil })
	}()
	return ch
}

// next returns the next event that is not a comment.
func next(t *testing.T, ch <-chan sse.Event) sse.Event {
	t.Helper()
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("event stream ended")
			}
			if !ev.Comment {
				return ev
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no event within 5s")
		}
	}
}

func TestQueueStreamsSnapshotThenChangesAndResumes(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	url := serve(t, env, time.Hour)
	first := env.Raise(t, "river-pollution", "routine").ID

	ch := openStream(t, url+"/v1/queues/ecology-bureau", "department:ecology-bureau", "")
	ev := next(t, ch)
	var it projections.QueueItem
	if ev.Name != "assignment" || json.Unmarshal([]byte(ev.Data), &it) != nil || it.CaseID != first || it.Status != domain.Assigned {
		t.Fatalf("snapshot event %+v", ev)
	}
	if synced := next(t, ch); synced.Name != "synced" {
		t.Fatalf("after the snapshot: %+v", synced)
	}

	start := time.Now()
	second := env.Raise(t, "river-pollution", "emergency").ID
	var m dispatch.Message
	for m.CaseID != second {
		// The snapshot's own change may follow it (the dispatcher lags the
		// view): an upsert of what the client has.
		ev = next(t, ch)
		if ev.Name != "change" || json.Unmarshal([]byte(ev.Data), &m) != nil || m.Change != dispatch.ChangeMade || ev.ID == "" ||
			m.CaseID != second && (m.CaseID != first || m.Version > it.Version) {
			t.Fatalf("change event %+v", ev)
		}
	}
	t.Logf("raise → live queue event: %s", time.Since(start))
	lastID := ev.ID

	// The client goes; a case changes; it comes back with Last-Event-ID and
	// gets exactly what it missed, without a snapshot.
	env.Do(t, first, coretest.Ecology, domain.Report{Assignee: "ecology-bureau"})
	resumed := openStream(t, url+"/v1/queues/ecology-bureau", "department:ecology-bureau", lastID)
	ev = next(t, resumed)
	if ev.Name != "change" || json.Unmarshal([]byte(ev.Data), &m) != nil || m.CaseID != first || m.Change != dispatch.ChangeReported {
		t.Fatalf("first event after resuming: %+v", ev)
	}
}

func TestQueueAccess(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	url := serve(t, env, time.Hour)
	c := env.Raise(t, "river-pollution", "routine").ID
	get := func(token, assignee string) (int, httpapi.QueueAnswer) {
		req, _ := http.NewRequest("GET", url+"/v1/queues/"+assignee, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var a httpapi.QueueAnswer
		_ = json.NewDecoder(resp.Body).Decode(&a)
		return resp.StatusCode, a
	}
	// Its own queue shows the whistle just raised: the read waits for the
	// view to reach the log's head.
	st, a := get("department:ecology-bureau", "ecology-bureau")
	if st != 200 || len(a.Assignments) != 1 || a.Assignments[0].CaseID != c || a.Assignments[0].Category != "river-pollution" {
		t.Fatalf("own queue: %d %+v", st, a)
	}
	for _, tc := range []struct {
		token, assignee string
		status          int
	}{
		{"department:water-bureau", "ecology-bureau", 403},
		{"unit:putian-university", "ecology-bureau", 403},
		{"street:longqiao", "ecology-bureau", 403},
		{"auditor:auditor", "ecology-bureau", 200},
		{"auditor:auditor", "no-such-bureau", 404},
	} {
		if st, _ := get(tc.token, tc.assignee); st != tc.status {
			t.Errorf("%s reads the queue of %s: %d, want %d", tc.token, tc.assignee, st, tc.status)
		}
	}
}

func TestStreamsSendHeartbeats(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	url := serve(t, env, 50*time.Millisecond)
	ch := openStream(t, url+"/v1/queues/water-bureau", "department:water-bureau", "")
	beats := 0
	deadline := time.After(5 * time.Second)
	for beats < 2 {
		select {
		case ev := <-ch:
			if ev.Comment && ev.Data == "heartbeat" {
				beats++
			}
		case <-deadline:
			t.Fatalf("%d heartbeats in 5s", beats)
		}
	}
}

func TestStreetNotifications(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	url := serve(t, env, time.Hour)
	ch := openStream(t, url+"/v1/notifications", "street:longqiao", "")
	if ev := next(t, ch); ev.Name != "synced" {
		t.Fatalf("first event %+v", ev)
	}
	c := env.Raise(t, "neighbour-dispute", "routine").ID
	var changes []string
	for len(changes) < 2 {
		ev := next(t, ch)
		var m dispatch.Message
		if err := json.Unmarshal([]byte(ev.Data), &m); err != nil || m.CaseID != c {
			t.Fatalf("notification %+v", ev)
		}
		changes = append(changes, m.Change)
	}
	if strings.Join(changes, ",") != "raised,made" {
		t.Fatalf("notifications %v, want raised,made", changes)
	}
	// Another street and an assignee may not listen.
	for _, tc := range []struct{ token, query string }{{"street:zhenhai", "?street=longqiao"}, {"department:judicial-office", ""}} {
		req, _ := http.NewRequest("GET", url+"/v1/notifications"+tc.query, nil)
		req.Header.Set("Authorization", "Bearer "+tc.token)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Errorf("%s%s: %d, want 403", tc.token, tc.query, resp.StatusCode)
		}
	}
}
