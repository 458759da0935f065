package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/whistle-gov/whistle/domain"
)

func (a *app) caseCommand() *cobra.Command {
	var asOf string
	cmd := &cobra.Command{
		Use:     "case CASE",
		Short:   "A case's current state (or as it stood at a time)",
		GroupID: groupRead,
		Example: "  whistle case CASE\n  whistle case CASE --as-of 2026-11-23T18:00:00Z -o json",
		Args:    exactArgs(1, "the case id"),
	}
	cmd.Flags().StringVar(&asOf, "as-of", "", "the state at this RFC 3339 time")
	out := addOutput(cmd, false)
	cmd.RunE = a.action(func(cmd *cobra.Command, args []string) error {
		var at time.Time
		if asOf != "" {
			t, err := time.Parse(time.RFC3339Nano, asOf)
			if err != nil {
				return usageError{fmt.Errorf("--as-of: want an RFC 3339 time such as 2026-11-23T09:00:00Z, got %q", asOf)}
			}
			at = t
		}
		c, err := a.api()
		if err != nil {
			return err
		}
		answer, err := c.Case(a.ctx, args[0], at)
		if err != nil {
			return err
		}
		return a.printCase(out, answer)
	})
	return cmd
}

// historyCommand prints a case's events and checks the hash chain here, so
// an auditor need not trust the server's own verdict.
func (a *app) historyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "history CASE",
		Short:   "Every event of a case, and whether its hash chain is whole (checked here)",
		GroupID: groupRead,
		Example: "  whistle history CASE\n  whistle history CASE -o json",
		Args:    exactArgs(1, "the case id"),
	}
	out := addOutput(cmd, true)
	cmd.RunE = a.action(func(cmd *cobra.Command, args []string) error {
		c, err := a.api()
		if err != nil {
			return err
		}
		h, err := c.History(a.ctx, args[0])
		if err != nil {
			return err
		}
		chain := domain.VerifyChain(h.Events)
		if out.isJSON() {
			if err := printJSON(a.stdout, h); err != nil {
				return err
			}
		} else {
			t := table{cols: []column{
				{header: "VER", right: true},
				{header: "TIME", drop: 2},
				{header: "TYPE"},
				{header: "ACTOR", drop: 1},
				{header: "DATA", shrink: true, min: 12},
				{header: "HASH", drop: 3},
			}}
			for _, e := range h.Events {
				hash := e.Hash
				if !out.isWide() && len(hash) > 12 {
					hash = hash[:12] + "…"
				}
				t.add(text(fmt.Sprint(e.Version)), text(e.OccurredAt.Local().Format(time.RFC3339)), text(e.Type),
					text(e.Actor.String()), text(compact(e.Data)), text(hash))
			}
			dropped, err := t.render(a.stdout, terminalWidth(a.stdout, a.getenv), out.isWide())
			if err != nil {
				return err
			}
			if chain == nil {
				fmt.Fprintf(a.stdout, "hash chain whole: %d events%s\n", len(h.Events), leftOut(dropped))
			}
		}
		if chain != nil {
			return fmt.Errorf("the history is NOT whole: %w", chain)
		}
		return nil
	})
	return cmd
}

func compact(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}

func (a *app) directoryCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "directory",
		Short:   "Streets, communities, departments, units and categories",
		GroupID: groupRead,
		Args:    noArgs,
	}
	out := addOutput(cmd, false)
	cmd.RunE = a.action(func(cmd *cobra.Command, _ []string) error {
		c, err := a.api()
		if err != nil {
			return err
		}
		dir, err := c.Directory(a.ctx)
		if err != nil {
			return err
		}
		if out.isJSON() {
			return printJSON(a.stdout, dir)
		}
		width, wide := terminalWidth(a.stdout, a.getenv), out.isWide()
		n := newNames(dir)
		streets := table{cols: []column{{header: "STREET"}, {header: "NAME"}, {header: "COMMUNITIES", shrink: true, min: 12}}}
		for _, s := range dir.Streets {
			var cs []string
			for _, cm := range s.Communities {
				cs = append(cs, named(cm.Name, cm.ID).full)
			}
			streets.add(text(s.ID), text(s.Name), text(strings.Join(cs, ", ")))
		}
		orgs := table{cols: []column{{header: "ASSIGNEE"}, {header: "KIND"}, {header: "NAME", shrink: true, min: 8}}}
		for _, d := range dir.Departments {
			orgs.add(text(d.ID), text("department"), text(d.Name))
		}
		for _, u := range dir.Units {
			orgs.add(text(u.ID), text("unit"), text(u.Name))
		}
		cats := table{cols: []column{{header: "CATEGORY"}, {header: "NAME"}, {header: "KIND"},
			{header: "LEAD", shrink: true, min: 10}, {header: "ASSIST", shrink: true, min: 10}}}
		for _, k := range dir.Categories {
			var assist []string
			for _, id := range k.Assist {
				assist = append(assist, n.org(id).full)
			}
			cats.add(text(k.ID), text(k.Name), text(string(k.Kind)), n.org(k.Lead), text(strings.Join(assist, ", ")))
		}
		fmt.Fprintf(a.stdout, "directory %s\n\n", clean(dir.Version))
		for i, t := range []*table{&streets, &orgs, &cats} {
			if i > 0 {
				fmt.Fprintln(a.stdout)
			}
			if _, err := t.render(a.stdout, width, wide); err != nil {
				return err
			}
		}
		return nil
	})
	return cmd
}
