package domain

// Read policy: who may see which case, list, figures, queue and
// notifications. It is business policy like Authorize, so it lives here,
// pure and testable without HTTP; every refusal is a *Refusal wrapping
// ErrNotYours (403), ErrInvalidValue (422) or ErrNotFound (404), with the
// field it is about.

// AuthorizeCaseRead tells whether actor may read case c (its state and its
// history): the case's street, anyone assigned or offered a part, auditors.
func AuthorizeCaseRead(actor Actor, c *Case) error {
	switch actor.Role {
	case ActorAuditor:
		return nil
	case ActorStreet:
		if actor.ID == c.Street {
			return nil
		}
	case ActorDepartment, ActorUnit:
		if c.Involves(actor.ID) {
			return nil
		}
	case ActorPlatform:
		if c.Source != nil && c.Source.Platform == actor.ID {
			return nil // a platform reads the cases it sent, and only those
		}
	}
	return refuse(ErrNotYours, "", "only the case's street, its assignees, the platform that sent it and auditors may read it")
}

// CaseListScope is what a case list is narrowed to: one street's cases, or
// the cases one assignee is involved in; empty means no narrowing.
type CaseListScope struct {
	Street, Assignee string
	// Platform narrows to the tickets one platform sent.
	Platform string
}

// ScopeCaseList narrows the filters a reader asked for (street, assignee;
// empty: any) to what it may list: a street its own cases, a department or
// unit the cases it holds or held a part in (offers included, as for
// reading a case), an auditor everything.
func ScopeCaseList(actor Actor, asked CaseListScope) (CaseListScope, error) {
	switch actor.Role {
	case ActorAuditor:
		return asked, nil
	case ActorStreet:
		if asked.Street != "" && asked.Street != actor.ID {
			return asked, refuse(ErrNotYours, "street", "a street lists its own cases only: %s", actor.ID)
		}
		asked.Street = actor.ID
		return asked, nil
	case ActorDepartment, ActorUnit:
		if asked.Assignee != "" && asked.Assignee != actor.ID {
			return asked, refuse(ErrNotYours, "assignee", "a department or unit lists the cases it is involved in only: %s", actor.ID)
		}
		asked.Assignee = actor.ID
		return asked, nil
	case ActorPlatform:
		asked.Platform = actor.ID
		return asked, nil
	}
	return asked, refuse(ErrNotYours, "", "your role may not list cases")
}

// DefaultFiguresGroup is how figures are grouped when the reader does not
// say: a department or unit by assignee (its own group), others by street.
func DefaultFiguresGroup(actor Actor) string {
	if actor.IsAssignee() {
		return "assignee"
	}
	return "street"
}

// FiguresRequest is what a reader asks of the figures: grouped by GroupBy,
// of one Street's cases when given, rebuilt as of a past time when AsOf.
type FiguresRequest struct {
	GroupBy string
	Street  string
	AsOf    bool
}

// FiguresScope is which figures a reader gets. At most one of Street and
// Assignee is set: Street narrows them to that street's cases, Assignee to
// that assignee's own figures; neither means every group.
type FiguresScope struct {
	Street, Assignee string
}

// ScopeFigures decides which figures actor may read. An auditor sees every
// group; a street sees its own figures, grouped by street (its own group),
// community (its own communities), category, urgency or day (its own
// cases); a department or unit sees its own figures, grouped by assignee
// (its own group) or by day. Assignee figures are not kept per street, so
// "a street's figures by assignee" cannot be answered without counting
// other streets' cases: asked by a street it is refused rather than leaked,
// asked by an auditor for one street it is an invalid combination. An
// as_of fold reads the whole log again: it is an auditor's tool.
func ScopeFigures(actor Actor, req FiguresRequest) (FiguresScope, error) {
	var scope FiguresScope
	switch actor.Role {
	case ActorAuditor:
		scope.Street = req.Street
	case ActorStreet:
		if req.Street != "" && req.Street != actor.ID {
			return scope, refuse(ErrNotYours, "street", "a street sees its own figures only: %s may not read those of %s", actor.ID, req.Street)
		}
		if req.GroupBy == "assignee" {
			return scope, refuse(ErrNotYours, "group_by", "a street sees its own figures grouped by street, community, category, urgency or day, not by assignee: "+
				"assignee figures are not kept per street, and would count other streets' cases")
		}
		scope.Street = actor.ID
	case ActorDepartment, ActorUnit:
		if req.Street != "" {
			return scope, refuse(ErrNotYours, "street", "a department or unit sees its own figures, not a street's: street= is for streets and auditors")
		}
		scope.Assignee = actor.ID
	default:
		return scope, refuse(ErrNotYours, "", "your role may not read the figures")
	}
	switch {
	case scope.Street != "":
		switch req.GroupBy {
		case "street", "community", "category", "urgency", "day":
		default:
			return scope, refuse(ErrInvalidValue, "group_by", "the figures of one street (street=%s) are grouped by street, community, category, urgency or day, not by %s: "+
				"%s figures are not kept per street", scope.Street, req.GroupBy, req.GroupBy)
		}
	case scope.Assignee != "":
		switch req.GroupBy {
		case "assignee", "day":
		default:
			return scope, refuse(ErrNotYours, "group_by", "a department or unit sees its own figures grouped by assignee or day, not by %s", req.GroupBy)
		}
	}
	if req.AsOf && actor.Role != ActorAuditor {
		return scope, refuse(ErrNotYours, "as_of", "as_of is for auditors")
	}
	return scope, nil
}

// AuthorizeQueueRead tells whether actor may read the queue of assignee:
// that department or unit itself, and auditors (for whom an assignee not in
// the directory is not found).
func AuthorizeQueueRead(actor Actor, assignee string, dir *Directory) error {
	switch {
	case actor.Role == ActorAuditor:
		if !dir.IsAssignee(assignee) {
			return refuse(ErrNotFound, "", "no department or unit %q", assignee)
		}
		return nil
	case actor.IsAssignee() && actor.ID == assignee:
		return nil
	}
	return refuse(ErrNotYours, "", "only %s itself and auditors may read its queue", assignee)
}

// ScopeNotifications decides whose street notifications actor may follow,
// given the street it asked for (empty: its own, or for an auditor every
// street's). It returns the street to follow, empty for every street.
func ScopeNotifications(actor Actor, street string, dir *Directory) (string, error) {
	switch actor.Role {
	case ActorStreet:
		if street != "" && street != actor.ID {
			return "", refuse(ErrNotYours, "street", "street %s may not read the notifications of street %s", actor.ID, street)
		}
		return actor.ID, nil
	case ActorAuditor:
		if street != "" {
			if _, ok := dir.Street(street); !ok {
				return "", refuse(ErrInvalidValue, "street", "unknown street %q", street)
			}
		}
		return street, nil
	}
	return "", refuse(ErrNotYours, "", "only streets and auditors read street notifications")
}

// AuditRead is a read meant for auditors only.
type AuditRead struct{ what string }

// The reads for auditors only.
var (
	// ReadLog: the global log, page by page (whistle replay).
	ReadLog = AuditRead{"the log"}
	// ReadModelsSnapshot: the live read models as saved.
	ReadModelsSnapshot = AuditRead{"the read models' snapshot"}
)

// AuthorizeAuditRead tells whether actor may make a read for auditors.
func AuthorizeAuditRead(actor Actor, read AuditRead) error {
	if actor.Role == ActorAuditor {
		return nil
	}
	return refuse(ErrNotYours, "", "%s is for auditors", read.what)
}

// authorizeRequester: a case's requester is personal data, readable whole
// only by the case's street (a reveal, which Authorize lets through as a
// command because it is recorded), and forgotten by that street or an
// auditor. Everyone else reads it masked, with the case.
func authorizeRequester(c *Case, actor Actor, cmd Command) error {
	if _, forget := cmd.(ForgetRequester); forget && actor.Role == ActorAuditor {
		return nil
	}
	switch {
	case actor.Role != ActorStreet:
		if _, forget := cmd.(ForgetRequester); forget {
			return refuse(ErrNotYours, "", "only the case's street or an auditor may forget its requester")
		}
		return refuse(ErrNotYours, "", "only the case's street may reveal its requester")
	case actor.ID != c.Street:
		return refuse(ErrNotYours, "", "case belongs to street %q, not %q", c.Street, actor.ID)
	}
	return nil
}
