package projections

import (
	"time"

	"github.com/whistle-gov/whistle/domain"
)

// Tickets in the figures. A ticket's case is in the cohort of the day it
// was received and counts tickets_received at once, under the street and
// day and whatever category, community and urgency the ticket names (the
// urgency routine when it names none, as its accept deadline does; the
// others "" until signed). When its street signs for it (TicketAccepted)
// the case moves to the keys it is routed by, taking what it counted with
// it, and counts in raised and tickets_accepted: from then on it is a case
// like a raised one, its time to close counted from its reception. A
// returned ticket counts tickets_returned and never enters raised, so it
// leaves every rate. The accept deadline's overdue marks and escalations
// count for the case's keys, not for an assignee: a street is not one.

// receive opens a ticket's case in its cohort.
func (s *Stats) receive(id string, e domain.TicketReceived, at time.Time) {
	day := dayOf(at, s.days)
	urgency := e.Urgency
	if urgency == "" {
		urgency = domain.UrgencyRoutine
	}
	c := &openCase{version: 1, day: day, raisedAt: at, kind: ""}
	s.key(c, e.Street, e.Community, e.Category, string(urgency))
	s.open[id] = c
	s.bump(c, cTicketsReceived, 1)
}

// key sets c's keys and their buckets in its cohort.
func (s *Stats) key(c *openCase, street, community, category, urgency string) {
	c.keys = s.caseKeys(street, community, category, urgency, dayKey(c.day))
	for d := range numCaseDims {
		c.caseB[d] = s.cell(dim(d), c.keys[d], c.day)
	}
}

// acceptTicket moves the case to the keys it is routed by, with what it
// counted so far, and counts it raised.
func (s *Stats) acceptTicket(c *openCase, e domain.TicketAccepted) {
	if c.contrib[cTicketsReceived] == 0 || c.contrib[cTicketsAccepted] != 0 {
		return // not a ticket waiting to be signed for: the domain never writes this
	}
	for _, b := range c.caseB {
		for i, v := range c.contrib {
			if v != 0 {
				b.count(counter(i), -v)
			}
		}
	}
	s.key(c, c.keys[dimStreet], e.Community, e.Category, string(e.Urgency))
	for _, b := range c.caseB {
		b.addCounts(&c.contrib)
	}
	// The accept deadline's marks stay counted where they moved, but are
	// no case figure an assignee joining later is credited with.
	c.contrib[cOverdue], c.contrib[cEscalations] = 0, 0
	c.kind = domain.Kind(s.strs.get(string(e.Kind)))
	s.bump(c, cTicketsAccepted, 1)
	s.bump(c, cRaised, 1)
}

// returnTicket counts the return and forgets the case: nothing after it
// counts (no rating comes).
func (s *Stats) returnTicket(id string, c *openCase) {
	s.bump(c, cTicketsReturned, 1)
	delete(s.open, id)
}

// countMark counts an overdue mark or an escalation for c's keys and its
// assignee; one of a ticket's accept deadline counts with what the case
// counted (it moves with the case when its street signs), for no assignee:
// a street is not one.
func (s *Stats) countMark(c *openCase, assignee string, d domain.Deadline, i counter) {
	if d == domain.DeadlineAccept {
		s.bump(c, i, 1)
		return
	}
	s.countAssignment(c, assignee, i, 1)
}
