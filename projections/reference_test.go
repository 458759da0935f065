package projections

import (
	"math"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/whistle-gov/whistle/domain"
)

// The reference recount: a plain reading of DESIGN.md's figures over a whole
// log, case by case, with raw samples and exact percentiles. It shares no code
// with Stats: it reads the whole history first and counts afterwards, the way
// an auditor with a spreadsheet would.

type refAsg struct {
	assignee  string
	role      domain.Role
	made      time.Time
	reportBy  time.Time
	resolveBy time.Time
	reported  *time.Time
	declined  bool
}

type refCase struct {
	street, community, category, urgency string
	raised                               time.Time
	asgs                                 []*refAsg
	overdue, escalated                   []string // the assignee of each event
	closed                               *time.Time
	leadDue                              time.Time // the latest lead's resolve_by at closure
	mediation                            domain.Mediation
	rating                               domain.Rating
}

func (c *refCase) latest(assignee string) *refAsg {
	var found *refAsg
	for _, a := range c.asgs {
		if a.assignee == assignee {
			found = a
		}
	}
	return found
}

// recount reads a whole log into cases.
func recount(t testing.TB, envs []domain.Envelope) map[string]*refCase {
	cases := map[string]*refCase{}
	for _, env := range envs {
		ev, err := domain.DecodeEvent(env.Type, env.Data)
		if err != nil {
			t.Fatal(err)
		}
		at := env.OccurredAt.UTC()
		if r, ok := ev.(domain.WhistleRaised); ok {
			cases[env.CaseID] = &refCase{street: r.Street, community: r.Community, category: r.Category, urgency: string(r.Urgency), raised: at}
			continue
		}
		c := cases[env.CaseID]
		switch e := ev.(type) {
		case domain.AssignmentMade:
			c.asgs = append(c.asgs, &refAsg{assignee: e.Assignee, role: e.Role, made: at, reportBy: e.ReportBy, resolveBy: e.ResolveBy})
		case domain.NeedClaimed:
			a := c.latest(e.Assignee)
			a.role, a.made, a.reportBy, a.resolveBy = domain.RoleLead, at, at, e.ResolveBy
			a.reported = &at
		case domain.AssignmentReported:
			c.latest(e.Assignee).reported = &at
		case domain.AssignmentDeclined:
			c.latest(e.Assignee).declined = true
		case domain.AssignmentOverdue:
			c.overdue = append(c.overdue, e.Assignee)
		case domain.CaseEscalated:
			c.escalated = append(c.escalated, e.Assignee)
		case domain.AssignmentResolved:
			if e.Role == domain.RoleLead && e.Mediation != "" {
				c.mediation = e.Mediation
			}
		case domain.CaseClosed:
			c.closed = &at
			var lead, activeLead *refAsg
			for _, a := range c.asgs {
				if a.role == domain.RoleLead {
					lead = a
					if !a.declined {
						activeLead = a
					}
				}
			}
			if activeLead != nil {
				lead = activeLead
			}
			c.leadDue = lead.resolveBy
		case domain.SatisfactionRated:
			c.rating = e.Rating
		}
	}
	return cases
}

// refAgg is what one key counted, with raw samples.
type refAgg struct {
	raised, closed, closedOnTime, assignments, reportedOnTime int64
	disputes, disputesSuccess, ratings, overdue, escalations  int64
	weighted                                                  float64
	reportSamples, closeSamples                               []float64
}

func (c *refCase) keys(dim string) []string {
	switch dim {
	case "street":
		return []string{c.street}
	case "community":
		return []string{c.community}
	case "category":
		return []string{c.category}
	case "urgency":
		return []string{c.urgency}
	case "day":
		return []string{c.raised.In(figuresZone).Format("2006-01-02")}
	}
	var involved []string
	for _, a := range c.asgs {
		if (a.role == domain.RoleLead || a.role == domain.RoleAssist) && !slices.Contains(involved, a.assignee) {
			involved = append(involved, a.assignee)
		}
	}
	return involved
}

func (c *refCase) keysOf(dim, assignee string) []string {
	if dim == "assignee" {
		return []string{assignee}
	}
	return c.keys(dim)
}

// figuresZone is the zone whose days the figures count: the default
// calendar's (Asia/Shanghai), as NewStats(nil, nil) and the service use.
var figuresZone = domain.DefaultCalendar().Location()

// refQuery computes the figures of the cases raised in the whole days (of
// figuresZone) [from, to), grouped by dim.
func refQuery(cases map[string]*refCase, dim string, from, to time.Time, weights map[string]float64) map[string]*refAgg {
	midnight := func(t time.Time) time.Time {
		l := t.In(figuresZone)
		return time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, figuresZone)
	}
	from = midnight(from)
	if end := midnight(to); end.Before(to) {
		to = end.AddDate(0, 0, 1)
	}
	out := map[string]*refAgg{}
	get := func(k string) *refAgg {
		if out[k] == nil {
			out[k] = &refAgg{}
		}
		return out[k]
	}
	for _, c := range cases {
		if c.raised.Before(from) || !c.raised.Before(to) {
			continue
		}
		for _, k := range c.keys(dim) {
			g := get(k)
			g.raised++
			if c.closed != nil {
				g.closed++
				if !c.closed.After(c.leadDue) {
					g.closedOnTime++
				}
				g.closeSamples = append(g.closeSamples, c.closed.Sub(c.raised).Seconds())
			}
			if c.mediation != "" {
				g.disputes++
				if c.mediation == domain.MediationSuccess {
					g.disputesSuccess++
				}
			}
			if c.rating != "" {
				g.ratings++
				g.weighted += weights[string(c.rating)]
			}
		}
		for _, a := range c.asgs {
			if a.role != domain.RoleLead && a.role != domain.RoleAssist {
				continue
			}
			for _, k := range c.keysOf(dim, a.assignee) {
				g := get(k)
				g.assignments++
				if a.reported != nil {
					if !a.reported.After(a.reportBy) {
						g.reportedOnTime++
					}
					g.reportSamples = append(g.reportSamples, a.reported.Sub(a.made).Seconds())
				}
			}
		}
		for _, who := range c.overdue {
			for _, k := range c.keysOf(dim, who) {
				get(k).overdue++
			}
		}
		for _, who := range c.escalated {
			for _, k := range c.keysOf(dim, who) {
				get(k).escalations++
			}
		}
	}
	return out
}

// nearestRank is the ceil(q*n)-th smallest sample.
func nearestRank(samples []float64, q float64) (float64, bool) {
	if len(samples) == 0 {
		return 0, false
	}
	s := slices.Clone(samples)
	sort.Float64s(s)
	k := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(k, 0)], true
}

// checkAgainstReference compares a query result with the recount.
func checkAgainstReference(t *testing.T, label string, got Result, want map[string]*refAgg) {
	t.Helper()
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var gotKeys []string
	for _, g := range got.Groups {
		gotKeys = append(gotKeys, g.Key)
	}
	if !slices.Equal(keys, gotKeys) {
		t.Fatalf("%s: keys %v, reference %v", label, gotKeys, keys)
	}
	for i, g := range got.Groups {
		w := want[keys[i]]
		ints := []struct {
			name      string
			got, want int64
		}{
			{"raised", g.Raised, w.raised}, {"closed", g.Closed, w.closed}, {"closed_on_time", g.ClosedOnTime, w.closedOnTime},
			{"assignments", g.Assignments, w.assignments}, {"reported_on_time", g.ReportedOnTime, w.reportedOnTime},
			{"disputes_resolved", g.DisputesResolved, w.disputes}, {"disputes_success", g.DisputesSuccess, w.disputesSuccess},
			{"ratings", g.Ratings, w.ratings}, {"overdue", g.Overdue, w.overdue}, {"escalations", g.Escalations, w.escalations},
		}
		for _, c := range ints {
			if c.got != c.want {
				t.Errorf("%s %s %s: got %d, reference %d", label, g.Key, c.name, c.got, c.want)
			}
		}
		rate := func(num, den int64) *float64 {
			if den == 0 {
				return nil
			}
			v := float64(num) / float64(den)
			return &v
		}
		var sat *float64
		if w.ratings > 0 {
			v := w.weighted / float64(w.ratings)
			sat = &v
		}
		rates := []struct {
			name      string
			got, want *float64
		}{
			{"closure_rate", g.ClosureRate, rate(w.closed, w.raised)},
			{"on_time_closure_rate", g.OnTimeClosureRate, rate(w.closedOnTime, w.raised)},
			{"response_rate", g.ResponseRate, rate(w.reportedOnTime, w.assignments)},
			{"mediation_success_rate", g.MediationSuccessRate, rate(w.disputesSuccess, w.disputes)},
			{"satisfaction_rate", g.SatisfactionRate, sat},
		}
		for _, c := range rates {
			if !closeTo(c.got, c.want, 1e-9, 0) {
				t.Errorf("%s %s %s: got %s, reference %s", label, g.Key, c.name, fmtPtr(c.got), fmtPtr(c.want))
			}
		}
		quantiles := []struct {
			name    string
			got     *float64
			samples []float64
			q       float64
		}{
			{"median_report_seconds", g.MedianReportSeconds, w.reportSamples, 0.5},
			{"p90_report_seconds", g.P90ReportSeconds, w.reportSamples, 0.9},
			{"median_close_seconds", g.MedianCloseSeconds, w.closeSamples, 0.5},
			{"p90_close_seconds", g.P90CloseSeconds, w.closeSamples, 0.9},
		}
		for _, c := range quantiles {
			var want *float64
			if v, ok := nearestRank(c.samples, c.q); ok {
				want = &v
			}
			if !closeTo(c.got, want, histAlpha+1e-9, 0.001) {
				t.Errorf("%s %s %s: got %s, reference %s (of %d samples)", label, g.Key, c.name, fmtPtr(c.got), fmtPtr(want), len(c.samples))
			}
		}
	}
}

// closeTo compares two optional values within a relative and an absolute
// tolerance.
func closeTo(got, want *float64, rel, abs float64) bool {
	if got == nil || want == nil {
		return got == nil && want == nil
	}
	return math.Abs(*got-*want) <= rel*math.Abs(*want)+abs
}

func fmtPtr(v *float64) string {
	if v == nil {
		return "null"
	}
	return strconv.FormatFloat(*v, 'g', -1, 64)
}
