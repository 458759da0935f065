package dispatch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
	"unique"

	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/adapters/logfold"
	"github.com/whistle-gov/whistle/domain"
	"go.uber.org/zap"
)

// QueueItem is an open assignment (assigned or reported, or an offer not
// yet claimed) as its assignee's queue shows it.
type QueueItem struct {
	CaseID     string                  `json:"case_id"`
	Assignee   string                  `json:"assignee"`
	Role       domain.Role             `json:"role"`
	Status     domain.AssignmentStatus `json:"status"`
	ReportBy   *time.Time              `json:"report_by"`
	ResolveBy  *time.Time              `json:"resolve_by"`
	ReportedAt *time.Time              `json:"reported_at"`
	Overdue    bool                    `json:"overdue"`
	Street     string                  `json:"street"`
	Community  string                  `json:"community"`
	Category   string                  `json:"category"`
	Kind       domain.Kind             `json:"kind"`
	Urgency    domain.Urgency          `json:"urgency"`
	Title      string                  `json:"title,omitempty"`
	CaseStatus domain.Status           `json:"case_status"`
	// Version is the version of the case's last event the item reflects
	// (as in envelopes and in Message.Version): a client merging live
	// changes into a snapshot keeps, per case, what has the higher version.
	Version uint64 `json:"version"`
}

// DefaultQueueTrackedCases bounds the full case states the queue view keeps
// to fold events into. The view keeps a compact item per open assignment for
// every case (queued, caseHead); the full state is needed only to fold the
// next event, and most events of a case come within seconds of its raise.
// A case forgotten is read again from its stream at its next event.
const DefaultQueueTrackedCases = 4096

// maxQueueBatch bounds the commits folded under one acquisition of the
// view's lock.
const maxQueueBatch = 512

// Queues is the in-memory fold of the log that holds every assignee's open
// assignments. It keeps, per open assignment, only what a queue shows
// (queued, and a caseHead shared by the case's items), and the full state of
// at most DefaultQueueTrackedCases cases to fold events into; its size
// follows the open work, not the log. It is rebuilt from the log at each
// start (Run), and is safe for concurrent use: one follower applying commits
// while requests read.
type Queues struct {
	store   eventstore.Store
	log     *zap.Logger
	tracker *logfold.Tracker // owned by the applying goroutine

	// Written only by the applying goroutine, under mu; it reads them
	// without the lock.
	mu      sync.RWMutex
	items   map[string]map[string]queued // assignee → case id → item
	open    map[string]*caseHead         // case id → its head, while an assignment is open
	pos     eventstore.Position
	changed chan struct{} // closed when pos moves
}

// caseHead is what a queue item shows of its case, shared by the case's
// items.
type caseHead struct {
	street, community, category, title string
	kind                               domain.Kind
	urgency                            domain.Urgency
	status                             domain.Status
	version                            uint64
}

// queued is one open assignment in its assignee's queue.
type queued struct {
	head                            *caseHead
	role                            domain.Role
	status                          domain.AssignmentStatus
	reportBy, resolveBy, reportedAt time.Time // zero: none
	overdue                         bool
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func timeVal(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func (it queued) item(caseID, assignee string) QueueItem {
	h := it.head
	return QueueItem{
		CaseID: caseID, Assignee: assignee, Role: it.role, Status: it.status,
		ReportBy: timePtr(it.reportBy), ResolveBy: timePtr(it.resolveBy), ReportedAt: timePtr(it.reportedAt), Overdue: it.overdue,
		Street: h.street, Community: h.community, Category: h.category, Kind: h.kind,
		Urgency: h.urgency, Title: h.title, CaseStatus: h.status, Version: h.version,
	}
}

// NewQueues returns an empty queue view over store's log.
func NewQueues(store eventstore.Store, log *zap.Logger) *Queues {
	return newQueues(store, log, DefaultQueueTrackedCases)
}

func newQueues(store eventstore.Store, log *zap.Logger, tracked int) *Queues {
	if log == nil {
		log = zap.NewNop()
	}
	return &Queues{store: store, log: log, tracker: logfold.NewTracker(store, tracked),
		items: map[string]map[string]queued{}, open: map[string]*caseHead{}, changed: make(chan struct{})}
}

// Run follows the log from where the view stands until ctx is done, and
// returns ctx.Err(). A failed subscription is resumed after a pause.
func (q *Queues) Run(ctx context.Context) error {
	for {
		err := q.follow(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		q.log.Warn("queue view: log subscription ended; resuming", zap.Uint64("position", uint64(q.Position())), zap.Error(err))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// follow subscribes to the log and folds what has arrived in batches: when
// the log runs ahead, many commits are applied under one lock acquisition
// and readers are woken once.
func (q *Queues) follow(ctx context.Context) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	commits := make(chan eventstore.Commit, maxQueueBatch)
	subDone := make(chan error, 1)
	from := q.Position()
	go func() {
		subDone <- q.store.Subscribe(sctx, from, func(c eventstore.Commit) error {
			select {
			case commits <- c:
				return nil
			case <-sctx.Done():
				return sctx.Err()
			}
		})
	}()
	stop := func(err error) error {
		cancel()
		<-subDone
		return err
	}
	for {
		select {
		case c := <-commits:
			batch := []eventstore.Commit{c}
		drain:
			for len(batch) < maxQueueBatch {
				select {
				case c = <-commits:
					batch = append(batch, c)
				default:
					break drain
				}
			}
			if err := q.ApplyBatch(ctx, batch); err != nil {
				return stop(err)
			}
		case err := <-subDone:
			if err == nil {
				err = errors.New("subscription ended")
			}
			return err
		case <-ctx.Done():
			return stop(ctx.Err())
		}
	}
}

// Position is the log position the view has reached.
func (q *Queues) Position() eventstore.Position {
	q.mu.RLock()
	defer q.mu.RUnlock()
	return q.pos
}

// WaitFor waits until the view has reached pos, or ctx is done.
func (q *Queues) WaitFor(ctx context.Context, pos eventstore.Position) error {
	for {
		q.mu.RLock()
		reached, changed := q.pos >= pos, q.changed
		q.mu.RUnlock()
		if reached {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("dispatch: queue view at position %d, waiting for %d: %w", q.Position(), pos, ctx.Err())
		case <-changed:
		}
	}
}

// Open returns the assignee's open assignments, the most pressing first
// (overdue, then by report_by, then by resolve_by).
func (q *Queues) Open(assignee string) []QueueItem {
	q.mu.RLock()
	out := make([]QueueItem, 0, len(q.items[assignee]))
	for id, it := range q.items[assignee] {
		out = append(out, it.item(id, assignee))
	}
	q.mu.RUnlock()
	slices.SortFunc(out, func(a, b QueueItem) int {
		if a.Overdue != b.Overdue {
			if a.Overdue {
				return -1
			}
			return 1
		}
		return cmp.Or(cmpTime(a.ReportBy, b.ReportBy), cmpTime(a.ResolveBy, b.ResolveBy), cmp.Compare(a.CaseID, b.CaseID))
	})
	return out
}

// Overdue counts the open assignments past a deadline, for metrics.
func (q *Queues) Overdue() int {
	q.mu.RLock()
	defer q.mu.RUnlock()
	n := 0
	for _, items := range q.items {
		for _, it := range items {
			if it.overdue {
				n++
			}
		}
	}
	return n
}

func cmpTime(a, b *time.Time) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	return a.Compare(*b)
}

// opensWork tells whether an event can give an open assignment to a case
// that has none (and is therefore not held).
func opensWork(eventType string) bool {
	switch eventType {
	case domain.TypeWhistleRaised, domain.TypeAssignmentMade, domain.TypeResolutionRejected:
		return true
	}
	return false
}

// Apply folds one commit of the log into the view. A commit at or below the
// position reached is skipped, so a redelivery changes nothing. Apply is
// called from one goroutine at a time.
func (q *Queues) Apply(ctx context.Context, c eventstore.Commit) error {
	return q.ApplyBatch(ctx, []eventstore.Commit{c})
}

// caseChange is what one event did to a case's items: the assignees of the
// case, and those of them with an open assignment (head nil: none open).
type caseChange struct {
	caseID    string
	head      *caseHead
	assignees []string
	open      map[string]queued
}

// ApplyBatch folds commits of the log, in log order, into the view. The
// cases are folded outside the lock (a forgotten case is read from its
// stream); their changes are then applied and the position moved under one
// acquisition of the lock, and readers waiting for a position are woken
// once. Commits at or below the position reached are skipped. When a commit
// fails, those before it are applied and the error returned. It is called
// from one goroutine at a time.
func (q *Queues) ApplyBatch(ctx context.Context, batch []eventstore.Commit) error {
	from := q.Position()
	reached := from
	var changes []caseChange
	staged := map[string]bool{} // case id → open, as changes of this batch leave it
	var err error
	for _, c := range batch {
		if c.Position <= reached {
			continue
		}
		var mine []caseChange
		err = logfold.Fold(ctx, q.tracker, c, func(ctx context.Context, steps []logfold.Step) error {
			mine = mine[:0]
			return q.plan(ctx, steps, staged, &mine)
		})
		if err != nil {
			break
		}
		for _, ch := range mine {
			staged[ch.caseID] = ch.head != nil
		}
		changes = append(changes, mine...)
		reached = c.Position
	}
	if reached > from {
		q.mu.Lock()
		for _, ch := range changes {
			q.put(ch)
		}
		q.pos = reached
		close(q.changed)
		q.changed = make(chan struct{})
		q.mu.Unlock()
	}
	return err
}

// plan folds a commit's steps and appends their changes to out. staged
// tells which cases the batch's earlier commits left open.
func (q *Queues) plan(ctx context.Context, steps []logfold.Step, staged map[string]bool, out *[]caseChange) error {
	local := map[string]bool{} // as this commit's earlier steps left them
	for _, s := range steps {
		id := s.Env.CaseID
		if _, held := q.tracker.Held(id); !held && !opensWork(s.Env.Type) && !q.isOpen(id, staged, local) {
			continue // a case with nothing open stays so, whatever this event is
		}
		c, fresh, err := q.tracker.Before(ctx, s.Env)
		if err != nil {
			return err
		}
		if !fresh {
			continue
		}
		c.Apply(s.Env, s.Event)
		ch := changeOf(c)
		local[id] = ch.head != nil
		*out = append(*out, ch)
	}
	// A case with nothing open is forgotten once the commit is folded, not
	// between its events: a raise opens its assignments only after its
	// WhistleRaised, and forgetting in between would read the case again.
	for id, open := range local {
		if !open {
			q.tracker.Forget(id)
		}
	}
	return nil
}

// isOpen tells whether a case has an open assignment, as the view stands
// with the changes not yet applied. Applying goroutine only.
func (q *Queues) isOpen(caseID string, staged, local map[string]bool) bool {
	if v, ok := local[caseID]; ok {
		return v
	}
	if v, ok := staged[caseID]; ok {
		return v
	}
	return q.open[caseID] != nil
}

// changeOf computes the items of a case as it now stands.
func changeOf(c *domain.Case) caseChange {
	ch := caseChange{caseID: c.ID, assignees: latestAssignees(c)}
	var head *caseHead
	for _, id := range ch.assignees {
		a := c.Assignment(id)
		if c.Status == domain.StatusClosed || (a.Status != domain.Assigned && a.Status != domain.Reported) {
			continue
		}
		if head == nil {
			head = &caseHead{street: intern(c.Street), community: intern(c.Community), category: intern(c.Category), title: c.Title,
				kind: domain.Kind(intern(string(c.Kind))), urgency: domain.Urgency(intern(string(c.Urgency))),
				status: domain.Status(intern(string(c.Status))), version: c.Version - 1}
			ch.open = map[string]queued{}
		}
		ch.open[id] = queued{head: head, role: domain.Role(intern(string(a.Role))), status: domain.AssignmentStatus(intern(string(a.Status))),
			reportBy: timeVal(a.ReportBy), resolveBy: timeVal(a.ResolveBy), reportedAt: timeVal(a.ReportedAt), overdue: a.Overdue}
	}
	ch.head = head
	return ch
}

// intern returns the canonical copy of a string of few values (streets,
// categories, statuses), so that items share it rather than keep the copy
// each decoded event made.
func intern(s string) string { return unique.Make(s).Value() }

// put applies a change: the case's open assignments go in their assignees'
// queues, the others out. Lock held.
func (q *Queues) put(ch caseChange) {
	for _, id := range ch.assignees {
		it, open := ch.open[id]
		if !open {
			if m := q.items[id]; m != nil {
				delete(m, ch.caseID)
				if len(m) == 0 {
					delete(q.items, id)
				}
			}
			continue
		}
		m := q.items[id]
		if m == nil {
			m = map[string]queued{}
			q.items[id] = m
		}
		m[ch.caseID] = it
	}
	if ch.head == nil {
		delete(q.open, ch.caseID)
	} else {
		q.open[ch.caseID] = ch.head
	}
}
