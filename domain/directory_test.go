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
	if got := d.SLAFor(UrgencyRoutine).ReportWithin; got != clock(30*time.Minute) {
		t.Errorf("routine report_within = %s, want 30m", got)
	}
	if got := d.SLAFor(UrgencyEmergency).ResolveWithin; got != clock(2*time.Hour) {
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
		{"no report time", func(d *Directory) { d.SLA["urgent"] = SLA{ResolveWithin: clock(time.Hour)} }, "$.sla.urgent.report_within", "positive"},
		{"resolve before report", func(d *Directory) {
			d.SLA["routine"] = SLA{ReportWithin: clock(time.Hour), ResolveWithin: clock(time.Minute)}
		}, "$.sla.routine.resolve_within", "not be shorter"},
		{"ladder not increasing", func(d *Directory) { d.Escalation[1].After = 0 }, "$.escalation[1].after", "later than the previous"},
		{"ladder level twice", func(d *Directory) { d.Escalation[1].Level = "district" }, "$.escalation[1].level", "appears twice"},
		{"negative after", func(d *Directory) { d.Escalation[0].After = Duration(-time.Second) }, "$.escalation[0].after", "at least 0"},
		{"weight missing", func(d *Directory) { delete(d.SatisfactionWeights, "unsatisfied") }, "$.satisfaction_weights.unsatisfied", "required"},
		{"weight above 1", func(d *Directory) { d.SatisfactionWeights["satisfied"] = 1.5 }, "$.satisfaction_weights.satisfied", "between 0 and 1"},
		{"unknown rating", func(d *Directory) { d.SatisfactionWeights["thrilled"] = 1 }, "$.satisfaction_weights.thrilled", "unknown rating"},
		{"district over an unknown street", func(d *Directory) { d.Districts[0].Streets = []string{"longqiao", "nowhere"} },
			"$.districts[0].streets[1]", `unknown street "nowhere"`},
		{"street under two districts", func(d *Directory) {
			d.Districts = append(d.Districts, District{ID: "licheng", Name: "荔城区", Streets: []string{"xindu", "longqiao"}})
		}, "$.districts[1].streets[1]", `already under district "chengxiang"`},
		{"district twice", func(d *Directory) {
			d.Districts = append(d.Districts, District{ID: "chengxiang", Streets: []string{"xindu"}})
		}, "$.districts[1].id", "appears twice"},
		{"district without streets", func(d *Directory) { d.Districts[0].Streets = nil }, "$.districts[0].streets", "at least one street"},
		{"bad platform id", func(d *Directory) { d.Platforms[0].ID = "Hotline 12345" }, "$.platforms[0].id", "may hold only"},
		{"platform twice", func(d *Directory) { d.Platforms = append(d.Platforms, d.Platforms[0]) }, "$.platforms[1].id", "appears twice"},
		{"bad calendar", func(d *Directory) { d.Calendar = &CalendarSpec{WorkDays: []string{"monday"}} }, "$.calendar.work_days[0]", `unknown day "monday"`},
		{"calendar zone not loaded", func(d *Directory) { d.Calendar = &CalendarSpec{TimeZone: "Asia/Urumqi"} }, "$.calendar.time_zone", "not loaded"},
		{"no resolve time", func(d *Directory) { d.SLA["urgent"] = SLA{ReportWithin: clock(time.Hour)} }, "$.sla.urgent.resolve_within", "required"},
		// 8 working hours from Monday 17:29 end on Wednesday; 1wd ends on Tuesday.
		{"working days shorter than working hours", func(d *Directory) {
			d.SLA["routine"] = SLA{ReportWithin: sla("8wh"), ResolveWithin: sla("1wd")}
		}, "$.sla.routine.resolve_within", "not be shorter than report_within (8wh), got 1wd"},
		{"working hours shorter than clock time", func(d *Directory) {
			d.SLA["routine"] = SLA{ReportWithin: clock(2 * time.Hour), ResolveWithin: sla("1wh")}
		}, "$.sla.routine.resolve_within", "not be shorter"},
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

func TestDirectorySLADefaultsAndWorkingTime(t *testing.T) {
	d := newTestDirectory()
	d.SLA["urgent"] = SLA{ReportWithin: sla("1wh"), ResolveWithin: sla("3wd"), AcceptWithin: sla("30m"), StallAfter: sla("1wd")}
	if err := d.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	routine, urgent := d.SLAFor(UrgencyRoutine), d.SLAFor(UrgencyUrgent)
	for _, tt := range []struct {
		name      string
		got, want SLADuration
	}{
		{"routine accept_within (default)", routine.AcceptWithin, sla("1wh")},
		{"routine rule_within (default)", routine.RuleWithin, sla("1wd")},
		{"routine arrive_within (default)", routine.ArriveWithin, sla("30m")},
		{"routine stall_after (default)", routine.StallAfter, sla("2wd")},
		{"routine second_round_within (default)", routine.SecondRoundWithin, sla("3wd")},
		{"urgent accept_within (given)", urgent.AcceptWithin, sla("30m")},
		{"urgent stall_after (given)", urgent.StallAfter, sla("1wd")},
		{"urgent rule_within (default)", urgent.RuleWithin, sla("1wd")},
		{"urgent report_within", urgent.ReportWithin, sla("1wh")},
	} {
		if tt.got != tt.want {
			t.Errorf("%s = %s, want %s", tt.name, tt.got, tt.want)
		}
	}
	if di, ok := d.DistrictOf("longqiao"); !ok || di != "chengxiang" {
		t.Errorf("DistrictOf(longqiao) = %q, %v", di, ok)
	}
	if _, ok := d.DistrictOf("xindu"); ok {
		t.Error("xindu has a district")
	}
	if _, ok := d.District("chengxiang"); !ok || !d.IsPlatform("hotline-12345") || d.IsPlatform("longqiao") {
		t.Error("district or platform look-ups are wrong")
	}
	if d.WorkCalendar().Location().String() != DefaultTimeZone {
		t.Errorf("calendar zone %s, want the default", d.WorkCalendar().Location())
	}
	// The directory's deadlines are its calendar's: Friday 17:00 + 1wh is Monday 09:00.
	if got, want := d.Deadline(cst("2026-12-04 17:00"), urgent.ReportWithin), cst("2026-12-07 09:00"); !got.Equal(want) {
		t.Errorf("Deadline = %s, want %s", got, want)
	}
}
