package projections

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/whistle-gov/whistle/domain"
)

// boardFormat names the snapshot encoding; a snapshot of another format is
// refused rather than guessed at.
//
// Format 2 carries each open case's domain state (see openCaseSnap), from
// which the board goes on folding with domain.Case.Evolve and answers the
// queues.
//
// Format 3 adds each case's second round and callback task, and what a
// case needs to take them (resident).
//
// Format 4 adds a ticket's source, priority, accept deadline and return
// (in the summary) and its signing (in the open state). A format 3
// snapshot was written before tickets, so it holds none and is read as it
// is; a reader of format 3 would drop those members silently, so the
// format says they are there.
const boardFormat = "whistle-board/4"

// boardFormatsRead are the older formats still restored as they are.
var boardFormatsRead = map[string]bool{"whistle-board/3": true}

// boardFormatsBefore are the formats boardFormat replaced, with why they
// cannot be restored, for the error that refuses them.
var boardFormatsBefore = map[string]string{
	"whistle-board/1": "it lacks the open cases' report-in times, decline notes and escalations, which only a fold of the log from the start can build",
	"whistle-board/2": "it lacks the cases' callback tasks and second rounds, which only a fold of the log from the start can build",
}

type boardSnap struct {
	Format   string          `json:"format"`
	Position uint64          `json:"position"`
	Cases    []boardCaseSnap `json:"cases"` // oldest raised first
	// Day is the latest day seen ("2006-01-02"), Retired the closed cases
	// that have left; both absent before the first event.
	Day     string `json:"day,omitempty"`
	Retired uint64 `json:"retired,omitempty"`
}

// boardCaseSnap is a summary plus, for an open case, the rest of its
// domain state.
type boardCaseSnap struct {
	CaseSummary
	Open     *openCaseSnap `json:"open,omitempty"`
	Resident *residentSnap `json:"resident,omitempty"`
}

// residentSnap is what a case's callbacks need beyond its summary: whether
// it has a requester to call, and whether that one was forgotten.
type residentSnap struct {
	HasRequester bool `json:"has_requester,omitempty"`
	Forgotten    bool `json:"forgotten,omitempty"`
}

func residentSnapOf(ent *boardEntry) *residentSnap {
	has, forgotten := ent.hasRequester, ent.forgotten
	if ent.c != nil {
		has, forgotten = ent.c.HasRequester, ent.c.RequesterForgotten
	}
	if !has && !forgotten {
		return nil
	}
	return &residentSnap{HasRequester: has, Forgotten: forgotten}
}

// openCaseSnap is what an open case's domain.Case holds beyond its summary:
// per assignment (in the summary's order) its times, decline note and
// missed deadlines, and the case's mediation and escalations (sorted).
type openCaseSnap struct {
	Assignments []openAssignmentSnap `json:"assignments"`
	Mediation   *domain.Mediation    `json:"mediation,omitempty"`
	Escalations []domain.Escalation  `json:"escalations,omitempty"`
	// Attachments: the case's files (absent in snapshots written before
	// attachments existed, which had none).
	Attachments []domain.Attachment `json:"attachments,omitempty"`
	// AcceptedAt and MissedAccept: a ticket's signing, and whether its
	// accept deadline was marked overdue.
	AcceptedAt   *time.Time `json:"accepted_at,omitempty"`
	MissedAccept bool       `json:"missed_accept,omitempty"`
}

type openAssignmentSnap struct {
	ReportedAt     *time.Time `json:"reported_at,omitempty"`
	ResolvedAt     *time.Time `json:"resolved_at,omitempty"`
	DeclineReason  string     `json:"decline_reason,omitempty"`
	DeclineSuggest string     `json:"decline_suggest,omitempty"`
	MissedReport   bool       `json:"missed_report,omitempty"`
	MissedResolve  bool       `json:"missed_resolve,omitempty"`
}

// openCaseSnapOf is the domain state of an open case beyond its summary.
func openCaseSnapOf(c *domain.Case) *openCaseSnap {
	o := &openCaseSnap{Assignments: make([]openAssignmentSnap, len(c.Assignments)), Mediation: c.Mediation, Escalations: escalations(c),
		Attachments: c.Attachments, AcceptedAt: c.AcceptedAt, MissedAccept: c.MissedAccept}
	for i, a := range c.Assignments {
		o.Assignments[i] = openAssignmentSnap{ReportedAt: a.ReportedAt, ResolvedAt: a.ResolvedAt, DeclineReason: a.DeclineNote,
			DeclineSuggest: a.DeclineSuggest, MissedReport: a.MissedReport, MissedResolve: a.MissedResolve}
	}
	return o
}

// escalations lists a case's escalations in a canonical order.
func escalations(c *domain.Case) []domain.Escalation {
	if len(c.Escalations) == 0 {
		return nil
	}
	out := make([]domain.Escalation, 0, len(c.Escalations))
	for e, ok := range c.Escalations {
		if ok {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(x, y domain.Escalation) int {
		return cmp.Or(strings.Compare(x.Assignee, y.Assignee), strings.Compare(string(x.Deadline), string(y.Deadline)), strings.Compare(x.Level, y.Level))
	})
	return out
}

// MarshalBinary encodes the whole board, with the log position reached, as
// WriteSnapshot does, into memory. Equal boards encode to equal bytes.
func (b *Board) MarshalBinary() ([]byte, error) {
	var buf bytes.Buffer
	if err := b.WriteSnapshot(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// UnmarshalBinary replaces the whole board (and its position) with a
// snapshot written by MarshalBinary or WriteSnapshot, as ReadSnapshot
// does; nothing may follow it. On error the board is unchanged.
func (b *Board) UnmarshalBinary(data []byte) error {
	return unmarshalWhole(data, func(dec *json.Decoder) error { return b.ReadSnapshot(dec, nil) })
}

// ReadSnapshot replaces the whole board (and its position) with the
// snapshot dec reads next, written by WriteSnapshot, decoding and restoring
// one case at a time; step is as for Stats.ReadSnapshot, and so are the
// errors. On error the board is unchanged; dec is left anywhere.
func (b *Board) ReadSnapshot(dec *json.Decoder, step func()) error {
	fresh := NewBoard()
	if err := fresh.readSnapshot(&snapReader{dec: dec, step: step}); err != nil {
		return err
	}
	b.install(fresh)
	return nil
}

func (b *Board) install(fresh *Board) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cases, b.order, b.queues, b.inbox, b.strs, b.pos, b.day, b.retired = fresh.cases, fresh.order, fresh.queues, fresh.inbox, fresh.strs, fresh.pos, fresh.day, fresh.retired
	b.callbacks = fresh.callbacks
}

func (b *Board) readSnapshot(r *snapReader) error {
	err := func() error {
		if err := r.open(); err != nil {
			return err
		}
		var format string
		if err := r.member("format", &format); err != nil {
			return err
		}
		if why, ok := boardFormatsBefore[format]; ok {
			return fmt.Errorf("format %q, want %q: %s", format, boardFormat, why)
		}
		if format != boardFormat && !boardFormatsRead[format] {
			return fmt.Errorf("format %q, want %q", format, boardFormat)
		}
		if err := r.member("position", &b.pos); err != nil {
			return err
		}
		if err := r.array("cases", func(dec *json.Decoder) error {
			var cs boardCaseSnap
			if err := dec.Decode(&cs); err != nil {
				return err
			}
			return b.restoreCase(&cs)
		}); err != nil {
			return err
		}
		// day and retired are left out when empty (omitempty); retired is
		// never without day (a case retires only once days have passed).
		if ok, err := r.optional("day"); err != nil {
			return err
		} else if ok {
			var day string
			if err := r.dec.Decode(&day); err != nil {
				return syntax(err)
			}
			if err := b.restoreDay(day); err != nil {
				return err
			}
		}
		if ok, err := r.optional("retired"); err != nil {
			return err
		} else if ok {
			if err := r.dec.Decode(&b.retired); err != nil {
				return syntax(err)
			}
		}
		return r.close()
	}()
	if err != nil {
		return fmt.Errorf("%w: board: %w", ErrBadSnapshot, err)
	}
	return nil
}

// WriteSnapshot writes the board to w, case by case, through a buffer of
// about 64 KiB: the encoding costs that buffer, not a copy of the board.
// The bytes are those json.Marshal writes for boardSnap. It holds the board
// still (a read lock) until it returns, so w should be quick to take the
// bytes (a file, a buffer): a fold waits meanwhile.
func (b *Board) WriteSnapshot(w io.Writer) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	e := newSnapWriter(w)
	e.raw(`{"format":`)
	e.str(boardFormat)
	e.raw(`,"position":`)
	e.uint(b.pos)
	e.raw(`,"cases":[`)
	for i, ent := range b.order {
		if i > 0 {
			e.raw(",")
		}
		s := &ent.sum
		e.raw(`{"case_id":`)
		e.str(s.CaseID)
		e.raw(`,"street":`)
		e.str(s.Street)
		e.raw(`,"community":`)
		e.str(s.Community)
		e.raw(`,"category":`)
		e.str(s.Category)
		e.raw(`,"kind":`)
		e.str(string(s.Kind))
		e.raw(`,"urgency":`)
		e.str(string(s.Urgency))
		e.raw(`,"title":`)
		e.str(s.Title)
		e.raw(`,"status":`)
		e.str(string(s.Status))
		e.raw(`,"raised_at":`)
		e.time(s.RaisedAt)
		e.raw(`,"closed_at":`)
		e.timeOrNull(s.ClosedAt)
		e.raw(`,"assignments":`)
		if s.Assignments == nil {
			e.raw("null")
		} else {
			e.raw("[")
			for j := range s.Assignments {
				a := &s.Assignments[j]
				if j > 0 {
					e.raw(",")
				}
				e.raw(`{"assignee":`)
				e.str(a.Assignee)
				e.raw(`,"role":`)
				e.str(string(a.Role))
				e.raw(`,"status":`)
				e.str(string(a.Status))
				e.raw(`,"report_by":`)
				e.timeOrNull(a.ReportBy)
				e.raw(`,"resolve_by":`)
				e.timeOrNull(a.ResolveBy)
				e.raw(`,"overdue":`)
				e.bool(a.Overdue)
				e.raw("}")
			}
			e.raw("]")
		}
		e.raw(`,"version":`)
		e.uint(s.Version)
		if s.Position != 0 {
			e.raw(`,"position":`)
			e.uint(s.Position)
		}
		if s.SecondRound {
			e.raw(`,"second_round":true`)
		}
		if cb := s.Callback; cb != nil {
			e.raw(`,"callback":{"status":`)
			e.str(cb.Status)
			e.raw(`,"attempts":`)
			e.int(int64(cb.Attempts))
			e.raw(`,"round":`)
			e.int(int64(cb.Round))
			e.raw(`,"since":`)
			e.time(cb.Since)
			if cb.EndedAt != nil {
				e.raw(`,"ended_at":`)
				e.time(*cb.EndedAt)
			}
			e.raw("}")
		}
		e.ticket(s)
		if ent.c != nil {
			e.open(ent.c)
		}
		if r := residentSnapOf(ent); r != nil {
			e.raw(`,"resident":{`)
			if r.HasRequester {
				e.raw(`"has_requester":true`)
			}
			if r.Forgotten {
				if r.HasRequester {
					e.raw(",")
				}
				e.raw(`"forgotten":true`)
			}
			e.raw("}")
		}
		e.raw("}")
		if e.record(); e.err != nil {
			return e.err
		}
	}
	e.raw("]")
	if b.day != 0 {
		e.raw(`,"day":`)
		e.day(b.day)
	}
	if b.retired != 0 {
		e.raw(`,"retired":`)
		e.uint(b.retired)
	}
	e.raw("}")
	return e.done()
}

// open writes the "open" member of an open case, as openCaseSnapOf has it.
func (e *snapWriter) open(c *domain.Case) {
	e.raw(`,"open":{"assignments":[`)
	for j, a := range c.Assignments {
		if j > 0 {
			e.raw(",")
		}
		e.raw("{")
		sep := ""
		member := func(name string) {
			e.raw(sep + `"` + name + `":`)
			sep = ","
		}
		if a.ReportedAt != nil {
			member("reported_at")
			e.time(*a.ReportedAt)
		}
		if a.ResolvedAt != nil {
			member("resolved_at")
			e.time(*a.ResolvedAt)
		}
		if a.DeclineNote != "" {
			member("decline_reason")
			e.str(a.DeclineNote)
		}
		if a.DeclineSuggest != "" {
			member("decline_suggest")
			e.str(a.DeclineSuggest)
		}
		if a.MissedReport {
			member("missed_report")
			e.bool(true)
		}
		if a.MissedResolve {
			member("missed_resolve")
			e.bool(true)
		}
		e.raw("}")
	}
	e.raw("]")
	if c.Mediation != nil {
		e.raw(`,"mediation":`)
		e.str(string(*c.Mediation))
	}
	if esc := escalations(c); len(esc) > 0 {
		e.raw(`,"escalations":[`)
		for j, x := range esc {
			if j > 0 {
				e.raw(",")
			}
			e.raw(`{"assignee":`)
			e.str(x.Assignee)
			e.raw(`,"deadline":`)
			e.str(string(x.Deadline))
			e.raw(`,"level":`)
			e.str(x.Level)
			e.raw("}")
		}
		e.raw("]")
	}
	if len(c.Attachments) > 0 {
		e.raw(`,"attachments":[`)
		for j, x := range c.Attachments {
			if j > 0 {
				e.raw(",")
			}
			e.raw(`{"sha256":`)
			e.str(x.SHA256)
			e.raw(`,"name":`)
			e.str(x.Name)
			e.raw(`,"type":`)
			e.str(x.Type)
			e.raw(`,"size":`)
			e.int(x.Size)
			e.raw(`,"by":{"role":`)
			e.str(string(x.By.Role))
			e.raw(`,"id":`)
			e.str(x.By.ID)
			e.raw("}}")
		}
		e.raw("]")
	}
	if c.AcceptedAt != nil {
		e.raw(`,"accepted_at":`)
		e.time(*c.AcceptedAt)
	}
	if c.MissedAccept {
		e.raw(`,"missed_accept":true`)
	}
	e.raw("}")
}

// ticket writes a ticket's members of a summary, as json.Marshal does
// (each omitted when empty).
func (e *snapWriter) ticket(s *CaseSummary) {
	if src := s.Source; src != nil {
		e.raw(`,"source":{"platform":`)
		e.str(src.Platform)
		e.raw(`,"external_id":`)
		e.str(src.ExternalID)
		e.raw(`,"reply_by":`)
		e.timeOrNull(src.ReplyBy)
		if src.Channel != "" {
			e.raw(`,"channel":`)
			e.str(string(src.Channel))
		}
		e.raw("}")
	}
	if s.Priority != "" {
		e.raw(`,"priority":`)
		e.str(string(s.Priority))
	}
	if s.AcceptBy != nil {
		e.raw(`,"accept_by":`)
		e.time(*s.AcceptBy)
	}
	if s.AcceptOverdue {
		e.raw(`,"accept_overdue":true`)
	}
	if s.ReturnedAt != nil {
		e.raw(`,"returned_at":`)
		e.time(*s.ReturnedAt)
	}
}

func (b *Board) snapshot() *boardSnap {
	b.mu.RLock()
	defer b.mu.RUnlock()
	snap := &boardSnap{Format: boardFormat, Position: b.pos, Cases: make([]boardCaseSnap, 0, len(b.order)), Retired: b.retired}
	if b.day != 0 {
		snap.Day = dayKey(b.day)
	}
	for _, ent := range b.order {
		cs := boardCaseSnap{CaseSummary: cloneSummary(&ent.sum), Resident: residentSnapOf(ent)}
		if ent.c != nil {
			cs.Open = openCaseSnapOf(ent.c)
		}
		snap.Cases = append(snap.Cases, cs)
	}
	return snap
}

func (b *Board) restoreDay(day string) error {
	if day == "" {
		return nil
	}
	t, err := time.Parse(dayLayout, day)
	if err != nil {
		return fmt.Errorf("day %q: %v", day, err)
	}
	b.day = dayOf(t, time.UTC)
	return nil
}

// restoreCase adds the next case of a snapshot, which lists them in the
// board's order. An open case's domain state is rebuilt from its summary
// and the rest of its state, and its summary shown from that state again,
// so that the two cannot disagree.
func (b *Board) restoreCase(cs *boardCaseSnap) error {
	s := cs.CaseSummary
	if s.CaseID == "" || s.Version == 0 {
		return fmt.Errorf("a case without id or version: %q", s.CaseID)
	}
	if b.cases[s.CaseID] != nil {
		return fmt.Errorf("case %s appears twice", s.CaseID)
	}
	if s.Assignments == nil {
		s.Assignments = []AssignmentSummary{}
	}
	s.RaisedAt = s.RaisedAt.UTC()
	s.ClosedAt = utcPtr(s.ClosedAt)
	s.AcceptBy, s.ReturnedAt = utcPtr(s.AcceptBy), utcPtr(s.ReturnedAt)
	if s.Source != nil {
		src := *s.Source
		src.ReplyBy = utcPtr(src.ReplyBy)
		s.Source = &src
	}
	for i := range s.Assignments {
		a := &s.Assignments[i]
		a.ReportBy, a.ResolveBy = utcPtr(a.ReportBy), utcPtr(a.ResolveBy)
	}
	if cb := s.Callback; cb != nil {
		cp := *cb
		cp.Since, cp.EndedAt = cp.Since.UTC(), utcPtr(cp.EndedAt)
		s.Callback = &cp
	}
	ent := &boardEntry{sum: s}
	if r := cs.Resident; r != nil {
		ent.hasRequester, ent.forgotten = r.HasRequester, r.Forgotten
	}
	switch {
	case s.Final() && cs.Open != nil:
		return fmt.Errorf("case %s is closed and open", s.CaseID)
	case !s.Final() && cs.Open == nil:
		return fmt.Errorf("case %s is open without its state", s.CaseID)
	case !s.Final():
		c, err := restoreOpenCase(&s, cs.Open)
		if err != nil {
			return err
		}
		c.SecondRound, c.Callback = s.SecondRound, s.Callback
		c.HasRequester, c.RequesterForgotten = ent.hasRequester, ent.forgotten
		ent.c = c
		b.share(c)
		ent.show()
		b.index(ent)
	default:
		s := &ent.sum
		s.Street, s.Community, s.Category = b.strs.get(s.Street), b.strs.get(s.Community), b.strs.get(s.Category)
		s.Kind, s.Urgency, s.Status = domain.Kind(b.strs.get(string(s.Kind))), domain.Urgency(b.strs.get(string(s.Urgency))), domain.Status(b.strs.get(string(s.Status)))
		for i := range s.Assignments {
			a := &s.Assignments[i]
			a.Assignee, a.Role, a.Status = b.strs.get(a.Assignee), domain.Role(b.strs.get(string(a.Role))), domain.AssignmentStatus(b.strs.get(string(a.Status)))
		}
		b.indexCallback(ent)
	}
	if n := len(b.order); n > 0 && b.order[n-1].key().cmp(ent.key()) >= 0 {
		return fmt.Errorf("case %s is out of order", s.CaseID)
	}
	b.cases[s.CaseID] = ent
	b.order = append(b.order, ent)
	return nil
}

// restoreOpenCase rebuilds an open case's domain state from its summary and the
// rest of it.
func restoreOpenCase(s *CaseSummary, o *openCaseSnap) (*domain.Case, error) {
	if len(o.Assignments) != len(s.Assignments) {
		return nil, fmt.Errorf("case %s: the state of %d assignments for %d", s.CaseID, len(o.Assignments), len(s.Assignments))
	}
	raised := s.RaisedAt
	c := &domain.Case{
		ID: s.CaseID, Street: s.Street, Community: s.Community, Category: s.Category, Kind: s.Kind, Urgency: s.Urgency,
		Title: s.Title, Status: s.Status, Version: s.Version, RaisedAt: &raised, Mediation: o.Mediation,
		Assignments: make([]*domain.Assignment, len(s.Assignments)), Attachments: o.Attachments,
		Source: s.Source, Priority: s.Priority, AcceptBy: s.AcceptBy, AcceptedAt: utcPtr(o.AcceptedAt), MissedAccept: o.MissedAccept,
	}
	for i, a := range s.Assignments {
		x := o.Assignments[i]
		c.Assignments[i] = &domain.Assignment{
			Assignee: a.Assignee, Role: a.Role, Status: a.Status, ReportBy: a.ReportBy, ResolveBy: a.ResolveBy,
			ReportedAt: utcPtr(x.ReportedAt), ResolvedAt: utcPtr(x.ResolvedAt), Overdue: a.Overdue,
			DeclineNote: x.DeclineReason, DeclineSuggest: x.DeclineSuggest, MissedReport: x.MissedReport, MissedResolve: x.MissedResolve,
		}
	}
	for _, e := range o.Escalations {
		if c.Escalations == nil {
			c.Escalations = map[domain.Escalation]bool{}
		}
		c.Escalations[e] = true
	}
	return c, nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// diffBoard lists every difference between two boards, case by case and
// field by field.
func diffBoard(live, replay *Board) []string {
	a, b := live.snapshot(), replay.snapshot()
	var out []string
	add := func(format string, args ...any) { out = append(out, "board "+fmt.Sprintf(format, args...)) }
	if a.Position != b.Position {
		add("position: live %d, replay %d", a.Position, b.Position)
	}
	if a.Retired != b.Retired {
		add("closed cases retired: live %d, replay %d", a.Retired, b.Retired)
	}
	byID := func(cs []boardCaseSnap) []boardCaseSnap {
		out := slices.Clone(cs)
		slices.SortFunc(out, func(x, y boardCaseSnap) int {
			switch {
			case x.CaseID < y.CaseID:
				return -1
			case x.CaseID > y.CaseID:
				return 1
			}
			return 0
		})
		return out
	}
	ca, cb := byID(a.Cases), byID(b.Cases)
	i, j := 0, 0
	for i < len(ca) || j < len(cb) {
		switch {
		case j == len(cb) || i < len(ca) && ca[i].CaseID < cb[j].CaseID:
			add("case %s: only in live", ca[i].CaseID)
			i++
		case i == len(ca) || cb[j].CaseID < ca[i].CaseID:
			add("case %s: only in replay", cb[j].CaseID)
			j++
		default:
			diffCase(add, &ca[i], &cb[j])
			i++
			j++
		}
	}
	return out
}

func diffCase(add func(string, ...any), x, y *boardCaseSnap) {
	fields := func(c *boardCaseSnap) map[string]json.RawMessage {
		j, _ := json.Marshal(c)
		m := map[string]json.RawMessage{}
		_ = json.Unmarshal(j, &m)
		delete(m, "assignments")
		return m
	}
	fx, fy := fields(x), fields(y)
	names := sortedKeys(fx)
	for _, k := range sortedKeys(fy) {
		if _, ok := fx[k]; !ok {
			names = append(names, k)
		}
	}
	for _, k := range names {
		if vx, vy := string(fx[k]), string(fy[k]); vx != vy {
			add("case %s %s: live %s, replay %s", x.CaseID, k, orNone(vx), orNone(vy))
		}
	}
	for k := range max(len(x.Assignments), len(y.Assignments)) {
		show := func(as []AssignmentSummary) string {
			if k >= len(as) {
				return "none"
			}
			j, _ := json.Marshal(as[k])
			return string(j)
		}
		if vx, vy := show(x.Assignments), show(y.Assignments); vx != vy {
			add("case %s assignment %d: live %s, replay %s", x.CaseID, k, vx, vy)
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
