package readmodel

import (
	"context"
	"fmt"
	"time"

	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/domain"
)

// ReadFunc reads up to limit commits of the global log after position
// `after`, in order; fewer than limit means the end of the log was reached
// (the contract of eventstore.Store.ReadAll). ReadLog over a store is one;
// the CLI's reader of GET /v1/log is another.
type ReadFunc func(ctx context.Context, after uint64, limit int) ([]Commit, error)

// Progress is how far a Fold has come.
type Progress struct {
	Commits  int
	Events   int
	Position uint64        // the last commit read within the bounds
	Target   uint64        // FoldOptions.UpTo, 0 when unbounded
	Elapsed  time.Duration // since the fold began
	Folding  time.Duration // of Elapsed, spent folding commits into the models
}

// FoldOptions bound a Fold.
type FoldOptions struct {
	// UpTo folds only commits at or before this position (0: to the end of
	// the log as the fold finds it).
	UpTo uint64
	// AsOf folds only what had happened at this time (zero: everything):
	// each case up to its last commit at or before AsOf.
	AsOf time.Time
	// PageSize is how many commits one read asks for (default 1000).
	PageSize int
	// Progress, when set, is called after every page.
	Progress func(Progress)
	// Refused, when set, is told of every commit a model refuses, and the
	// fold goes on, as the live runner does; when nil the fold stops with
	// the error.
	Refused func(c Commit, err error)
}

// asOfSlack bounds how far past AsOf a fold reads. A command's time is
// taken when it is decided and its commit is appended within the request's
// timeout (30 s), so once the log holds a commit decided this long after
// AsOf, no later commit can be from before AsOf.
const asOfSlack = 5 * time.Minute

// Fold rebuilds the read models of dir from position zero of the log that
// read returns. The next pages are read while one is folded, and the
// events' data is decoded on parallel workers (see FoldLog).
func Fold(ctx context.Context, dir *domain.Directory, read ReadFunc, opts FoldOptions) (*Models, error) {
	return fold(ctx, dir, source[Commit]{
		read:     read,
		position: func(c Commit) uint64 { return c.Position },
		decode:   func(c Commit) (Commit, error) { return decodeForFold(c), nil },
	}, opts)
}

// FoldLog is Fold over stored commits, as a rebuild from the store does:
// one goroutine reads the pages ahead, GOMAXPROCS workers decode them, and
// the fold takes the commits strictly in log order. A commit that cannot
// be decoded stops the fold with its error once the fold reaches it. Only
// what the read models read of each envelope is decoded
// (eventcodec.DecodeForFold): the
// Commits handed to FoldOptions.Refused carry each event's Type, CaseID,
// Version, OccurredAt and Data (aliasing the stored commit's), not its ID,
// Actor, CorrelationID or hashes.
func FoldLog(ctx context.Context, dir *domain.Directory, read RawReadFunc, opts FoldOptions) (*Models, error) {
	return fold(ctx, dir, source[eventstore.Commit]{
		read:     read,
		position: func(c eventstore.Commit) uint64 { return uint64(c.Position) },
		decode:   decodeStored,
	}, opts)
}

func fold[R any](ctx context.Context, dir *domain.Directory, src source[R], opts FoldOptions) (*Models, error) {
	m, err := NewModels(dir)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	page := opts.PageSize
	if page <= 0 {
		page = 1000
	}
	begin := time.Now()
	prog := Progress{Target: opts.UpTo}
	ctx, cancel := context.WithCancel(ctx)
	chunks, wait := pipeline(ctx, src, 0, page)
	defer func() {
		cancel()
		for range chunks { // let the reader see the cancellation
		}
		wait()
	}()
	// cut holds the cases with a commit after AsOf: their later commits are
	// left out too, so each case is folded up to one moment, in order.
	cut := map[string]bool{}
	var after uint64
	for ch := range chunks {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		select {
		case <-ch.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		done := ch.endOfPage && ch.err == nil && ch.pageLen < page
		f0 := time.Now()
		for _, c := range ch.commits {
			if c.Position <= after {
				return nil, fmt.Errorf("readmodel: the log went back from position %d to %d", after, c.Position)
			}
			after = c.Position
			if opts.UpTo > 0 && c.Position > opts.UpTo {
				done = true
				break
			}
			prog.Position = c.Position
			if !opts.AsOf.IsZero() && len(c.Events) > 0 {
				at := c.Events[0].OccurredAt
				if at.After(opts.AsOf.Add(asOfSlack)) {
					done = true
					break
				}
				if cut[c.Stream] || at.After(opts.AsOf) {
					cut[c.Stream] = true
					continue
				}
			}
			if err := m.ApplyCommit(c); err != nil {
				if opts.Refused == nil {
					return nil, fmt.Errorf("readmodel: commit at position %d: %w", c.Position, err)
				}
				opts.Refused(c, err)
			}
			prog.Commits++
			prog.Events += len(c.Events)
		}
		prog.Folding += time.Since(f0)
		if opts.UpTo > 0 && after >= opts.UpTo {
			done = true
		}
		if ch.err != nil && !done { // an error past where the fold stops is none of its business
			return nil, ch.err
		}
		if !ch.endOfPage && !done {
			continue
		}
		prog.Elapsed = time.Since(begin)
		if opts.Progress != nil {
			opts.Progress(prog)
		}
		if done {
			return m, nil
		}
	}
	// The reader stops on its own only after a short page (done above), an
	// error (returned above), or a log that went back (reported above): the
	// chunks ran out because ctx was cancelled.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return m, nil
}
