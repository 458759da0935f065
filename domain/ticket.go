package domain

import (
	"fmt"
	"strings"
	"time"
	"unicode"
)

// Tickets from above: a platform (the 12345 hotline, digital city
// management...) sends a street a ticket with its own number and, often, a
// reply deadline; the street signs for it (签收) and routes it as a raise
// does, or returns it (回退); the platform is owed a reply either way.

// Event types of tickets. They only grow, like the others.
const (
	TypeTicketReceived = "TicketReceived"
	TypeTicketAccepted = "TicketAccepted"
	TypeTicketReturned = "TicketReturned"
)

// The statuses of a ticket's case before it is routed: received (waiting
// for its street to sign), returned (final: the street sent it back).
const (
	StatusReceived Status = "received"
	StatusReturned Status = "returned"
)

// DeadlineAccept is a street's deadline to sign for a ticket.
const DeadlineAccept Deadline = "accept"

// RoleStreet is the street's own part in a ticket (signing for it), as an
// overdue mark names it; a street never holds an assignment.
const RoleStreet Role = "street"

// Channel is how a ticket reached its platform.
type Channel string

// The channels of a ticket.
const (
	ChannelPhone Channel = "phone"
	ChannelWeb   Channel = "web"
	ChannelApp   Channel = "app"
	ChannelGrid  Channel = "grid"
	ChannelOther Channel = "other"
)

// ParseChannel accepts only a known channel.
func ParseChannel(s string) (Channel, error) {
	switch c := Channel(s); c {
	case ChannelPhone, ChannelWeb, ChannelApp, ChannelGrid, ChannelOther:
		return c, nil
	}
	return "", fmt.Errorf("unknown channel %q (want phone, web, app, grid or other)", s)
}

// Priority is how much attention a ticket has drawn from above.
type Priority string

// The priorities of a ticket.
const (
	PriorityNormal         Priority = "normal"
	PriorityLeaderAssigned Priority = "leader_assigned"
	PriorityMediaExposed   Priority = "media_exposed"
)

// ParsePriority accepts only a known priority.
func ParsePriority(s string) (Priority, error) {
	switch p := Priority(s); p {
	case PriorityNormal, PriorityLeaderAssigned, PriorityMediaExposed:
		return p, nil
	}
	return "", fmt.Errorf("unknown priority %q (want normal, leader_assigned or media_exposed)", s)
}

// MaxExternalID bounds a platform's own ticket number.
const MaxExternalID = 128

// TicketSource is where a ticket's case came from, as a case shows it.
type TicketSource struct {
	Platform   string     `json:"platform"`
	ExternalID string     `json:"external_id"`
	ReplyBy    *time.Time `json:"reply_by"`
	Channel    Channel    `json:"channel,omitempty"`
}

// ReceiveTicket: a platform sends a street a ticket. Category, community
// and urgency may be missing: the street fills them in when it accepts.
type ReceiveTicket struct {
	Platform, ExternalID, Street, Title, Description string
	Category, Community, Urgency                     string
	Location                                         *Location
	ReplyBy                                          *time.Time
	Channel, Priority                                string
	RequestSHA256                                    string
	// Requester is sealed by the caller before Decide (see SealedRequester).
	Requester *SealedRequester
	Receipt   *Receipt
}

// AcceptTicket: the street signs for a ticket, filling in what it lacked,
// and the case is routed as a raise would route it.
type AcceptTicket struct{ Category, Community, Urgency string }

// ReturnTicket: the street sends a ticket back to its platform.
type ReturnTicket struct{ Reason string }

func (ReceiveTicket) CommandName() string { return "receive_ticket" }
func (AcceptTicket) CommandName() string  { return "accept" }
func (ReturnTicket) CommandName() string  { return "return" }

// TicketReceived opens a ticket's case. AcceptBy is when the street must
// have signed for it: accept_within of its urgency (routine when it has
// none), never after ReplyBy.
type TicketReceived struct {
	Platform         string           `json:"platform"`
	ExternalID       string           `json:"external_id"`
	Street           string           `json:"street"`
	Title            string           `json:"title"`
	Description      string           `json:"description,omitempty"`
	Category         string           `json:"category,omitempty"`
	Community        string           `json:"community,omitempty"`
	Urgency          Urgency          `json:"urgency,omitempty"`
	Location         *Location        `json:"location,omitempty"`
	ReplyBy          *time.Time       `json:"reply_by,omitempty"`
	Channel          Channel          `json:"channel,omitempty"`
	Priority         Priority         `json:"priority"`
	AcceptBy         time.Time        `json:"accept_by"`
	DirectoryVersion string           `json:"directory_version"`
	RequestSHA256    string           `json:"request_sha256,omitempty"`
	Requester        *SealedRequester `json:"requester,omitempty"`
	Receipt          *Receipt         `json:"receipt,omitempty"`
}

// TicketAccepted: the street signed for the ticket, with the category,
// community and urgency it is routed by; AssignmentMade events follow.
type TicketAccepted struct {
	Category  string  `json:"category"`
	Kind      Kind    `json:"kind"`
	Community string  `json:"community"`
	Urgency   Urgency `json:"urgency"`
}

// TicketReturned: the street sent the ticket back; the case is over.
type TicketReturned struct {
	Reason string `json:"reason"`
}

func (TicketReceived) EventType() string { return TypeTicketReceived }
func (TicketAccepted) EventType() string { return TypeTicketAccepted }
func (TicketReturned) EventType() string { return TypeTicketReturned }

// IsTicket tells whether the case came from a platform.
func (c *Case) IsTicket() bool { return c.Source != nil }

// boundByReply keeps a ticket's deadlines within its reply_by: an assignee
// must have resolved, and reported in, before the street owes its reply.
func (c *Case) boundByReply(reportBy, resolveBy time.Time) (time.Time, time.Time) {
	if c == nil || c.Source == nil || c.Source.ReplyBy == nil {
		return reportBy, resolveBy
	}
	reply := *c.Source.ReplyBy
	if resolveBy.After(reply) {
		resolveBy = reply
	}
	if reportBy.After(resolveBy) {
		reportBy = resolveBy
	}
	return reportBy, resolveBy
}

func (c *Case) evolveTicket(e Event, at time.Time) {
	switch e := e.(type) {
	case TicketReceived:
		c.Street, c.Community, c.Category, c.Urgency, c.Title = e.Street, e.Community, e.Category, e.Urgency, e.Title
		c.RequestSHA256 = e.RequestSHA256
		c.Requester, c.HasRequester = e.Requester, e.Requester != nil
		c.RaisedAt = &at
		if e.Receipt != nil {
			c.Receipt = &CaseReceipt{CaseNo: e.Receipt.CaseNo, TokenSHA256: e.Receipt.TokenSHA256, IssuedAt: at}
		}
		src := &TicketSource{Platform: e.Platform, ExternalID: e.ExternalID, Channel: e.Channel}
		if e.ReplyBy != nil {
			t := e.ReplyBy.UTC()
			src.ReplyBy = &t
		}
		c.Source = src
		c.Priority = e.Priority
		acceptBy := e.AcceptBy.UTC()
		c.AcceptBy = &acceptBy
	case TicketAccepted:
		c.Category, c.Kind, c.Community, c.Urgency = e.Category, e.Kind, e.Community, e.Urgency
		c.AcceptedAt = &at
	case TicketReturned:
		c.ReturnedAt = &at
		c.ReturnReason = e.Reason
	}
}

func decideReceiveTicket(cmd ReceiveTicket, dir *Directory, now time.Time) ([]Event, error) {
	if !dir.IsPlatform(cmd.Platform) {
		return nil, refuse(ErrInvalidValue, "platform", "unknown platform %q", cmd.Platform)
	}
	switch {
	case blank(cmd.ExternalID):
		return nil, refuse(ErrInvalidValue, "external_id", "external_id, the platform's own ticket number, is required")
	case len(cmd.ExternalID) > MaxExternalID:
		return nil, refuse(ErrInvalidValue, "external_id", "external_id is longer than %d bytes", MaxExternalID)
	case strings.IndexFunc(cmd.ExternalID, func(r rune) bool { return !unicode.IsPrint(r) || unicode.IsSpace(r) }) >= 0:
		return nil, refuse(ErrInvalidValue, "external_id", "external_id %q may not hold spaces or control characters", cmd.ExternalID)
	}
	if err := checkText("external_id", cmd.ExternalID, MaxExternalID); err != nil {
		return nil, err
	}
	if _, ok := dir.Street(cmd.Street); !ok {
		return nil, refuse(ErrInvalidValue, "street", "unknown street %q", cmd.Street)
	}
	ev := TicketReceived{
		Platform: cmd.Platform, ExternalID: cmd.ExternalID, Street: cmd.Street, Title: cmd.Title, Description: cmd.Description,
		Location: cmd.Location, Priority: PriorityNormal, DirectoryVersion: dir.Version, RequestSHA256: cmd.RequestSHA256,
		Requester: cmd.Requester, Receipt: cmd.Receipt,
	}
	if err := checkReceipt(cmd.Receipt); err != nil {
		return nil, err
	}
	if cmd.Category != "" {
		if _, ok := dir.Category(cmd.Category); !ok {
			return nil, refuse(ErrInvalidValue, "category", "unknown category %q", cmd.Category)
		}
		ev.Category = cmd.Category
	}
	if cmd.Community != "" {
		if _, ok := dir.Community(cmd.Street, cmd.Community); !ok {
			return nil, refuse(ErrInvalidValue, "community", "street %q has no community %q", cmd.Street, cmd.Community)
		}
		ev.Community = cmd.Community
	}
	urgency := UrgencyRoutine
	if cmd.Urgency != "" {
		u, err := ParseUrgency(cmd.Urgency)
		if err != nil {
			return nil, refuse(ErrInvalidValue, "urgency", "%v", err)
		}
		ev.Urgency, urgency = u, u
	}
	if err := checkCaseText(cmd.Title, cmd.Description, cmd.Requester, cmd.Location); err != nil {
		return nil, err
	}
	if cmd.Channel != "" {
		ch, err := ParseChannel(cmd.Channel)
		if err != nil {
			return nil, refuse(ErrInvalidValue, "channel", "%v", err)
		}
		ev.Channel = ch
	}
	if cmd.Priority != "" {
		p, err := ParsePriority(cmd.Priority)
		if err != nil {
			return nil, refuse(ErrInvalidValue, "priority", "%v", err)
		}
		ev.Priority = p
	}
	ev.AcceptBy = dir.Deadline(now, dir.SLAFor(urgency).AcceptWithin)
	if cmd.ReplyBy != nil {
		// A reply deadline already past is still the platform's: the case
		// is late from the start, and its deadlines say so.
		reply := cmd.ReplyBy.UTC()
		ev.ReplyBy = &reply
		if ev.AcceptBy.After(reply) {
			ev.AcceptBy = reply
		}
	}
	return []Event{ev}, nil
}

func decideAcceptTicket(c *Case, cmd AcceptTicket, dir *Directory, now time.Time) ([]Event, error) {
	if !c.IsTicket() {
		return nil, refuse(ErrInvalidTransition, "", "only a ticket from a platform is accepted; this case was raised by its street")
	}
	if c.Status != StatusReceived {
		return nil, refuse(ErrInvalidTransition, "", "the ticket was already signed for or returned: the case is %s", c.Status)
	}
	category, community, urgency := c.Category, c.Community, string(c.Urgency)
	if cmd.Category != "" {
		category = cmd.Category
	}
	if cmd.Community != "" {
		community = cmd.Community
	}
	if cmd.Urgency != "" {
		urgency = cmd.Urgency
	}
	if category == "" {
		return nil, refuse(ErrInvalidValue, "category", "the ticket names no category: give one to route it by")
	}
	if community == "" {
		return nil, refuse(ErrInvalidValue, "community", "the ticket names no community: give the one it is in")
	}
	if urgency == "" {
		urgency = string(UrgencyRoutine) // a ticket that says nothing of urgency is routine
	}
	cat, com, u, err := checkRouting(dir, c.Street, category, community, urgency)
	if err != nil {
		return nil, err
	}
	events := []Event{TicketAccepted{Category: cat.ID, Kind: cat.Kind, Community: com.ID, Urgency: u}}
	routed, err := routeByCategory(c, dir, cat, com, u, now)
	if err != nil {
		return nil, err
	}
	return append(events, routed...), nil
}

func decideReturnTicket(c *Case, cmd ReturnTicket) ([]Event, error) {
	if !c.IsTicket() {
		return nil, refuse(ErrInvalidTransition, "", "only a ticket from a platform is returned; this case was raised by its street")
	}
	if c.Status != StatusReceived {
		return nil, refuse(ErrInvalidTransition, "", "only a ticket not yet signed for is returned; this case is %s", c.Status)
	}
	if blank(cmd.Reason) {
		return nil, refuse(ErrInvalidValue, "reason", "a return needs a reason: the platform is told it")
	}
	if err := checkText("reason", cmd.Reason, MaxText); err != nil {
		return nil, err
	}
	return []Event{TicketReturned{Reason: cmd.Reason}}, nil
}

// dueAccept returns the overdue mark and escalations due at now for a
// ticket its street has not signed for by accept_by.
func dueAccept(c *Case, dir *Directory, now time.Time) []Event {
	if c.Status != StatusReceived || c.AcceptBy == nil || now.Before(*c.AcceptBy) {
		return nil
	}
	var events []Event
	if !c.MissedAccept {
		first := ""
		if len(dir.Escalation) > 0 {
			first = dir.Escalation[0].Level
		}
		events = append(events, AssignmentOverdue{Assignee: c.Street, Role: RoleStreet, Deadline: DeadlineAccept, Level: first, Due: *c.AcceptBy})
	}
	for _, step := range dir.Escalation {
		if !now.Before(c.AcceptBy.Add(time.Duration(step.After))) && !c.Escalated(c.Street, DeadlineAccept, step.Level) {
			events = append(events, CaseEscalated{Deadline: DeadlineAccept, Level: step.Level, Assignee: c.Street})
		}
	}
	return events
}

// nextAccept is NextDeadline's part for the accept deadline: zero when none
// is pending.
func nextAccept(c *Case, dir *Directory) time.Time {
	if c.Status != StatusReceived || c.AcceptBy == nil {
		return time.Time{}
	}
	var next time.Time
	consider := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if !c.MissedAccept {
		consider(*c.AcceptBy)
	}
	for _, step := range dir.Escalation {
		if !c.Escalated(c.Street, DeadlineAccept, step.Level) {
			consider(c.AcceptBy.Add(time.Duration(step.After)))
		}
	}
	return next
}
