package projections

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/whistle-gov/whistle/domain"
)

// Board is the case list of GET /v1/cases: the current summary of every case,
// newest raised first, with filters and cursor paging.
//
// It folds the events the way domain.Case.Evolve does (statuses, overdue
// flags), but on its own compact state: domain.Case keeps the missed-deadline
// flags it needs for Overdue in unexported fields, which a snapshot taken
// outside the domain package could not save. The tests hold the Board to
// domain.Case's own fold on every case of random logs, so that a change of
// the domain's rules (closure clearing overdue flags, say) shows at once.
//
// Memory: the Board holds one summary per open case, and per case closed
// within ClosedRetention of the latest day it has seen; older closed cases
// leave it (they stay in the log, readable by id, and in the figures), so
// its size follows the open cases, not the length of history. What leaves
// depends only on the events, so a replay drops the same cases. An open case's summary carries, per assignment, which deadlines it
// missed, to keep Overdue right as the case goes on. A closed case keeps only
// its CaseSummary (ids, title, status, times, version, position and its
// assignments' assignee, role, status, deadlines and overdue flag); notes,
// descriptions, locations, hashes and command ids are never kept, and the
// strings that repeat across cases (streets, communities, categories,
// assignees, enum values) are shared, not copied per case. About 250 bytes
// per case plus its title plus about 100 bytes per assignment (a year of
// 7,300 cases measured 503 bytes per case in all).
//
// Board is safe for concurrent use. The zero value is not usable: call
// NewBoard.
type Board struct {
	mu    sync.RWMutex
	cases map[string]*boardEntry
	order []*boardEntry // by (raised_at, case id) ascending: new cases append
	strs  interner
	pos   uint64 // log position reached: every commit at or before it is in
	// day is the latest UTC day of an event applied; closed cases older
	// than ClosedRetention before it have left.
	day int32
	// retired counts the closed cases that have left the board.
	retired uint64
}

// ClosedRetention is how long a closed case stays on the board after it
// closed, counted in whole days of the events' own times. A constant, not a
// setting, so that a replay anywhere drops exactly what the live board did.
const ClosedRetention = 30 * 24 * time.Hour

// CaseSummary is one case as the list shows it: the case shape of DESIGN.md
// without mediation and rating. Position is the log position of the case's
// latest event applied with ApplyAt or ApplyCommit (0 when applied with
// Apply).
type CaseSummary struct {
	CaseID      string              `json:"case_id"`
	Street      string              `json:"street"`
	Community   string              `json:"community"`
	Category    string              `json:"category"`
	Kind        domain.Kind         `json:"kind"`
	Urgency     domain.Urgency      `json:"urgency"`
	Title       string              `json:"title"`
	Status      domain.Status       `json:"status"`
	RaisedAt    time.Time           `json:"raised_at"`
	ClosedAt    *time.Time          `json:"closed_at"`
	Assignments []AssignmentSummary `json:"assignments"`
	Version     uint64              `json:"version"`
	Position    uint64              `json:"position,omitempty"`
}

// AssignmentSummary is one assignment as the list shows it.
type AssignmentSummary struct {
	Assignee  string                  `json:"assignee"`
	Role      domain.Role             `json:"role"`
	Status    domain.AssignmentStatus `json:"status"`
	ReportBy  *time.Time              `json:"report_by"`
	ResolveBy *time.Time              `json:"resolve_by"`
	Overdue   bool                    `json:"overdue"`
}

// Overdue tells whether any assignment of the case is overdue.
func (c *CaseSummary) Overdue() bool {
	for i := range c.Assignments {
		if c.Assignments[i].Overdue {
			return true
		}
	}
	return false
}

// Involves tells whether assignee holds or held any part in the case,
// offers included.
func (c *CaseSummary) Involves(assignee string) bool {
	for i := range c.Assignments {
		if c.Assignments[i].Assignee == assignee {
			return true
		}
	}
	return false
}

func (c *CaseSummary) clone() CaseSummary {
	out := *c
	out.Assignments = slices.Clone(c.Assignments)
	return out
}

// Missed-deadline flags of an open case's assignment, as domain.Assignment
// keeps them.
const (
	missedReport uint8 = 1 << iota
	missedResolve
)

type boardEntry struct {
	sum    CaseSummary
	missed []uint8 // per assignment; nil once the case is closed
}

// NewBoard returns an empty board.
func NewBoard() *Board {
	return &Board{cases: map[string]*boardEntry{}, strs: interner{}}
}

// Apply folds one event into the board. See the package documentation for
// the delivery contract; on error the state is unchanged.
func (b *Board) Apply(env domain.Envelope) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, err := b.apply(env, nil)
	return err
}

// ApplyAt is Apply for an event at log position pos: an event below the
// position reached is skipped; otherwise the board's position and the case's
// become pos once the event is applied.
func (b *Board) ApplyAt(env domain.Envelope, pos uint64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if pos < b.pos {
		return nil
	}
	ent, err := b.apply(env, nil)
	if err != nil {
		return err
	}
	if ent != nil {
		ent.sum.Position = pos
	}
	b.pos = pos
	return nil
}

// ApplyCommit applies the events of the commit at log position pos (1 or
// more) as one step: a commit at or below the position reached is skipped
// whole; otherwise every event is applied, the cases it touches get pos as
// their position, and so does the board. See the package documentation for
// what an error leaves behind.
func (b *Board) ApplyCommit(pos uint64, events []domain.Envelope) error {
	return b.ApplyCommitDecoded(pos, events, nil)
}

// ApplyCommitDecoded is ApplyCommit with the events' data already decoded
// (adapters/eventcodec decodes it once for every model): decoded[i] is
// events[i]'s; a nil decoded, or a nil entry, is decoded here.
func (b *Board) ApplyCommitDecoded(pos uint64, events []domain.Envelope, decoded []domain.Event) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if pos <= b.pos {
		return nil
	}
	for i, env := range events {
		ent, err := b.apply(env, decodedAt(decoded, i))
		if err != nil {
			return err
		}
		if ent != nil {
			ent.sum.Position = pos
		}
	}
	b.pos = pos
	return nil
}

// Position returns the log position reached: every commit at or before it
// is on the board (0: none applied with a position).
func (b *Board) Position() uint64 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.pos
}

// Reached tells whether the board includes the commits up to log position p,
// for a caller that wants to list a case only once its own write shows.
func (b *Board) Reached(p uint64) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.pos >= p
}

// Retired returns how many closed cases have left the board.
func (b *Board) Retired() uint64 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.retired
}

// Len returns the number of cases on the board.
func (b *Board) Len() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.cases)
}

// Get returns the summary of one case.
func (b *Board) Get(caseID string) (CaseSummary, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	ent := b.cases[caseID]
	if ent == nil {
		return CaseSummary{}, false
	}
	return ent.sum.clone(), true
}

// apply returns the entry the event changed, nil for a redelivery.
func (b *Board) apply(env domain.Envelope, e domain.Event) (*boardEntry, error) {
	ent, err := b.applyEvent(env, e)
	if err == nil {
		if d := dayOf(env.OccurredAt); d > b.day {
			b.day = d
			b.retire()
		}
	}
	return ent, err
}

// retire drops the cases closed before the retention window of b.day.
func (b *Board) retire() {
	cutoff := dayStart(b.day).Add(-ClosedRetention)
	kept := b.order[:0]
	for _, ent := range b.order {
		if ent.sum.ClosedAt != nil && ent.sum.ClosedAt.Before(cutoff) {
			delete(b.cases, ent.sum.CaseID)
			b.retired++
			continue
		}
		kept = append(kept, ent)
	}
	clear(b.order[len(kept):]) // let the dropped entries go
	b.order = kept
}

// applyEvent folds env, whose data is e (nil: decode it).
func (b *Board) applyEvent(env domain.Envelope, e domain.Event) (*boardEntry, error) {
	if e == nil {
		var err error
		if e, err = decode("board", env); err != nil {
			return nil, err
		}
	}
	at := env.OccurredAt.UTC()
	ent := b.cases[env.CaseID]
	if ent == nil {
		raised, ok := e.(domain.WhistleRaised)
		if _, rated := e.(domain.SatisfactionRated); rated && b.retired > 0 {
			return nil, nil // a late rating of a case that has left the board
		}
		if !ok || env.Version != 0 {
			return nil, unknownCase("board", env)
		}
		ent = &boardEntry{sum: CaseSummary{
			CaseID: env.CaseID, Street: b.strs.get(raised.Street), Community: b.strs.get(raised.Community),
			Category: b.strs.get(raised.Category), Kind: domain.Kind(b.strs.get(string(raised.Kind))),
			Urgency: domain.Urgency(b.strs.get(string(raised.Urgency))), Title: raised.Title,
			RaisedAt: at, Version: 1, Assignments: []AssignmentSummary{},
		}}
		ent.sum.Status = ent.deriveStatus()
		b.cases[env.CaseID] = ent
		b.insert(ent)
		return ent, nil
	}
	if skip, err := versionCheck("board", env, ent.sum.Version); skip || err != nil {
		return nil, err
	}
	if ent.sum.ClosedAt != nil {
		// Closed cases kept no missed-deadline flags; the domain appends
		// nothing after closure but a rating, which the list does not show.
		if _, ok := e.(domain.SatisfactionRated); !ok {
			return nil, fmt.Errorf("%w: board: case %s is closed: %s at version %d", ErrUnexpectedEvent, env.CaseID, env.Type, env.Version)
		}
		ent.sum.Version++
		return ent, nil
	}
	ent.sum.Version++
	ent.evolve(e, at, b.strs)
	return ent, nil
}

// latest returns the index of the assignee's latest assignment, or -1, as
// domain.Case.Assignment.
func (ent *boardEntry) latest(assignee string) int {
	as := ent.sum.Assignments
	for i := len(as) - 1; i >= 0; i-- {
		if as[i].Assignee == assignee {
			return i
		}
	}
	return -1
}

// refresh recomputes an assignment's overdue flag as domain.Assignment does:
// a missed report-in counts while it has not reported in, a missed
// resolution while it has not resolved, and neither once it is declined or
// lapsed.
func (ent *boardEntry) refresh(i int) {
	a := &ent.sum.Assignments[i]
	active := a.Status != domain.Declined && a.Status != domain.Lapsed
	m := ent.missed[i]
	a.Overdue = active && (m&missedReport != 0 && a.Status == domain.Assigned ||
		m&missedResolve != 0 && a.Status != domain.Resolved)
}

// evolve mirrors domain.Case.Evolve for the fields of the summary.
func (ent *boardEntry) evolve(e domain.Event, at time.Time, strs interner) {
	s := &ent.sum
	switch e := e.(type) {
	case domain.AssignmentMade:
		a := AssignmentSummary{Assignee: strs.get(e.Assignee), Role: domain.Role(strs.get(string(e.Role))), Status: domain.Assigned}
		if !e.ReportBy.IsZero() {
			t := e.ReportBy.UTC()
			a.ReportBy = &t
		}
		if !e.ResolveBy.IsZero() {
			t := e.ResolveBy.UTC()
			a.ResolveBy = &t
		}
		s.Assignments = append(s.Assignments, a)
		ent.missed = append(ent.missed, 0)
	case domain.AssignmentReported:
		if i := ent.latest(e.Assignee); i >= 0 {
			s.Assignments[i].Status = domain.Reported
			ent.refresh(i)
		}
	case domain.AssignmentOverdue:
		if i := ent.latest(e.Assignee); i >= 0 {
			if e.Deadline == domain.DeadlineReport {
				ent.missed[i] |= missedReport
			} else {
				ent.missed[i] |= missedResolve
			}
			ent.refresh(i)
		}
	case domain.AssignmentDeclined:
		if i := ent.latest(e.Assignee); i >= 0 {
			s.Assignments[i].Status = domain.Declined
			ent.refresh(i)
		}
	case domain.NeedClaimed:
		for i := range s.Assignments {
			if a := &s.Assignments[i]; a.Role == domain.RoleOffer && a.Status == domain.Assigned {
				a.Status = domain.Lapsed
			}
		}
		if i := ent.latest(e.Assignee); i >= 0 {
			a := &s.Assignments[i]
			a.Role, a.Status = domain.RoleLead, domain.Reported
			reportBy, resolveBy := at, e.ResolveBy.UTC()
			a.ReportBy, a.ResolveBy = &reportBy, &resolveBy
			ent.refresh(i)
		}
	case domain.AssignmentResolved:
		if i := ent.latest(e.Assignee); i >= 0 {
			s.Assignments[i].Status = domain.Resolved
			ent.refresh(i)
		}
	case domain.ResolutionRejected:
		for i := range s.Assignments {
			if s.Assignments[i].Status == domain.Resolved {
				s.Assignments[i].Status = domain.Reported
				ent.refresh(i)
			}
		}
	case domain.CaseClosed:
		s.ClosedAt = &at
		// As the domain: a closed case has nothing left to be late for.
		for i := range s.Assignments {
			s.Assignments[i].Overdue = false
		}
		ent.missed = nil // compact: a closed case's flags no longer change
	}
	s.Status = ent.deriveStatus()
}

// deriveStatus mirrors domain.Case's status rules.
func (ent *boardEntry) deriveStatus() domain.Status {
	s := &ent.sum
	if s.ClosedAt != nil {
		return domain.StatusClosed
	}
	leads, resolvedLeads, offers, started := 0, 0, 0, false
	for _, a := range s.Assignments {
		if a.Status == domain.Declined || a.Status == domain.Lapsed {
			continue
		}
		switch a.Role {
		case domain.RoleLead:
			leads++
			if a.Status == domain.Resolved {
				resolvedLeads++
			}
		case domain.RoleOffer:
			offers++
		}
		if a.Status == domain.Reported || a.Status == domain.Resolved {
			started = true
		}
	}
	switch {
	case leads > 0 && resolvedLeads == leads:
		return domain.StatusResolved
	case leads == 0 && offers == 0:
		return domain.StatusUnassigned
	case started:
		return domain.StatusInProgress
	}
	return domain.StatusRouted
}

// orderKey is a case's place on the board.
type orderKey struct {
	raised int64 // unix nanoseconds
	id     string
}

func (k orderKey) cmp(o orderKey) int {
	switch {
	case k.raised < o.raised:
		return -1
	case k.raised > o.raised:
		return 1
	}
	return strings.Compare(k.id, o.id)
}

func (ent *boardEntry) key() orderKey {
	return orderKey{ent.sum.RaisedAt.UnixNano(), ent.sum.CaseID}
}

// insert places a new case in order; cases are mostly raised in log order,
// so this is almost always an append.
func (b *Board) insert(ent *boardEntry) {
	k := ent.key()
	i := len(b.order)
	if i > 0 && b.order[i-1].key().cmp(k) > 0 {
		i = b.search(k)
	}
	b.order = slices.Insert(b.order, i, ent)
}

// search returns the index of the first case at or after k in b.order.
func (b *Board) search(k orderKey) int {
	i, _ := slices.BinarySearchFunc(b.order, k, func(e *boardEntry, k orderKey) int { return e.key().cmp(k) })
	return i
}

// Limits of a page of the list.
const (
	DefaultListLimit = 50
	MaxListLimit     = 500
)

// ListQuery selects and pages cases. Empty strings and a nil Overdue do not
// filter; the others must match exactly. Assignee matches a case in which it
// holds or held any assignment, offers included. Overdue matches a case with
// (true) or without (false) an overdue assignment. Cursor is the next value
// of the previous page, empty for the first page. Limit defaults to
// DefaultListLimit and is capped at MaxListLimit.
type ListQuery struct {
	Status    string
	Street    string
	Community string
	Assignee  string
	Category  string
	Urgency   string
	Overdue   *bool
	Cursor    string
	Limit     int
}

func (q *ListQuery) match(c *CaseSummary) bool {
	return (q.Status == "" || string(c.Status) == q.Status) &&
		(q.Street == "" || c.Street == q.Street) &&
		(q.Community == "" || c.Community == q.Community) &&
		(q.Category == "" || c.Category == q.Category) &&
		(q.Urgency == "" || string(c.Urgency) == q.Urgency) &&
		(q.Assignee == "" || c.Involves(q.Assignee)) &&
		(q.Overdue == nil || c.Overdue() == *q.Overdue)
}

// List returns a page of the cases that match q, newest raised first (ties by
// case id, descending), and the cursor of the next page, empty when there is
// none. Cases never leave the board and their order never changes, so paging
// with the same filters visits every case that was on the board when paging
// began exactly once (a case whose status changes between pages may of
// course stop or start matching; cases raised meanwhile come before the
// cursor and are not visited). The cursor is opaque; a malformed one is
// refused with ErrBadQuery.
func (b *Board) List(q ListQuery) (cases []CaseSummary, next string, err error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	b.mu.RLock()
	defer b.mu.RUnlock()
	i := len(b.order) - 1
	if q.Cursor != "" {
		k, err := decodeCursor(q.Cursor)
		if err != nil {
			return nil, "", err
		}
		// The first case strictly after the cursor in listing order.
		i = b.search(k) - 1
	}
	cases = []CaseSummary{}
	for ; i >= 0; i-- {
		s := &b.order[i].sum
		if !q.match(s) {
			continue
		}
		if len(cases) == limit {
			// One more match exists: there is a next page.
			last := &cases[len(cases)-1]
			return cases, encodeCursor(orderKey{last.RaisedAt.UnixNano(), last.CaseID}), nil
		}
		cases = append(cases, s.clone())
	}
	return cases, "", nil
}

// The cursor is base64url of: a format byte, raised_at in Unix nanoseconds
// (8 bytes, big endian), the case id.
const cursorFormat = 1

func encodeCursor(k orderKey) string {
	buf := make([]byte, 9, 9+len(k.id))
	buf[0] = cursorFormat
	binary.BigEndian.PutUint64(buf[1:], uint64(k.raised))
	buf = append(buf, k.id...)
	return base64.RawURLEncoding.EncodeToString(buf)
}

func decodeCursor(s string) (orderKey, error) {
	buf, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(buf) < 9 || buf[0] != cursorFormat {
		return orderKey{}, fmt.Errorf("%w: malformed cursor %q", ErrBadQuery, s)
	}
	return orderKey{raised: int64(binary.BigEndian.Uint64(buf[1:9])), id: string(buf[9:])}, nil
}
