package domain

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// The sample directory of DESIGN.md, verbatim.
const designSample = `{
  "version": "sample-1",
  "streets": [{"id": "longqiao", "name": "龙桥街道", "communities": [
      {"id": "wanhui", "name": "万辉社区", "units": ["putian-university"]}]}],
  "departments": [{"id": "ecology-bureau", "name": "生态环境局"}, {"id": "water-bureau", "name": "水利局"},
                  {"id": "judicial-office", "name": "司法所"}],
  "units": [{"id": "putian-university", "name": "莆田学院"}],
  "categories": [
    {"id": "river-pollution", "name": "河道污染", "kind": "issue", "lead": "ecology-bureau", "assist": ["water-bureau"]},
    {"id": "neighbour-dispute", "name": "邻里纠纷", "kind": "dispute", "lead": "judicial-office"},
    {"id": "after-school-care", "name": "四点半课堂", "kind": "need"}],
  "sla": {"routine": {"report_within": "30m", "resolve_within": "72h"},
          "urgent": {"report_within": "15m", "resolve_within": "24h"},
          "emergency": {"report_within": "5m", "resolve_within": "2h"}},
  "escalation": [{"level": "district", "after": "0s"}, {"level": "city", "after": "30m"}],
  "satisfaction_weights": {"satisfied": 1, "basically_satisfied": 0.9, "unsatisfied": 0}
}`

func TestDesignSampleDirectoryValidates(t *testing.T) {
	var d Directory
	if err := json.Unmarshal([]byte(designSample), &d); err != nil {
		t.Fatalf("unmarshal sample: %v", err)
	}
	if err := d.Validate(); err != nil {
		t.Fatalf("sample does not validate: %v", err)
	}
	if got := time.Duration(d.SLAFor(UrgencyRoutine).ReportWithin); got != 30*time.Minute {
		t.Errorf("routine report_within = %s, want 30m", got)
	}
	if got := time.Duration(d.SLAFor(UrgencyEmergency).ResolveWithin); got != 2*time.Hour {
		t.Errorf("emergency resolve_within = %s, want 2h", got)
	}
	if got := time.Duration(d.Escalation[1].After); got != 30*time.Minute || d.Escalation[1].Level != "city" {
		t.Errorf("second rung = %+v, want city after 30m", d.Escalation[1])
	}
	if w := d.Weight(RatingBasicallySatisfied); w != 0.9 {
		t.Errorf("weight of basically_satisfied = %v, want 0.9", w)
	}
	if c, ok := d.Category("neighbour-dispute"); !ok || c.Kind != KindDispute || c.Lead != "judicial-office" {
		t.Errorf("Category(neighbour-dispute) = %+v, %v", c, ok)
	}
	if com, ok := d.Community("longqiao", "wanhui"); !ok || len(com.Units) != 1 {
		t.Errorf("Community(longqiao, wanhui) = %+v, %v", com, ok)
	}
	if !d.IsDepartment("water-bureau") || d.IsUnit("water-bureau") || !d.IsUnit("putian-university") ||
		!d.IsAssignee("putian-university") || d.IsAssignee("longqiao") {
		t.Error("department / unit look-ups are wrong")
	}
	if _, ok := d.Street("nowhere"); ok {
		t.Error("Street(nowhere) found a street")
	}
	if _, ok := d.Community("longqiao", "xindu-centre"); ok {
		t.Error("a community of no such street was found")
	}
}

func TestDurationJSON(t *testing.T) {
	b, err := json.Marshal(Duration(90 * time.Minute))
	if err != nil || string(b) != `"1h30m0s"` {
		t.Fatalf("Marshal(90m) = %s, %v", b, err)
	}
	var d Duration
	if err := json.Unmarshal([]byte(`"72h"`), &d); err != nil || time.Duration(d) != 72*time.Hour {
		t.Fatalf("Unmarshal(72h) = %s, %v", time.Duration(d), err)
	}
	for _, bad := range []string{`30`, `"soon"`, `null`} {
		var d Duration
		if err := json.Unmarshal([]byte(bad), &d); err == nil {
			t.Errorf("Unmarshal(%s) accepted %s", bad, time.Duration(d))
		}
	}
}

func TestDirectoryValidateFindsProblems(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(d *Directory)
		path  string
		about string
	}{
		{"no version", func(d *Directory) { d.Version = "" }, "$.version", "required"},
		{"bad department id", func(d *Directory) { d.Departments[1].ID = "Water Bureau" }, "$.departments[1].id", "may hold only"},
		{"unit id reused by a department", func(d *Directory) { d.Units[0].ID = "ecology-bureau" }, "$.units[0].id", "already used"},
		{"no streets", func(d *Directory) { d.Streets = nil }, "$.streets", "at least one street"},
		{"street twice", func(d *Directory) { d.Streets[1].ID = "longqiao" }, "$.streets[1].id", "appears twice"},
		{"street without communities", func(d *Directory) { d.Streets[1].Communities = nil }, "$.streets[1].communities", "at least one community"},
		{"unknown unit in community", func(d *Directory) { d.Streets[0].Communities[0].Units[1] = "zoo" },
			"$.streets[0].communities[0].units[1]", `unknown unit "zoo"`},
		{"category twice", func(d *Directory) { d.Categories[3].ID = catIssue }, "$.categories[3].id", "appears twice"},
		{"unknown kind", func(d *Directory) { d.Categories[0].Kind = "complaint" }, "$.categories[0].kind", "unknown kind"},
		{"need with a lead", func(d *Directory) { d.Categories[2].Lead = "ecology-bureau" }, "$.categories[2]", "takes no lead"},
		{"issue without a lead", func(d *Directory) { d.Categories[1].Lead = "" }, "$.categories[1].lead", "needs a lead"},
		{"unknown lead", func(d *Directory) { d.Categories[0].Lead = "fire-brigade" }, "$.categories[0].lead", `"fire-brigade"`},
		{"unknown assist", func(d *Directory) { d.Categories[3].Assist[1] = "zoo" }, "$.categories[3].assist[1]", `"zoo"`},
		{"assist is the lead", func(d *Directory) { d.Categories[0].Assist[0] = "ecology-bureau" }, "$.categories[0].assist[0]", "already the lead"},
		{"urgency missing", func(d *Directory) { delete(d.SLA, "emergency") }, "$.sla.emergency", "required"},
		{"unknown urgency", func(d *Directory) { d.SLA["whenever"] = d.SLA["routine"] }, "$.sla.whenever", "unknown urgency"},
		{"no report time", func(d *Directory) { d.SLA["urgent"] = SLA{ResolveWithin: Duration(time.Hour)} }, "$.sla.urgent.report_within", "positive"},
		{"resolve before report", func(d *Directory) {
			d.SLA["routine"] = SLA{ReportWithin: Duration(time.Hour), ResolveWithin: Duration(time.Minute)}
		}, "$.sla.routine.resolve_within", "not be shorter"},
		{"ladder not increasing", func(d *Directory) { d.Escalation[1].After = 0 }, "$.escalation[1].after", "later than the previous"},
		{"ladder level twice", func(d *Directory) { d.Escalation[1].Level = "district" }, "$.escalation[1].level", "appears twice"},
		{"negative after", func(d *Directory) { d.Escalation[0].After = Duration(-time.Second) }, "$.escalation[0].after", "at least 0"},
		{"weight missing", func(d *Directory) { delete(d.SatisfactionWeights, "unsatisfied") }, "$.satisfaction_weights.unsatisfied", "required"},
		{"weight above 1", func(d *Directory) { d.SatisfactionWeights["satisfied"] = 1.5 }, "$.satisfaction_weights.satisfied", "between 0 and 1"},
		{"unknown rating", func(d *Directory) { d.SatisfactionWeights["thrilled"] = 1 }, "$.satisfaction_weights.thrilled", "unknown rating"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newTestDirectory()
			tt.edit(d)
			err := d.Validate()
			var de *DirectoryError
			if !errors.As(err, &de) {
				t.Fatalf("Validate = %v, want a *DirectoryError", err)
			}
			if de.Path != tt.path || !strings.Contains(de.Problem, tt.about) {
				t.Fatalf("Validate = %q at %q, want %q at %q", de.Problem, de.Path, tt.about, tt.path)
			}
			if !strings.HasPrefix(err.Error(), tt.path+": ") {
				t.Fatalf("error %q does not start with its path", err)
			}
		})
	}
}

func TestDirectoryUsedBeforeValidatePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("a look-up on an unvalidated directory did not panic")
		}
	}()
	newTestDirectory().IsAssignee("ecology-bureau")
}
