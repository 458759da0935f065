package main

import (
	"strings"
	"testing"

	"github.com/whistle-gov/whistle/cmd/whistled/whistledtest"
)

// TestMetricsAfterCommands: after a raise, a report-in, a refused command and
// a conflict-free run of reads, GET /metrics answers without a token with the
// families an operator watches, labelled by command, outcome and route.
func TestMetricsAfterCommands(t *testing.T) {
	s := whistledtest.Start(t)
	smp := pickSample(t, s)
	var raised caseView
	if st := s.Do("POST", "/v1/whistles", "street:"+smp.street, raiseBody(smp.street, smp.community, smp.issue.ID, "routine"), &raised); st != 201 {
		t.Fatalf("raise: %d", st)
	}
	lead := raised.Assignments[0].Assignee
	if st := s.Do("POST", "/v1/cases/"+raised.CaseID+"/report", "department:"+lead, map[string]any{}, nil); st != 200 {
		t.Fatalf("report: %d", st)
	}
	// Reporting in twice is refused: an outcome of its own.
	if st := s.Do("POST", "/v1/cases/"+raised.CaseID+"/report", "department:"+lead, map[string]any{}, nil); st != 409 {
		t.Fatalf("second report: %d, want 409", st)
	}
	if st := s.Do("GET", "/v1/cases/"+raised.CaseID, "auditor:auditor", nil, nil); st != 200 {
		t.Fatalf("get case: %d", st)
	}

	st, body := s.DoRaw("GET", "/metrics", "", nil)
	if st != 200 {
		t.Fatalf("GET /metrics: %d %s", st, body)
	}
	text := string(body)
	for _, want := range []string{
		`whistle_commands_total{command="raise",outcome="ok"} 1`,
		`whistle_commands_total{command="report",outcome="ok"} 1`,
		`whistle_commands_total{command="report",outcome="refused"} 1`,
		`whistle_command_duration_seconds_count{command="raise"} 1`,
		`whistle_append_duration_seconds_count{outcome="ok"} 2`,
		`whistle_append_batch_commits_count `,
		`whistle_append_conflicts_total 0`,
		`whistle_command_retries_total 0`,
		`whistle_http_requests_total{route="POST /v1/whistles",status="201"} 1`,
		`whistle_http_requests_total{route="POST /v1/cases/{id}/{action}",status="409"} 1`,
		`whistle_http_requests_total{route="GET /v1/cases/{id}",status="200"} 1`,
		`whistle_dispatch_lag_commits `,
		`whistle_overdue_assignments 0`,
		`process_resident_memory_bytes `,
		`go_goroutines `,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", text)
	}
}
