package main

import (
	"encoding/json"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// commandLines are an invocation of every command that talks to the
// server, each with its required arguments.
var commandLines = map[string][]string{
	"raise":     {"raise", "--street", "longqiao", "--community", "wanhui", "--category", "river-pollution", "--title", "creek"},
	"route":     {"route", fakeCaseID, "--lead", "ecology-bureau"},
	"verify":    {"verify", fakeCaseID, "--accepted=false", "--note", "still runs"},
	"rate":      {"rate", fakeCaseID, "--rating", "satisfied"},
	"report":    {"report", fakeCaseID},
	"progress":  {"progress", fakeCaseID, "--note", "samples taken"},
	"claim":     {"claim", fakeCaseID},
	"resolve":   {"resolve", fakeCaseID, "--note", "sealed"},
	"decline":   {"decline", fakeCaseID, "--reason", "not ours", "--suggest", "urban-management-bureau"},
	"case":      {"case", fakeCaseID},
	"history":   {"history", fakeCaseID},
	"directory": {"directory"},
	"cases":     {"cases"},
	"stats":     {"stats"},
	"queue":     {"queue", "ecology-bureau"},
}

// Every command's --help (and -h, and `whistle help CMD`) prints that
// command's usage on stdout and exits 0, asking the server nothing; before,
// it exited 1, and `case --help` asked for a case named --help (404).
func TestHelpPrintsTheCommandsUsageAndExitsZero(t *testing.T) {
	srv := newFakeServer(t)
	names := []string{"replay", "version", "completion"}
	for name := range commandLines {
		names = append(names, name)
	}
	for _, name := range names {
		for _, args := range [][]string{{name, "--help"}, {name, "-h"}, {"help", name}, {name, fakeCaseID, "--help"}} {
			if name == "completion" && len(args) == 3 {
				continue // completion's argument is a shell
			}
			res := runCLI(t, srv.URL, nil, args...)
			if res.code != 0 || !strings.Contains(res.stdout, "Usage:") || !strings.Contains(res.stdout, "whistle "+name) {
				t.Errorf("whistle %s: exit %d, want 0 and the usage of %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), res.code, name, res.stdout, res.stderr)
			}
		}
	}
	if got := srv.reached(); len(got) > 0 {
		t.Errorf("--help reached the server: %v", got)
	}
}

// The top-level help lists every command, queue among them (it was
// missing).
func TestHelpListsEveryCommand(t *testing.T) {
	res := runCLI(t, "http://127.0.0.1:1", nil, "--help")
	if res.code != 0 {
		t.Fatalf("whistle --help: exit %d\n%s", res.code, res.stderr)
	}
	for _, name := range append(slices.Collect(mapKeys(commandLines)), "replay", "version", "completion") {
		if !strings.Contains(res.stdout, "\n  "+name+" ") {
			t.Errorf("whistle --help does not list %s:\n%s", name, res.stdout)
		}
	}
	for _, args := range [][]string{nil, {"help"}} {
		if again := runCLI(t, "http://127.0.0.1:1", nil, args...); again.code != 0 || again.stdout != res.stdout {
			t.Errorf("whistle %v: exit %d, want 0 and the same help as --help", args, again.code)
		}
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// Flags may come after the positional arguments (`history CASE --json`
// said "give the case id"), and before them.
func TestFlagsAfterArguments(t *testing.T) {
	srv := newFakeServer(t)
	for _, args := range [][]string{
		{"history", fakeCaseID, "--json"},
		{"history", "--json", fakeCaseID},
		{"history", fakeCaseID, "-o", "json"},
		{"queue", "ecology-bureau", "--json"},
		{"case", "-o", "json", fakeCaseID},
	} {
		res := runCLI(t, srv.URL, nil, args...)
		if res.code != 0 || !json.Valid([]byte(res.stdout)) {
			t.Errorf("whistle %s: exit %d, want 0 and JSON\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
		}
	}
	// History is read in pages of the server's most (its next says whether more follow).
	if got := srv.reached(); !slices.Contains(got, "GET /v1/cases/"+fakeCaseID+"/history?limit=1000") {
		t.Errorf("history was not read: %v", got)
	}
}

// Each command has its own flags and refuses every other command's, before
// anything is sent (report --rating was accepted and ignored); a missing
// case id and a missing required flag are refused the same way, exit 2.
func TestOneFlagSetPerCommand(t *testing.T) {
	srv := newFakeServer(t)
	foreign := map[string][]string{
		"report":   {"--rating", "satisfied"},
		"progress": {"--mediation", "success"},
		"claim":    {"--lead", "ecology-bureau"},
		"resolve":  {"--reason", "x"},
		"decline":  {"--accepted=true"},
		"route":    {"--note", "x"},
		"verify":   {"--rating", "satisfied"},
		"rate":     {"--note", "x"},
		"raise":    {"--rating", "satisfied"},
		"case":     {"--follow"},
		"queue":    {"--all"},
	}
	for name, extra := range foreign {
		args := append(slices.Clone(commandLines[name]), extra...)
		res := runCLI(t, srv.URL, nil, args...)
		if res.code != exitUsage || !strings.Contains(res.stderr, "unknown flag: "+strings.SplitN(extra[0], "=", 2)[0]) ||
			!strings.Contains(res.stderr, "whistle "+name+" --help") {
			t.Errorf("whistle %s: exit %d, want 2 naming the flag and the help\nstderr:\n%s", strings.Join(args, " "), res.code, res.stderr)
		}
	}
	for _, args := range [][]string{{"report"}, {"history"}, {"queue"}, {"case", "a", "b"}, {"verify", fakeCaseID}, {"stats", "extra"}} {
		if res := runCLI(t, srv.URL, nil, args...); res.code != exitUsage {
			t.Errorf("whistle %s: exit %d, want 2\nstderr:\n%s", strings.Join(args, " "), res.code, res.stderr)
		}
	}
	if got := srv.reached(); len(got) > 0 {
		t.Errorf("refused command lines reached the server: %v", got)
	}
	if res := runCLI(t, srv.URL, nil, "no-such-command"); res.code != exitUsage || !strings.Contains(res.stderr, `unknown command "no-such-command"`) {
		t.Errorf("an unknown command: exit %d\n%s", res.code, res.stderr)
	}
}

// Each command sends the body its flags make, and only that.
func TestCommandsSendTheirBodies(t *testing.T) {
	srv := newFakeServer(t)
	want := map[string]string{
		"raise":    `{"street":"longqiao","community":"wanhui","category":"river-pollution","urgency":"routine","title":"creek"}`,
		"route":    `{"lead":"ecology-bureau"}`,
		"verify":   `{"accepted":false,"note":"still runs"}`,
		"rate":     `{"rating":"satisfied"}`,
		"report":   `{}`,
		"progress": `{"note":"samples taken"}`,
		"resolve":  `{"note":"sealed"}`,
		"decline":  `{"reason":"not ours","suggest":"urban-management-bureau"}`,
	}
	for name, body := range want {
		if res := runCLI(t, srv.URL, nil, commandLines[name]...); res.code != 0 {
			t.Fatalf("whistle %s: exit %d\n%s", name, res.code, res.stderr)
		}
		path := "POST /v1/cases/" + fakeCaseID + "/" + name
		if name == "raise" {
			path = "POST /v1/whistles"
		}
		if got := srv.body(path); got != body {
			t.Errorf("whistle %s sent %s, want %s", name, got, body)
		}
	}
	res := runCLI(t, srv.URL, nil, "route", fakeCaseID, "--lead", "ecology-bureau", "--assist", "water-bureau,housing-office", "--key", "k-1")
	if res.code != 0 || srv.body("POST /v1/cases/"+fakeCaseID+"/route") != `{"lead":"ecology-bureau","assist":["water-bureau","housing-office"]}` {
		t.Errorf("route --assist: exit %d, sent %s", res.code, srv.body("POST /v1/cases/"+fakeCaseID+"/route"))
	}
}

// -o json on every command that prints gives JSON; -o table and -o wide
// give text; anything else is refused.
func TestOutputFormats(t *testing.T) {
	srv := newFakeServer(t)
	for name, args := range commandLines {
		for _, format := range []string{"json", "table", "wide"} {
			res := runCLI(t, srv.URL, nil, append(slices.Clone(args), "-o", format)...)
			if res.code != 0 {
				t.Errorf("whistle %s -o %s: exit %d\n%s", name, format, res.code, res.stderr)
				continue
			}
			if isJSON := json.Valid([]byte(res.stdout)); isJSON != (format == "json") {
				t.Errorf("whistle %s -o %s: JSON %v\n%s", name, format, isJSON, res.stdout)
			}
		}
		res := runCLI(t, srv.URL, nil, append(slices.Clone(args), "-o", "yaml")...)
		if res.code != exitUsage || !strings.Contains(res.stderr, "want table, wide, json") {
			t.Errorf("whistle %s -o yaml: exit %d\n%s", name, res.code, res.stderr)
		}
	}
	for _, name := range []string{"version"} {
		res := runCLI(t, srv.URL, nil, name, "-o", "json")
		if res.code != 0 || !json.Valid([]byte(res.stdout)) {
			t.Errorf("whistle %s -o json: exit %d\n%s", name, res.code, res.stdout)
		}
	}
}

// Tables fit an 80 to 120 column terminal (case ids stay whole; titles,
// names and then whole columns give way), and put the directory's names
// beside ids where there is room. They were 184 to 239 columns wide.
func TestTablesFitTheTerminal(t *testing.T) {
	srv := newFakeServer(t)
	for _, name := range []string{"cases", "queue", "stats", "case", "directory", "history", "raise"} {
		for _, columns := range []string{"80", "100", "120"} {
			res := runCLI(t, srv.URL, map[string]string{"COLUMNS": columns}, commandLines[name]...)
			if res.code != 0 {
				t.Fatalf("whistle %s: exit %d\n%s", name, res.code, res.stderr)
			}
			limit, _ := strconv.Atoi(columns)
			for _, line := range strings.Split(strings.TrimRight(res.stdout, "\n"), "\n") {
				// The case view's fields and the summary lines are not table
				// rows; every table row must fit.
				if w := displayWidth(line); w > limit && !strings.HasPrefix(line, "TITLE ") && !strings.Contains(line, " (left out to fit:") {
					t.Errorf("whistle %s at %s columns: a line of %d columns:\n%s", name, columns, w, line)
				}
			}
			if (name == "cases" || name == "queue") && !strings.Contains(res.stdout, fakeCaseID) {
				t.Errorf("whistle %s at %s columns: the case id was cut:\n%s", name, columns, res.stdout)
			}
		}
	}
	for name, want := range map[string][]string{
		"cases": {"河道污染 (river-pollution)", "万辉社区 (longqiao/wanhui)", "生态环境局 (ecology-bureau)"},
		"queue": {"河道污染 (river-pollution)", "万辉社区 (longqiao/wanhui)"},
		"stats": {"龙桥街道 (longqiao)", "镇海街道 (zhenhai)"},
		"case":  {"龙桥街道 (longqiao)", "生态环境局 (ecology-bureau)", "城管局 (urban-management-bureau)"},
	} {
		res := runCLI(t, srv.URL, nil, append(slices.Clone(commandLines[name]), "-o", "wide")...)
		for _, w := range want {
			if !strings.Contains(res.stdout, w) {
				t.Errorf("whistle %s -o wide: no %q:\n%s", name, w, res.stdout)
			}
		}
	}
	// A community that shares its street's id keeps its own name.
	res := runCLI(t, srv.URL, nil, "stats", "--group-by", "community", "-o", "wide")
	if !strings.Contains(res.stdout, "镇海社区 (zhenhai)") {
		t.Errorf("stats by community: no 镇海社区 (zhenhai):\n%s", res.stdout)
	}
}

// Nothing the server sends reaches the terminal as a control sequence: a
// title's escape sequences were printed raw by queue and cases.
func TestControlCharactersAreEscaped(t *testing.T) {
	srv := newFakeServer(t)
	for name, args := range commandLines {
		for _, format := range []string{"table", "wide", "json"} {
			res := runCLI(t, srv.URL, map[string]string{"COLUMNS": "400"}, append(slices.Clone(args), "-o", format)...)
			if res.code != 0 {
				t.Fatalf("whistle %s -o %s: exit %d\n%s", name, format, res.code, res.stderr)
			}
			if r, ok := controlIn(res.stdout); ok {
				t.Errorf("whistle %s -o %s printed the control character %U:\n%q", name, format, r, res.stdout)
			}
		}
	}
	res := runCLI(t, srv.URL, map[string]string{"COLUMNS": "400"}, "cases")
	if !strings.Contains(res.stdout, `\x1b]0;pwned\x07\x1b[31mRED`) || !strings.Contains(res.stdout, `\u009b2J \u202eevil`) {
		t.Errorf("cases: the title's escapes are not shown as escapes:\n%s", res.stdout)
	}
	// JSON stays JSON with the same title.
	res = runCLI(t, srv.URL, nil, "cases", "-o", "json")
	var page struct {
		Cases []struct{ Title string } `json:"cases"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &page); err != nil || len(page.Cases) != 1 || page.Cases[0].Title != hostileTitle {
		t.Errorf("cases -o json: %v, %+v", err, page)
	}
	// The stream's lines too.
	res = runCLIFor(t, 1500*time.Millisecond, srv.URL, map[string]string{"COLUMNS": "400"}, "queue", "ecology-bureau", "--follow")
	if r, ok := controlIn(res.stdout); ok || !strings.Contains(res.stdout, `\x1b[31mRED`) {
		t.Errorf("queue --follow: control character %U or no escapes:\n%q", r, res.stdout)
	}
}

func controlIn(s string) (rune, bool) {
	for _, r := range s {
		if r != '\n' && (r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069) {
			return r, true
		}
		if r == utf8.RuneError {
			return r, true
		}
	}
	return 0, false
}

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"plain 龙桥":       "plain 龙桥",
		"a\x1b[2Jb":      `a\x1b[2Jb`,
		"tab\tnew\nline": `tab\tnew\nline`,
		"\u009b1m":       `\u009b1m`,
		"\u202eabc":      `\u202eabc`,
		"bad\xffutf8":    `bad\xffutf8`,
		"del\x7f":        `del\x7f`,
	} {
		if got := clean(in); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
}

// queue --follow prints the open assignments, the sync point and each
// change, one line each; -o json one JSON object per event.
func TestQueueFollow(t *testing.T) {
	srv := newFakeServer(t)
	// The fake's stream ends after one change; the CLI reconnects with
	// Last-Event-ID until the test's context ends, so cut it short.
	res := runCLIFor(t, 1500*time.Millisecond, srv.URL, map[string]string{"COLUMNS": "200"}, "queue", "ecology-bureau", "--follow", "-o", "json")
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	if len(lines) < 3 {
		t.Fatalf("queue --follow -o json: %d lines\n%s\n%s", len(lines), res.stdout, res.stderr)
	}
	var names []string
	for _, l := range lines[:3] {
		var ev struct {
			Event string          `json:"event"`
			ID    string          `json:"id"`
			Data  json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("queue --follow -o json: %q: %v", l, err)
		}
		names = append(names, ev.Event)
	}
	if !slices.Equal(names, []string{"assignment", "synced", "change"}) {
		t.Errorf("events %v, want assignment, synced, change", names)
	}
	var resumed bool
	for _, r := range srv.reached() {
		resumed = resumed || strings.HasPrefix(r, "GET /v1/queues/ecology-bureau")
	}
	if !resumed {
		t.Errorf("the queue was not followed: %v", srv.reached())
	}
}

// whistle version says the module version and the Go that built it.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		res := runCLI(t, "http://127.0.0.1:1", nil, args...)
		if res.code != 0 || !strings.HasPrefix(res.stdout, "whistle ") || !strings.Contains(res.stdout, runtime.Version()) {
			t.Errorf("whistle %v: exit %d\n%s%s", args, res.code, res.stdout, res.stderr)
		}
	}
	res := runCLI(t, "http://127.0.0.1:1", nil, "version", "-o", "json")
	var b buildInfo
	if err := json.Unmarshal([]byte(res.stdout), &b); err != nil || b.Go != runtime.Version() || b.Version == "" {
		t.Errorf("version -o json: %v %+v", err, b)
	}
}

// whistle completion bash|zsh prints a completion script, and the shells'
// callback completes flag values.
func TestCompletion(t *testing.T) {
	for shell, marker := range map[string]string{"bash": "__start_whistle", "zsh": "#compdef whistle"} {
		res := runCLI(t, "http://127.0.0.1:1", nil, "completion", shell)
		if res.code != 0 || !strings.Contains(res.stdout, marker) {
			t.Errorf("completion %s: exit %d, no %q", shell, res.code, marker)
		}
	}
	srv := newFakeServer(t)
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"__complete", "raise", "--urgency", ""}, urgencies},
		{[]string{"__complete", "report", fakeCaseID, "-o", ""}, outputFormats},
		{[]string{"__complete", "raise", "--street", ""}, []string{"longqiao\t龙桥街道", "zhenhai\t镇海街道"}},
		{[]string{"__complete", "queue", ""}, []string{"ecology-bureau\t生态环境局", "putian-university\t莆田学院"}},
		{[]string{"__complete", "qu"}, []string{"queue\t"}},
	} {
		res := runCLI(t, srv.URL, nil, c.args...)
		for _, w := range c.want {
			if !strings.Contains(res.stdout, w) {
				t.Errorf("whistle %s: no %q in\n%s", strings.Join(c.args, " "), w, res.stdout)
			}
		}
	}
}

// The server's errors come out as code, message and field; a wrong token
// says what to check; no token says to set one.
func TestServerErrors(t *testing.T) {
	srv := newFakeServer(t)
	res := runCLI(t, srv.URL, map[string]string{"WHISTLE_TOKEN": "wrong"}, "cases")
	if res.code != exitError || !strings.Contains(res.stderr, "401 unauthorized: unknown token") || !strings.Contains(res.stderr, "WHISTLE_TOKEN") {
		t.Errorf("a wrong token: exit %d\n%s", res.code, res.stderr)
	}
	res = runCLI(t, srv.URL, map[string]string{"WHISTLE_TOKEN": ""}, "cases")
	if res.code != exitError || !strings.Contains(res.stderr, "set WHISTLE_TOKEN") {
		t.Errorf("no token: exit %d\n%s", res.code, res.stderr)
	}
	res = runCLI(t, "ftp://example", nil, "cases")
	if res.code != exitError || !strings.Contains(res.stderr, "WHISTLE_URL") {
		t.Errorf("a bad URL: exit %d\n%s", res.code, res.stderr)
	}
}

// cases --all follows the cursor to the last page; without it the next
// cursor is named.
func TestCasesPaging(t *testing.T) {
	srv := newFakeServer(t)
	res := runCLI(t, srv.URL, nil, "cases", "--limit", "1")
	if res.code != 0 || !strings.Contains(res.stdout, "1 cases; more with --cursor page-2 (or --all)") {
		t.Errorf("cases --limit 1: exit %d\n%s", res.code, res.stdout)
	}
	res = runCLI(t, srv.URL, nil, "cases", "--limit", "1", "--all")
	if res.code != 0 || !strings.Contains(res.stdout, "2 cases\n") {
		t.Errorf("cases --limit 1 --all: exit %d\n%s", res.code, res.stdout)
	}
	if !slices.Contains(srv.reached(), "GET /v1/cases?cursor=page-2&limit=1") {
		t.Errorf("the second page was not read: %v", srv.reached())
	}
}
