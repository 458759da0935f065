package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/whistle-gov/whistle/adapters/sse"
)

// whistle queue ASSIGNEE [--follow] [--json]: a department's or unit's open
// assignments; with --follow it keeps printing changes as they are
// dispatched (server-sent events), reconnecting with Last-Event-ID.
func init() {
	commands["queue"] = showQueue
}

// queueItem is an open assignment as GET /v1/queues answers it.
type queueItem struct {
	CaseID    string     `json:"case_id"`
	Role      string     `json:"role"`
	Status    string     `json:"status"`
	ReportBy  *time.Time `json:"report_by"`
	ResolveBy *time.Time `json:"resolve_by"`
	Overdue   bool       `json:"overdue"`
	Street    string     `json:"street"`
	Community string     `json:"community"`
	Category  string     `json:"category"`
	Urgency   string     `json:"urgency"`
	Title     string     `json:"title"`
}

// queueChange is a dispatch as the stream carries it.
type queueChange struct {
	Change     string     `json:"change"`
	CaseID     string     `json:"case_id"`
	OccurredAt time.Time  `json:"occurred_at"`
	Category   string     `json:"category"`
	Urgency    string     `json:"urgency"`
	Title      string     `json:"title"`
	Deadline   string     `json:"deadline"`
	Level      string     `json:"level"`
	Assignment *queueItem `json:"assignment"`
}

func showQueue(ctx context.Context, c *client, args []string, out io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return errors.New("queue: give the department or unit id first, e.g. whistle queue water-bureau --follow")
	}
	assignee, args := args[0], args[1:]
	fs := flag.NewFlagSet("queue", flag.ContinueOnError)
	follow := fs.Bool("follow", false, "keep printing changes as they are dispatched")
	asJSON := fs.Bool("json", false, "print the answer (or each event) as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	path := "/v1/queues/" + url.PathEscape(assignee)
	if !*follow {
		var answer struct {
			Assignments []queueItem `json:"assignments"`
		}
		if *asJSON {
			var raw map[string]any
			if err := c.call(ctx, "GET", path, nil, &raw); err != nil {
				return err
			}
			return printJSON(out, raw)
		}
		if err := c.call(ctx, "GET", path, nil, &answer); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CASE\tROLE\tSTATUS\tREPORT BY\tRESOLVE BY\tOVERDUE\tURGENCY\tCATEGORY\tWHERE\tTITLE")
		for _, it := range answer.Assignments {
			fmt.Fprintln(tw, itemRow(it))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(out, "%d open\n", len(answer.Assignments))
		return nil
	}
	return followEvents(ctx, c, path, out, func(ev sse.Event) {
		if *asJSON {
			fmt.Fprintf(out, "{\"event\":%q,\"id\":%q,\"data\":%s}\n", ev.Name, ev.ID, ev.Data)
			return
		}
		switch ev.Name {
		case "assignment":
			var it queueItem
			if json.Unmarshal([]byte(ev.Data), &it) == nil {
				fmt.Fprintln(out, "open    ", strings.ReplaceAll(itemRow(it), "\t", "  "))
			}
		case "synced":
			var s struct {
				Sequence uint64 `json:"sequence"`
				Open     *int   `json:"open"`
			}
			_ = json.Unmarshal([]byte(ev.Data), &s)
			if s.Open != nil {
				fmt.Fprintf(out, "-- %d open; following changes (sequence %d)\n", *s.Open, s.Sequence)
			} else {
				fmt.Fprintf(out, "-- following changes (sequence %d)\n", s.Sequence)
			}
		case "reset":
			fmt.Fprintln(out, "-- the server could not resume; a fresh snapshot follows")
		case "change":
			var ch queueChange
			if json.Unmarshal([]byte(ev.Data), &ch) != nil {
				return
			}
			line := fmt.Sprintf("%s  %-9s %s", ch.OccurredAt.Local().Format("15:04:05"), ch.Change, ch.CaseID)
			if a := ch.Assignment; a != nil {
				line += fmt.Sprintf("  %s %s", a.Role, a.Status)
				if a.Overdue {
					line += " OVERDUE"
				}
			}
			if ch.Deadline != "" {
				line += fmt.Sprintf("  missed %s → %s", ch.Deadline, ch.Level)
			}
			line += fmt.Sprintf("  %s %s  %s", ch.Urgency, ch.Category, ch.Title)
			fmt.Fprintln(out, line)
		}
	})
}

func itemRow(it queueItem) string {
	overdue := ""
	if it.Overdue {
		overdue = "OVERDUE"
	}
	return strings.Join([]string{it.CaseID, it.Role, it.Status, fmtTime(it.ReportBy), fmtTime(it.ResolveBy), overdue,
		it.Urgency, it.Category, it.Street + "/" + it.Community, it.Title}, "\t")
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Local().Format("01-02 15:04")
}

// followEvents reads the event stream at path until ctx is done, calling
// handle with each event. When the connection drops it reconnects, after a
// pause, with Last-Event-ID set to the last id seen, so nothing is missed
// or repeated. An answer other than 200 (a wrong token, another's queue)
// ends it with that error.
func followEvents(ctx context.Context, c *client, path string, out io.Writer, handle func(sse.Event)) error {
	if c.token == "" {
		return errors.New("set WHISTLE_TOKEN to your bearer token")
	}
	// No overall timeout: the stream lives as long as the user wants; the
	// server's heartbeats keep it from looking dead.
	hc := &http.Client{}
	lastID := ""
	for {
		err := readEvents(ctx, hc, c, path, lastID, func(ev sse.Event) {
			if ev.ID != "" {
				lastID = ev.ID
			}
			handle(ev)
		})
		if ctx.Err() != nil {
			return nil
		}
		var status *statusError
		if errors.As(err, &status) && status.code/100 == 4 {
			return err
		}
		fmt.Fprintf(out, "-- connection lost (%v); reconnecting\n", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return fmt.Sprintf("%d: %s", e.code, e.msg) }

func readEvents(ctx context.Context, hc *http.Client, c *client, path, lastID string, handle func(sse.Event)) error {
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		msg := resp.Status
		if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
			msg = e.Error.Code + ": " + e.Error.Message
		}
		return &statusError{code: resp.StatusCode, msg: msg}
	}
	err = sse.Read(resp.Body, func(ev sse.Event) error {
		if !ev.Comment { // comments are the server's heartbeats
			handle(ev)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return io.ErrUnexpectedEOF
}
