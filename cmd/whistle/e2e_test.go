package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/whistle-gov/whistle/cmd/whistled/whistledtest"
)

// A case's whole life through the CLI against a real whistled: the street
// raises, the department reports in and resolves, the street verifies and
// rates, anyone involved reads it, the auditor replays the log.
func TestWorkflowAgainstWhistled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts whistled; run without -short")
	}
	s := whistledtest.Start(t)
	as := func(principal string, args ...string) result {
		t.Helper()
		res := runCLI(t, s.URL, map[string]string{"WHISTLE_TOKEN": s.Token(principal), "COLUMNS": "100"}, args...)
		if res.code != 0 {
			t.Fatalf("whistle %s as %s: exit %d\n%s\n%s", strings.Join(args, " "), principal, res.code, res.stdout, res.stderr)
		}
		return res
	}
	const street, dept = "street:longqiao", "department:ecology-bureau"
	raised := as(street, "raise", "--street", "longqiao", "--community", "wanhui", "--category", "river-pollution",
		"--urgency", "urgent", "--title", "Oil on the creek \x1b[31mred", "--key", "creek-1", "-o", "json")
	var c struct {
		CaseID   string `json:"case_id"`
		Status   string `json:"status"`
		Version  uint64 `json:"version"`
		Position uint64 `json:"position"`
	}
	if err := json.Unmarshal([]byte(raised.stdout), &c); err != nil || c.CaseID == "" || c.Status != "routed" {
		t.Fatalf("raise -o json: %v\n%s", err, raised.stdout)
	}
	// The same key raises the case once.
	var again struct {
		CaseID string `json:"case_id"`
	}
	_ = json.Unmarshal([]byte(as(street, "raise", "--street", "longqiao", "--community", "wanhui", "--category", "river-pollution",
		"--urgency", "urgent", "--title", "Oil on the creek \x1b[31mred", "--key", "creek-1", "-o", "json").stdout), &again)
	if again.CaseID != c.CaseID {
		t.Errorf("a repeated key raised %s, want %s", again.CaseID, c.CaseID)
	}

	// A foreign flag is refused before anything is sent: nothing appended.
	res := runCLI(t, s.URL, map[string]string{"WHISTLE_TOKEN": s.Token(dept)}, "report", c.CaseID, "--rating", "satisfied")
	if res.code != exitUsage {
		t.Fatalf("report --rating: exit %d\n%s", res.code, res.stderr)
	}
	// --help is help, not a case id.
	if res := as(dept, "case", "--help"); !strings.Contains(res.stdout, "whistle case CASE") {
		t.Errorf("case --help:\n%s", res.stdout)
	}
	view := as(dept, "case", c.CaseID)
	if !strings.Contains(view.stdout, "version 3") || !strings.Contains(view.stdout, "生态环境局 (ecology-bureau)") ||
		!strings.Contains(view.stdout, `\x1b[31mred`) {
		t.Errorf("case after a refused report:\n%s", view.stdout)
	}

	queue := as(dept, "queue", "ecology-bureau")
	if !strings.Contains(queue.stdout, c.CaseID) || !strings.Contains(queue.stdout, "1 open") {
		t.Errorf("queue:\n%s", queue.stdout)
	}
	as(dept, "report", c.CaseID, "--note", "on our way")
	as(dept, "resolve", c.CaseID, "--note", "outfall sealed")
	as(street, "verify", c.CaseID, "--accepted=true")
	closed := as(street, "rate", c.CaseID, "--rating", "satisfied", "-o", "json")
	var final struct {
		Status   string  `json:"status"`
		Rating   *string `json:"rating"`
		Position uint64  `json:"position"`
	}
	if err := json.Unmarshal([]byte(closed.stdout), &final); err != nil || final.Status != "closed" || final.Rating == nil {
		t.Fatalf("rate -o json: %v\n%s", err, closed.stdout)
	}

	history := as(street, "history", c.CaseID, "--json")
	var h struct {
		Events     []json.RawMessage `json:"events"`
		ChainWhole bool              `json:"chain_whole"`
	}
	if err := json.Unmarshal([]byte(history.stdout), &h); err != nil || len(h.Events) != 8 || !h.ChainWhole {
		t.Errorf("history --json: %v, %d events\n%s", err, len(h.Events), history.stdout)
	}
	if res := as(street, "history", c.CaseID); !strings.Contains(res.stdout, "hash chain whole: 8 events") {
		t.Errorf("history:\n%s", res.stdout)
	}

	pos := "--position=" + jsonNumber(final.Position)
	cases := as(street, "cases", "--status", "closed", "--all", pos)
	if !strings.Contains(cases.stdout, c.CaseID) || !strings.Contains(cases.stdout, "1 cases") {
		t.Errorf("cases --status closed --all:\n%s", cases.stdout)
	}
	stats := as(street, "stats", "--group-by", "community", pos, "-o", "wide")
	if !strings.Contains(stats.stdout, "万辉社区 (wanhui)") || !strings.Contains(stats.stdout, "100.0%") {
		t.Errorf("stats --group-by community:\n%s", stats.stdout)
	}

	replay := as("auditor:auditor", "replay", "--quiet", "-o", "json")
	var rep struct {
		Position    uint64   `json:"position"`
		Differences []string `json:"differences"`
	}
	if err := json.Unmarshal([]byte(replay.stdout), &rep); err != nil || rep.Position == 0 || len(rep.Differences) != 0 {
		t.Errorf("replay -o json: %v\n%s\n%s", err, replay.stdout, replay.stderr)
	}
}

func jsonNumber(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
