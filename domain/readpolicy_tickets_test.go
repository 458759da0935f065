package domain

import "testing"

func TestAuthorizeTicketCaseRead(t *testing.T) {
	h := newHarness(t)
	h.must(platform, ticketOf("T-1"))
	raisedCase := raised(t, catIssue, UrgencyRoutine)
	otherPlatform := Actor{Role: ActorPlatform, ID: "city-management"}
	for _, tc := range []struct {
		name  string
		actor Actor
		c     *Case
		err   error
	}{
		{"the platform that sent it", platform, h.c, nil},
		{"another platform", otherPlatform, h.c, ErrNotYours},
		{"a platform, a case its street raised", platform, raisedCase.c, ErrNotYours},
		{"the street it was sent to", street, h.c, nil},
		{"another street", otherStreet, h.c, ErrNotYours},
		{"an auditor", auditor, h.c, nil},
	} {
		wantRefusal(t, tc.name, AuthorizeCaseRead(tc.actor, tc.c), tc.err, "", "platform that sent it")
	}
}

func TestScopeCaseListOfAPlatform(t *testing.T) {
	for _, tc := range []struct {
		name  string
		asked CaseListScope
	}{
		{"nothing asked", CaseListScope{}},
		{"another platform asked", CaseListScope{Platform: "city-management"}},
		{"a street asked", CaseListScope{Street: "longqiao"}},
	} {
		got, err := ScopeCaseList(platform, tc.asked)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got.Platform != "hotline-12345" {
			t.Errorf("%s: narrowed to platform %q, want its own", tc.name, got.Platform)
		}
	}
}

func TestAuthorizeOutboxRead(t *testing.T) {
	dir := testDirectory(t)
	for _, tc := range []struct {
		name     string
		actor    Actor
		platform string
		err      error
	}{
		{"itself", platform, "hotline-12345", nil},
		{"another platform's", Actor{Role: ActorPlatform, ID: "city-management"}, "hotline-12345", ErrNotYours},
		{"a street", street, "hotline-12345", ErrNotYours},
		{"a district", district, "hotline-12345", ErrNotYours},
		{"a department", ecology, "hotline-12345", ErrNotYours},
		{"an auditor", auditor, "hotline-12345", nil},
		{"an auditor, an unknown platform", auditor, "nowhere", ErrNotFound},
	} {
		wantRefusal(t, tc.name, AuthorizeOutboxRead(tc.actor, tc.platform, dir), tc.err, "")
	}
}

func TestAuthorizeInboxRead(t *testing.T) {
	dir := testDirectory(t)
	for _, tc := range []struct {
		name   string
		actor  Actor
		street string
		err    error
	}{
		{"itself", street, "longqiao", nil},
		{"another street", otherStreet, "longqiao", ErrNotYours},
		{"its district", district, "longqiao", nil},
		{"a district not over it", district, "xindu", ErrNotYours},
		{"a platform", platform, "longqiao", ErrNotYours},
		{"an auditor", auditor, "longqiao", nil},
		{"an auditor, an unknown street", auditor, "nowhere", ErrNotFound},
		{"a street, an unknown street", street, "nowhere", ErrNotYours},
	} {
		wantRefusal(t, tc.name, AuthorizeInboxRead(tc.actor, tc.street, dir), tc.err, "")
	}
}
