package httpclient

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/whistle-gov/whistle/domain/view"
	"net/url"
	"strconv"
	"time"

	"github.com/whistle-gov/whistle/domain"
)

// RaiseRequest is the body of POST /v1/whistles: street, community,
// category, urgency and title are required.
type RaiseRequest struct {
	Street      string           `json:"street"`
	Community   string           `json:"community"`
	Category    string           `json:"category"`
	Urgency     string           `json:"urgency"`
	Title       string           `json:"title"`
	Description string           `json:"description,omitempty"`
	Location    *domain.Location `json:"location,omitempty"`
}

// CaseAnswer is a case as GET /v1/cases/{id} or a command answers it; a
// command's answer also carries the log position it wrote, which the read
// models can be asked to reach (CaseFilter.Position, StatsQuery.Position).
type CaseAnswer struct {
	domain.Case
	Position uint64 `json:"position,omitempty"`
	// Receipt: for the case's street and the platform that sent its
	// ticket; its link only in the answer that issued it.
	Receipt *view.ReceiptView `json:"receipt,omitempty"`
}

// Raise raises a case. With a key, a repeat with the same body answers the
// first case; the same key with another body is ErrConflict.
func (c *Client) Raise(ctx context.Context, r RaiseRequest, idempotencyKey string) (*CaseAnswer, error) {
	var out CaseAnswer
	if err := c.do(ctx, "POST", "/v1/whistles", r, &out, idempotency(idempotencyKey)); err != nil {
		return nil, err
	}
	return &out, nil
}

// The bodies of the case commands; a zero field is left out where the API
// makes it optional.
type (
	// NoteBody is the body of report, progress and claim.
	NoteBody struct {
		Note string `json:"note,omitempty"`
	}
	ResolveBody struct {
		Note      string `json:"note,omitempty"`
		Mediation string `json:"mediation,omitempty"` // success or failure; disputes only
	}
	DeclineBody struct {
		Reason  string `json:"reason"`
		Suggest string `json:"suggest"`
	}
	RouteBody struct {
		Lead   string   `json:"lead"`
		Assist []string `json:"assist,omitempty"`
	}
	VerifyBody struct {
		Accepted bool   `json:"accepted"`
		Note     string `json:"note"`
		Reply    string `json:"reply,omitempty"` // to the platform, for a ticket's case accepted as resolved
	}
	RateBody struct {
		Rating string `json:"rating"`
	}
)

// Report reports in for the caller's assignment.
func (c *Client) Report(ctx context.Context, caseID string, b NoteBody, idempotencyKey string) (*CaseAnswer, error) {
	return c.command(ctx, caseID, "report", b, idempotencyKey)
}

// Progress records progress on the caller's assignment.
func (c *Client) Progress(ctx context.Context, caseID string, b NoteBody, idempotencyKey string) (*CaseAnswer, error) {
	return c.command(ctx, caseID, "progress", b, idempotencyKey)
}

// Claim claims a need offered to the caller's unit.
func (c *Client) Claim(ctx context.Context, caseID string, b NoteBody, idempotencyKey string) (*CaseAnswer, error) {
	return c.command(ctx, caseID, "claim", b, idempotencyKey)
}

// Resolve resolves the caller's part.
func (c *Client) Resolve(ctx context.Context, caseID string, b ResolveBody, idempotencyKey string) (*CaseAnswer, error) {
	return c.command(ctx, caseID, "resolve", b, idempotencyKey)
}

// Decline declines the caller's assignment.
func (c *Client) Decline(ctx context.Context, caseID string, b DeclineBody, idempotencyKey string) (*CaseAnswer, error) {
	return c.command(ctx, caseID, "decline", b, idempotencyKey)
}

// Route routes a case by hand (streets).
func (c *Client) Route(ctx context.Context, caseID string, b RouteBody, idempotencyKey string) (*CaseAnswer, error) {
	return c.command(ctx, caseID, "route", b, idempotencyKey)
}

// Verify accepts or rejects a resolved case (streets).
func (c *Client) Verify(ctx context.Context, caseID string, b VerifyBody, idempotencyKey string) (*CaseAnswer, error) {
	return c.command(ctx, caseID, "verify", b, idempotencyKey)
}

// Rate records the resident's rating (streets).
func (c *Client) Rate(ctx context.Context, caseID string, b RateBody, idempotencyKey string) (*CaseAnswer, error) {
	return c.command(ctx, caseID, "rate", b, idempotencyKey)
}

func (c *Client) command(ctx context.Context, caseID, action string, body any, key string) (*CaseAnswer, error) {
	var out CaseAnswer
	if err := c.do(ctx, "POST", "/v1/cases/"+url.PathEscape(caseID)+"/"+action, body, &out, idempotency(key)); err != nil {
		return nil, err
	}
	return &out, nil
}

// Case reads a case's current state, or its state at asOf when asOf is not
// zero.
func (c *Client) Case(ctx context.Context, caseID string, asOf time.Time) (*CaseAnswer, error) {
	path := "/v1/cases/" + url.PathEscape(caseID)
	if !asOf.IsZero() {
		path += "?as_of=" + url.QueryEscape(asOf.Format(time.RFC3339Nano))
	}
	var out CaseAnswer
	if err := c.do(ctx, "GET", path, nil, &out, nil); err != nil {
		return nil, err
	}
	return &out, nil
}

// History is a case's every event in stream order, and the server's verdict
// on the hash chain (check it yourself with domain.VerifyChain).
type History struct {
	Events       []domain.Envelope `json:"events"`
	ChainWhole   bool              `json:"chain_whole"`
	ChainProblem string            `json:"chain_problem,omitempty"`
	// Next is the after of the next page, nil on the last; Total the events
	// of the whole history.
	Next  *uint64 `json:"next,omitempty"`
	Total uint64  `json:"total"`
}

// MaxHistoryLimit is the most events one HistoryPage call may ask for.
const MaxHistoryLimit = 1000

// History reads a case's events, every page of them.
func (c *Client) History(ctx context.Context, caseID string) (*History, error) {
	var all *History
	var after uint64
	for {
		page, err := c.HistoryPage(ctx, caseID, after, MaxHistoryLimit)
		if err != nil {
			return nil, err
		}
		if all == nil {
			all = page
		} else {
			all.Events = append(all.Events, page.Events...)
		}
		// A next that does not move on would loop for ever: stop there.
		if page.Next == nil || *page.Next <= after {
			all.Next = nil
			return all, nil
		}
		after = *page.Next
	}
}

// HistoryPage reads at most limit events of a case after the first
// `after` ones (0: from the start; limit 0: the server's default).
func (c *Client) HistoryPage(ctx context.Context, caseID string, after uint64, limit int) (*History, error) {
	q := url.Values{}
	if after > 0 {
		q.Set("after", strconv.FormatUint(after, 10))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	path := "/v1/cases/" + url.PathEscape(caseID) + "/history"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out History
	if err := c.do(ctx, "GET", path, nil, &out, nil); err != nil {
		return nil, err
	}
	return &out, nil
}

// Directory reads the streets, communities, departments, units and
// categories.
func (c *Client) Directory(ctx context.Context) (*domain.Directory, error) {
	var out domain.Directory
	if err := c.do(ctx, "GET", "/v1/directory", nil, &out, nil); err != nil {
		return nil, err
	}
	return &out, nil
}

// CaseSummary is a case as the case list shows it.
type CaseSummary = view.CaseSummary

// AssignmentSummary is one assignment as the case list shows it.
type AssignmentSummary = view.Assignment

// CaseFilter selects cases of GET /v1/cases; empty fields do not filter.
type CaseFilter struct {
	Status, Street, Community, Assignee, Category, Urgency string
	// Overdue is "true" or "false" ("" for both).
	Overdue string
	// Cursor is a page's Next, to read the page after it.
	Cursor string
	// Limit is cases per page (0: the server's default, 50; at most 500).
	Limit int
	// Position waits until the list includes this log position (a command's
	// answer's Position).
	Position uint64
}

func (f CaseFilter) query() url.Values {
	q := url.Values{}
	for name, v := range map[string]string{"status": f.Status, "street": f.Street, "community": f.Community,
		"assignee": f.Assignee, "category": f.Category, "urgency": f.Urgency, "overdue": f.Overdue, "cursor": f.Cursor} {
		if v != "" {
			q.Set(name, v)
		}
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.Position > 0 {
		q.Set("position", strconv.FormatUint(f.Position, 10))
	}
	return q
}

// CasePage is one page of the case list, newest raised first.
type CasePage struct {
	Cases []CaseSummary `json:"cases"`
	// Next is the cursor of the next page, nil on the last.
	Next *string `json:"next"`
}

// Cases reads one page of the case list, as far as the caller may see it.
func (c *Client) Cases(ctx context.Context, f CaseFilter) (*CasePage, error) {
	path := "/v1/cases"
	if q := f.query(); len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out CasePage
	if err := c.do(ctx, "GET", path, nil, &out, nil); err != nil {
		return nil, err
	}
	return &out, nil
}

// EachCasePage reads the list from f's cursor to the last page, calling
// page with each; an error from page stops it and is returned.
func (c *Client) EachCasePage(ctx context.Context, f CaseFilter, page func(*CasePage) error) error {
	for {
		p, err := c.Cases(ctx, f)
		if err != nil {
			return err
		}
		if err := page(p); err != nil {
			return err
		}
		if p.Next == nil {
			return nil
		}
		f.Cursor = *p.Next
	}
}

// StatsQuery selects the figures of GET /v1/stats; empty fields take the
// server's defaults.
type StatsQuery struct {
	// GroupBy: street, community, assignee, category, urgency or day.
	GroupBy string
	// Street narrows an auditor's figures to one street's cases.
	Street string
	// From and To bound the window [From, To): RFC 3339 times or dates
	// (2006-01-02), passed as given so that the server names a bad one.
	From, To string
	// AsOf is the figures as they stood at that RFC 3339 time (auditors).
	AsOf     string
	Position uint64
}

// Stats is the figures, one group per key.
type Stats = view.Stats

// StatsGroup is the figures of one key; rates are fractions from 0 to 1,
// durations seconds, nil when nothing is counted.
type StatsGroup = view.StatsGroup

// Stats reads the figures, as far as the caller may see them.
func (c *Client) Stats(ctx context.Context, s StatsQuery) (*Stats, error) {
	q := url.Values{}
	for name, v := range map[string]string{"group_by": s.GroupBy, "street": s.Street, "from": s.From, "to": s.To, "as_of": s.AsOf} {
		if v != "" {
			q.Set(name, v)
		}
	}
	if s.Position > 0 {
		q.Set("position", strconv.FormatUint(s.Position, 10))
	}
	path := "/v1/stats"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out Stats
	if err := c.do(ctx, "GET", path, nil, &out, nil); err != nil {
		return nil, err
	}
	return &out, nil
}

// Commit is one commit of the global log, its envelopes whole.
type Commit struct {
	Position uint64            `json:"position"`
	Stream   string            `json:"stream"`
	Events   []domain.Envelope `json:"events"`
}

// LogPage is one page of GET /v1/log.
type LogPage struct {
	Commits []Commit `json:"commits"`
	// Next is the after of the next page, nil when this page reached the end
	// of the log.
	Next *uint64 `json:"next"`
	// Head is the position of the log's last commit when it was read.
	Head uint64 `json:"head"`
}

// MaxLogLimit is the most commits one Log call may ask for.
const MaxLogLimit = 1000

// Log reads up to limit commits of the global log after position `after`
// (auditors); fewer than limit means the end was reached.
func (c *Client) Log(ctx context.Context, after uint64, limit int) (*LogPage, error) {
	var out LogPage
	if err := c.do(ctx, "GET", fmt.Sprintf("/v1/log?after=%d&limit=%d", after, limit), nil, &out, nil); err != nil {
		return nil, err
	}
	return &out, nil
}

// ReadModelsSnapshot reads the live read models and the log position they
// describe, in the read models' snapshot format (auditors).
func (c *Client) ReadModelsSnapshot(ctx context.Context) (json.RawMessage, error) {
	var out json.RawMessage
	if err := c.do(ctx, "GET", "/v1/readmodels/snapshot", nil, &out, nil); err != nil {
		return nil, err
	}
	return out, nil
}
