package domain

import (
	"encoding/json"
	"fmt"
	"time"
)

// Duration is a time.Duration written in JSON as a Go duration string ("30m").
type Duration time.Duration

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a Go duration string such as "30m" or "72h".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string such as \"30m\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: %v", s, err)
	}
	*d = Duration(v)
	return nil
}

// Directory is the routing and SLA policy of a deployment: who is responsible
// for what, where, and how fast. Load it with a validating loader and call
// Validate before use; the domain assumes a valid directory.
type Directory struct {
	Version             string             `json:"version"`
	Streets             []Street           `json:"streets"`
	Departments         []Organisation     `json:"departments"`
	Units               []Organisation     `json:"units"`
	Categories          []Category         `json:"categories"`
	SLA                 map[string]SLA     `json:"sla"`
	Escalation          []EscalationStep   `json:"escalation"`
	SatisfactionWeights map[string]float64 `json:"satisfaction_weights"`
	// Districts are the offices above streets; each street has at most one.
	Districts []District `json:"districts,omitempty"`
	// Platforms are the upstream systems that send tickets (12345...).
	Platforms []Organisation `json:"platforms,omitempty"`
	// Calendar is when offices work; nil is DefaultCalendar's.
	Calendar *CalendarSpec   `json:"calendar,omitempty"`
	index    *directoryIndex `json:"-"`
}

// District is a district office and the streets it is over.
type District struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Streets []string `json:"streets"`
}

// Street is a sub-district office and its communities.
type Street struct {
	ID          string      `json:"id"`
	Name        string      `json:"name"`
	Communities []Community `json:"communities"`
}

// Community is where a case happens; Units are the resident units that
// co-build with it and receive its needs.
type Community struct {
	ID    string   `json:"id"`
	Name  string   `json:"name"`
	Units []string `json:"units"`
}

// Organisation is a department or a resident unit.
type Organisation struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Category maps a kind of problem to who handles it. A need has no lead: it is
// offered to the community's units.
type Category struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	Kind   Kind     `json:"kind"`
	Lead   string   `json:"lead,omitempty"`
	Assist []string `json:"assist,omitempty"`
}

// SLA gives the deadlines of one urgency, counted from the assignment. Every
// duration may be clock time, working hours or working days (SLADuration).
// ReportWithin and ResolveWithin are required; the others take the defaults
// of DefaultSLA when left out.
type SLA struct {
	ReportWithin  SLADuration `json:"report_within"`
	ResolveWithin SLADuration `json:"resolve_within"`
	// AcceptWithin: a street signs for a ticket from above (签收).
	AcceptWithin SLADuration `json:"accept_within,omitzero"`
	// RuleWithin: a decline is ruled on.
	RuleWithin SLADuration `json:"rule_within,omitzero"`
	// ArriveWithin: a summoned assignee arrives on site.
	ArriveWithin SLADuration `json:"arrive_within,omitzero"`
	// StallAfter: a reported assignment with no progress is stalled.
	StallAfter SLADuration `json:"stall_after,omitzero"`
	// SecondRoundWithin: a case reopened by an unsatisfied resident.
	SecondRoundWithin SLADuration `json:"second_round_within,omitzero"`
}

// DefaultSLA holds the defaults of the SLA keys that may be left out (report
// and resolve deadlines have none: a directory must say them).
func DefaultSLA() SLA {
	must := func(d SLADuration, err error) SLADuration {
		if err != nil {
			panic("domain: invalid default SLA: " + err.Error())
		}
		return d
	}
	return SLA{
		AcceptWithin:      must(WorkingHours(1)),
		RuleWithin:        must(WorkingDays(1)),
		ArriveWithin:      must(ClockTime(30 * time.Minute)),
		StallAfter:        must(WorkingDays(2)),
		SecondRoundWithin: must(WorkingDays(3)),
	}
}

// EscalationStep is one rung of the ladder: After the missed deadline the case
// is escalated to Level.
type EscalationStep struct {
	Level string   `json:"level"`
	After Duration `json:"after"`
}

type directoryIndex struct {
	streets     map[string]*Street
	communities map[string]map[string]*Community // street → community
	departments map[string]*Organisation
	units       map[string]*Organisation
	categories  map[string]*Category
	districts   map[string]*District
	districtOf  map[string]string // street → district
	platforms   map[string]*Organisation
	calendar    *Calendar
}

// DirectoryError says where a directory is wrong: Path is a JSON path such as
// "$.categories[2].lead".
type DirectoryError struct {
	Path    string
	Problem string
}

func (e *DirectoryError) Error() string { return e.Path + ": " + e.Problem }

// Validate checks the directory and builds its look-up index. It returns the
// first problem found as a *DirectoryError. The calendar's time zone must be
// DefaultTimeZone: any other needs its location loaded, with ValidateIn.
func (d *Directory) Validate() error { return d.ValidateIn(nil) }

// ValidateIn is Validate with the calendar's time zone loaded by the caller
// (time.LoadLocation reads tzdata, which the domain does not); loc must be
// named as $.calendar.time_zone, and may be nil for DefaultTimeZone. SLA keys
// left out are filled in from DefaultSLA.
func (d *Directory) ValidateIn(loc *time.Location) error {
	bad := func(path, format string, args ...any) error {
		return &DirectoryError{Path: path, Problem: fmt.Sprintf(format, args...)}
	}
	ix := &directoryIndex{
		streets:     map[string]*Street{},
		communities: map[string]map[string]*Community{},
		departments: map[string]*Organisation{},
		units:       map[string]*Organisation{},
		categories:  map[string]*Category{},
		districts:   map[string]*District{},
		districtOf:  map[string]string{},
		platforms:   map[string]*Organisation{},
	}
	if d.Version == "" {
		return bad("$.version", "is required")
	}
	seenOrg := map[string]string{}
	for i := range d.Departments {
		o := &d.Departments[i]
		p := fmt.Sprintf("$.departments[%d]", i)
		if err := checkID(o.ID); err != nil {
			return bad(p+".id", "%v", err)
		}
		if prev, dup := seenOrg[o.ID]; dup {
			return bad(p+".id", "%q is already used at %s", o.ID, prev)
		}
		seenOrg[o.ID] = p
		ix.departments[o.ID] = o
	}
	for i := range d.Units {
		o := &d.Units[i]
		p := fmt.Sprintf("$.units[%d]", i)
		if err := checkID(o.ID); err != nil {
			return bad(p+".id", "%v", err)
		}
		if prev, dup := seenOrg[o.ID]; dup {
			return bad(p+".id", "%q is already used at %s", o.ID, prev)
		}
		seenOrg[o.ID] = p
		ix.units[o.ID] = o
	}
	if len(d.Streets) == 0 {
		return bad("$.streets", "needs at least one street")
	}
	for i := range d.Streets {
		s := &d.Streets[i]
		p := fmt.Sprintf("$.streets[%d]", i)
		if err := checkID(s.ID); err != nil {
			return bad(p+".id", "%v", err)
		}
		if _, dup := ix.streets[s.ID]; dup {
			return bad(p+".id", "street %q appears twice", s.ID)
		}
		ix.streets[s.ID] = s
		ix.communities[s.ID] = map[string]*Community{}
		if len(s.Communities) == 0 {
			return bad(p+".communities", "street %q needs at least one community", s.ID)
		}
		for j := range s.Communities {
			c := &s.Communities[j]
			cp := fmt.Sprintf("%s.communities[%d]", p, j)
			if err := checkID(c.ID); err != nil {
				return bad(cp+".id", "%v", err)
			}
			if _, dup := ix.communities[s.ID][c.ID]; dup {
				return bad(cp+".id", "community %q appears twice in street %q", c.ID, s.ID)
			}
			ix.communities[s.ID][c.ID] = c
			for k, u := range c.Units {
				if ix.units[u] == nil {
					return bad(fmt.Sprintf("%s.units[%d]", cp, k), "unknown unit %q (not in $.units)", u)
				}
			}
		}
	}
	if len(d.Categories) == 0 {
		return bad("$.categories", "needs at least one category")
	}
	for i := range d.Categories {
		c := &d.Categories[i]
		p := fmt.Sprintf("$.categories[%d]", i)
		if err := checkID(c.ID); err != nil {
			return bad(p+".id", "%v", err)
		}
		if _, dup := ix.categories[c.ID]; dup {
			return bad(p+".id", "category %q appears twice", c.ID)
		}
		ix.categories[c.ID] = c
		if _, err := ParseKind(string(c.Kind)); err != nil {
			return bad(p+".kind", "%v", err)
		}
		if c.Kind == KindNeed {
			if c.Lead != "" || len(c.Assist) > 0 {
				return bad(p, "a need is offered to the community's units and takes no lead or assist")
			}
			continue
		}
		if c.Lead == "" {
			return bad(p+".lead", "an %s needs a lead department or unit", c.Kind)
		}
		if !ix.isAssignee(c.Lead) {
			return bad(p+".lead", "unknown department or unit %q", c.Lead)
		}
		for k, a := range c.Assist {
			if !ix.isAssignee(a) {
				return bad(fmt.Sprintf("%s.assist[%d]", p, k), "unknown department or unit %q", a)
			}
			if a == c.Lead {
				return bad(fmt.Sprintf("%s.assist[%d]", p, k), "%q is already the lead", a)
			}
		}
	}
	for i := range d.Districts {
		di := &d.Districts[i]
		p := fmt.Sprintf("$.districts[%d]", i)
		if err := checkID(di.ID); err != nil {
			return bad(p+".id", "%v", err)
		}
		if _, dup := ix.districts[di.ID]; dup {
			return bad(p+".id", "district %q appears twice", di.ID)
		}
		ix.districts[di.ID] = di
		if len(di.Streets) == 0 {
			return bad(p+".streets", "district %q needs at least one street", di.ID)
		}
		for k, s := range di.Streets {
			sp := fmt.Sprintf("%s.streets[%d]", p, k)
			if ix.streets[s] == nil {
				return bad(sp, "unknown street %q (not in $.streets)", s)
			}
			if other, taken := ix.districtOf[s]; taken {
				return bad(sp, "street %q is already under district %q", s, other)
			}
			ix.districtOf[s] = di.ID
		}
	}
	for i := range d.Platforms {
		o := &d.Platforms[i]
		p := fmt.Sprintf("$.platforms[%d]", i)
		if err := checkID(o.ID); err != nil {
			return bad(p+".id", "%v", err)
		}
		if _, dup := ix.platforms[o.ID]; dup {
			return bad(p+".id", "platform %q appears twice", o.ID)
		}
		ix.platforms[o.ID] = o
	}
	var spec CalendarSpec
	if d.Calendar != nil {
		spec = *d.Calendar
	}
	cal, err := NewCalendar(spec, loc)
	if err != nil {
		return err
	}
	ix.calendar = cal
	defaults := DefaultSLA()
	for _, u := range Urgencies() {
		sla, ok := d.SLA[string(u)]
		p := "$.sla." + string(u)
		if !ok {
			return bad(p, "is required")
		}
		if sla.ReportWithin.IsZero() {
			return bad(p+".report_within", "is required: a positive duration such as \"30m\", \"1wh\" or \"1wd\"")
		}
		if sla.ResolveWithin.IsZero() {
			return bad(p+".resolve_within", "is required: a positive duration such as \"72h\", \"8wh\" or \"3wd\"")
		}
		if !cal.notShorter(sla.ReportWithin, sla.ResolveWithin) {
			return bad(p+".resolve_within", "must not be shorter than report_within (%s), got %s", sla.ReportWithin, sla.ResolveWithin)
		}
		for _, f := range []struct {
			value *SLADuration
			def   SLADuration
		}{
			{&sla.AcceptWithin, defaults.AcceptWithin}, {&sla.RuleWithin, defaults.RuleWithin},
			{&sla.ArriveWithin, defaults.ArriveWithin}, {&sla.StallAfter, defaults.StallAfter},
			{&sla.SecondRoundWithin, defaults.SecondRoundWithin},
		} {
			if f.value.IsZero() {
				*f.value = f.def
			}
		}
		d.SLA[string(u)] = sla
	}
	for k := range d.SLA {
		if _, err := ParseUrgency(k); err != nil {
			return bad("$.sla."+k, "%v", err)
		}
	}
	var last Duration = -1
	seenLevel := map[string]bool{}
	for i, step := range d.Escalation {
		p := fmt.Sprintf("$.escalation[%d]", i)
		if err := checkID(step.Level); err != nil {
			return bad(p+".level", "%v", err)
		}
		if seenLevel[step.Level] {
			return bad(p+".level", "level %q appears twice", step.Level)
		}
		seenLevel[step.Level] = true
		if step.After < 0 || step.After <= last {
			return bad(p+".after", "must be at least 0 and later than the previous step, got %s", time.Duration(step.After))
		}
		last = step.After
	}
	for _, r := range Ratings() {
		w, ok := d.SatisfactionWeights[string(r)]
		p := "$.satisfaction_weights." + string(r)
		if !ok {
			return bad(p, "is required")
		}
		if w < 0 || w > 1 {
			return bad(p, "must be between 0 and 1, got %v", w)
		}
	}
	for k := range d.SatisfactionWeights {
		if _, err := ParseRating(k); err != nil {
			return bad("$.satisfaction_weights."+k, "%v", err)
		}
	}
	d.index = ix
	return nil
}

func checkID(id string) error {
	if id == "" {
		return fmt.Errorf("an id is required")
	}
	if len(id) > 64 {
		return fmt.Errorf("id %q is longer than 64 characters", id)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("id %q may hold only a-z, 0-9, '-' and '_'", id)
		}
	}
	return nil
}

func (ix *directoryIndex) isAssignee(id string) bool {
	return ix.departments[id] != nil || ix.units[id] != nil
}

func (d *Directory) ix() *directoryIndex {
	if d.index == nil {
		panic("domain: Directory used before Validate")
	}
	return d.index
}

// Street returns the street with that id.
func (d *Directory) Street(id string) (*Street, bool) {
	s, ok := d.ix().streets[id]
	return s, ok
}

// Community returns a street's community.
func (d *Directory) Community(street, community string) (*Community, bool) {
	c, ok := d.ix().communities[street][community]
	return c, ok
}

// Category returns the category with that id.
func (d *Directory) Category(id string) (*Category, bool) {
	c, ok := d.ix().categories[id]
	return c, ok
}

// IsDepartment tells whether id is a department.
func (d *Directory) IsDepartment(id string) bool { return d.ix().departments[id] != nil }

// IsUnit tells whether id is a resident unit.
func (d *Directory) IsUnit(id string) bool { return d.ix().units[id] != nil }

// IsAssignee tells whether id is a department or a unit.
func (d *Directory) IsAssignee(id string) bool { return d.ix().isAssignee(id) }

// District returns the district with that id.
func (d *Directory) District(id string) (*District, bool) {
	di, ok := d.ix().districts[id]
	return di, ok
}

// DistrictOf returns the id of the district over a street, if it has one.
func (d *Directory) DistrictOf(street string) (string, bool) {
	di, ok := d.ix().districtOf[street]
	return di, ok
}

// IsPlatform tells whether id is an upstream platform.
func (d *Directory) IsPlatform(id string) bool { return d.ix().platforms[id] != nil }

// WorkCalendar returns the calendar deadlines are counted in.
func (d *Directory) WorkCalendar() *Calendar { return d.ix().calendar }

// Deadline is when d has passed from start, in the directory's calendar.
func (d *Directory) Deadline(start time.Time, sla SLADuration) time.Time {
	return d.ix().calendar.Deadline(start, sla)
}

// SLAFor returns the deadlines of an urgency.
func (d *Directory) SLAFor(u Urgency) SLA { return d.SLA[string(u)] }

// Weight returns a rating's satisfaction weight.
func (d *Directory) Weight(r Rating) float64 { return d.SatisfactionWeights[string(r)] }
