package domain

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Sentinel errors that callers branch on; a *Refusal wraps one of them.
var (
	// ErrInvalidTransition: the command does not apply to the case as it is.
	ErrInvalidTransition = errors.New("invalid transition")
	// ErrInvalidValue: a value of the command is not acceptable.
	ErrInvalidValue = errors.New("invalid value")
	// ErrNotYours: the actor may not do this to this case.
	ErrNotYours = errors.New("not yours")
	// ErrNoCase: the case has not been raised.
	ErrNoCase = errors.New("no such case")
	// ErrNotFound: something a read names other than a case (a department,
	// a unit) does not exist.
	ErrNotFound = errors.New("not found")
)

// Refusal is why a command was refused. Field names the offending field of
// the command, when there is one.
type Refusal struct {
	Err    error
	Field  string
	Reason string
}

func (r *Refusal) Error() string { return r.Reason }
func (r *Refusal) Unwrap() error { return r.Err }

func refuse(kind error, field, format string, args ...any) *Refusal {
	return &Refusal{Err: kind, Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Limits on free text, so one case cannot grow without bound.
const (
	MaxTitle = 200
	MaxText  = 4000
)

// Command is something an actor asks of a case.
type Command interface{ CommandName() string }

// Raise blows the whistle: a new case.
type Raise struct {
	Street, Community, Category, Urgency, Title, Description string
	Location                                                 *Location
	RequestSHA256                                            string
	// Requester is sealed by the caller before Decide (see SealedRequester).
	Requester *SealedRequester
	// Receipt: the case number and the link's token hash (the caller
	// allocates the number and draws the token).
	Receipt *Receipt
}

// Report: an assignee reports in.
type Report struct{ Assignee, Note string }

// NoteProgress: an assignee notes progress.
type NoteProgress struct{ Assignee, Note string }

// Resolve: an assignee has done its part. Mediation is required for disputes.
// Evidence names attachments of the case (their sha256) that show the work.
type Resolve struct {
	Assignee, Note, Mediation string
	Evidence                  []string
}

// Decline: an assignee gives its part back to the street.
type Decline struct{ Assignee, Reason, Suggest string }

// Claim: a unit takes a need offered to it.
type Claim struct{ Assignee, Note string }

// Route: the street assigns by hand.
type Route struct {
	Lead   string
	Assist []string
}

// Verify: the street accepts or rejects the resolution. Reply, the answer
// a ticket's platform is owed, is required to accept a ticket's case.
type Verify struct {
	Accepted bool
	Note     string
	Reply    string
	// Evidence names attachments of the case (their sha256) the street
	// verified against.
	Evidence []string
}

// Rate: the street records the resident's rating.
type Rate struct{ Rating string }

// CheckDeadlines: the SLA watcher asks for whatever overdue marks and
// escalations are due at `now`.
type CheckDeadlines struct{}

func (Raise) CommandName() string          { return "raise" }
func (Report) CommandName() string         { return "report" }
func (NoteProgress) CommandName() string   { return "progress" }
func (Resolve) CommandName() string        { return "resolve" }
func (Decline) CommandName() string        { return "decline" }
func (Claim) CommandName() string          { return "claim" }
func (Route) CommandName() string          { return "route" }
func (Verify) CommandName() string         { return "verify" }
func (Rate) CommandName() string           { return "rate" }
func (CheckDeadlines) CommandName() string { return "check_deadlines" }

// Authorize tells whether actor may issue cmd on c (nil c: not yet raised).
// It returns a *Refusal wrapping ErrNotYours (ErrNoCase when a command other
// than Raise names a case not raised), or nil.
func Authorize(c *Case, actor Actor, cmd Command) error {
	switch cmd.(type) {
	case RevealRequester, ForgetRequester:
		if !c.Exists() {
			return refuse(ErrNoCase, "", "no such case")
		}
		return authorizeRequester(c, actor, cmd)
	case RateByResident:
		return authorizeResident(c, actor, cmd.(RateByResident))
	}
	if actor.Role == ActorAuditor {
		return refuse(ErrNotYours, "", "auditors only read")
	}
	if !opensCase(cmd) && !c.Exists() {
		return refuse(ErrNoCase, "", "no such case")
	}
	mustBeStreet := func(street, field string) error {
		if actor.Role != ActorStreet {
			return refuse(ErrNotYours, "", "only a street may %s", cmd.CommandName())
		}
		if actor.ID != street {
			return refuse(ErrNotYours, field, "case belongs to street %q, not %q", street, actor.ID)
		}
		return nil
	}
	mustBeAssignee := func(assignee string) error {
		if !actor.IsAssignee() {
			return refuse(ErrNotYours, "", "only a department or unit may %s", cmd.CommandName())
		}
		if actor.ID != assignee || c == nil || !c.Involves(assignee) {
			return refuse(ErrNotYours, "", "%s holds no assignment in this case", actor.ID)
		}
		return nil
	}
	switch cmd := cmd.(type) {
	case Raise:
		return mustBeStreet(cmd.Street, "street")
	case ReceiveTicket:
		if actor.Role != ActorPlatform {
			return refuse(ErrNotYours, "", "only a platform may send a ticket")
		}
		if actor.ID != cmd.Platform {
			return refuse(ErrNotYours, "platform", "platform %q may not send tickets as %q", actor.ID, cmd.Platform)
		}
		return nil
	case Route, Verify, Rate, AcceptTicket, ReturnTicket, IssueReceipt, RecordCallback:
		return mustBeStreet(c.Street, "")
	case Report:
		return mustBeAssignee(cmd.Assignee)
	case NoteProgress:
		return mustBeAssignee(cmd.Assignee)
	case Resolve:
		return mustBeAssignee(cmd.Assignee)
	case Decline:
		return mustBeAssignee(cmd.Assignee)
	case Claim:
		return mustBeAssignee(cmd.Assignee)
	case AddAttachment:
		return authorizeAttachment(c, actor, cmd)
	case CheckDeadlines:
		if actor.Role != ActorSystem {
			return refuse(ErrNotYours, "", "only the SLA watcher checks deadlines")
		}
		return nil
	}
	return refuse(ErrInvalidValue, "", "unknown command %T", cmd)
}

// Decide returns the events that cmd produces on c at `now`, or a *Refusal
// saying why not. It does not authorize: call Authorize first.
func Decide(c *Case, cmd Command, dir *Directory, now time.Time) ([]Event, error) {
	now = now.UTC()
	if raise, ok := cmd.(Raise); ok {
		if c.Exists() {
			return nil, refuse(ErrInvalidTransition, "", "case %s has already been raised", c.ID)
		}
		return decideRaise(raise, dir, now)
	}
	if ticket, ok := cmd.(ReceiveTicket); ok {
		if c.Exists() {
			return nil, refuse(ErrInvalidTransition, "", "case %s already exists", c.ID)
		}
		return decideReceiveTicket(ticket, dir, now)
	}
	if !c.Exists() {
		if c == nil {
			return nil, refuse(ErrNoCase, "", "no such case")
		}
		return nil, refuse(ErrNoCase, "", "no case %s", c.ID)
	}
	switch cmd.(type) {
	case RevealRequester, ForgetRequester:
		return decideRequester(c, cmd)
	}
	switch cmd := cmd.(type) {
	case IssueReceipt:
		return decideIssueReceipt(c, cmd)
	case RateByResident:
		return decideResidentRating(c, cmd, dir, now)
	case RecordCallback:
		return decideCallback(c, cmd)
	}
	if c.Status == StatusReturned {
		if _, ok := cmd.(CheckDeadlines); ok {
			return nil, nil
		}
		return nil, refuse(ErrInvalidTransition, "", "the ticket was returned to its platform: the case is over")
	}
	switch cmd := cmd.(type) {
	case AcceptTicket:
		return decideAcceptTicket(c, cmd, dir, now)
	case ReturnTicket:
		return decideReturnTicket(c, cmd)
	}
	if c.Status == StatusReceived {
		if _, ok := cmd.(CheckDeadlines); !ok {
			return nil, refuse(ErrInvalidTransition, "", "the ticket is waiting for its street to sign for it (accept) or return it")
		}
	}
	if c.Status == StatusClosed {
		if rate, ok := cmd.(Rate); ok {
			return decideRate(c, rate)
		}
		if _, ok := cmd.(CheckDeadlines); ok {
			return nil, nil
		}
		return nil, refuse(ErrInvalidTransition, "", "case is closed")
	}
	if assignee := assigneeOf(cmd); assignee != "" && c.Assignment(assignee) == nil {
		return nil, refuse(ErrNotYours, "", "%s holds no assignment in this case", assignee)
	}
	switch cmd := cmd.(type) {
	case Report:
		if err := checkText("note", cmd.Note, MaxText); err != nil {
			return nil, err
		}
		a := c.Assignment(cmd.Assignee)
		switch {
		case a.Role == RoleOffer && a.Status == Assigned:
			return nil, refuse(ErrInvalidTransition, "", "a need is offered to %s: claim it instead of reporting in", a.Assignee)
		case a.Status != Assigned:
			return nil, refuse(ErrInvalidTransition, "", "%s cannot report in: its assignment is %s", a.Assignee, a.Status)
		}
		return []Event{AssignmentReported{Assignee: a.Assignee, Role: a.Role, Note: cmd.Note}}, nil
	case NoteProgress:
		if err := checkText("note", cmd.Note, MaxText); err != nil {
			return nil, err
		}
		a := c.Assignment(cmd.Assignee)
		if a.Status != Assigned && a.Status != Reported || a.Role == RoleOffer {
			return nil, refuse(ErrInvalidTransition, "", "%s cannot note progress: its assignment is %s %s", a.Assignee, a.Role, a.Status)
		}
		return []Event{ProgressNoted{Assignee: a.Assignee, Role: a.Role, Note: cmd.Note}}, nil
	case Resolve:
		return decideResolve(c, cmd)
	case Decline:
		if blank(cmd.Reason) {
			return nil, refuse(ErrInvalidValue, "reason", "a decline needs a reason")
		}
		if err := checkText("reason", cmd.Reason, MaxText); err != nil {
			return nil, err
		}
		if cmd.Suggest != "" && !dir.IsAssignee(cmd.Suggest) {
			return nil, refuse(ErrInvalidValue, "suggest", "unknown department or unit %q", cmd.Suggest)
		}
		a := c.Assignment(cmd.Assignee)
		if a.Status != Assigned && a.Status != Reported {
			return nil, refuse(ErrInvalidTransition, "", "%s cannot decline: its assignment is %s", a.Assignee, a.Status)
		}
		return []Event{AssignmentDeclined{Assignee: a.Assignee, Role: a.Role, Reason: cmd.Reason, Suggest: cmd.Suggest}}, nil
	case Claim:
		if err := checkText("note", cmd.Note, MaxText); err != nil {
			return nil, err
		}
		a := c.Assignment(cmd.Assignee)
		if c.Kind != KindNeed || a.Role != RoleOffer {
			return nil, refuse(ErrInvalidTransition, "", "only a need offered to %s can be claimed", cmd.Assignee)
		}
		if a.Status != Assigned {
			return nil, refuse(ErrInvalidTransition, "", "the offer to %s is %s: the need was claimed or declined", a.Assignee, a.Status)
		}
		sla := dir.SLAFor(c.Urgency)
		_, resolveBy := c.boundByReply(now, dir.Deadline(now, sla.ResolveWithin))
		return []Event{NeedClaimed{Assignee: a.Assignee, Role: RoleLead, ResolveBy: resolveBy, Note: cmd.Note}}, nil
	case Route:
		return decideRoute(c, cmd, dir, now)
	case AddAttachment:
		return decideAddAttachment(c, cmd)
	case Verify:
		if err := CheckEvidence(c, cmd.Evidence); err != nil {
			return nil, err
		}
		if err := checkText("note", cmd.Note, MaxText); err != nil {
			return nil, err
		}
		if err := checkText("reply", cmd.Reply, MaxText); err != nil {
			return nil, err
		}
		if c.Status != StatusResolved {
			return nil, refuse(ErrInvalidTransition, "", "only a resolved case can be verified; this one is %s", c.Status)
		}
		switch {
		case cmd.Reply != "" && (!c.IsTicket() || !cmd.Accepted):
			return nil, refuse(ErrInvalidValue, "reply", "a reply goes to a ticket's platform when its case is accepted as resolved; not here")
		case cmd.Accepted && c.IsTicket() && blank(cmd.Reply):
			return nil, refuse(ErrInvalidValue, "reply", "a ticket's case closes with a reply to its platform %s", c.Source.Platform)
		}
		if cmd.Accepted {
			return []Event{ResolutionVerified{Note: cmd.Note, Reply: cmd.Reply, Evidence: cmd.Evidence}, CaseClosed{}}, nil
		}
		return []Event{ResolutionRejected{Note: cmd.Note, Evidence: cmd.Evidence}}, nil
	case Rate:
		return nil, refuse(ErrInvalidTransition, "", "a rating follows closure; this case is %s", c.Status)
	case CheckDeadlines:
		return DueEscalations(c, dir, now), nil
	}
	return nil, refuse(ErrInvalidValue, "", "unknown command %T", cmd)
}

func decideRaise(cmd Raise, dir *Directory, now time.Time) ([]Event, error) {
	if _, ok := dir.Street(cmd.Street); !ok {
		return nil, refuse(ErrInvalidValue, "street", "unknown street %q", cmd.Street)
	}
	category, community, urgency, err := checkRouting(dir, cmd.Street, cmd.Category, cmd.Community, cmd.Urgency)
	if err != nil {
		return nil, err
	}
	if err := checkCaseText(cmd.Title, cmd.Description, cmd.Requester, cmd.Location); err != nil {
		return nil, err
	}
	if err := checkReceipt(cmd.Receipt); err != nil {
		return nil, err
	}
	events := []Event{WhistleRaised{
		Street: cmd.Street, Community: cmd.Community, Category: category.ID, Kind: category.Kind,
		Urgency: urgency, Title: cmd.Title, Description: cmd.Description, Location: cmd.Location,
		DirectoryVersion: dir.Version, RequestSHA256: cmd.RequestSHA256, Requester: cmd.Requester, Receipt: cmd.Receipt,
	}}
	routed, err := routeByCategory(nil, dir, category, community, urgency, now)
	if err != nil {
		return nil, err
	}
	return append(events, routed...), nil
}

// checkRouting checks what a case is routed by: a community of the street,
// a category and an urgency.
func checkRouting(dir *Directory, street, category, community, urgency string) (*Category, *Community, Urgency, error) {
	com, ok := dir.Community(street, community)
	if !ok {
		return nil, nil, "", refuse(ErrInvalidValue, "community", "street %q has no community %q", street, community)
	}
	cat, ok := dir.Category(category)
	if !ok {
		return nil, nil, "", refuse(ErrInvalidValue, "category", "unknown category %q", category)
	}
	u, err := ParseUrgency(urgency)
	if err != nil {
		return nil, nil, "", refuse(ErrInvalidValue, "urgency", "%v", err)
	}
	return cat, com, u, nil
}

// checkCaseText checks what a raise or a ticket says of its case: a title,
// a description, the requester, a location.
func checkCaseText(title, description string, requester *SealedRequester, loc *Location) error {
	if blank(title) {
		return refuse(ErrInvalidValue, "title", "a title is required")
	}
	if err := checkText("title", title, MaxTitle); err != nil {
		return err
	}
	if err := checkText("description", description, MaxText); err != nil {
		return err
	}
	if err := checkSealedRequester(requester); err != nil {
		return err
	}
	if loc != nil {
		if err := checkText("location.address", loc.Address, MaxTitle); err != nil {
			return err
		}
		if loc.Lat != nil && (*loc.Lat < -90 || *loc.Lat > 90) {
			return refuse(ErrInvalidValue, "location.lat", "latitude %v is outside -90..90", *loc.Lat)
		}
		if loc.Lon != nil && (*loc.Lon < -180 || *loc.Lon > 180) {
			return refuse(ErrInvalidValue, "location.lon", "longitude %v is outside -180..180", *loc.Lon)
		}
		if (loc.Lat == nil) != (loc.Lon == nil) {
			return refuse(ErrInvalidValue, "location", "give both lat and lon, or neither")
		}
	}
	return nil
}

// routeByCategory assigns a case as its category says: a need is offered to
// the community's units, anything else goes to the category's lead and
// assists, with the urgency's deadlines (within a ticket's reply_by; c is
// nil for a case being raised).
func routeByCategory(c *Case, dir *Directory, category *Category, community *Community, urgency Urgency, now time.Time) ([]Event, error) {
	sla := dir.SLAFor(urgency)
	reportBy, resolveBy := c.boundByReply(dir.Deadline(now, sla.ReportWithin), dir.Deadline(now, sla.ResolveWithin))
	var events []Event
	if category.Kind == KindNeed {
		if len(community.Units) == 0 {
			return nil, refuse(ErrInvalidValue, "community", "community %q has no resident units to offer a need to", community.ID)
		}
		for _, u := range community.Units {
			events = append(events, AssignmentMade{Assignee: u, Role: RoleOffer, ReportBy: reportBy})
		}
		return events, nil
	}
	events = append(events, AssignmentMade{Assignee: category.Lead, Role: RoleLead, ReportBy: reportBy, ResolveBy: resolveBy})
	for _, a := range category.Assist {
		events = append(events, AssignmentMade{Assignee: a, Role: RoleAssist, ReportBy: reportBy, ResolveBy: resolveBy})
	}
	return events, nil
}

func decideResolve(c *Case, cmd Resolve) ([]Event, error) {
	if err := CheckEvidence(c, cmd.Evidence); err != nil {
		return nil, err
	}
	if err := checkText("note", cmd.Note, MaxText); err != nil {
		return nil, err
	}
	var mediation Mediation
	if c.Kind == KindDispute {
		if cmd.Mediation == "" {
			return nil, refuse(ErrInvalidValue, "mediation", "a dispute is resolved with mediation success or failure")
		}
		m, err := ParseMediation(cmd.Mediation)
		if err != nil {
			return nil, refuse(ErrInvalidValue, "mediation", "%v", err)
		}
		mediation = m
	} else if cmd.Mediation != "" {
		return nil, refuse(ErrInvalidValue, "mediation", "only a dispute has a mediation outcome; this case is an %s", c.Kind)
	}
	a := c.Assignment(cmd.Assignee)
	switch a.Status {
	case Reported:
	case Assigned:
		if a.Role == RoleOffer {
			return nil, refuse(ErrInvalidTransition, "", "claim the need before resolving it")
		}
		return nil, refuse(ErrInvalidTransition, "", "%s must report in before resolving", a.Assignee)
	default:
		return nil, refuse(ErrInvalidTransition, "", "%s cannot resolve: its assignment is %s", a.Assignee, a.Status)
	}
	return []Event{AssignmentResolved{Assignee: a.Assignee, Role: a.Role, Note: cmd.Note, Mediation: mediation, Evidence: cmd.Evidence}}, nil
}

func decideRoute(c *Case, cmd Route, dir *Directory, now time.Time) ([]Event, error) {
	if c.Status == StatusResolved {
		return nil, refuse(ErrInvalidTransition, "", "the case is resolved: verify it before routing again")
	}
	if cmd.Lead == "" && len(cmd.Assist) == 0 {
		return nil, refuse(ErrInvalidValue, "lead", "name a lead or an assist to route to")
	}
	named := map[string]bool{}
	check := func(field, id string) error {
		if !dir.IsAssignee(id) {
			return refuse(ErrInvalidValue, field, "unknown department or unit %q", id)
		}
		if named[id] {
			return refuse(ErrInvalidValue, field, "%q is named twice", id)
		}
		named[id] = true
		if a := c.Assignment(id); a != nil && a.Active() && a.Role != RoleOffer {
			return refuse(ErrInvalidTransition, field, "%q already holds a %s assignment that is %s", id, a.Role, a.Status)
		}
		return nil
	}
	if cmd.Lead != "" {
		if err := check("lead", cmd.Lead); err != nil {
			return nil, err
		}
	}
	for i, id := range cmd.Assist {
		if err := check(fmt.Sprintf("assist[%d]", i), id); err != nil {
			return nil, err
		}
	}
	sla := dir.SLAFor(c.Urgency)
	reportBy, resolveBy := c.boundByReply(dir.Deadline(now, sla.ReportWithin), dir.Deadline(now, sla.ResolveWithin))
	var events []Event
	ended := map[string]bool{}
	// endOffer ends id's open offer, if it has one, before anything else is
	// assigned to it: events name an assignee, and Evolve applies them to its
	// latest assignment, so an offer left open under a new assignment could
	// never be ended again (and a later decline of it would hit the new one).
	endOffer := func(id, reason string) {
		if a := c.Assignment(id); a != nil && a.Role == RoleOffer && a.Status == Assigned && !ended[id] {
			events = append(events, AssignmentDeclined{Assignee: id, Role: RoleOffer, Reason: reason})
			ended[id] = true
		}
	}
	if cmd.Lead != "" {
		// A lead routed by hand to a need ends the offers: it is no longer open to claim.
		if c.Kind == KindNeed {
			for _, a := range c.Assignments {
				endOffer(a.Assignee, "routed by hand to "+cmd.Lead)
			}
		}
		endOffer(cmd.Lead, "routed by hand to "+cmd.Lead)
		events = append(events, AssignmentMade{Assignee: cmd.Lead, Role: RoleLead, ReportBy: reportBy, ResolveBy: resolveBy, ByHand: true})
	}
	for _, id := range cmd.Assist {
		endOffer(id, "routed by hand to "+id+" as an assist")
		events = append(events, AssignmentMade{Assignee: id, Role: RoleAssist, ReportBy: reportBy, ResolveBy: resolveBy, ByHand: true})
	}
	return events, nil
}

func decideRate(c *Case, cmd Rate) ([]Event, error) {
	r, err := ParseRating(cmd.Rating)
	if err != nil {
		return nil, refuse(ErrInvalidValue, "rating", "%v", err)
	}
	if c.CallbackRated {
		return nil, refuse(ErrInvalidTransition, "", "the case was already rated %s; a rating is recorded once", *c.Rating)
	}
	return []Event{SatisfactionRated{Rating: r}}, nil
}

func checkText(field, s string, max int) error {
	if !utf8.ValidString(s) {
		return refuse(ErrInvalidValue, field, "%s is not valid UTF-8", field)
	}
	if n := utf8.RuneCountInString(s); n > max {
		return refuse(ErrInvalidValue, field, "%s has %d characters, at most %d are allowed", field, n, max)
	}
	return nil
}

// DueEscalations returns the overdue marks and escalations due on c at now
// that have not been recorded yet: for each active lead or assist that has not
// reported in by report_by, or not resolved by resolve_by, one
// AssignmentOverdue as soon as the deadline passes (its level is the first
// rung of the ladder) and one CaseEscalated per rung whose `after`, counted
// from the deadline, has passed.
func DueEscalations(c *Case, dir *Directory, now time.Time) []Event {
	if c.Status == StatusClosed {
		return nil
	}
	if c.Status == StatusReceived {
		return dueAccept(c, dir, now)
	}
	first := ""
	if len(dir.Escalation) > 0 {
		first = dir.Escalation[0].Level
	}
	var events []Event
	for _, a := range c.Assignments {
		for _, d := range missedDeadlines(a, now) {
			due := *a.ReportBy
			if d == DeadlineResolve {
				due = *a.ResolveBy
			}
			if !a.missed(d) {
				events = append(events, AssignmentOverdue{Assignee: a.Assignee, Role: a.Role, Deadline: d, Level: first, Due: due})
			}
			for _, step := range dir.Escalation {
				if now.Before(due.Add(time.Duration(step.After))) || c.Escalated(a.Assignee, d, step.Level) {
					continue
				}
				events = append(events, CaseEscalated{Deadline: d, Level: step.Level, Assignee: a.Assignee})
			}
		}
	}
	return events
}

// missedDeadlines lists the deadlines an assignment has missed at now.
func missedDeadlines(a *Assignment, now time.Time) []Deadline {
	if !a.Active() || a.Role == RoleOffer {
		return nil
	}
	var missed []Deadline
	if a.Status == Assigned && a.ReportBy != nil && !now.Before(*a.ReportBy) {
		missed = append(missed, DeadlineReport)
	}
	if a.Status != Resolved && a.ResolveBy != nil && !now.Before(*a.ResolveBy) {
		missed = append(missed, DeadlineResolve)
	}
	return missed
}

// NextDeadline returns the earliest moment at which DueEscalations may have
// something new for c, or the zero time when nothing is pending. The moment is
// at or before now when something is already due and not yet recorded.
func NextDeadline(c *Case, dir *Directory, now time.Time) time.Time {
	if c.Status == StatusClosed {
		return time.Time{}
	}
	if c.Status == StatusReceived {
		return nextAccept(c, dir)
	}
	var next time.Time
	consider := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	for _, a := range c.Assignments {
		if !a.Active() || a.Role == RoleOffer {
			continue
		}
		pending := map[Deadline]*time.Time{}
		if a.Status == Assigned && a.ReportBy != nil {
			pending[DeadlineReport] = a.ReportBy
		}
		if a.Status != Resolved && a.ResolveBy != nil {
			pending[DeadlineResolve] = a.ResolveBy
		}
		for d, due := range pending {
			if !a.missed(d) {
				consider(*due)
			}
			for _, step := range dir.Escalation {
				if !c.Escalated(a.Assignee, d, step.Level) {
					consider(due.Add(time.Duration(step.After)))
				}
			}
		}
	}
	return next
}

// opensCase tells whether cmd opens a new case: a raise or a ticket.
func opensCase(cmd Command) bool {
	switch cmd.(type) {
	case Raise, ReceiveTicket:
		return true
	}
	return false
}

// Replay folds a history into a case state.
func Replay(caseID string, history []Envelope) (*Case, error) {
	c := NewCase(caseID)
	for _, env := range history {
		e, err := DecodeEvent(env.Type, env.Data)
		if err != nil {
			return nil, fmt.Errorf("domain: case %s version %d: %w", caseID, env.Version, err)
		}
		c.Apply(env, e)
	}
	return c, nil
}

// assigneeOf names the assignee a command acts for, or "" for street and
// system commands.
func assigneeOf(cmd Command) string {
	switch cmd := cmd.(type) {
	case Report:
		return cmd.Assignee
	case NoteProgress:
		return cmd.Assignee
	case Resolve:
		return cmd.Assignee
	case Decline:
		return cmd.Assignee
	case Claim:
		return cmd.Assignee
	}
	return ""
}
