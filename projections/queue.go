package projections

import (
	"cmp"
	"github.com/whistle-gov/whistle/domain/view"
	"slices"
	"time"

	"github.com/whistle-gov/whistle/domain"
)

// QueueItem is an open assignment (assigned or reported, or an offer not
// yet claimed) as its assignee's queue shows it: GET /v1/queues/{assignee}.
type QueueItem = view.QueueItem

// index puts the case's open work in its assignees' queues and takes the
// rest out, and the case in or out of its street's callback list. Lock
// held.
func (b *Board) index(ent *boardEntry) {
	b.indexCallback(ent)
	c := ent.c
	b.indexInbox(ent)
	for _, assignee := range c.Assignees() {
		q := b.queues[assignee]
		if c.HasOpenWork(assignee) {
			if q == nil {
				q = map[string]*boardEntry{}
				b.queues[assignee] = q
			}
			q[c.ID] = ent
			continue
		}
		if q != nil {
			delete(q, c.ID)
			if len(q) == 0 {
				delete(b.queues, assignee)
			}
		}
	}
}

// Open returns the assignee's open assignments, the most pressing first
// (overdue, then by report_by, then by resolve_by, then by case id).
func (b *Board) Open(assignee string) []QueueItem {
	b.mu.RLock()
	out := make([]QueueItem, 0, len(b.queues[assignee]))
	for _, ent := range b.queues[assignee] {
		out = append(out, queueItem(ent.c, assignee))
	}
	b.mu.RUnlock()
	sortQueue(out)
	return out
}

func queueItem(c *domain.Case, assignee string) QueueItem {
	a := c.Assignment(assignee)
	return QueueItem{
		CaseID: c.ID, Assignee: assignee, Role: a.Role, Status: a.Status,
		ReportBy: a.ReportBy, ResolveBy: a.ResolveBy, ReportedAt: a.ReportedAt, Overdue: a.Overdue,
		Street: c.Street, Community: c.Community, Category: c.Category, Kind: c.Kind,
		Urgency: c.Urgency, Title: c.Title, CaseStatus: c.Status, Version: c.Version - 1,
	}
}

func sortQueue(items []QueueItem) {
	slices.SortFunc(items, func(a, b QueueItem) int {
		if a.Overdue != b.Overdue {
			if a.Overdue {
				return -1
			}
			return 1
		}
		return cmp.Or(cmpTime(a.ReportBy, b.ReportBy), cmpTime(a.ResolveBy, b.ResolveBy), cmp.Compare(a.CaseID, b.CaseID))
	})
}

// cmpTime orders times, none last.
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

// Overdue counts the open assignments past a deadline, in every queue.
func (b *Board) Overdue() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	n := 0
	for assignee, q := range b.queues {
		for _, ent := range q {
			if ent.c.Assignment(assignee).Overdue {
				n++
			}
		}
	}
	return n
}
