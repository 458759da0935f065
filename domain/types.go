// Package domain is whistle's case aggregate: events, commands, the pure
// decision and evolution functions, routing and SLA policy. It does no I/O,
// logs nothing and reads no clock: callers pass `now`.
package domain

import (
	"fmt"
	"strings"
)

// Kind is what sort of case a category raises.
type Kind string

// The kinds of case.
const (
	KindIssue   Kind = "issue"
	KindDispute Kind = "dispute"
	KindNeed    Kind = "need"
)

// ParseKind accepts only a known kind.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(s); k {
	case KindIssue, KindDispute, KindNeed:
		return k, nil
	}
	return "", fmt.Errorf("unknown kind %q (want issue, dispute or need)", s)
}

// Urgency sets a case's deadlines.
type Urgency string

// The urgencies.
const (
	UrgencyRoutine   Urgency = "routine"
	UrgencyUrgent    Urgency = "urgent"
	UrgencyEmergency Urgency = "emergency"
)

// Urgencies lists every urgency, least pressing first.
func Urgencies() []Urgency { return []Urgency{UrgencyRoutine, UrgencyUrgent, UrgencyEmergency} }

// ParseUrgency accepts only a known urgency.
func ParseUrgency(s string) (Urgency, error) {
	for _, u := range Urgencies() {
		if string(u) == s {
			return u, nil
		}
	}
	return "", fmt.Errorf("unknown urgency %q (want routine, urgent or emergency)", s)
}

// Rating is a resident's verdict on a closed case.
type Rating string

// The ratings.
const (
	RatingSatisfied          Rating = "satisfied"
	RatingBasicallySatisfied Rating = "basically_satisfied"
	RatingUnsatisfied        Rating = "unsatisfied"
)

// Ratings lists every rating.
func Ratings() []Rating {
	return []Rating{RatingSatisfied, RatingBasicallySatisfied, RatingUnsatisfied}
}

// ParseRating accepts only a known rating.
func ParseRating(s string) (Rating, error) {
	for _, r := range Ratings() {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("unknown rating %q (want satisfied, basically_satisfied or unsatisfied)", s)
}

// Mediation is the outcome of a dispute.
type Mediation string

// The outcomes of a mediation.
const (
	MediationSuccess Mediation = "success"
	MediationFailure Mediation = "failure"
)

// ParseMediation accepts only a known outcome.
func ParseMediation(s string) (Mediation, error) {
	switch m := Mediation(s); m {
	case MediationSuccess, MediationFailure:
		return m, nil
	}
	return "", fmt.Errorf("unknown mediation outcome %q (want success or failure)", s)
}

// Role is an assignment's part in a case.
type Role string

// The roles of an assignment. An offer is a need offered to a unit; it is not
// an assignment until claimed.
const (
	RoleLead   Role = "lead"
	RoleAssist Role = "assist"
	RoleOffer  Role = "offer"
)

// AssignmentStatus is where an assignment stands.
type AssignmentStatus string

// The statuses of an assignment.
const (
	Assigned AssignmentStatus = "assigned"
	Reported AssignmentStatus = "reported"
	Resolved AssignmentStatus = "resolved"
	Declined AssignmentStatus = "declined"
	Lapsed   AssignmentStatus = "lapsed"
)

// Status is where a case stands.
type Status string

// The statuses of a case.
const (
	StatusRouted     Status = "routed"
	StatusInProgress Status = "in_progress"
	StatusResolved   Status = "resolved"
	StatusClosed     Status = "closed"
	StatusUnassigned Status = "unassigned"
)

// ParseStatus accepts only a known case status.
func ParseStatus(s string) (Status, error) {
	switch st := Status(s); st {
	case StatusRouted, StatusInProgress, StatusResolved, StatusClosed, StatusUnassigned, StatusReceived, StatusReturned:
		return st, nil
	}
	return "", fmt.Errorf("unknown status %q (want routed, in_progress, resolved, closed, unassigned, received or returned)", s)
}

// Deadline names which deadline an assignment missed.
type Deadline string

// The deadlines of an assignment.
const (
	DeadlineReport  Deadline = "report"
	DeadlineResolve Deadline = "resolve"
)

// ActorRole is who acts: a street, a department, a unit, an auditor, a
// platform that sends tickets, a district over streets, or the system itself
// (the SLA watcher).
type ActorRole string

// The roles of actors.
const (
	ActorStreet     ActorRole = "street"
	ActorDepartment ActorRole = "department"
	ActorUnit       ActorRole = "unit"
	ActorAuditor    ActorRole = "auditor"
	// ActorPlatform is an upstream system (the 12345 hotline...): it sends
	// tickets and receives replies.
	ActorPlatform ActorRole = "platform"
	// ActorDistrict is the district office above streets. It is neither a
	// street nor an assignee, so it can act as neither.
	ActorDistrict ActorRole = "district"
	ActorSystem   ActorRole = "system"
)

// ParsePrincipalRole accepts the roles a principal may hold (not system).
func ParsePrincipalRole(s string) (ActorRole, error) {
	switch r := ActorRole(s); r {
	case ActorStreet, ActorDepartment, ActorUnit, ActorAuditor, ActorPlatform, ActorDistrict:
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q (want street, department, unit, auditor, platform or district)", s)
}

// Actor is who issued a command.
type Actor struct {
	Role ActorRole `json:"role"`
	ID   string    `json:"id"`
}

func (a Actor) String() string { return string(a.Role) + ":" + a.ID }

// IsAssignee tells whether the actor can hold assignments.
func (a Actor) IsAssignee() bool { return a.Role == ActorDepartment || a.Role == ActorUnit }

// Location is where a case is. Lat and Lon are optional.
type Location struct {
	Address string   `json:"address,omitempty"`
	Lat     *float64 `json:"lat,omitempty"`
	Lon     *float64 `json:"lon,omitempty"`
}

func blank(s string) bool { return strings.TrimSpace(s) == "" }
