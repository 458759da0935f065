package domain

import (
	"encoding/json"
	"fmt"
	"time"
)

// Event type names. Auditors rely on them: they only grow, never change.
const (
	TypeWhistleRaised      = "WhistleRaised"
	TypeAssignmentMade     = "AssignmentMade"
	TypeAssignmentReported = "AssignmentReported"
	TypeAssignmentOverdue  = "AssignmentOverdue"
	TypeCaseEscalated      = "CaseEscalated"
	TypeProgressNoted      = "ProgressNoted"
	TypeAssignmentDeclined = "AssignmentDeclined"
	TypeNeedClaimed        = "NeedClaimed"
	TypeAssignmentResolved = "AssignmentResolved"
	TypeResolutionVerified = "ResolutionVerified"
	TypeResolutionRejected = "ResolutionRejected"
	TypeCaseClosed         = "CaseClosed"
	TypeSatisfactionRated  = "SatisfactionRated"
	TypeRequesterRevealed  = "RequesterRevealed"
	TypeRequesterForgotten = "RequesterForgotten"
)

// Event is the data of one domain event.
type Event interface {
	EventType() string
}

// WhistleRaised opens a case.
type WhistleRaised struct {
	Street           string    `json:"street"`
	Community        string    `json:"community"`
	Category         string    `json:"category"`
	Kind             Kind      `json:"kind"`
	Urgency          Urgency   `json:"urgency"`
	Title            string    `json:"title"`
	Description      string    `json:"description,omitempty"`
	Location         *Location `json:"location,omitempty"`
	DirectoryVersion string    `json:"directory_version"`
	// RequestSHA256 fingerprints the request that raised the case, so a repeated
	// Idempotency-Key with another body is told apart from a retry.
	RequestSHA256 string `json:"request_sha256,omitempty"`
	// Requester is the resident who asked, sealed: only its ciphertext is in
	// the log and the hash chain.
	Requester *SealedRequester `json:"requester,omitempty"`
	// Receipt: the case number and the hash of the resident's link.
	Receipt *Receipt `json:"receipt,omitempty"`
}

// AssignmentMade gives an assignee a part in the case (or offers a need to a
// unit, with role offer).
type AssignmentMade struct {
	Assignee  string    `json:"assignee"`
	Role      Role      `json:"role"`
	ReportBy  time.Time `json:"report_by"`
	ResolveBy time.Time `json:"resolve_by"`
	ByHand    bool      `json:"by_hand,omitempty"`
}

// AssignmentReported is an assignee reporting in.
type AssignmentReported struct {
	Assignee string `json:"assignee"`
	Role     Role   `json:"role"`
	Note     string `json:"note,omitempty"`
}

// AssignmentOverdue marks that an assignment missed a deadline.
type AssignmentOverdue struct {
	Assignee string    `json:"assignee"`
	Role     Role      `json:"role"`
	Deadline Deadline  `json:"deadline"`
	Level    string    `json:"level"`
	Due      time.Time `json:"due"`
}

// CaseEscalated sends the case up one rung of the ladder for a missed deadline.
type CaseEscalated struct {
	Deadline Deadline `json:"deadline"`
	Level    string   `json:"level"`
	Assignee string   `json:"assignee"`
}

// ProgressNoted is a note on the way.
type ProgressNoted struct {
	Assignee string `json:"assignee"`
	Role     Role   `json:"role"`
	Note     string `json:"note,omitempty"`
}

// AssignmentDeclined gives an assignment back to the street.
type AssignmentDeclined struct {
	Assignee string `json:"assignee"`
	Role     Role   `json:"role"`
	Reason   string `json:"reason"`
	Suggest  string `json:"suggest,omitempty"`
}

// NeedClaimed: a unit takes a need; it becomes the lead, reported in at once,
// and every other offer lapses.
type NeedClaimed struct {
	Assignee  string    `json:"assignee"`
	Role      Role      `json:"role"` // always lead
	ResolveBy time.Time `json:"resolve_by"`
	Note      string    `json:"note,omitempty"`
}

// AssignmentResolved: an assignee has done its part.
type AssignmentResolved struct {
	Assignee  string    `json:"assignee"`
	Role      Role      `json:"role"`
	Note      string    `json:"note,omitempty"`
	Mediation Mediation `json:"mediation,omitempty"`
	// Evidence: sha256s of the case's attachments that show the work.
	Evidence []string `json:"evidence,omitempty"`
}

// ResolutionVerified: the street accepts the result. Reply is the answer
// to a ticket's platform.
type ResolutionVerified struct {
	Note  string `json:"note,omitempty"`
	Reply string `json:"reply,omitempty"`
	// Evidence: sha256s of the case's attachments verified against.
	Evidence []string `json:"evidence,omitempty"`
}

// ResolutionRejected: the street sends the result back.
type ResolutionRejected struct {
	Note     string   `json:"note,omitempty"`
	Evidence []string `json:"evidence,omitempty"`
}

// CaseClosed ends the case.
type CaseClosed struct{}

// SatisfactionRated records the resident's rating, once.
type SatisfactionRated struct {
	Rating Rating `json:"rating"`
}

func (WhistleRaised) EventType() string      { return TypeWhistleRaised }
func (AssignmentMade) EventType() string     { return TypeAssignmentMade }
func (AssignmentReported) EventType() string { return TypeAssignmentReported }
func (AssignmentOverdue) EventType() string  { return TypeAssignmentOverdue }
func (CaseEscalated) EventType() string      { return TypeCaseEscalated }
func (ProgressNoted) EventType() string      { return TypeProgressNoted }
func (AssignmentDeclined) EventType() string { return TypeAssignmentDeclined }
func (NeedClaimed) EventType() string        { return TypeNeedClaimed }
func (AssignmentResolved) EventType() string { return TypeAssignmentResolved }
func (ResolutionVerified) EventType() string { return TypeResolutionVerified }
func (ResolutionRejected) EventType() string { return TypeResolutionRejected }
func (CaseClosed) EventType() string         { return TypeCaseClosed }
func (SatisfactionRated) EventType() string  { return TypeSatisfactionRated }

// DecodeEvent turns a stored type and data back into an Event.
func DecodeEvent(eventType string, data []byte) (Event, error) {
	var e Event
	switch eventType {
	case TypeWhistleRaised:
		e = &WhistleRaised{}
	case TypeAssignmentMade:
		e = &AssignmentMade{}
	case TypeAssignmentReported:
		e = &AssignmentReported{}
	case TypeAssignmentOverdue:
		e = &AssignmentOverdue{}
	case TypeCaseEscalated:
		e = &CaseEscalated{}
	case TypeProgressNoted:
		e = &ProgressNoted{}
	case TypeAssignmentDeclined:
		e = &AssignmentDeclined{}
	case TypeNeedClaimed:
		e = &NeedClaimed{}
	case TypeAssignmentResolved:
		e = &AssignmentResolved{}
	case TypeResolutionVerified:
		e = &ResolutionVerified{}
	case TypeResolutionRejected:
		e = &ResolutionRejected{}
	case TypeCaseClosed:
		e = &CaseClosed{}
	case TypeSatisfactionRated:
		e = &SatisfactionRated{}
	case TypeRequesterRevealed:
		e = &RequesterRevealed{}
	case TypeRequesterForgotten:
		e = &RequesterForgotten{}
	case TypeTicketReceived:
		e = &TicketReceived{}
	case TypeTicketAccepted:
		e = &TicketAccepted{}
	case TypeTicketReturned:
		e = &TicketReturned{}
	case TypeAttachmentAdded:
		e = &AttachmentAdded{}
	case TypeReceiptIssued:
		e = &ReceiptIssued{}
	case TypeResidentRated:
		e = &ResidentRated{}
	case TypeSecondRoundOpened:
		e = &SecondRoundOpened{}
	case TypeCallbackMade:
		e = &CallbackMade{}
	default:
		return nil, fmt.Errorf("domain: unknown event type %q", eventType)
	}
	if len(data) > 0 {
		if err := json.Unmarshal(data, e); err != nil {
			return nil, fmt.Errorf("domain: decode %s: %w", eventType, err)
		}
	}
	return deref(e), nil
}

// deref returns the value behind a pointer event so that callers switch on
// value types only.
func deref(e Event) Event {
	switch v := e.(type) {
	case *WhistleRaised:
		return *v
	case *AssignmentMade:
		return *v
	case *AssignmentReported:
		return *v
	case *AssignmentOverdue:
		return *v
	case *CaseEscalated:
		return *v
	case *ProgressNoted:
		return *v
	case *AssignmentDeclined:
		return *v
	case *NeedClaimed:
		return *v
	case *AssignmentResolved:
		return *v
	case *ResolutionVerified:
		return *v
	case *ResolutionRejected:
		return *v
	case *CaseClosed:
		return *v
	case *SatisfactionRated:
		return *v
	case *RequesterRevealed:
		return *v
	case *RequesterForgotten:
		return *v
	case *TicketReceived:
		return *v
	case *TicketAccepted:
		return *v
	case *TicketReturned:
		return *v
	case *AttachmentAdded:
		return *v
	case *ReceiptIssued:
		return *v
	case *ResidentRated:
		return *v
	case *SecondRoundOpened:
		return *v
	case *CallbackMade:
		return *v
	}
	return e
}
