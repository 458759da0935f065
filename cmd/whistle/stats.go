package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/whistle-gov/whistle/adapters/httpclient"
)

var groupBys = []string{"street", "community", "assignee", "category", "urgency", "day"}

// statsCommand: the figures as a table, one row per group.
func (a *app) statsCommand() *cobra.Command {
	var q httpclient.StatsQuery
	cmd := &cobra.Command{
		Use:     "stats",
		Short:   "The figures (closure, response, satisfaction, mediation...) as a table",
		GroupID: groupRead,
		Example: "  whistle stats --group-by community --from 2026-11-01\n  whistle stats --group-by assignee --as-of 2026-11-23T18:00:00Z -o json",
		Args:    noArgs,
	}
	fl := cmd.Flags()
	fl.StringVar(&q.GroupBy, "group-by", "", "street, community, assignee, category, urgency or day (default: street; assignee for a department or unit)")
	fl.StringVar(&q.Street, "street", "", "only this street's cases (auditors; a street sees its own anyway)")
	fl.StringVar(&q.From, "from", "", "first day counted: RFC 3339 time or 2006-01-02 (cases raised from then)")
	fl.StringVar(&q.To, "to", "", "end of the window, exclusive: RFC 3339 time or 2006-01-02")
	fl.StringVar(&q.AsOf, "as-of", "", "the figures as they stood at this RFC 3339 time (auditors)")
	fl.Uint64Var(&q.Position, "position", 0, "wait until the figures include this log position (from a command's answer)")
	out := addOutput(cmd, true)
	_ = cmd.RegisterFlagCompletionFunc("group-by", cobra.FixedCompletions(groupBys, cobra.ShellCompDirectiveNoFileComp))
	a.completeDirectory(cmd, "street")
	cmd.RunE = a.action(func(cmd *cobra.Command, _ []string) error {
		c, err := a.api()
		if err != nil {
			return err
		}
		res, err := c.Stats(a.ctx, q)
		if err != nil {
			return err
		}
		if out.isJSON() {
			return printJSON(a.stdout, res)
		}
		window := "all time"
		if res.From != nil || res.To != nil {
			window = fmtDay(res.From, "…") + " to " + fmtDay(res.To, "…")
		}
		fmt.Fprintf(a.stdout, "cases raised %s, by %s\n", window, clean(res.GroupBy))
		n := a.dirNames()
		// Rates stay longest; the counts behind them and the slower
		// percentiles give way first.
		t := table{cols: []column{
			{header: "KEY", shrink: true, min: 12},
			{header: "RAISED", right: true},
			{header: "CLOSED", right: true, drop: 8},
			{header: "CLOSURE", right: true},
			{header: "ON TIME", right: true, drop: 4},
			{header: "ASSIGNED", right: true, drop: 9},
			{header: "RESPONSE", right: true},
			{header: "DISPUTES", right: true, drop: 10},
			{header: "MEDIATED", right: true, drop: 2},
			{header: "RATINGS", right: true, drop: 11},
			{header: "SATISFIED", right: true},
			{header: "REPORT p50", right: true, drop: 5},
			{header: "REPORT p90", right: true, drop: 12},
			{header: "CLOSE p50", right: true, drop: 6},
			{header: "CLOSE p90", right: true, drop: 13},
			{header: "OVERDUE", right: true, drop: 3},
			{header: "ESCALATED", right: true, drop: 7},
		}}
		for _, g := range res.Groups {
			t.add(n.key(res.GroupBy, g.Key),
				text(fmt.Sprint(g.Raised)), text(fmt.Sprint(g.Closed)), text(pct(g.ClosureRate)), text(pct(g.OnTimeClosureRate)),
				text(fmt.Sprint(g.Assignments)), text(pct(g.ResponseRate)),
				text(fmt.Sprint(g.DisputesResolved)), text(pct(g.MediationSuccessRate)),
				text(fmt.Sprint(g.Ratings)), text(pct(g.SatisfactionRate)),
				text(secs(g.MedianReportSeconds)), text(secs(g.P90ReportSeconds)), text(secs(g.MedianCloseSeconds)), text(secs(g.P90CloseSeconds)),
				text(fmt.Sprint(g.Overdue)), text(fmt.Sprint(g.Escalations)))
		}
		dropped, err := t.render(a.stdout, terminalWidth(a.stdout, a.getenv), out.isWide())
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "%d groups%s\n", len(res.Groups), leftOut(dropped))
		return nil
	})
	return cmd
}

func fmtDay(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return t.UTC().Format(time.DateOnly)
}

// pct writes a rate (a fraction) as a percentage; "-" when nothing counted.
func pct(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", *v*100)
}

// secs writes a duration given in seconds, to the second (to the
// millisecond under a second); "-" when none.
func secs(v *float64) string {
	if v == nil {
		return "-"
	}
	d := time.Duration(*v * float64(time.Second))
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
