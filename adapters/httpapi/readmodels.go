package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/whistle-gov/whistle/adapters/readmodel"
	"github.com/whistle-gov/whistle/domain"
	"github.com/whistle-gov/whistle/projections"
	"go.uber.org/zap"
)

// PositionHeader, on the answers of the read models, is the log position
// they had handled when the answer was made (the figures may include a
// little more).
const PositionHeader = "Whistle-Position"

// ReadModels is what the list, the figures, the log and the snapshot routes
// need of the read models (readmodel.Reads). It must be safe for
// concurrent use.
type ReadModels interface {
	// Position is the log position the live models have handled.
	Position() uint64
	// WaitFor waits until they have handled pos, or ctx is done.
	WaitFor(ctx context.Context, pos uint64) error
	// List lists the case board; projections.ErrBadQuery for a bad cursor.
	List(q projections.ListQuery) ([]projections.CaseSummary, string, error)
	// Stats is the live figures.
	Stats() *projections.Stats
	// StatsAsOf folds the figures again from the log as they stood at
	// asOf, and the position folded up to: slow, an auditor's tool.
	StatsAsOf(ctx context.Context, asOf time.Time) (*projections.Stats, uint64, error)
	// LogPage reads up to limit commits of the log after position after.
	LogPage(ctx context.Context, after uint64, limit int) (readmodel.LogAnswer, error)
	// SpoolSnapshot encodes the live models into a temporary file; the
	// caller closes it.
	SpoolSnapshot() (*readmodel.SpooledSnapshot, error)
}

// CasesAnswer is the body of GET /v1/cases.
type CasesAnswer struct {
	Cases []projections.CaseSummary `json:"cases"`
	Next  *string                   `json:"next"`
}

// query checks the query string: only the named parameters, each once.
// Unknown ones are refused with 400, like unknown fields of a body, so a
// misspelt filter does not silently list everything.
func query(w http.ResponseWriter, r *http.Request, allowed ...string) (url.Values, bool) {
	q := r.URL.Query()
	for name, vals := range q {
		if !slices.Contains(allowed, name) {
			writeError(w, http.StatusBadRequest, "unknown_field",
				fmt.Sprintf("unknown query parameter %q (known: %s)", name, strings.Join(allowed, ", ")), name)
			return nil, false
		}
		if len(vals) > 1 {
			writeError(w, http.StatusBadRequest, "malformed", fmt.Sprintf("query parameter %q is given %d times", name, len(vals)), name)
			return nil, false
		}
	}
	return q, true
}

func invalid(w http.ResponseWriter, field, format string, args ...any) {
	writeError(w, http.StatusUnprocessableEntity, "invalid_value", fmt.Sprintf(format, args...), field)
}

// awaitPosition waits, when the query names ?position=, until the models
// have handled it. After PositionWait it answers 503 with Retry-After rather
// than an answer that would silently lack the client's own write.
func (a *API) awaitPosition(w http.ResponseWriter, r *http.Request, q url.Values) bool {
	s := q.Get("position")
	if s == "" {
		return true
	}
	pos, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		invalid(w, "position", "position is a log position as a command's answer gives it (a whole number), got %q", s)
		return false
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.PositionWait)
	defer cancel()
	if err := a.cfg.ReadModels.WaitFor(ctx, pos); err != nil {
		if r.Context().Err() != nil {
			return false // the client has gone
		}
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "not_caught_up",
			fmt.Sprintf("the read models have reached log position %d, not yet %d, after waiting %s; retry shortly",
				a.cfg.ReadModels.Position(), pos, a.cfg.PositionWait), "position")
		return false
	}
	return true
}

func (a *API) listCases(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r, "status", "street", "community", "assignee", "category", "urgency", "overdue", "cursor", "limit", "position")
	if !ok {
		return
	}
	dir := a.cfg.Directory
	lq := projections.ListQuery{
		Status: q.Get("status"), Street: q.Get("street"), Community: q.Get("community"),
		Assignee: q.Get("assignee"), Category: q.Get("category"), Urgency: q.Get("urgency"), Cursor: q.Get("cursor"),
	}
	if lq.Status != "" {
		if _, err := domain.ParseStatus(lq.Status); err != nil {
			invalid(w, "status", "status %q is not one of routed, in_progress, resolved, closed, unassigned", lq.Status)
			return
		}
	}
	if _, ok := dir.Street(lq.Street); lq.Street != "" && !ok {
		invalid(w, "street", "no street %q in directory %s", lq.Street, dir.Version)
		return
	}
	if lq.Community != "" && !communityKnown(dir, lq.Street, lq.Community) {
		where := "any street"
		if lq.Street != "" {
			where = "street " + lq.Street
		}
		invalid(w, "community", "no community %q in %s of directory %s", lq.Community, where, dir.Version)
		return
	}
	if lq.Assignee != "" && !dir.IsAssignee(lq.Assignee) {
		invalid(w, "assignee", "no department or unit %q in directory %s", lq.Assignee, dir.Version)
		return
	}
	if _, ok := dir.Category(lq.Category); lq.Category != "" && !ok {
		invalid(w, "category", "no category %q in directory %s", lq.Category, dir.Version)
		return
	}
	if lq.Urgency != "" {
		if _, err := domain.ParseUrgency(lq.Urgency); err != nil {
			invalid(w, "urgency", "urgency %q is not one of routine, urgent, emergency", lq.Urgency)
			return
		}
	}
	if s := q.Get("overdue"); s != "" {
		switch s {
		case "true", "false":
			v := s == "true"
			lq.Overdue = &v
		default:
			invalid(w, "overdue", "overdue is true or false, got %q", s)
			return
		}
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > projections.MaxListLimit {
			invalid(w, "limit", "limit is a whole number from 1 to %d, got %q", projections.MaxListLimit, s)
			return
		}
		lq.Limit = n
	}
	scope, err := domain.ScopeCaseList(actorOf(r), domain.CaseListScope{Street: lq.Street, Assignee: lq.Assignee})
	if err != nil {
		a.writeFailure(w, err)
		return
	}
	lq.Street, lq.Assignee, lq.Platform = scope.Street, scope.Assignee, scope.Platform
	if !a.awaitPosition(w, r, q) {
		return
	}
	pos := a.cfg.ReadModels.Position()
	cases, next, err := a.cfg.ReadModels.List(lq)
	if err != nil {
		if errors.Is(err, projections.ErrBadQuery) {
			invalid(w, "cursor", "cursor is the next value of a previous page, unchanged: %v", err)
			return
		}
		a.cfg.Log.Error("list cases", zap.Error(err))
		writeError(w, http.StatusInternalServerError, "internal", "the case list failed", "")
		return
	}
	answer := CasesAnswer{Cases: cases}
	if next != "" {
		answer.Next = &next
	}
	w.Header().Set(PositionHeader, strconv.FormatUint(pos, 10))
	writeJSON(w, http.StatusOK, answer)
}

// communityKnown tells whether community is in street, or in any street
// when street is empty.
func communityKnown(dir *domain.Directory, street, community string) bool {
	if street != "" {
		_, ok := dir.Community(street, community)
		return ok
	}
	for _, s := range dir.Streets {
		if _, ok := dir.Community(s.ID, community); ok {
			return true
		}
	}
	return false
}

// parseTime reads a window bound or as_of: an RFC 3339 time, or a day
// (2006-01-02: its midnight in days, the calendar's time zone, whose days
// the figures count).
func parseTime(s string, days *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.ParseInLocation(time.DateOnly, s, days)
}

// stats answers the figures, scoped by domain.ScopeFigures; ?street=
// narrows them to one street's cases, ?as_of= folds them again as of a
// time (auditors).
func (a *API) stats(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r, "group_by", "street", "from", "to", "as_of", "position")
	if !ok {
		return
	}
	actor := actorOf(r)
	groupBy := q.Get("group_by")
	if groupBy == "" {
		groupBy = domain.DefaultFiguresGroup(actor)
	}
	if !slices.Contains(projections.GroupBys(), groupBy) {
		invalid(w, "group_by", "group_by %q is not one of %s", groupBy, strings.Join(projections.GroupBys(), ", "))
		return
	}
	street := q.Get("street")
	if _, ok := a.cfg.Directory.Street(street); street != "" && !ok {
		invalid(w, "street", "no street %q in directory %s", street, a.cfg.Directory.Version)
		return
	}
	var from, to, asOf time.Time
	for _, b := range []struct {
		field string
		t     *time.Time
	}{{"from", &from}, {"to", &to}, {"as_of", &asOf}} {
		s := q.Get(b.field)
		if s == "" {
			continue
		}
		t, err := parseTime(s, a.cfg.Directory.WorkCalendar().Location())
		if err != nil {
			invalid(w, b.field, "%s is an RFC 3339 time such as 2026-11-23T09:00:00Z or a day such as 2026-11-23, got %q", b.field, s)
			return
		}
		*b.t = t
	}
	if !from.IsZero() && !to.IsZero() && from.After(to) {
		invalid(w, "from", "from %s is after to %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
		return
	}
	scope, err := domain.ScopeFigures(actor, domain.FiguresRequest{GroupBy: groupBy, Street: street, AsOf: !asOf.IsZero()})
	if err != nil {
		a.writeFailure(w, err)
		return
	}
	if !a.awaitPosition(w, r, q) {
		return
	}

	stats, pos := a.cfg.ReadModels.Stats(), a.cfg.ReadModels.Position()
	if !asOf.IsZero() {
		m, at, err := a.cfg.ReadModels.StatsAsOf(r.Context(), asOf)
		if err != nil {
			if r.Context().Err() == nil {
				a.cfg.Log.Error("as_of fold", zap.Error(err))
				writeError(w, http.StatusServiceUnavailable, "unavailable", "could not read the log to fold it as of "+asOf.Format(time.RFC3339), "")
			}
			return
		}
		stats, pos = m, at
	}
	// Which figures answer the scope: a street's by day or an assignee's
	// by day from that key's own day buckets; a street's by category or
	// urgency from the breakdowns kept within each street; the rest from
	// the groups, filtered to the scope's own.
	var res projections.Result
	switch {
	case scope.Street != "" && groupBy == "day":
		res, err = stats.QueryDays("street", scope.Street, from, to)
	case scope.Assignee != "" && groupBy == "day":
		res, err = stats.QueryDays("assignee", scope.Assignee, from, to)
	case scope.Street != "" && (groupBy == "category" || groupBy == "urgency"):
		res, err = stats.QueryStreet(scope.Street, groupBy, from, to)
	default:
		res, err = stats.Query(groupBy, from, to, figuresFilter(a.cfg.Directory, scope, groupBy))
	}
	if err != nil {
		if errors.Is(err, projections.ErrBadQuery) {
			invalid(w, "group_by", "%v", err)
			return
		}
		a.cfg.Log.Error("stats query", zap.Error(err))
		writeError(w, http.StatusInternalServerError, "internal", "the figures failed", "")
		return
	}
	w.Header().Set(PositionHeader, strconv.FormatUint(pos, 10))
	writeJSON(w, http.StatusOK, res)
}

// figuresFilter keeps the groups of the scope: its street's own group or
// communities, its assignee's own group; nil keeps every group.
func figuresFilter(dir *domain.Directory, scope domain.FiguresScope, groupBy string) func(key string) bool {
	switch {
	case scope.Street != "" && groupBy == "street":
		return func(key string) bool { return key == scope.Street }
	case scope.Street != "" && groupBy == "community":
		own := streetCommunities(dir, scope.Street)
		return func(key string) bool { return own[key] }
	case scope.Assignee != "" && groupBy == "assignee":
		return func(key string) bool { return key == scope.Assignee }
	}
	return nil
}

// streetCommunities returns the communities of street whose ids no other
// street uses: figures are keyed by community id, so a shared id would mix
// another street's cases in.
func streetCommunities(dir *domain.Directory, street string) map[string]bool {
	own := map[string]bool{}
	if s, ok := dir.Street(street); ok {
		for _, c := range s.Communities {
			own[c.ID] = true
		}
	}
	for _, s := range dir.Streets {
		if s.ID == street {
			continue
		}
		for _, c := range s.Communities {
			delete(own, c.ID)
		}
	}
	return own
}

func (a *API) logPage(w http.ResponseWriter, r *http.Request) {
	if err := domain.AuthorizeAuditRead(actorOf(r), domain.ReadLog); err != nil {
		a.writeFailure(w, err)
		return
	}
	q, ok := query(w, r, "after", "limit")
	if !ok {
		return
	}
	var after uint64
	if s := q.Get("after"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			invalid(w, "after", "after is a log position (a whole number), got %q", s)
			return
		}
		after = v
	}
	limit := readmodel.DefaultLogLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > readmodel.MaxLogLimit {
			invalid(w, "limit", "limit is a whole number from 1 to %d, got %q", readmodel.MaxLogLimit, s)
			return
		}
		limit = n
	}
	page, err := a.cfg.ReadModels.LogPage(r.Context(), after, limit)
	if err == nil {
		writeJSON(w, http.StatusOK, page)
		return
	}
	if r.Context().Err() != nil {
		return
	}
	a.cfg.Log.Error("read the log", zap.Uint64("after", after), zap.Error(err))
	writeError(w, http.StatusServiceUnavailable, "unavailable", "the event store did not answer; retry", "")
}

// snapshot answers the live models, encoded as in the snapshot file, and
// the position they describe (also in PositionHeader): an auditor folds the
// log up to that position and compares (whistle replay). The models are
// encoded into a temporary file (the fold waits meanwhile, as for a save)
// and the answer is sent from it, so that neither the encoding nor a slow
// client holds the whole document in memory or the fold still.
func (a *API) snapshot(w http.ResponseWriter, r *http.Request) {
	if err := domain.AuthorizeAuditRead(actorOf(r), domain.ReadModelsSnapshot); err != nil {
		a.writeFailure(w, err)
		return
	}
	if _, ok := query(w, r); !ok {
		return
	}
	snap, err := a.cfg.ReadModels.SpoolSnapshot()
	if err != nil {
		a.cfg.Log.Error("encode the read models", zap.Error(err))
		writeError(w, http.StatusInternalServerError, "internal", "could not encode the read models", "")
		return
	}
	defer snap.Close()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.FormatInt(snap.Size, 10))
	w.Header().Set(PositionHeader, strconv.FormatUint(snap.Position, 10))
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, snap.File) // the client may have gone; nothing to do about it
}
