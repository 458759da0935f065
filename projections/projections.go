// Package projections holds whistle's read models: pure folds over the global
// log of domain.Envelope. Each model (Stats for the figures, Board for the
// case list and, seen by assignee, the queues) is a state struct with an
// ApplyCommit method; it does no I/O, reads no clock and logs nothing, so
// that replaying the same log always yields the same state, byte for byte
// (see MarshalBinary and Diff).
//
// Delivery contract shared by every model:
//
//   - Events of one case arrive in version order. A model keeps, for every
//     case it still holds, the next version it expects: an event below it is
//     a redelivery and changes nothing; an event above it is a gap and is
//     refused with ErrVersionGap.
//   - ApplyCommit, each model's one way in, applies the events of one
//     commit of the global log at once, with the commit's position (a
//     JetStream sequence, an EventStoreDB commit position; 0 is "before the
//     first commit"). A commit at or below the position reached is skipped
//     whole, so a redelivered commit changes nothing; readers never see half
//     a commit. The position travels inside the model's snapshot, so state
//     and checkpoint can never diverge.
//   - When ApplyCommit returns an error, the events before the failing one
//     are applied and the position has not moved; applying the commit again
//     skips them (a commit holds one case's events, whose versions are
//     recorded), so a retry is safe. A commit of one event that fails
//     leaves the state unchanged.
//
// Every model is safe for concurrent use: one writer applying events while
// many readers query.
package projections

import (
	"errors"
	"fmt"
	"time"

	"github.com/whistle-gov/whistle/domain"
)

// Sentinel errors that callers branch on with errors.Is; the returned errors
// wrap them and name the offending value.
var (
	// ErrUnknownCase: an event names a case the model does not hold, and it is
	// not the case's first event.
	ErrUnknownCase = errors.New("projections: unknown case")
	// ErrVersionGap: an event skips versions of its case: the log or the
	// delivery lost something.
	ErrVersionGap = errors.New("projections: version gap")
	// ErrUnexpectedEvent: an event cannot happen where it stands (a case that
	// does not start with WhistleRaised, an event after closure that the
	// domain never appends there (see afterClosure), an unknown rating).
	ErrUnexpectedEvent = errors.New("projections: unexpected event")
	// ErrBadQuery: a query parameter is invalid (group_by, window, cursor).
	ErrBadQuery = errors.New("projections: bad query")
	// ErrBadSnapshot: a snapshot cannot be restored (wrong format, corrupt).
	ErrBadSnapshot = errors.New("projections: bad snapshot")
)

// dayLayout is how a day is written in keys, snapshots and diffs.
const dayLayout = "2006-01-02"

const secondsPerDay = 86400

// A day is a calendar date counted from 1970-01-01: the same number names
// the same date in every time zone, and dayKey writes it the same way. Which
// date an instant falls on depends on the zone (figures count days in the
// calendar's zone; the board's retention in UTC).

// dayOf returns the date of t in loc.
func dayOf(t time.Time, loc *time.Location) int32 {
	_, offset := t.In(loc).Zone()
	s := t.Unix() + int64(offset)
	d := s / secondsPerDay
	if s%secondsPerDay < 0 {
		d-- // floor, also before 1970
	}
	return int32(d)
}

// dayStart returns midnight UTC of day d: the date's first instant in UTC,
// and how it is formatted.
func dayStart(d int32) time.Time { return time.Unix(int64(d)*secondsPerDay, 0).UTC() }

// dayStartIn returns the first instant of day d in loc.
func dayStartIn(d int32, loc *time.Location) time.Time {
	u := dayStart(d)
	return time.Date(u.Year(), u.Month(), u.Day(), 0, 0, 0, 0, loc)
}

// dayKey writes day d as "2006-01-02".
func dayKey(d int32) string { return dayStart(d).Format(dayLayout) }

// parseDayKey reads a day written by dayKey.
func parseDayKey(s string) (int32, error) {
	t, err := time.Parse(dayLayout, s)
	if err != nil {
		return 0, fmt.Errorf("day %q: %w", s, err)
	}
	return dayOf(t, time.UTC), nil
}

// interner shares one copy of the strings that repeat across cases (streets,
// communities, categories, assignees, enum values): decoded JSON allocates a
// fresh copy of each, which would otherwise stay alive once per case.
type interner map[string]string

func (in interner) get(s string) string {
	if v, ok := in[s]; ok {
		return v
	}
	in[s] = s
	return s
}

// decodedAt is decoded[i], nil when decoded is.
func decodedAt(decoded []domain.Event, i int) domain.Event {
	if i < len(decoded) {
		return decoded[i]
	}
	return nil
}

// decode turns an envelope's data into its event, with the envelope's ids in
// the error.
func decode(model string, env domain.Envelope) (domain.Event, error) {
	e, err := domain.DecodeEvent(env.Type, env.Data)
	if err != nil {
		return nil, fmt.Errorf("projections: %s: case %s version %d: %w", model, env.CaseID, env.Version, err)
	}
	return e, nil
}

// versionCheck classifies an event of a held case: duplicate (skip), gap
// (error) or next (apply).
func versionCheck(model string, env domain.Envelope, next uint64) (skip bool, err error) {
	switch {
	case env.Version < next:
		return true, nil
	case env.Version > next:
		return false, fmt.Errorf("%w: %s: case %s expected version %d, got %d (%s)",
			ErrVersionGap, model, env.CaseID, next, env.Version, env.Type)
	}
	return false, nil
}

// unknownCase is the error for an event of a case the model does not hold.
func unknownCase(model string, env domain.Envelope) error {
	if env.Version == 0 {
		return fmt.Errorf("%w: %s: case %s starts with %s, not %s",
			ErrUnexpectedEvent, model, env.CaseID, env.Type, domain.TypeWhistleRaised)
	}
	return fmt.Errorf("%w: %s: case %s (event %s version %d)", ErrUnknownCase, model, env.CaseID, env.Type, env.Version)
}

// afterClosure tells whether e is one of the events the domain appends to a
// closed case that change none of its summary nor its figures' closure: a
// rating, a reveal or a forgetting of its requester (years later, maybe).
// A model takes them for a closed case, and quietly for one it no longer
// holds, so that the case's version goes on and the model does not stall.
func afterClosure(e domain.Event) bool {
	switch e.(type) {
	case domain.SatisfactionRated, domain.RequesterRevealed, domain.RequesterForgotten, domain.ReceiptIssued:
		return true
	}
	return false
}
