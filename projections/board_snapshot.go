package projections

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/whistle-gov/whistle/domain"
)

const boardFormat = "whistle-board/1"

type boardSnap struct {
	Format   string          `json:"format"`
	Position uint64          `json:"position"`
	Cases    []boardCaseSnap `json:"cases"` // oldest raised first
	// Day is the latest day seen ("2006-01-02"), Retired the closed cases
	// that have left; both absent before the first event.
	Day     string `json:"day,omitempty"`
	Retired uint64 `json:"retired,omitempty"`
}

// boardCaseSnap is a summary plus, for an open case, the missed-deadline
// flags of each assignment (1: report, 2: resolve).
type boardCaseSnap struct {
	CaseSummary
	Missed []int `json:"missed,omitempty"`
}

// MarshalBinary encodes the whole board, with the log position reached, as
// versioned JSON. Equal boards encode to equal bytes. It holds the whole
// encoding in memory; WriteSnapshot streams the same bytes.
func (b *Board) MarshalBinary() ([]byte, error) {
	var buf bytes.Buffer
	if err := b.WriteSnapshot(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// UnmarshalBinary replaces the whole board (and its position) with a
// snapshot written by MarshalBinary or WriteSnapshot. On error the board is
// unchanged.
func (b *Board) UnmarshalBinary(data []byte) error {
	fresh := NewBoard()
	err := unmarshalStreamed(data,
		func(dec *json.Decoder) error { return fresh.readSnapshot(&snapReader{dec: dec}) },
		func() error {
			// Not laid out as WriteSnapshot writes it: the whole document.
			var snap boardSnap
			if err := json.Unmarshal(data, &snap); err != nil {
				return fmt.Errorf("%w: board: %v", ErrBadSnapshot, err)
			}
			fresh = NewBoard()
			if err := fresh.restore(&snap); err != nil {
				return fmt.Errorf("%w: board: %v", ErrBadSnapshot, err)
			}
			return nil
		})
	if err != nil {
		return err
	}
	b.install(fresh)
	return nil
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
	b.cases, b.order, b.strs, b.pos, b.day, b.retired = fresh.cases, fresh.order, fresh.strs, fresh.pos, fresh.day, fresh.retired
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
		if format != boardFormat {
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

// WriteSnapshot writes the bytes MarshalBinary returns to w, case by case,
// through a buffer of about 64 KiB: the encoding costs that buffer, not a
// copy of the board. It holds the board still (a read lock) until it
// returns, so w should be quick to take the bytes (a file, a buffer): a
// fold waits meanwhile.
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
		// An open case's missed-deadline flags (omitempty: none without
		// assignments); a closed case has none.
		if s.ClosedAt == nil && len(ent.missed) > 0 {
			e.raw(`,"missed":[`)
			for j, m := range ent.missed {
				if j > 0 {
					e.raw(",")
				}
				e.uint(uint64(m))
			}
			e.raw("]")
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

func (b *Board) snapshot() *boardSnap {
	b.mu.RLock()
	defer b.mu.RUnlock()
	snap := &boardSnap{Format: boardFormat, Position: b.pos, Cases: make([]boardCaseSnap, 0, len(b.order)), Retired: b.retired}
	if b.day != 0 {
		snap.Day = dayKey(b.day)
	}
	for _, ent := range b.order {
		cs := boardCaseSnap{CaseSummary: ent.sum.clone()}
		if ent.sum.ClosedAt == nil {
			cs.Missed = make([]int, len(ent.missed))
			for i, m := range ent.missed {
				cs.Missed[i] = int(m)
			}
		}
		snap.Cases = append(snap.Cases, cs)
	}
	return snap
}

// restore builds the state of an empty board from a whole snapshot.
func (b *Board) restore(snap *boardSnap) error {
	if snap.Format != boardFormat {
		return fmt.Errorf("format %q, want %q", snap.Format, boardFormat)
	}
	b.pos, b.retired = snap.Position, snap.Retired
	if err := b.restoreDay(snap.Day); err != nil {
		return err
	}
	for i := range snap.Cases {
		if err := b.restoreCase(&snap.Cases[i]); err != nil {
			return err
		}
	}
	return nil
}

func (b *Board) restoreDay(day string) error {
	if day == "" {
		return nil
	}
	t, err := time.Parse(dayLayout, day)
	if err != nil {
		return fmt.Errorf("day %q: %v", day, err)
	}
	b.day = dayOf(t)
	return nil
}

// restoreCase adds the next case of a snapshot, which lists them in the
// board's order.
func (b *Board) restoreCase(cs *boardCaseSnap) error {
	s := cs.CaseSummary
	if s.CaseID == "" || s.Version == 0 {
		return fmt.Errorf("a case without id or version: %q", s.CaseID)
	}
	if b.cases[s.CaseID] != nil {
		return fmt.Errorf("case %s appears twice", s.CaseID)
	}
	s.Street, s.Community, s.Category = b.strs.get(s.Street), b.strs.get(s.Community), b.strs.get(s.Category)
	s.Kind, s.Urgency, s.Status = domain.Kind(b.strs.get(string(s.Kind))), domain.Urgency(b.strs.get(string(s.Urgency))), domain.Status(b.strs.get(string(s.Status)))
	s.RaisedAt = s.RaisedAt.UTC()
	if s.ClosedAt != nil {
		t := s.ClosedAt.UTC()
		s.ClosedAt = &t
	}
	if s.Assignments == nil {
		s.Assignments = []AssignmentSummary{}
	}
	for i := range s.Assignments {
		a := &s.Assignments[i]
		a.Assignee, a.Role, a.Status = b.strs.get(a.Assignee), domain.Role(b.strs.get(string(a.Role))), domain.AssignmentStatus(b.strs.get(string(a.Status)))
		a.ReportBy, a.ResolveBy = utcPtr(a.ReportBy), utcPtr(a.ResolveBy)
	}
	ent := &boardEntry{sum: s}
	if s.ClosedAt == nil {
		if len(cs.Missed) != len(s.Assignments) {
			return fmt.Errorf("case %s: %d missed-deadline flags for %d assignments", s.CaseID, len(cs.Missed), len(s.Assignments))
		}
		ent.missed = make([]uint8, len(cs.Missed))
		for i, m := range cs.Missed {
			if m < 0 || m > int(missedReport|missedResolve) {
				return fmt.Errorf("case %s: bad missed-deadline flags %d", s.CaseID, m)
			}
			ent.missed[i] = uint8(m)
		}
	}
	if n := len(b.order); n > 0 && b.order[n-1].key().cmp(ent.key()) >= 0 {
		return fmt.Errorf("case %s is out of order", s.CaseID)
	}
	b.cases[s.CaseID] = ent
	b.order = append(b.order, ent)
	return nil
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
