package domain

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestMaskName(t *testing.T) {
	tests := []struct{ name, want string }{
		{"", ""},
		{"张", "*"},
		{"张三", "张*"},
		{"张三丰", "张*"},
		{"欧阳娜娜", "欧*"},
		{"Li Wei", "L*"},
	}
	for _, tt := range tests {
		if got := MaskName(tt.name); got != tt.want {
			t.Errorf("MaskName(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestMaskPhone(t *testing.T) {
	tests := []struct{ phone, want string }{
		{"13812341234", "138****1234"},
		{"138 1234 1234", "138****1234"},
		{"138-1234-1234", "138****1234"},
		{"+86 138 1234 5678", "861****5678"},
		{"0594-2345678", "059****5678"},
		{"594-2345678", "****5678"},
		{"2345678", "****5678"},
		{"12345", "****"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := MaskPhone(tt.phone); got != tt.want {
			t.Errorf("MaskPhone(%q) = %q, want %q", tt.phone, got, tt.want)
		}
	}
}

func TestNewRequester(t *testing.T) {
	const phone = "13812341234"
	r, err := NewRequester("  张三 ", " "+phone+" ")
	if err != nil {
		t.Fatal(err)
	}
	if r.Name() != "张三" || r.Phone() != phone {
		t.Fatalf("requester %q %q: want trimmed", r.Name(), r.Phone())
	}
	if m := r.Masked(); *m != (RequesterView{Name: "张*", Phone: "138****1234"}) {
		t.Fatalf("masked %+v", *m)
	}
	if v := r.Revealed(); *v != (RequesterView{Name: "张三", Phone: phone, Revealed: true}) {
		t.Fatalf("revealed %+v", *v)
	}
	if _, err := NewRequester("", phone); err != nil {
		t.Fatalf("an anonymous requester with a phone is refused: %v", err)
	}
	bad := []struct {
		name, phone, field, why string
	}{
		{"张三", "", "requester.phone", "is required"},
		{"张三", "138-abc-1234", "requester.phone", "only digits"},
		{"张三", "1234", "requester.phone", "at least 5 digits"},
		{"张三", strings.Repeat("1", MaxRequesterPhone+1), "requester.phone", "longer than"},
		{strings.Repeat("张", MaxRequesterName+1), phone, "requester.name", "at most"},
		{"张\x00三", phone, "requester.name", "not printable"},
		{"\xff", phone, "requester.name", "valid text"},
	}
	for _, tt := range bad {
		_, err := NewRequester(tt.name, tt.phone)
		checkRefusal(t, err, ErrInvalidValue, tt.field, tt.why)
		// A refusal names the field, never the personal data itself.
		if tt.phone != "" && strings.Contains(err.Error(), tt.phone) || tt.name != "" && strings.Contains(err.Error(), tt.name) {
			t.Errorf("refusal %q repeats the value", err)
		}
	}
}

func sealedRequester() *SealedRequester {
	return &SealedRequester{KeyID: "0190c1f4-7b2a-7c3e-9d6f-2a1b3c4d5e6f", Ciphertext: []byte("\x01opaque bytes of a sealed requester")}
}

func raiseWithRequester() Raise {
	r := raiseOf(catIssue, UrgencyRoutine)
	r.Requester = sealedRequester()
	return r
}

func TestRaiseCarriesTheSealedRequester(t *testing.T) {
	h := newHarness(t)
	events := h.must(street, raiseWithRequester())
	raised := events[0].(WhistleRaised)
	if raised.Requester == nil || raised.Requester.KeyID != sealedRequester().KeyID || string(raised.Requester.Ciphertext) != string(sealedRequester().Ciphertext) {
		t.Fatalf("WhistleRaised carries %+v", raised.Requester)
	}
	if h.c.Requester == nil || h.c.RequesterForgotten {
		t.Fatalf("case requester %+v, forgotten %v", h.c.Requester, h.c.RequesterForgotten)
	}
	// The case's own JSON (every answer's base) holds nothing of it.
	b, _ := json.Marshal(h.c)
	if strings.Contains(string(b), "requester") || strings.Contains(string(b), "ciphertext") {
		t.Fatalf("case JSON shows the sealed requester: %s", b)
	}
	// The ciphertext is in the hash chain: changing it breaks the chain.
	var data map[string]any
	if err := json.Unmarshal(h.history[0].Data, &data); err != nil {
		t.Fatal(err)
	}
	data["requester"].(map[string]any)["ciphertext"] = "AAAA"
	tampered := append([]Envelope(nil), h.history...)
	tampered[0].Data, _ = json.Marshal(data)
	if err := VerifyChain(tampered); err == nil {
		t.Fatal("a changed ciphertext leaves the chain whole")
	}

	for _, bad := range []*SealedRequester{{KeyID: "", Ciphertext: []byte{1}}, {KeyID: "k"}, {KeyID: "k", Ciphertext: make([]byte, MaxSealedRequester+1)}} {
		r := raiseOf(catIssue, UrgencyRoutine)
		r.Requester = bad
		newHarness(t).refused(street, r, ErrInvalidValue, "requester", "sealed requester")
	}
}

func TestRevealAndForgetRules(t *testing.T) {
	reveal, forget := RevealRequester{}, ForgetRequester{Reason: "the resident asked to be forgotten (PIPL art. 47)"}
	runScenario(t, []step{
		{name: "raise", actor: street, cmd: raiseWithRequester(), want: typesRaisedIssue},
		{name: "reveal by the street", actor: street, cmd: reveal, want: one(TypeRequesterRevealed),
			check: func(t *testing.T, h *harness, events []Event) {
				if e := events[0].(RequesterRevealed); e.KeyID != sealedRequester().KeyID {
					t.Fatalf("revealed %+v", e)
				}
			}},
		{name: "reveal by another street", actor: otherStreet, cmd: reveal, err: ErrNotYours, why: "belongs to street"},
		{name: "reveal by the lead", actor: ecology, cmd: reveal, err: ErrNotYours, why: "only the case's street may reveal"},
		{name: "reveal by an auditor", actor: auditor, cmd: reveal, err: ErrNotYours, why: "only the case's street may reveal"},
		{name: "forget by the lead", actor: ecology, cmd: forget, err: ErrNotYours, why: "street or an auditor"},
		{name: "forget by another street", actor: otherStreet, cmd: forget, err: ErrNotYours, why: "belongs to street"},
		{name: "forget without a reason", actor: street, cmd: ForgetRequester{Reason: "  "}, err: ErrInvalidValue, field: "reason", why: "reason is required"},
		{name: "forget too long a reason", actor: street, cmd: ForgetRequester{Reason: strings.Repeat("x", MaxText+1)}, err: ErrInvalidValue, field: "reason", why: "at most"},
		{name: "the case goes on", actor: ecology, cmd: Report{Assignee: "ecology-bureau"}, want: one(TypeAssignmentReported)},
		{name: "forget by an auditor", actor: auditor, cmd: forget, want: one(TypeRequesterForgotten), status: StatusInProgress,
			check: func(t *testing.T, h *harness, events []Event) {
				if e := events[0].(RequesterForgotten); e.KeyID != sealedRequester().KeyID || e.Reason != forget.Reason {
					t.Fatalf("forgotten %+v", e)
				}
				if !h.c.RequesterForgotten {
					t.Fatal("the case does not know its requester is forgotten")
				}
			}},
		{name: "reveal once forgotten", actor: street, cmd: reveal, err: ErrRequesterForgotten, why: "was forgotten"},
		{name: "forget twice", actor: street, cmd: forget, err: ErrInvalidTransition, why: "was forgotten"},
		{name: "auditors still only read", actor: auditor, cmd: Verify{Accepted: true}, err: ErrNotYours, why: "auditors only read"},
	})

	// Without a requester there is nothing to reveal or forget.
	runScenario(t, []step{
		{actor: street, cmd: raiseOf(catIssue, UrgencyRoutine), want: typesRaisedIssue},
		{actor: street, cmd: reveal, err: ErrInvalidTransition, why: "has no requester"},
		{actor: auditor, cmd: forget, err: ErrInvalidTransition, why: "has no requester"},
	})

	// A closed case is still called back and may be forgotten later.
	runScenario(t, []step{
		{actor: street, cmd: raiseWithRequester(), want: typesRaisedIssue},
		{actor: ecology, cmd: Report{Assignee: "ecology-bureau"}, want: one(TypeAssignmentReported)},
		{actor: ecology, cmd: Resolve{Assignee: "ecology-bureau"}, want: one(TypeAssignmentResolved)},
		{actor: street, cmd: Verify{Accepted: true}, want: typesClose, status: StatusClosed},
		{actor: street, cmd: reveal, want: one(TypeRequesterRevealed), status: StatusClosed},
		{actor: street, cmd: forget, want: one(TypeRequesterForgotten), status: StatusClosed},
	})

	// On a case not raised: no such case, whoever asks.
	for _, actor := range []Actor{street, auditor} {
		err := Authorize(nil, actor, forget)
		checkRefusal(t, err, ErrNoCase, "", "no such case")
	}
	if _, err := Decide(NewCase("x"), reveal, testDirectory(t), t0); !errors.Is(err, ErrNoCase) {
		t.Fatalf("reveal on a case not raised: %v", err)
	}
}

func TestRequesterEventsDecode(t *testing.T) {
	for _, e := range []Event{RequesterRevealed{KeyID: "k"}, RequesterForgotten{KeyID: "k", Reason: "asked"}, WhistleRaised{Requester: sealedRequester()}} {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeEvent(e.EventType(), b)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := json.Marshal(got)
		if string(again) != string(b) {
			t.Fatalf("%s decodes to %s, was %s", e.EventType(), again, b)
		}
	}
}
