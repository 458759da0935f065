package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/whistle-gov/whistle/adapters/dispatch"
	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/adapters/sse"
	"github.com/whistle-gov/whistle/domain"
	"github.com/whistle-gov/whistle/projections"
	"go.uber.org/zap"
)

// DefaultHeartbeat is how often a quiet event stream sends a comment line,
// so that proxies and clients can tell a quiet stream from a dead one.
const DefaultHeartbeat = 15 * time.Second

// QueueView is what GET /v1/queues/{assignee} needs of the view of open
// assignments by assignee: the case board seen by assignee
// (readmodel.Queues). It must be safe for concurrent use.
type QueueView interface {
	// Open returns the assignee's open assignments, the most pressing first.
	Open(assignee string) []projections.QueueItem
	// Position is the log position the view has reached.
	Position() eventstore.Position
	// WaitFor waits until the view has reached pos, or ctx is done.
	WaitFor(ctx context.Context, pos eventstore.Position) error
}

// DispatchFeed is what the live streams need of the dispatch stream
// (dispatch.Feed). It must be safe for concurrent use.
type DispatchFeed interface {
	// Kept returns the first and last sequences the stream holds and how
	// many messages.
	Kept(ctx context.Context) (first, last, msgs uint64, err error)
	// LastTo returns the sequence of the last change to assignee and the
	// log position it came from; zeros when there is none.
	LastTo(ctx context.Context, assignee string) (uint64, eventstore.Position, error)
	// FollowAssignee and FollowStreet send the changes to an assignee, or
	// to a street's cases (every street's for ""), from sequence start on,
	// until ctx is done or the stream fails; then they close the channel.
	FollowAssignee(ctx context.Context, assignee string, start uint64) (<-chan dispatch.Change, error)
	FollowStreet(ctx context.Context, street string, start uint64) (<-chan dispatch.Change, error)
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

func wantsEventStream(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// queue answers GET /v1/queues/{assignee}: the assignee's open
// assignments, to whom domain.AuthorizeQueueRead allows. With "Accept:
// text/event-stream" it streams instead:
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
func (a *API) queue(w http.ResponseWriter, r *http.Request) {
	assignee := r.PathValue("assignee")
	if err := domain.AuthorizeQueueRead(actorOf(r), assignee, a.cfg.Directory); err != nil {
		a.writeFailure(w, err)
		return
	}
	if wantsEventStream(r) {
		release, ok := a.limits.admitStream(w, actorOf(r))
		if !ok {
			return
		}
		defer release()
		a.streamQueue(w, r, assignee)
		return
	}
	if !a.boardCaughtUp(w, r, "the queue view", zap.String("assignee", assignee)) {
		return
	}
	writeJSON(w, http.StatusOK, QueueAnswer{Assignee: assignee, Assignments: a.cfg.Queues.Open(assignee), Position: uint64(a.cfg.Queues.Position())})
}

// boardCaughtUp waits (CatchUpTimeout at most) until the board, which the
// queues and the inboxes are views of, holds the log's head, so a reader
// sees its own writes; else it answers 503 catching_up and returns false.
func (a *API) boardCaughtUp(w http.ResponseWriter, r *http.Request, view string, who zap.Field) bool {
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.CatchUpTimeout)
	defer cancel()
	head, err := a.cfg.Store.Head(ctx)
	if err == nil {
		err = a.cfg.Queues.WaitFor(ctx, head)
	}
	if err != nil {
		a.cfg.Log.Warn(view+" read: not caught up", who, zap.Error(err))
		writeError(w, http.StatusServiceUnavailable, "catching_up", view+" is catching up with the log; try again", "")
		return false
	}
	return true
}

// notifications streams, the way a queue does (no snapshot), the changes
// to the cases of the caller's street; an auditor gets every street's, or
// one with ?street= (domain.ScopeNotifications).
func (a *API) notifications(w http.ResponseWriter, r *http.Request) {
	street, err := domain.ScopeNotifications(actorOf(r), r.URL.Query().Get("street"), a.cfg.Directory)
	if err != nil {
		a.writeFailure(w, err)
		return
	}
	if !wantsEventStream(r) {
		writeError(w, http.StatusNotAcceptable, "not_acceptable", "notifications are a stream: send Accept: text/event-stream", "")
		return
	}
	release, ok := a.limits.admitStream(w, actorOf(r))
	if !ok {
		return
	}
	defer release()
	ctx := r.Context()
	first, lastSeq, msgs, err := a.cfg.Feed.Kept(ctx)
	if err != nil {
		a.streamUnavailable(w, err)
		return
	}
	start, resumed := lastSeq+1, false
	if last, ok := lastEventID(r); ok && resumable(first, lastSeq, msgs, last) {
		start, resumed = last+1, true
	}
	changes, err := a.cfg.Feed.FollowStreet(ctx, street, start)
	if err != nil {
		a.streamUnavailable(w, err)
		return
	}
	out, ok := sse.Start(w, a.cfg.Log)
	if !ok {
		return
	}
	if !resumed {
		if _, hadLast := lastEventID(r); hadLast {
			out.Event("reset", 0, map[string]string{"reason": "the changes after Last-Event-ID are no longer kept"})
		}
		out.Event("synced", lastSeq, SyncedEvent{Sequence: lastSeq})
	}
	a.relay(ctx, out, changes)
}

// streamQueue sends the snapshot (unless resuming) and then the changes.
func (a *API) streamQueue(w http.ResponseWriter, r *http.Request, assignee string) {
	ctx := r.Context()
	first, lastSeq, msgs, err := a.cfg.Feed.Kept(ctx)
	if err != nil {
		a.streamUnavailable(w, err)
		return
	}
	last, hadLast := lastEventID(r)
	if hadLast && resumable(first, lastSeq, msgs, last) {
		changes, err := a.cfg.Feed.FollowAssignee(ctx, assignee, last+1)
		if err != nil {
			a.streamUnavailable(w, err)
			return
		}
		if out, ok := sse.Start(w, a.cfg.Log); ok {
			a.relay(ctx, out, changes)
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
	seq, pos, err := a.cfg.Feed.LastTo(ctx, assignee)
	if err != nil {
		a.streamUnavailable(w, err)
		return
	}
	wctx, cancel := context.WithTimeout(ctx, a.cfg.CatchUpTimeout)
	head, err := a.cfg.Store.Head(wctx)
	if err == nil {
		err = a.cfg.Queues.WaitFor(wctx, max(head, pos))
	}
	cancel()
	if err != nil {
		a.streamUnavailable(w, err)
		return
	}
	items := a.cfg.Queues.Open(assignee)
	changes, err := a.cfg.Feed.FollowAssignee(ctx, assignee, seq+1)
	if err != nil {
		a.streamUnavailable(w, err)
		return
	}
	out, ok := sse.Start(w, a.cfg.Log)
	if !ok {
		return
	}
	if hadLast {
		out.Event("reset", 0, map[string]string{"reason": "the changes after Last-Event-ID are no longer kept; a fresh snapshot follows"})
	}
	for _, it := range items {
		out.Event("assignment", 0, it)
	}
	n := len(items)
	out.Event("synced", seq, SyncedEvent{Sequence: seq, Open: &n})
	a.relay(ctx, out, changes)
}

// resumable tells whether the stream, holding msgs messages from sequence
// first to lastSeq, still holds every message after sequence last.
func resumable(first, lastSeq, msgs, last uint64) bool {
	if last > lastSeq {
		return false // not a sequence of this stream
	}
	return msgs == 0 || first <= last+1
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

func (a *API) streamUnavailable(w http.ResponseWriter, err error) {
	a.cfg.Log.Warn("event stream not started", zap.Error(err))
	writeError(w, http.StatusServiceUnavailable, "unavailable", "the dispatch stream is not available; try again", "")
}

// relay sends every change as a "change" event, with heartbeats, until the
// client goes or the feed ends.
func (a *API) relay(ctx context.Context, out *sse.Writer, changes <-chan dispatch.Change) {
	a.relayAs(ctx, out, "change", changes)
}

// relayAs is relay with events of another name.
func (a *API) relayAs(ctx context.Context, out *sse.Writer, name string, changes <-chan dispatch.Change) {
	beat := time.NewTicker(a.cfg.Heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.closing:
			return
		case c, ok := <-changes:
			if !ok {
				return
			}
			if !out.Raw(name, c.Seq, c.Data) {
				return
			}
			beat.Reset(a.cfg.Heartbeat)
		case <-beat.C:
			if !out.Comment("heartbeat") {
				return
			}
		}
	}
}
