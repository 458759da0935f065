package projections

import (
	"fmt"
	"github.com/whistle-gov/whistle/domain/view"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/whistle-gov/whistle/domain"
)

// Stats is the figures read model of DESIGN.md ("Figures (projections)").
//
// Every figure counts a case, and its assignments, in the cohort of the day
// the case was raised, in the time zone given to NewStats (the calendar's):
// an event of a case raised on 23 November updates the buckets of 23
// November whenever it happens. State is pre-aggregated in
// day buckets keyed by (dimension, key, day) for the dimensions street,
// community, category, urgency, day and assignee, and for two breakdowns
// within a street: street × category and street × urgency (see QueryStreet),
// so a query over a window reads aggregates only, never events (see series
// for how a window of any length costs O(log days)).
//
// Attribution:
//   - case figures (raised, closed, closed on time, disputes resolved and
//     their success, ratings, time to close) count for the case's street,
//     community, category, urgency and day, its street × category and
//     street × urgency, and for every assignee that was
//     given a lead or assist assignment in the case (or claimed it). An
//     assignee keeps counting for a case it later declined: the figures of
//     a cohort only grow, and a decline does not erase the part it held. An
//     assignee that joins a case late is credited with what the case counted
//     so far, so its figures equal those of the cases it is in.
//   - assignment figures (assignments, reported on time, time to report in)
//     and overdue and escalation counts count for the case's dimensions and
//     for the assignee they name only. Offers of a need are not assignments;
//     a claim is an assignment made and reported in at the moment of the
//     claim.
//   - "on time" is inclusive: reported at or before report_by, closed at or
//     before the resolve_by of the case's latest lead (the latest lead
//     assignment not declined, else the latest lead) when it closed.
//   - a dispute counts as resolved once, at its first lead resolution with a
//     mediation outcome; its success follows its latest lead resolution, so
//     a dispute re-resolved after a rejection moves between success and
//     failure without being counted twice.
//   - ratings are counted per rating (satisfied, basically satisfied,
//     unsatisfied) and weighed at query time with the weights given to
//     NewStats: integer counters merge exactly across any window and compare
//     exactly between a live model and a replay.
//
// Memory is bounded by the aggregates and the open cases, not by history:
//   - one bucket per (dimension, key, day) with something counted: 13 counters
//     and two sparse histograms of at most a few hundred 8-byte bins; plus a
//     Fenwick tree per key over its days, derived from the buckets, of about
//     as many nodes again. The breakdowns within a street add at most
//     streets × (categories + urgencies) keys, bounded by the directory. A
//     year of 20 cases a day in two streets of five categories (12,832
//     buckets, 5,169 of them within a street; 762 open cases, 1,592 closed
//     cases awaiting a rating) holds 9.5 MB in all;
//   - per open case: its cohort keys, its assignments (assignee, role,
//     times) and what it counted so far (about 380 bytes plus 100 per
//     assignment);
//   - per closed case: a 17-byte record (version, cohort day, index of its
//     interned profile of keys, what it counted of its mediation) plus its id
//     in a map, because callbacks, ratings and a second round may still
//     come. Every closed case keeps this record; the profiles (distinct
//     combinations of street, community, category, urgency and assignees) are
//     bounded by the directory, not by history.
//
// A closed case is never forgotten: callbacks, ratings (from a callback or
// the resident's link) and a second round come after closure, so it keeps
// its small record (above) for good; a second round reopens it from that
// record, and its closure and mediation are not counted twice. Events that
// count nothing (a reveal, a forgetting, a receipt) of a case not held are
// skipped.
//
// Stats is safe for concurrent use. The zero value is not usable: call
// NewStats.
type Stats struct {
	mu        sync.RWMutex
	weights   [numRatings]float64
	days      *time.Location // whose days the cohorts are
	series    [numDims]map[string]*series
	open      map[string]*openCase
	closed    map[string]closedCase
	profiles  []profile
	profileIx map[string]int32
	strs      interner
	pos       uint64 // log position reached: every commit at or before it is in
}

// dim is a dimension figures are grouped by.
type dim uint8

const (
	dimStreet dim = iota
	dimCommunity
	dimCategory
	dimUrgency
	dimDay
	// dimStreetCategory and dimStreetUrgency break a street's own cases down
	// by category and by urgency: their keys are withinKey(street, category)
	// and withinKey(street, urgency), so a street's figures by category count
	// its own cases only. Query does not group by them; QueryStreet does.
	dimStreetCategory
	dimStreetUrgency
	dimAssignee
	numDims
)

// numCaseDims: the first dimensions are properties of the case itself; the
// last one, assignee, depends on the assignments.
const numCaseDims = int(dimAssignee)

// dimNames name the dimensions in snapshots and in Diff.
var dimNames = [numDims]string{"street", "community", "category", "urgency", "day", "street_category", "street_urgency", "assignee"}

// GroupBys returns the valid values of Query's groupBy, in DESIGN.md order.
func GroupBys() []string {
	return []string{"street", "community", "assignee", "category", "urgency", "day"}
}

// StreetGroupBys returns the valid values of QueryStreet's groupBy: the
// groupings kept within each street.
func StreetGroupBys() []string {
	return []string{"category", "urgency"}
}

// parseDim reads any dimension's name, as snapshots write it.
func parseDim(s string) (dim, bool) {
	for d, name := range dimNames {
		if name == s {
			return dim(d), true
		}
	}
	return 0, false
}

// parseGroupBy reads a groupBy of Query (one of GroupBys).
func parseGroupBy(s string) (dim, bool) {
	if !slices.Contains(GroupBys(), s) {
		return 0, false
	}
	return parseDim(s)
}

// withinDims maps a groupBy of QueryStreet to its dimension.
var withinDims = map[string]dim{"category": dimStreetCategory, "urgency": dimStreetUrgency}

// withinSep ends the street part of a key of dimStreetCategory or
// dimStreetUrgency. Directory ids never hold it; withinKey escapes it in
// the street all the same, so that the first one always ends the street
// and a street never reads another street's keys, whatever the log holds.
const withinSep = "/"

var streetEscaper = strings.NewReplacer("%", "%25", withinSep, "%2F")

// withinKey is the key of inner (a category or an urgency) within street:
// "longqiao/river-pollution".
func withinKey(street, inner string) string {
	return streetEscaper.Replace(street) + withinSep + inner
}

// withinPrefix is what every key within street begins with.
func withinPrefix(street string) string {
	return streetEscaper.Replace(street) + withinSep
}

// counter indexes the integer figures of a bucket.
type counter uint8

const (
	cRaised counter = iota
	cClosed
	cClosedOnTime
	cAssignments
	cReportedOnTime
	cDisputesResolved
	cDisputesSuccess
	cRatings
	cRatedSatisfied // cRatedSatisfied+ratingIndex(r) counts rating r
	cRatedBasicallySatisfied
	cRatedUnsatisfied
	cOverdue
	cEscalations
	// Callbacks (a POST /rate is a reached one), second rounds, and the
	// ratings of the resident's own link (cRatings counts every source).
	cCallbacks
	cCallbacksReached
	cSecondRounds
	cResidentRatings
	cResidentRatedSatisfied // + ratingIndex
	cResidentRatedBasicallySatisfied
	cResidentRatedUnsatisfied
	// Tickets from above (see stats_tickets.go).
	cTicketsReceived
	cTicketsAccepted
	cTicketsReturned
	numCounters
)

var counterNames = [numCounters]string{
	"raised", "closed", "closed_on_time", "assignments", "reported_on_time",
	"disputes_resolved", "disputes_success", "ratings",
	"rated_satisfied", "rated_basically_satisfied", "rated_unsatisfied",
	"overdue", "escalations",
	"callbacks", "callbacks_reached", "second_rounds", "resident_ratings",
	"resident_rated_satisfied", "resident_rated_basically_satisfied", "resident_rated_unsatisfied",
	"tickets_received", "tickets_accepted", "tickets_returned",
}

type counts [numCounters]int64

const numRatings = 3

// ratingIndex orders ratings as domain.Ratings does.
func ratingIndex(r domain.Rating) (int, bool) {
	i := slices.Index(domain.Ratings(), r)
	return i, i >= 0
}

// DefaultSatisfactionWeights are DESIGN.md's defaults: satisfied 1,
// basically satisfied 0.9, unsatisfied 0.
func DefaultSatisfactionWeights() map[string]float64 {
	return map[string]float64{
		string(domain.RatingSatisfied):          1,
		string(domain.RatingBasicallySatisfied): 0.9,
		string(domain.RatingUnsatisfied):        0,
	}
}

// bucket is what one (dimension, key, day) counted.
type bucket struct {
	n      counts
	report histogram // seconds from assignment made to reported in
	close  histogram // seconds from raised to closed
}

// openCase is what an open case needs to go on counting.
type openCase struct {
	version  uint64 // next expected version
	day      int32
	raisedAt time.Time
	kind     domain.Kind
	keys     [numCaseDims]string
	caseB    [numCaseDims]cell // the buckets of keys, cached
	involved []string          // lead and assist assignees, in order of joining
	invB     []cell            // their buckets, cached
	asgs     []statAsg
	contrib  counts // the case figures counted so far for this case
}

// statAsg is one assignment (or offer) of an open case.
type statAsg struct {
	assignee  string
	role      domain.Role
	made      time.Time
	reportBy  time.Time // zero: none
	resolveBy time.Time // zero: none
	reported  bool
	declined  bool
}

// closedCase is a closed case: callbacks, ratings and a second round may
// still come. dispute is what it counted of its mediation (disputeResolved,
// disputeSuccess), for a second round that resolves it again.
type closedCase struct {
	version uint64
	day     int32
	profile int32
	dispute uint8
}

// The bits of closedCase.dispute.
const (
	disputeResolved uint8 = 1 << iota
	disputeSuccess
)

// profile is the keys a closed case counts under, except its day.
type profile struct {
	keys      [numCaseDims]string // the day slot is unused
	assignees []string
}

// NewStats returns empty figures whose satisfaction rate weighs ratings by
// weights (the directory's satisfaction_weights) and whose days are those
// of the time zone days (the directory's calendar's). Nil weights mean
// DefaultSatisfactionWeights, a nil zone the default calendar's
// (Asia/Shanghai). Otherwise weights must give every rating a weight between
// 0 and 1 and name nothing else.
func NewStats(weights map[string]float64, days *time.Location) (*Stats, error) {
	if weights == nil {
		weights = DefaultSatisfactionWeights()
	}
	if days == nil {
		days = domain.DefaultCalendar().Location()
	}
	s := &Stats{days: days}
	for i, r := range domain.Ratings() {
		w, ok := weights[string(r)]
		if !ok {
			return nil, fmt.Errorf("projections: satisfaction weight of %q is missing", r)
		}
		if !(w >= 0 && w <= 1) {
			return nil, fmt.Errorf("projections: satisfaction weight of %q must be between 0 and 1, got %v", r, w)
		}
		s.weights[i] = w
	}
	for k := range weights {
		if _, err := domain.ParseRating(k); err != nil {
			return nil, fmt.Errorf("projections: satisfaction weights: %v", err)
		}
	}
	s.reset()
	return s, nil
}

func (s *Stats) reset() {
	for d := range s.series {
		s.series[d] = map[string]*series{}
	}
	s.open = map[string]*openCase{}
	s.closed = map[string]closedCase{}
	s.profiles = nil
	s.profileIx = map[string]int32{}
	s.strs = interner{}
	s.pos = 0
}

// ApplyCommit applies the events of the commit at log position pos (1 or
// more) as one step: a commit at or below the position reached is skipped
// whole; otherwise every event is applied and the position becomes pos.
// decoded, when not nil, holds the events' data already decoded
// (adapters/eventcodec decodes it once for every model): decoded[i] is
// events[i]'s; a nil entry is decoded here.
// See the package documentation for what an error leaves behind.
func (s *Stats) ApplyCommit(pos uint64, events []domain.Envelope, decoded []domain.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pos <= s.pos {
		return nil
	}
	for i, env := range events {
		if err := s.apply(env, decodedAt(decoded, i)); err != nil {
			return err
		}
	}
	s.pos = pos
	return nil
}

// Position returns the log position reached: every commit at or before it
// is counted (0: none applied).
func (s *Stats) Position() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.pos
}

// Reached tells whether the figures include the commits up to log position
// p, for a caller that wants to answer only once its own write is counted.
func (s *Stats) Reached(p uint64) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.pos >= p
}

// cell returns the bucket of (d, key, day), creating it.
func (s *Stats) cell(d dim, key string, day int32) cell {
	m := s.series[d]
	sr := m[key]
	if sr == nil {
		sr = &series{}
		m[s.strs.get(key)] = sr
	}
	return sr.cell(day)
}

// apply folds env, whose data is e (nil: decode it).
func (s *Stats) apply(env domain.Envelope, e domain.Event) error {
	if e == nil {
		var err error
		if e, err = decode("stats", env); err != nil {
			return err
		}
	}
	at := env.OccurredAt.UTC()
	c := s.open[env.CaseID]
	if c == nil {
		if cc, ok := s.closed[env.CaseID]; ok {
			return s.applyClosed(env, e, cc)
		}
		if figureNeutral(e) && env.Version != 0 {
			return nil // of a case closed, rated and forgotten here: it counts nothing
		}
		if t, ok := e.(domain.TicketReceived); ok && env.Version == 0 {
			s.receive(env.CaseID, t, at)
			return nil
		}
		raised, ok := e.(domain.WhistleRaised)
		if !ok || env.Version != 0 {
			return unknownCase("stats", env)
		}
		s.raise(env.CaseID, raised, at)
		return nil
	}
	if skip, err := versionCheck("stats", env, c.version); skip || err != nil {
		return err
	}
	if err := checkRating(env, e); err != nil {
		return err
	}
	c.version++
	switch e := e.(type) {
	case domain.WhistleRaised:
		// Raised twice under two versions: the log is not one the domain
		// writes. Counting it again would double the cohort; keep the first.
	case domain.AssignmentMade:
		c.asgs = append(c.asgs, statAsg{
			assignee: s.strs.get(e.Assignee), role: e.Role, made: at,
			reportBy: e.ReportBy.UTC(), resolveBy: e.ResolveBy.UTC(),
		})
		if e.Role == domain.RoleLead || e.Role == domain.RoleAssist {
			s.join(c, e.Assignee)
			s.countAssignment(c, e.Assignee, cAssignments, 1)
		}
	case domain.NeedClaimed:
		a := c.latest(e.Assignee)
		if a == nil { // claimed without an offer: the log says it happened
			c.asgs = append(c.asgs, statAsg{assignee: s.strs.get(e.Assignee)})
			a = &c.asgs[len(c.asgs)-1]
		}
		a.role, a.made, a.reportBy, a.resolveBy, a.reported = domain.RoleLead, at, at, e.ResolveBy.UTC(), true
		s.join(c, e.Assignee)
		s.countAssignment(c, e.Assignee, cAssignments, 1)
		s.countAssignment(c, e.Assignee, cReportedOnTime, 1)
		s.reportTime(c, e.Assignee, 0)
	case domain.AssignmentReported:
		a := c.latest(e.Assignee)
		if a == nil || a.reported || a.role == domain.RoleOffer {
			break
		}
		a.reported = true
		if a.reportBy.IsZero() || !at.After(a.reportBy) {
			s.countAssignment(c, e.Assignee, cReportedOnTime, 1)
		}
		s.reportTime(c, e.Assignee, at.Sub(a.made).Seconds())
	case domain.AssignmentDeclined:
		if a := c.latest(e.Assignee); a != nil {
			a.declined = true
		}
	case domain.AssignmentOverdue:
		s.countMark(c, e.Assignee, e.Deadline, cOverdue)
	case domain.CaseEscalated:
		s.countMark(c, e.Assignee, e.Deadline, cEscalations)
	case domain.TicketAccepted:
		s.acceptTicket(c, e)
	case domain.TicketReturned:
		s.returnTicket(env.CaseID, c)
	case domain.AssignmentResolved:
		// As domain.Case does: the mediation of a lead's resolution is the
		// case's outcome; the latest one wins.
		if e.Role == domain.RoleLead && e.Mediation != "" {
			if c.contrib[cDisputesResolved] == 0 {
				s.bump(c, cDisputesResolved, 1)
			}
			var success int64
			if e.Mediation == domain.MediationSuccess {
				success = 1
			}
			s.bump(c, cDisputesSuccess, success-c.contrib[cDisputesSuccess])
		}
	case domain.CaseClosed:
		s.close(env.CaseID, c, at)
	case domain.SecondRoundOpened:
		// Opened on a closed case, which the domain reopens; on an open one
		// (not a log the domain writes) it only counts.
		s.bump(c, cSecondRounds, 1)
	case domain.SatisfactionRated, domain.CallbackMade, domain.ResidentRated:
		// Every rating counts, from a callback or the resident's link; a
		// callback may come while the case is resolved, not yet closed.
		for _, d := range residentCounts(e) {
			s.bump(c, d.counter, d.n)
		}
	}
	return nil
}

type countDelta struct {
	counter counter
	n       int64
}

// residentCounts is what a callback, a rating or a second round counts.
func residentCounts(e domain.Event) []countDelta {
	rating := func(r domain.Rating, resident bool) []countDelta {
		i, ok := ratingIndex(r)
		if !ok {
			return nil
		}
		out := []countDelta{{cRatings, 1}, {cRatedSatisfied + counter(i), 1}}
		if resident {
			out = append(out, countDelta{cResidentRatings, 1}, countDelta{cResidentRatedSatisfied + counter(i), 1})
		}
		return out
	}
	switch e := e.(type) {
	case domain.SatisfactionRated: // POST /rate: a reached callback
		return append([]countDelta{{cCallbacks, 1}, {cCallbacksReached, 1}}, rating(e.Rating, false)...)
	case domain.CallbackMade:
		out := []countDelta{{cCallbacks, 1}}
		if e.Reached {
			out = append(out, countDelta{cCallbacksReached, 1})
		}
		if e.Rating != "" {
			out = append(out, rating(e.Rating, false)...)
		}
		return out
	case domain.ResidentRated:
		return rating(e.Rating, true)
	case domain.SecondRoundOpened:
		return []countDelta{{cSecondRounds, 1}}
	}
	return nil
}

// raise opens a case and counts it in its cohort.
func (s *Stats) raise(id string, e domain.WhistleRaised, at time.Time) {
	day := dayOf(at, s.days)
	c := &openCase{version: 1, day: day, raisedAt: at, kind: e.Kind}
	c.keys = s.caseKeys(e.Street, e.Community, e.Category, string(e.Urgency), dayKey(day))
	for d := range numCaseDims {
		c.caseB[d] = s.cell(dim(d), c.keys[d], day)
	}
	s.open[id] = c
	s.bump(c, cRaised, 1)
}

// caseKeys returns the keys a case counts under in every case dimension,
// interned; day may be "" (a closed case's profile leaves it out).
func (s *Stats) caseKeys(street, community, category, urgency, day string) [numCaseDims]string {
	return [numCaseDims]string{
		dimStreet: s.strs.get(street), dimCommunity: s.strs.get(community),
		dimCategory: s.strs.get(category), dimUrgency: s.strs.get(urgency),
		dimDay:            s.strs.get(day),
		dimStreetCategory: s.strs.get(withinKey(street, category)),
		dimStreetUrgency:  s.strs.get(withinKey(street, urgency)),
	}
}

// latest returns the assignee's latest assignment, as domain.Case.Assignment.
func (c *openCase) latest(assignee string) *statAsg {
	for i := len(c.asgs) - 1; i >= 0; i-- {
		if c.asgs[i].assignee == assignee {
			return &c.asgs[i]
		}
	}
	return nil
}

// bump changes a case figure of c by d wherever c counts.
func (s *Stats) bump(c *openCase, i counter, d int64) {
	if d == 0 {
		return
	}
	c.contrib[i] += d
	for _, b := range c.caseB {
		b.count(i, d)
	}
	for _, b := range c.invB {
		b.count(i, d)
	}
}

// join makes an assignee count the case, crediting it with what the case
// counted so far.
func (s *Stats) join(c *openCase, assignee string) {
	if slices.Contains(c.involved, assignee) {
		return
	}
	b := s.cell(dimAssignee, assignee, c.day)
	b.addCounts(&c.contrib)
	c.involved = append(c.involved, s.strs.get(assignee))
	c.invB = append(c.invB, b)
}

// assigneeCell returns the bucket of assignee in c's cohort.
func (s *Stats) assigneeCell(c *openCase, assignee string) cell {
	if k := slices.Index(c.involved, assignee); k >= 0 {
		return c.invB[k]
	}
	return s.cell(dimAssignee, assignee, c.day)
}

// countAssignment counts an assignment figure for c's keys and the assignee.
func (s *Stats) countAssignment(c *openCase, assignee string, i counter, d int64) {
	for _, b := range c.caseB {
		b.count(i, d)
	}
	if assignee != "" {
		s.assigneeCell(c, assignee).count(i, d)
	}
}

func (s *Stats) reportTime(c *openCase, assignee string, seconds float64) {
	for _, b := range c.caseB {
		b.report(seconds)
	}
	s.assigneeCell(c, assignee).report(seconds)
}

// checkRating refuses a rating the domain does not know.
func checkRating(env domain.Envelope, e domain.Event) error {
	var r domain.Rating
	switch e := e.(type) {
	case domain.SatisfactionRated:
		r = e.Rating
	case domain.ResidentRated:
		r = e.Rating
	case domain.CallbackMade:
		if r = e.Rating; r == "" {
			return nil
		}
	default:
		return nil
	}
	if _, ok := ratingIndex(r); !ok {
		return fmt.Errorf("%w: stats: case %s version %d: unknown rating %q", ErrUnexpectedEvent, env.CaseID, env.Version, r)
	}
	return nil
}

// close counts the closure, then keeps only what callbacks, ratings and a
// second round will need. A case closed again after its second round
// counted its closure already.
func (s *Stats) close(id string, c *openCase, at time.Time) {
	if c.contrib[cSecondRounds] > 0 {
		delete(s.open, id)
		s.closed[id] = s.closedOf(c)
		return
	}
	var due time.Time
	found := false
	for i := len(c.asgs) - 1; i >= 0 && !found; i-- {
		if a := c.asgs[i]; a.role == domain.RoleLead && !a.declined {
			due, found = a.resolveBy, true
		}
	}
	for i := len(c.asgs) - 1; i >= 0 && !found; i-- {
		if a := c.asgs[i]; a.role == domain.RoleLead {
			due, found = a.resolveBy, true
		}
	}
	s.bump(c, cClosed, 1)
	if due.IsZero() || !at.After(due) {
		s.bump(c, cClosedOnTime, 1)
	}
	secs := at.Sub(c.raisedAt).Seconds()
	for _, b := range c.caseB {
		b.close(secs)
	}
	for _, b := range c.invB {
		b.close(secs)
	}
	delete(s.open, id)
	s.closed[id] = s.closedOf(c)
}

func (s *Stats) closedOf(c *openCase) closedCase {
	cc := closedCase{version: c.version, day: c.day, profile: s.internProfile(c.keys, c.involved)}
	if c.contrib[cDisputesResolved] > 0 {
		cc.dispute |= disputeResolved
	}
	if c.contrib[cDisputesSuccess] > 0 {
		cc.dispute |= disputeSuccess
	}
	return cc
}

// reopen makes a closed case open again for its second round: its cohort
// keys and assignees from its profile, the leads back to reported with the
// round's resolve_by, and what it counted of closure and mediation, so that
// nothing counts twice.
func (s *Stats) reopen(id string, cc closedCase, e domain.SecondRoundOpened, at time.Time) *openCase {
	p := &s.profiles[cc.profile]
	c := &openCase{version: cc.version, day: cc.day, raisedAt: at}
	c.keys = p.keys
	c.keys[dimDay] = s.strs.get(dayKey(cc.day))
	for d := range numCaseDims {
		c.caseB[d] = s.cell(dim(d), c.keys[d], cc.day)
	}
	for _, a := range p.assignees {
		c.involved = append(c.involved, a)
		c.invB = append(c.invB, s.cell(dimAssignee, a, cc.day))
	}
	for _, l := range e.Leads {
		c.asgs = append(c.asgs, statAsg{assignee: s.strs.get(l), role: domain.RoleLead, made: at, resolveBy: e.ResolveBy.UTC(), reported: true})
	}
	c.contrib[cClosed] = 1
	if cc.dispute&disputeResolved != 0 {
		c.contrib[cDisputesResolved] = 1
	}
	if cc.dispute&disputeSuccess != 0 {
		c.contrib[cDisputesSuccess] = 1
	}
	delete(s.closed, id)
	s.open[id] = c
	return c
}

func (s *Stats) internProfile(keys [numCaseDims]string, assignees []string) int32 {
	p := profile{keys: keys, assignees: slices.Clone(assignees)}
	p.keys[dimDay] = ""
	slices.Sort(p.assignees)
	var sb strings.Builder
	for _, k := range p.keys {
		sb.WriteString(k)
		sb.WriteByte(0)
	}
	for _, a := range p.assignees {
		sb.WriteString(a)
		sb.WriteByte(0)
	}
	id := sb.String()
	if i, ok := s.profileIx[id]; ok {
		return i
	}
	i := int32(len(s.profiles))
	s.profiles = append(s.profiles, p)
	s.profileIx[id] = i
	return i
}

// applyClosed takes the one event a closed case still expects: its rating.
func (s *Stats) applyClosed(env domain.Envelope, e domain.Event, cc closedCase) error {
	if skip, err := versionCheck("stats", env, cc.version); skip || err != nil {
		return err
	}
	if err := checkRating(env, e); err != nil {
		return err
	}
	switch e := e.(type) {
	case domain.SatisfactionRated, domain.CallbackMade, domain.ResidentRated, domain.ReceiptIssued:
	case domain.SecondRoundOpened:
		c := s.reopen(env.CaseID, cc, e, env.OccurredAt.UTC())
		c.version++
		s.bump(c, cSecondRounds, 1)
		return nil
	default:
		if !figureNeutral(e) {
			return fmt.Errorf("%w: stats: case %s is closed: %s at version %d", ErrUnexpectedEvent, env.CaseID, env.Type, env.Version)
		}
	}
	cc.version++
	s.closed[env.CaseID] = cc
	deltas := residentCounts(e)
	if len(deltas) == 0 {
		return nil
	}
	p := &s.profiles[cc.profile]
	count := func(b cell) {
		for _, d := range deltas {
			b.count(d.counter, d.n)
		}
	}
	for d := range numCaseDims {
		key := p.keys[d]
		if dim(d) == dimDay {
			key = dayKey(cc.day)
		}
		count(s.cell(dim(d), key, cc.day))
	}
	for _, a := range p.assignees {
		count(s.cell(dimAssignee, a, cc.day))
	}
	return nil
}

// figureNeutral tells whether e is an event after closure that counts in no
// figure (a reveal, a forgetting): see afterClosure.
func figureNeutral(e domain.Event) bool {
	_, rating := e.(domain.SatisfactionRated)
	return afterClosure(e) && !rating
}

// Result is the answer to a stats query, in the JSON shape of DESIGN.md
// (domain/view.Stats).
type Result = view.Stats

// Group is the figures of one key (domain/view.StatsGroup).
type Group = view.StatsGroup

// Query returns the figures of the cases raised in [from, to), grouped by
// groupBy (one of GroupBys), one group per key that counted something in the
// window and that filter accepts (nil accepts every key), sorted by key.
//
// Days are the finest window: the window holds every day (of the figures'
// time zone) it touches,
// whole (from is truncated to its day, to is rounded up to the next day
// unless it is midnight), and Result says which days were counted. A zero
// from or to leaves that side unbounded. The cost per key is at most two
// paths of a Fenwick tree over its days (O(log days) merges), whatever the
// length of the window and the number of events behind it: a year costs no
// more than a day.
func (s *Stats) Query(groupBy string, from, to time.Time, filter func(key string) bool) (Result, error) {
	d, ok := parseGroupBy(groupBy)
	if !ok {
		return Result{}, fmt.Errorf("%w: unknown group_by %q (want one of %s)", ErrBadQuery, groupBy, strings.Join(GroupBys(), ", "))
	}
	res, lo, hi, err := s.window(groupBy, from, to)
	if err != nil {
		return Result{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	keys := make([]shownKey, 0, len(s.series[d]))
	for k := range s.series[d] {
		if filter == nil || filter(k) {
			keys = append(keys, shownKey{k, k})
		}
	}
	s.groups(&res, d, keys, lo, hi)
	return res, nil
}

// QueryStreet returns the figures of street's own cases raised in [from,
// to), grouped by groupBy (one of StreetGroupBys: category or urgency), one
// group per category or urgency that counted something in the window,
// keyed by the category or urgency and sorted by key. Another street's
// cases are never counted: the groups are read from the day buckets of
// (street, category) and (street, urgency), kept by the same fold as the
// rest, so the window is widened to whole days and costs as in Query, and a
// year costs no more than a day. A street that counted nothing, or that the
// log never named, has no groups.
func (s *Stats) QueryStreet(street, groupBy string, from, to time.Time) (Result, error) {
	d, ok := withinDims[groupBy]
	if !ok {
		return Result{}, fmt.Errorf("%w: group_by %q is not kept within a street (want one of %s)", ErrBadQuery, groupBy, strings.Join(StreetGroupBys(), ", "))
	}
	res, lo, hi, err := s.window(groupBy, from, to)
	if err != nil {
		return Result{}, err
	}
	prefix := withinPrefix(street)
	s.mu.RLock()
	defer s.mu.RUnlock()
	var keys []shownKey
	for k := range s.series[d] {
		if inner, ok := strings.CutPrefix(k, prefix); ok {
			keys = append(keys, shownKey{k, inner})
		}
	}
	s.groups(&res, d, keys, lo, hi)
	return res, nil
}

// shownKey is a key of a dimension and the key its group shows.
type shownKey struct{ key, shown string }

// window checks a query's window and returns an empty result for it, with
// the days [lo, hi) it covers: every day the window touches, whole.
func (s *Stats) window(groupBy string, from, to time.Time) (res Result, lo, hi int32, err error) {
	if !from.IsZero() && !to.IsZero() && from.After(to) {
		return Result{}, 0, 0, fmt.Errorf("%w: from %s is after to %s", ErrBadQuery, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	res = Result{GroupBy: groupBy, Groups: []Group{}}
	lo, hi = int32(math.MinInt32), int32(math.MaxInt32)
	if !from.IsZero() {
		lo = dayOf(from, s.days)
		t := dayStartIn(lo, s.days)
		res.From = &t
	}
	if !to.IsZero() {
		hi = dayOf(to, s.days)
		if to.After(dayStartIn(hi, s.days)) {
			hi++
		}
		t := dayStartIn(hi, s.days)
		res.To = &t
	}
	return res, lo, hi, nil
}

// groups appends to res the figures over the days [lo, hi) of each key of
// dimension d that counted something then, in order of the keys shown. The
// caller holds s.mu.
func (s *Stats) groups(res *Result, d dim, keys []shownKey, lo, hi int32) {
	slices.SortFunc(keys, func(a, b shownKey) int { return strings.Compare(a.shown, b.shown) })
	report, closing := getAcc(), getAcc()
	defer putAcc(report)
	defer putAcc(closing)
	for _, k := range keys {
		sr := s.series[d][k.key]
		first, _ := sr.find(lo)
		last, _ := sr.find(hi)
		if first == last {
			continue // nothing counted in the window
		}
		var n counts
		report.reset()
		closing.reset()
		if last-first <= sr.tree.height() {
			// Fewer day buckets than tree nodes: merge them directly.
			for _, b := range sr.buckets[first:last] {
				for j, v := range b.n {
					n[j] += v
				}
				report.merge(&b.report, 1)
				closing.merge(&b.close, 1)
			}
		} else {
			sr.tree.addPrefix(int64(hi), 1, &n, report, closing)
			sr.tree.addPrefix(int64(lo), -1, &n, report, closing)
		}
		if n == (counts{}) {
			continue // only what moved away: a ticket's keys before its street signed
		}
		res.Groups = append(res.Groups, s.group(k.shown, &n, report, closing))
	}
}

// QueryDays returns one key's figures day by day: the cases of key (a
// street, community, category, urgency or assignee, as groupBy says) raised
// in [from, to), one group per day that counted something, keyed
// "2006-01-02". It reads the key's own day buckets, so a street or an
// assignee gets its own series without any other key's cases; the window
// is widened to whole days as in Query.
func (s *Stats) QueryDays(groupBy, key string, from, to time.Time) (Result, error) {
	d, ok := parseGroupBy(groupBy)
	if !ok || d == dimDay {
		return Result{}, fmt.Errorf("%w: group_by %q cannot be split by day (want one of street, community, category, urgency, assignee)", ErrBadQuery, groupBy)
	}
	res, lo, hi, err := s.window("day", from, to)
	if err != nil {
		return Result{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	sr := s.series[d][key]
	if sr == nil {
		return res, nil
	}
	report, closing := getAcc(), getAcc()
	defer putAcc(report)
	defer putAcc(closing)
	first, _ := sr.find(lo)
	last, _ := sr.find(hi)
	for i := first; i < last; i++ {
		b := sr.buckets[i]
		n := b.n
		if n == (counts{}) {
			continue // moved away, as in groups
		}
		report.reset()
		closing.reset()
		report.merge(&b.report, 1)
		closing.merge(&b.close, 1)
		res.Groups = append(res.Groups, s.group(dayKey(sr.days[i]), &n, report, closing))
	}
	return res, nil
}

func (s *Stats) group(key string, n *counts, report, closing *histAcc) Group {
	rate := func(first counter, minus *counts) (int64, *float64) {
		var total int64
		weighted := 0.0
		for i := range numRatings {
			k := n[first+counter(i)]
			if minus != nil {
				k -= minus[cResidentRatedSatisfied+counter(i)]
			}
			total += k
			weighted += s.weights[i] * float64(k)
		}
		if total == 0 {
			return 0, nil
		}
		v := weighted / float64(total)
		return total, &v
	}
	_, satisfaction := rate(cRatedSatisfied, nil)
	var bySource view.SatisfactionSource
	bySource.Resident.Ratings, bySource.Resident.SatisfactionRate = rate(cResidentRatedSatisfied, nil)
	bySource.Callback.Ratings, bySource.Callback.SatisfactionRate = rate(cRatedSatisfied, n)
	return Group{
		Key:                  key,
		Raised:               n[cRaised],
		Closed:               n[cClosed],
		ClosedOnTime:         n[cClosedOnTime],
		ClosureRate:          ratio(n[cClosed], n[cRaised]),
		OnTimeClosureRate:    ratio(n[cClosedOnTime], n[cRaised]),
		Assignments:          n[cAssignments],
		ReportedOnTime:       n[cReportedOnTime],
		ResponseRate:         ratio(n[cReportedOnTime], n[cAssignments]),
		DisputesResolved:     n[cDisputesResolved],
		DisputesSuccess:      n[cDisputesSuccess],
		MediationSuccessRate: ratio(n[cDisputesSuccess], n[cDisputesResolved]),
		Ratings:              n[cRatings],
		SatisfactionRate:     satisfaction,
		MedianReportSeconds:  report.quantile(0.5),
		P90ReportSeconds:     report.quantile(0.9),
		MedianCloseSeconds:   closing.quantile(0.5),
		P90CloseSeconds:      closing.quantile(0.9),
		Overdue:              n[cOverdue],
		Escalations:          n[cEscalations],
		Callbacks:            n[cCallbacks],
		CallbacksReached:     n[cCallbacksReached],
		CallbackReachRate:    ratio(n[cCallbacksReached], n[cCallbacks]),
		SecondRounds:         n[cSecondRounds],
		SatisfactionBySource: bySource,
		TicketsReceived:      n[cTicketsReceived],
		TicketsAccepted:      n[cTicketsAccepted],
		TicketsReturned:      n[cTicketsReturned],
	}
}

// ratio is num/den, or nil when nothing is counted.
func ratio(num, den int64) *float64 {
	if den == 0 {
		return nil
	}
	v := float64(num) / float64(den)
	return &v
}
