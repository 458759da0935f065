package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

var resident = Actor{Role: ActorResident, ID: "link"}

func tokenHash(token string) string {
	s := sha256.Sum256([]byte(token))
	return hex.EncodeToString(s[:])
}

func raiseWithReceipt() Raise {
	r := raiseWithRequester()
	r.Receipt = &Receipt{CaseNo: "20260302-0001", TokenSHA256: tokenHash("first")}
	return r
}

var typesSecondRound = []string{TypeResidentRated, TypeSecondRoundOpened}

// TestResidentRatingAndSecondRound: the resident rates through the link
// only once the case is closed, once per round; unsatisfied reopens the
// case for a second round (the lead back to reported, resolve_by from
// second_round_within on the calendar); a reissued link replaces the old.
func TestResidentRatingAndSecondRound(t *testing.T) {
	first, second := tokenHash("first"), tokenHash("second")
	// t0 is Monday 17:00 in Shanghai; the rating at 18:00 is after work, so
	// three working days end on Thursday at 17:30 (09:30 UTC).
	wantResolveBy := time.Date(2026, 3, 5, 9, 30, 0, 0, time.UTC)
	runScenario(t, []step{
		{name: "raise", actor: street, cmd: raiseWithReceipt(), want: typesRaisedIssue,
			check: func(t *testing.T, h *harness, _ []Event) {
				if h.c.Receipt == nil || h.c.Receipt.CaseNo != "20260302-0001" || !h.c.ReceiptMatches(first) {
					t.Fatalf("receipt %+v", h.c.Receipt)
				}
				if b, _ := json.Marshal(h.c); strings.Contains(string(b), first) {
					t.Fatalf("the case's JSON shows the token hash: %s", b)
				}
			}},
		{name: "rate before closure", actor: resident, cmd: RateByResident{TokenSHA256: first, Rating: "satisfied"}, err: ErrInvalidTransition, why: "once it is closed"},
		{name: "a wrong link", actor: resident, cmd: RateByResident{TokenSHA256: tokenHash("guess"), Rating: "satisfied"}, err: ErrNoCase, why: "no such receipt"},
		{name: "a street posing as the resident", actor: street, cmd: RateByResident{TokenSHA256: first, Rating: "satisfied"}, err: ErrNoCase, why: "no such receipt"},
		{name: "report", actor: ecology, cmd: Report{Assignee: "ecology-bureau"}, want: one(TypeAssignmentReported)},
		{name: "resolve", actor: ecology, cmd: Resolve{Assignee: "ecology-bureau"}, want: one(TypeAssignmentResolved), status: StatusResolved},
		{name: "verify", actor: street, cmd: Verify{Accepted: true}, want: typesClose, status: StatusClosed},
		{name: "reissue by another street", actor: otherStreet, cmd: IssueReceipt{TokenSHA256: second}, err: ErrNotYours, why: "belongs to street"},
		{name: "reissue with a bad hash", actor: street, cmd: IssueReceipt{TokenSHA256: "abc"}, err: ErrInvalidValue, field: "receipt.token_sha256", why: "64 hex"},
		{name: "reissue", actor: street, cmd: IssueReceipt{CaseNo: "ignored", TokenSHA256: second}, want: one(TypeReceiptIssued), status: StatusClosed,
			check: func(t *testing.T, h *harness, _ []Event) {
				if h.c.Receipt.CaseNo != "20260302-0001" || h.c.ReceiptMatches(first) || !h.c.ReceiptMatches(second) {
					t.Fatalf("after reissue: %+v", h.c.Receipt)
				}
			}},
		{name: "the old link is dead", actor: resident, cmd: RateByResident{TokenSHA256: first, Rating: "satisfied"}, err: ErrNoCase, why: "no such receipt"},
		{name: "an unknown rating", actor: resident, cmd: RateByResident{TokenSHA256: second, Rating: "meh"}, err: ErrInvalidValue, field: "rating", why: "unknown rating"},
		{name: "too long a comment", actor: resident, cmd: RateByResident{TokenSHA256: second, Rating: "satisfied", Comment: strings.Repeat("好", MaxResidentComment+1)}, err: ErrInvalidValue, field: "comment", why: "at most"},
		{name: "a comment not sealed", actor: resident, cmd: RateByResident{TokenSHA256: second, Rating: "satisfied", Comment: "call me on 13800138000"}, err: ErrInvalidValue, field: "comment", why: "only sealed"},
		{name: "a sealed comment without its key", actor: resident, cmd: RateByResident{TokenSHA256: second, Rating: "satisfied", Comment: "x", SealedComment: &SealedText{Ciphertext: []byte{1}}}, err: ErrInvalidValue, field: "comment", why: "names its key"},
		{name: "unsatisfied", at: time.Hour, actor: resident, cmd: RateByResident{TokenSHA256: second, Rating: "unsatisfied", Comment: "still smells", SealedComment: &SealedText{KeyID: "k", Ciphertext: []byte("sealed")}}, want: typesSecondRound, status: StatusInProgress,
			check: func(t *testing.T, h *harness, events []Event) {
				if e := events[0].(ResidentRated); e.Comment != "" || e.CommentSealed == nil || string(e.CommentSealed.Ciphertext) != "sealed" {
					t.Fatalf("the event keeps the comment %+v", e)
				}
				if rr := h.c.ResidentRating; rr.Comment != "" || rr.CommentSealed == nil {
					t.Fatalf("the case keeps the comment %+v", rr)
				}
				if e := events[1].(SecondRoundOpened); !e.ResolveBy.Equal(wantResolveBy) || len(e.Leads) != 1 || e.Leads[0] != "ecology-bureau" {
					t.Fatalf("second round %+v, want resolve_by %s for the lead", e, wantResolveBy)
				}
				a := h.assignment("ecology-bureau")
				if a.Status != Reported || !sameTime(a.ResolveBy, wantResolveBy) || a.ResolvedAt != nil {
					t.Fatalf("lead after the second round opened: %+v", a)
				}
				if !h.c.SecondRound || h.c.ClosedAt != nil || h.c.Round() != 2 || *h.c.Rating != RatingUnsatisfied {
					t.Fatalf("case %s", snapshot(t, h.c))
				}
				if w := h.assignment("water-bureau"); w.Status != Assigned {
					t.Fatalf("the assist is moved by a second round: %+v", w)
				}
			}},
		{name: "rate while reopened", actor: resident, cmd: RateByResident{TokenSHA256: second, Rating: "satisfied"}, err: ErrInvalidTransition, why: "once it is closed"},
		{name: "the deadline passes", at: 4 * 24 * time.Hour, actor: system, cmd: CheckDeadlines{},
			// The lead's new resolve_by, and the assist's report and resolve
			// deadlines of the first round, each marked and escalated twice.
			want: []string{TypeAssignmentOverdue, TypeCaseEscalated, TypeCaseEscalated, TypeAssignmentOverdue, TypeCaseEscalated, TypeCaseEscalated, TypeAssignmentOverdue, TypeCaseEscalated, TypeCaseEscalated},
			check: func(t *testing.T, h *harness, events []Event) {
				for _, e := range events {
					if o, ok := e.(AssignmentOverdue); ok && o.Assignee == "ecology-bureau" && (o.Deadline != DeadlineResolve || !o.Due.Equal(wantResolveBy)) {
						t.Fatalf("the lead is overdue for %+v, want the second round's resolve_by", o)
					}
				}
			}},
		{name: "resolve again", actor: ecology, cmd: Resolve{Assignee: "ecology-bureau"}, want: one(TypeAssignmentResolved), status: StatusResolved},
		{name: "verify again", actor: street, cmd: Verify{Accepted: true}, want: typesClose, status: StatusClosed},
		{name: "unsatisfied again: no third round", actor: resident, cmd: RateByResident{TokenSHA256: second, Rating: "unsatisfied"}, want: one(TypeResidentRated), status: StatusClosed},
		{name: "a rating is once per round", actor: resident, cmd: RateByResident{TokenSHA256: second, Rating: "satisfied"}, err: ErrInvalidTransition, why: "already rated"},
	})
}

// TestResidentRatingWindow: the link rates within ResidentRatingWithin of
// closure.
func TestResidentRatingWindow(t *testing.T) {
	h := newHarness(t)
	h.must(street, raiseWithReceipt())
	h.must(ecology, Report{Assignee: "ecology-bureau"})
	h.must(ecology, Resolve{Assignee: "ecology-bureau"})
	h.must(street, Verify{Accepted: true})
	h.at(ResidentRatingWithin + time.Minute)
	h.refused(resident, RateByResident{TokenSHA256: tokenHash("first"), Rating: "satisfied"}, ErrInvalidTransition, "", "within 15 days")
	h.at(ResidentRatingWithin - time.Minute)
	h.must(resident, RateByResident{TokenSHA256: tokenHash("first"), Rating: "satisfied"})
}

func TestRaiseRefusesABadReceipt(t *testing.T) {
	for _, bad := range []*Receipt{
		{CaseNo: "", TokenSHA256: tokenHash("x")},
		{CaseNo: strings.Repeat("1", MaxCaseNo+1), TokenSHA256: tokenHash("x")},
	} {
		r := raiseOf(catIssue, UrgencyRoutine)
		r.Receipt = bad
		newHarness(t).refused(street, r, ErrInvalidValue, "receipt.case_no", "case number")
	}
	r := raiseOf(catIssue, UrgencyRoutine)
	r.Receipt = &Receipt{CaseNo: "1", TokenSHA256: "zz"}
	newHarness(t).refused(street, r, ErrInvalidValue, "receipt.token_sha256", "64 hex")
}
