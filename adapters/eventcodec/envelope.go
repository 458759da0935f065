package eventcodec

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/whistle-gov/whistle/adapters/eventcodec/internal/jsonscan"
	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/domain"
)

// DecodeForFold decodes a stored commit for a fold of the read models:
// each envelope's Type, CaseID, Version, OccurredAt and Data only (the ids,
// actor and hash chain are the command handler's and the auditors', and
// skipping them is most of the cost of decoding a commit), and their data.
// Each envelope is read by decodeFoldEnvelope: what encoding/json gives,
// with less CPU and fewer allocations. The Data returned aliases the
// stored commit's. Events is nil when an event's data cannot be decoded
// (see Commit).
func DecodeForFold(c eventstore.Commit) (Commit, error) {
	envs := make([]domain.Envelope, len(c.Events))
	memo := envelopeMemo{stream: c.Stream}
	for i, r := range c.Events {
		fe, err := decodeFoldEnvelope(r.Data, &memo)
		if err != nil {
			return Commit{}, envelopeError(c, r, err)
		}
		envs[i] = domain.Envelope{Type: fe.Type, CaseID: fe.CaseID, Version: fe.Version, OccurredAt: fe.OccurredAt, Data: fe.Data}
	}
	out := Commit{Position: c.Position, Stream: c.Stream, Envelopes: envs}
	out.Events, out.EventsErr = DecodeEvents(envs)
	return out, nil
}

// foldEnvelope is the part of a stored envelope the read models read. Its
// fields are domain.Envelope's.
type foldEnvelope struct {
	Type       string          `json:"type"`
	CaseID     string          `json:"case_id"`
	Version    uint64          `json:"version"`
	OccurredAt time.Time       `json:"occurred_at"`
	Data       json.RawMessage `json:"data"`
}

// envelopeMemo is what the envelopes of one commit share, so that each
// is decoded once per commit: the case (whose id is also in the commit's
// stream name, "case-<id>") and the time (one command's events share
// it).
type envelopeMemo struct {
	stream string
	caseID string
	atRaw  []byte
	at     time.Time
}

// decodeFoldEnvelope decodes a stored envelope's JSON as
// json.Unmarshal(b, &fe) does, with the same value or the same error:
// envelopes of the shape domain.Envelope marshals to are read by
// scanFoldEnvelope, anything else (escapes in the fields read, keys it
// does not know, a version that is not a plain integer, invalid JSON) by
// encoding/json (FuzzFoldEnvelope holds them equal). The Data returned
// aliases b, as the stored commit's own Data aliases the message it was
// read from; json.Unmarshal would copy it.
func decodeFoldEnvelope(b []byte, memo *envelopeMemo) (foldEnvelope, error) {
	var fe foldEnvelope
	if scanFoldEnvelope(b, &fe, memo) {
		return fe, nil
	}
	return unmarshalFoldEnvelope(b)
}

// unmarshalFoldEnvelope is json.Unmarshal(b, &fe). (Its own variable, so
// that the scanner's stays on the stack.)
func unmarshalFoldEnvelope(b []byte) (foldEnvelope, error) {
	var fe foldEnvelope
	if err := json.Unmarshal(b, &fe); err != nil {
		return foldEnvelope{}, err
	}
	return fe, nil
}

// scanFoldEnvelope reads b into fe when b is an object of an envelope's
// keys, exactly as spelled in domain.Envelope's tags, whose type, case_id
// and occurred_at are strings without escapes and whose version is an
// unsigned integer; the other members (id, actor, correlation_id, data,
// prev_hash, hash) may be any valid JSON. It reports false, with fe
// partly set, for anything else.
func scanFoldEnvelope(b []byte, fe *foldEnvelope, memo *envelopeMemo) bool {
	s := jsonscan.New(b)
	ok := s.Object(func(key []byte) bool {
		switch string(key) {
		case "type":
			v, ok := s.String()
			fe.Type = eventType(v)
			return ok
		case "case_id":
			v, ok := s.String()
			fe.CaseID = memo.caseIDOf(v)
			return ok
		case "version":
			v, ok := s.Uint64()
			fe.Version = v
			return ok
		case "occurred_at":
			raw, ok := s.RawString()
			if !ok {
				return false
			}
			if memo.atRaw == nil || !bytes.Equal(raw, memo.atRaw) {
				var t time.Time
				if t.UnmarshalJSON(raw) != nil {
					return false
				}
				memo.atRaw, memo.at = raw, t
			}
			fe.OccurredAt = memo.at
			return true
		case "data":
			v, ok := s.Skip()
			fe.Data = v
			return ok
		case "id", "actor", "correlation_id", "prev_hash", "hash":
			_, ok := s.Skip()
			return ok
		}
		return false
	})
	return ok && s.End()
}

// caseIDOf returns v as a string, without allocating when it is the id of
// the commit's case.
func (m *envelopeMemo) caseIDOf(v []byte) string {
	if m.caseID != "" && string(v) == m.caseID {
		return m.caseID
	}
	if id, ok := cutCasePrefix(m.stream); ok && id == string(v) {
		m.caseID = id
		return id
	}
	return string(v)
}

// casePrefix is what domain.Stream puts before a case id.
var casePrefix = domain.Stream("")

func cutCasePrefix(stream string) (string, bool) {
	if len(stream) > len(casePrefix) && stream[:len(casePrefix)] == casePrefix {
		return stream[len(casePrefix):], true
	}
	return "", false
}

// eventType returns v as a string, one of domain's constants when it is
// one.
func eventType(v []byte) string {
	switch string(v) {
	case domain.TypeWhistleRaised:
		return domain.TypeWhistleRaised
	case domain.TypeAssignmentMade:
		return domain.TypeAssignmentMade
	case domain.TypeAssignmentReported:
		return domain.TypeAssignmentReported
	case domain.TypeAssignmentOverdue:
		return domain.TypeAssignmentOverdue
	case domain.TypeCaseEscalated:
		return domain.TypeCaseEscalated
	case domain.TypeProgressNoted:
		return domain.TypeProgressNoted
	case domain.TypeAssignmentDeclined:
		return domain.TypeAssignmentDeclined
	case domain.TypeNeedClaimed:
		return domain.TypeNeedClaimed
	case domain.TypeAssignmentResolved:
		return domain.TypeAssignmentResolved
	case domain.TypeResolutionVerified:
		return domain.TypeResolutionVerified
	case domain.TypeResolutionRejected:
		return domain.TypeResolutionRejected
	case domain.TypeCaseClosed:
		return domain.TypeCaseClosed
	case domain.TypeSatisfactionRated:
		return domain.TypeSatisfactionRated
	}
	return string(v)
}
