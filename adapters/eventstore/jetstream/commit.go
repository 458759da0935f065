package jetstream

// Group commit.
//
// With fsync on every write, a JetStream server fsyncs each message it
// stores before acknowledging it, one after the other, so concurrent
// Appends do not go faster than one fsync each. The one way the server
// shares an fsync among messages is an atomic batch: it stages the batch,
// checks every message's expectations (including the per-subject expected
// last sequence), writes them all and syncs once before it acknowledges the
// commit. Staging costs a fixed few milliseconds (the server creates,
// syncs and deletes a small file store per batch), so a batch pays off only
// when enough commits are waiting; see BENCHMARKS.md for the figures.
//
// The committer therefore sends what is waiting as one unit at a time (a
// few units in flight): an atomic batch when at least Config.MinBatch
// commits wait, else each commit as its own publish. Under low load an
// Append is a plain publish with no added wait; under load the waiting
// commits share one fsync. Nothing waits for a timer unless Config.Linger
// asks for it.
//
// Guarantees are the single publish's:
//   - an Append is acknowledged only after the server acknowledged its
//     message, which with fsync always means after the batch was synced;
//   - each message carries its own expected last subject sequence and
//     message ID, so the server checks each commit as if it came alone;
//   - a batch whose check fails stores nothing, and the server does not say
//     which member failed: every member then re-reads its stream's last
//     commit from the leader (settle) and learns its own fate: a true
//     conflict gets ErrConflict, a commit that did land (a lost
//     acknowledgement) gets its result, and the others are sent again
//     (alone, after a second failed batch), so a conflict in one command
//     never fails another;
//   - two appends to one event stream are never in flight together from one
//     Store (a per-stream lock held from the tip lookup to the outcome), so
//     a batch never holds two messages whose expectations depend on each
//     other.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/adapters/natsbus"
)

// maxServerBatch is nats-server's default limit on the messages of one
// atomic batch.
const maxServerBatch = natsbus.MaxAtomicBatch

// maxBatchBytes bounds the payload of one atomic batch; a batch is cut
// before it would exceed it (a single larger commit still goes alone).
const maxBatchBytes = 4 << 20

// errBatchFailed marks the outcome of a commit whose atomic batch the server
// refused: this commit may or may not be the cause, and nothing of the batch
// was stored.
var errBatchFailed = errors.New("atomic batch refused")

// BatchObserver, set as a Store's Config.BatchObserver, is told the size of every
// unit the committer sends: the commits of an atomic batch, or 1 for a
// commit published alone. It is called from the committer's goroutines and
// must be quick and safe for concurrent use.
type BatchObserver func(commits int)

// pubReq is one commit waiting for the committer.
type pubReq struct {
	msg   *nats.Msg
	size  int
	solo  bool           // publish alone, never in a batch
	doneC chan pubResult // buffered: the committer never blocks on it

	mu        sync.Mutex
	finished  bool
	abandoned bool
	release   func() // run when finished after being abandoned
}

// pubResult is the outcome of one commit's publish.
type pubResult struct {
	ack   *natsjs.PubAck
	err   error
	batch int // commits in the unit it went in
}

// finish delivers the outcome once; an abandoned request's release runs
// instead of anyone reading it.
func (r *pubReq) finish(res pubResult) {
	r.mu.Lock()
	if r.finished {
		r.mu.Unlock()
		return
	}
	r.finished = true
	release := r.release
	r.mu.Unlock()
	r.doneC <- res
	if release != nil {
		release()
	}
}

// abandon is called by an Append whose context ended while its commit waited
// or was in flight. It hands release (the stream's lock) to the request,
// which runs it once its outcome is known, and reports true; if the outcome
// is already known it reports false and the caller releases.
func (r *pubReq) abandon(release func()) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return false
	}
	r.abandoned, r.release = true, release
	return true
}

func (r *pubReq) isAbandoned() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.abandoned
}

// committer gathers commits from concurrent Appends and sends them in units.
type committer struct {
	s           *Store
	in          chan *pubReq
	unitDone    chan struct{}
	maxBatch    int
	minBatch    int
	maxInflight int
	linger      time.Duration
	batchSeq    uint64
	batchPrefix string
	stopped     chan struct{}
}

func newCommitter(s *Store) *committer {
	return &committer{
		s:           s,
		in:          make(chan *pubReq),
		unitDone:    make(chan struct{}, s.cfg.MaxInflight),
		maxBatch:    s.cfg.MaxBatch,
		minBatch:    s.cfg.MinBatch,
		maxInflight: s.cfg.MaxInflight,
		linger:      s.cfg.Linger,
		batchPrefix: uuid.NewString()[:8],
		stopped:     make(chan struct{}),
	}
}

// submit queues r and waits for its outcome. If ctx ends first, the request
// takes over release (see abandon) and submit returns ctx's error: the
// commit may or may not be stored.
func (c *committer) submit(ctx context.Context, r *pubReq, release func()) (pubResult, bool, error) {
	select {
	case c.in <- r:
	case <-ctx.Done():
		return pubResult{}, false, ctx.Err()
	case <-c.stopped:
		return pubResult{}, false, eventstore.ErrClosed
	}
	select {
	case res := <-r.doneC:
		return res, false, nil
	case <-ctx.Done():
		if r.abandon(release) {
			return pubResult{}, true, ctx.Err()
		}
		return <-r.doneC, false, nil
	}
}

// run is the committer's loop; it ends when the store closes, failing what
// still waits with ErrClosed.
func (c *committer) run() {
	defer close(c.stopped)
	var queue []*pubReq
	inflight := 0
	life := c.s.life
	for {
		select {
		case r := <-c.in:
			queue = append(queue, r)
		case <-c.unitDone:
			inflight--
		case <-life.Done():
			for _, r := range queue {
				r.finish(pubResult{err: eventstore.ErrClosed})
			}
			return
		}
		queue = c.drain(queue, &inflight)
		for len(queue) > 0 && inflight < c.maxInflight {
			if c.linger > 0 && len(queue) < c.minBatch {
				queue = dropAbandoned(c.lingerFor(queue, &inflight))
				if len(queue) == 0 {
					break
				}
			}
			var unit []*pubReq
			var batched bool
			unit, queue, batched = c.cut(queue)
			if len(unit) == 0 {
				continue
			}
			inflight++
			if batched {
				c.batchSeq++
				go c.sendBatch(unit, c.batchPrefix+strconv.FormatUint(c.batchSeq, 36))
			} else {
				go c.sendEach(unit)
			}
		}
	}
}

// drain takes what is already waiting, without blocking, and drops requests
// whose Append gave up before they were sent.
func (c *committer) drain(queue []*pubReq, inflight *int) []*pubReq {
	for {
		select {
		case r := <-c.in:
			queue = append(queue, r)
			continue
		case <-c.unitDone:
			*inflight--
			continue
		default:
		}
		break
	}
	return dropAbandoned(queue)
}

// dropAbandoned answers and removes the requests whose Append gave up before
// they were sent: they are not sent at all.
func dropAbandoned(queue []*pubReq) []*pubReq {
	kept := queue[:0]
	for _, r := range queue {
		if r.isAbandoned() {
			r.finish(pubResult{err: context.Canceled})
			continue
		}
		kept = append(kept, r)
	}
	clear(queue[len(kept):])
	return kept
}

// lingerFor waits up to Linger for MinBatch commits to gather.
func (c *committer) lingerFor(queue []*pubReq, inflight *int) []*pubReq {
	t := time.NewTimer(c.linger)
	defer t.Stop()
	for len(queue) < c.minBatch {
		select {
		case r := <-c.in:
			queue = append(queue, r)
		case <-c.unitDone:
			*inflight--
		case <-t.C:
			return queue
		case <-c.s.life.Done():
			return queue
		}
	}
	return queue
}

// cut takes the next unit off the queue: an atomic batch of up to MaxBatch
// commits when at least MinBatch may be batched, else every waiting commit,
// each to be published alone.
func (c *committer) cut(queue []*pubReq) (unit, rest []*pubReq, batched bool) {
	batchable := 0
	for _, r := range queue {
		if !r.solo {
			batchable++
		}
	}
	if c.maxBatch < 2 || batchable < max(c.minBatch, 2) {
		return queue, nil, false
	}
	bytes := 0
	rest = queue[:0:0]
	for _, r := range queue {
		if r.solo || len(unit) >= c.maxBatch || (len(unit) > 0 && bytes+r.size > maxBatchBytes) {
			rest = append(rest, r)
			continue
		}
		unit = append(unit, r)
		bytes += r.size
	}
	if len(unit) < 2 {
		// Only one fits (a large commit): send it alone.
		return queue, nil, false
	}
	return unit, rest, true
}

// sendEach publishes each commit of unit alone, all at once, and waits for
// every acknowledgement before freeing the unit's slot.
func (c *committer) sendEach(unit []*pubReq) {
	defer func() { c.unitDone <- struct{}{} }()
	var wg sync.WaitGroup
	for _, r := range unit {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(c.s.life, c.s.cfg.RequestTimeout)
			ack, err := c.s.publish(ctx, r.msg)
			cancel()
			c.s.observe(1)
			r.finish(pubResult{ack: ack, err: c.s.timeout(c.s.life, err), batch: 1})
		}()
	}
	wg.Wait()
}

// sendBatch writes unit as one atomic batch and hands each member its
// outcome: its own sequence on success, the batch's error otherwise.
func (c *committer) sendBatch(unit []*pubReq, id string) {
	defer func() { c.unitDone <- struct{}{} }()
	msgs := make([]*nats.Msg, len(unit))
	for i, r := range unit {
		msgs[i] = r.msg
	}
	ctx, cancel := context.WithTimeout(c.s.life, c.s.cfg.RequestTimeout)
	first, err := c.s.publishBatch(ctx, id, msgs)
	cancel()
	c.s.observe(len(unit))
	if err != nil {
		err = c.s.timeout(c.s.life, err)
		if !transient(err) {
			err = fmt.Errorf("%w of %d commits: %w", errBatchFailed, len(unit), err)
		}
		for _, r := range unit {
			r.finish(pubResult{err: err, batch: len(unit)})
		}
		return
	}
	for i, r := range unit {
		r.finish(pubResult{ack: &natsjs.PubAck{Stream: c.s.cfg.StreamName, Sequence: first + uint64(i)}, batch: len(unit)})
	}
}

// publishAtomic sends msgs as one atomic batch and returns the stream
// sequence of the first; the others follow it contiguously. The server
// answers once the whole batch is stored (and synced, with fsync always) or
// refused.
func (s *Store) publishAtomic(ctx context.Context, id string, msgs []*nats.Msg) (uint64, error) {
	return natsbus.PublishAtomic(ctx, s.nc, s.cfg.StreamName, id, msgs)
}

// streamLocks serialises the appends of one Store to one event stream, so
// that an append computes its expected sequence after the previous one's
// outcome is known, and one batch never holds two messages of a subject.
type streamLocks struct {
	mu sync.Mutex
	m  map[string]*streamLock
}

type streamLock struct {
	ch   chan struct{} // holds a token while locked
	refs int
}

func newStreamLocks() *streamLocks { return &streamLocks{m: make(map[string]*streamLock)} }

// lock waits for stream's lock, or for ctx to end. The returned unlock must
// be called exactly once.
func (l *streamLocks) lock(ctx context.Context, stream string) (unlock func(), err error) {
	l.mu.Lock()
	sl := l.m[stream]
	if sl == nil {
		sl = &streamLock{ch: make(chan struct{}, 1)}
		l.m[stream] = sl
	}
	sl.refs++
	l.mu.Unlock()
	put := func() {
		l.mu.Lock()
		if sl.refs--; sl.refs == 0 {
			delete(l.m, stream)
		}
		l.mu.Unlock()
	}
	select {
	case sl.ch <- struct{}{}:
	case <-ctx.Done():
		put()
		return nil, ctx.Err()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			<-sl.ch
			put()
		})
	}, nil
}
