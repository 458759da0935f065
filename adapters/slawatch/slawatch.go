// Package slawatch enforces the deadlines of assignments: when report_by or
// resolve_by passes, it asks the domain for the overdue marks and escalations
// that are due (domain.CheckDeadlines) and lets the command handler append
// them.
//
// The Watcher follows the global log and keeps a schedule (a min-heap) of the
// next deadline (domain.NextDeadline) of every case with one pending; the
// states of the cases come from the process's shared case-state cache
// (casestate), which reads a case not held from its stream. When the earliest deadline comes, it runs
// CheckDeadlines on that case through the command handler, which reads the
// case itself. With Config.Dir it checkpoints the schedule with its log
// position, and a restart follows the log from there; without, the
// schedule is rebuilt from the log at each start. Either way a deadline
// that passed while no watcher ran is due at once.
//
// Exactly once per assignment and level, across restarts and with several
// watchers (two whistled on one NATS cluster), follows from the command
// path, not from coordination: the domain decides only the marks not yet
// recorded on the case, the handler appends with optimistic concurrency
// (a second watcher re-reads and decides nothing), and the command id is
// derived from the case and the due time, so a watcher that repeats a check
// another already made is answered AlreadyDone.
package slawatch

import (
	"container/heap"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/whistle-gov/whistle/adapters/casehandler"
	"github.com/whistle-gov/whistle/adapters/casestate"
	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/adapters/follow"
	"github.com/whistle-gov/whistle/domain"
	"go.uber.org/zap"
)

// Actor is who the watcher's commands are from.
var Actor = domain.Actor{Role: domain.ActorSystem, ID: "sla-watcher"}

// Executor runs commands; *casehandler.Handler is one.
type Executor interface {
	Execute(ctx context.Context, req casehandler.Request) (casehandler.Result, error)
}

// DefaultRetry is the pause before checking a case again when a check failed,
// or found nothing due although the schedule said so (the handler's clock a
// little behind the watcher's).
const DefaultRetry = 250 * time.Millisecond

// FollowerName names the watcher among the followers of the log.
const FollowerName = "sla-watcher"

// anomalyBackoff is the pause before checking again a case whose check for
// a deadline was made and which still has that deadline due (which the
// domain should never produce): long enough not to load the store.
const anomalyBackoff = time.Minute

// Config configures a Watcher.
type Config struct {
	Store     eventstore.Store
	Handler   Executor
	Directory *domain.Directory
	// Clock; default SystemClock. The handler should run on the same clock.
	Clock Clock
	Log   *zap.Logger
	// Retry; default DefaultRetry.
	Retry time.Duration
	// Cases holds the case states the watcher folds events into, shared
	// with the command handler and the other followers; nil: a cache of
	// its own. The schedule itself (case id → next deadline) covers every
	// case with a deadline pending whatever the cache forgets.
	Cases *casestate.Cache
	// Follow is the process's subscription to the log, shared with the
	// other followers; nil: Run subscribes on its own.
	Follow *follow.Log
	// Dir is the folder of the schedule's checkpoint (whistled:
	// <data>/sla); empty: none. Like the read models' snapshot it is a
	// local file: derived state, each whistled its own.
	Dir string
	// CheckpointEvery is how often the checkpoint is written while the
	// schedule moves (default 10 s); it is also written when Run ends.
	CheckpointEvery time.Duration
}

// Stats counts what a watcher did.
type Stats struct {
	Checks      int64 // CheckDeadlines run
	Appended    int64 // of which appended events
	AlreadyDone int64 // of which another watcher (or an earlier run) had made
	Failed      int64 // of which failed and were retried
}

// Watcher is the SLA watcher. Run it with Run.
type Watcher struct {
	cfg Config

	mu       sync.Mutex
	due      map[string]time.Time // case id → next deadline: the schedule's truth
	sched    schedule             // may hold stale entries; due decides
	pos      eventstore.Position
	saved    eventstore.Position // of the checkpoint on disk
	target   eventstore.Position // the log's head at start
	caughtUp bool
	wake     chan struct{}

	saveMu sync.Mutex // one writer of the checkpoint at a time

	checks, appended, already, failed atomic.Int64
}

// New returns a watcher; it does nothing until Run.
func New(cfg Config) *Watcher {
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Retry <= 0 {
		cfg.Retry = DefaultRetry
	}
	if cfg.Cases == nil {
		cfg.Cases = casestate.New(cfg.Store, 0)
	}
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = 10 * time.Second
	}
	return &Watcher{cfg: cfg, due: map[string]time.Time{}, wake: make(chan struct{}, 1)}
}

// CommandID is the id of the check of a case for the deadline due at `due`:
// the same in every watcher, so that one check is applied once.
func CommandID(caseID string, due time.Time) string {
	return "sla:" + caseID + ":" + due.UTC().Format(time.RFC3339Nano)
}

// Ready tells whether the watcher has caught up with the log as it stood at
// its start; it checks nothing before, so as not to act on a stale schedule.
func (w *Watcher) Ready() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.caughtUp
}

// Position is the log position the schedule reflects.
func (w *Watcher) Position() eventstore.Position {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pos
}

// Pending is the number of cases with a deadline scheduled.
func (w *Watcher) Pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.due)
}

// NextDue returns the earliest scheduled deadline, if any.
func (w *Watcher) NextDue() (caseID string, at time.Time, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e, ok := w.peek()
	return e.caseID, e.at, ok
}

// Stats returns what the watcher did so far.
func (w *Watcher) Stats() Stats {
	return Stats{Checks: w.checks.Load(), Appended: w.appended.Load(), AlreadyDone: w.already.Load(), Failed: w.failed.Load()}
}

// Run follows the log and checks deadlines as they come, until ctx is done;
// it returns ctx.Err().
func (w *Watcher) Run(ctx context.Context) error {
	for {
		head, err := w.cfg.Store.Head(ctx)
		if err == nil {
			w.restore(head)
			w.mu.Lock()
			w.target = head
			w.caughtUp = w.pos >= head
			w.mu.Unlock()
			break
		}
		w.cfg.Log.Warn("sla watcher: log head unknown; retrying", zap.Error(err))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	followDone := make(chan struct{})
	go func() {
		defer close(followDone)
		w.follow(ctx)
	}()
	go func() {
		t := time.NewTicker(w.cfg.CheckpointEvery)
		defer t.Stop()
		for {
			select {
			case <-followDone:
				return
			case <-t.C:
				w.saveAndLog()
			}
		}
	}()
	w.loop(ctx)
	<-followDone
	w.saveAndLog()
	return ctx.Err()
}

// follow keeps the schedule up to date with the log.
func (w *Watcher) follow(ctx context.Context) {
	shared := w.cfg.Follow
	if shared == nil {
		shared = follow.New(w.cfg.Store, follow.Options{Log: w.cfg.Log})
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = shared.Run(ctx)
		}()
		defer func() { <-done }()
	}
	_ = shared.Keep(ctx, FollowerName, w.Position, w.handle)
}

// setsDeadline tells whether an event can give a deadline to a case that has
// none pending.
func setsDeadline(eventType string) bool {
	switch eventType {
	case domain.TypeWhistleRaised, domain.TypeAssignmentMade, domain.TypeNeedClaimed, domain.TypeResolutionRejected,
		domain.TypeTicketReceived: // its accept deadline
		return true
	}
	return false
}

// handle folds a batch of the log into the schedule; a commit at or below
// the position reached is skipped.
func (w *Watcher) handle(ctx context.Context, batch []follow.Commit) error {
	for _, c := range batch {
		if err := w.apply(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

func (w *Watcher) apply(ctx context.Context, c follow.Commit) error {
	if c.Position <= w.Position() {
		return nil
	}
	if c.EventsErr != nil {
		return c.EventsErr
	}
	if err := w.reschedule(ctx, c); err != nil {
		return err
	}
	w.mu.Lock()
	w.pos = c.Position
	caughtUp := !w.caughtUp && w.pos >= w.target
	if caughtUp {
		w.caughtUp = true
	}
	pending := len(w.due)
	w.mu.Unlock()
	if caughtUp {
		w.cfg.Log.Info("sla watcher caught up", zap.Uint64("position", uint64(c.Position)), zap.Int("cases_with_deadlines", pending))
	}
	w.poke()
	return nil
}

// reschedule sets the next deadline of the commit's case.
func (w *Watcher) reschedule(ctx context.Context, c follow.Commit) error {
	if len(c.Envelopes) == 0 {
		return nil
	}
	relevant := w.scheduled(c.CaseID())
	for _, env := range c.Envelopes {
		relevant = relevant || setsDeadline(env.Type)
	}
	if !relevant {
		return nil // a case with no deadline pending stays so
	}
	cs, err := w.cfg.Cases.After(ctx, c.Envelopes, c.Events)
	if err != nil {
		return err
	}
	next := domain.NextDeadline(cs, w.cfg.Directory, w.cfg.Clock.Now())
	w.mu.Lock()
	w.setDue(cs.ID, next)
	w.mu.Unlock()
	return nil
}

// scheduled tells whether a case has a deadline pending.
func (w *Watcher) scheduled(caseID string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.due[caseID]
	return ok
}

// setDue schedules a case's next deadline (zero: none). Lock held.
func (w *Watcher) setDue(caseID string, at time.Time) {
	if at.IsZero() {
		delete(w.due, caseID)
		return
	}
	if old, ok := w.due[caseID]; ok && old.Equal(at) {
		return
	}
	w.due[caseID] = at
	heap.Push(&w.sched, entry{at: at, caseID: caseID})
}

// peek returns the earliest live entry, dropping stale ones. Lock held.
func (w *Watcher) peek() (entry, bool) {
	for w.sched.Len() > 0 {
		e := w.sched[0]
		if at, ok := w.due[e.caseID]; ok && at.Equal(e.at) {
			return e, true
		}
		heap.Pop(&w.sched)
	}
	return entry{}, false
}

func (w *Watcher) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// loop waits for the earliest deadline and checks its case, until ctx is
// done.
func (w *Watcher) loop(ctx context.Context) {
	for {
		w.mu.Lock()
		var e entry
		ok := false
		if w.caughtUp {
			e, ok = w.peek()
		}
		w.mu.Unlock()
		var timer <-chan time.Time
		if ok {
			wait := e.at.Sub(w.cfg.Clock.Now())
			if wait <= 0 {
				w.check(ctx, e)
				continue
			}
			timer = w.cfg.Clock.After(wait)
		}
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-timer:
		}
	}
}

// check runs CheckDeadlines on one case and schedules its next deadline from
// the state the command left.
func (w *Watcher) check(ctx context.Context, e entry) {
	w.checks.Add(1)
	res, err := w.cfg.Handler.Execute(ctx, casehandler.Request{
		CaseID: e.caseID, CommandID: CommandID(e.caseID, e.at), Actor: Actor, Command: domain.CheckDeadlines{},
	})
	now := w.cfg.Clock.Now()
	var next time.Time
	switch {
	case err != nil:
		if ctx.Err() != nil {
			return
		}
		w.failed.Add(1)
		var refusal *domain.Refusal
		if errors.As(err, &refusal) {
			// The domain will not check this case (it does not exist as the
			// log said); retrying would refuse again. Drop it from the
			// schedule; its next event schedules it again.
			w.cfg.Log.Error("sla check refused", zap.String("case_id", e.caseID), zap.Time("due", e.at), zap.Error(err))
			break
		}
		w.cfg.Log.Warn("sla check failed; retrying", zap.String("case_id", e.caseID), zap.Time("due", e.at), zap.Error(err))
		next = now.Add(w.cfg.Retry)
	default:
		if res.AlreadyDone {
			w.already.Add(1)
		}
		if len(res.Events) > 0 {
			w.appended.Add(1)
			for _, env := range res.Events {
				w.cfg.Log.Info("deadline enforced", zap.String("case_id", env.CaseID), zap.String("type", env.Type),
					zap.String("event_id", env.ID), zap.Time("due", e.at))
			}
		}
		next = domain.NextDeadline(res.Case, w.cfg.Directory, now)
		if len(res.Events) > 0 || next.IsZero() || next.After(e.at) {
			break
		}
		if !res.AlreadyDone {
			// The schedule said due, the handler decided nothing: its
			// clock is a little behind this one. Look again shortly.
			next = now.Add(w.cfg.Retry)
			break
		}
		// The check of this deadline was made (by another watcher, or
		// before a restart), yet the case still says something is due by
		// then: the domain and its own record disagree. Do not spin on it;
		// look again much later, and say so.
		w.cfg.Log.Error("sla check already made but the case still has a deadline due; backing off",
			zap.String("case_id", e.caseID), zap.Time("due", e.at), zap.Time("next", next))
		next = now.Add(anomalyBackoff)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if at, ok := w.due[e.caseID]; !ok || !at.Equal(e.at) {
		return // the log moved the schedule meanwhile; it knows better
	}
	w.setDue(e.caseID, next)
}

// entry is one scheduled deadline.
type entry struct {
	at     time.Time
	caseID string
}

// schedule is a min-heap of entries by time.
type schedule []entry

func (s schedule) Len() int           { return len(s) }
func (s schedule) Less(i, j int) bool { return s[i].at.Before(s[j].at) }
func (s schedule) Swap(i, j int)      { s[i], s[j] = s[j], s[i] }
func (s *schedule) Push(x any)        { *s = append(*s, x.(entry)) }
func (s *schedule) Pop() any {
	old := *s
	e := old[len(old)-1]
	*s = old[:len(old)-1]
	return e
}
