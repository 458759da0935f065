package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/whistle-gov/whistle/adapters/httpclient"
	"github.com/whistle-gov/whistle/adapters/sse"
	"github.com/whistle-gov/whistle/domain"
	"github.com/whistle-gov/whistle/domain/view"
)

// Tickets from above: a platform's view (send one, read the replies), and
// the street's inbox, accept and return.

const groupPlatform = "platform"

var (
	channels   = []string{"phone", "web", "app", "grid", "other"}
	priorities = []string{"normal", "leader_assigned", "media_exposed"}
)

func (a *app) ticketsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "tickets",
		Short:   "A platform's tickets: send one, read the replies",
		GroupID: groupPlatform,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{fmt.Errorf("tickets: give a subcommand: send or replies")}
		},
	}
	cmd.AddCommand(a.ticketSendCommand(), a.ticketRepliesCommand())
	return cmd
}

func (a *app) ticketSendCommand() *cobra.Command {
	var t view.TicketRequest
	var address, replyBy string
	cmd := &cobra.Command{
		Use:   "send --external-id ID --street S --title T",
		Short: "Send a street a ticket (the same external id again answers the same case)",
		Example: `  whistle tickets send --external-id 12345-20261202-0042 --street longqiao \
      --title "井盖破损" --channel phone --reply-by 2026-12-09T17:30:00+08:00`,
		Args: noArgs,
	}
	f := cmd.Flags()
	f.StringVar(&t.ExternalID, "external-id", "", "the ticket's number on your platform")
	f.StringVar(&t.Street, "street", "", "the street it is addressed to")
	f.StringVar(&t.Title, "title", "", "a short title")
	f.StringVar(&t.Description, "description", "", "what the resident reported")
	f.StringVar(&t.Category, "category", "", "category id, if known (the street fills it in otherwise)")
	f.StringVar(&t.Community, "community", "", "community id, if known")
	f.StringVar(&t.Urgency, "urgency", "", "routine, urgent or emergency, if known")
	f.StringVar(&address, "address", "", "where")
	f.StringVar(&replyBy, "reply-by", "", "when the platform wants its reply (RFC 3339)")
	f.StringVar(&t.Channel, "channel", "", "phone, web, app, grid or other")
	f.StringVar(&t.Priority, "priority", "", "normal, leader_assigned or media_exposed")
	out := addOutput(cmd, false)
	a.completeDirectory(cmd, "street", "community", "category")
	_ = cmd.RegisterFlagCompletionFunc("urgency", cobra.FixedCompletions(urgencies, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("channel", cobra.FixedCompletions(channels, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("priority", cobra.FixedCompletions(priorities, cobra.ShellCompDirectiveNoFileComp))
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if replyBy != "" {
			at, err := time.Parse(time.RFC3339, replyBy)
			if err != nil {
				return usageError{fmt.Errorf("--reply-by: a time in RFC 3339, like 2026-12-09T17:30:00+08:00: %v", err)}
			}
			t.ReplyBy = &at
		}
		if address != "" {
			t.Location = &domain.Location{Address: address}
		}
		a.started = true
		c, err := a.api()
		if err != nil {
			return err
		}
		answer, err := c.SendTicket(a.ctx, t)
		if err != nil {
			return err
		}
		return a.printCase(out, answer)
	}
	return cmd
}

func (a *app) ticketRepliesCommand() *cobra.Command {
	var after uint64
	var follow bool
	cmd := &cobra.Command{
		Use:     "replies PLATFORM",
		Short:   "A platform's replies, oldest first; --follow for new ones, live",
		Example: "  whistle tickets replies hotline-12345\n  whistle tickets replies hotline-12345 --after 41 --follow -o json",
		Args:    exactArgs(1, "the platform id, e.g. whistle tickets replies hotline-12345"),
	}
	cmd.Flags().Uint64Var(&after, "after", 0, "only replies after this seq (the last one you have)")
	cmd.Flags().BoolVar(&follow, "follow", false, "keep printing replies as they come")
	out := addOutput(cmd, true)
	cmd.RunE = a.action(func(cmd *cobra.Command, args []string) error {
		c, err := a.api()
		if err != nil {
			return err
		}
		if follow {
			return a.followReplies(c, args[0], after, out)
		}
		var all []view.Reply
		for {
			page, err := c.Outbox(a.ctx, args[0], after, 0)
			if err != nil {
				return err
			}
			all = append(all, page.Replies...)
			if len(page.Replies) == 0 || page.Next == after {
				break
			}
			after = page.Next
		}
		if out.isJSON() {
			return printJSON(a.stdout, httpclient.OutboxPage{Replies: all, Next: after})
		}
		t := repliesTable(all)
		dropped, err := t.render(a.stdout, terminalWidth(a.stdout, a.getenv), out.isWide())
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "%d replies; next --after %d%s\n", len(all), after, leftOut(dropped))
		return nil
	})
	return cmd
}

func repliesTable(replies []view.Reply) *table {
	t := &table{cols: []column{
		{header: "SEQ"},
		{header: "EXTERNAL ID"},
		{header: "OUTCOME"},
		{header: "AT", drop: 2},
		{header: "CASE", drop: 1, wide: true},
		{header: "REPLY", shrink: true, min: 20},
	}}
	for _, r := range replies {
		at := r.At
		t.add(text(fmt.Sprint(r.Seq)), text(r.ExternalID), text(r.Outcome), text(fmtTime(&at, shortTime)), text(r.CaseID), text(r.Reply))
	}
	return t
}

func (a *app) followReplies(c *httpclient.Client, platform string, after uint64, out *output) error {
	return c.FollowOutbox(a.ctx, platform, after, func(ev sse.Event) error {
		if ev.Name != "reply" {
			return nil
		}
		if out.isJSON() {
			data := json.RawMessage(ev.Data)
			if !json.Valid(data) {
				data, _ = json.Marshal(ev.Data)
			}
			return writeJSON(a.stdout, data, "")
		}
		var r view.Reply
		if json.Unmarshal([]byte(ev.Data), &r) == nil {
			fmt.Fprintln(a.stdout, clean(fmt.Sprintf("%d  %s  %s  %s  %s", r.Seq, r.ExternalID, r.Outcome, r.At.Local().Format(time.DateTime), r.Reply)))
		}
		return nil
	}, httpclient.FollowOptions{Dropped: func(err error) {
		fmt.Fprintln(a.stdout, clean(fmt.Sprintf("-- connection lost (%v); reconnecting", err)))
	}})
}

// inboxCommand: a street's tickets waiting to be signed for, the soonest
// accept deadline first.
func (a *app) inboxCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "inbox STREET",
		Short:   "Your street's tickets to sign for (accept) or return",
		GroupID: groupStreet,
		Example: "  whistle inbox longqiao",
		Args:    exactArgs(1, "the street id, e.g. whistle inbox longqiao"),
	}
	out := addOutput(cmd, true)
	cmd.RunE = a.action(func(cmd *cobra.Command, args []string) error {
		c, err := a.api()
		if err != nil {
			return err
		}
		in, err := c.Inbox(a.ctx, args[0])
		if err != nil {
			return err
		}
		if out.isJSON() {
			return printJSON(a.stdout, in)
		}
		n := a.dirNames()
		t := &table{cols: []column{
			{header: "CASE"},
			{header: "FROM", drop: 3},
			{header: "EXTERNAL ID", drop: 2},
			{header: "ACCEPT BY"},
			{header: "OVERDUE"},
			{header: "PRIORITY", drop: 4},
			{header: "CATEGORY", shrink: true, min: 12, drop: 1},
			{header: "TITLE", shrink: true, min: 20},
		}}
		for _, it := range in.Tickets {
			from, ext := "", ""
			if it.Source != nil {
				from, ext = it.Source.Platform, it.Source.ExternalID
			}
			t.add(text(it.CaseID), text(from), text(ext), text(fmtTime(it.AcceptBy, shortTime)), text(overdueMark(it.Overdue)),
				text(string(it.Priority)), n.category(it.Category), text(it.Title))
		}
		dropped, err := t.render(a.stdout, terminalWidth(a.stdout, a.getenv), out.isWide())
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "%d to sign for%s\n", len(in.Tickets), leftOut(dropped))
		return nil
	})
	return cmd
}

// ticketActions are the street's commands on a ticket's case.
func (a *app) ticketActions() []caseAction {
	return []caseAction{
		{name: "accept", group: groupStreet, short: "Sign for (签收) a ticket and route its case",
			example: "  whistle accept CASE --category broken-manhole-cover --community wanhui",
			flags: func(cmd *cobra.Command) func(context.Context, *httpclient.Client, string, string) (*httpclient.CaseAnswer, error) {
				var b httpclient.AcceptBody
				cmd.Flags().StringVar(&b.Category, "category", "", "category id, when the ticket has none")
				cmd.Flags().StringVar(&b.Community, "community", "", "community id, when the ticket has none")
				cmd.Flags().StringVar(&b.Urgency, "urgency", "", "routine, urgent or emergency, when the ticket has none")
				a.completeDirectory(cmd, "category", "community")
				_ = cmd.RegisterFlagCompletionFunc("urgency", cobra.FixedCompletions(urgencies, cobra.ShellCompDirectiveNoFileComp))
				return func(ctx context.Context, c *httpclient.Client, id, key string) (*httpclient.CaseAnswer, error) {
					return c.Accept(ctx, id, b, key)
				}
			}},
		{name: "return", group: groupStreet, short: "Return (回退) a ticket to its platform, with the reason",
			example: "  whistle return CASE --reason \"不属本街道辖区\"",
			flags: func(cmd *cobra.Command) func(context.Context, *httpclient.Client, string, string) (*httpclient.CaseAnswer, error) {
				var b httpclient.ReturnBody
				cmd.Flags().StringVar(&b.Reason, "reason", "", "why it is returned (sent to the platform as the reply)")
				return func(ctx context.Context, c *httpclient.Client, id, key string) (*httpclient.CaseAnswer, error) {
					return c.Return(ctx, id, b, key)
				}
			}},
	}
}
