// Package readmodel runs whistle's read models (projections.Stats, the
// figures, and projections.Board, the case list) against the global log: it
// folds every commit into them, keeps their state durable in a snapshot file,
// lets a reader wait until its own write shows, and rebuilds them from the
// log for auditors (as of a time, or up to a position, to compare with the
// live ones).
package readmodel

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/whistle-gov/whistle/adapters/eventcodec"
	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/domain"
	"github.com/whistle-gov/whistle/projections"
)

// Commit is one commit of the global log with its events decoded: what
// GET /v1/log answers and what the read models fold.
type Commit struct {
	Position uint64            `json:"position"`
	Stream   string            `json:"stream"`
	Events   []domain.Envelope `json:"events"`

	// decoded is the events' data decoded once for every model (see
	// decodeForFold), nil until then.
	decoded []domain.Event
}

// DecodeCommit decodes a stored commit's envelopes and their events.
func DecodeCommit(c eventstore.Commit) (Commit, error) {
	dc, err := eventcodec.Decode(c)
	if err != nil {
		return Commit{}, fmt.Errorf("readmodel: %w", err)
	}
	return fromCodec(dc), nil
}

// fromCodec is a decoded commit as the models fold it.
func fromCodec(c eventcodec.Commit) Commit {
	return Commit{Position: uint64(c.Position), Stream: c.Stream, Events: c.Envelopes, decoded: c.Events}
}

// decodeStored decodes a stored commit for a fold (eventcodec.DecodeForFold).
func decodeStored(c eventstore.Commit) (Commit, error) {
	dc, err := eventcodec.DecodeForFold(c)
	if err != nil {
		return Commit{}, fmt.Errorf("readmodel: %w", err)
	}
	return fromCodec(dc), nil
}

// decodeForFold decodes the events' data of c once for every model, so
// that the fold's workers do it rather than each model in the fold's turn.
// When an event cannot be decoded, decoded stays nil: the models then
// refuse the commit with their own error.
func decodeForFold(c Commit) Commit {
	if c.decoded == nil {
		c.decoded, _ = eventcodec.DecodeEvents(c.Events)
	}
	return c
}

// ReadLog reads up to limit commits after `after` from store, decoded.
func ReadLog(ctx context.Context, store eventstore.Store, after uint64, limit int) ([]Commit, error) {
	raw, err := store.ReadAll(ctx, eventstore.Position(after), limit)
	if err != nil {
		return nil, fmt.Errorf("readmodel: read the log after %d: %w", after, err)
	}
	out := make([]Commit, 0, len(raw))
	for _, c := range raw {
		dc, err := DecodeCommit(c)
		if err != nil {
			return nil, err
		}
		out = append(out, dc)
	}
	return out, nil
}

// Models is the set of read models folded together from one log.
type Models struct {
	Stats     *projections.Stats
	Board     *projections.Board
	directory string             // the directory version the state was folded under
	weights   map[string]float64 // configuration of Stats, not state
	days      *time.Location     // the zone of the figures' days, configuration too
}

// NewModels returns empty read models for dir, which must be validated: the
// satisfaction rate weighs ratings by its satisfaction_weights, figures
// count the days of its calendar's time zone, and snapshots carry its
// version.
func NewModels(dir *domain.Directory) (*Models, error) {
	days := dir.WorkCalendar().Location()
	stats, err := projections.NewStats(dir.SatisfactionWeights, days)
	if err != nil {
		return nil, fmt.Errorf("readmodel: directory %s: %w", dir.Version, err)
	}
	return &Models{Stats: stats, Board: projections.NewBoard(), directory: dir.Version, weights: dir.SatisfactionWeights, days: days}, nil
}

// ApplyCommit folds one commit into every model. A model that refuses the
// commit keeps its state and position (see the projections package); the
// others still apply it. The error names the models that refused.
func (m *Models) ApplyCommit(c Commit) error {
	return errors.Join(
		wrapModel("stats", m.Stats.ApplyCommit(c.Position, c.Events, c.decoded)),
		wrapModel("board", m.Board.ApplyCommit(c.Position, c.Events, c.decoded)),
	)
}

func wrapModel(name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", name, err)
}

// Position is the log position every model has reached.
func (m *Models) Position() uint64 { return min(m.Stats.Position(), m.Board.Position()) }

// Diff lists every difference between m (the live models) and replay.
func (m *Models) Diff(replay *Models) []string {
	var out []string
	if m.directory != replay.directory {
		out = append(out, fmt.Sprintf("directory version: live %q, replay %q", m.directory, replay.directory))
	}
	out = append(out, projections.Diff(m.Stats, replay.Stats)...)
	return append(out, projections.Diff(m.Board, replay.Board)...)
}
