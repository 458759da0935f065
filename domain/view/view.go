// Package view holds the answer shapes that the server writes and its
// clients read: a case in the list, an assignment, a queue item, a dispatch
// message, the figures. One definition serves both sides, so a field added
// to an answer reaches the HTTP client (and the CLI) without a copy; the
// package is data only, with no I/O, and links nothing of the server.
package view

import (
	"time"

	"github.com/whistle-gov/whistle/domain"
)

// CaseSummary is one case as the list shows it: the case shape of DESIGN.md
// without mediation and rating. Position is the log position of the
// commit of the case's latest event.
type CaseSummary struct {
	CaseID      string         `json:"case_id"`
	Street      string         `json:"street"`
	Community   string         `json:"community"`
	Category    string         `json:"category"`
	Kind        domain.Kind    `json:"kind"`
	Urgency     domain.Urgency `json:"urgency"`
	Title       string         `json:"title"`
	Status      domain.Status  `json:"status"`
	RaisedAt    time.Time      `json:"raised_at"`
	ClosedAt    *time.Time     `json:"closed_at"`
	Assignments []Assignment   `json:"assignments"`
	Version     uint64         `json:"version"`
	Position    uint64         `json:"position,omitempty"`
	// SecondRound: an unsatisfied resident reopened the case; Callback:
	// its current round's callback task (回访), when it has a requester.
	SecondRound bool                 `json:"second_round,omitempty"`
	Callback    *domain.CallbackTask `json:"callback,omitempty"`
	// Source, Priority, AcceptBy, AcceptOverdue and ReturnedAt: a ticket's
	// case only (see domain.TicketSource); absent for a raise.
	Source        *domain.TicketSource `json:"source,omitempty"`
	Priority      domain.Priority      `json:"priority,omitempty"`
	AcceptBy      *time.Time           `json:"accept_by,omitempty"`
	AcceptOverdue bool                 `json:"accept_overdue,omitempty"`
	ReturnedAt    *time.Time           `json:"returned_at,omitempty"`
}

// Final tells whether the case changes no more (but for a rating or its
// requester): closed, or a ticket returned to its platform.
func (c *CaseSummary) Final() bool { return c.ClosedAt != nil || c.ReturnedAt != nil }

// Assignment is one assignment as the case list and a dispatch message
// show it.
type Assignment struct {
	Assignee  string                  `json:"assignee"`
	Role      domain.Role             `json:"role"`
	Status    domain.AssignmentStatus `json:"status"`
	ReportBy  *time.Time              `json:"report_by"`
	ResolveBy *time.Time              `json:"resolve_by"`
	Overdue   bool                    `json:"overdue"`
}

// AssignmentOf is a's view, nil for nil.
func AssignmentOf(a *domain.Assignment) *Assignment {
	if a == nil {
		return nil
	}
	return &Assignment{Assignee: a.Assignee, Role: a.Role, Status: a.Status, ReportBy: a.ReportBy, ResolveBy: a.ResolveBy, Overdue: a.Overdue}
}

// Overdue tells whether any assignment of the case is overdue, or the
// ticket is past its accept deadline unsigned.
func (c *CaseSummary) Overdue() bool {
	if c.AcceptOverdue {
		return true
	}
	for i := range c.Assignments {
		if c.Assignments[i].Overdue {
			return true
		}
	}
	return false
}

// Involves tells whether assignee holds or held any part in the case,
// offers included.
func (c *CaseSummary) Involves(assignee string) bool {
	for i := range c.Assignments {
		if c.Assignments[i].Assignee == assignee {
			return true
		}
	}
	return false
}

// QueueItem is an open assignment (assigned or reported, or an offer not
// yet claimed) as its assignee's queue shows it: GET /v1/queues/{assignee}.
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
	// (as in envelopes and in the dispatch messages): a client merging live
	// changes into a snapshot keeps, per case, what has the higher version.
	Version uint64 `json:"version"`
}

// Message is the body of a message on the dispatch stream, and the data of
// a queue stream's "change" event: the essentials of the event's envelope,
// what the case is, and the assignment as the event left it. It carries no
// description and no location: a recipient that needs them reads the case.
type Message struct {
	EventID       string         `json:"event_id"`
	Type          string         `json:"type"`
	Change        string         `json:"change"`
	CaseID        string         `json:"case_id"`
	Version       uint64         `json:"version"`  // the event's version in its case, as in its envelope
	Position      uint64         `json:"position"` // the log position of the event's commit
	OccurredAt    time.Time      `json:"occurred_at"`
	Actor         domain.Actor   `json:"actor"`
	CorrelationID string         `json:"correlation_id"`
	Street        string         `json:"street"`
	Community     string         `json:"community"`
	Category      string         `json:"category"`
	Kind          domain.Kind    `json:"kind"`
	Urgency       domain.Urgency `json:"urgency"`
	Title         string         `json:"title,omitempty"`
	CaseStatus    domain.Status  `json:"case_status"`
	Assignment    *Assignment    `json:"assignment,omitempty"`
	// Deadline and Level: which deadline was missed and the rung reached,
	// for overdue and escalated.
	Deadline domain.Deadline `json:"deadline,omitempty"`
	Level    string          `json:"level,omitempty"`
}

// Stats is the answer to a stats query, in the JSON shape of DESIGN.md.
// From and To are the window actually counted: whole days of the figures'
// time zone, written in it; null when unbounded.
type Stats struct {
	GroupBy string       `json:"group_by"`
	From    *time.Time   `json:"from"`
	To      *time.Time   `json:"to"`
	Groups  []StatsGroup `json:"groups"`
}

// StatsGroup is the figures of one key. Rates are fractions from 0 to 1 and
// durations are seconds (within 2%, to the millisecond), null when nothing is
// counted. ClosedOnTime, DisputesSuccess and P90CloseSeconds are additions to
// DESIGN.md's shape.
type StatsGroup struct {
	Key                  string   `json:"key"`
	Raised               int64    `json:"raised"`
	Closed               int64    `json:"closed"`
	ClosedOnTime         int64    `json:"closed_on_time"`
	ClosureRate          *float64 `json:"closure_rate"`
	OnTimeClosureRate    *float64 `json:"on_time_closure_rate"`
	Assignments          int64    `json:"assignments"`
	ReportedOnTime       int64    `json:"reported_on_time"`
	ResponseRate         *float64 `json:"response_rate"`
	DisputesResolved     int64    `json:"disputes_resolved"`
	DisputesSuccess      int64    `json:"disputes_success"`
	MediationSuccessRate *float64 `json:"mediation_success_rate"`
	Ratings              int64    `json:"ratings"`
	SatisfactionRate     *float64 `json:"satisfaction_rate"`
	MedianReportSeconds  *float64 `json:"median_report_seconds"`
	P90ReportSeconds     *float64 `json:"p90_report_seconds"`
	MedianCloseSeconds   *float64 `json:"median_close_seconds"`
	P90CloseSeconds      *float64 `json:"p90_close_seconds"`
	Overdue              int64    `json:"overdue"`
	Escalations          int64    `json:"escalations"`
	// Wave 2: callbacks (回访; a POST /rate counts as a reached one), their
	// reach rate, second rounds opened by unsatisfied residents, and the
	// satisfaction rate of each source of ratings (satisfaction_rate counts
	// both).
	Callbacks            int64              `json:"callbacks"`
	CallbacksReached     int64              `json:"callbacks_reached"`
	CallbackReachRate    *float64           `json:"callback_reach_rate"`
	SecondRounds         int64              `json:"second_rounds"`
	SatisfactionBySource SatisfactionSource `json:"satisfaction_by_source"`
	// Tickets from above: received from platforms, signed for, returned. A
	// ticket counts in raised once its street signs for it; a returned one
	// never does, so it is in no rate.
	TicketsReceived int64 `json:"tickets_received"`
	TicketsAccepted int64 `json:"tickets_accepted"`
	TicketsReturned int64 `json:"tickets_returned"`
}

// SatisfactionSource splits the ratings by where they came from: the
// resident's own link, or a callback.
type SatisfactionSource struct {
	Resident SourceSatisfaction `json:"resident"`
	Callback SourceSatisfaction `json:"callback"`
}

// SourceSatisfaction is the ratings of one source and their weighted rate.
type SourceSatisfaction struct {
	Ratings          int64    `json:"ratings"`
	SatisfactionRate *float64 `json:"satisfaction_rate"`
}

// Reply is what a platform is told of a ticket it sent once the case is
// over: GET /v1/outbox/{platform} and the subject whistle.outbox.<platform>.
// Seq is the reply's sequence in the outbox (absent on the bus, where the
// message's own stream sequence is it).
type Reply struct {
	Seq        uint64            `json:"seq,omitempty"`
	EventID    string            `json:"event_id"`
	Platform   string            `json:"platform"`
	CaseID     string            `json:"case_id"`
	ExternalID string            `json:"external_id"`
	Outcome    string            `json:"outcome"` // closed or returned
	Reply      string            `json:"reply"`
	At         time.Time         `json:"at"`
	Mediation  *domain.Mediation `json:"mediation,omitempty"`
	Rating     *domain.Rating    `json:"rating,omitempty"`
}

// The outcomes of a reply.
const (
	OutcomeClosed   = "closed"
	OutcomeReturned = "returned"
)

// TicketRequest is the body of POST /v1/tickets (a platform sends a
// ticket); external_id, street and title are required.
type TicketRequest struct {
	ExternalID  string            `json:"external_id"`
	Street      string            `json:"street"`
	Title       string            `json:"title"`
	Description string            `json:"description,omitempty"`
	Category    string            `json:"category,omitempty"`
	Community   string            `json:"community,omitempty"`
	Urgency     string            `json:"urgency,omitempty"`
	Location    *domain.Location  `json:"location,omitempty"`
	Requester   *RequesterRequest `json:"requester,omitempty"`
	ReplyBy     *time.Time        `json:"reply_by,omitempty"`
	Channel     string            `json:"channel,omitempty"`
	Priority    string            `json:"priority,omitempty"`
}

// RequesterRequest is a requester as a raise or a ticket gives it, in
// clear (the server seals it at once).
type RequesterRequest struct {
	Name  string `json:"name"`
	Phone string `json:"phone"`
}

// ReceiptView is a case's receipt as its street (and the platform that
// sent its ticket) sees it. Link is in the answer that issued it only.
type ReceiptView struct {
	CaseNo   string    `json:"case_no"`
	Link     string    `json:"link,omitempty"`
	IssuedAt time.Time `json:"issued_at"`
}

// InboxItem is a ticket waiting for its street to sign for it (签收) or
// return it.
type InboxItem struct {
	CaseID      string               `json:"case_id"`
	Street      string               `json:"street"`
	Community   string               `json:"community,omitempty"`
	Category    string               `json:"category,omitempty"`
	Urgency     domain.Urgency       `json:"urgency,omitempty"`
	Title       string               `json:"title"`
	Source      *domain.TicketSource `json:"source"`
	Priority    domain.Priority      `json:"priority"`
	ReceivedAt  time.Time            `json:"received_at"`
	AcceptBy    *time.Time           `json:"accept_by"`
	Overdue     bool                 `json:"overdue"`
	Escalations int                  `json:"escalations"`
	Version     uint64               `json:"version"` // of the case's last event, as in envelopes
}
