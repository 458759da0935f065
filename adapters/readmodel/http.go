package readmodel

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

	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/adapters/httpapi"
	"github.com/whistle-gov/whistle/domain"
	"github.com/whistle-gov/whistle/projections"
	"go.uber.org/zap"
)

// PositionHeader, on the answers of the read models, is the log position
// they had handled when the answer was made (the figures may include a
// little more).
const PositionHeader = "Whistle-Position"

// Limits of GET /v1/log.
const (
	DefaultLogLimit = 500
	MaxLogLimit     = 1000
)

// HTTPConfig wires the read models' routes.
type HTTPConfig struct {
	Runner    *Runner
	Store     eventstore.Store
	Directory *domain.Directory
	Log       *zap.Logger
	// PositionWait is how long a query with ?position= waits for the models
	// to reach it before answering 503 (default 2 s).
	PositionWait time.Duration
}

// Routes returns the read models' routes, for httpapi.Config.Extra:
//
//	GET /v1/cases                 the case list, scoped by role
//	GET /v1/stats                 the figures, scoped by role; ?street= for one street's; ?as_of= for auditors
//	GET /v1/log                   the global log, for auditors (whistle replay)
//	GET /v1/readmodels/snapshot   the live models and their position, for auditors
func Routes(cfg HTTPConfig) (func(mux *http.ServeMux, api *httpapi.API), error) {
	switch {
	case cfg.Runner == nil:
		return nil, errors.New("readmodel: HTTPConfig.Runner is nil")
	case cfg.Store == nil:
		return nil, errors.New("readmodel: HTTPConfig.Store is nil")
	case cfg.Directory == nil:
		return nil, errors.New("readmodel: HTTPConfig.Directory is nil")
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.PositionWait <= 0 {
		cfg.PositionWait = 2 * time.Second
	}
	h := &handlers{cfg: cfg, asOf: make(chan struct{}, 1)}
	return func(mux *http.ServeMux, api *httpapi.API) {
		mux.HandleFunc("GET /v1/cases", api.Authed(h.cases))
		mux.HandleFunc("GET /v1/stats", api.Authed(h.stats))
		mux.HandleFunc("GET /v1/log", api.Authed(h.logPage))
		mux.HandleFunc("GET /v1/readmodels/snapshot", api.Authed(h.snapshot))
	}, nil
}

type handlers struct {
	cfg HTTPConfig
	// asOf lets one ?as_of= fold of the log run at a time: each reads the
	// log from the start.
	asOf chan struct{}
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
			httpapi.WriteError(w, http.StatusBadRequest, "unknown_field",
				fmt.Sprintf("unknown query parameter %q (known: %s)", name, strings.Join(allowed, ", ")), name)
			return nil, false
		}
		if len(vals) > 1 {
			httpapi.WriteError(w, http.StatusBadRequest, "malformed", fmt.Sprintf("query parameter %q is given %d times", name, len(vals)), name)
			return nil, false
		}
	}
	return q, true
}

func invalid(w http.ResponseWriter, field, format string, args ...any) {
	httpapi.WriteError(w, http.StatusUnprocessableEntity, "invalid_value", fmt.Sprintf(format, args...), field)
}

func forbidden(w http.ResponseWriter, field, message string) {
	httpapi.WriteError(w, http.StatusForbidden, "forbidden", message, field)
}

// awaitPosition waits, when the query names ?position=, until the models
// have handled it. After PositionWait it answers 503 with Retry-After rather
// than an answer that would silently lack the client's own write.
func (h *handlers) awaitPosition(w http.ResponseWriter, r *http.Request, q url.Values) bool {
	s := q.Get("position")
	if s == "" {
		return true
	}
	pos, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		invalid(w, "position", "position is a log position as a command's answer gives it (a whole number), got %q", s)
		return false
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.PositionWait)
	defer cancel()
	if err := h.cfg.Runner.WaitFor(ctx, pos); err != nil {
		if r.Context().Err() != nil {
			return false // the client has gone
		}
		w.Header().Set("Retry-After", "1")
		httpapi.WriteError(w, http.StatusServiceUnavailable, "not_caught_up",
			fmt.Sprintf("the read models have reached log position %d, not yet %d, after waiting %s; retry shortly",
				h.cfg.Runner.Position(), pos, h.cfg.PositionWait), "position")
		return false
	}
	return true
}

func (h *handlers) cases(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r, "status", "street", "community", "assignee", "category", "urgency", "overdue", "cursor", "limit", "position")
	if !ok {
		return
	}
	dir := h.cfg.Directory
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

	// Scope: a street lists its own cases, a department or unit the cases
	// it holds or held a part in (offers included, as for reading a case),
	// an auditor everything.
	actor := httpapi.ActorOf(r)
	switch actor.Role {
	case domain.ActorAuditor:
	case domain.ActorStreet:
		if lq.Street != "" && lq.Street != actor.ID {
			forbidden(w, "street", "a street lists its own cases only: "+actor.ID)
			return
		}
		lq.Street = actor.ID
	case domain.ActorDepartment, domain.ActorUnit:
		if lq.Assignee != "" && lq.Assignee != actor.ID {
			forbidden(w, "assignee", "a department or unit lists the cases it is involved in only: "+actor.ID)
			return
		}
		lq.Assignee = actor.ID
	default:
		forbidden(w, "", "your role may not list cases")
		return
	}
	if !h.awaitPosition(w, r, q) {
		return
	}
	pos := h.cfg.Runner.Position()
	cases, next, err := h.cfg.Runner.Board().List(lq)
	if err != nil {
		if errors.Is(err, projections.ErrBadQuery) {
			invalid(w, "cursor", "cursor is the next value of a previous page, unchanged: %v", err)
			return
		}
		h.cfg.Log.Error("list cases", zap.Error(err))
		httpapi.WriteError(w, http.StatusInternalServerError, "internal", "the case list failed", "")
		return
	}
	answer := CasesAnswer{Cases: cases}
	if next != "" {
		answer.Next = &next
	}
	w.Header().Set(PositionHeader, strconv.FormatUint(pos, 10))
	httpapi.WriteJSON(w, http.StatusOK, answer)
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

// stats answers the figures. Scope: an auditor sees every group; a street
// sees its own figures, grouped by street (its own group), by community
// (its own communities), by category or urgency (its own cases, from the
// breakdowns kept within each street) or by day (its own cases, day by
// day); a department or unit sees its own figures, grouped by assignee (its
// own group) or by day. Assignee figures are not kept per street, so "a
// street's figures by assignee" cannot be answered without counting other
// streets' cases: a street asking for them is refused with 403 rather than
// leaked.
//
// ?street= narrows the figures to one street's cases: an auditor may name
// any street of the directory, a street only itself.
func (h *handlers) stats(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r, "group_by", "street", "from", "to", "as_of", "position")
	if !ok {
		return
	}
	actor := httpapi.ActorOf(r)
	groupBy := q.Get("group_by")
	if groupBy == "" {
		groupBy = "street"
		if actor.IsAssignee() {
			groupBy = "assignee"
		}
	}
	if !slices.Contains(projections.GroupBys(), groupBy) {
		invalid(w, "group_by", "group_by %q is not one of %s", groupBy, strings.Join(projections.GroupBys(), ", "))
		return
	}
	street := q.Get("street")
	if _, ok := h.cfg.Directory.Street(street); street != "" && !ok {
		invalid(w, "street", "no street %q in directory %s", street, h.cfg.Directory.Version)
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
		t, err := parseTime(s, h.cfg.Directory.WorkCalendar().Location())
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

	// Scope: who may read which figures, and, for a street, narrow them to it.
	switch actor.Role {
	case domain.ActorAuditor:
	case domain.ActorStreet:
		if street != "" && street != actor.ID {
			forbidden(w, "street", fmt.Sprintf("a street sees its own figures only: %s may not read those of %s", actor.ID, street))
			return
		}
		if groupBy == "assignee" {
			forbidden(w, "group_by", "a street sees its own figures grouped by street, community, category, urgency or day, not by assignee: "+
				"assignee figures are not kept per street, and would count other streets' cases")
			return
		}
		street = actor.ID
	case domain.ActorDepartment, domain.ActorUnit:
		if street != "" {
			forbidden(w, "street", "a department or unit sees its own figures, not a street's: street= is for streets and auditors")
			return
		}
	default:
		forbidden(w, "", "your role may not read the figures")
		return
	}
	var filter func(key string) bool
	// ownDays: the figures of one key split by day, read from that key's day
	// buckets (the dimension its key lives in): a street's or an assignee's
	// own cases.
	ownDays, ownKey := "", ""
	// within: the figures of street's own cases grouped by category or
	// urgency, read from the breakdowns kept within each street.
	within := false
	switch {
	case street != "":
		switch groupBy {
		case "street":
			filter = func(key string) bool { return key == street }
		case "community":
			own := streetCommunities(h.cfg.Directory, street)
			filter = func(key string) bool { return own[key] }
		case "category", "urgency":
			within = true
		case "day":
			ownDays, ownKey = "street", street
		default:
			invalid(w, "group_by", "the figures of one street (street=%s) are grouped by street, community, category, urgency or day, not by %s: "+
				"%s figures are not kept per street", street, groupBy, groupBy)
			return
		}
	case actor.IsAssignee():
		switch groupBy {
		case "assignee":
			filter = func(key string) bool { return key == actor.ID }
		case "day":
			ownDays, ownKey = "assignee", actor.ID
		default:
			forbidden(w, "group_by", "a department or unit sees its own figures grouped by assignee or day, not by "+groupBy)
			return
		}
	}
	if !asOf.IsZero() && actor.Role != domain.ActorAuditor {
		// Each as_of folds the whole log again: an auditor's tool, not a
		// dashboard's.
		forbidden(w, "as_of", "as_of is for auditors")
		return
	}
	if !h.awaitPosition(w, r, q) {
		return
	}

	stats, pos := h.cfg.Runner.Stats(), h.cfg.Runner.Position()
	if !asOf.IsZero() {
		m, at, ok := h.foldAsOf(w, r, asOf)
		if !ok {
			return
		}
		stats, pos = m.Stats, at
	}
	var res projections.Result
	var err error
	switch {
	case ownDays != "":
		res, err = stats.QueryDays(ownDays, ownKey, from, to)
	case within:
		res, err = stats.QueryStreet(street, groupBy, from, to)
	default:
		res, err = stats.Query(groupBy, from, to, filter)
	}
	if err != nil {
		if errors.Is(err, projections.ErrBadQuery) {
			invalid(w, "group_by", "%v", err)
			return
		}
		h.cfg.Log.Error("stats query", zap.Error(err))
		httpapi.WriteError(w, http.StatusInternalServerError, "internal", "the figures failed", "")
		return
	}
	w.Header().Set(PositionHeader, strconv.FormatUint(pos, 10))
	httpapi.WriteJSON(w, http.StatusOK, res)
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

// foldAsOf rebuilds the figures as they stood at asOf, from the log.
func (h *handlers) foldAsOf(w http.ResponseWriter, r *http.Request, asOf time.Time) (*Models, uint64, bool) {
	select {
	case h.asOf <- struct{}{}:
		defer func() { <-h.asOf }()
	case <-r.Context().Done():
		return nil, 0, false
	}
	begin := time.Now()
	var last uint64
	m, err := FoldLog(r.Context(), h.cfg.Directory, StoreReader(h.cfg.Store), FoldOptions{
		AsOf:     asOf,
		Progress: func(p Progress) { last = p.Position },
		Refused: func(c Commit, err error) {
			h.cfg.Log.Warn("as_of fold: a read model refused a commit", zap.Uint64("position", c.Position), zap.String("stream", c.Stream), zap.Error(err))
		},
	})
	if err != nil {
		if r.Context().Err() == nil {
			h.cfg.Log.Error("as_of fold", zap.Error(err))
			httpapi.WriteError(w, http.StatusServiceUnavailable, "unavailable", "could not read the log to fold it as of "+asOf.Format(time.RFC3339), "")
		}
		return nil, 0, false
	}
	h.cfg.Log.Info("figures folded as of a time", zap.Time("as_of", asOf), zap.Uint64("position", last), zap.Duration("took", time.Since(begin)))
	return m, last, true
}

// LogAnswer is the body of GET /v1/log.
type LogAnswer struct {
	Commits []Commit `json:"commits"`
	// Next is the after of the next page, null when this page reached the
	// end of the log.
	Next *uint64 `json:"next"`
	// Head is the position of the last commit of the log when it was read.
	Head uint64 `json:"head"`
}

func (h *handlers) logPage(w http.ResponseWriter, r *http.Request) {
	if httpapi.ActorOf(r).Role != domain.ActorAuditor {
		forbidden(w, "", "the log is for auditors")
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
	limit := DefaultLogLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLogLimit {
			invalid(w, "limit", "limit is a whole number from 1 to %d, got %q", MaxLogLimit, s)
			return
		}
		limit = n
	}
	head, err := h.cfg.Store.Head(r.Context())
	if err == nil {
		var commits []Commit
		commits, err = ReadLog(r.Context(), h.cfg.Store, after, limit)
		if err == nil {
			answer := LogAnswer{Commits: commits, Head: uint64(head)}
			if len(commits) == limit {
				next := commits[len(commits)-1].Position
				answer.Next = &next
			}
			httpapi.WriteJSON(w, http.StatusOK, answer)
			return
		}
	}
	if r.Context().Err() != nil {
		return
	}
	h.cfg.Log.Error("read the log", zap.Uint64("after", after), zap.Error(err))
	httpapi.WriteError(w, http.StatusServiceUnavailable, "unavailable", "the event store did not answer; retry", "")
}

// snapshot answers the live models, encoded as in the snapshot file, and
// the position they describe (also in PositionHeader): an auditor folds the
// log up to that position and compares (whistle replay). The models are
// encoded into a temporary file (the fold waits meanwhile, as for a save)
// and the answer is sent from it, so that neither the encoding nor a slow
// client holds the whole document in memory or the fold still.
func (h *handlers) snapshot(w http.ResponseWriter, r *http.Request) {
	if httpapi.ActorOf(r).Role != domain.ActorAuditor {
		forbidden(w, "", "the read models' snapshot is for auditors")
		return
	}
	if _, ok := query(w, r); !ok {
		return
	}
	snap, err := h.cfg.Runner.SpoolSnapshot()
	if err != nil {
		h.cfg.Log.Error("encode the read models", zap.Error(err))
		httpapi.WriteError(w, http.StatusInternalServerError, "internal", "could not encode the read models", "")
		return
	}
	defer snap.Close()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.FormatInt(snap.Size, 10))
	w.Header().Set(PositionHeader, strconv.FormatUint(snap.Position, 10))
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, snap.File) // the client may have gone; nothing to do about it
}
