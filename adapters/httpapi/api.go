// Package httpapi is whistle's HTTP API (v1), every route of it: commands
// for streets and assignees, case reads, the read models (case list,
// figures, the log and the snapshot for auditors), queues and notifications
// as JSON or event streams, the dashboard's page and assets, metrics,
// health and readiness. Who may read what is decided by the domain's read
// policy (domain.AuthorizeCaseRead, ScopeFigures, ...); the read side is
// reached through small interfaces (ReadModels, QueueView, DispatchFeed,
// Dashboard). Shapes and statuses follow DESIGN.md; they are a contract.
package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/whistle-gov/whistle/adapters/attachments"
	"github.com/whistle-gov/whistle/adapters/casehandler"
	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/adapters/httpapi/openapi"
	"github.com/whistle-gov/whistle/adapters/pii"
	"github.com/whistle-gov/whistle/domain"
	"go.uber.org/zap"
)

// MaxBody is the largest request body accepted; larger ones get 413.
const MaxBody = 64 << 10

// Authenticator maps a bearer token to its principal.
type Authenticator interface {
	Authenticate(token string) (domain.Actor, bool)
}

// Config wires the API to the rest of the service. The read side (read
// models, queues, the dispatch feed, the dashboard, metrics) is optional:
// a nil one leaves its routes out.
type Config struct {
	Handler   *casehandler.Handler
	Store     eventstore.Store
	Directory *domain.Directory
	Auth      Authenticator
	// Requesters keeps the cases' keys for their requesters' personal data;
	// nil: a raise with a requester is refused (503).
	Requesters *pii.Vault
	// CaseNumbers hands out receipts' case numbers; nil: raises get no
	// receipt and POST .../receipt is 503.
	CaseNumbers CaseNumbers
	// Callbacks serves GET /v1/callbacks (the board).
	Callbacks CallbackList
	// ResidentPerMinute and ResidentBurst limit each client address on the
	// open receipt routes (GET /r/{token}, POST /r/{token}/rating);
	// defaults 20 a minute, bursts of 30.
	ResidentPerMinute, ResidentBurst int
	// Attachments keeps the cases' files; nil: adding or reading one is 503.
	Attachments *attachments.Store
	Log         *zap.Logger
	// Ready reports whether the store and the bus can serve; nil means ready.
	Ready func(ctx context.Context) error
	// Observer, when set, is told of every request served.
	Observer Observer

	// ReadModels serves GET /v1/cases, /v1/stats, /v1/log and
	// /v1/readmodels/snapshot.
	ReadModels ReadModels
	// PositionWait is how long a read with ?position= waits for the read
	// models to reach it before answering 503 (default 2 s).
	PositionWait time.Duration

	// Queues and Feed serve GET /v1/queues/{assignee} (both) and GET
	// /v1/notifications (Feed).
	Queues QueueView
	Feed   DispatchFeed
	// Inbox serves GET /v1/streets/{street}/inbox and Outbox GET
	// /v1/outbox/{platform}, with Queues.
	Inbox  InboxView
	Outbox OutboxFeed
	// Heartbeat is how often a quiet event stream sends a comment line;
	// default DefaultHeartbeat.
	Heartbeat time.Duration
	// CatchUpTimeout bounds how long a queue read waits for the view to
	// reach the log's head before answering 503; default 5 s.
	CatchUpTimeout time.Duration

	// Dashboard serves GET / and GET /ui/{asset}; GET /v1/me comes with it.
	Dashboard Dashboard
	// Metrics serves GET /metrics; Pprof adds Go's profiles on /debug/pprof/.
	Metrics http.Handler
	Pprof   bool

	// MaxInFlight bounds the requests served at once (event streams
	// aside); one more is answered 503 with Retry-After. /healthz, /readyz
	// and /metrics are never shed. 0: no bound.
	MaxInFlight int
	// MaxStreamsPerPrincipal bounds the event streams one principal keeps
	// open; one more is answered 429 with Retry-After. 0: no bound.
	MaxStreamsPerPrincipal int
	// StoreFull, when set, tells whether the event store cannot write now
	// (its disk is full): commands are then answered 507 at once, naming
	// the cause, instead of waiting for the store's timeout.
	StoreFull func() error
}

// Observer is told of every request, for metrics: route is the matched
// pattern ("GET /v1/cases/{id}", "/" for no route), never the raw path. It
// must be quick and safe for concurrent use.
type Observer interface {
	RequestDone(route string, status int, took time.Duration)
}

// API serves the HTTP API.
type API struct {
	cfg Config
	mux *http.ServeMux
	// closing is closed by EndStreams: the event streams end.
	closing   chan struct{}
	closeOnce sync.Once
	limits    *limits
	// residentLimit throttles the open receipt routes per client address.
	residentLimit *clientLimiter
}

// EndStreams ends every event stream at once, and those started later as
// soon as they start: a server shutting down would otherwise wait for them
// until its grace period runs out. Give it to http.Server.RegisterOnShutdown.
func (a *API) EndStreams() { a.closeOnce.Do(func() { close(a.closing) }) }

// New builds the API's routes.
func New(cfg Config) *API {
	if cfg.PositionWait <= 0 {
		cfg.PositionWait = 2 * time.Second
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.CatchUpTimeout <= 0 {
		cfg.CatchUpTimeout = 5 * time.Second
	}
	a := &API{cfg: cfg, mux: http.NewServeMux(), closing: make(chan struct{}),
		limits: newLimits(cfg.MaxInFlight, cfg.MaxStreamsPerPrincipal)}
	if cfg.ResidentPerMinute <= 0 {
		a.cfg.ResidentPerMinute = 20
	}
	if cfg.ResidentBurst <= 0 {
		a.cfg.ResidentBurst = 30
	}
	a.residentLimit = newClientLimiter(a.cfg.ResidentPerMinute, a.cfg.ResidentBurst)
	a.mux.HandleFunc("POST /v1/whistles", a.authed(a.raise))
	a.mux.HandleFunc("POST /v1/tickets", a.authed(a.ticket))
	a.mux.HandleFunc("GET /v1/cases/{id}", a.authed(a.getCase))
	a.mux.HandleFunc("GET /v1/cases/{id}/history", a.authed(a.getHistory))
	a.mux.HandleFunc("POST /v1/cases/{id}/{action}", a.authed(a.caseCommand))
	a.mux.HandleFunc("POST /v1/cases/{id}/attachments", a.authed(a.addAttachment))
	a.mux.HandleFunc("GET /v1/cases/{id}/attachments/{sha256}", a.authed(a.getAttachment))
	a.mux.HandleFunc("GET /v1/directory", a.authed(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, cfg.Directory)
	}))
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	a.mux.HandleFunc("GET /readyz", a.readyz)
	// The resident's receipt: no login, the link's token is the key.
	a.mux.HandleFunc("GET /r/{token}", a.limited(a.residentPage))
	a.mux.HandleFunc("POST /r/{token}/rating", a.limited(a.residentRate))
	if cfg.Callbacks != nil {
		a.mux.HandleFunc("GET /v1/callbacks", a.authed(a.callbacks))
	}
	// Open like /healthz: it describes the API, no case data.
	a.mux.HandleFunc("GET /v1/openapi.json", serveOpenAPI)
	if cfg.ReadModels != nil {
		a.mux.HandleFunc("GET /v1/cases", a.authed(a.listCases))
		a.mux.HandleFunc("GET /v1/stats", a.authed(a.stats))
		a.mux.HandleFunc("GET /v1/log", a.authed(a.logPage))
		a.mux.HandleFunc("GET /v1/readmodels/snapshot", a.authed(a.snapshot))
	}
	if cfg.Queues != nil && cfg.Feed != nil {
		a.mux.HandleFunc("GET /v1/queues/{assignee}", a.authed(a.queue))
		if cfg.Inbox != nil {
			a.mux.HandleFunc("GET /v1/streets/{street}/inbox", a.authed(a.inbox))
		}
		if cfg.Outbox != nil {
			a.mux.HandleFunc("GET /v1/outbox/{platform}", a.authed(a.outbox))
		}
	}
	if cfg.Feed != nil {
		a.mux.HandleFunc("GET /v1/notifications", a.authed(a.notifications))
	}
	if cfg.Dashboard != nil {
		a.mux.HandleFunc("GET /{$}", cfg.Dashboard.ServePage)
		a.mux.HandleFunc("GET /ui/{asset...}", func(w http.ResponseWriter, r *http.Request) {
			if !cfg.Dashboard.ServeAsset(w, r) {
				writeError(w, http.StatusNotFound, "not_found", "no dashboard asset "+r.URL.Path, "")
			}
		})
		a.mux.HandleFunc("GET /v1/me", a.authed(me))
	}
	if cfg.Metrics != nil {
		// Open to anyone like /healthz: it names routes and counts, no case data.
		a.mux.Handle("GET /metrics", cfg.Metrics)
	}
	if cfg.Pprof {
		a.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		a.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		a.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
		a.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	}
	a.mux.HandleFunc("/", a.noRoute)
	return a
}

// methods are those a route may answer, for the Allow header of a 405.
var methods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// noRoute answers what no route matched: 405 with Allow when the path is a
// route's under another method, 404 otherwise; both in the error shape.
func (a *API) noRoute(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range methods {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := a.mux.Handler(probe); pattern != "/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		if slices.Contains(allow, http.MethodGet) {
			allow = append(allow, http.MethodHead)
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed",
			fmt.Sprintf("%s is not a method of %s: use %s", r.Method, r.URL.Path, strings.Join(allow, ", ")), "")
		return
	}
	writeError(w, http.StatusNotFound, "not_found", "no such route: "+r.Method+" "+r.URL.Path, "")
}

// uncleanPath tells whether a path holds an empty, "." or ".." segment,
// which the mux would answer with a redirect to the cleaned path (and an
// HTML body); no route of the API has one.
func uncleanPath(p string) bool {
	if p == "" || p[0] != '/' {
		return true
	}
	segs := strings.Split(p[1:], "/")
	for i, seg := range segs {
		// An empty last segment is a trailing slash (/, /debug/pprof/).
		if seg == "." || seg == ".." || seg == "" && i < len(segs)-1 {
			return true
		}
	}
	return false
}

// Dashboard serves the web page and its embedded assets
// (dashboard.Dashboard).
type Dashboard interface {
	// ServePage answers GET /.
	ServePage(w http.ResponseWriter, r *http.Request)
	// ServeAsset answers GET /ui/{asset}; false when there is no such
	// asset, having written nothing.
	ServeAsset(w http.ResponseWriter, r *http.Request) bool
}

// Me is the body of GET /v1/me: who the bearer token belongs to.
type Me struct {
	Role string `json:"role"`
	ID   string `json:"id"`
}

func me(w http.ResponseWriter, r *http.Request) {
	a := actorOf(r)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, Me{Role: string(a.Role), ID: a.ID})
}

// ServeHTTP logs every request with its route, status and duration.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	pattern := "/"
	if uncleanPath(r.URL.Path) {
		writeError(rec, http.StatusNotFound, "not_found", "no such route: "+r.Method+" "+r.URL.Path+
			" (a path has no empty, . or .. segment)", "")
	} else {
		_, pattern = a.mux.Handler(r)
		// A shed request is counted under its route (status 503).
		if release, ok := a.limits.admit(rec, r); ok {
			func() {
				defer release() // also when a handler panics (net/http recovers it)
				a.mux.ServeHTTP(rec, r)
			}()
		}
	}
	took := time.Since(start)
	if a.cfg.Observer != nil {
		a.cfg.Observer.RequestDone(pattern, rec.status, took)
	}
	a.cfg.Log.Debug("request", zap.String("method", r.Method), zap.String("route", pattern),
		zap.Int("status", rec.status), zap.Duration("duration", took))
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (flush, deadlines).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

type actorKey struct{}

// authed wraps a handler so that it runs only for a valid bearer token, with
// the principal in the request's context (see actorOf).
func (a *API) authed(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// The scheme is case-insensitive (RFC 9110, 11.1): "bearer" is Bearer.
		scheme, token, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
		token = strings.TrimSpace(token)
		if !strings.EqualFold(scheme, "Bearer") || token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="whistle"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "send Authorization: Bearer <token>", "")
			return
		}
		actor, ok := a.cfg.Auth.Authenticate(token)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="whistle", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "unknown token", "")
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), actorKey{}, actor)))
	}
}

// actorOf returns the authenticated principal of a request served by authed.
func actorOf(r *http.Request) domain.Actor {
	actor, _ := r.Context().Value(actorKey{}).(domain.Actor)
	return actor
}

func (a *API) readyz(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := a.cfg.Ready(ctx); err != nil {
			writeError(w, http.StatusServiceUnavailable, "not_ready", err.Error(), "")
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(openapi.Document)
}

// ErrorBody is the shape of every error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong and, for bad input, in which field.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// writeError writes the error shape of DESIGN.md.
func writeError(w http.ResponseWriter, status int, code, message, field string) {
	writeJSON(w, status, ErrorBody{Error: ErrorDetail{Code: code, Message: message, Field: field}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client may have gone; nothing to do about it
}

// writeFailure maps a command or read error to its status.
func (a *API) writeFailure(w http.ResponseWriter, err error) {
	var refusal *domain.Refusal
	switch {
	case errors.As(err, &refusal):
		switch {
		case errors.Is(err, domain.ErrInvalidValue):
			writeError(w, http.StatusUnprocessableEntity, "invalid_value", refusal.Reason, refusal.Field)
		case errors.Is(err, domain.ErrNotYours):
			writeError(w, http.StatusForbidden, "forbidden", refusal.Reason, refusal.Field)
		case errors.Is(err, domain.ErrNoCase), errors.Is(err, domain.ErrNotFound):
			writeError(w, http.StatusNotFound, "not_found", refusal.Reason, "")
		case errors.Is(err, domain.ErrLimitReached):
			writeError(w, http.StatusConflict, "case_event_limit", refusal.Reason, refusal.Field)
		default:
			writeError(w, http.StatusConflict, "invalid_transition", refusal.Reason, refusal.Field)
		}
	case errors.Is(err, casehandler.ErrIdempotencyMismatch):
		writeError(w, http.StatusConflict, "idempotency_key_reused", err.Error(), "Idempotency-Key")
	case errors.Is(err, casehandler.ErrContention):
		writeError(w, http.StatusConflict, "version_conflict", err.Error(), "")
	case errors.Is(err, errNoAttachments):
		writeError(w, http.StatusServiceUnavailable, "unavailable", "this service keeps no attachments: it runs without an attachment store", "")
	case errors.Is(err, errNoVault):
		writeError(w, http.StatusServiceUnavailable, "unavailable", "this service keeps no personal data: it runs without a key store", "requester")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, "timeout", "the request timed out; retrying with the same Idempotency-Key is safe", "")
	case a.storeFull(w):
		// The append failed as the disk filled: its answer names the cause.
	default:
		a.cfg.Log.Error("request failed", zap.Error(err))
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the event store did not answer; retrying with the same Idempotency-Key is safe", "")
	}
}

// lingerLimit bounds what is read and discarded of a body over MaxBody
// after its 413 is written: a client that sends the whole body before it
// reads the answer (no Expect: 100-continue) would otherwise meet a reset
// connection instead of the 413 (a lingering close, as nginx does).
const lingerLimit = 64 << 20

// decodeBody reads a JSON body strictly into v: at most MaxBody bytes,
// field names matched exactly, no unknown field, no duplicate key, valid
// UTF-8 only, nothing after the value (go-json-experiment's defaults, the
// encoding/json/v2 design). An empty body leaves v as it is when emptyOK.
// It writes the error answer itself and returns false on failure.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, emptyOK bool) bool {
	raw := r.Body
	body, err := io.ReadAll(http.MaxBytesReader(w, raw, MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the body is over %d bytes", MaxBody), "")
			_ = http.NewResponseController(w).Flush()
			_, _ = io.CopyN(io.Discard, raw, lingerLimit)
			return false
		}
		writeError(w, http.StatusBadRequest, "malformed", "could not read the body: "+err.Error(), "")
		return false
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if emptyOK {
			return true
		}
		writeError(w, http.StatusBadRequest, "malformed", "a JSON body is required", "")
		return false
	}
	if err := jsonv2.Unmarshal(body, v, jsonv2.RejectUnknownMembers(true)); err != nil {
		code, msg, field := describeJSONError(err)
		writeError(w, http.StatusBadRequest, code, msg, field)
		return false
	}
	return true
}

// describeJSONError says what is wrong with a body and where.
func describeJSONError(err error) (code, msg, field string) {
	var semantic *jsonv2.SemanticError
	var syntactic *jsontext.SyntacticError
	switch {
	case errors.As(err, &semantic) && errors.Is(semantic.Err, jsonv2.ErrUnknownName):
		name := semantic.JSONPointer.LastToken()
		return "unknown_field", fmt.Sprintf("unknown field %q", name), name
	case errors.As(err, &semantic) && semantic.JSONPointer != "":
		f := strings.ReplaceAll(strings.TrimPrefix(string(semantic.JSONPointer), "/"), "/", ".")
		if semantic.GoType != nil && semantic.JSONKind != 0 {
			return "malformed", fmt.Sprintf("field %s must be %s, got %s", f, semantic.GoType, semantic.JSONKind), f
		}
		return "malformed", fmt.Sprintf("field %s: %v", f, err), f
	case errors.As(err, &syntactic) && errors.Is(err, jsontext.ErrDuplicateName):
		f := strings.ReplaceAll(strings.TrimPrefix(string(syntactic.JSONPointer), "/"), "/", ".")
		return "malformed", fmt.Sprintf("duplicate key %q at byte %d: each key once", f, syntactic.ByteOffset), f
	case errors.As(err, &syntactic) && syntactic.Err != nil && strings.Contains(syntactic.Err.Error(), "invalid UTF-8"): // its sentinel is internal
		return "malformed", fmt.Sprintf("invalid UTF-8 at byte %d: text must be valid UTF-8", syntactic.ByteOffset), ""
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed", "the JSON body ends too early", ""
	case errors.As(err, &syntactic):
		return "malformed", fmt.Sprintf("invalid JSON at byte %d: %v", syntactic.ByteOffset, err), ""
	}
	return "malformed", "invalid JSON: " + err.Error(), ""
}
