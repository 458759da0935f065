package domain

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Requester is the resident who asked for a case: personal data. It exists
// in clear only in memory, between the request that carries it and its
// sealing (and between an opening and a masked or revealed answer); the log
// holds it sealed (SealedRequester). Build one with NewRequester.
type Requester struct {
	name, phone string
}

// Limits on a requester's fields.
const (
	MaxRequesterName  = 64 // runes
	MaxRequesterPhone = 32 // bytes: digits and separators
	minPhoneDigits    = 5
)

// NewRequester checks a requester's name and phone. The phone is required
// (a callback needs it); the name may be empty, for a resident who will not
// give it. A refusal names the field (requester.name, requester.phone) but
// never repeats the value: personal data does not go into answers or logs.
func NewRequester(name, phone string) (Requester, error) {
	name, phone = strings.TrimSpace(name), strings.TrimSpace(phone)
	switch {
	case !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxRequesterName:
		return Requester{}, refuse(ErrInvalidValue, "requester.name", "requester.name must be valid text of at most %d characters", MaxRequesterName)
	case strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return Requester{}, refuse(ErrInvalidValue, "requester.name", "requester.name holds a character that is not printable")
	case phone == "":
		return Requester{}, refuse(ErrInvalidValue, "requester.phone", "requester.phone is required")
	case len(phone) > MaxRequesterPhone:
		return Requester{}, refuse(ErrInvalidValue, "requester.phone", "requester.phone is longer than %d characters", MaxRequesterPhone)
	case strings.IndexFunc(phone, func(r rune) bool { return !isPhoneRune(r) }) >= 0:
		return Requester{}, refuse(ErrInvalidValue, "requester.phone", "requester.phone may hold only digits, spaces and + - ( )")
	case len(phoneDigits(phone)) < minPhoneDigits:
		return Requester{}, refuse(ErrInvalidValue, "requester.phone", "requester.phone needs at least %d digits", minPhoneDigits)
	}
	return Requester{name: name, phone: phone}, nil
}

// RestoreRequester rebuilds a requester opened from storage, as it was
// sealed: the checks of NewRequester applied when it was taken in, and a
// later change of them must not make old cases unreadable.
func RestoreRequester(name, phone string) Requester { return Requester{name: name, phone: phone} }

// Name is the requester's name in clear ("" when not given).
func (r Requester) Name() string { return r.name }

// Phone is the requester's phone number in clear.
func (r Requester) Phone() string { return r.phone }

// Masked is the requester as every read shows it.
func (r Requester) Masked() *RequesterView {
	return &RequesterView{Name: MaskName(r.name), Phone: MaskPhone(r.phone)}
}

// Revealed is the requester whole, for the owning street's reveal.
func (r Requester) Revealed() *RequesterView {
	return &RequesterView{Name: r.name, Phone: r.phone, Revealed: true}
}

func isPhoneRune(r rune) bool {
	return r >= '0' && r <= '9' || strings.ContainsRune("+-() ", r)
}

func phoneDigits(phone string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, phone)
}

// MaskName keeps the first character (the surname, for a Chinese name) and
// hides the rest behind one "*", so that neither the given name nor its
// length shows: "张三" and "张三丰" are both "张*". A name of one character
// is hidden whole.
func MaskName(name string) string {
	first, size := utf8.DecodeRuneInString(name)
	switch {
	case name == "":
		return ""
	case size == len(name):
		return "*"
	}
	return string(first) + "*"
}

// MaskPhone shows a phone number the way Chinese hotlines print it: of a
// mobile number (11 digits or more) the first three and the last four
// digits, "138****1234"; of a shorter number, a landline, only the last
// four, "****5678"; of a number under seven digits, nothing. Separators are
// dropped.
func MaskPhone(phone string) string {
	d := phoneDigits(phone)
	switch n := len(d); {
	case n >= 11:
		return d[:3] + "****" + d[n-4:]
	case n >= 7:
		return "****" + d[n-4:]
	case n == 0:
		return ""
	}
	return "****"
}

// SealedRequester is a requester encrypted with its case's own key: the
// ciphertext and the id of the key, both opaque to the domain. Only the
// ciphertext enters the log (and so the hash chain); the key lives in a
// store of its own, and destroying it (ForgetRequester) leaves the
// ciphertext unreadable for good.
type SealedRequester struct {
	KeyID      string `json:"key_id"`
	Ciphertext []byte `json:"ciphertext"` // base64 in JSON
}

// MaxSealedRequester bounds the ciphertext of a requester: its fields' limits
// plus the cipher's overhead, with room to spare.
const MaxSealedRequester = 1024

// RequesterView is a requester as an answer shows it: masked, whole (only
// for its street's reveal), or forgotten.
type RequesterView struct {
	Name      string `json:"name,omitempty"`
	Phone     string `json:"phone,omitempty"`
	Revealed  bool   `json:"revealed,omitempty"`
	Forgotten bool   `json:"forgotten,omitempty"`
}

// ForgottenRequester is what every read shows once a requester is forgotten.
func ForgottenRequester() *RequesterView { return &RequesterView{Forgotten: true} }

// ErrRequesterForgotten: the case's requester was forgotten; it can be
// neither revealed nor forgotten again. A refusal for it also wraps
// ErrInvalidTransition.
var ErrRequesterForgotten = errors.New("requester forgotten")

// RevealRequester: the owning street asks to see the requester whole; the
// reveal is recorded (RequesterRevealed) before anything is shown.
type RevealRequester struct{}

// ForgetRequester: the owning street or an auditor has the requester
// forgotten (crypto-shredding: the case's key is destroyed).
type ForgetRequester struct{ Reason string }

func (RevealRequester) CommandName() string { return "reveal_requester" }
func (ForgetRequester) CommandName() string { return "forget" }

// RequesterRevealed records that the requester was shown whole; who and
// when are the envelope's actor and occurred_at.
type RequesterRevealed struct {
	KeyID string `json:"key_id"`
}

// RequesterForgotten records that the requester's key was destroyed, and why.
type RequesterForgotten struct {
	KeyID  string `json:"key_id"`
	Reason string `json:"reason"`
}

func (RequesterRevealed) EventType() string  { return TypeRequesterRevealed }
func (RequesterForgotten) EventType() string { return TypeRequesterForgotten }

// decideRequester decides a reveal or a forget, at any status (a closed
// case is called back, and may be forgotten years later).
func decideRequester(c *Case, cmd Command) ([]Event, error) {
	switch {
	case c.Requester == nil:
		return nil, refuse(ErrInvalidTransition, "", "case %s has no requester", c.ID)
	case c.RequesterForgotten:
		return nil, &Refusal{Err: errors.Join(ErrInvalidTransition, ErrRequesterForgotten), Reason: "the requester of case " + c.ID + " was forgotten"}
	}
	switch cmd := cmd.(type) {
	case RevealRequester:
		return []Event{RequesterRevealed{KeyID: c.Requester.KeyID}}, nil
	case ForgetRequester:
		if blank(cmd.Reason) {
			return nil, refuse(ErrInvalidValue, "reason", "a reason is required to forget a requester")
		}
		if err := checkText("reason", cmd.Reason, MaxText); err != nil {
			return nil, err
		}
		return []Event{RequesterForgotten{KeyID: c.Requester.KeyID, Reason: cmd.Reason}}, nil
	}
	return nil, refuse(ErrInvalidValue, "", "unknown command %T", cmd)
}

// checkSealedRequester refuses a sealed requester that cannot be one.
func checkSealedRequester(s *SealedRequester) error {
	switch {
	case s == nil:
		return nil
	case blank(s.KeyID) || len(s.KeyID) > 128:
		return refuse(ErrInvalidValue, "requester", "a sealed requester needs a key id of at most 128 characters")
	case len(s.Ciphertext) == 0 || len(s.Ciphertext) > MaxSealedRequester:
		return refuse(ErrInvalidValue, "requester", "a sealed requester's ciphertext must hold 1 to %d bytes", MaxSealedRequester)
	}
	return nil
}
