package domain

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Envelope is a stored event with everything an auditor needs: who, when, for
// which command, and the hash chain that proves the history is whole.
type Envelope struct {
	ID            string          `json:"id"`
	Type          string          `json:"type"`
	CaseID        string          `json:"case_id"`
	Version       uint64          `json:"version"`
	OccurredAt    time.Time       `json:"occurred_at"`
	Actor         Actor           `json:"actor"`
	CorrelationID string          `json:"correlation_id"`
	Data          json.RawMessage `json:"data"`
	PrevHash      string          `json:"prev_hash"`
	Hash          string          `json:"hash"`
}

// Stream returns the event store stream of a case.
func Stream(caseID string) string { return "case-" + caseID }

// CommandMeta is what a command's events share.
type CommandMeta struct {
	CommandID string // idempotency key of the command; becomes correlation_id
	Actor     Actor
	Now       time.Time
}

// Seal wraps the events decided for a case into envelopes that continue its
// version sequence and hash chain. Event ids are UUIDv7s whose time is `now`
// and whose other bits derive from the command id and the event's index, so a
// command decided again at the same instant yields the same ids.
func Seal(c *Case, meta CommandMeta, events []Event) ([]Envelope, error) {
	out := make([]Envelope, 0, len(events))
	prev := c.LastHash
	for i, e := range events {
		data, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("domain: encode %s: %w", e.EventType(), err)
		}
		env := Envelope{
			ID:            EventID(meta.CommandID, i, meta.Now),
			Type:          e.EventType(),
			CaseID:        c.ID,
			Version:       c.Version + uint64(i),
			OccurredAt:    meta.Now.UTC(),
			Actor:         meta.Actor,
			CorrelationID: meta.CommandID,
			Data:          data,
			PrevHash:      prev,
		}
		env.Hash = env.ComputeHash()
		prev = env.Hash
		out = append(out, env)
	}
	return out, nil
}

// EventID derives the id of the index-th event of a command: a UUIDv7 with the
// command's time, its other bits from SHA-256(command id, index, now).
func EventID(commandID string, index int, now time.Time) string {
	// The whole instant, to the nanosecond, goes into the hash: the UUID's
	// time field holds only milliseconds, and the same command decided at two
	// instants of one millisecond must not yield the same ids.
	var idx [16]byte
	binary.BigEndian.PutUint64(idx[:8], uint64(index))
	binary.BigEndian.PutUint64(idx[8:], uint64(now.UnixNano()))
	sum := sha256.Sum256(append([]byte(commandID+"\x00"), idx[:]...))
	var u uuid.UUID
	copy(u[:], sum[:16])
	ms := uint64(now.UnixMilli())
	u[0], u[1], u[2], u[3], u[4], u[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	u[6] = 0x70 | u[6]&0x0f // version 7
	u[8] = 0x80 | u[8]&0x3f // RFC 4122 variant
	return u.String()
}

// canonical is the envelope without its hash, in a fixed field order, with
// data compacted: the bytes that are hashed.
func (e Envelope) canonical() []byte {
	var data bytes.Buffer
	if err := json.Compact(&data, e.Data); err != nil {
		// Not JSON (or empty): hash the exact bytes, as a JSON string of their
		// base64, so that the other fields stay covered too. Marshalling them
		// raw would fail and leave only the previous hash to be hashed.
		data.Reset()
		b, _ := json.Marshal([]byte(e.Data))
		data.Write(b)
	}
	c := struct {
		ID            string          `json:"id"`
		Type          string          `json:"type"`
		CaseID        string          `json:"case_id"`
		Version       uint64          `json:"version"`
		OccurredAt    string          `json:"occurred_at"`
		Actor         Actor           `json:"actor"`
		CorrelationID string          `json:"correlation_id"`
		Data          json.RawMessage `json:"data"`
		PrevHash      string          `json:"prev_hash"`
	}{e.ID, e.Type, e.CaseID, e.Version, e.OccurredAt.UTC().Format(time.RFC3339Nano), e.Actor, e.CorrelationID, data.Bytes(), e.PrevHash}
	b, _ := json.Marshal(c) // cannot fail: every field is plain or valid JSON
	return b
}

// ComputeHash returns hex SHA-256 over the previous hash and the event's
// canonical encoding.
func (e Envelope) ComputeHash() string {
	h := sha256.New()
	h.Write([]byte(e.PrevHash))
	h.Write([]byte{'\n'})
	h.Write(e.canonical())
	return hex.EncodeToString(h.Sum(nil))
}

// ChainError says where a history stops being whole.
type ChainError struct {
	Version uint64
	Problem string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("domain: history broken at version %d: %s", e.Version, e.Problem)
}

// VerifyChain checks that a case's history is whole: versions from 0 without
// gaps, each event linked to the one before, each hash matching its content.
func VerifyChain(history []Envelope) error {
	prev := ""
	for i, e := range history {
		if e.Version != uint64(i) {
			return &ChainError{Version: uint64(i), Problem: fmt.Sprintf("found version %d", e.Version)}
		}
		if e.PrevHash != prev {
			return &ChainError{Version: e.Version, Problem: "prev_hash does not match the previous event's hash"}
		}
		if got := e.ComputeHash(); got != e.Hash {
			return &ChainError{Version: e.Version, Problem: "hash does not match the event's content"}
		}
		prev = e.Hash
	}
	return nil
}
