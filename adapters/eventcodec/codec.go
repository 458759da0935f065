// Package eventcodec is the one encoding of whistle's stored events: the
// command handler encodes its envelopes with it, and every reader of the log
// (the followers, the read models, a case read, the auditors' replay)
// decodes with it. domain owns the envelope, the event types and the hash
// chain; this package owns their bytes in the store.
//
// Envelopes are JSON (json.Marshal of domain.Envelope). Reading them is
// most of what a follower or a replay spends, so the shapes whistle writes
// are read by hand-written scanners (events.go, envelope.go) that give what
// encoding/json gives, value for value and error for error, and fall back
// to it for anything unusual; fuzz tests hold them equal (BENCHMARKS.md,
// "issue 10", has what they save).
package eventcodec

import (
	"encoding/json"
	"fmt"
	"sync"

	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/domain"
)

// Commit is a stored commit decoded: its envelopes and, index for index,
// their events.
type Commit struct {
	Position  eventstore.Position
	Stream    string
	Envelopes []domain.Envelope
	// Events[i] is Envelopes[i]'s data decoded. It is nil, and EventsErr
	// says why, when an event's data cannot be decoded: each reader decides
	// whether that stops it (the dispatcher) or is refused and passed over
	// (the read models).
	Events    []domain.Event
	EventsErr error
}

// CaseID is the id of the commit's case ("" for an empty commit).
func (c Commit) CaseID() string {
	if len(c.Envelopes) == 0 {
		return ""
	}
	return c.Envelopes[0].CaseID
}

// CommandID is the id of the command that made the commit.
func (c Commit) CommandID() string {
	if len(c.Envelopes) == 0 {
		return ""
	}
	return c.Envelopes[0].CorrelationID
}

// Encode turns sealed envelopes into the events to append.
func Encode(envs []domain.Envelope) ([]eventstore.EventData, error) {
	out := make([]eventstore.EventData, len(envs))
	for i, env := range envs {
		b, err := json.Marshal(env)
		if err != nil {
			return nil, fmt.Errorf("eventcodec: encode %s: %w", env.Type, err)
		}
		out[i] = eventstore.EventData{ID: env.ID, Type: env.Type, Data: b}
	}
	return out, nil
}

// DecodeEnvelopes turns stored events back into whole envelopes.
func DecodeEnvelopes(recs []eventstore.RecordedEvent) ([]domain.Envelope, error) {
	out := make([]domain.Envelope, len(recs))
	for i, r := range recs {
		if err := json.Unmarshal(r.Data, &out[i]); err != nil {
			return nil, fmt.Errorf("eventcodec: decode event %s of %s: %w", r.ID, r.Stream, err)
		}
	}
	return out, nil
}

// Decode decodes a stored commit whole: every envelope with its ids, actor
// and hashes, and the events' data. An envelope that cannot be decoded is
// an error; an event's data that cannot be, EventsErr.
func Decode(c eventstore.Commit) (Commit, error) {
	envs := make([]domain.Envelope, len(c.Events))
	for i, r := range c.Events {
		if err := json.Unmarshal(r.Data, &envs[i]); err != nil {
			return Commit{}, envelopeError(c, r, err)
		}
	}
	out := Commit{Position: c.Position, Stream: c.Stream, Envelopes: envs}
	out.Events, out.EventsErr = DecodeEvents(envs)
	if out.EventsErr != nil {
		out.EventsErr = fmt.Errorf("eventcodec: commit at position %d: %w", c.Position, out.EventsErr)
	}
	return out, nil
}

func envelopeError(c eventstore.Commit, r eventstore.RecordedEvent, err error) error {
	return fmt.Errorf("eventcodec: commit at position %d: decode event %s of %s: %w", c.Position, r.ID, r.Stream, err)
}

// DecodeEvents decodes the data of envelopes: the same events, or the
// same error, as domain.DecodeEvent gives for each. It is safe for
// concurrent use (a replay's workers call it in parallel).
func DecodeEvents(envs []domain.Envelope) ([]domain.Event, error) {
	dec := eventDecoders.Get().(*eventDecoder)
	defer eventDecoders.Put(dec)
	out := make([]domain.Event, len(envs))
	for i, env := range envs {
		e, err := dec.Decode(env.Type, env.Data)
		if err != nil {
			return nil, fmt.Errorf("event %s of case %s version %d: %w", env.ID, env.CaseID, env.Version, err)
		}
		out[i] = e
	}
	return out, nil
}

// eventDecoders keeps the decoders (and the strings they share) between
// calls, one per goroutine at a time, so that parallel callers do not
// contend.
var eventDecoders = sync.Pool{New: func() any { return new(eventDecoder) }}
