package projections

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"github.com/whistle-gov/whistle/domain/view"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/whistle-gov/whistle/domain"
)

// Board is the case list of GET /v1/cases: the current summary of every case,
// newest raised first, with filters and cursor paging.
//
// It is also the queues (GET /v1/queues/{assignee}): the board seen by
// assignee, an index of the open cases by the assignees with open work in
// them (Open, Overdue), rebuilt from the open cases when a snapshot is
// restored.
//
// An open case is held as the domain holds it, a domain.Case folded by its
// own Evolve, so that the case's rules (statuses, overdue flags) live once,
// in the domain; its summary is shown from that state after each event.
//
// Memory: the Board holds one entry per open case, and per case closed
// within ClosedRetention of the latest day it has seen; older closed cases
// leave it (they stay in the log, readable by id, and in the figures), so
// its size follows the open cases, not the length of history. What leaves
// depends only on the events, so a replay drops the same cases. An open
// case holds its domain.Case (without the command handler's bookkeeping)
// besides its summary, which shares the case's strings and times. A closed
// case keeps only its CaseSummary (ids, title, status, times, version,
// position and its assignments' assignee, role, status, deadlines and
// overdue flag); descriptions, locations, hashes and command ids are never
// kept, and the strings that repeat across cases (streets, communities,
// categories, assignees, enum values) are shared, not copied per case.
//
// Board is safe for concurrent use. The zero value is not usable: call
// NewBoard.
type Board struct {
	mu    sync.RWMutex
	cases map[string]*boardEntry
	order []*boardEntry // by (raised_at, case id) ascending: new cases append
	// queues is the board seen by assignee: assignee → case id → the entry
	// of an open case in which the assignee has open work (see
	// domain.Case.HasOpenWork).
	queues map[string]map[string]*boardEntry
	// callbacks: street → case id → the entry of a case whose callback is
	// due (see domain.Case.CallbackDue), the street's callback list.
	callbacks map[string]map[string]*boardEntry
	// inbox is street → case id → the entry of a ticket's case waiting
	// for that street to sign for it (status received): see Inbox.
	inbox map[string]map[string]*boardEntry
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

// CaseSummary is one case as the list shows it (the shape is the client's
// too: domain/view).
type CaseSummary = view.CaseSummary

// AssignmentSummary is one assignment as the list shows it.
type AssignmentSummary = view.Assignment

func cloneSummary(c *CaseSummary) CaseSummary {
	out := *c
	out.Assignments = slices.Clone(c.Assignments)
	return out
}

type boardEntry struct {
	sum CaseSummary
	// c is an open case's state, folded by domain.Case.Evolve (the case's
	// rules live there, once) and shown through sum; nil once the case is
	// closed: it then changes no more but for a rating, which the list does
	// not show. It holds no command bookkeeping (Commands, LastHash,
	// RequestSHA256): that is the command handler's.
	c *domain.Case
	// hasRequester and forgotten: what a closed case's state needs beyond
	// its summary to take the events that still come after closure
	// (callbacks, the resident's rating, a second round; see reopen).
	hasRequester, forgotten bool
}

// NewBoard returns an empty board.
func NewBoard() *Board {
	return &Board{cases: map[string]*boardEntry{}, queues: map[string]map[string]*boardEntry{},
		callbacks: map[string]map[string]*boardEntry{}, inbox: map[string]map[string]*boardEntry{}, strs: interner{}}
}

// ApplyCommit applies the events of the commit at log position pos (1 or
// more) as one step: a commit at or below the position reached is skipped
// whole; otherwise every event is applied, the cases it touches get pos as
// their position, and so does the board. decoded, when not nil, holds the
// events' data already decoded (adapters/eventcodec decodes it once for
// every model): decoded[i] is events[i]'s; a nil entry is decoded here. See
// the package documentation for what an error leaves behind.
func (b *Board) ApplyCommit(pos uint64, events []domain.Envelope, decoded []domain.Event) error {
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
// is on the board (0: none applied).
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
	return cloneSummary(&ent.sum), true
}

// apply returns the entry the event changed, nil for a redelivery.
func (b *Board) apply(env domain.Envelope, e domain.Event) (*boardEntry, error) {
	ent, err := b.applyEvent(env, e)
	if err == nil {
		if d := dayOf(env.OccurredAt, time.UTC); d > b.day {
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
		// A callback still due is the street's work: it stays.
		if end := finalAt(&ent.sum); end != nil && end.Before(cutoff) && !callbackDue(&ent.sum) {
			delete(b.cases, ent.sum.CaseID)
			b.retired++
			continue
		}
		kept = append(kept, ent)
	}
	clear(b.order[len(kept):]) // let the dropped entries go
	b.order = kept
}

// finalAt is when the case stopped changing (closed, or returned to its
// platform), nil while it is open.
func finalAt(s *CaseSummary) *time.Time {
	if s.ClosedAt != nil {
		return s.ClosedAt
	}
	return s.ReturnedAt
}

// applyEvent folds env, whose data is e (nil: decode it).
func (b *Board) applyEvent(env domain.Envelope, e domain.Event) (*boardEntry, error) {
	if e == nil {
		var err error
		if e, err = decode("board", env); err != nil {
			return nil, err
		}
	}
	ent := b.cases[env.CaseID]
	if ent == nil {
		_, raised := e.(domain.WhistleRaised)
		if _, received := e.(domain.TicketReceived); received {
			raised = true // a ticket's case opens with its reception
		}
		if (afterClosure(e) || isResidentEvent(e)) && b.retired > 0 {
			return nil, nil // a late rating, callback or reveal of a case that has left the board
		}
		if !raised || env.Version != 0 {
			return nil, unknownCase("board", env)
		}
		ent = &boardEntry{c: &domain.Case{ID: env.CaseID}}
		b.evolve(ent, env, e)
		b.cases[env.CaseID] = ent
		b.insert(ent)
		return ent, nil
	}
	if skip, err := versionCheck("board", env, ent.sum.Version); skip || err != nil {
		return nil, err
	}
	if ent.c == nil {
		// After closure the domain appends callbacks, ratings, reveals and a
		// second round: the case's state is rebuilt from its summary for them.
		ent.c = ent.reopen()
	}
	b.evolve(ent, env, e)
	return ent, nil
}

// evolve folds the next event of an open case into its domain state and
// shows the result in its summary and the queues.
func (b *Board) evolve(ent *boardEntry, env domain.Envelope, e domain.Event) {
	c := ent.c
	c.Evolve(e, env.OccurredAt)
	c.Version = env.Version + 1
	// The command handler's, not the board's; the board keeps no personal
	// data, sealed or not.
	c.RequestSHA256, c.Requester, c.Receipt, c.ResidentRating = "", nil, nil, nil
	b.share(c)
	ent.show()
	b.index(ent)
	if c.Status == domain.StatusClosed || c.Status == domain.StatusReturned {
		// compact: what a closed case may still take is rebuilt by reopen;
		// a returned one takes nothing more but its requester's events
		ent.hasRequester, ent.forgotten = c.HasRequester, c.RequesterForgotten
		ent.c = nil
	}
}

// reopen rebuilds a closed case's state from its summary, for an event
// after closure. What the summary does not hold (report-in and resolution
// times, mediation, escalations) is lost; a replay loses the same, so the
// board stays a deterministic fold. A second round's queue items show no
// reported_at for that reason.
func (ent *boardEntry) reopen() *domain.Case {
	s := &ent.sum
	c, _ := restoreOpenCase(s, &openCaseSnap{Assignments: make([]openAssignmentSnap, len(s.Assignments))})
	c.ClosedAt, c.SecondRound, c.Callback = s.ClosedAt, s.SecondRound, s.Callback
	c.HasRequester, c.RequesterForgotten = ent.hasRequester, ent.forgotten
	return c
}

// isResidentEvent tells whether e is of a resident's receipt, rating or
// second round, or a callback.
func isResidentEvent(e domain.Event) bool {
	switch e.(type) {
	case domain.ReceiptIssued, domain.ResidentRated, domain.SecondRoundOpened, domain.CallbackMade:
		return true
	}
	return false
}

// share replaces the strings of c that repeat across cases with the
// board's one copy of each.
func (b *Board) share(c *domain.Case) {
	c.Street, c.Community, c.Category = b.strs.get(c.Street), b.strs.get(c.Community), b.strs.get(c.Category)
	c.Kind, c.Urgency, c.Status = domain.Kind(b.strs.get(string(c.Kind))), domain.Urgency(b.strs.get(string(c.Urgency))), domain.Status(b.strs.get(string(c.Status)))
	for _, a := range c.Assignments {
		a.Assignee, a.Role, a.Status = b.strs.get(a.Assignee), domain.Role(b.strs.get(string(a.Role))), domain.AssignmentStatus(b.strs.get(string(a.Status)))
	}
}

// show sets the summary from the open case's state. The times are the
// case's own: Evolve replaces them, never writes through them.
func (ent *boardEntry) show() {
	c, s := ent.c, &ent.sum
	s.CaseID, s.Street, s.Community, s.Category = c.ID, c.Street, c.Community, c.Category
	s.Kind, s.Urgency, s.Title, s.Status = c.Kind, c.Urgency, c.Title, c.Status
	if c.RaisedAt != nil {
		s.RaisedAt = *c.RaisedAt
	}
	s.ClosedAt, s.Version = c.ClosedAt, c.Version
	s.SecondRound, s.Callback = c.SecondRound, c.Callback
	s.Source, s.Priority, s.AcceptBy, s.ReturnedAt = c.Source, c.Priority, c.AcceptBy, c.ReturnedAt
	s.AcceptOverdue = c.MissedAccept && c.Status == domain.StatusReceived
	if s.Assignments == nil {
		s.Assignments = make([]AssignmentSummary, 0, len(c.Assignments))
	}
	s.Assignments = s.Assignments[:0]
	for _, a := range c.Assignments {
		s.Assignments = append(s.Assignments, AssignmentSummary{
			Assignee: a.Assignee, Role: a.Role, Status: a.Status, ReportBy: a.ReportBy, ResolveBy: a.ResolveBy, Overdue: a.Overdue,
		})
	}
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
	// Platform matches the tickets that platform sent.
	Platform string
	Overdue  *bool
	Cursor   string
	Limit    int
}

func (q *ListQuery) match(c *CaseSummary) bool {
	return (q.Status == "" || string(c.Status) == q.Status) &&
		(q.Street == "" || c.Street == q.Street) &&
		(q.Community == "" || c.Community == q.Community) &&
		(q.Category == "" || c.Category == q.Category) &&
		(q.Urgency == "" || string(c.Urgency) == q.Urgency) &&
		(q.Assignee == "" || c.Involves(q.Assignee)) &&
		(q.Platform == "" || c.Source != nil && c.Source.Platform == q.Platform) &&
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
		cases = append(cases, cloneSummary(s))
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
