package readmodel

import (
	"context"

	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/projections"
)

// Queues is the case board seen by assignee: each department's and unit's
// open assignments (GET /v1/queues/{assignee}, the overdue work metric),
// from the board's index by assignee. It follows the log with the read
// models and is restored with their snapshot, so a restart costs what is
// open, not the length of history. Safe for concurrent use.
type Queues struct{ r *Runner }

// Queues returns the runner's queue view.
func (r *Runner) Queues() *Queues { return &Queues{r: r} }

// Open returns the assignee's open assignments, the most pressing first
// (see projections.Board.Open).
func (q *Queues) Open(assignee string) []projections.QueueItem { return q.r.Board().Open(assignee) }

// Overdue counts the open assignments past a deadline, in every queue.
func (q *Queues) Overdue() int { return q.r.Board().Overdue() }

// Position is the log position the view has reached.
func (q *Queues) Position() eventstore.Position { return eventstore.Position(q.r.Position()) }

// WaitFor waits until the view has reached pos, or ctx is done.
func (q *Queues) WaitFor(ctx context.Context, pos eventstore.Position) error {
	return q.r.WaitFor(ctx, uint64(pos))
}

// Inbox returns the tickets waiting for street to sign for them (see
// projections.Board.Inbox).
func (q *Queues) Inbox(street string) []projections.InboxItem { return q.r.Board().Inbox(street) }
