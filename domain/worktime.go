package domain

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultTimeZone is the calendar's time zone when a directory names none.
const DefaultTimeZone = "Asia/Shanghai"

// shanghai is Asia/Shanghai without tzdata: China has kept UTC+8 without
// daylight saving time since 1991, so for every date whistle handles this
// fixed zone and the tzdata one agree. It lets the domain build its default
// calendar without reading files; the config loader passes the loaded zone.
var shanghai = time.FixedZone(DefaultTimeZone, 8*60*60)

// slaUnit is how an SLADuration counts time. The zero value is unset, so
// that a key left out of a directory gets its default and an explicit "0s"
// is refused rather than silently replaced.
type slaUnit uint8

const (
	unitUnset slaUnit = iota
	unitClock
	unitWorkHours
	unitWorkDays
)

// SLADuration is a deadline's length: clock time ("30m", "72h"), working
// hours ("8wh": only time inside the work hours of working days counts) or
// working days ("2wd": the end of the last work period of the second working
// day after the day the clock starts). Build one with ParseSLADuration,
// ClockTime, WorkingHours or WorkingDays; the zero value is unset.
type SLADuration struct {
	unit  slaUnit
	clock time.Duration // unitClock
	n     int           // unitWorkHours, unitWorkDays
}

// maxWorkUnits bounds "<n>wh" and "<n>wd" so that a deadline's computation
// stays short whatever a directory says: ten years of working days.
const maxWorkUnits = 2500

// ClockTime is a deadline of d of clock time, which must be positive.
func ClockTime(d time.Duration) (SLADuration, error) {
	if d <= 0 {
		return SLADuration{}, fmt.Errorf("a deadline must be positive, got %s", d)
	}
	return SLADuration{unit: unitClock, clock: d}, nil
}

// WorkingHours is a deadline of n working hours, 1 ≤ n ≤ 2500.
func WorkingHours(n int) (SLADuration, error) {
	if n < 1 || n > maxWorkUnits {
		return SLADuration{}, fmt.Errorf("working hours must be from 1 to %d, got %d", maxWorkUnits, n)
	}
	return SLADuration{unit: unitWorkHours, n: n}, nil
}

// WorkingDays is a deadline of n working days, 1 ≤ n ≤ 2500.
func WorkingDays(n int) (SLADuration, error) {
	if n < 1 || n > maxWorkUnits {
		return SLADuration{}, fmt.Errorf("working days must be from 1 to %d, got %d", maxWorkUnits, n)
	}
	return SLADuration{unit: unitWorkDays, n: n}, nil
}

// ParseSLADuration reads a positive Go duration ("30m"), "<n>wh" or "<n>wd".
func ParseSLADuration(s string) (SLADuration, error) {
	var d SLADuration
	var err error
	if digits, ok := strings.CutSuffix(s, "wh"); ok {
		d, err = parseWorkUnits(digits, WorkingHours)
	} else if digits, ok := strings.CutSuffix(s, "wd"); ok {
		d, err = parseWorkUnits(digits, WorkingDays)
	} else if clock, perr := time.ParseDuration(s); perr != nil {
		err = fmt.Errorf("want a Go duration such as \"30m\", or working hours or days such as \"8wh\", \"2wd\"")
	} else {
		d, err = ClockTime(clock)
	}
	if err != nil {
		return SLADuration{}, fmt.Errorf("invalid duration %q: %v", s, err)
	}
	return d, nil
}

// parseWorkUnits reads the whole number before "wh" or "wd".
func parseWorkUnits(digits string, build func(int) (SLADuration, error)) (SLADuration, error) {
	n, err := strconv.Atoi(digits)
	if err != nil || digits == "" || digits[0] < '0' || digits[0] > '9' {
		return SLADuration{}, fmt.Errorf("want a whole number of working hours or days, as in \"8wh\" or \"2wd\"")
	}
	return build(n)
}

// IsZero tells whether the duration is unset.
func (d SLADuration) IsZero() bool { return d.unit == unitUnset }

// Clock returns the clock time of a clock-time duration; ok is false for
// working hours, working days and unset.
func (d SLADuration) Clock() (time.Duration, bool) { return d.clock, d.unit == unitClock }

func (d SLADuration) String() string {
	switch d.unit {
	case unitClock:
		return d.clock.String()
	case unitWorkHours:
		return strconv.Itoa(d.n) + "wh"
	case unitWorkDays:
		return strconv.Itoa(d.n) + "wd"
	}
	return "unset"
}

// MarshalJSON writes the duration as ParseSLADuration reads it.
func (d SLADuration) MarshalJSON() ([]byte, error) {
	if d.IsZero() {
		return nil, fmt.Errorf("domain: an unset SLA duration has no JSON form")
	}
	return json.Marshal(d.String())
}

// UnmarshalJSON reads what ParseSLADuration reads.
func (d *SLADuration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("an SLA duration is a string such as \"30m\", \"8wh\" or \"2wd\", got %s", b)
	}
	v, err := ParseSLADuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// CalendarSpec is the directory's "calendar" entry as written. Dates are
// "2006-01-02" in the calendar's time zone; work hours are "08:30-12:00".
type CalendarSpec struct {
	TimeZone   string   `json:"time_zone,omitempty"`
	WorkDays   []string `json:"work_days,omitempty"`
	WorkHours  []string `json:"work_hours,omitempty"`
	Holidays   []string `json:"holidays,omitempty"`
	MakeUpDays []string `json:"make_up_days,omitempty"`
}

// Calendar says when a street office works: which days (the weekly work
// days, minus holidays, plus make-up days) and which hours, in which time
// zone. Build one with NewCalendar or DefaultCalendar; it is immutable and
// safe for concurrent use.
type Calendar struct {
	loc      *time.Location
	workDays [7]bool // by time.Weekday
	periods  []workPeriod
	holidays map[civilDate]bool
	makeUp   map[civilDate]bool
}

// workPeriod is a span of one day's work hours, in minutes from midnight.
type workPeriod struct{ from, to int }

// civilDate is a day of the calendar's time zone.
type civilDate struct {
	year  int
	month time.Month
	day   int
}

var weekdayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// DefaultCalendar is the calendar of a directory without one: Asia/Shanghai,
// Monday to Friday, 08:30-12:00 and 14:00-17:30, no holidays.
func DefaultCalendar() *Calendar {
	c, err := NewCalendar(CalendarSpec{}, shanghai)
	if err != nil {
		panic("domain: the default calendar is invalid: " + err.Error())
	}
	return c
}

// NewCalendar checks a calendar entry and builds it. loc is its time zone,
// loaded by the caller (loading reads tzdata, which the domain does not do):
// it must be named as spec.TimeZone (DefaultTimeZone when that is empty); a
// nil loc is allowed for DefaultTimeZone only. Missing work days and hours
// take the defaults. Errors are *DirectoryError with paths under
// "$.calendar".
func NewCalendar(spec CalendarSpec, loc *time.Location) (*Calendar, error) {
	bad := func(path, format string, args ...any) error {
		return &DirectoryError{Path: "$.calendar" + path, Problem: fmt.Sprintf(format, args...)}
	}
	zone := spec.TimeZone
	if zone == "" {
		zone = DefaultTimeZone
	}
	switch {
	case loc == nil && zone == DefaultTimeZone:
		loc = shanghai
	case loc == nil:
		return nil, bad(".time_zone", "time zone %q was not loaded (the directory loader loads it)", zone)
	case loc.String() != zone:
		return nil, bad(".time_zone", "time zone %q was given the location %q", zone, loc.String())
	}
	c := &Calendar{loc: loc, holidays: map[civilDate]bool{}, makeUp: map[civilDate]bool{}}

	days := spec.WorkDays
	if len(days) == 0 {
		days = []string{"mon", "tue", "wed", "thu", "fri"}
	}
	for i, name := range days {
		wd, ok := weekdayNames[name]
		if !ok {
			return nil, bad(fmt.Sprintf(".work_days[%d]", i), "unknown day %q (want mon, tue, wed, thu, fri, sat or sun)", name)
		}
		if c.workDays[wd] {
			return nil, bad(fmt.Sprintf(".work_days[%d]", i), "%q appears twice", name)
		}
		c.workDays[wd] = true
	}

	hours := spec.WorkHours
	if len(hours) == 0 {
		hours = []string{"08:30-12:00", "14:00-17:30"}
	}
	for i, span := range hours {
		p, err := parseWorkPeriod(span)
		if err != nil {
			return nil, bad(fmt.Sprintf(".work_hours[%d]", i), "%v", err)
		}
		if n := len(c.periods); n > 0 && p.from < c.periods[n-1].to {
			return nil, bad(fmt.Sprintf(".work_hours[%d]", i), "%q starts before the previous period ends: list periods in order, without overlaps", span)
		}
		c.periods = append(c.periods, p)
	}

	seen := map[civilDate]string{}
	dates := func(field string, list []string, into map[civilDate]bool) error {
		for i, s := range list {
			p := fmt.Sprintf(".%s[%d]", field, i)
			t, err := time.Parse(time.DateOnly, s)
			if err != nil {
				return bad(p, "invalid date %q (want 2006-01-02)", s)
			}
			d := civilDate{t.Year(), t.Month(), t.Day()}
			if prev, dup := seen[d]; dup {
				return bad(p, "%s is already listed at $.calendar%s", s, prev)
			}
			seen[d] = p
			into[d] = true
		}
		return nil
	}
	if err := dates("holidays", spec.Holidays, c.holidays); err != nil {
		return nil, err
	}
	if err := dates("make_up_days", spec.MakeUpDays, c.makeUp); err != nil {
		return nil, err
	}
	return c, nil
}

// parseWorkPeriod reads "08:30-12:00".
func parseWorkPeriod(s string) (workPeriod, error) {
	from, to, ok := strings.Cut(s, "-")
	if !ok {
		return workPeriod{}, fmt.Errorf("invalid work hours %q (want HH:MM-HH:MM, such as 08:30-12:00)", s)
	}
	minutes := func(hm string) (int, bool) {
		if len(hm) != 5 || hm[2] != ':' {
			return 0, false
		}
		h, err1 := strconv.Atoi(hm[:2])
		m, err2 := strconv.Atoi(hm[3:])
		if err1 != nil || err2 != nil || h < 0 || m < 0 || m > 59 || h > 24 || h == 24 && m != 0 {
			return 0, false
		}
		return h*60 + m, true
	}
	f, ok1 := minutes(from)
	t, ok2 := minutes(to)
	if !ok1 || !ok2 {
		return workPeriod{}, fmt.Errorf("invalid work hours %q (want HH:MM-HH:MM, such as 08:30-12:00)", s)
	}
	if t <= f {
		return workPeriod{}, fmt.Errorf("work hours %q end before they start", s)
	}
	return workPeriod{from: f, to: t}, nil
}

// Location is the calendar's time zone: figures' days are its days.
func (c *Calendar) Location() *time.Location { return c.loc }

// IsWorkingDay tells whether the calendar day of t is a working day: never a
// holiday, always a make-up day, else one of the weekly work days.
func (c *Calendar) IsWorkingDay(t time.Time) bool {
	t = t.In(c.loc)
	return c.working(civilDate{t.Year(), t.Month(), t.Day()}, t.Weekday())
}

func (c *Calendar) working(d civilDate, wd time.Weekday) bool {
	if c.holidays[d] {
		return false
	}
	return c.makeUp[d] || c.workDays[wd]
}

// InWorkTime tells whether t falls inside a work period of a working day,
// the period's ends included (a deadline may fall at 12:00 sharp).
func (c *Calendar) InWorkTime(t time.Time) bool {
	if !c.IsWorkingDay(t) {
		return false
	}
	l := t.In(c.loc)
	midnight := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, c.loc)
	for _, p := range c.periods {
		if !l.Before(midnight.Add(time.Duration(p.from)*time.Minute)) && !l.After(midnight.Add(time.Duration(p.to)*time.Minute)) {
			return true
		}
	}
	return false
}

// Deadline is when d has passed from start: clock time is simply added;
// working hours count only the time inside work periods of working days;
// working days end at the end of the last work period of the n-th working
// day after start's day. The answer is in start's location.
func (c *Calendar) Deadline(start time.Time, d SLADuration) time.Time {
	switch d.unit {
	case unitClock:
		return start.Add(d.clock)
	case unitWorkHours:
		return c.addWorkingTime(start, time.Duration(d.n)*time.Hour).In(start.Location())
	case unitWorkDays:
		return c.endOfWorkingDay(start, d.n).In(start.Location())
	}
	return start // unset: Validate refuses a directory with one
}

// at is a minute of a day of the calendar. time.Date normalises a time that
// a DST change skips, which is the best any office could mean by it.
func (c *Calendar) at(day time.Time, minute int) time.Time {
	return time.Date(day.Year(), day.Month(), day.Day(), minute/60, minute%60, 0, 0, c.loc)
}

// nextDay is midnight of the day after day, in the calendar's zone.
func (c *Calendar) nextDay(day time.Time) time.Time {
	return time.Date(day.Year(), day.Month(), day.Day()+1, 0, 0, 0, 0, c.loc)
}

func (c *Calendar) addWorkingTime(start time.Time, left time.Duration) time.Time {
	day := start.In(c.loc)
	from := start
	for {
		if c.working(civilDate{day.Year(), day.Month(), day.Day()}, day.Weekday()) {
			for _, p := range c.periods {
				begin, end := c.at(day, p.from), c.at(day, p.to)
				if begin.Before(from) {
					begin = from
				}
				if !begin.Before(end) {
					continue
				}
				span := end.Sub(begin)
				if left <= span {
					return begin.Add(left)
				}
				left -= span
			}
		}
		day = c.nextDay(day)
		from = day
	}
}

func (c *Calendar) endOfWorkingDay(start time.Time, n int) time.Time {
	day := start.In(c.loc)
	for {
		day = c.nextDay(day)
		if c.working(civilDate{day.Year(), day.Month(), day.Day()}, day.Weekday()) {
			if n--; n == 0 {
				return c.at(day, c.periods[len(c.periods)-1].to)
			}
		}
	}
}

// DayStart is midnight, in the calendar's zone, of the day t falls on.
func (c *Calendar) DayStart(t time.Time) time.Time {
	l := t.In(c.loc)
	return time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, c.loc)
}

// weekly is the calendar without its holidays and make-up days: the plain
// week, against which a directory's durations are compared.
func (c *Calendar) weekly() *Calendar {
	w := *c
	w.holidays, w.makeUp = nil, nil
	return &w
}

// notShorter tells whether b never ends before a, from any start of a plain
// fortnight (every quarter of an hour). Units compare directly when they
// agree; across units the answer depends on the calendar, so it is measured.
func (c *Calendar) notShorter(a, b SLADuration) bool {
	if a.unit == b.unit {
		if a.unit == unitClock {
			return b.clock >= a.clock
		}
		return b.n >= a.n
	}
	w := c.weekly()
	// 2001-01-01 was a Monday; any fortnight of the plain week would do.
	origin := time.Date(2001, 1, 1, 0, 0, 0, 0, c.loc)
	for start := origin; start.Before(origin.AddDate(0, 0, 14)); start = start.Add(15 * time.Minute) {
		if w.Deadline(start, b).Before(w.Deadline(start, a)) {
			return false
		}
	}
	return true
}
