package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/adapters/httpapi"
	"github.com/whistle-gov/whistle/domain"
	"github.com/whistle-gov/whistle/projections"
	"go.uber.org/zap"
)

// DefaultHeartbeat is how often a quiet event stream sends a comment line,
// so that proxies and clients can tell a quiet stream from a dead one.
const DefaultHeartbeat = 15 * time.Second

// QueueView answers what is open for an assignee: the case board seen by
// assignee (readmodel.Queues).
type QueueView interface {
	// Open returns the assignee's open assignments, the most pressing first.
	Open(assignee string) []projections.QueueItem
	// Position is the log position the view has reached.
	Position() eventstore.Position
	// WaitFor waits until the view has reached pos, or ctx is done.
	WaitFor(ctx context.Context, pos eventstore.Position) error
}

// HTTPConfig wires the queue and notification routes.
type HTTPConfig struct {
	Queues    QueueView
	Store     eventstore.Store // for the log's head: a queue read waits until the view reaches it
	Conn      *nats.Conn       // reads the dispatch stream for live changes
	Directory *domain.Directory
	Log       *zap.Logger
	// Heartbeat; default DefaultHeartbeat.
	Heartbeat time.Duration
	// CatchUpTimeout bounds how long a queue read waits for the view to
	// reach the log's head before answering 503; default 5s.
	CatchUpTimeout time.Duration
}

// QueueAnswer is the body of GET /v1/queues/{assignee}.
type QueueAnswer struct {
	Assignee    string                  `json:"assignee"`
	Assignments []projections.QueueItem `json:"assignments"`
	// Position is the log position the answer reflects.
	Position uint64 `json:"position"`
}

// SyncedEvent is the data of the "synced" server-sent event: the stream
// sequence after which live changes follow. Its id is the same sequence, so
// that a client that reconnects with Last-Event-ID resumes right there.
type SyncedEvent struct {
	Sequence uint64 `json:"sequence"`
	Open     *int   `json:"open,omitempty"` // open assignments sent before, for a queue
}

type routes struct {
	cfg HTTPConfig
	js  jetstream.JetStream
}

// Routes returns the registration of GET /v1/queues/{assignee} and GET
// /v1/notifications, for httpapi.Config.Extra.
//
// GET /v1/queues/{assignee} answers the assignee's open assignments, to that
// department or unit and to auditors (others get 403). With
// "Accept: text/event-stream" it streams instead:
//
//   - "assignment" events, one per open assignment (no id);
//   - one "synced" event whose id is the dispatch stream's sequence at which
//     the snapshot stands;
//   - then a "change" event per dispatch to the assignee, as it is
//     published, with the message as data and its stream sequence as id;
//   - a comment line (": heartbeat") when nothing was sent for Heartbeat.
//
// A client that reconnects with Last-Event-ID gets the changes after that
// sequence and no snapshot: changes are upserts keyed by case_id with the
// case's version, so applying them to what it had is enough. When the
// stream no longer holds every message after that sequence (they aged out),
// it gets a "reset" event and a fresh snapshot instead.
//
// GET /v1/notifications streams the same way (no snapshot) the changes to
// the cases of the caller's street; an auditor gets every street's, or one
// with ?street=.
func Routes(cfg HTTPConfig) (func(mux *http.ServeMux, api *httpapi.API), error) {
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.CatchUpTimeout <= 0 {
		cfg.CatchUpTimeout = 5 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	js, err := jetstream.New(cfg.Conn)
	if err != nil {
		return nil, fmt.Errorf("dispatch: routes: %w", err)
	}
	rt := &routes{cfg: cfg, js: js}
	return func(mux *http.ServeMux, api *httpapi.API) {
		mux.HandleFunc("GET /v1/queues/{assignee}", api.Authed(rt.queue))
		mux.HandleFunc("GET /v1/notifications", api.Authed(rt.notifications))
	}, nil
}

func wantsEventStream(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

func (rt *routes) queue(w http.ResponseWriter, r *http.Request) {
	assignee := r.PathValue("assignee")
	actor := httpapi.ActorOf(r)
	switch {
	case actor.Role == domain.ActorAuditor:
		if !rt.cfg.Directory.IsAssignee(assignee) {
			httpapi.WriteError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no department or unit %q", assignee), "")
			return
		}
	case actor.IsAssignee() && actor.ID == assignee:
	default:
		httpapi.WriteError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("only %s itself and auditors may read its queue", assignee), "")
		return
	}
	if wantsEventStream(r) {
		rt.streamQueue(w, r, assignee)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), rt.cfg.CatchUpTimeout)
	defer cancel()
	head, err := rt.cfg.Store.Head(ctx)
	if err == nil {
		err = rt.cfg.Queues.WaitFor(ctx, head)
	}
	if err != nil {
		rt.cfg.Log.Warn("queue read: view not caught up", zap.String("assignee", assignee), zap.Error(err))
		httpapi.WriteError(w, http.StatusServiceUnavailable, "catching_up", "the queue view is catching up with the log; try again", "")
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, QueueAnswer{Assignee: assignee, Assignments: rt.cfg.Queues.Open(assignee), Position: uint64(rt.cfg.Queues.Position())})
}

func (rt *routes) notifications(w http.ResponseWriter, r *http.Request) {
	actor := httpapi.ActorOf(r)
	street := r.URL.Query().Get("street")
	var subject string
	switch actor.Role {
	case domain.ActorStreet:
		if street != "" && street != actor.ID {
			httpapi.WriteError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("street %s may not read the notifications of street %s", actor.ID, street), "street")
			return
		}
		subject = StreetSubject(actor.ID)
	case domain.ActorAuditor:
		subject = StreetPrefix + ">"
		if street != "" {
			if _, ok := rt.cfg.Directory.Street(street); !ok {
				httpapi.WriteError(w, http.StatusUnprocessableEntity, "invalid_value", fmt.Sprintf("unknown street %q", street), "street")
				return
			}
			subject = StreetSubject(street)
		}
	default:
		httpapi.WriteError(w, http.StatusForbidden, "forbidden", "only streets and auditors read street notifications", "")
		return
	}
	if !wantsEventStream(r) {
		httpapi.WriteError(w, http.StatusNotAcceptable, "not_acceptable", "notifications are a stream: send Accept: text/event-stream", "")
		return
	}
	ctx := r.Context()
	stream, err := rt.js.Stream(ctx, StreamName)
	if err != nil {
		rt.unavailable(w, err)
		return
	}
	info, err := stream.Info(ctx)
	if err != nil {
		rt.unavailable(w, err)
		return
	}
	start, resumed := info.State.LastSeq+1, false
	if last, ok := lastEventID(r); ok && resumable(info, last) {
		start, resumed = last+1, true
	}
	sse, ok := startSSE(w, rt.cfg.Log)
	if !ok {
		return
	}
	if !resumed {
		if _, hadLast := lastEventID(r); hadLast {
			sse.event("reset", 0, map[string]string{"reason": "the changes after Last-Event-ID are no longer kept"})
		}
		sse.event("synced", info.State.LastSeq, SyncedEvent{Sequence: info.State.LastSeq})
	}
	rt.follow(ctx, sse, subject, start)
}

// streamQueue sends the snapshot (unless resuming) and then the changes.
func (rt *routes) streamQueue(w http.ResponseWriter, r *http.Request, assignee string) {
	ctx := r.Context()
	subject := DispatchSubject(assignee)
	stream, err := rt.js.Stream(ctx, StreamName)
	if err != nil {
		rt.unavailable(w, err)
		return
	}
	info, err := stream.Info(ctx)
	if err != nil {
		rt.unavailable(w, err)
		return
	}
	last, hadLast := lastEventID(r)
	if hadLast && resumable(info, last) {
		sse, ok := startSSE(w, rt.cfg.Log)
		if ok {
			rt.follow(ctx, sse, subject, last+1)
		}
		return
	}
	// The snapshot must include everything dispatched up to the sequence
	// from which changes follow, or a change could fall between the two:
	// take that sequence from the subject's last message and wait until the
	// view has folded the commit it came from, and the log's head too, so
	// that the snapshot shows whatever was committed before the request.
	// Changes the snapshot already shows may follow again (the dispatcher
	// lags the view a little): they are upserts of the same version.
	var seq, pos uint64
	m, err := stream.GetLastMsgForSubject(ctx, subject)
	switch {
	case err == nil:
		seq = m.Sequence
		pos, _ = strconv.ParseUint(m.Header.Get(HeaderPosition), 10, 64)
	case errors.Is(err, jetstream.ErrMsgNotFound):
	default:
		rt.unavailable(w, err)
		return
	}
	wctx, cancel := context.WithTimeout(ctx, rt.cfg.CatchUpTimeout)
	head, err := rt.cfg.Store.Head(wctx)
	if err == nil {
		err = rt.cfg.Queues.WaitFor(wctx, max(head, eventstore.Position(pos)))
	}
	cancel()
	if err != nil {
		rt.unavailable(w, err)
		return
	}
	items := rt.cfg.Queues.Open(assignee)
	sse, ok := startSSE(w, rt.cfg.Log)
	if !ok {
		return
	}
	if hadLast {
		sse.event("reset", 0, map[string]string{"reason": "the changes after Last-Event-ID are no longer kept; a fresh snapshot follows"})
	}
	for _, it := range items {
		sse.event("assignment", 0, it)
	}
	n := len(items)
	sse.event("synced", seq, SyncedEvent{Sequence: seq, Open: &n})
	rt.follow(ctx, sse, subject, seq+1)
}

// resumable tells whether the stream still holds every message after
// sequence last.
func resumable(info *jetstream.StreamInfo, last uint64) bool {
	if last > info.State.LastSeq {
		return false // not a sequence of this stream
	}
	return info.State.Msgs == 0 || info.State.FirstSeq <= last+1
}

// lastEventID reads Last-Event-ID, or ?last_event_id= for clients that
// cannot set headers.
func lastEventID(r *http.Request) (uint64, bool) {
	s := r.Header.Get("Last-Event-ID")
	if s == "" {
		s = r.URL.Query().Get("last_event_id")
	}
	if s == "" {
		return 0, false
	}
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	return n, err == nil
}

func (rt *routes) unavailable(w http.ResponseWriter, err error) {
	rt.cfg.Log.Warn("event stream not started", zap.Error(err))
	httpapi.WriteError(w, http.StatusServiceUnavailable, "unavailable", "the dispatch stream is not available; try again", "")
}

// follow sends every message on subject from sequence start on, with
// heartbeats, until the client goes or the stream fails.
func (rt *routes) follow(ctx context.Context, sse *sseWriter, subject string, start uint64) {
	cons, err := rt.js.OrderedConsumer(ctx, StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{subject},
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       max(start, 1),
		InactiveThreshold: 30 * time.Second,
	})
	if err != nil {
		rt.cfg.Log.Warn("event stream: consumer not created", zap.String("subject", subject), zap.Error(err))
		return
	}
	it, err := cons.Messages()
	if err != nil {
		rt.cfg.Log.Warn("event stream: consumer not started", zap.String("subject", subject), zap.Error(err))
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs := make(chan jetstream.Msg)
	go func() {
		defer close(msgs)
		for {
			m, err := it.Next()
			if err != nil {
				return
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	defer it.Stop()
	beat := time.NewTicker(rt.cfg.Heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-msgs:
			if !ok {
				return
			}
			meta, err := m.Metadata()
			if err != nil {
				continue
			}
			if !sse.raw("change", meta.Sequence.Stream, m.Data()) {
				return
			}
			beat.Reset(rt.cfg.Heartbeat)
		case <-beat.C:
			if !sse.comment("heartbeat") {
				return
			}
		}
	}
}

// sseWriter writes server-sent events and flushes each.
type sseWriter struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	log *zap.Logger
}

// startSSE answers 200 with an event stream, with the server's read and
// write deadlines lifted for this long-lived response.
func startSSE(w http.ResponseWriter, log *zap.Logger) (*sseWriter, bool) {
	rc := http.NewResponseController(w)
	// The server's WriteTimeout (and the ReadTimeout, whose expiry cancels
	// the request's context once the body is read) would cut the stream.
	if err := rc.SetWriteDeadline(time.Time{}); err != nil {
		log.Warn("event stream: cannot lift the write deadline", zap.Error(err))
	}
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // ask proxies such as nginx not to buffer
	w.WriteHeader(http.StatusOK)
	s := &sseWriter{w: w, rc: rc, log: log}
	return s, s.comment("whistle event stream")
}

// event writes one event with v as JSON data; id 0 writes no id.
func (s *sseWriter) event(name string, id uint64, v any) bool {
	data, err := json.Marshal(v)
	if err != nil {
		return false
	}
	return s.raw(name, id, data)
}

// raw writes one event whose data is one line of JSON.
func (s *sseWriter) raw(name string, id uint64, data []byte) bool {
	var b strings.Builder
	if id > 0 {
		b.WriteString("id: ")
		b.WriteString(strconv.FormatUint(id, 10))
		b.WriteByte('\n')
	}
	b.WriteString("event: ")
	b.WriteString(name)
	b.WriteString("\ndata: ")
	// JSON from json.Marshal has no raw newlines; guard anyway, since a
	// newline would end the data field.
	b.WriteString(strings.ReplaceAll(string(data), "\n", ""))
	b.WriteString("\n\n")
	return s.flush(b.String())
}

func (s *sseWriter) comment(text string) bool { return s.flush(": " + text + "\n\n") }

func (s *sseWriter) flush(chunk string) bool {
	if _, err := io.WriteString(s.w, chunk); err != nil {
		return false
	}
	return s.rc.Flush() == nil
}
