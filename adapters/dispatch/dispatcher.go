package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/whistle-gov/whistle/adapters/casestate"
	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/adapters/follow"
	"github.com/whistle-gov/whistle/adapters/natsbus"
	"go.uber.org/zap"
)

// Buckets and keys of the dispatcher's own state.
const (
	// CheckpointBucket holds the checkpoint (key CheckpointKey): the log
	// position up to which every dispatch is in the stream.
	CheckpointBucket = "WHISTLE_DISPATCH_CHECKPOINT"
	CheckpointKey    = "dispatcher"
	// LeaseBucket holds the lease (key LeaseKey) that lets one dispatcher
	// publish at a time when several whistled share a NATS cluster. Its
	// entries expire after the lease TTL unless renewed.
	LeaseBucket = "WHISTLE_DISPATCH_LEASE"
	LeaseKey    = "dispatcher"
)

// Defaults of Config.
const (
	DefaultCheckpointEvery = time.Second
	DefaultLeaseTTL        = 10 * time.Second
	DefaultMaxBatch        = 1024
	DefaultPublishTimeout  = 5 * time.Second
)

// FollowerName names the dispatcher among the followers of the log (while
// it leads).
const FollowerName = "dispatcher"

// Config configures a Dispatcher.
type Config struct {
	Store eventstore.Store
	Conn  *nats.Conn
	Log   *zap.Logger
	// Instance names this process in the lease: stable across restarts of
	// the same process (a restarted dispatcher takes its own lease back at
	// once instead of waiting for it to expire) and distinct between
	// processes. Required.
	Instance string
	// Stream configures the dispatch stream; Stream.Replicas also sets the
	// replicas of the checkpoint and lease buckets.
	Stream StreamOptions
	// CheckpointEvery is how often the checkpoint is written, when it moved.
	CheckpointEvery time.Duration
	// LeaseTTL is how long a lease outlives its holder's last renewal.
	LeaseTTL time.Duration
	// MaxBatch bounds the messages published before waiting for their
	// acknowledgements.
	MaxBatch int
	// PublishTimeout bounds the wait for one acknowledgement.
	PublishTimeout time.Duration
	// Cases holds the case states the dispatcher folds events into, shared
	// with the command handler and the other followers; nil: a cache of
	// its own.
	Cases *casestate.Cache
	// Follow is the process's subscription to the log, shared with the
	// other followers; nil: the dispatcher subscribes on its own.
	Follow *follow.Log
	// AtomicBatches writes a backlog as atomic batches, one fsync each. It
	// pays only where the server syncs every write (fsync always): a batch
	// costs the server a fixed few milliseconds to stage, which with
	// interval syncing is pure delay (BENCHMARKS.md).
	AtomicBatches bool
	// DurableAfter is, for a stream stored without an fsync per message
	// (StreamOptions.Async), how long after its acknowledgement a message
	// is taken as on disk: a few of the server's sync intervals. The
	// checkpoint then moves only to what was acknowledged that long ago.
	// Ignored (every acknowledgement is durable) for a stream that syncs.
	DurableAfter time.Duration
	// Now is the clock of DurableAfter; default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	c.Stream.setDefaults()
	if c.CheckpointEvery <= 0 {
		c.CheckpointEvery = DefaultCheckpointEvery
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = DefaultPublishTimeout
	}
	if c.Log == nil {
		c.Log = zap.NewNop()
	}
	if c.Cases == nil {
		c.Cases = casestate.New(c.Store, 0)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Checkpoint is the dispatcher's durable progress. Every dispatch of the
// commits up to Position is in the stream; every dispatch of a later commit
// that is in the stream has a sequence above Sequence. It never runs ahead
// of what was published: it is written only after the acknowledgements.
type Checkpoint struct {
	Position uint64 `json:"position"`
	Sequence uint64 `json:"sequence"`
	Instance string `json:"instance"`
}

// Dispatcher publishes the dispatch stream from the log. Run it with Run.
type Dispatcher struct {
	cfg    Config
	js     jetstream.JetStream
	stream jetstream.Stream
	ckpt   jetstream.KeyValue
	lease  jetstream.KeyValue

	published atomic.Uint64 // log position of the last commit fully published
	leading   atomic.Bool
	atomicOK  bool // the stream takes atomic batches (nats-server 2.12 and later)
}

// New creates (or updates) the dispatch stream and the dispatcher's buckets.
func New(ctx context.Context, cfg Config) (*Dispatcher, error) {
	cfg.setDefaults()
	if cfg.Store == nil || cfg.Conn == nil {
		return nil, errors.New("dispatch: a store and a NATS connection are required")
	}
	if cfg.Instance == "" {
		return nil, errors.New("dispatch: an instance name is required for the lease")
	}
	js, err := jetstream.New(cfg.Conn, jetstream.WithPublishAsyncTimeout(cfg.PublishTimeout),
		// Room for a whole batch even when an event goes to several targets.
		jetstream.WithPublishAsyncMaxPending(8*cfg.MaxBatch))
	if err != nil {
		return nil, fmt.Errorf("dispatch: %w", err)
	}
	stream, err := EnsureStream(ctx, js, cfg.Stream)
	if err != nil {
		return nil, err
	}
	ckpt, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: CheckpointBucket, Description: "whistle dispatcher checkpoint",
		History: 1, Storage: jetstream.FileStorage, Replicas: cfg.Stream.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("dispatch: bucket %s: %w", CheckpointBucket, err)
	}
	lease, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: LeaseBucket, Description: "whistle dispatcher lease: one publisher at a time",
		History: 1, TTL: cfg.LeaseTTL, Storage: jetstream.FileStorage, Replicas: cfg.Stream.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("dispatch: bucket %s: %w", LeaseBucket, err)
	}
	info := stream.CachedInfo()
	async := info != nil && info.Config.PersistMode == jetstream.AsyncPersistMode
	if !async {
		cfg.DurableAfter = 0
	}
	// Atomic batches share fsyncs; a stream without them has none to share.
	atomicOK := cfg.AtomicBatches && !async && info != nil && info.Config.AllowAtomicPublish
	return &Dispatcher{cfg: cfg, js: js, stream: stream, ckpt: ckpt, lease: lease, atomicOK: atomicOK}, nil
}

// Published returns the log position up to which this dispatcher has
// published every dispatch (0 while it does not lead).
func (d *Dispatcher) Published() eventstore.Position {
	return eventstore.Position(d.published.Load())
}

// Leading tells whether this dispatcher holds the lease.
func (d *Dispatcher) Leading() bool { return d.leading.Load() }

// Run takes the lease when it is free and then publishes, from the
// checkpoint on, until ctx is done; it returns ctx.Err(). On a lost lease or
// an error it waits a moment and starts again from the checkpoint, which is
// safe: publishing is idempotent (see DefaultDuplicateWindow).
func (d *Dispatcher) Run(ctx context.Context) error {
	for {
		rev, err := d.acquire(ctx)
		if err != nil {
			return ctx.Err()
		}
		err = d.lead(ctx, rev)
		d.leading.Store(false)
		d.published.Store(0)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d.cfg.Log.Warn("dispatcher stopped leading; starting again from the checkpoint", zap.Error(err))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// acquire waits until this instance holds the lease and returns its
// revision, or fails when ctx is done.
func (d *Dispatcher) acquire(ctx context.Context) (uint64, error) {
	me := []byte(d.cfg.Instance)
	logged := false
	for {
		rctx, cancel := context.WithTimeout(ctx, d.cfg.PublishTimeout)
		rev, err := d.lease.Create(rctx, LeaseKey, me)
		if errors.Is(err, jetstream.ErrKeyExists) {
			// Ours from before a restart? Then take it back at once.
			var e jetstream.KeyValueEntry
			if e, err = d.lease.Get(rctx, LeaseKey); err == nil {
				if string(e.Value()) == d.cfg.Instance {
					rev, err = d.lease.Update(rctx, LeaseKey, me, e.Revision())
				} else {
					err = fmt.Errorf("held by %s", e.Value())
				}
			}
		}
		cancel()
		if err == nil {
			return rev, nil
		}
		if !logged {
			d.cfg.Log.Info("dispatcher waiting for the lease", zap.String("instance", d.cfg.Instance), zap.Error(err))
			logged = true
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(d.cfg.LeaseTTL / 4):
		}
	}
}

// keepLease renews the lease until ctx is done, and calls lost when it can
// no longer be sure to hold it. On a clean stop it releases the lease so
// another instance takes over at once.
func (d *Dispatcher) keepLease(ctx context.Context, rev uint64, lost func(error)) {
	me := []byte(d.cfg.Instance)
	renewed := time.Now()
	tick := time.NewTicker(d.cfg.LeaseTTL / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			rctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = d.lease.Delete(rctx, LeaseKey, jetstream.LastRevision(rev))
			cancel()
			return
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(ctx, d.cfg.LeaseTTL/3)
		next, err := d.lease.Update(rctx, LeaseKey, me, rev)
		cancel()
		switch {
		case err == nil:
			rev, renewed = next, time.Now()
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch), errors.Is(err, jetstream.ErrKeyNotFound):
			lost(fmt.Errorf("dispatch: lease taken over: %w", err))
			return
		case time.Since(renewed) > d.cfg.LeaseTTL:
			lost(fmt.Errorf("dispatch: lease not renewed for %s: %w", d.cfg.LeaseTTL, err))
			return
		}
	}
}

// leadState is the progress of one period of leadership.
type leadState struct {
	pos    uint64 // last commit fully published
	maxAck uint64 // highest stream sequence acknowledged (or known stored)
	// skip holds the ids of messages found in the stream after the
	// checkpoint's sequence, to be skipped, for commits up to skipUntil.
	skip      map[string]bool
	skipUntil uint64
	// floorSeq is the checkpoint's sequence while skip is in use: messages
	// found by the scan may lie anywhere above it.
	floorSeq uint64
	saved    Checkpoint
	// acked holds, with a DurableAfter, the checkpoints reached and when,
	// oldest first, until they are old enough to be written.
	acked []ackedCheckpoint
}

type ackedCheckpoint struct {
	at time.Time
	cp Checkpoint
}

// checkpoint is the checkpoint the state allows writing.
func (s *leadState) checkpoint(instance string) Checkpoint {
	seq := s.maxAck
	if s.skip != nil {
		seq = s.floorSeq
	}
	return Checkpoint{Position: s.pos, Sequence: seq, Instance: instance}
}

func (d *Dispatcher) lead(parent context.Context, rev uint64) error {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	go d.keepLease(ctx, rev, cancel)

	cp, err := d.loadCheckpoint(ctx)
	if err != nil {
		return err
	}
	st := &leadState{pos: cp.Position, floorSeq: cp.Sequence, saved: cp}
	if err := d.scan(ctx, cp, st); err != nil {
		return err
	}
	d.leading.Store(true)
	d.published.Store(cp.Position)
	d.cfg.Log.Info("dispatcher leads", zap.String("instance", d.cfg.Instance), zap.Uint64("from_position", cp.Position),
		zap.Uint64("from_sequence", cp.Sequence), zap.Int("already_published", len(st.skip)))

	shared := d.cfg.Follow
	if shared == nil {
		shared = follow.New(d.cfg.Store, follow.Options{Log: d.cfg.Log, MaxBatch: d.cfg.MaxBatch})
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = shared.Run(ctx)
		}()
		defer func() { <-done }()
	}
	// st is the follower's while it publishes a batch, the ticker's while it
	// saves the checkpoint.
	var stMu sync.Mutex
	followDone := make(chan error, 1)
	go func() {
		followDone <- shared.Follow(ctx, FollowerName, eventstore.Position(cp.Position), func(ctx context.Context, batch []follow.Commit) error {
			stMu.Lock()
			defer stMu.Unlock()
			return d.publishBatch(ctx, batch, st)
		})
	}()
	tick := time.NewTicker(d.cfg.CheckpointEvery)
	defer tick.Stop()
	defer func() {
		// Save what was published, whatever ended the leadership: it never
		// runs ahead of the stream, and it spares the next leader work.
		cancel(nil)
		<-followDone
		sctx, cancelSave := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancelSave()
		d.saveCheckpoint(sctx, st)
	}()
	for {
		select {
		case <-tick.C:
			stMu.Lock()
			d.saveCheckpoint(ctx, st)
			stMu.Unlock()
		case err := <-followDone:
			followDone <- err // for the deferred wait
			if ctx.Err() == nil {
				return fmt.Errorf("dispatch: following the log: %w", err)
			}
			if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
				return cause
			}
			return ctx.Err()
		case <-ctx.Done():
			if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
				return cause
			}
			return ctx.Err()
		}
	}
}

// loadCheckpoint reads the checkpoint; none means the start of the log.
func (d *Dispatcher) loadCheckpoint(ctx context.Context) (Checkpoint, error) {
	e, err := d.ckpt.Get(ctx, CheckpointKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Checkpoint{}, nil
	}
	if err != nil {
		return Checkpoint{}, fmt.Errorf("dispatch: read checkpoint %s/%s: %w", CheckpointBucket, CheckpointKey, err)
	}
	var cp Checkpoint
	if err := json.Unmarshal(e.Value(), &cp); err != nil {
		return Checkpoint{}, fmt.Errorf("dispatch: checkpoint %s/%s revision %d is not valid: %w", CheckpointBucket, CheckpointKey, e.Revision(), err)
	}
	return cp, nil
}

// saveCheckpoint writes the checkpoint when it moved. A failure is logged
// and retried at the next tick: a stale checkpoint costs work, never a
// wrong dispatch.
func (d *Dispatcher) saveCheckpoint(ctx context.Context, st *leadState) {
	cp, ok := d.durableCheckpoint(st)
	if !ok || cp.Position == st.saved.Position && cp.Sequence == st.saved.Sequence {
		return
	}
	b, _ := json.Marshal(cp)
	if _, err := d.ckpt.Put(ctx, CheckpointKey, b); err != nil {
		d.cfg.Log.Warn("dispatch checkpoint not written", zap.Uint64("position", cp.Position), zap.Error(err))
		return
	}
	st.saved = cp
}

// durableCheckpoint is the newest checkpoint that is surely on disk: the
// one reached now, or with a DurableAfter the newest acknowledged at least
// that long ago (false: none yet).
func (d *Dispatcher) durableCheckpoint(st *leadState) (Checkpoint, bool) {
	if d.cfg.DurableAfter <= 0 {
		return st.checkpoint(d.cfg.Instance), true
	}
	cutoff := d.cfg.Now().Add(-d.cfg.DurableAfter)
	n := 0
	for n < len(st.acked) && !st.acked[n].at.After(cutoff) {
		n++
	}
	if n == 0 {
		return Checkpoint{}, false
	}
	cp := st.acked[n-1].cp
	st.acked = slices.Delete(st.acked, 0, n)
	return cp, true
}

// scan reads the ids of the messages stored after the checkpoint's sequence:
// dispatches of commits after the checkpoint that a previous leader (or
// this process before a crash) published. They are skipped, so resuming
// from the checkpoint repeats nothing, however long ago they were published.
func (d *Dispatcher) scan(ctx context.Context, cp Checkpoint, st *leadState) error {
	info, err := d.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("dispatch: stream %s info: %w", StreamName, err)
	}
	last := info.State.LastSeq
	st.maxAck = max(last, cp.Sequence)
	if last <= cp.Sequence || info.State.Msgs == 0 {
		return nil
	}
	cons, err := d.js.OrderedConsumer(ctx, StreamName, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   cp.Sequence + 1,
		HeadersOnly:   true,
	})
	if err != nil {
		return fmt.Errorf("dispatch: scan stream %s after %d: %w", StreamName, cp.Sequence, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("dispatch: scan stream %s after %d: %w", StreamName, cp.Sequence, err)
	}
	defer it.Stop()
	st.skip = map[string]bool{}
	for {
		nctx, cancel := context.WithTimeout(ctx, d.cfg.PublishTimeout)
		msg, err := it.Next(jetstream.NextContext(nctx))
		cancel()
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				break // the messages up to `last` were removed meanwhile (max age)
			}
			return fmt.Errorf("dispatch: scan stream %s after %d: %w", StreamName, cp.Sequence, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("dispatch: scan stream %s: %w", StreamName, err)
		}
		if id := msg.Headers().Get(jetstream.MsgIDHeader); id != "" {
			st.skip[id] = true
		}
		if p, err := strconv.ParseUint(msg.Headers().Get(HeaderPosition), 10, 64); err == nil {
			st.skipUntil = max(st.skipUntil, p)
		}
		if meta.Sequence.Stream >= last || meta.NumPending == 0 {
			break
		}
	}
	if st.skipUntil <= cp.Position {
		st.skip = nil
	}
	return nil
}

// publishBatch dispatches the events of a batch of commits and waits until
// the stream has acknowledged every message, re-sending any that failed
// with the same message id.
func (d *Dispatcher) publishBatch(ctx context.Context, batch []follow.Commit, st *leadState) error {
	var out []outMsg
	for _, c := range batch {
		if uint64(c.Position) <= st.pos {
			continue // redelivered after a resubscription
		}
		msgs, err := d.plan(ctx, c)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if st.skip[m.msgID] {
				continue
			}
			out = append(out, m)
		}
	}
	if len(out) >= minAtomicBatch && d.atomicOK {
		// With fsync always each message of the stream costs an fsync of
		// its own; an atomic batch shares one. A refused batch stores
		// nothing, and what it held is sent one by one below.
		out = d.publishAtomic(ctx, out, st)
	}
	futures := make([]jetstream.PubAckFuture, len(out))
	for i, m := range out {
		f, err := d.js.PublishMsgAsync(m.natsMsg(), jetstream.WithMsgID(m.msgID))
		if err == nil {
			futures[i] = f
		}
	}
	for i, f := range futures {
		var seq uint64
		var err error
		if f == nil {
			err = errors.New("not sent")
		} else {
			select {
			case ack := <-f.Ok():
				seq = ack.Sequence
			case err = <-f.Err():
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err != nil {
			if seq, err = d.publishSync(ctx, out[i]); err != nil {
				return err
			}
		}
		st.maxAck = max(st.maxAck, seq)
	}
	last := uint64(batch[len(batch)-1].Position)
	if last > st.pos {
		st.pos = last
	}
	if st.skip != nil && st.pos >= st.skipUntil {
		st.skip = nil // every commit the scan found dispatches for is behind us
	}
	d.published.Store(st.pos)
	if d.cfg.DurableAfter > 0 {
		st.acked = append(st.acked, ackedCheckpoint{at: d.cfg.Now(), cp: st.checkpoint(d.cfg.Instance)})
	}
	return nil
}

// minAtomicBatch is the fewest messages published as an atomic batch: the
// server stages a batch at a fixed cost of a few syncs of its own, so fewer
// messages go one by one.
const minAtomicBatch = 16

// publishAtomic publishes out in atomic batches, each with its messages' ids,
// and returns what is left to publish one by one: everything from the first
// batch the server refused (a message id it already holds, after a restart)
// or did not answer.
func (d *Dispatcher) publishAtomic(ctx context.Context, out []outMsg, st *leadState) []outMsg {
	for len(out) >= minAtomicBatch {
		n := min(len(out), natsbus.MaxAtomicBatch)
		msgs := make([]*nats.Msg, n)
		for i, m := range out[:n] {
			msgs[i] = m.natsMsg()
			msgs[i].Header.Set(jetstream.MsgIDHeader, m.msgID)
		}
		pctx, cancel := context.WithTimeout(ctx, d.cfg.PublishTimeout)
		first, err := natsbus.PublishAtomic(pctx, d.cfg.Conn, StreamName, uuid.NewString(), msgs)
		cancel()
		if err != nil {
			d.cfg.Log.Debug("dispatch: atomic batch refused; publishing its messages one by one",
				zap.Int("messages", n), zap.Error(err))
			return out
		}
		st.maxAck = max(st.maxAck, first+uint64(n)-1)
		out = out[n:]
	}
	return out
}

// publishSync re-sends one message until it is acknowledged or ctx is done.
// The message id makes a re-send of a message that did land harmless.
func (d *Dispatcher) publishSync(ctx context.Context, m outMsg) (uint64, error) {
	for attempt := 1; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, d.cfg.PublishTimeout)
		ack, err := d.js.PublishMsg(pctx, m.natsMsg(), jetstream.WithMsgID(m.msgID))
		cancel()
		if err == nil {
			return ack.Sequence, nil
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		d.cfg.Log.Warn("dispatch publish failed; retrying", zap.String("subject", m.subject),
			zap.String("event_id", m.body.EventID), zap.Int("attempt", attempt), zap.Error(err))
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(min(time.Duration(attempt)*200*time.Millisecond, 3*time.Second)):
		}
	}
}

// plan folds a commit into its case's state and returns its messages. The
// state before the commit comes from the shared cache (or the case's
// stream); the one after is put back for the other followers.
func (d *Dispatcher) plan(ctx context.Context, c follow.Commit) ([]outMsg, error) {
	if c.EventsErr != nil {
		return nil, c.EventsErr
	}
	if len(c.Envelopes) == 0 {
		return nil, nil
	}
	before, err := d.cfg.Cases.Before(ctx, c.Envelopes)
	if err != nil {
		return nil, err
	}
	cs := before.Clone()
	var out []outMsg
	for i, env := range c.Envelopes {
		out = append(out, applyAndPlan(cs, env, c.Events[i], c.Position)...)
		if m, ok := planReply(cs, env, c.Events, i, c.Position); ok {
			out = append(out, m)
		}
	}
	d.cfg.Cases.Put(cs)
	return out, nil
}
