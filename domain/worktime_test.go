package domain

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// cst is a wall-clock time in Asia/Shanghai (UTC+8, no DST since 1991).
func cst(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, shanghai)
	if err != nil {
		panic(err)
	}
	return t
}

// sla parses a duration a test knows to be valid.
func sla(s string) SLADuration {
	d, err := ParseSLADuration(s)
	if err != nil {
		panic(err)
	}
	return d
}

// calendar2026 is the default week with China's 2026 public holidays and
// make-up days (the sample directory's data, restated here so that the domain
// tests stand alone): 国庆 Oct 1–7 off, Sep 20 (Sun) and Oct 10 (Sat) work;
// 春节 Feb 15–23 off, Feb 14 (Sat) and Feb 28 (Sat) work.
func calendar2026(t testing.TB) *Calendar {
	t.Helper()
	c, err := NewCalendar(CalendarSpec{
		Holidays: []string{
			"2026-02-15", "2026-02-16", "2026-02-17", "2026-02-18", "2026-02-19", "2026-02-20", "2026-02-21", "2026-02-22", "2026-02-23",
			"2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04", "2026-10-05", "2026-10-06", "2026-10-07",
		},
		MakeUpDays: []string{"2026-02-14", "2026-02-28", "2026-09-20", "2026-10-10"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestParseSLADuration(t *testing.T) {
	for _, tt := range []struct {
		in, str string
		clock   time.Duration // 0: not clock time
	}{
		{"30m", "30m0s", 30 * time.Minute},
		{"72h", "72h0m0s", 72 * time.Hour},
		{"1h30m", "1h30m0s", 90 * time.Minute},
		{"1wh", "1wh", 0},
		{"8wh", "8wh", 0},
		{"2wd", "2wd", 0},
		{"2500wd", "2500wd", 0},
	} {
		d, err := ParseSLADuration(tt.in)
		if err != nil {
			t.Errorf("ParseSLADuration(%q): %v", tt.in, err)
			continue
		}
		if d.String() != tt.str {
			t.Errorf("ParseSLADuration(%q) = %s, want %s", tt.in, d, tt.str)
		}
		if c, ok := d.Clock(); ok != (tt.clock != 0) || c != tt.clock {
			t.Errorf("ParseSLADuration(%q).Clock() = %s, %v; want %s", tt.in, c, ok, tt.clock)
		}
		// The written form reads back as the same value.
		b, err := json.Marshal(d)
		var back SLADuration
		if err != nil || json.Unmarshal(b, &back) != nil || back != d {
			t.Errorf("%q: JSON %s, %v, read back as %v", tt.in, b, err, back)
		}
	}
	for _, tt := range []struct{ in, why string }{
		{"0s", "must be positive"},
		{"-1h", "must be positive"},
		{"0wh", "from 1 to 2500"},
		{"2501wh", "from 1 to 2500"},
		{"-1wd", "whole number"},
		{"+1wd", "whole number"},
		{"1.5wh", "whole number"},
		{"wd", "whole number"},
		{"1 wd", "whole number"},
		{"1WD", "Go duration"},
		{"soon", "Go duration"},
		{"", "Go duration"},
	} {
		d, err := ParseSLADuration(tt.in)
		if err == nil {
			t.Errorf("ParseSLADuration(%q) accepted %s", tt.in, d)
			continue
		}
		if !strings.Contains(err.Error(), tt.why) || !strings.Contains(err.Error(), `"`+tt.in+`"`) {
			t.Errorf("ParseSLADuration(%q): %v; want the value and %q", tt.in, err, tt.why)
		}
	}
	for _, bad := range []string{`30`, `null`, `"3 days"`} {
		var d SLADuration
		if err := json.Unmarshal([]byte(bad), &d); err == nil {
			t.Errorf("Unmarshal(%s) accepted %s", bad, d)
		}
	}
	if _, err := json.Marshal(SLADuration{}); err == nil {
		t.Error("an unset duration was written as JSON")
	}
}

func TestNewCalendarRefuses(t *testing.T) {
	for _, tt := range []struct {
		name string
		spec CalendarSpec
		loc  *time.Location
		path string
		why  string
	}{
		{"unknown day", CalendarSpec{WorkDays: []string{"mon", "funday"}}, nil, "$.calendar.work_days[1]", `unknown day "funday"`},
		{"day twice", CalendarSpec{WorkDays: []string{"mon", "mon"}}, nil, "$.calendar.work_days[1]", "appears twice"},
		{"hours without a dash", CalendarSpec{WorkHours: []string{"08:30"}}, nil, "$.calendar.work_hours[0]", "HH:MM-HH:MM"},
		{"minutes out of range", CalendarSpec{WorkHours: []string{"08:60-12:00"}}, nil, "$.calendar.work_hours[0]", "HH:MM-HH:MM"},
		{"past midnight", CalendarSpec{WorkHours: []string{"08:00-24:30"}}, nil, "$.calendar.work_hours[0]", "HH:MM-HH:MM"},
		{"ends before it starts", CalendarSpec{WorkHours: []string{"12:00-08:30"}}, nil, "$.calendar.work_hours[0]", "end before they start"},
		{"overlapping periods", CalendarSpec{WorkHours: []string{"08:30-12:00", "11:00-17:30"}}, nil, "$.calendar.work_hours[1]", "starts before the previous"},
		{"bad holiday", CalendarSpec{Holidays: []string{"2026-02-30"}}, nil, "$.calendar.holidays[0]", `invalid date "2026-02-30"`},
		{"holiday twice", CalendarSpec{Holidays: []string{"2026-10-01", "2026-10-01"}}, nil, "$.calendar.holidays[1]", "already listed at $.calendar.holidays[0]"},
		{"holiday and make-up day", CalendarSpec{Holidays: []string{"2026-10-10"}, MakeUpDays: []string{"2026-10-10"}}, nil,
			"$.calendar.make_up_days[0]", "already listed at $.calendar.holidays[0]"},
		{"zone not loaded", CalendarSpec{TimeZone: "Europe/Berlin"}, nil, "$.calendar.time_zone", "was not loaded"},
		{"zone loaded wrong", CalendarSpec{TimeZone: "Europe/Berlin"}, time.UTC, "$.calendar.time_zone", `given the location "UTC"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewCalendar(tt.spec, tt.loc)
			var de *DirectoryError
			if !errors.As(err, &de) {
				t.Fatalf("NewCalendar = %v, %v; want a *DirectoryError", c, err)
			}
			if de.Path != tt.path || !strings.Contains(de.Problem, tt.why) {
				t.Errorf("error %v; want %s: …%s…", err, tt.path, tt.why)
			}
		})
	}
}

func TestDeadlineTable(t *testing.T) {
	plain := DefaultCalendar()
	y2026 := calendar2026(t)
	for _, tt := range []struct {
		name  string
		cal   *Calendar
		start time.Time
		d     string
		want  time.Time
	}{
		{"clock time ignores the calendar", plain, cst("2026-12-05 23:00"), "72h", cst("2026-12-08 23:00")},
		{"an hour inside the morning", plain, cst("2026-12-07 09:00"), "1wh", cst("2026-12-07 10:00")},
		{"lunch does not count", plain, cst("2026-12-07 11:30"), "1wh", cst("2026-12-07 14:30")},
		{"started at lunch", plain, cst("2026-12-07 12:30"), "1wh", cst("2026-12-07 15:00")},
		{"started before work", plain, cst("2026-12-07 07:00"), "1wh", cst("2026-12-07 09:30")},
		{"a whole working day ends at 17:30 sharp", plain, cst("2026-12-07 08:30"), "7wh", cst("2026-12-07 17:30")},
		{"an eighth hour spills into the next day", plain, cst("2026-12-07 08:30"), "8wh", cst("2026-12-08 09:30")},
		{"Friday evening to Monday", plain, cst("2026-12-04 17:00"), "1wh", cst("2026-12-07 09:00")},
		{"started on Saturday", plain, cst("2026-12-05 10:00"), "1wh", cst("2026-12-07 09:30")},
		{"started at the end of work", plain, cst("2026-12-07 17:30"), "1wh", cst("2026-12-08 09:30")},
		{"1wd ends with the next working day", plain, cst("2026-12-07 10:00"), "1wd", cst("2026-12-08 17:30")},
		{"1wd from before work still skips today", plain, cst("2026-12-07 06:00"), "1wd", cst("2026-12-08 17:30")},
		{"1wd from Friday", plain, cst("2026-12-04 10:00"), "1wd", cst("2026-12-07 17:30")},
		{"1wd from Saturday", plain, cst("2026-12-05 10:00"), "1wd", cst("2026-12-07 17:30")},
		{"2wd from Thursday", plain, cst("2026-12-03 16:00"), "2wd", cst("2026-12-07 17:30")},
		{"no holidays without a calendar", plain, cst("2026-09-30 10:00"), "1wd", cst("2026-10-01 17:30")},
		{"National Day is skipped (wd)", y2026, cst("2026-09-30 10:00"), "1wd", cst("2026-10-08 17:30")},
		{"National Day is skipped (wh)", y2026, cst("2026-09-30 17:00"), "1wh", cst("2026-10-08 09:00")},
		{"the make-up Saturday counts (wd)", y2026, cst("2026-10-09 10:00"), "1wd", cst("2026-10-10 17:30")},
		{"the make-up Saturday counts (wh)", y2026, cst("2026-10-09 17:00"), "1wh", cst("2026-10-10 09:00")},
		{"the make-up Sunday counts", y2026, cst("2026-09-19 10:00"), "1wd", cst("2026-09-20 17:30")},
		{"Spring Festival: make-up Saturday then nine days off", y2026, cst("2026-02-13 10:00"), "2wd", cst("2026-02-24 17:30")},
		{"Spring Festival: 8wh from the make-up Saturday", y2026, cst("2026-02-14 17:00"), "8wh", cst("2026-02-25 09:00")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.cal.Deadline(tt.start.UTC(), sla(tt.d))
			if !got.Equal(tt.want) {
				t.Errorf("Deadline(%s, %s) = %s, want %s", tt.start, tt.d, got.In(shanghai), tt.want)
			}
			if got.Location() != time.UTC {
				t.Errorf("Deadline answered in %s, want the start's location (UTC)", got.Location())
			}
		})
	}
}

// TestDeadlineProperties checks, over random starts of 2026 and 2027 (fixed
// seed) and random lengths, what every deadline must satisfy.
func TestDeadlineProperties(t *testing.T) {
	cal := calendar2026(t)
	rng := rand.New(rand.NewPCG(12, 2026))
	origin := cst("2026-01-01 00:00")
	randomStart := func() time.Time {
		return origin.Add(time.Duration(rng.IntN(2*365*24*60)) * time.Minute).UTC()
	}
	for range 400 {
		start := randomStart()
		n := 1 + rng.IntN(30)
		wh, _ := WorkingHours(n)
		wd, _ := WorkingDays(n)

		due := cal.Deadline(start, wh)
		if !cal.InWorkTime(due) {
			t.Fatalf("%dwh from %s lands outside work time: %s", n, start.In(shanghai), due.In(shanghai))
		}
		if !due.After(start) {
			t.Fatalf("%dwh from %s is not after the start: %s", n, start.In(shanghai), due.In(shanghai))
		}
		// Adding working time is monotonic: in the length and in the start.
		if more, _ := WorkingHours(n + 1); !cal.Deadline(start, more).After(due) {
			t.Fatalf("%dwh from %s does not end after %dwh", n+1, start.In(shanghai), n)
		}
		later := start.Add(time.Duration(rng.IntN(3*24*60)) * time.Minute)
		if cal.Deadline(later, wh).Before(due) {
			t.Fatalf("%dwh from %s ends before %dwh from the earlier %s", n, later.In(shanghai), n, start.In(shanghai))
		}

		dueDays := cal.Deadline(start, wd)
		if !cal.IsWorkingDay(dueDays) || !cal.InWorkTime(dueDays) || cal.InWorkTime(dueDays.Add(time.Minute)) {
			t.Fatalf("%dwd from %s is not the end of a working day's work: %s", n, start.In(shanghai), dueDays.In(shanghai))
		}
		// Exactly n working days lie after the start's day, up to the deadline's.
		count := 0
		for day := cal.DayStart(start).AddDate(0, 0, 1); !day.After(dueDays); day = day.AddDate(0, 0, 1) {
			if cal.IsWorkingDay(day) {
				count++
			}
		}
		if count != n {
			t.Fatalf("%dwd from %s ends on %s, after %d working days", n, start.In(shanghai), dueDays.In(shanghai), count)
		}
		if more, _ := WorkingDays(n + 1); !cal.Deadline(start, more).After(dueDays) {
			t.Fatalf("%dwd from %s does not end after %dwd", n+1, start.In(shanghai), n)
		}
	}
}

// TestWorkingHoursCountOnlyWorkTime checks wh against a slow, independent
// count: minute by minute, only minutes inside work time count.
func TestWorkingHoursCountOnlyWorkTime(t *testing.T) {
	cal := calendar2026(t)
	rng := rand.New(rand.NewPCG(7, 12345))
	origin := cst("2026-09-15 00:00")
	for range 40 {
		start := origin.Add(time.Duration(rng.IntN(40*24*60)) * time.Minute)
		n := 1 + rng.IntN(9)
		wh, _ := WorkingHours(n)
		want, minutes := start, 0
		for minutes < n*60 {
			if cal.InWorkTime(want) && cal.InWorkTime(want.Add(time.Minute)) {
				minutes++
			}
			want = want.Add(time.Minute)
		}
		if got := cal.Deadline(start, wh); !got.Equal(want) {
			t.Errorf("%dwh from %s = %s, counted %s", n, start, got.In(shanghai), want)
		}
	}
}

func TestHolidaysAndMakeUpDays(t *testing.T) {
	cal := calendar2026(t)
	for _, day := range []string{"2026-10-01", "2026-10-05", "2026-10-07", "2026-02-16", "2026-02-23"} {
		at := cst(day + " 10:00")
		if cal.IsWorkingDay(at) || cal.InWorkTime(at) {
			t.Errorf("holiday %s counts as working", day)
		}
	}
	for _, day := range []string{"2026-02-14", "2026-02-28", "2026-09-20", "2026-10-10"} {
		if !cal.IsWorkingDay(cst(day+" 10:00")) || !cal.InWorkTime(cst(day+" 10:00")) || cal.InWorkTime(cst(day+" 13:00")) {
			t.Errorf("make-up day %s does not work the usual hours", day)
		}
	}
	// A holiday is never a working day, even one listed on a weekly work day;
	// a make-up day always is, even on a Sunday.
	if !cal.IsWorkingDay(cst("2026-10-08 10:00")) || cal.IsWorkingDay(cst("2026-10-11 10:00")) {
		t.Error("the days after National Day are wrong")
	}
}

func TestCalendarTimeZone(t *testing.T) {
	moscow := time.FixedZone("Europe/Moscow", 3*60*60) // UTC+3 all year since 2014
	c, err := NewCalendar(CalendarSpec{TimeZone: "Europe/Moscow", WorkDays: []string{"sun", "mon", "tue", "wed", "thu"},
		WorkHours: []string{"09:00-18:00"}}, moscow)
	if err != nil {
		t.Fatal(err)
	}
	// Thursday 17:00 Moscow is 14:00 UTC; two working hours go on to Sunday 10:00.
	start := time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)
	want := time.Date(2026, 12, 6, 10, 0, 0, 0, moscow)
	if got := c.Deadline(start, sla("2wh")); !got.Equal(want) {
		t.Errorf("2wh = %s, want %s", got.In(moscow), want)
	}
	if got := c.DayStart(start); !got.Equal(time.Date(2026, 12, 3, 0, 0, 0, 0, moscow)) {
		t.Errorf("DayStart = %s", got)
	}
	if DefaultCalendar().Location().String() != DefaultTimeZone {
		t.Errorf("default zone %s", DefaultCalendar().Location())
	}
}

// BenchmarkDeadline is the cost of one deadline, across a holiday where the
// calendar has one (National Day, 2026-10-01..07).
func BenchmarkDeadline(b *testing.B) {
	cal := calendar2026(b)
	start := cst("2026-09-30 15:00").UTC()
	for _, d := range []string{"72h", "1wh", "8wh", "1wd", "3wd"} {
		dur := sla(d)
		b.Run(d, func(b *testing.B) {
			for b.Loop() {
				_ = cal.Deadline(start, dur)
			}
		})
	}
}

// TestDecideCountsDeadlinesInTheCalendar: raise, route and claim take their
// deadlines from the directory's calendar, here across National Day.
func TestDecideCountsDeadlinesInTheCalendar(t *testing.T) {
	dir := newTestDirectory()
	dir.Calendar = &CalendarSpec{Holidays: []string{"2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04", "2026-10-05", "2026-10-06", "2026-10-07"}}
	dir.SLA["routine"] = SLA{ReportWithin: sla("1wh"), ResolveWithin: sla("2wd")}
	if err := dir.Validate(); err != nil {
		t.Fatal(err)
	}
	reportBy, resolveBy := cst("2026-10-08 09:00").UTC(), cst("2026-10-09 17:30").UTC()
	check := func(what string, got, want time.Time) {
		t.Helper()
		if !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("%s = %s, want %s", what, got, want)
		}
	}

	h := newHarnessWith(t, dir)
	h.now = cst("2026-09-30 17:00")
	events := h.must(street, raiseOf(catIssue, UrgencyRoutine))
	made := events[1].(AssignmentMade)
	check("raise: report_by", made.ReportBy, reportBy)
	check("raise: resolve_by", made.ResolveBy, resolveBy)

	routed := h.must(street, Route{Assist: []string{"urban-management"}})
	made = routed[len(routed)-1].(AssignmentMade)
	check("route: report_by", made.ReportBy, reportBy)
	check("route: resolve_by", made.ResolveBy, resolveBy)

	need := newHarnessWith(t, dir)
	need.now = cst("2026-09-30 17:00")
	need.must(street, raiseOf(catNeed, UrgencyRoutine))
	claimed := need.must(school, Claim{Assignee: "no1-middle-school"})
	check("claim: resolve_by", claimed[0].(NeedClaimed).ResolveBy, resolveBy)
}
