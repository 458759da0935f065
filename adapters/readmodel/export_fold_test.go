package readmodel

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/domain"
)

// DecodeStoredForFold and DecodeStoredFast are the two decodings of a
// stored commit for a fold: with encoding/json, and with the codec's
// scanners that FoldLog runs.
var (
	DecodeStoredForFold = decodeStoredWithEncodingJSON
	DecodeStoredFast    = decodeStored
)

// decodeStoredWithEncodingJSON decodes what FoldLog decodes of a stored
// commit, with encoding/json alone.
func decodeStoredWithEncodingJSON(c eventstore.Commit) (Commit, error) {
	envs := make([]domain.Envelope, len(c.Events))
	for i, r := range c.Events {
		var fe struct {
			Type       string          `json:"type"`
			CaseID     string          `json:"case_id"`
			Version    uint64          `json:"version"`
			OccurredAt time.Time       `json:"occurred_at"`
			Data       json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(r.Data, &fe); err != nil {
			return Commit{}, fmt.Errorf("decode event %s of %s: %w", r.ID, r.Stream, err)
		}
		envs[i] = domain.Envelope{Type: fe.Type, CaseID: fe.CaseID, Version: fe.Version, OccurredAt: fe.OccurredAt, Data: fe.Data}
	}
	return decodeForFold(Commit{Position: uint64(c.Position), Stream: c.Stream, Events: envs}), nil
}

// DecodedEvents is the events' data a commit was decoded with for the
// fold (nil when not decoded, or when an event could not be).
func DecodedEvents(c Commit) []domain.Event { return c.decoded }
