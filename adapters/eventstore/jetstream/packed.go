package jetstream

// The packed log (DESIGN.md §11, Config.Packed).
//
// Every commit waiting when a batch is cut goes into one JetStream message on
// the log's one subject, so a whole batch costs one fsync and one round trip.
// One Store at a time writes (the owner, holding a lease in a KV bucket);
// the others forward their appends to it over request/reply. Each batch
// expects the subject's last sequence to be the one its writer knows, so a
// writer that is not alone (a stale owner, two owners for a moment) has its
// batch refused by the server, catches up with what the other wrote and
// decides again: safety comes from the server's check, the lease only
// decides who should write.
//
// Positions are dense: a batch message carries the position of its first
// commit (HeaderPosition), commit i of it has that plus i.
//
// Each commit is also copied, after the batch's acknowledgement and before
// its Append is answered, to the index stream on <IndexPrefix>.<stream>, so
// that ReadStream is one batched direct get, as with a message per commit.
// The index is derived: every batch records how far it is known durable
// (HeaderIndexed), and an owner re-publishes the copies after that mark
// before it writes anything (the index's duplicate window drops those it
// still holds; a reader drops a repeated version and refuses a gap).

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/whistle-gov/whistle/adapters/eventstore"
)

// Defaults of the packed log's Config fields.
const (
	DefaultLogStreamName   = "WHISTLE_LOG"
	DefaultLogSubject      = "whistle.log"
	DefaultIndexStreamName = "WHISTLE_INDEX"
	DefaultIndexPrefix     = "whistle.index"
	DefaultLeaseBucket     = "WHISTLE_LOG_OWNER"
	DefaultLeaseTTL        = 3 * time.Second
	DefaultMaxPacked       = 1000
)

// Headers of the packed log's messages.
const (
	// HeaderPosition is, on a batch, the position of its first commit; on
	// an index copy, the position of the commit it copies.
	HeaderPosition = "Whistle-Position"
	// HeaderCommits is the number of commits in a batch.
	HeaderCommits = "Whistle-Commits"
	// HeaderIndexed is, on a batch, the highest position up to which the
	// index was known durable when the batch was cut.
	HeaderIndexed = "Whistle-Indexed"
	// HeaderStream names the event stream of a forwarded append.
	HeaderStream = "Whistle-Stream"

	hdrResult   = "Whistle-Result"
	hdrNext     = "Whistle-Next"
	hdrActual   = "Whistle-Actual"
	hdrIndexSeq = "Whistle-Index-Seq"
	hdrPing     = "Whistle-Ping"
)

// formatBatch is the first byte of a batch body:
//
//	0x02 count { len(stream) stream len(commit) commit }*count
//
// where commit is a formatV1 commit body.
const formatBatch = 0x02

// leaseKey is the lease of the log's one partition.
const leaseKey = "p0"

// errNotOwner: this Store (or the one an append was forwarded to) does not
// own the log; the append was not written and goes to the owner.
var errNotOwner = errors.New("not the log's owner")

// packedLog is the part of a Store that runs the packed log.
type packedLog struct {
	s       *Store
	id      string
	rpcSubj string // where the owner takes forwarded appends: <LogSubject>.rpc.<id>
	logSubj string // the log's one subject: <LogSubject>.p0
	kv      natsjs.KeyValue
	sub     *nats.Subscription
	log     *zap.Logger

	leadMu sync.Mutex // one lease attempt at a time

	mu        sync.Mutex
	w         *writer // non-nil while this Store owns the log
	rev       uint64  // our lease revision, while w != nil
	renewed   time.Time
	ownerSubj string // the owner's rpc subject as last read, when not us

	cursors cursorCache
}

func openPacked(ctx context.Context, s *Store) (*packedLog, error) {
	cfg := s.cfg
	idx := natsjs.StreamConfig{
		Name:        cfg.IndexStreamName,
		Description: "whistle event log index: a copy of each commit on its event stream's subject, derived from " + cfg.LogStreamName,
		Subjects:    []string{cfg.IndexPrefix + ".>"},
		Retention:   natsjs.LimitsPolicy,
		MaxMsgs:     -1,
		MaxBytes:    -1,
		Discard:     natsjs.DiscardNew,
		Storage:     natsjs.FileStorage,
		Replicas:    cfg.Replicas,
		Duplicates:  cfg.DuplicateWindow,
		AllowDirect: true,
	}
	if cfg.IndexAsync {
		idx.PersistMode = natsjs.AsyncPersistMode
	}
	rctx, cancel := context.WithTimeout(ctx, max(cfg.RequestTimeout, 10*time.Second))
	defer cancel()
	if _, err := s.js.CreateOrUpdateStream(rctx, idx); err != nil {
		return nil, fmt.Errorf("jetstream: create or update index stream %s: %w", cfg.IndexStreamName, err)
	}
	kv, err := s.js.CreateOrUpdateKeyValue(rctx, natsjs.KeyValueConfig{
		Bucket: cfg.LeaseBucket, Description: "whistle event log owner: one writer of " + cfg.LogStreamName + " at a time",
		History: 1, TTL: cfg.LeaseTTL, Storage: natsjs.FileStorage, Replicas: cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("jetstream: lease bucket %s: %w", cfg.LeaseBucket, err)
	}
	id := uuid.NewString()
	p := &packedLog{
		s:       s,
		id:      id,
		rpcSubj: cfg.LogSubject + ".rpc." + id,
		logSubj: cfg.LogSubject + ".p0",
		kv:      kv,
		log:     cfg.Logger,
	}
	p.cursors.m = make(map[uint64]uint64)
	if p.sub, err = s.nc.Subscribe(p.rpcSubj, p.serve); err != nil {
		return nil, fmt.Errorf("jetstream: subscribe %s: %w", p.rpcSubj, err)
	}
	p.lead(rctx)
	if w := p.writer(); w != nil {
		// The owner repairs the index before anyone reads through this
		// Store: after a crash of an embedded server, its tail may be
		// missing until then.
		select {
		case <-w.ready:
		case <-rctx.Done():
			p.close()
			return nil, fmt.Errorf("jetstream: catch up the packed log %s: %w", cfg.LogStreamName, rctx.Err())
		}
	}
	go p.leaseLoop()
	return p, nil
}

// ---- the lease ----

// leaseLoop renews the lease while this Store owns the log and takes it when
// it is free, until the Store closes.
func (p *packedLog) leaseLoop() {
	tick := time.NewTicker(p.s.cfg.LeaseTTL / 3)
	defer tick.Stop()
	for {
		select {
		case <-p.s.life.Done():
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(p.s.life, p.s.cfg.LeaseTTL/3)
		p.lead(ctx)
		cancel()
	}
}

// lead renews the lease if this Store holds it, else takes it if it is free
// (and becomes the owner), else learns who holds it.
func (p *packedLog) lead(ctx context.Context) {
	p.leadMu.Lock()
	defer p.leadMu.Unlock()
	me := []byte(p.rpcSubj)
	p.mu.Lock()
	w, rev, renewed := p.w, p.rev, p.renewed
	p.mu.Unlock()
	if w != nil {
		next, err := p.kv.Update(ctx, leaseKey, me, rev)
		switch {
		case err == nil:
			p.mu.Lock()
			p.rev, p.renewed = next, time.Now()
			p.mu.Unlock()
		case errors.Is(err, natsjs.ErrKeyExists), errors.Is(err, natsjs.ErrKeyNotFound), errors.Is(err, natsjs.ErrKeyDeleted):
			p.stepDown(fmt.Errorf("lease taken over: %w", err))
		case time.Since(renewed) > p.s.cfg.LeaseTTL:
			p.stepDown(fmt.Errorf("lease not renewed for %s: %w", p.s.cfg.LeaseTTL, err))
		}
		return
	}
	rev, err := p.kv.Create(ctx, leaseKey, me)
	if err == nil {
		p.becomeOwner(rev)
		return
	}
	e, err := p.kv.Get(ctx, leaseKey)
	if err != nil {
		return
	}
	holder := string(e.Value())
	if holder != p.rpcSubj && !p.alive(ctx, holder) {
		// The holder is gone (a process killed, e.g. this one before a
		// restart): take the lease now rather than after its TTL. Safe
		// whatever the holder's state: the fence stops a writer that is
		// not alone.
		if rev, err := p.kv.Update(ctx, leaseKey, me, e.Revision()); err == nil {
			p.log.Info("event log: the owner does not answer; taking over", zap.String("store", p.id), zap.String("previous", holder))
			p.becomeOwner(rev)
			return
		}
	}
	p.mu.Lock()
	p.ownerSubj = holder
	p.mu.Unlock()
}

// alive asks the Store whose request subject is subj whether it is there;
// only "no responders" counts as gone.
func (p *packedLog) alive(ctx context.Context, subj string) bool {
	m := nats.NewMsg(subj)
	m.Header.Set(hdrPing, "1")
	rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	_, err := p.s.nc.RequestMsgWithContext(rctx, m)
	return !errors.Is(err, nats.ErrNoResponders)
}

func (p *packedLog) becomeOwner(rev uint64) {
	w := newWriter(p)
	p.mu.Lock()
	if p.s.closed.Load() {
		p.mu.Unlock()
		return
	}
	p.w, p.rev, p.renewed, p.ownerSubj = w, rev, time.Now(), ""
	p.mu.Unlock()
	p.log.Info("event log: this store owns the log", zap.String("store", p.id))
	go w.run()
}

// stepDown stops writing: appends waiting for the writer go to the new
// owner.
func (p *packedLog) stepDown(why error) {
	p.mu.Lock()
	w := p.w
	p.w = nil
	p.mu.Unlock()
	if w != nil {
		p.log.Warn("event log: this store no longer owns the log", zap.String("store", p.id), zap.Error(why))
		w.stop()
	}
}

func (p *packedLog) writer() *writer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.w
}

func (p *packedLog) owner() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ownerSubj
}

func (p *packedLog) forgetOwner(subj string) {
	p.mu.Lock()
	if p.ownerSubj == subj {
		p.ownerSubj = ""
	}
	p.mu.Unlock()
}

// close gives the lease up, so that another Store takes over at once.
func (p *packedLog) close() {
	p.sub.Unsubscribe()
	p.mu.Lock()
	w, rev := p.w, p.rev
	p.w = nil
	p.mu.Unlock()
	if w != nil {
		w.stop()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = p.kv.Delete(ctx, leaseKey, natsjs.LastRevision(rev))
		cancel()
	}
}

// ---- appends ----

// append writes one commit through the owner: this Store's writer when it
// owns the log, else the owner's over request/reply.
func (p *packedLog) append(ctx context.Context, stream string, expected uint64, events []eventstore.EventData) (eventstore.AppendResult, error) {
	body := encodeCommit(expected, events)
	if len(body)+len(stream)+64 > p.maxBatchBytes() {
		return eventstore.AppendResult{}, fmt.Errorf("commit of %d bytes exceeds the %d bytes of one message", len(body), p.maxBatchBytes())
	}
	for attempt := 0; ; attempt++ {
		var res eventstore.AppendResult
		var idxSeq uint64
		var err error
		if w := p.writer(); w != nil {
			res, idxSeq, err = w.append(ctx, &pending{stream: stream, expected: expected, n: len(events), hash: hashIDs(events), body: body})
			if errors.Is(err, context.Canceled) && ctx.Err() == nil && p.s.life.Err() == nil {
				// The writer stopped (the lease was lost), not the caller:
				// go to the new owner, which recognises a repeat as done.
				err = errNotOwner
			}
		} else if subj := p.owner(); subj != "" {
			res, idxSeq, err = p.forward(ctx, subj, stream, body)
			if errors.Is(err, errNotOwner) {
				p.forgetOwner(subj)
			}
		} else {
			err = errNotOwner
		}
		if !errors.Is(err, errNotOwner) {
			if err == nil {
				p.s.cache.put(stream, tip{next: res.NextVersion, seq: idxSeq})
			}
			return res, err
		}
		if p.s.nc.IsClosed() {
			return eventstore.AppendResult{}, nats.ErrConnectionClosed
		}
		// No owner known, or it stepped down: take the lease if it is
		// free, else learn the new owner.
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return eventstore.AppendResult{}, ctx.Err()
			case <-time.After(min(time.Duration(attempt)*25*time.Millisecond, 250*time.Millisecond)):
			}
		}
		lctx, cancel := context.WithTimeout(ctx, p.s.cfg.RequestTimeout)
		p.lead(lctx)
		cancel()
	}
}

func (p *packedLog) maxBatchBytes() int {
	return min(int(p.s.nc.MaxPayload())-4096, 8<<20)
}

// forward sends an append to the owner at subj. A reply that does not come
// is re-sent (the owner recognises a repeat as done); errNotOwner means it
// was not written.
func (p *packedLog) forward(ctx context.Context, subj, stream string, body []byte) (eventstore.AppendResult, uint64, error) {
	s := p.s
	m := nats.NewMsg(subj)
	m.Header.Set(HeaderStream, stream)
	m.Data = body
	for try := 0; ; try++ {
		rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
		reply, err := s.request(rctx, m)
		cancel()
		err = s.timeout(ctx, err)
		if errors.Is(err, nats.ErrNoResponders) {
			return eventstore.AppendResult{}, 0, errNotOwner
		}
		if err != nil {
			if ctx.Err() != nil || !transient(err) || try >= s.cfg.PublishRetries {
				return eventstore.AppendResult{}, 0, fmt.Errorf("forwarded to the log's owner: %w", err)
			}
			continue
		}
		h := reply.Header
		switch h.Get(hdrResult) {
		case "ok":
			pos, err1 := strconv.ParseUint(h.Get(HeaderPosition), 10, 64)
			next, err2 := strconv.ParseUint(h.Get(hdrNext), 10, 64)
			idx, _ := strconv.ParseUint(h.Get(hdrIndexSeq), 10, 64)
			if err1 != nil || err2 != nil {
				return eventstore.AppendResult{}, 0, fmt.Errorf("forwarded to the log's owner: bad reply %v", h)
			}
			return eventstore.AppendResult{Position: eventstore.Position(pos), NextVersion: next}, idx, nil
		case "conflict":
			expected, _ := strconv.ParseUint(h.Get(HeaderVersion), 10, 64)
			actual, _ := strconv.ParseUint(h.Get(hdrActual), 10, 64)
			return eventstore.AppendResult{}, 0, &eventstore.ConflictError{Stream: stream, Expected: expected, Actual: actual}
		case "notowner":
			return eventstore.AppendResult{}, 0, errNotOwner
		default:
			return eventstore.AppendResult{}, 0, fmt.Errorf("forwarded to the log's owner: %s", reply.Data)
		}
	}
}

// serve answers an append forwarded by another Store.
func (p *packedLog) serve(m *nats.Msg) {
	if m.Header.Get(hdrPing) != "" {
		_ = m.Respond(nil)
		return
	}
	go func() {
		reply := nats.NewMsg(m.Reply)
		res, idxSeq, err := p.serveAppend(m)
		var ce *eventstore.ConflictError
		switch {
		case err == nil:
			reply.Header.Set(hdrResult, "ok")
			reply.Header.Set(HeaderPosition, strconv.FormatUint(uint64(res.Position), 10))
			reply.Header.Set(hdrNext, strconv.FormatUint(res.NextVersion, 10))
			reply.Header.Set(hdrIndexSeq, strconv.FormatUint(idxSeq, 10))
		case errors.As(err, &ce):
			reply.Header.Set(hdrResult, "conflict")
			reply.Header.Set(HeaderVersion, strconv.FormatUint(ce.Expected, 10))
			reply.Header.Set(hdrActual, strconv.FormatUint(ce.Actual, 10))
		case errors.Is(err, errNotOwner) || errors.Is(err, context.Canceled) || p.s.life.Err() != nil:
			// An owner closing or losing the lease (its appends cancelled;
			// the forwarder's own context is not this one) is one no more: the
			// forwarder takes the lease and appends again, which the next
			// owner recognises as done if this one wrote it after all.
			reply.Header.Set(hdrResult, "notowner")
		default:
			reply.Header.Set(hdrResult, "error")
			reply.Data = []byte(err.Error())
		}
		_ = m.RespondMsg(reply)
	}()
}

func (p *packedLog) serveAppend(m *nats.Msg) (eventstore.AppendResult, uint64, error) {
	stream := m.Header.Get(HeaderStream)
	if err := checkStreamName(stream); err != nil {
		return eventstore.AppendResult{}, 0, err
	}
	c, first, count, err := decodeBody(stream, 0, m.Data, func(what string) error {
		return fmt.Errorf("forwarded append to %q: %s", stream, what)
	})
	if err != nil {
		return eventstore.AppendResult{}, 0, err
	}
	if count == 0 {
		return eventstore.AppendResult{}, 0, fmt.Errorf("forwarded append to %q: no events", stream)
	}
	w := p.writer()
	if w == nil {
		return eventstore.AppendResult{}, 0, errNotOwner
	}
	ctx, cancel := context.WithTimeout(p.s.life, p.s.cfg.RequestTimeout)
	defer cancel()
	return w.append(ctx, &pending{stream: stream, expected: first, n: int(count), hash: hashRecorded(c.Events), body: m.Data})
}

// ---- the owner's writer ----

// pending is one commit waiting for the writer.
type pending struct {
	stream   string
	expected uint64
	n        int
	hash     uint64 // of its event IDs, to recognise a retry
	body     []byte // formatV1
	done     chan packResult
}

type packResult struct {
	res    eventstore.AppendResult
	idxSeq uint64
	err    error
}

// ownerTip is what the owner knows of one event stream's end.
type ownerTip struct {
	next  uint64 // the stream's length
	first uint64 // the first version of its last commit
	n     int    // events in its last commit
	hash  uint64 // of the last commit's event IDs
	pos   uint64 // the last commit's position; 0 while not yet stored
}

// writer is the owner's side: it cuts batches, writes them fenced, indexes
// them and answers their appends. One goroutine (run) does all of it in
// order; append only queues.
type writer struct {
	p     *packedLog
	ctx   context.Context
	quit  context.CancelFunc
	in    chan *pending
	ready chan struct{}

	tmu  sync.Mutex
	tips map[string]ownerTip

	// run's own state.
	lastSeq uint64 // the log subject's last sequence as this writer knows it
	nextPos uint64
	synced  bool // lastSeq is known to be the log's end (up to others' writes, which the fence catches)
	batchN  uint64
	marks   []mark // index acknowledgements not yet taken as durable
	durable uint64 // the index is durable up to this position
}

type mark struct {
	at  time.Time
	pos uint64
}

func newWriter(p *packedLog) *writer {
	ctx, quit := context.WithCancel(p.s.life)
	return &writer{p: p, ctx: ctx, quit: quit, in: make(chan *pending, 4096), ready: make(chan struct{}), tips: make(map[string]ownerTip)}
}

func (w *writer) stop() { w.quit() }

// append queues r and waits for its outcome. errNotOwner: not written.
func (w *writer) append(ctx context.Context, r *pending) (eventstore.AppendResult, uint64, error) {
	select {
	case <-w.ready:
	case <-w.ctx.Done():
		return eventstore.AppendResult{}, 0, errNotOwner
	case <-ctx.Done():
		return eventstore.AppendResult{}, 0, ctx.Err()
	}
	// Answer a conflict or a retry from what is known, without queueing.
	t, ok, err := w.tip(ctx, r.stream)
	if err != nil {
		return eventstore.AppendResult{}, 0, err
	}
	if ok && t.next != r.expected {
		res, err := decided(t, r)
		return res, 0, err
	}
	r.done = make(chan packResult, 1)
	select {
	case w.in <- r:
	case <-w.ctx.Done():
		return eventstore.AppendResult{}, 0, errNotOwner
	case <-ctx.Done():
		return eventstore.AppendResult{}, 0, ctx.Err()
	}
	select {
	case out := <-r.done:
		return out.res, out.idxSeq, out.err
	case <-ctx.Done():
		// Still queued or in flight: it may or may not be written.
		return eventstore.AppendResult{}, 0, ctx.Err()
	}
}

// decided answers an append whose expectation the stream's tip does not
// meet: the same commit again (a lost acknowledgement) gets its result, any
// other a conflict.
func decided(t ownerTip, r *pending) (eventstore.AppendResult, error) {
	if t.pos != 0 && t.first == r.expected && t.n == r.n && t.hash == r.hash {
		return eventstore.AppendResult{Position: eventstore.Position(t.pos), NextVersion: t.next}, nil
	}
	return eventstore.AppendResult{}, &eventstore.ConflictError{Stream: r.stream, Expected: r.expected, Actual: t.next}
}

// tip returns what the owner knows of stream's end, loading it from the
// index when it is not in memory. ok is false for a stream with no commit.
func (w *writer) tip(ctx context.Context, stream string) (ownerTip, bool, error) {
	w.tmu.Lock()
	t, ok := w.tips[stream]
	w.tmu.Unlock()
	if ok {
		return t, true, nil
	}
	s := w.p.s
	last, found, err := s.leaderGetOn(ctx, s.cfg.IndexStreamName, getRequest{LastFor: s.cfg.IndexPrefix + "." + stream})
	if err != nil || !found {
		return ownerTip{}, false, err
	}
	c, err := decodeCopy(stream, last)
	if err != nil {
		return ownerTip{}, false, err
	}
	t = tipOf(c)
	w.putTip(stream, t)
	w.tmu.Lock()
	t = w.tips[stream]
	w.tmu.Unlock()
	return t, true, nil
}

func tipOf(c eventstore.Commit) ownerTip {
	first := c.Events[0].Version
	return ownerTip{next: first + uint64(len(c.Events)), first: first, n: len(c.Events), hash: hashRecorded(c.Events), pos: uint64(c.Position)}
}

// putTip records t unless a later commit of the stream is known.
func (w *writer) putTip(stream string, t ownerTip) {
	w.tmu.Lock()
	defer w.tmu.Unlock()
	if old, ok := w.tips[stream]; ok && old.next > t.next {
		return
	}
	if _, ok := w.tips[stream]; !ok && w.p.s.cfg.CacheSize > 0 && len(w.tips) >= w.p.s.cfg.CacheSize {
		for k := range w.tips {
			delete(w.tips, k)
			break
		}
	}
	w.tips[stream] = t
}

// run is the writer's loop: recover, then batches until the writer stops.
func (w *writer) run() {
	var queue []*pending
	defer func() {
		// Whatever still waits goes to the next owner.
		for _, r := range queue {
			r.done <- packResult{err: errNotOwner}
		}
		for {
			select {
			case r := <-w.in:
				r.done <- packResult{err: errNotOwner}
			default:
				return
			}
		}
	}()
	for {
		if err := w.sync(); err != nil {
			if w.ctx.Err() != nil {
				return
			}
			w.p.log.Warn("event log: catching up with the log failed; retrying", zap.Error(err))
			select {
			case <-w.ctx.Done():
				return
			case <-time.After(250 * time.Millisecond):
			}
			continue
		}
		break
	}
	close(w.ready)
	for {
		if len(queue) == 0 {
			select {
			case r := <-w.in:
				queue = append(queue, r)
			case <-w.ctx.Done():
				return
			}
		}
	drain:
		for {
			select {
			case r := <-w.in:
				queue = append(queue, r)
			default:
				break drain
			}
		}
		if !w.synced {
			if err := w.sync(); err != nil {
				if w.ctx.Err() != nil {
					return
				}
				w.p.log.Warn("event log: catching up with the log failed; retrying", zap.Error(err))
				select {
				case <-w.ctx.Done():
				case <-time.After(250 * time.Millisecond):
				}
				continue
			}
		}
		queue = w.batch(queue)
	}
}

// batch writes one batch cut from the front of queue and returns what is
// left (and what must be sent again).
func (w *writer) batch(queue []*pending) []*pending {
	s := w.p.s
	limit := w.p.maxBatchBytes()
	var members []*pending
	var rest []*pending
	overlay := map[string]ownerTip{}
	size := 0
	for i, r := range queue {
		if len(members) >= s.cfg.MaxPacked || (len(members) > 0 && size+len(r.body)+len(r.stream)+20 > limit) {
			rest = append(rest, queue[i:]...)
			break
		}
		t, ok := overlay[r.stream]
		if !ok {
			var err error
			if t, ok, err = w.tip(w.ctx, r.stream); err != nil {
				r.done <- packResult{err: err}
				continue
			}
		}
		if (ok && t.next != r.expected) || (!ok && r.expected != 0) {
			res, err := decided(t, r)
			r.done <- packResult{res: res, err: err}
			continue
		}
		members = append(members, r)
		size += len(r.body) + len(r.stream) + 20
		overlay[r.stream] = ownerTip{next: r.expected + uint64(r.n), first: r.expected, n: r.n, hash: r.hash}
	}
	if len(members) == 0 {
		return rest
	}
	w.batchN++
	m := nats.NewMsg(w.p.logSubj)
	m.Header.Set(HeaderPosition, strconv.FormatUint(w.nextPos, 10))
	m.Header.Set(HeaderCommits, strconv.Itoa(len(members)))
	m.Header.Set(HeaderIndexed, strconv.FormatUint(w.durableMark(), 10))
	m.Header.Set(natsjs.MsgIDHeader, w.p.id+"-"+strconv.FormatUint(w.batchN, 10))
	m.Header.Set(natsjs.ExpectedLastSubjSeqHeader, strconv.FormatUint(w.lastSeq, 10))
	b := make([]byte, 0, size+16)
	b = append(b, formatBatch)
	b = binary.AppendUvarint(b, uint64(len(members)))
	for _, r := range members {
		b = appendBytes(b, []byte(r.stream))
		b = appendBytes(b, r.body)
	}
	m.Data = b

	ack, err := w.publish(m)
	s.observe(len(members))
	switch {
	case err == nil:
	case isWrongLastSeq(err):
		// Someone else wrote: learn it, then decide these again.
		w.synced = false
		w.p.log.Warn("event log: another writer appended; catching up", zap.Uint64("expected_last_seq", w.lastSeq))
		go func() {
			ctx, cancel := context.WithTimeout(w.ctx, s.cfg.RequestTimeout)
			w.p.lead(ctx)
			cancel()
		}()
		return append(members, rest...)
	default:
		// The outcome is unknown: the commits may or may not be stored.
		// Catch up before the next batch, which learns either way. A
		// writer stopped meanwhile sends them to the next owner, which
		// recognises those that were stored.
		w.synced = false
		if w.ctx.Err() != nil {
			err = errNotOwner
		}
		for _, r := range members {
			r.done <- packResult{err: err}
		}
		return rest
	}
	first := w.nextPos
	w.lastSeq, w.nextPos = ack.Sequence, first+uint64(len(members))
	commits := make([]indexed, len(members))
	for i, r := range members {
		pos := first + uint64(i)
		w.putTip(r.stream, ownerTip{next: r.expected + uint64(r.n), first: r.expected, n: r.n, hash: r.hash, pos: pos})
		commits[i] = indexed{stream: r.stream, pos: pos, expected: r.expected, n: r.n, body: r.body}
	}
	seqs, err := w.index(commits)
	for i, r := range members {
		if err != nil {
			// Stored in the log but not known to be indexed: the next owner
			// indexes it, and a retry there is recognised.
			r.done <- packResult{err: errNotOwner}
			continue
		}
		r.done <- packResult{res: eventstore.AppendResult{Position: eventstore.Position(commits[i].pos), NextVersion: r.expected + uint64(r.n)}, idxSeq: seqs[i]}
	}
	return rest
}

// publish sends a batch, re-sending it (same message ID, same expected
// sequence) when the acknowledgement does not come.
func (w *writer) publish(m *nats.Msg) (*natsjs.PubAck, error) {
	s := w.p.s
	for try := 0; ; try++ {
		ctx, cancel := context.WithTimeout(w.ctx, s.cfg.RequestTimeout)
		ack, err := s.publish(ctx, m)
		cancel()
		err = s.timeout(w.ctx, err)
		if err == nil || w.ctx.Err() != nil || !transient(err) || try >= s.cfg.PublishRetries {
			return ack, err
		}
		select {
		case <-w.ctx.Done():
			return nil, w.ctx.Err()
		case <-time.After(time.Duration(try+1) * 100 * time.Millisecond):
		}
	}
}

// indexed is a stored commit to copy to the index.
type indexed struct {
	stream   string
	pos      uint64
	expected uint64
	n        int
	body     []byte
}

// index copies commits to the index stream, in order, and returns each
// copy's sequence there. It retries until every copy is acknowledged or the
// writer stops.
func (w *writer) index(commits []indexed) ([]uint64, error) {
	s := w.p.s
	seqs := make([]uint64, len(commits))
	todo := make([]int, len(commits))
	for i := range todo {
		todo[i] = i
	}
	for try := 0; len(todo) > 0; try++ {
		if try > 0 {
			select {
			case <-w.ctx.Done():
				return nil, w.ctx.Err()
			case <-time.After(min(time.Duration(try)*100*time.Millisecond, time.Second)):
			}
		}
		futures := make([]natsjs.PubAckFuture, len(todo))
		var failed []int
		for k, i := range todo {
			c := commits[i]
			m := nats.NewMsg(s.cfg.IndexPrefix + "." + c.stream)
			m.Header.Set(HeaderVersion, strconv.FormatUint(c.expected, 10))
			m.Header.Set(HeaderCount, strconv.Itoa(c.n))
			m.Header.Set(HeaderPosition, strconv.FormatUint(c.pos, 10))
			m.Header.Set(natsjs.MsgIDHeader, firstID(c.body))
			m.Data = c.body
			f, err := s.js.PublishMsgAsync(m)
			if err != nil {
				failed = append(failed, i)
				continue
			}
			futures[k] = f
		}
		timeout := time.After(s.cfg.RequestTimeout)
		for k, i := range todo {
			f := futures[k]
			if f == nil {
				continue
			}
			select {
			case ack := <-f.Ok():
				seqs[i] = ack.Sequence
			case err := <-f.Err():
				w.p.log.Warn("event log: index copy refused; retrying", zap.String("case_stream", commits[i].stream), zap.Error(err))
				failed = append(failed, i)
			case <-timeout:
				failed = append(failed, i)
			case <-w.ctx.Done():
				return nil, w.ctx.Err()
			}
		}
		slices.Sort(failed)
		todo = failed
	}
	if len(commits) > 0 {
		w.marks = append(w.marks, mark{at: time.Now(), pos: commits[len(commits)-1].pos})
	}
	return seqs, nil
}

// durableMark is the highest position up to which the index is known
// durable: acknowledged, and with an index that syncs on an interval, old
// enough to have been synced.
func (w *writer) durableMark() uint64 {
	cut := time.Now().Add(-w.p.s.cfg.IndexDurableAfter)
	k := 0
	for k < len(w.marks) && !w.marks[k].at.After(cut) {
		w.durable = max(w.durable, w.marks[k].pos)
		k++
	}
	w.marks = w.marks[k:]
	return w.durable
}

// sync brings the writer to the log's end: on its first call from the
// index's durable mark (re-indexing what may be missing), later from the
// last sequence it knew (learning what another writer stored).
func (w *writer) sync() error {
	s := w.p.s
	ctx, cancel := context.WithTimeout(w.ctx, 4*s.cfg.RequestTimeout)
	defer cancel()
	last, found, err := s.leaderGetOn(ctx, s.cfg.LogStreamName, getRequest{LastFor: w.p.logSubj})
	if err != nil {
		return err
	}
	if !found {
		w.lastSeq, w.nextPos, w.synced = 0, 1, true
		return nil
	}
	lastB, err := decodeBatchMsg(last)
	if err != nil {
		return err
	}
	b := lastB
	from := w.lastSeq + 1
	if w.lastSeq == 0 {
		// First sync: re-index everything after the durable mark. Walk
		// back to the batch holding the position after it.
		w.durable = max(w.durable, b.indexed)
		from = last.seq
		for from > 1 && b.first > w.durable+1 {
			prev, ok, err := s.leaderGetOn(ctx, s.cfg.LogStreamName, getRequest{Seq: from - 1})
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			if b, err = decodeBatchMsg(prev); err != nil {
				return err
			}
			from--
		}
	}
	for seq := from; seq <= last.seq; seq++ {
		r, ok, err := s.leaderGetOn(ctx, s.cfg.LogStreamName, getRequest{Seq: seq})
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		b, err := decodeBatchMsg(r)
		if err != nil {
			return err
		}
		var todo []indexed
		for _, c := range b.commits {
			if uint64(c.Position) <= w.durable {
				continue
			}
			w.putTip(c.Stream, tipOf(c))
			first := c.Events[0].Version
			todo = append(todo, indexed{stream: c.Stream, pos: uint64(c.Position), expected: first, n: len(c.Events), body: encodeRecorded(first, c.Events)})
		}
		if _, err := w.index(todo); err != nil {
			return err
		}
		w.lastSeq, w.nextPos = r.seq, b.first+uint64(len(b.commits))
	}
	if w.lastSeq < last.seq {
		w.lastSeq = last.seq
		w.nextPos = lastB.first + uint64(len(lastB.commits))
	}
	w.synced = true
	return nil
}

// ---- codec of batches and copies ----

// batchMsg is a decoded batch.
type batchMsg struct {
	seq     uint64
	first   uint64 // position of the first commit
	indexed uint64
	commits []eventstore.Commit
}

func decodeBatchMsg(r rawMsg) (batchMsg, error) {
	bad := func(what string) error {
		return fmt.Errorf("jetstream: message %d on %s: %s: %w", r.seq, r.subject, what, errNotCommit)
	}
	first, err := strconv.ParseUint(r.header.Get(HeaderPosition), 10, 64)
	if err != nil || first == 0 {
		return batchMsg{}, bad(fmt.Sprintf("header %s %q", HeaderPosition, r.header.Get(HeaderPosition)))
	}
	count, err := strconv.ParseUint(r.header.Get(HeaderCommits), 10, 64)
	if err != nil || count == 0 {
		return batchMsg{}, bad(fmt.Sprintf("header %s %q", HeaderCommits, r.header.Get(HeaderCommits)))
	}
	indexedPos, _ := strconv.ParseUint(r.header.Get(HeaderIndexed), 10, 64)
	b := r.data
	if len(b) == 0 || b[0] != formatBatch {
		return batchMsg{}, bad("unknown batch format")
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n != count || n > uint64(len(b)) {
		return batchMsg{}, bad(fmt.Sprintf("batch of %d commits, header says %d", n, count))
	}
	b = b[k:]
	out := batchMsg{seq: r.seq, first: first, indexed: indexedPos, commits: make([]eventstore.Commit, 0, n)}
	for i := range n {
		var stream, body []byte
		var ok bool
		if stream, b, ok = takeBytes(b); !ok {
			return batchMsg{}, bad(fmt.Sprintf("commit %d: truncated stream", i))
		}
		if body, b, ok = takeBytes(b); !ok {
			return batchMsg{}, bad(fmt.Sprintf("commit %d: truncated body", i))
		}
		c, _, count, err := decodeBody(string(stream), eventstore.Position(first+i), body, func(what string) error {
			return bad(fmt.Sprintf("commit %d: %s", i, what))
		})
		if err != nil {
			return batchMsg{}, err
		}
		if count == 0 {
			return batchMsg{}, bad(fmt.Sprintf("commit %d: no events", i))
		}
		out.commits = append(out.commits, c)
	}
	if len(b) != 0 {
		return batchMsg{}, bad(fmt.Sprintf("%d trailing bytes", len(b)))
	}
	return out, nil
}

// decodeCopy decodes an index copy: a commit whose position is in a header.
func decodeCopy(stream string, r rawMsg) (eventstore.Commit, error) {
	pos, err := strconv.ParseUint(r.header.Get(HeaderPosition), 10, 64)
	if err != nil || pos == 0 {
		return eventstore.Commit{}, fmt.Errorf("jetstream: index message %d on %s: header %s %q: %w", r.seq, r.subject, HeaderPosition, r.header.Get(HeaderPosition), errNotCommit)
	}
	c, err := decodeCommit(stream, r)
	if err != nil {
		return eventstore.Commit{}, err
	}
	c.Position = eventstore.Position(pos)
	for i := range c.Events {
		c.Events[i].Position = c.Position
	}
	return c, nil
}

// encodeRecorded frames stored events again as a commit body.
func encodeRecorded(first uint64, events []eventstore.RecordedEvent) []byte {
	data := make([]eventstore.EventData, len(events))
	for i, e := range events {
		data[i] = eventstore.EventData{ID: e.ID, Type: e.Type, Data: e.Data}
	}
	return encodeCommit(first, data)
}

// firstID is the first event's ID of a commit body (the index copy's
// message ID).
func firstID(body []byte) string {
	b := body[1:]
	for range 2 {
		_, n := binary.Uvarint(b)
		b = b[n:]
	}
	id, _, _ := takeBytes(b)
	return string(id)
}

func hashIDs(events []eventstore.EventData) uint64 {
	h := fnv.New64a()
	for _, e := range events {
		h.Write([]byte(e.ID))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

func hashRecorded(events []eventstore.RecordedEvent) uint64 {
	h := fnv.New64a()
	for _, e := range events {
		h.Write([]byte(e.ID))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// ---- reads ----

// readStream reads a stream's copies from the index: in version order, a
// repeated copy dropped, a gap refused.
func (p *packedLog) readStream(ctx context.Context, stream string) ([]eventstore.RecordedEvent, error) {
	s := p.s
	subj := s.cfg.IndexPrefix + "." + stream
	var commits []eventstore.Commit
	var lastSeq uint64
	add := func(r rawMsg) error {
		c, err := decodeCopy(stream, r)
		if err != nil {
			return err
		}
		commits = append(commits, c)
		lastSeq = r.seq
		return nil
	}
	if err := s.directRangeOn(ctx, s.cfg.IndexStreamName, subj, 0, int(^uint(0)>>1), add); err != nil {
		return nil, err
	}
	if t, ok := s.cache.get(stream); ok && t.seq > lastSeq {
		// A replica behind this store's own appends answered: the rest from
		// the leader.
		for {
			r, found, err := s.leaderGetOn(ctx, s.cfg.IndexStreamName, getRequest{Seq: lastSeq + 1, NextFor: subj})
			if err != nil {
				return nil, err
			}
			if !found {
				break
			}
			if err := add(r); err != nil {
				return nil, err
			}
		}
	}
	slices.SortStableFunc(commits, func(a, b eventstore.Commit) int {
		return cmp.Compare(a.Events[0].Version, b.Events[0].Version)
	})
	var events []eventstore.RecordedEvent
	for _, c := range commits {
		first := c.Events[0].Version
		switch {
		case first < uint64(len(events)):
			// A copy indexed twice (repaired after a crash): it must be the
			// same commit.
			if events[first].ID != c.Events[0].ID || events[first].Position != c.Position {
				return nil, fmt.Errorf("index of %s holds two commits at version %d (positions %d and %d)", stream, first, events[first].Position, c.Position)
			}
		case first == uint64(len(events)):
			events = append(events, c.Events...)
		default:
			return nil, fmt.Errorf("index of %s: commit at position %d starts at version %d, want %d: the stream is not whole", stream, c.Position, first, len(events))
		}
	}
	if len(events) > 0 {
		s.cache.put(stream, tip{next: uint64(len(events)), seq: lastSeq})
	}
	return events, nil
}

// head is the last commit's position, 0 for an empty log; the leader's
// answer.
func (p *packedLog) head(ctx context.Context) (uint64, uint64, error) {
	s := p.s
	last, found, err := s.leaderGetOn(ctx, s.cfg.LogStreamName, getRequest{LastFor: p.logSubj})
	if err != nil || !found {
		return 0, 0, err
	}
	first, err := strconv.ParseUint(last.header.Get(HeaderPosition), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("jetstream: message %d on %s: header %s: %w", last.seq, last.subject, HeaderPosition, errNotCommit)
	}
	count, err := strconv.ParseUint(last.header.Get(HeaderCommits), 10, 64)
	if err != nil || count == 0 {
		return 0, 0, fmt.Errorf("jetstream: message %d on %s: header %s: %w", last.seq, last.subject, HeaderCommits, errNotCommit)
	}
	return first + count - 1, last.seq, nil
}

// cursorCache remembers, for the position after a page that ReadAll
// returned, the sequence of the batch holding it, so that paging through
// the log costs no search.
type cursorCache struct {
	mu sync.Mutex
	m  map[uint64]uint64
}

func (c *cursorCache) get(pos uint64) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	seq, ok := c.m[pos]
	return seq, ok
}

func (c *cursorCache) put(pos, seq uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= 256 {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[pos] = seq
}

// seqOf returns the sequence of the batch holding position pos, or the
// sequence the next batch will get when pos is past the head.
func (p *packedLog) seqOf(ctx context.Context, pos uint64) (uint64, error) {
	if seq, ok := p.cursors.get(pos); ok {
		return seq, nil
	}
	head, lastSeq, err := p.head(ctx)
	if err != nil {
		return 0, err
	}
	if pos > head {
		return lastSeq + 1, nil
	}
	// The last batch whose first position is at most pos: batches' first
	// positions grow with their sequences.
	s := p.s
	lo, hi := uint64(1), lastSeq
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		r, ok, err := s.leaderGetOn(ctx, s.cfg.LogStreamName, getRequest{Seq: mid})
		if err != nil {
			return 0, err
		}
		if !ok {
			return 0, fmt.Errorf("log message %d is missing: the log is not whole", mid)
		}
		first, err := strconv.ParseUint(r.header.Get(HeaderPosition), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("jetstream: message %d: header %s: %w", mid, HeaderPosition, errNotCommit)
		}
		if first <= pos {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo, nil
}

var errPageFull = errors.New("page full")

// readAll unpacks the batches holding the commits after `after`.
func (p *packedLog) readAll(ctx context.Context, after uint64, limit int) ([]eventstore.Commit, error) {
	s := p.s
	seq, err := p.seqOf(ctx, after+1)
	if err != nil {
		return nil, err
	}
	var commits []eventstore.Commit
	var lastBatch batchMsg
	err = s.directRangeOn(ctx, s.cfg.LogStreamName, "", seq, limit, func(r rawMsg) error {
		b, err := decodeBatchMsg(r)
		if err != nil {
			return err
		}
		lastBatch = b
		for _, c := range b.commits {
			if uint64(c.Position) <= after {
				continue
			}
			commits = append(commits, c)
			if len(commits) == limit {
				return errPageFull
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, errPageFull) {
		return nil, err
	}
	if n := len(commits); n > 0 {
		end := uint64(commits[n-1].Position)
		next := lastBatch.seq
		if end == lastBatch.first+uint64(len(lastBatch.commits))-1 {
			next++
		}
		p.cursors.put(end+1, next)
	}
	return commits, nil
}

// subscribe follows the log's batches with an ordered consumer and hands
// on their commits after `after`.
func (p *packedLog) subscribe(ctx context.Context, after uint64, handle func(eventstore.Commit) error, op string) error {
	s := p.s
	seq, err := p.seqOf(ctx, after+1)
	if err != nil {
		return fail(ctx, op, err)
	}
	cons, err := s.js.OrderedConsumer(ctx, s.cfg.LogStreamName, natsjs.OrderedConsumerConfig{
		DeliverPolicy:     natsjs.DeliverByStartSequencePolicy,
		OptStartSeq:       seq,
		InactiveThreshold: 30 * time.Second,
	})
	if err != nil {
		return fail(ctx, op, err)
	}
	defer func() {
		if info := cons.CachedInfo(); info != nil {
			dctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = s.js.DeleteConsumer(dctx, s.cfg.LogStreamName, info.Name)
			cancel()
		}
	}()
	it, err := cons.Messages(natsjs.PullMaxMessages(max(s.cfg.SubscribeBuffer/16, 8)))
	if err != nil {
		return fail(ctx, op, err)
	}
	defer it.Stop()
	delivered := after
	for {
		msg, err := it.Next(natsjs.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				if cause := context.Cause(ctx); errors.Is(cause, eventstore.ErrClosed) {
					return fmt.Errorf("jetstream: %s: %w", op, cause)
				}
				return ctx.Err()
			}
			return fail(ctx, op, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fail(ctx, op, err)
		}
		b, err := decodeBatchMsg(rawMsg{subject: msg.Subject(), seq: meta.Sequence.Stream, header: msg.Headers(), data: msg.Data()})
		if err != nil {
			return fail(ctx, op, err)
		}
		for _, c := range b.commits {
			if uint64(c.Position) <= delivered {
				continue
			}
			delivered = uint64(c.Position)
			if err := handle(c); err != nil {
				return err
			}
		}
	}
}

// CheckLayout refuses to open cfg's log over a NATS whose log was written in
// the other layout (a message per commit in StreamName, or packed in
// LogStreamName): they are two logs, and switching would hide one.
func CheckLayout(ctx context.Context, nc *nats.Conn, cfg Config) error {
	cfg.setDefaults()
	js, err := natsjs.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: check the log's layout: %w", err)
	}
	other, flag := cfg.LogStreamName, "--group-commit packed"
	if cfg.Packed {
		other, flag = cfg.StreamName, "--group-commit on or off"
	}
	n, err := streamMessages(ctx, js, other, cfg.RequestTimeout)
	if err != nil {
		return fmt.Errorf("jetstream: check the log's layout: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("jetstream: the event log is in stream %s (%d messages), written with %s; this setting writes another stream: keep that setting for this data", other, n, flag)
	}
	return nil
}

// HoldsPerMessageLog tells whether the server holds an event log written one
// message per commit (cfg.StreamName with messages): such data keeps that
// layout, since the packed log is another stream (see CheckLayout).
func HoldsPerMessageLog(ctx context.Context, nc *nats.Conn, cfg Config) (bool, error) {
	cfg.setDefaults()
	js, err := natsjs.New(nc)
	if err != nil {
		return false, fmt.Errorf("jetstream: check the log's layout: %w", err)
	}
	n, err := streamMessages(ctx, js, cfg.StreamName, cfg.RequestTimeout)
	if err != nil {
		return false, fmt.Errorf("jetstream: check the log's layout: %w", err)
	}
	return n > 0, nil
}

// streamMessages is how many messages stream holds, 0 when there is no such
// stream.
func streamMessages(ctx context.Context, js natsjs.JetStream, stream string, timeout time.Duration) (uint64, error) {
	rctx, cancel := context.WithTimeout(ctx, max(timeout, 10*time.Second))
	defer cancel()
	st, err := js.Stream(rctx, stream)
	if errors.Is(err, natsjs.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", stream, err)
	}
	return st.CachedInfo().State.Msgs, nil
}

// ReadableStreams are the streams and subjects that hold the log as cfg
// writes it, for those who may read it directly on NATS (auditors): the
// per-message log's stream, or the packed log's and its index's. The packed
// log's request subjects (forwarded appends) are not among them.
func ReadableStreams(cfg Config) (streams, subjects []string) {
	cfg.setDefaults()
	if cfg.Packed {
		return []string{cfg.LogStreamName, cfg.IndexStreamName}, []string{cfg.LogSubject + ".p0", cfg.IndexPrefix + ".>"}
	}
	return []string{cfg.StreamName}, []string{cfg.SubjectPrefix + ".>"}
}
