package httpclient

import (
	"context"
	"errors"
	"fmt"
	"github.com/whistle-gov/whistle/domain/view"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/whistle-gov/whistle/adapters/sse"
)

// QueueItem is an open assignment of a department's or unit's queue.
type QueueItem = view.QueueItem

// Queue is GET /v1/queues/{assignee}: the open assignments, and the log
// position the view reflects.
type Queue struct {
	Assignee    string      `json:"assignee"`
	Assignments []QueueItem `json:"assignments"`
	Position    uint64      `json:"position"`
}

// Queue reads an assignee's open assignments (the assignee itself and
// auditors).
func (c *Client) Queue(ctx context.Context, assignee string) (*Queue, error) {
	var out Queue
	if err := c.do(ctx, "GET", "/v1/queues/"+url.PathEscape(assignee), nil, &out, nil); err != nil {
		return nil, err
	}
	return &out, nil
}

// The events of a queue's stream (QueueEvents), by sse.Event.Name: first an
// "assignment" per open assignment (QueueItem), then one "synced"
// (Synced), then a "change" (QueueChange) per dispatch; "reset" when the
// server could not resume from Last-Event-ID and a fresh snapshot follows.
const (
	EventAssignment = "assignment"
	EventSynced     = "synced"
	EventChange     = "change"
	EventReset      = "reset"
)

// Synced is the data of a "synced" event.
type Synced struct {
	Sequence uint64 `json:"sequence"`
	Open     *int   `json:"open,omitempty"` // the open assignments sent before it
}

// QueueChange is the data of a "change" event: one dispatch.
type QueueChange = view.Message

// ChangedAssignment is the assignment a change is about.
type ChangedAssignment = view.Assignment

// FollowOptions tune a followed stream.
type FollowOptions struct {
	// Dropped, when set, is told each time the connection drops and is
	// about to be made again.
	Dropped func(err error)
	// Retry is the pause before reconnecting (default 1 s).
	Retry time.Duration
}

// FollowQueue reads an assignee's queue as an event stream until ctx is
// done (then it returns nil) or handle returns an error (returned as is).
// The server's heartbeats are not passed on. When the connection drops it
// reconnects with Last-Event-ID set to the last id seen, so nothing is
// missed or repeated; an answer of 4xx (a wrong token, another's queue)
// ends it with that *Error.
func (c *Client) FollowQueue(ctx context.Context, assignee string, handle func(sse.Event) error, o FollowOptions) error {
	return c.follow(ctx, "/v1/queues/"+url.PathEscape(assignee), handle, o)
}

// FollowNotifications reads a street's notifications (an auditor names the
// street) as FollowQueue reads a queue.
func (c *Client) FollowNotifications(ctx context.Context, street string, handle func(sse.Event) error, o FollowOptions) error {
	path := "/v1/notifications"
	if street != "" {
		path += "?street=" + url.QueryEscape(street)
	}
	return c.follow(ctx, path, handle, o)
}

// errHandler marks an error returned by the caller's handle, which ends a
// follow instead of causing a reconnect.
type errHandler struct{ err error }

func (e errHandler) Error() string { return e.err.Error() }

func (c *Client) follow(ctx context.Context, path string, handle func(sse.Event) error, o FollowOptions) error {
	if o.Retry <= 0 {
		o.Retry = time.Second
	}
	lastID := ""
	for {
		err := c.readStream(ctx, path, lastID, func(ev sse.Event) error {
			if ev.ID != "" {
				lastID = ev.ID
			}
			if err := handle(ev); err != nil {
				return errHandler{err}
			}
			return nil
		})
		if ctx.Err() != nil {
			return nil
		}
		if h, ok := errors.AsType[errHandler](err); ok {
			return h.err
		}
		if e, ok := errors.AsType[*Error](err); ok && e.Status/100 == 4 {
			return err
		}
		if errors.Is(err, ErrNoToken) {
			return err
		}
		if o.Dropped != nil {
			o.Dropped(err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(o.Retry):
		}
	}
}

// readStream reads one connection of an event stream; it always ends with
// an error (io.ErrUnexpectedEOF when the server closed it).
func (c *Client) readStream(ctx context.Context, path, lastID string, handle func(sse.Event) error) error {
	req, err := c.request(ctx, "GET", path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := c.stream.Do(req)
	if err != nil {
		return fmt.Errorf("httpclient: GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return decodeError("GET", path, resp)
	}
	err = sse.Read(resp.Body, func(ev sse.Event) error {
		if ev.Comment { // the server's heartbeats
			return nil
		}
		return handle(ev)
	})
	if err != nil {
		return err
	}
	return io.ErrUnexpectedEOF
}
