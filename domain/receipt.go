package domain

import (
	"crypto/subtle"
	"encoding/hex"
	"time"
)

// Residents as a party: a receipt (回执) with a short case number people
// read aloud and a link to a page of their own, where they follow the case
// and rate it once it is closed; an unsatisfied resident sends it back for
// a second round with a deadline of its own.

// Event types of receipts, residents' ratings and second rounds.
const (
	TypeReceiptIssued     = "ReceiptIssued"
	TypeResidentRated     = "ResidentRated"
	TypeSecondRoundOpened = "SecondRoundOpened"
)

// ActorResident is a resident acting through a receipt's link: no
// principal, no login; the link's token is the proof. Its id is "link".
const ActorResident ActorRole = "resident"

// Limits of a receipt.
const (
	MaxCaseNo          = 32
	MaxResidentComment = 500 // runes
	// ResidentRatingWithin is how long after closure a resident may rate
	// through the link: a hotline's 回访 window. It also bounds how long a
	// closed case can still be reopened, which lets the read models forget
	// a closed case's state once it has passed.
	ResidentRatingWithin = 15 * 24 * time.Hour
)

// Receipt is what a raise or a ticket hands the resident: the case number
// and the SHA-256 of the link's token (the token itself is never stored).
type Receipt struct {
	CaseNo      string `json:"case_no"`
	TokenSHA256 string `json:"token_sha256"`
}

// CaseReceipt is a case's receipt as the case holds it.
type CaseReceipt struct {
	CaseNo      string    `json:"case_no"`
	TokenSHA256 string    `json:"-"`
	IssuedAt    time.Time `json:"issued_at"`
}

// ResidentRating is the resident's own rating of the current round.
// Comment is in clear only for a rating made before comments were sealed;
// CommentSealed is opened by the adapter that shows it (to the street),
// and CommentForgotten tells that its key was destroyed.
type ResidentRating struct {
	Rating           Rating      `json:"rating"`
	Comment          string      `json:"comment,omitempty"`
	CommentForgotten bool        `json:"comment_forgotten,omitempty"`
	At               time.Time   `json:"at"`
	Round            int         `json:"round"`
	CommentSealed    *SealedText `json:"-"`
}

// SealedText is a resident's free text (a rating's comment, where people
// write their names and numbers whatever the form says) encrypted with
// the case's own key, like its requester: forgetting the requester
// destroys the key, and the text with it.
type SealedText struct {
	KeyID      string `json:"key_id"`
	Ciphertext []byte `json:"ciphertext"` // base64 in JSON
}

// MaxSealedComment bounds a sealed comment: MaxResidentComment runes of up
// to four bytes, and the cipher's overhead.
const MaxSealedComment = 4*MaxResidentComment + 64

// IssueReceipt: the street issues the case a new link (the old one stops
// working), for printing or an SMS; a case raised before receipts gets its
// number then (CaseNo is used only when the case has none).
type IssueReceipt struct{ CaseNo, TokenSHA256 string }

// RateByResident: the resident rates the closed case through the link
// whose token hashes to TokenSHA256. Comment is the text as given, checked
// here and never stored: the event holds SealedComment, its sealed form,
// which the adapter makes once the rating is known to be accepted.
type RateByResident struct {
	TokenSHA256, Rating, Comment string
	SealedComment                *SealedText
}

func (IssueReceipt) CommandName() string   { return "receipt" }
func (RateByResident) CommandName() string { return "resident_rating" }

// ReceiptIssued replaces the case's link (and gives a case raised before
// receipts its number).
type ReceiptIssued struct {
	CaseNo      string `json:"case_no"`
	TokenSHA256 string `json:"token_sha256"`
}

// ResidentRated is the resident's rating through the link, once per round.
// Comment, in clear, is only in events written before comments were
// sealed; CommentSealed is the comment since.
type ResidentRated struct {
	Rating        Rating      `json:"rating"`
	Comment       string      `json:"comment,omitempty"`
	CommentSealed *SealedText `json:"comment_sealed,omitempty"`
	Round         int         `json:"round"`
}

// SecondRoundOpened reopens a closed case the resident was not satisfied
// with: the leads' assignments are back to reported with ResolveBy.
type SecondRoundOpened struct {
	ResolveBy time.Time `json:"resolve_by"`
	Leads     []string  `json:"leads"`
}

func (ReceiptIssued) EventType() string     { return TypeReceiptIssued }
func (ResidentRated) EventType() string     { return TypeResidentRated }
func (SecondRoundOpened) EventType() string { return TypeSecondRoundOpened }

// ReceiptMatches tells, in constant time, whether tokenSHA256 is the hash
// of the case's current link.
func (c *Case) ReceiptMatches(tokenSHA256 string) bool {
	return c != nil && c.Receipt != nil &&
		subtle.ConstantTimeCompare([]byte(c.Receipt.TokenSHA256), []byte(tokenSHA256)) == 1
}

// Round is the case's round: 1, or 2 once a second round was opened.
func (c *Case) Round() int {
	if c.SecondRound {
		return 2
	}
	return 1
}

// checkReceipt refuses a receipt that cannot be one.
func checkReceipt(r *Receipt) error {
	if r == nil {
		return nil
	}
	if blank(r.CaseNo) || len(r.CaseNo) > MaxCaseNo {
		return refuse(ErrInvalidValue, "receipt.case_no", "a case number of 1 to %d characters is required", MaxCaseNo)
	}
	return checkTokenHash(r.TokenSHA256)
}

func checkTokenHash(h string) error {
	if b, err := hex.DecodeString(h); err != nil || len(b) != 32 {
		return refuse(ErrInvalidValue, "receipt.token_sha256", "a receipt's token hash is 64 hex digits")
	}
	return nil
}

// authorizeResident: a resident acts only through the case's current link;
// anything else looks like no case at all, so that a guessed link says
// nothing of which cases exist.
func authorizeResident(c *Case, actor Actor, cmd RateByResident) error {
	if actor.Role != ActorResident || !c.Exists() || !c.ReceiptMatches(cmd.TokenSHA256) {
		return refuse(ErrNoCase, "", "no such receipt")
	}
	return nil
}

// decideResidentRating decides a resident's rating: once the case is
// closed, once per round, within ResidentRatingWithin of closure. An
// unsatisfied first round opens the second one.
func decideResidentRating(c *Case, cmd RateByResident, dir *Directory, now time.Time) ([]Event, error) {
	r, err := ParseRating(cmd.Rating)
	if err != nil {
		return nil, refuse(ErrInvalidValue, "rating", "%v", err)
	}
	if err := CheckResidentComment(cmd.Comment); err != nil {
		return nil, err
	}
	switch sealed := cmd.SealedComment; {
	case cmd.Comment != "" && sealed == nil:
		return nil, refuse(ErrInvalidValue, "comment", "a comment is kept only sealed, and this one is not")
	case sealed != nil && (blank(sealed.KeyID) || len(sealed.Ciphertext) == 0 || len(sealed.Ciphertext) > MaxSealedComment):
		return nil, refuse(ErrInvalidValue, "comment", "a sealed comment names its key and holds 1 to %d bytes", MaxSealedComment)
	}
	switch {
	case c.Status != StatusClosed:
		return nil, refuse(ErrInvalidTransition, "", "the case is %s: it can be rated once it is closed", c.Status)
	case c.ResidentRating != nil && c.ResidentRating.Round == c.Round():
		return nil, refuse(ErrInvalidTransition, "", "the case was already rated %s through its link", c.ResidentRating.Rating)
	case now.After(c.ClosedAt.Add(ResidentRatingWithin)):
		return nil, refuse(ErrInvalidTransition, "", "a case is rated within %d days of its closure", int(ResidentRatingWithin/(24*time.Hour)))
	}
	events := []Event{ResidentRated{Rating: r, CommentSealed: cmd.SealedComment, Round: c.Round()}}
	if r != RatingUnsatisfied || c.SecondRound {
		return events, nil
	}
	var leads []string
	for _, a := range c.Assignments {
		if a.Role == RoleLead && a.Active() {
			leads = append(leads, a.Assignee)
		}
	}
	if len(leads) == 0 {
		return events, nil // nobody to send it back to (a ticket closed without routing)
	}
	// A ticket's reply was sent at closure: the second round is the street's
	// own and is not bound by reply_by.
	resolveBy := dir.Deadline(now, dir.SLAFor(c.Urgency).SecondRoundWithin)
	return append(events, SecondRoundOpened{ResolveBy: resolveBy, Leads: leads}), nil
}

// CheckResidentComment refuses a comment a resident may not leave.
func CheckResidentComment(comment string) error {
	return checkText("comment", comment, MaxResidentComment)
}

func decideIssueReceipt(c *Case, cmd IssueReceipt) ([]Event, error) {
	caseNo := cmd.CaseNo
	if c.Receipt != nil {
		caseNo = c.Receipt.CaseNo
	}
	if err := checkReceipt(&Receipt{CaseNo: caseNo, TokenSHA256: cmd.TokenSHA256}); err != nil {
		return nil, err
	}
	return []Event{ReceiptIssued{CaseNo: caseNo, TokenSHA256: cmd.TokenSHA256}}, nil
}

// evolveResident folds the events of receipts, residents' ratings, second
// rounds and callbacks.
func (c *Case) evolveResident(e Event, at time.Time) {
	switch e := e.(type) {
	case ReceiptIssued:
		c.Receipt = &CaseReceipt{CaseNo: e.CaseNo, TokenSHA256: e.TokenSHA256, IssuedAt: at}
	case ResidentRated:
		c.ResidentRating = &ResidentRating{Rating: e.Rating, Comment: e.Comment, CommentSealed: e.CommentSealed, At: at, Round: e.Round}
		r := e.Rating
		c.Rating = &r
	case SecondRoundOpened:
		c.SecondRound, c.CallbackRated = true, false
		c.ClosedAt = nil
		c.Callback = nil // the new round is called back once it is resolved
		t := e.ResolveBy.UTC()
		for _, id := range e.Leads {
			a := c.Assignment(id)
			if a == nil {
				continue
			}
			a.Status, a.ResolvedAt, a.ResolveBy, a.MissedResolve = Reported, nil, &t, false
			for k := range c.Escalations {
				if k.Assignee == id && k.Deadline == DeadlineResolve {
					delete(c.Escalations, k)
				}
			}
			a.refreshOverdue()
		}
	case CallbackMade, SatisfactionRated:
		c.evolveCallback(e, at)
	}
}
