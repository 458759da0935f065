package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/whistle-gov/whistle/adapters/httpclient"
	"github.com/whistle-gov/whistle/adapters/sse"
)

// queueCommand: a department's or unit's open assignments; with --follow it
// keeps printing changes as they are dispatched (server-sent events),
// reconnecting with Last-Event-ID.
func (a *app) queueCommand() *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:     "queue ASSIGNEE",
		Short:   "A department's or unit's open assignments; --follow for every change, live",
		GroupID: groupAssignee,
		Example: "  whistle queue water-bureau\n  whistle queue water-bureau --follow",
		Args:    exactArgs(1, "the department or unit id, e.g. whistle queue water-bureau --follow"),
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return a.directoryIDs("assignee"), cobra.ShellCompDirectiveNoFileComp
		},
	}
	cmd.Flags().BoolVar(&follow, "follow", false, "keep printing changes as they are dispatched")
	out := addOutput(cmd, true)
	cmd.RunE = a.action(func(cmd *cobra.Command, args []string) error {
		c, err := a.api()
		if err != nil {
			return err
		}
		if follow {
			return a.followQueue(c, args[0], out)
		}
		q, err := c.Queue(a.ctx, args[0])
		if err != nil {
			return err
		}
		if out.isJSON() {
			return printJSON(a.stdout, q)
		}
		dropped, err := a.queueTable(q.Assignments).render(a.stdout, terminalWidth(a.stdout, a.getenv), out.isWide())
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "%d open%s\n", len(q.Assignments), leftOut(dropped))
		return nil
	})
	return cmd
}

func (a *app) queueTable(items []httpclient.QueueItem) *table {
	n := a.dirNames()
	anyOverdue := false
	for _, it := range items {
		anyOverdue = anyOverdue || it.Overdue
	}
	t := &table{cols: []column{
		{header: "CASE"},
		{header: "ROLE", drop: 3},
		{header: "STATUS"},
		{header: "DUE", drop: 1},
		{header: "REPORT BY", wide: true},
		{header: "RESOLVE BY", wide: true},
		{header: "OVERDUE", wide: !anyOverdue},
		{header: "URGENCY", drop: 4},
		{header: "CATEGORY", shrink: true, min: 16, drop: 2},
		{header: "WHERE", shrink: true, min: 16, drop: 5},
		{header: "TITLE", shrink: true, min: 20},
	}}
	for _, it := range items {
		// DUE is the deadline the assignment is working towards.
		due := it.ResolveBy
		if it.Status == "assigned" {
			due = it.ReportBy
		}
		t.add(text(it.CaseID), text(string(it.Role)), text(string(it.Status)), text(fmtTime(due, shortTime)),
			text(fmtTime(it.ReportBy, shortTime)), text(fmtTime(it.ResolveBy, shortTime)), text(overdueMark(it.Overdue)),
			text(string(it.Urgency)), n.category(it.Category), n.where(it.Street, it.Community), text(it.Title))
	}
	return t
}

// followQueue prints the queue's stream: a line per open assignment and
// per change, or each event as a JSON line with -o json.
func (a *app) followQueue(c *httpclient.Client, assignee string, out *output) error {
	w := a.stdout
	width := terminalWidth(w, a.getenv)
	line := func(s string) {
		s = clean(s)
		if width > 0 && !out.isWide() {
			s = elide(s, width)
		}
		fmt.Fprintln(w, s)
	}
	var n *names
	if !out.isJSON() {
		n = a.dirNames()
	}
	return c.FollowQueue(a.ctx, assignee, func(ev sse.Event) error {
		if out.isJSON() {
			// The event's data is the server's JSON, passed on as it is
			// (a malformed one as a string).
			data := json.RawMessage(ev.Data)
			if !json.Valid(data) {
				data, _ = json.Marshal(ev.Data)
			}
			return writeJSON(w, struct {
				Event string          `json:"event"`
				ID    string          `json:"id"`
				Data  json.RawMessage `json:"data"`
			}{ev.Name, ev.ID, data}, "")
		}
		switch ev.Name {
		case httpclient.EventAssignment:
			var it httpclient.QueueItem
			if json.Unmarshal([]byte(ev.Data), &it) == nil {
				due := it.ResolveBy
				if it.Status == "assigned" {
					due = it.ReportBy
				}
				line(fmt.Sprintf("open      %s  %s %s  due %s%s  %s %s  %s", it.CaseID, it.Role, it.Status, fmtTime(due, shortTime),
					prefixed(" ", overdueMark(it.Overdue)), it.Urgency, n.category(it.Category).shortest(), it.Title))
			}
		case httpclient.EventSynced:
			var s httpclient.Synced
			_ = json.Unmarshal([]byte(ev.Data), &s)
			if s.Open != nil {
				line(fmt.Sprintf("-- %d open; following changes (sequence %d)", *s.Open, s.Sequence))
			} else {
				line(fmt.Sprintf("-- following changes (sequence %d)", s.Sequence))
			}
		case httpclient.EventReset:
			line("-- the server could not resume; a fresh snapshot follows")
		case httpclient.EventChange:
			var ch httpclient.QueueChange
			if json.Unmarshal([]byte(ev.Data), &ch) != nil {
				return nil
			}
			s := fmt.Sprintf("%s  %-9s %s", ch.OccurredAt.Local().Format("15:04:05"), ch.Change, ch.CaseID)
			if as := ch.Assignment; as != nil {
				s += fmt.Sprintf("  %s %s%s", as.Role, as.Status, prefixed(" ", overdueMark(as.Overdue)))
			}
			if ch.Deadline != "" {
				s += fmt.Sprintf("  missed %s → %s", ch.Deadline, ch.Level)
			}
			s += fmt.Sprintf("  %s %s  %s", ch.Urgency, n.category(ch.Category).shortest(), ch.Title)
			line(s)
		}
		return nil
	}, httpclient.FollowOptions{Dropped: func(err error) {
		line(fmt.Sprintf("-- connection lost (%v); reconnecting", err))
	}})
}

func prefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}
