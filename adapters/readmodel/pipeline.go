package readmodel

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"github.com/whistle-gov/whistle/adapters/eventstore"
)

// RawReadFunc reads up to limit stored commits of the global log after
// position `after`, in order and undecoded, with the contract of
// eventstore.Store.ReadAll (StoreReader adapts a store). FoldLog decodes
// them on parallel workers.
type RawReadFunc func(ctx context.Context, after uint64, limit int) ([]eventstore.Commit, error)

// StoreReader reads the log of store for FoldLog.
func StoreReader(store eventstore.Store) RawReadFunc {
	return func(ctx context.Context, after uint64, limit int) ([]eventstore.Commit, error) {
		cs, err := store.ReadAll(ctx, eventstore.Position(after), limit)
		if err != nil {
			return nil, fmt.Errorf("readmodel: read the log after %d: %w", after, err)
		}
		return cs, nil
	}
}

// chunkSize is how many commits one decoding job holds: enough to make a
// job's hand-over cheap next to its decoding, few enough to spread a page
// over the workers.
var chunkSize = 128

// pagesAhead is how many pages the reader may be ahead of the fold.
const pagesAhead = 2

// chunk is a run of consecutive commits on their way through the pipeline:
// read, decoded by a worker, then folded in log order.
type chunk[R any] struct {
	raw     []R
	commits []Commit      // decoded (up to the first error)
	err     error         // of the read, or of decoding the commit after commits
	done    chan struct{} // closed once commits and err are set
	// endOfPage marks the last chunk of a page, and pageLen is then the
	// number of commits the read returned (0 chunks of an empty page: one
	// empty chunk).
	endOfPage bool
	pageLen   int
}

// source is how a pipeline reads and decodes the log.
type source[R any] struct {
	read     func(ctx context.Context, after uint64, limit int) ([]R, error)
	position func(R) uint64
	// decode turns one read commit into one to fold; the workers run it.
	decode func(R) (Commit, error)
}

// pipeline reads the log after position `after` in pages of limit commits
// in one goroutine, reading ahead of the fold by up to pagesAhead pages;
// decodes the commits on GOMAXPROCS workers; and hands them to the caller
// in log order through the returned channel. The caller takes every chunk
// in turn and waits on its done channel before using it; a chunk with an
// error, or the last chunk of a short page, is the last one. Cancelling ctx
// stops every goroutine; wait returns once they all have.
func pipeline[R any](ctx context.Context, src source[R], after uint64, limit int) (out <-chan *chunk[R], wait func()) {
	size := chunkSize
	perPage := (limit + size - 1) / size
	ordered := make(chan *chunk[R], pagesAhead*perPage)
	jobs := make(chan *chunk[R], pagesAhead*perPage)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ch := range jobs {
				if ctx.Err() != nil {
					continue // nobody waits for it any more
				}
				decodeChunk(ch, src.decode)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(ordered)
		defer close(jobs)
		send := func(ch *chunk[R]) bool {
			select {
			case ordered <- ch:
			case <-ctx.Done():
				return false
			}
			if ch.raw == nil { // nothing to decode
				close(ch.done)
				return true
			}
			select {
			case jobs <- ch:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for {
			raw, err := src.read(ctx, after, limit)
			if err != nil {
				send(&chunk[R]{err: err, done: make(chan struct{}), endOfPage: true})
				return
			}
			if len(raw) == 0 {
				send(&chunk[R]{done: make(chan struct{}), endOfPage: true})
				return
			}
			for i := 0; i < len(raw); i += size {
				end := min(i+size, len(raw))
				ch := &chunk[R]{raw: raw[i:end], done: make(chan struct{}), endOfPage: end == len(raw), pageLen: len(raw)}
				if !send(ch) {
					return
				}
			}
			next := src.position(raw[len(raw)-1])
			if len(raw) < limit || next <= after {
				// The end of the log; or a log that went back, which the
				// fold reports when it gets there.
				return
			}
			after = next
		}
	}()
	return ordered, wg.Wait
}

// decodeChunk decodes ch.raw into ch.commits and marks ch done.
func decodeChunk[R any](ch *chunk[R], decode func(R) (Commit, error)) {
	defer close(ch.done)
	ch.commits = make([]Commit, 0, len(ch.raw))
	for _, r := range ch.raw {
		c, err := decode(r)
		if err != nil {
			ch.err = err
			break
		}
		ch.commits = append(ch.commits, c)
	}
	ch.raw = nil
}
