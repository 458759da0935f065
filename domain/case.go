package domain

import (
	"maps"
	"slices"
	"time"
)

// Assignment is one assignee's part in a case.
type Assignment struct {
	Assignee   string           `json:"assignee"`
	Role       Role             `json:"role"`
	Status     AssignmentStatus `json:"status"`
	ReportBy   *time.Time       `json:"report_by"`
	ResolveBy  *time.Time       `json:"resolve_by"`
	ReportedAt *time.Time       `json:"reported_at"`
	ResolvedAt *time.Time       `json:"resolved_at"`
	// Overdue: a deadline was missed and not yet met.
	Overdue     bool   `json:"overdue"`
	DeclineNote string `json:"decline_reason,omitempty"`
	// DeclineSuggest: whom the decliner suggested instead, for the street
	// routing by hand.
	DeclineSuggest string `json:"decline_suggest,omitempty"`
	// MissedReport and MissedResolve: the assignment was marked overdue
	// (AssignmentOverdue) for that deadline. Overdue follows from them and
	// the status; Evolve keeps all three. They are exported for a read
	// model that saves cases in its snapshot, never shown in the API.
	MissedReport  bool `json:"-"`
	MissedResolve bool `json:"-"`
}

// Active tells whether the assignment still counts: not declined or lapsed.
func (a *Assignment) Active() bool {
	return a.Status != Declined && a.Status != Lapsed
}

// missed tells whether the assignment was marked overdue for a deadline.
func (a *Assignment) missed(d Deadline) bool {
	if d == DeadlineReport {
		return a.MissedReport
	}
	return a.MissedResolve
}

func (a *Assignment) refreshOverdue() {
	a.Overdue = a.Active() &&
		(a.MissedReport && a.Status == Assigned ||
			a.MissedResolve && a.Status != Resolved)
}

// Case is the state of one case, folded from its events by Evolve.
type Case struct {
	ID          string        `json:"case_id"`
	Street      string        `json:"street"`
	Community   string        `json:"community"`
	Category    string        `json:"category"`
	Kind        Kind          `json:"kind"`
	Urgency     Urgency       `json:"urgency"`
	Title       string        `json:"title"`
	Status      Status        `json:"status"`
	Version     uint64        `json:"version"` // number of events so far
	RaisedAt    *time.Time    `json:"raised_at"`
	ClosedAt    *time.Time    `json:"closed_at"`
	Assignments []*Assignment `json:"assignments"`
	Mediation   *Mediation    `json:"mediation"`
	Rating      *Rating       `json:"rating"`
	// Source: where a ticket's case came from (nil for a raise), and its
	// priority from above.
	Source   *TicketSource `json:"source,omitempty"`
	Priority Priority      `json:"priority,omitempty"`
	// AcceptBy: when a ticket's street must sign for it; AcceptedAt and
	// ReturnedAt (with ReturnReason): what the street did.
	AcceptBy     *time.Time `json:"accept_by,omitempty"`
	AcceptedAt   *time.Time `json:"accepted_at,omitempty"`
	ReturnedAt   *time.Time `json:"returned_at,omitempty"`
	ReturnReason string     `json:"return_reason,omitempty"`
	// Attachments: the case's files in the order they were added.
	Attachments []Attachment `json:"attachments,omitempty"`

	// SecondRound: an unsatisfied resident sent the closed case back;
	// Callback: the current round's callback task (nil: none yet).
	SecondRound bool          `json:"second_round,omitempty"`
	Callback    *CallbackTask `json:"callback,omitempty"`
	// Receipt and ResidentRating are shown to the case's street only, by
	// whoever builds its answer.
	Receipt        *CaseReceipt    `json:"-"`
	ResidentRating *ResidentRating `json:"-"`
	// HasRequester: the case has (or had, before it was forgotten) a
	// requester to call back; CallbackRated: the round has a rating from a
	// callback (or POST /rate). Exported for the read models' snapshots.
	HasRequester  bool `json:"-"`
	CallbackRated bool `json:"-"`

	// LastHash is the hash of the latest event, to continue the chain.
	LastHash string `json:"-"`
	// Commands maps each command id applied to the version after it, so that
	// a retried command is answered, not applied twice.
	Commands map[string]uint64 `json:"-"`
	// RequestSHA256 fingerprints the raising request (see WhistleRaised).
	RequestSHA256 string `json:"-"`
	// Requester is the sealed requester, if any; RequesterForgotten: its key
	// was destroyed. Answers show a RequesterView instead (masked, revealed
	// or forgotten), built by whoever holds the keys.
	Requester          *SealedRequester `json:"-"`
	RequesterForgotten bool             `json:"-"`
	// Escalations: the rungs the case went up (CaseEscalated) for missed
	// deadlines of its assignees' current assignments. Exported for a read
	// model that saves cases in its snapshot, never shown in the API.
	Escalations map[Escalation]bool `json:"-"`
	// MissedAccept: the ticket was marked overdue for its accept deadline
	// (exported for the same read model).
	MissedAccept bool `json:"-"`
}

// Escalation is one rung of the ladder a case went up for a missed
// deadline of an assignee.
type Escalation struct {
	Assignee string   `json:"assignee"`
	Deadline Deadline `json:"deadline"`
	Level    string   `json:"level"`
}

// NewCase returns the empty state of a case not yet raised.
func NewCase(id string) *Case {
	return &Case{ID: id, Commands: map[string]uint64{}, Escalations: map[Escalation]bool{}}
}

// Clone returns a copy that later Apply calls on c do not change, for a
// caller that reads the state after the lock guarding c is released. Times
// are shared: Apply replaces them, never writes through them.
func (c *Case) Clone() *Case {
	if c == nil {
		return nil
	}
	cp := *c
	cp.Assignments = make([]*Assignment, len(c.Assignments))
	for i, a := range c.Assignments {
		ac := *a
		cp.Assignments[i] = &ac
	}
	cp.Attachments = slices.Clone(c.Attachments)
	cp.Commands = maps.Clone(c.Commands)
	cp.Escalations = maps.Clone(c.Escalations)
	return &cp
}

// Exists tells whether the case has been raised. A nil case has not.
func (c *Case) Exists() bool { return c != nil && c.Version > 0 }

// Assignment returns the latest assignment of an assignee, or nil.
func (c *Case) Assignment(assignee string) *Assignment {
	for i := len(c.Assignments) - 1; i >= 0; i-- {
		if c.Assignments[i].Assignee == assignee {
			return c.Assignments[i]
		}
	}
	return nil
}

// Involves tells whether an assignee holds or held any part in the case.
func (c *Case) Involves(assignee string) bool { return c.Assignment(assignee) != nil }

// Escalated tells whether the case went up to level for a missed deadline of
// the assignee's current assignment (an assignment routed to it again starts
// with a clean record).
func (c *Case) Escalated(assignee string, d Deadline, level string) bool {
	return c.Escalations[Escalation{assignee, d, level}]
}

// Assignees lists each assignee of the case once, in order of first
// assignment; Assignment gives its latest assignment.
func (c *Case) Assignees() []string {
	ids := make([]string, 0, len(c.Assignments))
	for i, a := range c.Assignments {
		if !slices.ContainsFunc(c.Assignments[:i], func(b *Assignment) bool { return b.Assignee == a.Assignee }) {
			ids = append(ids, a.Assignee)
		}
	}
	return ids
}

// HasOpenWork tells whether the assignee's latest assignment still asks
// something of it: the case is not closed and the assignment is assigned
// or reported in (an offer not yet claimed included).
func (c *Case) HasOpenWork(assignee string) bool {
	a := c.Assignment(assignee)
	return a != nil && c.Status != StatusClosed && (a.Status == Assigned || a.Status == Reported)
}

// Apply folds a sealed event into the state: Evolve plus the envelope's
// version, hash and command bookkeeping.
func (c *Case) Apply(env Envelope, e Event) {
	c.Evolve(e, env.OccurredAt)
	c.Version = env.Version + 1
	c.LastHash = env.Hash
	if env.CorrelationID != "" {
		if c.Commands == nil {
			c.Commands = map[string]uint64{}
		}
		c.Commands[env.CorrelationID] = c.Version
	}
}

// Evolve folds one event, which happened at `at`, into the state. It trusts
// the event: events are facts, decided by Decide.
func (c *Case) Evolve(e Event, at time.Time) {
	at = at.UTC()
	switch e := e.(type) {
	case WhistleRaised:
		c.Street, c.Community, c.Category = e.Street, e.Community, e.Category
		c.Kind, c.Urgency, c.Title = e.Kind, e.Urgency, e.Title
		c.RequestSHA256 = e.RequestSHA256
		c.Requester, c.HasRequester = e.Requester, e.Requester != nil
		c.RaisedAt = &at
		if e.Receipt != nil {
			c.Receipt = &CaseReceipt{CaseNo: e.Receipt.CaseNo, TokenSHA256: e.Receipt.TokenSHA256, IssuedAt: at}
		}
	case AssignmentMade:
		a := &Assignment{Assignee: e.Assignee, Role: e.Role, Status: Assigned}
		if !e.ReportBy.IsZero() {
			t := e.ReportBy.UTC()
			a.ReportBy = &t
		}
		if !e.ResolveBy.IsZero() {
			t := e.ResolveBy.UTC()
			a.ResolveBy = &t
		}
		// A new assignment has its own deadlines: forget the escalations of
		// the assignee's earlier one (declined, then routed to it again), or
		// its new deadlines would never escalate.
		for k := range c.Escalations {
			if k.Assignee == e.Assignee {
				delete(c.Escalations, k)
			}
		}
		c.Assignments = append(c.Assignments, a)
	case AssignmentReported:
		if a := c.Assignment(e.Assignee); a != nil {
			a.Status = Reported
			a.ReportedAt = &at
			a.refreshOverdue()
		}
	case TicketReceived, TicketAccepted, TicketReturned:
		c.evolveTicket(e, at)
	case AssignmentOverdue:
		if e.Deadline == DeadlineAccept {
			c.MissedAccept = true
			break
		}
		if a := c.Assignment(e.Assignee); a != nil {
			if e.Deadline == DeadlineReport {
				a.MissedReport = true
			} else {
				a.MissedResolve = true
			}
			a.refreshOverdue()
		}
		// The mark is not a rung of the ladder: CaseEscalated records those.
	case CaseEscalated:
		// Made at the first escalation: most cases never escalate, and a
		// read model holds many cases.
		if c.Escalations == nil {
			c.Escalations = map[Escalation]bool{}
		}
		c.Escalations[Escalation{e.Assignee, e.Deadline, e.Level}] = true
	case ProgressNoted:
	case AssignmentDeclined:
		if a := c.Assignment(e.Assignee); a != nil {
			a.Status = Declined
			a.DeclineNote = e.Reason
			a.DeclineSuggest = e.Suggest
			a.refreshOverdue()
		}
	case NeedClaimed:
		for _, a := range c.Assignments {
			if a.Role == RoleOffer && a.Status == Assigned {
				a.Status = Lapsed
			}
		}
		if a := c.Assignment(e.Assignee); a != nil {
			a.Role = RoleLead
			a.Status = Reported
			a.ReportedAt = &at
			a.ReportBy = &at
			t := e.ResolveBy.UTC()
			a.ResolveBy = &t
			a.refreshOverdue()
		}
	case AssignmentResolved:
		if a := c.Assignment(e.Assignee); a != nil {
			a.Status = Resolved
			a.ResolvedAt = &at
			a.refreshOverdue()
		}
		if e.Mediation != "" && e.Role == RoleLead {
			m := e.Mediation
			c.Mediation = &m
		}
	case ResolutionVerified:
	case ResolutionRejected:
		for _, a := range c.Assignments {
			if a.Status == Resolved {
				a.Status = Reported
				a.ResolvedAt = nil
				a.refreshOverdue()
			}
		}
	case CaseClosed:
		c.ClosedAt = &at
		// A closed case has nothing left to be late for, even an assist that never reported.
		for _, a := range c.Assignments {
			a.Overdue = false
		}
	case SatisfactionRated, CallbackMade, ReceiptIssued, ResidentRated, SecondRoundOpened:
		c.evolveResident(e, at)
	case AttachmentAdded:
		c.Attachments = append(c.Attachments, Attachment{SHA256: e.SHA256, Name: e.Name, Type: e.Type, Size: e.Size, By: e.By})
	case RequesterRevealed:
	case RequesterForgotten:
		c.RequesterForgotten = true
	}
	c.Status = c.deriveStatus()
	c.noteCallback(at)
}

func (c *Case) deriveStatus() Status {
	if c.ClosedAt != nil {
		return StatusClosed
	}
	if c.ReturnedAt != nil {
		return StatusReturned
	}
	if c.Source != nil && c.AcceptedAt == nil {
		return StatusReceived
	}
	leads, resolvedLeads, offers, started := 0, 0, 0, false
	for _, a := range c.Assignments {
		if !a.Active() {
			continue
		}
		switch a.Role {
		case RoleLead:
			leads++
			if a.Status == Resolved {
				resolvedLeads++
			}
		case RoleOffer:
			offers++
		}
		if a.Status == Reported || a.Status == Resolved {
			started = true
		}
	}
	switch {
	case leads > 0 && resolvedLeads == leads:
		return StatusResolved
	case leads == 0 && offers == 0:
		return StatusUnassigned
	case started:
		return StatusInProgress
	}
	return StatusRouted
}
