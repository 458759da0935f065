package domain

import (
	"errors"
	"strings"
	"testing"
)

// wantRefusal checks err against a table row: nil when kind is nil, else a
// *Refusal wrapping kind, naming field, whose reason says each of says.
func wantRefusal(t *testing.T, name string, err, kind error, field string, says ...string) {
	t.Helper()
	if kind == nil {
		if err != nil {
			t.Errorf("%s: refused: %v", name, err)
		}
		return
	}
	var r *Refusal
	if !errors.As(err, &r) || !errors.Is(err, kind) {
		t.Errorf("%s: got %v, want a refusal wrapping %v", name, err, kind)
		return
	}
	if r.Field != field {
		t.Errorf("%s: field %q, want %q (%s)", name, r.Field, field, r.Reason)
	}
	for _, s := range says {
		if !strings.Contains(r.Reason, s) {
			t.Errorf("%s: reason %q does not say %q", name, r.Reason, s)
		}
	}
}

func TestAuthorizeCaseRead(t *testing.T) {
	h := newHarness(t)
	h.must(street, Raise{Street: "longqiao", Community: "wanhui", Category: catIssue, Urgency: "routine", Title: "河道有异味"})
	for _, tc := range []struct {
		name  string
		actor Actor
		err   error
	}{
		{"its street", street, nil},
		{"another street", otherStreet, ErrNotYours},
		{"the lead", ecology, nil},
		{"an assist", water, nil},
		{"a department not involved", judicial, ErrNotYours},
		{"a unit not involved", university, ErrNotYours},
		{"an auditor", auditor, nil},
		{"the system", system, ErrNotYours},
	} {
		wantRefusal(t, tc.name, AuthorizeCaseRead(tc.actor, h.c), tc.err, "", "street", "assignees", "auditors")
	}

	need := newHarness(t)
	need.must(street, Raise{Street: "longqiao", Community: "wanhui", Category: catNeed, Urgency: "routine", Title: "四点半课堂"})
	wantRefusal(t, "a unit offered a need", AuthorizeCaseRead(university, need.c), nil, "")
}

func TestScopeCaseList(t *testing.T) {
	for _, tc := range []struct {
		name  string
		actor Actor
		asked CaseListScope
		want  CaseListScope
		err   error
		field string
		says  []string
	}{
		{"an auditor, everything", auditor, CaseListScope{}, CaseListScope{}, nil, "", nil},
		{"an auditor, one street", auditor, CaseListScope{Street: "xindu"}, CaseListScope{Street: "xindu"}, nil, "", nil},
		{"an auditor, one assignee", auditor, CaseListScope{Assignee: "water-bureau"}, CaseListScope{Assignee: "water-bureau"}, nil, "", nil},
		{"a street, narrowed to itself", street, CaseListScope{}, CaseListScope{Street: "longqiao"}, nil, "", nil},
		{"a street naming itself", street, CaseListScope{Street: "longqiao"}, CaseListScope{Street: "longqiao"}, nil, "", nil},
		{"a street filtering by assignee", street, CaseListScope{Assignee: "water-bureau"}, CaseListScope{Street: "longqiao", Assignee: "water-bureau"}, nil, "", nil},
		{"a street naming another", street, CaseListScope{Street: "xindu"}, CaseListScope{}, ErrNotYours, "street", []string{"own cases", "longqiao"}},
		{"a department, narrowed to itself", water, CaseListScope{}, CaseListScope{Assignee: "water-bureau"}, nil, "", nil},
		{"a department filtering by street", water, CaseListScope{Street: "xindu"}, CaseListScope{Street: "xindu", Assignee: "water-bureau"}, nil, "", nil},
		{"a department naming another", water, CaseListScope{Assignee: "ecology-bureau"}, CaseListScope{}, ErrNotYours, "assignee", []string{"involved in", "water-bureau"}},
		{"a unit, narrowed to itself", university, CaseListScope{}, CaseListScope{Assignee: "putian-university"}, nil, "", nil},
		{"the system", system, CaseListScope{}, CaseListScope{}, ErrNotYours, "", []string{"may not list"}},
	} {
		got, err := ScopeCaseList(tc.actor, tc.asked)
		wantRefusal(t, tc.name, err, tc.err, tc.field, tc.says...)
		if tc.err == nil && got != tc.want {
			t.Errorf("%s: scope %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestDefaultFiguresGroup(t *testing.T) {
	for actor, want := range map[Actor]string{street: "street", auditor: "street", water: "assignee", university: "assignee"} {
		if got := DefaultFiguresGroup(actor); got != want {
			t.Errorf("%s: %q, want %q", actor, got, want)
		}
	}
}

func TestScopeFigures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		actor Actor
		req   FiguresRequest
		want  FiguresScope
		err   error
		field string
		says  []string
	}{
		{"an auditor by street", auditor, FiguresRequest{GroupBy: "street"}, FiguresScope{}, nil, "", nil},
		{"an auditor by assignee", auditor, FiguresRequest{GroupBy: "assignee"}, FiguresScope{}, nil, "", nil},
		{"an auditor, one street by category", auditor, FiguresRequest{GroupBy: "category", Street: "xindu"}, FiguresScope{Street: "xindu"}, nil, "", nil},
		{"an auditor, one street by day", auditor, FiguresRequest{GroupBy: "day", Street: "xindu"}, FiguresScope{Street: "xindu"}, nil, "", nil},
		{"an auditor, one street by assignee", auditor, FiguresRequest{GroupBy: "assignee", Street: "xindu"}, FiguresScope{}, ErrInvalidValue, "group_by",
			[]string{"xindu", "assignee", "not kept per street"}},
		{"an auditor as of a time", auditor, FiguresRequest{GroupBy: "street", AsOf: true}, FiguresScope{}, nil, "", nil},
		{"a street, narrowed to itself", street, FiguresRequest{GroupBy: "community"}, FiguresScope{Street: "longqiao"}, nil, "", nil},
		{"a street naming itself", street, FiguresRequest{GroupBy: "urgency", Street: "longqiao"}, FiguresScope{Street: "longqiao"}, nil, "", nil},
		{"a street naming another", street, FiguresRequest{GroupBy: "category", Street: "xindu"}, FiguresScope{}, ErrNotYours, "street",
			[]string{"longqiao", "xindu", "own"}},
		{"a street by assignee", street, FiguresRequest{GroupBy: "assignee"}, FiguresScope{}, ErrNotYours, "group_by", []string{"assignee", "other streets"}},
		{"a street as of a time", street, FiguresRequest{GroupBy: "street", AsOf: true}, FiguresScope{}, ErrNotYours, "as_of", []string{"auditors"}},
		{"a department by assignee", water, FiguresRequest{GroupBy: "assignee"}, FiguresScope{Assignee: "water-bureau"}, nil, "", nil},
		{"a unit by day", university, FiguresRequest{GroupBy: "day"}, FiguresScope{Assignee: "putian-university"}, nil, "", nil},
		{"a department naming a street", water, FiguresRequest{GroupBy: "assignee", Street: "longqiao"}, FiguresScope{}, ErrNotYours, "street", []string{"street="}},
		{"a department by category", water, FiguresRequest{GroupBy: "category"}, FiguresScope{}, ErrNotYours, "group_by", []string{"category"}},
		{"a unit by urgency", university, FiguresRequest{GroupBy: "urgency"}, FiguresScope{}, ErrNotYours, "group_by", []string{"urgency"}},
		{"a department as of a time", water, FiguresRequest{GroupBy: "assignee", AsOf: true}, FiguresScope{}, ErrNotYours, "as_of", []string{"auditors"}},
		{"the system", system, FiguresRequest{GroupBy: "street"}, FiguresScope{}, ErrNotYours, "", []string{"may not read the figures"}},
	} {
		got, err := ScopeFigures(tc.actor, tc.req)
		wantRefusal(t, tc.name, err, tc.err, tc.field, tc.says...)
		if tc.err == nil && got != tc.want {
			t.Errorf("%s: scope %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestAuthorizeQueueRead(t *testing.T) {
	dir := testDirectory(t)
	for _, tc := range []struct {
		name     string
		actor    Actor
		assignee string
		err      error
		says     []string
	}{
		{"the department itself", water, "water-bureau", nil, nil},
		{"the unit itself", university, "putian-university", nil, nil},
		{"another department", ecology, "water-bureau", ErrNotYours, []string{"water-bureau", "itself and auditors"}},
		{"a street", street, "water-bureau", ErrNotYours, []string{"water-bureau"}},
		{"an auditor", auditor, "water-bureau", nil, nil},
		{"an auditor, an unknown assignee", auditor, "atlantis-bureau", ErrNotFound, []string{"atlantis-bureau"}},
		{"a department, an unknown assignee", water, "atlantis-bureau", ErrNotYours, []string{"atlantis-bureau"}},
	} {
		wantRefusal(t, tc.name, AuthorizeQueueRead(tc.actor, tc.assignee, dir), tc.err, "", tc.says...)
	}
}

func TestScopeNotifications(t *testing.T) {
	dir := testDirectory(t)
	for _, tc := range []struct {
		name   string
		actor  Actor
		street string
		want   string
		err    error
		field  string
		says   []string
	}{
		{"a street, its own", street, "", "longqiao", nil, "", nil},
		{"a street naming itself", street, "longqiao", "longqiao", nil, "", nil},
		{"a street naming another", street, "xindu", "", ErrNotYours, "street", []string{"longqiao", "xindu"}},
		{"an auditor, every street", auditor, "", "", nil, "", nil},
		{"an auditor, one street", auditor, "xindu", "xindu", nil, "", nil},
		{"an auditor, an unknown street", auditor, "atlantis", "", ErrInvalidValue, "street", []string{"atlantis"}},
		{"a department", water, "", "", ErrNotYours, "", []string{"streets and auditors"}},
	} {
		got, err := ScopeNotifications(tc.actor, tc.street, dir)
		wantRefusal(t, tc.name, err, tc.err, tc.field, tc.says...)
		if tc.err == nil && got != tc.want {
			t.Errorf("%s: street %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestAuthorizeAuditRead(t *testing.T) {
	for _, read := range []AuditRead{ReadLog, ReadModelsSnapshot} {
		wantRefusal(t, read.what+" by an auditor", AuthorizeAuditRead(auditor, read), nil, "")
		for _, actor := range []Actor{street, water, university, system} {
			wantRefusal(t, read.what+" by "+actor.String(), AuthorizeAuditRead(actor, read), ErrNotYours, "", read.what, "for auditors")
		}
	}
}
