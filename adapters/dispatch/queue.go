package dispatch

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

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

// Queues is the in-memory fold of the log that holds every assignee's open
// assignments. It holds the state of a case only while one of its
// assignments is open, so its size follows the open work, not the log. It is
// rebuilt from the log at each start (Run), and is safe for concurrent use:
// one follower applying commits while requests read.
type Queues struct {
	store   eventstore.Store
	log     *zap.Logger
	tracker *logfold.Tracker // owned by the applying goroutine

	mu      sync.RWMutex
	items   map[string]map[string]QueueItem // assignee → case id → item
	pos     eventstore.Position
	changed chan struct{} // closed when pos moves
}

// NewQueues returns an empty queue view over store's log.
func NewQueues(store eventstore.Store, log *zap.Logger) *Queues {
	if log == nil {
		log = zap.NewNop()
	}
	return &Queues{store: store, log: log, tracker: logfold.NewTracker(store, 0),
		items: map[string]map[string]QueueItem{}, changed: make(chan struct{})}
}

// Run follows the log from where the view stands until ctx is done, and
// returns ctx.Err(). A failed subscription is resumed after a pause.
func (q *Queues) Run(ctx context.Context) error {
	for {
		err := q.store.Subscribe(ctx, q.Position(), func(c eventstore.Commit) error { return q.Apply(ctx, c) })
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
	for _, it := range q.items[assignee] {
		out = append(out, it)
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
			if it.Overdue {
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
	if c.Position <= q.Position() {
		return nil
	}
	if err := logfold.Fold(ctx, q.tracker, c, q.applySteps); err != nil {
		return err
	}
	q.mu.Lock()
	q.pos = c.Position
	close(q.changed)
	q.changed = make(chan struct{})
	q.mu.Unlock()
	return nil
}

func (q *Queues) applySteps(ctx context.Context, steps []logfold.Step) error {
	for _, s := range steps {
		if _, held := q.tracker.Held(s.Env.CaseID); !held && !opensWork(s.Env.Type) {
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
		if !q.refresh(c) {
			q.tracker.Forget(c.ID)
		}
	}
	return nil
}

// refresh puts the case's open assignments in their assignees' queues and
// takes the others out; it tells whether any is open.
func (q *Queues) refresh(c *domain.Case) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	anyOpen := false
	for _, id := range latestAssignees(c) {
		a := c.Assignment(id)
		open := c.Status != domain.StatusClosed && (a.Status == domain.Assigned || a.Status == domain.Reported)
		if !open {
			if m := q.items[id]; m != nil {
				delete(m, c.ID)
				if len(m) == 0 {
					delete(q.items, id)
				}
			}
			continue
		}
		anyOpen = true
		m := q.items[id]
		if m == nil {
			m = map[string]QueueItem{}
			q.items[id] = m
		}
		m[c.ID] = itemOf(c, a)
	}
	return anyOpen
}

func itemOf(c *domain.Case, a *domain.Assignment) QueueItem {
	return QueueItem{
		CaseID: c.ID, Assignee: a.Assignee, Role: a.Role, Status: a.Status,
		ReportBy: a.ReportBy, ResolveBy: a.ResolveBy, ReportedAt: a.ReportedAt, Overdue: a.Overdue,
		Street: c.Street, Community: c.Community, Category: c.Category, Kind: c.Kind,
		Urgency: c.Urgency, Title: c.Title, CaseStatus: c.Status, Version: c.Version - 1,
	}
}
