package projections

import (
	"cmp"
	"slices"

	"github.com/whistle-gov/whistle/domain"
	"github.com/whistle-gov/whistle/domain/view"
)

// InboxItem is a ticket waiting for its street to sign for it (签收) or
// return it.
type InboxItem = view.InboxItem

// indexInbox puts a received ticket's case in its street's inbox and takes
// it out once signed for or returned. Lock held.
func (b *Board) indexInbox(ent *boardEntry) {
	c := ent.c
	if c.Source == nil {
		return
	}
	q := b.inbox[c.Street]
	if c.Status == domain.StatusReceived {
		if q == nil {
			q = map[string]*boardEntry{}
			b.inbox[c.Street] = q
		}
		q[c.ID] = ent
		return
	}
	if q != nil {
		delete(q, c.ID)
		if len(q) == 0 {
			delete(b.inbox, c.Street)
		}
	}
}

// Inbox returns the tickets waiting for street to sign for them, the most
// pressing first (overdue, then by accept deadline, then by case id).
func (b *Board) Inbox(street string) []InboxItem {
	b.mu.RLock()
	out := make([]InboxItem, 0, len(b.inbox[street]))
	for _, ent := range b.inbox[street] {
		c := ent.c
		it := InboxItem{
			CaseID: c.ID, Street: c.Street, Community: c.Community, Category: c.Category, Urgency: c.Urgency,
			Title: c.Title, Source: c.Source, Priority: c.Priority, AcceptBy: c.AcceptBy, Overdue: c.MissedAccept,
			Version: c.Version - 1,
		}
		if c.RaisedAt != nil {
			it.ReceivedAt = *c.RaisedAt
		}
		for e, ok := range c.Escalations {
			if ok && e.Deadline == domain.DeadlineAccept {
				it.Escalations++
			}
		}
		out = append(out, it)
	}
	b.mu.RUnlock()
	slices.SortFunc(out, func(x, y InboxItem) int {
		if x.Overdue != y.Overdue {
			if x.Overdue {
				return -1
			}
			return 1
		}
		return cmp.Or(cmpTime(x.AcceptBy, y.AcceptBy), cmp.Compare(x.CaseID, y.CaseID))
	})
	return out
}
