package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func shaOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func photo(by Actor, content string) AddAttachment {
	return AddAttachment{SHA256: shaOf(content), Name: "现场.jpg", Type: MediaJPEG, Size: int64(len(content)), By: by}
}

func TestAttachmentsAndEvidence(t *testing.T) {
	outfall, afterPhoto := shaOf("outfall"), shaOf("after")
	h := runScenario(t, []step{
		{name: "raise", actor: street, cmd: raiseOf(catIssue, UrgencyRoutine), want: typesRaisedIssue},
		{name: "the street adds a photo", actor: street, cmd: photo(street, "outfall"), want: one(TypeAttachmentAdded), status: StatusRouted,
			check: func(t *testing.T, h *harness, events []Event) {
				ev := events[0].(AttachmentAdded)
				if ev.SHA256 != outfall || ev.By != street || ev.Type != MediaJPEG || ev.Size != 7 || ev.Name != "现场.jpg" {
					t.Fatalf("AttachmentAdded = %+v", ev)
				}
				if !h.c.HasAttachment(outfall) || len(h.c.Attachments) != 1 {
					t.Fatalf("attachments = %+v", h.c.Attachments)
				}
				// The same bytes again (a retry, the same photo twice) record nothing.
				if again, err := h.exec(street, photo(street, "outfall")); err != nil || len(again) != 0 || len(h.c.Attachments) != 1 {
					t.Fatalf("the same photo again: events %v, err %v, attachments %d", eventTypes(again), err, len(h.c.Attachments))
				}
			}},
		{name: "another street", actor: otherStreet, cmd: photo(otherStreet, "x"), err: ErrNotYours, why: "only the case's street and its assignees"},
		{name: "an auditor", actor: auditor, cmd: photo(auditor, "x"), err: ErrNotYours, why: "auditors only read"},
		{name: "a department not involved", actor: urban, cmd: photo(urban, "x"), err: ErrNotYours},
		{name: "in another's name", actor: ecology, cmd: photo(street, "x"), err: ErrNotYours, why: "in its own name"},
		{name: "a bad sha256", actor: ecology, cmd: AddAttachment{SHA256: "ABC", Name: "a.png", Type: MediaPNG, Size: 1, By: ecology},
			err: ErrInvalidValue, field: "sha256"},
		{name: "a path for a name", actor: ecology, cmd: AddAttachment{SHA256: afterPhoto, Name: "../etc/passwd", Type: MediaPNG, Size: 1, By: ecology},
			err: ErrInvalidValue, field: "name", why: "not a path"},
		{name: "a control character in a name", actor: ecology, cmd: AddAttachment{SHA256: afterPhoto, Name: "a\x1b[31m.png", Type: MediaPNG, Size: 1, By: ecology},
			err: ErrInvalidValue, field: "name"},
		{name: "no name", actor: ecology, cmd: AddAttachment{SHA256: afterPhoto, Name: " ", Type: MediaPNG, Size: 1, By: ecology},
			err: ErrInvalidValue, field: "name"},
		{name: "a gif", actor: ecology, cmd: AddAttachment{SHA256: afterPhoto, Name: "a.gif", Type: "image/gif", Size: 1, By: ecology},
			err: ErrInvalidValue, field: "type"},
		{name: "too big", actor: ecology, cmd: AddAttachment{SHA256: afterPhoto, Name: "a.pdf", Type: MediaPDF, Size: MaxAttachmentSize + 1, By: ecology},
			err: ErrInvalidValue, field: "size"},
		{name: "the lead reports in", actor: ecology, cmd: Report{Assignee: "ecology-bureau"}, want: one(TypeAssignmentReported)},
		{name: "evidence not attached", actor: ecology, cmd: Resolve{Assignee: "ecology-bureau", Evidence: []string{afterPhoto}},
			err: ErrInvalidValue, field: "evidence[0]", why: "not an attachment of this case"},
		{name: "evidence that is no sha256", actor: ecology, cmd: Resolve{Assignee: "ecology-bureau", Evidence: []string{"photo.jpg"}},
			err: ErrInvalidValue, field: "evidence[0]", why: "sha256"},
		{name: "the lead adds its photo", actor: ecology, cmd: photo(ecology, "after"), want: one(TypeAttachmentAdded)},
		{name: "evidence named twice", actor: ecology, cmd: Resolve{Assignee: "ecology-bureau", Evidence: []string{afterPhoto, afterPhoto}},
			err: ErrInvalidValue, field: "evidence[1]", why: "twice"},
		{name: "the lead resolves with evidence", actor: ecology, cmd: Resolve{Assignee: "ecology-bureau", Evidence: []string{afterPhoto, outfall}},
			want: one(TypeAssignmentResolved), status: StatusResolved,
			check: func(t *testing.T, h *harness, events []Event) {
				if ev := events[0].(AssignmentResolved); strings.Join(ev.Evidence, ",") != afterPhoto+","+outfall {
					t.Fatalf("AssignmentResolved = %+v", ev)
				}
			}},
		{name: "verify with evidence not attached", actor: street, cmd: Verify{Accepted: true, Evidence: []string{shaOf("nope")}},
			err: ErrInvalidValue, field: "evidence[0]"},
		{name: "reject with evidence", actor: street, cmd: Verify{Accepted: false, Evidence: []string{outfall}},
			want: one(TypeResolutionRejected), status: StatusInProgress,
			check: func(t *testing.T, h *harness, events []Event) {
				if ev := events[0].(ResolutionRejected); len(ev.Evidence) != 1 || ev.Evidence[0] != outfall {
					t.Fatalf("ResolutionRejected = %+v", ev)
				}
			}},
		{name: "resolve again", actor: ecology, cmd: Resolve{Assignee: "ecology-bureau"}, want: one(TypeAssignmentResolved)},
		{name: "verify with evidence", actor: street, cmd: Verify{Accepted: true, Evidence: []string{afterPhoto}}, want: typesClose, status: StatusClosed,
			check: func(t *testing.T, h *harness, events []Event) {
				if ev := events[0].(ResolutionVerified); len(ev.Evidence) != 1 || ev.Evidence[0] != afterPhoto {
					t.Fatalf("ResolutionVerified = %+v", ev)
				}
			}},
		{name: "a closed case takes no attachment", actor: street, cmd: photo(street, "late"), err: ErrInvalidTransition, why: "closed"},
	})
	// The attachments survive a replay of the history, as any read rebuilds them.
	replayed, err := Replay(h.c.ID, h.history)
	if err != nil {
		t.Fatal(err)
	}
	if len(replayed.Attachments) != 2 || replayed.Attachments[0].SHA256 != outfall || replayed.Attachments[1].By != ecology {
		t.Fatalf("replayed attachments = %+v", replayed.Attachments)
	}
	if c := replayed.Clone(); &c.Attachments[0] == &replayed.Attachments[0] {
		t.Fatal("Clone shares the attachments")
	}
}

func TestAttachmentLimitPerCase(t *testing.T) {
	h := raised(t, catIssue, UrgencyRoutine)
	for i := range MaxAttachments {
		h.must(street, photo(street, strings.Repeat("x", i+1)))
	}
	h.refused(street, photo(street, "one more"), ErrInvalidTransition, "", "already holds 100 attachments")
}

func TestCheckEvidence(t *testing.T) {
	c := NewCase("c1")
	c.Attachments = []Attachment{{SHA256: shaOf("a")}}
	for _, tc := range []struct {
		name     string
		evidence []string
		field    string
	}{
		{"none", nil, ""},
		{"an attachment", []string{shaOf("a")}, ""},
		{"upper case", []string{strings.ToUpper(shaOf("a"))}, "evidence[0]"},
		{"another case's", []string{shaOf("a"), shaOf("b")}, "evidence[1]"},
		{"too many", make([]string, MaxAttachments+1), "evidence"},
	} {
		err := CheckEvidence(c, tc.evidence)
		var r *Refusal
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.field != "" && (!errors.As(err, &r) || r.Field != tc.field || !errors.Is(err, ErrInvalidValue)):
			t.Errorf("%s: got %v, want a refusal of %s", tc.name, err, tc.field)
		}
	}
	if (*Case)(nil).HasAttachment(shaOf("a")) {
		t.Fatal("a nil case has attachments")
	}
}
