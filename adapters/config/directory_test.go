package config

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/whistle-gov/whistle/domain"
)

func TestSampleDirectory(t *testing.T) {
	dir, err := SampleDirectory()
	if err != nil {
		t.Fatalf("SampleDirectory: %v", err)
	}
	if dir.Version != "sample-1" {
		t.Errorf("version %q, want sample-1", dir.Version)
	}
	checkID := func(what, id string) {
		t.Helper()
		for _, r := range id {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				t.Errorf("%s id %q: want lowercase ASCII letters, digits and '-'", what, id)
				return
			}
		}
	}
	checkName := func(what, id, name string) {
		t.Helper()
		if !strings.ContainsFunc(name, func(r rune) bool { return unicode.Is(unicode.Han, r) }) {
			t.Errorf("%s %q: name %q is not Chinese", what, id, name)
		}
	}
	for _, s := range dir.Streets {
		checkID("street", s.ID)
		checkName("street", s.ID, s.Name)
		for _, c := range s.Communities {
			checkID("community", c.ID)
			checkName("community", c.ID, c.Name)
			if len(c.Units) == 0 {
				t.Errorf("community %s/%s has no unit: a need raised there could not be offered", s.ID, c.ID)
			}
			for _, u := range c.Units {
				if !dir.IsUnit(u) {
					t.Errorf("community %s/%s: %q is not a unit", s.ID, c.ID, u)
				}
			}
		}
	}
	for _, o := range append(append([]domain.Organisation(nil), dir.Departments...), dir.Units...) {
		checkID("organisation", o.ID)
		checkName("organisation", o.ID, o.Name)
	}
	kinds := map[domain.Kind]int{}
	for _, c := range dir.Categories {
		checkID("category", c.ID)
		checkName("category", c.ID, c.Name)
		kinds[c.Kind]++
		if c.Kind == domain.KindNeed {
			continue
		}
		if !dir.IsAssignee(c.Lead) {
			t.Errorf("category %s: lead %q is neither a department nor a unit", c.ID, c.Lead)
		}
		for _, a := range c.Assist {
			if !dir.IsAssignee(a) {
				t.Errorf("category %s: assist %q is neither a department nor a unit", c.ID, a)
			}
		}
	}
	for _, k := range []domain.Kind{domain.KindIssue, domain.KindDispute, domain.KindNeed} {
		if kinds[k] < 3 {
			t.Errorf("%d categories of kind %s, want at least 3", kinds[k], k)
		}
	}

	// What the brief and DESIGN.md name must be there, as named.
	for _, w := range []struct{ street, community string }{
		{"longqiao", "wanhui"}, {"zhenhai", "zhenhai"}, {"zhenhai", "wenxian"}, {"zhenhai", "kuokou"},
		{"luocheng", "beiguan"}, {"luocheng", "xinxia"}, {"luocheng", "zhongxin"},
		{"zhaozhen", "sanjiang"}, {"zhaozhen", "tuoyuan"}, {"zhaozhen", "shili"}, {"zhaozhen", "yulongjie"},
	} {
		if _, ok := dir.Community(w.street, w.community); !ok {
			t.Errorf("no community %s/%s", w.street, w.community)
		}
	}
	if c, _ := dir.Community("longqiao", "wanhui"); c == nil || c.Name != "万辉社区" {
		t.Errorf("longqiao/wanhui: %+v", c)
	}
	for _, id := range []string{"water-bureau", "ecology-bureau", "judicial-office", "urban-management-bureau",
		"zhenhai-police-station", "housing-office", "enforcement-bureau", "construction-bureau", "land-bureau",
		"culture-tourism-bureau", "civil-affairs"} {
		if !dir.IsDepartment(id) {
			t.Errorf("no department %q", id)
		}
	}
	for _, id := range []string{"putian-university", "putian-rural-commercial-bank", "putian-telecom",
		"city-organs-work-committee", "zhongwang-entrepreneurs", "maternal-child-hospital", "jincheng-school",
		"hantan-ciji-primary", "disabled-federation", "xintian-school", "jinggui-company"} {
		if !dir.IsUnit(id) {
			t.Errorf("no unit %q", id)
		}
	}
	routes := []struct {
		category, lead string
		kind           domain.Kind
		assist         []string
	}{
		{"river-pollution", "ecology-bureau", domain.KindIssue, []string{"water-bureau"}},
		{"slippery-public-toilet", "enforcement-bureau", domain.KindIssue, nil},
		{"lost-child-or-elder", "zhenhai-police-station", domain.KindIssue, nil},
		{"neighbour-dispute", "judicial-office", domain.KindDispute, nil},
		{"after-school-care", "", domain.KindNeed, nil},
		{"waste-sorting-drive", "", domain.KindNeed, nil},
	}
	for _, r := range routes {
		c, ok := dir.Category(r.category)
		if !ok {
			t.Errorf("no category %q", r.category)
			continue
		}
		if c.Lead != r.lead || c.Kind != r.kind {
			t.Errorf("category %s: kind %s lead %q, want %s %q", r.category, c.Kind, c.Lead, r.kind, r.lead)
		}
		for _, a := range r.assist {
			if !strings.Contains(strings.Join(c.Assist, ","), a) {
				t.Errorf("category %s: assist %v lacks %q", r.category, c.Assist, a)
			}
		}
	}

	// The policy is DESIGN.md's, exactly.
	wantSLA := map[domain.Urgency][2]time.Duration{
		domain.UrgencyRoutine:   {30 * time.Minute, 72 * time.Hour},
		domain.UrgencyUrgent:    {15 * time.Minute, 24 * time.Hour},
		domain.UrgencyEmergency: {5 * time.Minute, 2 * time.Hour},
	}
	for u, w := range wantSLA {
		sla := dir.SLAFor(u)
		report, reportIsClock := sla.ReportWithin.Clock()
		resolve, resolveIsClock := sla.ResolveWithin.Clock()
		if got := [2]time.Duration{report, resolve}; !reportIsClock || !resolveIsClock || got != w {
			t.Errorf("SLA %s: %v, want %v", u, got, w)
		}
	}
	wantLadder := []domain.EscalationStep{{Level: "district", After: 0}, {Level: "city", After: domain.Duration(30 * time.Minute)}}
	if len(dir.Escalation) != len(wantLadder) {
		t.Errorf("escalation %+v, want %+v", dir.Escalation, wantLadder)
	} else {
		for i := range wantLadder {
			if dir.Escalation[i] != wantLadder[i] {
				t.Errorf("escalation[%d] %+v, want %+v", i, dir.Escalation[i], wantLadder[i])
			}
		}
	}
	for r, w := range map[domain.Rating]float64{domain.RatingSatisfied: 1, domain.RatingBasicallySatisfied: 0.9, domain.RatingUnsatisfied: 0} {
		if got := dir.Weight(r); got != w {
			t.Errorf("weight of %s: %v, want %v", r, got, w)
		}
	}
}

func TestSampleDirectoryCopies(t *testing.T) {
	a, err := SampleDirectory()
	if err != nil {
		t.Fatal(err)
	}
	a.Streets[0].Name = "changed"
	b, err := SampleDirectory()
	if err != nil {
		t.Fatal(err)
	}
	if b.Streets[0].Name == "changed" {
		t.Error("SampleDirectory returned a shared directory")
	}
	j := SampleDirectoryJSON()
	j[0] = 'x'
	if bytes.Equal(j, SampleDirectoryJSON()) {
		t.Error("SampleDirectoryJSON returned shared bytes")
	}
}

// The sample ships the calendar as data (China's 2026 public holidays and
// make-up days, State Council notice of 2025-11-04), its districts and the
// 12345 hotline, and keeps clock-time report and resolve deadlines.
func TestSampleDirectoryCalendarDistrictsPlatforms(t *testing.T) {
	dir, err := SampleDirectory()
	if err != nil {
		t.Fatal(err)
	}
	cal := dir.WorkCalendar()
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	if cal.Location().String() != "Asia/Shanghai" {
		t.Errorf("calendar zone %s", cal.Location())
	}
	day := func(s string) time.Time {
		d, err := time.ParseInLocation(time.DateOnly, s, shanghai)
		if err != nil {
			t.Fatal(err)
		}
		return d.Add(10 * time.Hour)
	}
	for _, off := range []string{"2026-01-01", "2026-01-02", "2026-02-16", "2026-02-23", "2026-04-06", "2026-05-05",
		"2026-06-19", "2026-09-25", "2026-10-01", "2026-10-07"} {
		if cal.IsWorkingDay(day(off)) {
			t.Errorf("%s is a working day in the sample", off)
		}
	}
	for _, on := range []string{"2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10", "2026-10-08", "2026-12-02"} {
		if !cal.IsWorkingDay(day(on)) {
			t.Errorf("%s is not a working day in the sample", on)
		}
	}
	for street, district := range map[string]string{"longqiao": "chengxiang", "zhenhai": "licheng"} {
		if got, ok := dir.DistrictOf(street); !ok || got != district {
			t.Errorf("DistrictOf(%s) = %q, %v; want %s", street, got, ok, district)
		}
	}
	if !dir.IsPlatform("hotline-12345") {
		t.Error("the sample has no hotline-12345 platform")
	}
	if got := dir.SLAFor(domain.UrgencyRoutine).AcceptWithin.String(); got != "1wh" {
		t.Errorf("routine accept_within = %s, want the default 1wh", got)
	}
}

// The sample as a file loads like any other file.
func TestLoadDirectorySampleFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "directory.json")
	if err := os.WriteFile(path, SampleDirectoryJSON(), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDirectory(path); err != nil {
		t.Fatalf("LoadDirectory(sample): %v", err)
	}
}

// baseDirectory is a small valid directory that the bad cases edit. Line
// numbers in the cases below count its lines.
const baseDirectory = `{
  "version": "test-1",
  "streets": [
    {"id": "longqiao", "name": "龙桥街道", "communities": [
      {"id": "wanhui", "name": "万辉社区", "units": ["putian-university"]},
      {"id": "yanshou-creek", "name": "延寿溪", "units": ["putian-telecom"]}]}],
  "departments": [
    {"id": "ecology-bureau", "name": "生态环境局"},
    {"id": "water-bureau", "name": "水利局"},
    {"id": "judicial-office", "name": "司法所"}],
  "units": [
    {"id": "putian-university", "name": "莆田学院"},
    {"id": "putian-telecom", "name": "莆田电信"}],
  "categories": [
    {"id": "river-pollution", "name": "河道污染", "kind": "issue", "lead": "ecology-bureau", "assist": ["water-bureau"]},
    {"id": "neighbour-dispute", "name": "邻里纠纷", "kind": "dispute", "lead": "judicial-office"},
    {"id": "outfall-pipe", "name": "入河排口", "kind": "issue", "lead": "water-bureau"},
    {"id": "after-school-care", "name": "四点半课堂", "kind": "need"}],
  "sla": {
    "routine": {"report_within": "30m", "resolve_within": "72h"},
    "urgent": {"report_within": "15m", "resolve_within": "24h"},
    "emergency": {"report_within": "5m", "resolve_within": "2h"}},
  "escalation": [{"level": "district", "after": "0s"}, {"level": "city", "after": "30m"}],
  "satisfaction_weights": {"satisfied": 1, "basically_satisfied": 0.9, "unsatisfied": 0}
}
`

// edit replaces old, which must occur exactly once, with new.
func edit(t *testing.T, s, old, new string) string {
	t.Helper()
	if n := strings.Count(s, old); n != 1 {
		t.Fatalf("edit: %q occurs %d times, want once", old, n)
	}
	return strings.Replace(s, old, new, 1)
}

func TestLoadDirectoryBase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dir.json")
	if err := os.WriteFile(path, []byte(baseDirectory), 0o644); err != nil {
		t.Fatal(err)
	}
	dir, err := LoadDirectory(path)
	if err != nil {
		t.Fatalf("LoadDirectory: %v", err)
	}
	if c, ok := dir.Category("outfall-pipe"); !ok || c.Lead != "water-bureau" {
		t.Errorf("outfall-pipe: %+v", c)
	}
}

func TestLoadDirectoryErrors(t *testing.T) {
	cases := []struct {
		name     string
		old, new string // the edit to baseDirectory; both empty for raw
		raw      string // the whole file, when set
		path     string
		line     int // 0: no position expected
		col      int // 0: not checked
		problem  string
		cause    any // a pointer to a type errors.As must find, or nil
	}{
		{name: "syntax error: missing comma", old: `"version": "test-1",`, new: `"version": "test-1"`,
			path: "", line: 3, col: 3, problem: `invalid JSON: invalid character '"' after object key:value pair`},
		{name: "syntax error: trailing comma", old: `"name": "司法所"}],`, new: `"name": "司法所"},],`,
			line: 10, col: 46, problem: "invalid JSON: invalid character ']' looking for beginning of value"},
		{name: "truncated", raw: baseDirectory[:40], line: 4, col: 1, problem: "unexpected end of JSON input"},
		{name: "empty file", raw: "", line: 1, col: 1, problem: "unexpected end of JSON input"},
		{name: "trailing data", old: "\n}\n", new: "\n}\n{}\n", line: 26, col: 1, problem: "after top-level value"},
		{name: "byte order mark", raw: "\xef\xbb\xbf" + baseDirectory, path: "$", line: 1, col: 1, problem: "byte order mark"},
		{name: "invalid UTF-8", old: "龙桥街道", new: "龙桥\xff街道", line: 4, col: 35, problem: "invalid UTF-8 (byte 0xff)"},
		{name: "wrong type deep in the tree", old: `["putian-telecom"]`, new: `"putian-telecom"`,
			path: "$.streets[0].communities[1].units", line: 6, col: 55, problem: `want an array, got string "putian-telecom"`},
		{name: "number for a string", old: `"name": "莆田电信"`, new: `"name": 12`,
			path: "$.units[1].name", line: 13, problem: "want a string, got number 12"},
		{name: "string for a number", old: `"unsatisfied": 0`, new: `"unsatisfied": "0"`,
			path: "$.satisfaction_weights.unsatisfied", line: 24, problem: `want a number, got string "0"`},
		{name: "null", old: `"version": "test-1"`, new: `"version": null`,
			path: "$.version", line: 2, col: 14, problem: "null is not allowed"},
		{name: "unknown field", old: `"kind": "dispute",`, new: `"kind": "dispute", "urgnecy": "routine",`,
			path: "$.categories[1].urgnecy", line: 16, col: 68, problem: `unknown field "urgnecy" (known: id, name, kind, lead, assist)`},
		{name: "field in the wrong case", old: `"version"`, new: `"Version"`,
			path: "$.Version", line: 2, col: 3, problem: `unknown field "Version" (known: version,`},
		{name: "repeated key", old: `"version": "test-1",`, new: `"version": "test-1", "version": "test-2",`,
			path: "$.version", line: 2, col: 24, problem: `key "version" appears twice (first at line 2)`},
		{name: "unknown lead", old: `"lead": "water-bureau"`, new: `"lead": "water-burea"`,
			path: "$.categories[2].lead", line: 17, col: 69, problem: `unknown department or unit "water-burea"`,
			cause: new(*domain.DirectoryError)},
		{name: "unknown unit in a community", old: `["putian-telecom"]`, new: `["putian-telecom", "putian-telekom"]`,
			path: "$.streets[0].communities[1].units[1]", line: 6, problem: `unknown unit "putian-telekom"`},
		{name: "missing SLA", old: `
    "urgent": {"report_within": "15m", "resolve_within": "24h"},`, new: "",
			path: "$.sla.urgent", problem: "is required", cause: new(*domain.DirectoryError)},
		{name: "bad duration", old: `"report_within": "30m"`, new: `"report_within": "30 minutes"`,
			path: "$.sla.routine.report_within", line: 20, col: 34, problem: `invalid duration "30 minutes"`},
		{name: "duration as a number", old: `"after": "30m"`, new: `"after": 1800`,
			path: "$.escalation[1].after", line: 23, problem: `a duration is a string such as "30m", got 1800`},
		{name: "resolve before report", old: `"resolve_within": "2h"`, new: `"resolve_within": "2m"`,
			path: "$.sla.emergency.resolve_within", line: 22, problem: "must not be shorter than report_within (5m0s), got 2m0s"},
		{name: "duplicate id", old: `{"id": "putian-telecom", "name": "莆田电信"}`, new: `{"id": "putian-university", "name": "莆田电信"}`,
			path: "$.units[1].id", line: 13, problem: `"putian-university" is already used at $.units[0]`},
		{name: "duplicate community", old: `"id": "yanshou-creek"`, new: `"id": "wanhui"`,
			path: "$.streets[0].communities[1].id", line: 6, problem: `community "wanhui" appears twice in street "longqiao"`},
		{name: "unit twice in a community", old: `["putian-telecom"]`, new: `["putian-telecom", "putian-telecom"]`,
			path: "$.streets[0].communities[1].units[1]", line: 6, problem: `unit "putian-telecom" is already listed at units[0]`},
		{name: "assist twice", old: `"assist": ["water-bureau"]`, new: `"assist": ["water-bureau", "water-bureau"]`,
			path: "$.categories[0].assist[1]", line: 15, problem: `"water-bureau" is already listed at assist[0]`},
		{name: "bad id", old: `"id": "wanhui"`, new: `"id": "Wanhui"`,
			path: "$.streets[0].communities[0].id", line: 5, problem: `id "Wanhui" may hold only a-z, 0-9, '-' and '_'`},
		{name: "weight out of range", old: `"satisfied": 1,`, new: `"satisfied": 2,`,
			path: "$.satisfaction_weights.satisfied", line: 24, problem: "must be between 0 and 1, got 2"},
		{name: "need with a lead", old: `"kind": "need"`, new: `"kind": "need", "lead": "water-bureau"`,
			path: "$.categories[3]", line: 18, problem: "a need is offered to the community's units"},
		{name: "unknown kind", old: `"kind": "dispute"`, new: `"kind": "quarrel"`,
			path: "$.categories[1].kind", line: 16, problem: `unknown kind "quarrel"`},
		{name: "top level not an object", raw: `["version"]`, path: "$", line: 1, col: 1, problem: "want an object, got an array"},
		{name: "bad working days", old: `"report_within": "30m"`, new: `"report_within": "1.5wd"`,
			path: "$.sla.routine.report_within", line: 20, col: 34, problem: `invalid duration "1.5wd": want a whole number`},
		{name: "bad new SLA key", old: `"report_within": "15m",`, new: `"report_within": "15m", "stall_after": "0s",`,
			path: "$.sla.urgent.stall_after", line: 21, col: 55, problem: "must be positive"},
		{name: "unknown SLA key", old: `"report_within": "15m",`, new: `"report_within": "15m", "accept_in": "1wh",`,
			path: "$.sla.urgent.accept_in", line: 21, col: 40, problem: `unknown field "accept_in"`},
		{name: "unknown time zone", old: `"satisfaction_weights"`, new: `"calendar": {"time_zone": "Asia/Putian"},
  "satisfaction_weights"`, path: "$.calendar.time_zone", line: 24, col: 29, problem: `unknown time zone "Asia/Putian"`},
		{name: "bad holiday", old: `"satisfaction_weights"`, new: `"calendar": {"holidays": ["2026-10-01", "2026-13-01"]},
  "satisfaction_weights"`, path: "$.calendar.holidays[1]", line: 24, col: 43, problem: `invalid date "2026-13-01"`},
		{name: "district over an unknown street", old: `"satisfaction_weights"`, new: `"districts": [{"id": "chengxiang", "name": "城厢区", "streets": ["longqiao", "zhenhai"]}],
  "satisfaction_weights"`, path: "$.districts[0].streets[1]", line: 24, col: 77, problem: `unknown street "zhenhai"`},
		{name: "platform without an id", old: `"satisfaction_weights"`, new: `"platforms": [{"name": "12345"}],
  "satisfaction_weights"`, path: "$.platforms[0].id", line: 0, problem: "an id is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := tc.raw
			if tc.raw == "" && tc.old != "" {
				data = edit(t, baseDirectory, tc.old, tc.new)
			}
			path := filepath.Join(t.TempDir(), "etc", "dir.json")
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
			dir, err := LoadDirectory(path)
			if err == nil {
				t.Fatalf("LoadDirectory succeeded: %+v", dir)
			}
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T %v is not a *FileError", err, err)
			}
			if fe.Kind != "directory" || fe.File != path {
				t.Errorf("kind %q file %q, want directory %q", fe.Kind, fe.File, path)
			}
			if fe.Path != tc.path {
				t.Errorf("path %q, want %q (error: %v)", fe.Path, tc.path, err)
			}
			if fe.Line != tc.line || (tc.col != 0 && fe.Column != tc.col) || (tc.line == 0) != (fe.Column == 0) {
				t.Errorf("at %d:%d, want %d:%d (error: %v)", fe.Line, fe.Column, tc.line, tc.col, err)
			}
			if !strings.Contains(fe.Problem, tc.problem) {
				t.Errorf("problem %q, want it to hold %q", fe.Problem, tc.problem)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "directory "+path) || !strings.Contains(msg, tc.path+": "+fe.Problem) {
				t.Errorf("message %q does not name the file, the path and the problem", msg)
			}
			if tc.cause != nil && !errors.As(err, tc.cause) {
				t.Errorf("error %v does not unwrap to %T", err, tc.cause)
			}
		})
	}
}

func TestFileErrorMessage(t *testing.T) {
	e := &FileError{Kind: "directory", File: "/etc/whistle/dir.json", Path: "$.categories[2].lead",
		Problem: `unknown department or unit "water-burea"`}
	want := `directory /etc/whistle/dir.json: $.categories[2].lead: unknown department or unit "water-burea"`
	if e.Error() != want {
		t.Errorf("got  %s\nwant %s", e.Error(), want)
	}
	e.Line, e.Column = 17, 69
	want = `directory /etc/whistle/dir.json:17:69: $.categories[2].lead: unknown department or unit "water-burea"`
	if e.Error() != want {
		t.Errorf("got  %s\nwant %s", e.Error(), want)
	}
}

func TestLoadDirectoryMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.json")
	_, err := LoadDirectory(path)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("error %v does not match fs.ErrNotExist", err)
	}
	want := "directory " + path + ": cannot read: no such file or directory"
	if err.Error() != want {
		t.Errorf("got %q, want %q", err.Error(), want)
	}
}

// BenchmarkSampleDeadline is the cost of one deadline with the sample's
// calendar as whistled runs it (Asia/Shanghai loaded from tzdata, the 2026
// holidays), from 15:00 on the eve of National Day, across its 7 days off.
func BenchmarkSampleDeadline(b *testing.B) {
	dir, err := SampleDirectory()
	if err != nil {
		b.Fatal(err)
	}
	start := time.Date(2026, 9, 30, 7, 0, 0, 0, time.UTC)
	for _, s := range []string{"72h", "1wh", "8wh", "1wd", "3wd"} {
		d, err := domain.ParseSLADuration(s)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(s, func(b *testing.B) {
			for b.Loop() {
				_ = dir.Deadline(start, d)
			}
		})
	}
}
