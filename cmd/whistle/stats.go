package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/whistle-gov/whistle/projections"
)

// whistle stats [--group-by G] [--street S] [--from F] [--to T] [--as-of A] [--json]:
// the figures as a table, one row per group.
func init() {
	commands["stats"] = showStats
}

func showStats(ctx context.Context, c *client, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	groupBy := fs.String("group-by", "", "street, community, assignee, category, urgency or day (default: street; assignee for a department or unit)")
	street := fs.String("street", "", "only this street's cases (auditors; a street sees its own anyway)")
	from := fs.String("from", "", "first day counted: RFC 3339 time or 2006-01-02 (cases raised from then)")
	to := fs.String("to", "", "end of the window, exclusive: RFC 3339 time or 2006-01-02")
	asOf := fs.String("as-of", "", "the figures as they stood at this RFC 3339 time (auditors)")
	position := fs.String("position", "", "wait until the figures include this log position (from a command's answer)")
	asJSON := fs.Bool("json", false, "print the answer as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	q := url.Values{}
	for name, v := range map[string]string{"group_by": *groupBy, "street": *street, "from": *from, "to": *to, "as_of": *asOf, "position": *position} {
		if v != "" {
			q.Set(name, v)
		}
	}
	path := "/v1/stats"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	if *asJSON {
		var raw map[string]any
		if err := c.call(ctx, "GET", path, nil, &raw); err != nil {
			return err
		}
		return printJSON(out, raw)
	}
	var res projections.Result
	if err := c.call(ctx, "GET", path, nil, &res); err != nil {
		return err
	}
	window := "all time"
	if res.From != nil || res.To != nil {
		window = fmtDay(res.From, "…") + " to " + fmtDay(res.To, "…")
	}
	fmt.Fprintf(out, "cases raised %s, by %s\n", window, res.GroupBy)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, strings.Join([]string{"KEY", "RAISED", "CLOSED", "CLOSURE", "ON TIME", "ASSIGNED", "RESPONSE",
		"DISPUTES", "MEDIATED", "RATINGS", "SATISFIED", "REPORT p50", "REPORT p90", "CLOSE p50", "CLOSE p90", "OVERDUE", "ESCALATED", ""}, "\t"))
	for _, g := range res.Groups {
		fmt.Fprintln(tw, strings.Join([]string{g.Key,
			fmt.Sprint(g.Raised), fmt.Sprint(g.Closed), pct(g.ClosureRate), pct(g.OnTimeClosureRate),
			fmt.Sprint(g.Assignments), pct(g.ResponseRate),
			fmt.Sprint(g.DisputesResolved), pct(g.MediationSuccessRate),
			fmt.Sprint(g.Ratings), pct(g.SatisfactionRate),
			secs(g.MedianReportSeconds), secs(g.P90ReportSeconds), secs(g.MedianCloseSeconds), secs(g.P90CloseSeconds),
			fmt.Sprint(g.Overdue), fmt.Sprint(g.Escalations), ""}, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "%d groups\n", len(res.Groups))
	return nil
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
