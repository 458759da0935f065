package main

import (
	"strings"
	"testing"

	"github.com/whistle-gov/whistle/cmd/whistled/whistledtest"
)

// TestDefaultLayoutIsPackedAndOldDataKeepsItsOwn: a fresh data folder gets
// the packed log (the default); a folder whose log was written one message
// per commit (--group-commit off, or a whistled from before the packed log)
// keeps that layout when started on the defaults, and its cases stay
// readable and writable.
func TestDefaultLayoutIsPackedAndOldDataKeepsItsOwn(t *testing.T) {
	fresh := whistledtest.Start(t)
	if !strings.Contains(fresh.Logs(), `"log_layout": "packed"`) && !strings.Contains(fresh.Logs(), `"log_layout":"packed"`) {
		t.Fatalf("a fresh data folder is not on the packed log:\n%s", fresh.Logs())
	}
	fresh.Stop()

	s := whistledtest.Start(t, "--group-commit", "off")
	sm := pickSample(t, s)
	street := "street:" + sm.street
	var c caseView
	mustStatus(t, "raise on the per-message log", s.Do("POST", "/v1/whistles", street, raiseBody(sm.street, sm.community, sm.issue.ID, "urgent"), &c), 201)
	s.Stop()
	s.Args = nil
	s.Restart()
	if !strings.Contains(s.Logs(), `"log_layout": "per-message"`) && !strings.Contains(s.Logs(), `"log_layout":"per-message"`) {
		t.Fatalf("data with a per-message log did not keep it:\n%s", s.Logs())
	}
	var again caseView
	mustStatus(t, "read the case after the restart on the defaults", s.Do("GET", "/v1/cases/"+c.CaseID, street, nil, &again), 200)
	if again.CaseID != c.CaseID || again.Status != "routed" {
		t.Fatalf("the case after the restart: %+v", again)
	}
	mustStatus(t, "the lead reports in after the restart", s.Do("POST", "/v1/cases/"+c.CaseID+"/report", principalOf(s, sm.issue.Lead), nil, nil), 200)
	mustStatus(t, "a new raise after the restart", s.Do("POST", "/v1/whistles", street, raiseBody(sm.street, sm.community, sm.issue.ID, "routine"), nil), 201)
}
