package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/whistle-gov/whistle/projections"
)

// whistle cases [filters] [--all] [--json]: the case list, newest raised
// first, scoped by the server to what the caller may see.
func init() {
	commands["cases"] = listCases
}

func listCases(ctx context.Context, c *client, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("cases", flag.ContinueOnError)
	q := url.Values{}
	filters := []struct{ name, usage string }{
		{"status", "routed, in_progress, resolved, closed or unassigned"},
		{"street", "street id"},
		{"community", "community id"},
		{"assignee", "department or unit id"},
		{"category", "category id"},
		{"urgency", "routine, urgent or emergency"},
		{"overdue", "true or false"},
		{"cursor", "the next cursor of a previous page"},
		{"limit", "cases per page (default 50, at most 500)"},
		{"position", "wait until the list includes this log position (from a command's answer)"},
	}
	values := map[string]*string{}
	for _, f := range filters {
		values[f.name] = fs.String(f.name, "", f.usage)
	}
	all := fs.Bool("all", false, "follow the cursor to the last page")
	asJSON := fs.Bool("json", false, "print the answer as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for name, v := range values {
		if *v != "" {
			q.Set(name, *v)
		}
	}
	var tw *tabwriter.Writer
	if !*asJSON {
		tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CASE\tRAISED\tSTATUS\tKIND\tURGENCY\tCATEGORY\tWHERE\tLEAD\tOVERDUE\tTITLE")
	}
	total := 0
	for {
		var page struct {
			Cases []projections.CaseSummary `json:"cases"`
			Next  *string                   `json:"next"`
		}
		if err := c.call(ctx, "GET", "/v1/cases?"+q.Encode(), nil, &page); err != nil {
			return err
		}
		total += len(page.Cases)
		if *asJSON {
			if err := printJSON(out, page); err != nil {
				return err
			}
		} else {
			for _, cs := range page.Cases {
				fmt.Fprintln(tw, caseRow(cs))
			}
		}
		if page.Next == nil || !*all {
			if tw != nil {
				if err := tw.Flush(); err != nil {
					return err
				}
				more := ""
				if page.Next != nil {
					more = fmt.Sprintf("; more with --cursor %s (or --all)", *page.Next)
				}
				fmt.Fprintf(out, "%d cases%s\n", total, more)
			}
			return nil
		}
		q.Set("cursor", *page.Next)
	}
}

func caseRow(cs projections.CaseSummary) string {
	var leads []string
	for _, a := range cs.Assignments {
		if a.Role == "lead" && a.Status != "declined" && a.Status != "lapsed" {
			leads = append(leads, a.Assignee)
		}
	}
	lead := strings.Join(leads, ",")
	if lead == "" {
		lead = "-"
	}
	overdue := ""
	if cs.Overdue() {
		overdue = "OVERDUE"
	}
	return strings.Join([]string{cs.CaseID, cs.RaisedAt.Local().Format("01-02 15:04"), string(cs.Status), string(cs.Kind),
		string(cs.Urgency), cs.Category, cs.Street + "/" + cs.Community, lead, overdue, cs.Title}, "\t")
}
