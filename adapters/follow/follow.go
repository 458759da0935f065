// Package follow runs the followers of the global log (the dispatcher, the
// read models, the SLA watcher) on one subscription per process: each
// commit is read and decoded once (eventcodec) and handed, in batches, to
// every follower at the head of the log. A follower keeps its own
// checkpoint and starts from it; one that stands behind the others (just
// started from an older checkpoint, or slow) reads the store itself until
// it reaches the commits kept for the head, and then joins them.
//
// The loop belongs to the platform, not to each follower: resuming a
// dropped subscription, batching, a case stream that lags the log
// (casestate.ErrBehind), a panic in a follower, how far each one stands,
// and waiting until they have all handled a position are done here once.
package follow

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sort"
	"sync"
	"time"

	"github.com/whistle-gov/whistle/adapters/casestate"
	"github.com/whistle-gov/whistle/adapters/eventcodec"
	"github.com/whistle-gov/whistle/adapters/eventstore"
	"go.uber.org/zap"
)

// Commit is a commit of the log as followers get it: decoded once for all.
// When an envelope cannot be decoded, Envelopes and Events are nil and
// EventsErr says why.
type Commit = eventcodec.Commit

// Handler takes a batch of commits, in log order, all after the position
// it was asked to follow from (or the last batch it took). An error stops
// the follower (Follow returns it). A Handler is called from one goroutine
// at a time, and must take a commit it has already taken (a batch handed
// again after an error) as a no-op.
type Handler func(ctx context.Context, batch []Commit) error

// Defaults of Options.
const (
	DefaultMaxBatch = 512
	DefaultTail     = 8192
	DefaultRetry    = time.Second
)

// Behind-the-log retries: a lagging replica catches up within seconds;
// past that the follower fails and is resumed.
const (
	behindRetries = 50
	behindWait    = 100 * time.Millisecond
)

// Options configure a Log.
type Options struct {
	Log *zap.Logger
	// MaxBatch bounds the commits of one batch.
	MaxBatch int
	// Tail is how many of the latest commits are kept, decoded, for the
	// followers at the head; one further behind reads the store.
	Tail int
	// Retry is the pause before a dropped subscription or a failed
	// follower is resumed.
	Retry time.Duration
}

// Log is the process's one subscription to the global log and its
// followers. It is safe for concurrent use. Run it with Run.
type Log struct {
	store eventstore.Store
	opts  Options

	mu sync.Mutex
	// The tail holds every commit with a position in (base, end], in
	// order, once subscribed.
	subscribed bool
	base, end  eventstore.Position
	tail       []Commit
	arrived    chan struct{} // closed when the tail grows
	followers  map[string]*Progress
	moved      chan struct{} // closed when a follower's position moves
}

// New returns a Log over store; it reads nothing until Run.
func New(store eventstore.Store, opts Options) *Log {
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.Tail <= 0 {
		opts.Tail = DefaultTail
	}
	if opts.Retry <= 0 {
		opts.Retry = DefaultRetry
	}
	return &Log{store: store, opts: opts, arrived: make(chan struct{}), followers: map[string]*Progress{}, moved: make(chan struct{})}
}

// Run subscribes to the log from its head as it stands, and keeps the
// latest commits for the followers until ctx is done; it returns
// ctx.Err(). A dropped subscription is resumed after a pause where it
// stood.
func (l *Log) Run(ctx context.Context) error {
	for {
		head, err := l.store.Head(ctx)
		if err == nil {
			l.mu.Lock()
			l.base, l.end, l.subscribed = head, head, true
			l.wakeArrived()
			l.mu.Unlock()
			break
		}
		l.opts.Log.Warn("log head unknown; retrying", zap.Error(err))
		if !l.pause(ctx) {
			return ctx.Err()
		}
	}
	for {
		l.mu.Lock()
		from := l.end
		l.mu.Unlock()
		err := l.store.Subscribe(ctx, from, l.arrive)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		l.opts.Log.Warn("log subscription ended; resuming", zap.Uint64("position", uint64(from)), zap.Error(err))
		if !l.pause(ctx) {
			return ctx.Err()
		}
	}
}

func (l *Log) pause(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(l.opts.Retry):
		return true
	}
}

// arrive decodes a commit of the subscription and keeps it in the tail.
func (l *Log) arrive(c eventstore.Commit) error {
	dc := decode(c)
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.Position <= l.end {
		return nil // redelivered
	}
	l.tail = append(l.tail, dc)
	l.end = c.Position
	if len(l.tail) > l.opts.Tail {
		// Drop the older half; a follower still reading it reads the store.
		drop := len(l.tail) / 2
		l.base = l.tail[drop-1].Position
		l.tail = append([]Commit(nil), l.tail[drop:]...)
	}
	l.wakeArrived()
	return nil
}

// wakeArrived wakes whoever waits for the tail. Lock held.
func (l *Log) wakeArrived() {
	close(l.arrived)
	l.arrived = make(chan struct{})
}

func decode(c eventstore.Commit) Commit {
	dc, err := eventcodec.Decode(c)
	if err != nil {
		return Commit{Position: c.Position, Stream: c.Stream, EventsErr: err}
	}
	return dc
}

// Follow hands handle every commit after position `after`, in batches:
// first those it reads from the store, then, once it has reached the
// commits kept for the head, those. It returns when ctx is done (with
// ctx.Err()) or when handle fails (with its error; a panic in handle is
// one). A batch that fails with casestate.ErrBehind is handed again a
// little later, for a while. name identifies the follower for Position,
// WaitFor and the logs; one name follows at a time.
func (l *Log) Follow(ctx context.Context, name string, after eventstore.Position, handle Handler) error {
	prog, err := l.register(name, after)
	if err != nil {
		return err
	}
	defer l.unregister(name)
	return l.follow(ctx, name, prog, handle)
}

func (l *Log) follow(ctx context.Context, name string, prog *Progress, handle Handler) error {
	after := prog.Position()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch, wait, err := l.next(ctx, after)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-wait:
			}
			continue
		}
		if err := l.hand(ctx, name, handle, batch); err != nil {
			return err
		}
		after = batch[len(batch)-1].Position
		prog.Set(after)
		l.mu.Lock()
		close(l.moved)
		l.moved = make(chan struct{})
		l.mu.Unlock()
	}
}

// next returns the commits after `after` for a follower: from the tail
// when it holds them, else read from the store. An empty batch comes with
// a channel to wait on.
func (l *Log) next(ctx context.Context, after eventstore.Position) ([]Commit, <-chan struct{}, error) {
	l.mu.Lock()
	if l.subscribed && after >= l.base {
		i := sort.Search(len(l.tail), func(i int) bool { return l.tail[i].Position > after })
		n := min(len(l.tail)-i, l.opts.MaxBatch)
		batch, wait := l.tail[i:i+n:i+n], l.arrived
		l.mu.Unlock()
		return batch, wait, nil
	}
	wait := l.arrived
	l.mu.Unlock()
	raw, err := l.store.ReadAll(ctx, after, l.opts.MaxBatch)
	if err != nil {
		return nil, nil, fmt.Errorf("follow: read the log after %d: %w", after, err)
	}
	batch := make([]Commit, len(raw))
	for i, c := range raw {
		batch[i] = decode(c)
	}
	return batch, wait, nil
}

// hand calls handle, again after a while when a case stream lags the log,
// and turns a panic into an error.
func (l *Log) hand(ctx context.Context, name string, handle Handler, batch []Commit) error {
	for attempt := 0; ; attempt++ {
		err := l.call(ctx, name, handle, batch)
		if err == nil || !errors.Is(err, casestate.ErrBehind) || attempt >= behindRetries {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(behindWait):
		}
	}
}

func (l *Log) call(ctx context.Context, name string, handle Handler, batch []Commit) (err error) {
	defer func() {
		if p := recover(); p != nil {
			l.opts.Log.Error("follower panicked", zap.String("follower", name), zap.Uint64("from_position", uint64(batch[0].Position)),
				zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
			err = fmt.Errorf("follow: %s panicked at a batch from position %d: %v", name, batch[0].Position, p)
		}
	}()
	return handle(ctx, batch)
}

func (l *Log) register(name string, at eventstore.Position) (*Progress, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.followers[name]; ok {
		return nil, fmt.Errorf("follow: %s already follows the log", name)
	}
	p := &Progress{}
	p.Set(at)
	l.followers[name] = p
	return p, nil
}

func (l *Log) unregister(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.followers, name)
	close(l.moved)
	l.moved = make(chan struct{})
}

// Keep runs Follow for as long as ctx lasts, from the position from
// returns (the follower's checkpoint) at each start: a follower that
// failed is logged and resumed after a pause, and WaitFor waits for it
// meanwhile. It returns ctx.Err().
func (l *Log) Keep(ctx context.Context, name string, from func() eventstore.Position, handle Handler) error {
	prog, err := l.register(name, from())
	if err != nil {
		return err
	}
	defer l.unregister(name)
	for {
		err := l.follow(ctx, name, prog, handle)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		l.opts.Log.Error("follower failed; resuming from its checkpoint", zap.String("follower", name),
			zap.Uint64("position", uint64(from())), zap.Error(err))
		if !l.pause(ctx) {
			return ctx.Err()
		}
		prog.Reset(from())
	}
}

// Positions returns where each follower stands.
func (l *Log) Positions() map[string]eventstore.Position {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]eventstore.Position, len(l.followers))
	for name, p := range l.followers {
		out[name] = p.Position()
	}
	return out
}

// Head is the position of the last commit the subscription delivered.
func (l *Log) Head() eventstore.Position {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.end
}

// Lag is how many positions a follower stands behind the subscription's
// head (0 for one that does not follow).
func (l *Log) Lag(name string) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, ok := l.followers[name]
	if !ok {
		return 0
	}
	if pos := p.Position(); pos < l.end {
		return uint64(l.end - pos)
	}
	return 0
}

// WaitFor waits until every follower has handled position pos, or ctx is
// done.
func (l *Log) WaitFor(ctx context.Context, pos eventstore.Position) error {
	for {
		l.mu.Lock()
		behind := ""
		for name, p := range l.followers {
			if p.Position() < pos {
				behind = name
				break
			}
		}
		moved := l.moved
		l.mu.Unlock()
		if behind == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("follow: %s has not reached log position %d: %w", behind, pos, ctx.Err())
		case <-moved:
		}
	}
}

// CatchUp waits until every follower has handled the log as it stands
// now: what a test calls instead of sleeping.
func (l *Log) CatchUp(ctx context.Context) error {
	head, err := l.store.Head(ctx)
	if err != nil {
		return fmt.Errorf("follow: log head: %w", err)
	}
	return l.WaitFor(ctx, head)
}

// Progress is how far a follower has come, for those who wait until it has
// handled a position (a reader that wants its own write to show). The zero
// value stands at 0. It is safe for concurrent use.
type Progress struct {
	mu      sync.Mutex
	pos     eventstore.Position
	changed chan struct{} // closed when pos moves
}

// Set moves the position forward (never back) and wakes the waiters.
func (p *Progress) Set(pos eventstore.Position) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pos <= p.pos && p.changed != nil {
		return
	}
	p.pos = max(p.pos, pos)
	if p.changed != nil {
		close(p.changed)
	}
	p.changed = make(chan struct{})
}

// Reset puts the position at pos, also backwards: a follower resumed from
// its checkpoint.
func (p *Progress) Reset(pos eventstore.Position) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pos = pos
}

// Position is the last position handled.
func (p *Progress) Position() eventstore.Position {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pos
}

// WaitFor waits until the position reaches pos; it returns ctx.Err() when
// ctx is done first.
func (p *Progress) WaitFor(ctx context.Context, pos eventstore.Position) error {
	for {
		p.mu.Lock()
		if p.changed == nil {
			p.changed = make(chan struct{})
		}
		reached, changed := p.pos >= pos, p.changed
		p.mu.Unlock()
		if reached {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}
