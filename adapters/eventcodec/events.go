package eventcodec

import (
	"time"

	"github.com/whistle-gov/whistle/adapters/eventcodec/internal/jsonscan"
	"github.com/whistle-gov/whistle/domain"
)

// eventDecoder decodes events' data as DecodeEvent does, with the same
// event or the same error, for a replay of the log: the data whistle writes
// (json.Marshal of the event types, in any key order) is read without
// reflection, and the short strings that repeat from case to case
// (streets, communities, categories, assignees, enum values) are shared
// rather than allocated for every event (a string with escapes is
// unescaped by encoding/json alone). Anything else (null, a key an event
// type does not have, invalid JSON) is decoded by DecodeEvent itself
// (FuzzEventDecoder holds the two equal).
//
// An eventDecoder is not safe for concurrent use: keep one per goroutine.
// The zero value is ready to use.
type eventDecoder struct {
	strs map[string]string
}

// The interning is bounded, so that a log of unusual values cannot grow it
// without end; past the bound, strings are allocated as DecodeEvent does.
const (
	maxInterned   = 4096
	maxInternSize = 64
)

// Decode decodes the data of an event of eventType, as DecodeEvent.
func (d *eventDecoder) Decode(eventType string, data []byte) (domain.Event, error) {
	if e, ok := d.scan(eventType, data); ok {
		return e, nil
	}
	return domain.DecodeEvent(eventType, data)
}

// intern returns v as a string, the same string for the same bytes.
func (d *eventDecoder) intern(v []byte) string {
	if len(v) > maxInternSize {
		return string(v)
	}
	if s, ok := d.strs[string(v)]; ok {
		return s
	}
	s := string(v)
	if d.strs == nil {
		d.strs = make(map[string]string)
	}
	if len(d.strs) < maxInterned {
		d.strs[s] = s
	}
	return s
}

// shared reads a string that repeats across cases into *dst, interned.
func shared[T ~string](d *eventDecoder, s *jsonscan.Scanner, dst *T) bool {
	v, ok := s.Text()
	if ok {
		*dst = T(d.intern(v))
	}
	return ok
}

// text reads a string of one case's own (a title, a note) into *dst.
func text(s *jsonscan.Scanner, dst *string) bool {
	v, ok := s.Text()
	if ok {
		*dst = string(v)
	}
	return ok
}

func timeField(s *jsonscan.Scanner, dst *time.Time) bool {
	t, ok := s.Time()
	if ok {
		*dst = t
	}
	return ok
}

func boolField(s *jsonscan.Scanner, dst *bool) bool {
	v, ok := s.Bool()
	if ok {
		*dst = v
	}
	return ok
}

// scan decodes data when it is of the plain shape described on
// eventDecoder; ok is false otherwise, and the caller decodes it again with
// DecodeEvent. Duplicate keys are applied in order, as encoding/json does.
func (d *eventDecoder) scan(eventType string, data []byte) (domain.Event, bool) {
	if len(data) == 0 {
		return nil, false
	}
	s := jsonscan.New(data)
	var e domain.Event
	var ok bool
	switch eventType {
	case domain.TypeWhistleRaised:
		var v domain.WhistleRaised
		ok = s.Object(func(k []byte) bool {
			switch string(k) {
			case "street":
				return shared(d, &s, &v.Street)
			case "community":
				return shared(d, &s, &v.Community)
			case "category":
				return shared(d, &s, &v.Category)
			case "kind":
				return shared(d, &s, &v.Kind)
			case "urgency":
				return shared(d, &s, &v.Urgency)
			case "title":
				return text(&s, &v.Title)
			case "description":
				return text(&s, &v.Description)
			case "location":
				// encoding/json decodes into the domain.Location already there,
				// if an earlier "location" made one.
				if v.Location == nil {
					v.Location = &domain.Location{}
				}
				return d.location(&s, v.Location)
			case "directory_version":
				return shared(d, &s, &v.DirectoryVersion)
			case "request_sha256":
				return text(&s, &v.RequestSHA256)
			}
			return false
		})
		e = v
	case domain.TypeAssignmentMade:
		var v domain.AssignmentMade
		ok = s.Object(func(k []byte) bool {
			switch string(k) {
			case "assignee":
				return shared(d, &s, &v.Assignee)
			case "role":
				return shared(d, &s, &v.Role)
			case "report_by":
				return timeField(&s, &v.ReportBy)
			case "resolve_by":
				return timeField(&s, &v.ResolveBy)
			case "by_hand":
				return boolField(&s, &v.ByHand)
			}
			return false
		})
		e = v
	case domain.TypeAssignmentReported:
		var v domain.AssignmentReported
		ok = s.Object(func(k []byte) bool {
			switch string(k) {
			case "assignee":
				return shared(d, &s, &v.Assignee)
			case "role":
				return shared(d, &s, &v.Role)
			case "note":
				return text(&s, &v.Note)
			}
			return false
		})
		e = v
	case domain.TypeAssignmentOverdue:
		var v domain.AssignmentOverdue
		ok = s.Object(func(k []byte) bool {
			switch string(k) {
			case "assignee":
				return shared(d, &s, &v.Assignee)
			case "role":
				return shared(d, &s, &v.Role)
			case "deadline":
				return shared(d, &s, &v.Deadline)
			case "level":
				return shared(d, &s, &v.Level)
			case "due":
				return timeField(&s, &v.Due)
			}
			return false
		})
		e = v
	case domain.TypeCaseEscalated:
		var v domain.CaseEscalated
		ok = s.Object(func(k []byte) bool {
			switch string(k) {
			case "deadline":
				return shared(d, &s, &v.Deadline)
			case "level":
				return shared(d, &s, &v.Level)
			case "assignee":
				return shared(d, &s, &v.Assignee)
			}
			return false
		})
		e = v
	case domain.TypeProgressNoted:
		var v domain.ProgressNoted
		ok = s.Object(func(k []byte) bool {
			switch string(k) {
			case "assignee":
				return shared(d, &s, &v.Assignee)
			case "role":
				return shared(d, &s, &v.Role)
			case "note":
				return text(&s, &v.Note)
			}
			return false
		})
		e = v
	case domain.TypeAssignmentDeclined:
		var v domain.AssignmentDeclined
		ok = s.Object(func(k []byte) bool {
			switch string(k) {
			case "assignee":
				return shared(d, &s, &v.Assignee)
			case "role":
				return shared(d, &s, &v.Role)
			case "reason":
				return text(&s, &v.Reason)
			case "suggest":
				return shared(d, &s, &v.Suggest)
			}
			return false
		})
		e = v
	case domain.TypeNeedClaimed:
		var v domain.NeedClaimed
		ok = s.Object(func(k []byte) bool {
			switch string(k) {
			case "assignee":
				return shared(d, &s, &v.Assignee)
			case "role":
				return shared(d, &s, &v.Role)
			case "resolve_by":
				return timeField(&s, &v.ResolveBy)
			case "note":
				return text(&s, &v.Note)
			}
			return false
		})
		e = v
	case domain.TypeAssignmentResolved:
		var v domain.AssignmentResolved
		ok = s.Object(func(k []byte) bool {
			switch string(k) {
			case "assignee":
				return shared(d, &s, &v.Assignee)
			case "role":
				return shared(d, &s, &v.Role)
			case "note":
				return text(&s, &v.Note)
			case "mediation":
				return shared(d, &s, &v.Mediation)
			}
			return false
		})
		e = v
	case domain.TypeResolutionVerified:
		var v domain.ResolutionVerified
		ok = s.Object(func(k []byte) bool {
			switch string(k) {
			case "note":
				return text(&s, &v.Note)
			case "reply":
				return text(&s, &v.Reply)
			}
			return false
		})
		e = v
	case domain.TypeResolutionRejected:
		var v domain.ResolutionRejected
		ok = s.Object(func(k []byte) bool {
			return string(k) == "note" && text(&s, &v.Note)
		})
		e = v
	case domain.TypeCaseClosed:
		ok = s.Object(func([]byte) bool { return false })
		e = domain.CaseClosed{}
	case domain.TypeSatisfactionRated:
		var v domain.SatisfactionRated
		ok = s.Object(func(k []byte) bool {
			return string(k) == "rating" && shared(d, &s, &v.Rating)
		})
		e = v
	default:
		return nil, false
	}
	if !ok || !s.End() {
		return nil, false
	}
	return e, true
}

// location reads a Location's members into l.
func (d *eventDecoder) location(s *jsonscan.Scanner, l *domain.Location) bool {
	return s.Object(func(k []byte) bool {
		switch string(k) {
		case "address":
			return text(s, &l.Address)
		case "lat":
			f, ok := s.Float64()
			if ok {
				l.Lat = &f
			}
			return ok
		case "lon":
			f, ok := s.Float64()
			if ok {
				l.Lon = &f
			}
			return ok
		}
		return false
	})
}
