package dispatch

import (
	"encoding/json"
	"github.com/whistle-gov/whistle/domain/view"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/domain"
)

// The changes a message announces, in Message.Change.
const (
	ChangeMade      = "made"      // AssignmentMade: a new assignment, or an offer (role offer)
	ChangeReported  = "reported"  // AssignmentReported
	ChangeResolved  = "resolved"  // AssignmentResolved
	ChangeDeclined  = "declined"  // AssignmentDeclined (also an offer ended by routing by hand)
	ChangeClaimed   = "claimed"   // NeedClaimed, to the claimant
	ChangeLapsed    = "lapsed"    // NeedClaimed, to every other unit offered the need
	ChangeOverdue   = "overdue"   // AssignmentOverdue
	ChangeEscalated = "escalated" // CaseEscalated, to the assignee that missed the deadline
	ChangeRejected  = "rejected"  // ResolutionRejected, to each assignee whose resolution was sent back
	ChangeClosed    = "closed"    // CaseClosed, to each assignee still active in the case
)

// Message is the body of a message on the dispatch stream (domain/view).
type Message = view.Message

// AssignmentView is an assignment as a message shows it.
type AssignmentView = view.Assignment

func viewOf(a *domain.Assignment) *AssignmentView { return view.AssignmentOf(a) }

// outMsg is one message to publish.
type outMsg struct {
	subject string
	msgID   string
	body    Message // its headers; also the data unless reply is set
	reply   *view.Reply
}

// natsMsg encodes the message with its headers.
func (o outMsg) natsMsg() *nats.Msg {
	var data []byte
	if o.reply != nil {
		data, _ = json.Marshal(o.reply)
	} else {
		data, _ = json.Marshal(o.body) // cannot fail: plain fields only
	}
	m := &nats.Msg{Subject: o.subject, Data: data, Header: nats.Header{}}
	m.Header.Set(HeaderEventID, o.body.EventID)
	m.Header.Set(HeaderType, o.body.Type)
	m.Header.Set(HeaderCaseID, o.body.CaseID)
	m.Header.Set(HeaderPosition, strconv.FormatUint(o.body.Position, 10))
	m.Header.Set(HeaderChange, o.body.Change)
	return m
}

// msgID derives a message's Nats-Msg-Id from the event id and the target, so
// that publishing the same dispatch again is recognised by the server, while
// the messages one event sends to several targets stay distinct.
func msgID(eventID, kind, target string) string { return eventID + "/" + kind + "/" + target }

// target is an assignee a message goes to, and the change it announces.
type target struct{ assignee, change string }

// applyAndPlan applies the event of env to c (the case's state just before it) and returns
// the messages it produces: one per affected assignee, and one to the
// case's street. Which assignees an event affects is read from the state
// before it (the offers a claim lapses, the resolutions a rejection sends
// back, the assignments a closure ends); what they see is the state after.
func applyAndPlan(c *domain.Case, env domain.Envelope, event domain.Event, pos eventstore.Position) []outMsg {
	var targets []target
	var deadline domain.Deadline
	var level string
	switch e := event.(type) {
	case domain.AssignmentMade:
		targets = append(targets, target{e.Assignee, ChangeMade})
	case domain.AssignmentReported:
		targets = append(targets, target{e.Assignee, ChangeReported})
	case domain.AssignmentResolved:
		targets = append(targets, target{e.Assignee, ChangeResolved})
	case domain.AssignmentDeclined:
		targets = append(targets, target{e.Assignee, ChangeDeclined})
	case domain.AssignmentOverdue:
		targets = append(targets, target{e.Assignee, ChangeOverdue})
		deadline, level = e.Deadline, e.Level
	case domain.CaseEscalated:
		targets = append(targets, target{e.Assignee, ChangeEscalated})
		deadline, level = e.Deadline, e.Level
	case domain.NeedClaimed:
		targets = append(targets, target{e.Assignee, ChangeClaimed})
		for _, a := range c.Assignments {
			if a.Role == domain.RoleOffer && a.Status == domain.Assigned && a.Assignee != e.Assignee {
				targets = append(targets, target{a.Assignee, ChangeLapsed})
			}
		}
	case domain.ResolutionRejected:
		for _, id := range c.Assignees() {
			if c.Assignment(id).Status == domain.Resolved {
				targets = append(targets, target{id, ChangeRejected})
			}
		}
	case domain.CaseClosed:
		for _, id := range c.Assignees() {
			if c.Assignment(id).Active() {
				targets = append(targets, target{id, ChangeClosed})
			}
		}
	}

	c.Apply(env, event)

	base := Message{
		EventID: env.ID, Type: env.Type, CaseID: env.CaseID, Version: env.Version,
		Position: uint64(pos), OccurredAt: env.OccurredAt, Actor: env.Actor,
		CorrelationID: env.CorrelationID,
		Street:        c.Street, Community: c.Community, Category: c.Category, Kind: c.Kind,
		Urgency: c.Urgency, Title: c.Title, CaseStatus: c.Status, Deadline: deadline, Level: level,
	}
	out := make([]outMsg, 0, len(targets)+1)
	for _, t := range targets {
		m := base
		m.Change = t.change
		m.Assignment = viewOf(c.Assignment(t.assignee))
		out = append(out, outMsg{subject: DispatchSubject(t.assignee), msgID: msgID(env.ID, "d", t.assignee), body: m})
	}
	if c.Street != "" {
		m := base
		m.Change = streetChange(env.Type, targets)
		if len(targets) == 1 {
			m.Assignment = viewOf(c.Assignment(targets[0].assignee))
		}
		out = append(out, outMsg{subject: StreetSubject(c.Street), msgID: msgID(env.ID, "s", c.Street), body: m})
	}
	return out
}

// streetChange names a change for the street: the assignee's change when the
// event concerns one assignee, else the event type in snake case.
func streetChange(eventType string, targets []target) string {
	switch eventType {
	case domain.TypeWhistleRaised:
		return "raised"
	case domain.TypeProgressNoted:
		return "progress"
	case domain.TypeResolutionVerified:
		return "verified"
	case domain.TypeResolutionRejected:
		return ChangeRejected
	case domain.TypeCaseClosed:
		return ChangeClosed
	case domain.TypeSatisfactionRated:
		return "rated"
	case domain.TypeNeedClaimed:
		return ChangeClaimed
	}
	if len(targets) > 0 {
		return targets[0].change
	}
	return eventType
}
