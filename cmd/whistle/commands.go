package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/whistle-gov/whistle/adapters/httpclient"
	"github.com/whistle-gov/whistle/domain"
)

// The values the API takes, for completion and help.
var (
	urgencies  = []string{"routine", "urgent", "emergency"}
	statuses   = []string{"routed", "in_progress", "resolved", "closed", "unassigned"}
	ratings    = []string{"satisfied", "basically_satisfied", "unsatisfied"}
	mediations = []string{"success", "failure"}
)

func (a *app) raiseCommand() *cobra.Command {
	var r httpclient.RaiseRequest
	var address, key string
	cmd := &cobra.Command{
		Use:     "raise --street S --community C --category K --urgency U --title T",
		Short:   "Raise a case (blow the whistle)",
		GroupID: groupStreet,
		Example: `  whistle raise --street longqiao --community wanhui --category river-pollution \
      --urgency urgent --title "Oil on the creek" --address "Wanhui road 3" --key 2026-12-02-creek`,
		Args: noArgs,
	}
	f := cmd.Flags()
	f.StringVar(&r.Street, "street", "", "your street id")
	f.StringVar(&r.Community, "community", "", "community id")
	f.StringVar(&r.Category, "category", "", "category id (see: whistle directory)")
	f.StringVar(&r.Urgency, "urgency", "routine", "routine, urgent or emergency")
	f.StringVar(&r.Title, "title", "", "a short title")
	f.StringVar(&r.Description, "description", "", "what is wrong")
	f.StringVar(&address, "address", "", "where")
	f.StringVar(&key, "key", "", "Idempotency-Key: the same key raises the case once")
	out := addOutput(cmd, false)
	a.completeDirectory(cmd, "street", "community", "category")
	_ = cmd.RegisterFlagCompletionFunc("urgency", cobra.FixedCompletions(urgencies, cobra.ShellCompDirectiveNoFileComp))
	cmd.RunE = a.action(func(cmd *cobra.Command, _ []string) error {
		if address != "" {
			r.Location = &domain.Location{Address: address}
		}
		c, err := a.api()
		if err != nil {
			return err
		}
		answer, err := c.Raise(a.ctx, r, key)
		if err != nil {
			return err
		}
		return a.printCase(out, answer)
	})
	return cmd
}

// caseAction is one command on a case: its flags are its body's fields, and
// no other command's.
type caseAction struct {
	name, short, group, example string
	flags                       func(cmd *cobra.Command) func(ctx context.Context, c *httpclient.Client, id, key string) (*httpclient.CaseAnswer, error)
}

func (a *app) caseCommands() []*cobra.Command {
	noteFlag := func(cmd *cobra.Command, usage string) *string {
		return cmd.Flags().String("note", "", usage)
	}
	actions := []caseAction{
		{name: "route", group: groupStreet, short: "Route a case by hand to a lead (and assistants)",
			example: "  whistle route CASE --lead water-bureau --assist ecology-bureau,urban-management",
			flags: func(cmd *cobra.Command) func(context.Context, *httpclient.Client, string, string) (*httpclient.CaseAnswer, error) {
				var b httpclient.RouteBody
				cmd.Flags().StringVar(&b.Lead, "lead", "", "the lead department or unit")
				cmd.Flags().StringSliceVar(&b.Assist, "assist", nil, "assisting departments or units, comma-separated")
				a.completeDirectory(cmd, "lead", "assist")
				return func(ctx context.Context, c *httpclient.Client, id, key string) (*httpclient.CaseAnswer, error) {
					return c.Route(ctx, id, b, key)
				}
			}},
		{name: "verify", group: groupStreet, short: "Accept (close) or reject a resolved case",
			example: "  whistle verify CASE --accepted=true\n  whistle verify CASE --accepted=false --note \"the outfall still runs\"",
			flags: func(cmd *cobra.Command) func(context.Context, *httpclient.Client, string, string) (*httpclient.CaseAnswer, error) {
				var b httpclient.VerifyBody
				cmd.Flags().BoolVar(&b.Accepted, "accepted", false, "accept (true) or reject (false) the resolution; required")
				cmd.Flags().StringVar(&b.Note, "note", "", "a note")
				cmd.Flags().StringVar(&b.Reply, "reply", "", "a ticket's reply to its platform (required to accept a ticket's case)")
				_ = cmd.MarkFlagRequired("accepted")
				return func(ctx context.Context, c *httpclient.Client, id, key string) (*httpclient.CaseAnswer, error) {
					return c.Verify(ctx, id, b, key)
				}
			}},
		{name: "rate", group: groupStreet, short: "Record the resident's rating",
			example: "  whistle rate CASE --rating satisfied",
			flags: func(cmd *cobra.Command) func(context.Context, *httpclient.Client, string, string) (*httpclient.CaseAnswer, error) {
				var b httpclient.RateBody
				cmd.Flags().StringVar(&b.Rating, "rating", "", "satisfied, basically_satisfied or unsatisfied")
				_ = cmd.RegisterFlagCompletionFunc("rating", cobra.FixedCompletions(ratings, cobra.ShellCompDirectiveNoFileComp))
				return func(ctx context.Context, c *httpclient.Client, id, key string) (*httpclient.CaseAnswer, error) {
					return c.Rate(ctx, id, b, key)
				}
			}},
		{name: "report", group: groupAssignee, short: "Report in (报到) for your assignment",
			example: "  whistle report CASE --note \"on our way\"",
			flags: func(cmd *cobra.Command) func(context.Context, *httpclient.Client, string, string) (*httpclient.CaseAnswer, error) {
				note := noteFlag(cmd, "a note")
				return func(ctx context.Context, c *httpclient.Client, id, key string) (*httpclient.CaseAnswer, error) {
					return c.Report(ctx, id, httpclient.NoteBody{Note: *note}, key)
				}
			}},
		{name: "progress", group: groupAssignee, short: "Record progress on your assignment",
			example: "  whistle progress CASE --note \"samples taken\"",
			flags: func(cmd *cobra.Command) func(context.Context, *httpclient.Client, string, string) (*httpclient.CaseAnswer, error) {
				note := noteFlag(cmd, "what was done")
				return func(ctx context.Context, c *httpclient.Client, id, key string) (*httpclient.CaseAnswer, error) {
					return c.Progress(ctx, id, httpclient.NoteBody{Note: *note}, key)
				}
			}},
		{name: "claim", group: groupAssignee, short: "Claim (认领) a need offered to your unit",
			example: "  whistle claim CASE",
			flags: func(cmd *cobra.Command) func(context.Context, *httpclient.Client, string, string) (*httpclient.CaseAnswer, error) {
				note := noteFlag(cmd, "a note")
				return func(ctx context.Context, c *httpclient.Client, id, key string) (*httpclient.CaseAnswer, error) {
					return c.Claim(ctx, id, httpclient.NoteBody{Note: *note}, key)
				}
			}},
		{name: "resolve", group: groupAssignee, short: "Resolve your part (a dispute: with its mediation's outcome)",
			example: "  whistle resolve CASE --note \"outfall sealed\"\n  whistle resolve CASE --mediation success",
			flags: func(cmd *cobra.Command) func(context.Context, *httpclient.Client, string, string) (*httpclient.CaseAnswer, error) {
				var b httpclient.ResolveBody
				cmd.Flags().StringVar(&b.Note, "note", "", "what was done")
				cmd.Flags().StringVar(&b.Mediation, "mediation", "", "a dispute's outcome: success or failure")
				_ = cmd.RegisterFlagCompletionFunc("mediation", cobra.FixedCompletions(mediations, cobra.ShellCompDirectiveNoFileComp))
				return func(ctx context.Context, c *httpclient.Client, id, key string) (*httpclient.CaseAnswer, error) {
					return c.Resolve(ctx, id, b, key)
				}
			}},
		{name: "decline", group: groupAssignee, short: "Decline an assignment that is not yours",
			example: "  whistle decline CASE --reason \"not our river\" --suggest water-bureau",
			flags: func(cmd *cobra.Command) func(context.Context, *httpclient.Client, string, string) (*httpclient.CaseAnswer, error) {
				var b httpclient.DeclineBody
				cmd.Flags().StringVar(&b.Reason, "reason", "", "why you decline")
				cmd.Flags().StringVar(&b.Suggest, "suggest", "", "who should take it instead")
				a.completeDirectory(cmd, "suggest")
				return func(ctx context.Context, c *httpclient.Client, id, key string) (*httpclient.CaseAnswer, error) {
					return c.Decline(ctx, id, b, key)
				}
			}},
	}
	actions = append(actions, a.ticketActions()...)
	var cmds []*cobra.Command
	for _, act := range actions {
		cmd := &cobra.Command{
			Use:     act.name + " CASE",
			Short:   act.short,
			GroupID: act.group,
			Example: act.example,
			Args:    exactArgs(1, "the case id"),
		}
		send := act.flags(cmd)
		key := cmd.Flags().String("key", "", "Idempotency-Key: the same key applies the command once")
		out := addOutput(cmd, false)
		cmd.RunE = a.action(func(cmd *cobra.Command, args []string) error {
			c, err := a.api()
			if err != nil {
				return err
			}
			answer, err := send(a.ctx, c, args[0], *key)
			if err != nil {
				return err
			}
			return a.printCase(out, answer)
		})
		cmds = append(cmds, cmd)
	}
	return cmds
}

// printCase shows a case: its fields, then its assignments as a table.
func (a *app) printCase(o *output, c *httpclient.CaseAnswer) error {
	if o.isJSON() {
		return printJSON(a.stdout, c)
	}
	n := a.dirNames()
	w := a.stdout
	field := func(name string, v cell) {
		s := v.full
		if s == "" {
			s = "-"
		}
		fmt.Fprintf(w, "%-10s %s\n", name, clean(s))
	}
	field("CASE", text(c.ID))
	field("TITLE", text(c.Title))
	status := string(c.Status)
	if c.Version > 0 {
		status += fmt.Sprintf(" (version %d)", c.Version)
	}
	field("STATUS", text(status))
	field("STREET", n.street(c.Street))
	field("COMMUNITY", n.where(c.Street, c.Community))
	category := n.category(c.Category).full
	if c.Kind != "" {
		category += ", " + string(c.Kind)
	}
	field("CATEGORY", text(category))
	field("URGENCY", text(string(c.Urgency)))
	field("RAISED", text(fmtTime(c.RaisedAt, time.DateTime)))
	if c.ClosedAt != nil {
		field("CLOSED", text(fmtTime(c.ClosedAt, time.DateTime)))
	}
	if c.Mediation != nil {
		field("MEDIATION", text(fmt.Sprint(*c.Mediation)))
	}
	if c.Rating != nil {
		field("RATING", text(fmt.Sprint(*c.Rating)))
	}
	if src := c.Source; src != nil {
		from := src.Platform + " " + src.ExternalID
		if src.ReplyBy != nil {
			from += ", reply by " + fmtTime(src.ReplyBy, time.DateTime)
		}
		field("FROM", text(from))
	}
	if c.AcceptBy != nil && c.AcceptedAt == nil {
		field("ACCEPT BY", text(fmtTime(c.AcceptBy, time.DateTime)))
	}
	if r := c.Receipt; r != nil {
		receipt := r.CaseNo
		if r.Link != "" {
			receipt += "  " + r.Link
		}
		field("RECEIPT", text(receipt))
	}
	if c.Position > 0 {
		field("POSITION", text(fmt.Sprint(c.Position)))
	}
	if len(c.Assignments) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	t := table{cols: []column{
		{header: "ASSIGNEE", shrink: true, min: 12},
		{header: "ROLE"},
		{header: "STATUS"},
		{header: "REPORT BY", drop: 2},
		{header: "RESOLVE BY", drop: 3},
		{header: "REPORTED", drop: 4},
		{header: "RESOLVED", drop: 5},
		{header: "OVERDUE"},
		{header: "NOTE", shrink: true, min: 10, wide: true},
	}}
	for _, as := range c.Assignments {
		note := as.DeclineNote
		if as.DeclineSuggest != "" {
			note += " (suggests " + as.DeclineSuggest + ")"
		}
		t.add(n.org(as.Assignee), text(string(as.Role)), text(string(as.Status)),
			text(fmtTime(as.ReportBy, shortTime)), text(fmtTime(as.ResolveBy, shortTime)),
			text(fmtTime(as.ReportedAt, shortTime)), text(fmtTime(as.ResolvedAt, shortTime)),
			text(overdueMark(as.Overdue)), text(note))
	}
	dropped, err := t.render(w, terminalWidth(w, a.getenv), o.isWide())
	if err == nil && len(dropped) > 0 {
		fmt.Fprintln(w, strings.TrimSpace(leftOut(dropped)))
	}
	return err
}

// shortTime is how tables show a time: the day and minute, local.
const shortTime = "01-02 15:04"

func fmtTime(t *time.Time, layout string) string {
	if t == nil {
		return ""
	}
	return t.Local().Format(layout)
}

func overdueMark(overdue bool) string {
	if overdue {
		return "OVERDUE"
	}
	return ""
}

// completeDirectory completes the named flags with the directory's ids
// (streets, communities, departments and units, categories), read with the
// user's token when the shell asks.
func (a *app) completeDirectory(cmd *cobra.Command, flags ...string) {
	for _, name := range flags {
		_ = cmd.RegisterFlagCompletionFunc(name, func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return a.directoryIDs(name), cobra.ShellCompDirectiveNoFileComp
		})
	}
}

// directoryIDs lists the ids a flag takes, each with its name as the
// completion's description.
func (a *app) directoryIDs(flag string) []string {
	c, err := a.api()
	if err != nil {
		return nil
	}
	dir, err := c.Directory(a.ctx)
	if err != nil {
		return nil
	}
	var out []string
	add := func(id, name string) { out = append(out, id+"\t"+clean(name)) }
	switch flag {
	case "street":
		for _, s := range dir.Streets {
			add(s.ID, s.Name)
		}
	case "community":
		for _, s := range dir.Streets {
			for _, cm := range s.Communities {
				add(cm.ID, cm.Name+", "+s.Name)
			}
		}
	case "category":
		for _, k := range dir.Categories {
			add(k.ID, k.Name)
		}
	default: // an assignee
		for _, o := range append(append([]domain.Organisation(nil), dir.Departments...), dir.Units...) {
			add(o.ID, o.Name)
		}
	}
	return out
}
