package readmodel

import (
	"context"
	"errors"
	"time"

	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/domain"
	"github.com/whistle-gov/whistle/projections"
	"go.uber.org/zap"
)

// Limits of a page of the log (GET /v1/log).
const (
	DefaultLogLimit = 500
	MaxLogLimit     = 1000
)

// LogAnswer is a page of the log, the body of GET /v1/log.
type LogAnswer struct {
	Commits []Commit `json:"commits"`
	// Next is the after of the next page, null when this page reached the
	// end of the log.
	Next *uint64 `json:"next"`
	// Head is the position of the last commit of the log when it was read.
	Head uint64 `json:"head"`
}

// Reads answers what the HTTP API asks of the read models: the live models
// of a Runner, the figures folded again as of a past time, and the log page
// by page. It is safe for concurrent use.
type Reads struct {
	runner *Runner
	store  eventstore.Store
	dir    *domain.Directory
	log    *zap.Logger
	// asOf lets one as-of fold of the log run at a time: each reads the log
	// from the start.
	asOf chan struct{}
}

// NewReads serves the reads of runner's models and of store's log.
func NewReads(runner *Runner, store eventstore.Store, dir *domain.Directory, log *zap.Logger) (*Reads, error) {
	switch {
	case runner == nil:
		return nil, errors.New("readmodel: NewReads: the runner is nil")
	case store == nil:
		return nil, errors.New("readmodel: NewReads: the store is nil")
	case dir == nil:
		return nil, errors.New("readmodel: NewReads: the directory is nil")
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Reads{runner: runner, store: store, dir: dir, log: log, asOf: make(chan struct{}, 1)}, nil
}

// Position is the log position the live models have handled.
func (r *Reads) Position() uint64 { return r.runner.Position() }

// WaitFor waits until the live models have handled pos.
func (r *Reads) WaitFor(ctx context.Context, pos uint64) error { return r.runner.WaitFor(ctx, pos) }

// List lists the live case board.
func (r *Reads) List(q projections.ListQuery) ([]projections.CaseSummary, string, error) {
	return r.runner.Board().List(q)
}

// Stats is the live figures.
func (r *Reads) Stats() *projections.Stats { return r.runner.Stats() }

// SpoolSnapshot encodes the live models as in the snapshot file (see
// Runner.SpoolSnapshot).
func (r *Reads) SpoolSnapshot() (*SpooledSnapshot, error) { return r.runner.SpoolSnapshot() }

// StatsAsOf rebuilds the figures as they stood at asOf, from the log, and
// returns the position of the last commit folded. One such fold runs at a
// time; the others wait (or give up with ctx).
func (r *Reads) StatsAsOf(ctx context.Context, asOf time.Time) (*projections.Stats, uint64, error) {
	select {
	case r.asOf <- struct{}{}:
		defer func() { <-r.asOf }()
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
	begin := time.Now()
	var last uint64
	m, err := FoldLog(ctx, r.dir, StoreReader(r.store), FoldOptions{
		AsOf:     asOf,
		Progress: func(p Progress) { last = p.Position },
		Refused: func(c Commit, err error) {
			r.log.Warn("as_of fold: a read model refused a commit", zap.Uint64("position", c.Position), zap.String("stream", c.Stream), zap.Error(err))
		},
	})
	if err != nil {
		return nil, 0, err
	}
	r.log.Info("figures folded as of a time", zap.Time("as_of", asOf), zap.Uint64("position", last), zap.Duration("took", time.Since(begin)))
	return m.Stats, last, nil
}

// LogPage reads up to limit commits of the log after position after.
func (r *Reads) LogPage(ctx context.Context, after uint64, limit int) (LogAnswer, error) {
	head, err := r.store.Head(ctx)
	if err != nil {
		return LogAnswer{}, err
	}
	commits, err := ReadLog(ctx, r.store, after, limit)
	if err != nil {
		return LogAnswer{}, err
	}
	answer := LogAnswer{Commits: commits, Head: uint64(head)}
	if len(commits) == limit {
		next := commits[len(commits)-1].Position
		answer.Next = &next
	}
	return answer, nil
}
