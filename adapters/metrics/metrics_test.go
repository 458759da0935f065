package metrics

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/whistle-gov/whistle/adapters/eventstore"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape: %d", rec.Code)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestFamilies(t *testing.T) {
	m := New(func(context.Context) (eventstore.Position, error) { return 10, nil })
	m.CommandDone("raise", "ok", time.Millisecond)
	m.AppendDone(time.Millisecond, "conflict")
	m.Retry("raise")
	m.AppendDone(time.Millisecond, "ok")
	m.BatchCommits(17)
	m.RequestDone("POST /v1/whistles", 201, 2*time.Millisecond)
	m.ProjectionLag("stats", m.Behind(func() eventstore.Position { return 7 }))
	m.ProjectionLag("board", m.Behind(func() eventstore.Position { return 12 }))
	m.DispatchLag(m.Behind(func() eventstore.Position { return 10 }))
	m.OverdueAssignments(func() float64 { return 2 })
	text := scrape(t, m)
	for _, want := range []string{
		`whistle_commands_total{command="raise",outcome="ok"} 1`,
		`whistle_append_conflicts_total 1`,
		`whistle_command_retries_total 1`,
		`whistle_append_duration_seconds_count{outcome="ok"} 1`,
		`whistle_append_batch_commits_bucket{le="32"} 1`,
		`whistle_http_requests_total{route="POST /v1/whistles",status="201"} 1`,
		`whistle_projection_lag_commits{projection="stats"} 3`,
		`whistle_projection_lag_commits{projection="board"} 0`, // ahead of a cached head: never negative
		`whistle_dispatch_lag_commits 0`,
		`whistle_overdue_assignments 2`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
}

func TestBehindWithoutHead(t *testing.T) {
	m := New(func(context.Context) (eventstore.Position, error) { return 0, errors.New("store down") })
	if v := m.Behind(func() eventstore.Position { return 1 })(); !math.IsNaN(v) {
		t.Fatalf("lag with no head = %v, want NaN", v)
	}
	if v := New(nil).Behind(func() eventstore.Position { return 1 })(); !math.IsNaN(v) {
		t.Fatalf("lag with nil head func = %v, want NaN", v)
	}
}

func TestGaugeTwicePanics(t *testing.T) {
	m := New(nil)
	m.ProjectionLag("stats", func() float64 { return 0 })
	defer func() {
		if recover() == nil {
			t.Fatal("registering projection stats twice did not panic")
		}
	}()
	m.ProjectionLag("stats", func() float64 { return 0 })
}

func TestStatusText(t *testing.T) {
	for _, c := range []int{200, 418, 599, 999, 42} {
		if got := statusText(c); got != strconv.Itoa(c) {
			t.Errorf("statusText(%d) = %q", c, got)
		}
	}
}
