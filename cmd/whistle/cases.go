package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/whistle-gov/whistle/adapters/httpclient"
)

// casesCommand: the case list, newest raised first, scoped by the server to
// what the caller may see.
func (a *app) casesCommand() *cobra.Command {
	var f httpclient.CaseFilter
	var all bool
	cmd := &cobra.Command{
		Use:     "cases",
		Short:   "The case board, as far as you may see it",
		GroupID: groupRead,
		Example: "  whistle cases --status in_progress --overdue true\n  whistle cases --status closed --all -o json",
		Args:    noArgs,
	}
	fl := cmd.Flags()
	fl.StringVar(&f.Status, "status", "", "routed, in_progress, resolved, closed or unassigned")
	fl.StringVar(&f.Street, "street", "", "street id")
	fl.StringVar(&f.Community, "community", "", "community id")
	fl.StringVar(&f.Assignee, "assignee", "", "department or unit id")
	fl.StringVar(&f.Category, "category", "", "category id")
	fl.StringVar(&f.Urgency, "urgency", "", "routine, urgent or emergency")
	fl.StringVar(&f.Overdue, "overdue", "", "true or false")
	fl.StringVar(&f.Cursor, "cursor", "", "the next cursor of a previous page")
	fl.IntVar(&f.Limit, "limit", 0, "cases per page (default 50, at most 500)")
	fl.Uint64Var(&f.Position, "position", 0, "wait until the list includes this log position (from a command's answer)")
	fl.BoolVar(&all, "all", false, "follow the cursor to the last page")
	out := addOutput(cmd, true)
	_ = cmd.RegisterFlagCompletionFunc("status", cobra.FixedCompletions(statuses, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("urgency", cobra.FixedCompletions(urgencies, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("overdue", cobra.FixedCompletions([]string{"true", "false"}, cobra.ShellCompDirectiveNoFileComp))
	a.completeDirectory(cmd, "street", "community", "assignee", "category")
	cmd.RunE = a.action(func(cmd *cobra.Command, _ []string) error {
		c, err := a.api()
		if err != nil {
			return err
		}
		if out.isJSON() {
			// One JSON answer per page, as the server gives them.
			if !all {
				page, err := c.Cases(a.ctx, f)
				if err != nil {
					return err
				}
				return printJSON(a.stdout, page)
			}
			return c.EachCasePage(a.ctx, f, func(p *httpclient.CasePage) error { return printJSON(a.stdout, p) })
		}
		var cases []httpclient.CaseSummary
		var next *string
		collect := func(p *httpclient.CasePage) error {
			cases, next = append(cases, p.Cases...), p.Next
			return nil
		}
		if all {
			err = c.EachCasePage(a.ctx, f, collect)
		} else {
			var p *httpclient.CasePage
			if p, err = c.Cases(a.ctx, f); err == nil {
				err = collect(p)
			}
		}
		if err != nil {
			return err
		}
		dropped, err := a.caseTable(cases).render(a.stdout, terminalWidth(a.stdout, a.getenv), out.isWide())
		if err != nil {
			return err
		}
		more := ""
		if next != nil {
			more = fmt.Sprintf("; more with --cursor %s (or --all)", clean(*next))
		}
		fmt.Fprintf(a.stdout, "%d cases%s%s\n", len(cases), more, leftOut(dropped))
		return nil
	})
	return cmd
}

func (a *app) caseTable(cases []httpclient.CaseSummary) *table {
	n := a.dirNames()
	anyOverdue := false
	for i := range cases {
		anyOverdue = anyOverdue || cases[i].Overdue()
	}
	t := &table{cols: []column{
		{header: "CASE"},
		{header: "RAISED", drop: 3},
		{header: "STATUS"},
		{header: "KIND", wide: true},
		{header: "URGENCY", drop: 4},
		{header: "CATEGORY", shrink: true, min: 16, drop: 1},
		{header: "WHERE", shrink: true, min: 16, drop: 5},
		{header: "LEAD", shrink: true, min: 16, drop: 2},
		{header: "OVERDUE", wide: !anyOverdue},
		{header: "TITLE", shrink: true, min: 20},
	}}
	for _, cs := range cases {
		var leads []string
		var leadCell cell
		for _, as := range cs.Assignments {
			if as.Role == "lead" && as.Status != "declined" && as.Status != "lapsed" {
				leads = append(leads, as.Assignee)
			}
		}
		if len(leads) == 1 {
			leadCell = n.org(leads[0])
		} else {
			leadCell = text(strings.Join(leads, ","))
		}
		t.add(text(cs.CaseID), text(cs.RaisedAt.Local().Format(shortTime)), text(string(cs.Status)), text(string(cs.Kind)),
			text(string(cs.Urgency)), n.category(cs.Category), n.where(cs.Street, cs.Community), leadCell,
			text(overdueMark(cs.Overdue())), text(cs.Title))
	}
	return t
}
