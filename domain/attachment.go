package domain

import (
	"fmt"
	"strings"
	"unicode"
)

// Attachments: photos and documents of a case (核查). The bytes are kept
// outside the log, content-addressed by their SHA-256; the event
// AttachmentAdded puts that sha256 in the hash chain, so an auditor can
// prove which file was shown as evidence.

// TypeAttachmentAdded is the event type of an attachment. It only grows.
const TypeAttachmentAdded = "AttachmentAdded"

// The media types an attachment may have.
const (
	MediaJPEG = "image/jpeg"
	MediaPNG  = "image/png"
	MediaPDF  = "application/pdf"
)

// Limits of attachments: the size of one (the HTTP body limit follows it),
// how many a case may hold, the length of a name.
const (
	MaxAttachmentSize = 10 << 20
	MaxAttachments    = 100
	MaxAttachmentName = 200
)

// ParseMediaType accepts only the media types an attachment may have.
func ParseMediaType(s string) (string, error) {
	switch s {
	case MediaJPEG, MediaPNG, MediaPDF:
		return s, nil
	}
	return "", fmt.Errorf("unsupported type %q (want image/jpeg, image/png or application/pdf)", s)
}

// Attachment is one file of a case, as the case shows it.
type Attachment struct {
	SHA256 string `json:"sha256"`
	Name   string `json:"name"`
	Type   string `json:"type"`
	Size   int64  `json:"size"`
	By     Actor  `json:"by"`
}

// AddAttachment: someone involved in the case adds a file it has stored
// under its sha256 (the caller stores the bytes before the event is
// appended, so the event never names a file that is not kept).
type AddAttachment struct {
	SHA256 string
	Name   string
	Type   string
	Size   int64
	By     Actor
}

func (AddAttachment) CommandName() string { return "add_attachment" }

// AttachmentAdded records a file of the case; its sha256 is in the hash
// chain with the rest of the event.
type AttachmentAdded struct {
	SHA256 string `json:"sha256"`
	Name   string `json:"name"`
	Type   string `json:"type"`
	Size   int64  `json:"size"`
	By     Actor  `json:"by"`
}

func (AttachmentAdded) EventType() string { return TypeAttachmentAdded }

// HasAttachment tells whether sha256 names an attachment of the case.
func (c *Case) HasAttachment(sha256 string) bool {
	return c.Attachment(sha256) != nil
}

// Attachment returns the case's attachment with that sha256, or nil.
func (c *Case) Attachment(sha256 string) *Attachment {
	if c == nil {
		return nil
	}
	for i := range c.Attachments {
		if c.Attachments[i].SHA256 == sha256 {
			return &c.Attachments[i]
		}
	}
	return nil
}

// CheckEvidence refuses evidence that does not name attachments of the
// case, each once (422 evidence, evidence[i] for the one at fault). A
// command that takes evidence (resolve, decline, verify) calls it before
// deciding anything else, so the refusal names the evidence.
func CheckEvidence(c *Case, evidence []string) error {
	if len(evidence) > MaxAttachments {
		return refuse(ErrInvalidValue, "evidence", "evidence names %d files, at most %d", len(evidence), MaxAttachments)
	}
	seen := make(map[string]bool, len(evidence))
	for i, sha := range evidence {
		field := fmt.Sprintf("evidence[%d]", i)
		if !IsSHA256(sha) {
			return refuse(ErrInvalidValue, field, "evidence names attachments by their sha256 (64 lowercase hex digits), got %q", clip(sha, 80))
		}
		if seen[sha] {
			return refuse(ErrInvalidValue, field, "attachment %s is named twice", sha)
		}
		seen[sha] = true
		if !c.HasAttachment(sha) {
			return refuse(ErrInvalidValue, field, "%s is not an attachment of this case: add it first (POST /v1/cases/%s/attachments)", sha, c.ID)
		}
	}
	return nil
}

// IsSHA256 tells whether s is a SHA-256 in lowercase hex, as attachments
// are named.
func IsSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// CheckAttachmentName refuses a file name that cannot be shown or saved
// safely: empty, too long, holding control characters or a path.
func CheckAttachmentName(name string) error {
	if blank(name) {
		return refuse(ErrInvalidValue, "name", "an attachment needs a name")
	}
	if err := checkText("name", name, MaxAttachmentName); err != nil {
		return err
	}
	if strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return refuse(ErrInvalidValue, "name", "a name is a file name, not a path")
	}
	if strings.ContainsFunc(name, unicode.IsControl) {
		return refuse(ErrInvalidValue, "name", "a name holds no control characters")
	}
	return nil
}

func decideAddAttachment(c *Case, cmd AddAttachment) ([]Event, error) {
	if !IsSHA256(cmd.SHA256) {
		return nil, refuse(ErrInvalidValue, "sha256", "an attachment is named by its sha256 in lowercase hex")
	}
	if err := CheckAttachmentName(cmd.Name); err != nil {
		return nil, err
	}
	if _, err := ParseMediaType(cmd.Type); err != nil {
		return nil, refuse(ErrInvalidValue, "type", "%v", err)
	}
	if cmd.Size <= 0 || cmd.Size > MaxAttachmentSize {
		return nil, refuse(ErrInvalidValue, "size", "an attachment holds 1 to %d bytes, not %d", MaxAttachmentSize, cmd.Size)
	}
	if c.HasAttachment(cmd.SHA256) {
		// The same bytes again (a retry, or the same photo twice): already
		// there, nothing to record.
		return nil, nil
	}
	if len(c.Attachments) >= MaxAttachments {
		return nil, refuse(ErrInvalidTransition, "", "case %s already holds %d attachments, the most a case may hold", c.ID, MaxAttachments)
	}
	return []Event{AttachmentAdded{SHA256: cmd.SHA256, Name: cmd.Name, Type: cmd.Type, Size: cmd.Size, By: cmd.By}}, nil
}

// authorizeAttachment: anyone involved adds a file to a case: its street,
// anyone assigned or offered a part. Auditors only read.
func authorizeAttachment(c *Case, actor Actor, cmd AddAttachment) error {
	if cmd.By != actor {
		return refuse(ErrNotYours, "", "an attachment is added in its own name")
	}
	switch actor.Role {
	case ActorStreet:
		if actor.ID == c.Street {
			return nil
		}
	case ActorDepartment, ActorUnit:
		if c.Involves(actor.ID) {
			return nil
		}
	}
	return refuse(ErrNotYours, "", "only the case's street and its assignees add attachments to it")
}

// clip shortens what is quoted back in a refusal.
func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
