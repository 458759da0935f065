package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/whistle-gov/whistle/adapters/config"
	"github.com/whistle-gov/whistle/adapters/httpclient"
	"github.com/whistle-gov/whistle/adapters/readmodel"
)

// replayCommand (auditors): rebuild every read model from position zero of
// the log into a fresh copy, here, and compare it with the live read models
// at the same position; print every difference and fail if there is any.
// The fold runs in this process on purpose: an auditor checks the server's
// figures against its own fold of the log, not against the server's word.
func (a *app) replayCommand() *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:     "replay",
		Short:   "Rebuild every read model from the log, here, and compare with the live ones",
		GroupID: groupAudit,
		Args:    noArgs,
	}
	cmd.Flags().BoolVar(&quiet, "quiet", false, "no progress bar")
	out := addOutput(cmd, false)
	cmd.RunE = a.action(func(cmd *cobra.Command, _ []string) error {
		c, err := a.api()
		if err != nil {
			return err
		}
		return a.replay(c, quiet, out)
	})
	return cmd
}

// replayReport is what -o json prints.
type replayReport struct {
	Position    uint64   `json:"position"`
	Differences []string `json:"differences"`
	Refused     int      `json:"refused"`
}

func (a *app) replay(c *httpclient.Client, quiet bool, o *output) error {
	ctx := a.ctx
	dir, err := c.Directory(ctx)
	if err != nil {
		return fmt.Errorf("replay: directory: %w", err)
	}
	// The figures count the days of the directory's calendar, which only a
	// validated directory has.
	if err := config.ValidateDirectory(dir); err != nil {
		return fmt.Errorf("replay: directory: %w", err)
	}
	// The live models first: their position says how far to replay, so that
	// both sides describe the same log.
	raw, err := c.ReadModelsSnapshot(ctx)
	if err != nil {
		return fmt.Errorf("replay: live read models: %w", err)
	}
	live, err := readmodel.NewModels(dir)
	if err != nil {
		return err
	}
	pos, err := live.Unmarshal(raw)
	if err != nil {
		return fmt.Errorf("replay: live read models: %w", err)
	}
	say := func(format string, args ...any) {
		if !o.isJSON() {
			fmt.Fprintf(a.stdout, format, args...)
		}
	}
	say("live read models at log position %d; replaying the log from position 0\n", pos)

	bar := newProgressBar(a.stderr, quiet)
	refused := 0
	read := func(ctx context.Context, after uint64, limit int) ([]readmodel.Commit, error) {
		page, err := c.Log(ctx, after, limit)
		if err != nil {
			return nil, fmt.Errorf("replay: read the log after %d: %w", after, err)
		}
		commits := make([]readmodel.Commit, len(page.Commits))
		for i, cm := range page.Commits {
			commits[i] = readmodel.Commit{Position: cm.Position, Stream: cm.Stream, Events: cm.Events}
		}
		return commits, nil
	}
	fresh, err := readmodel.NewModels(dir)
	if err != nil {
		return err
	}
	if pos > 0 { // an empty log replays to empty models
		// Fold reads the next pages of GET /v1/log while it decodes and
		// folds the ones before (see readmodel.Fold).
		fresh, err = readmodel.Fold(ctx, dir, read, readmodel.FoldOptions{
			UpTo: pos, PageSize: httpclient.MaxLogLimit, Progress: bar.update,
			Refused: func(cm readmodel.Commit, err error) {
				refused++
				bar.note(fmt.Sprintf("a read model refused the commit at position %d: %v", cm.Position, err))
			},
		})
		bar.done()
		if err != nil {
			return err
		}
	}
	diffs := live.Diff(fresh)
	if o.isJSON() {
		if err := printJSON(a.stdout, replayReport{Position: pos, Differences: append([]string{}, diffs...), Refused: refused}); err != nil {
			return err
		}
	}
	for _, d := range diffs {
		say("%s\n", clean(d))
	}
	if refused > 0 {
		say("%d commits refused by a read model (the live models refuse the same ones)\n", refused)
	}
	if len(diffs) > 0 {
		return fmt.Errorf("replay: %d differences between the live read models and the replay at position %d", len(diffs), pos)
	}
	say("no differences: the live read models equal a replay of the log up to position %d\n", pos)
	return nil
}

// progressBar draws a fold's progress on a terminal (one line, redrawn), or
// a line every few seconds when the output is not a terminal.
type progressBar struct {
	w        io.Writer
	off      bool
	terminal bool
	last     time.Time
	drawn    bool
}

func newProgressBar(w io.Writer, off bool) *progressBar {
	b := &progressBar{w: w, off: off}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil {
			b.terminal = st.Mode()&os.ModeCharDevice != 0
		}
	}
	return b
}

func (b *progressBar) update(p readmodel.Progress) {
	if b.off {
		return
	}
	final := p.Target > 0 && p.Position >= p.Target
	if !b.terminal && !final && time.Since(b.last) < 2*time.Second {
		return
	}
	b.last = time.Now()
	line := progressLine(p)
	if b.terminal {
		fmt.Fprintf(b.w, "\r%-100s", line)
		b.drawn = true
		return
	}
	fmt.Fprintln(b.w, line)
}

// note prints a message without breaking the bar.
func (b *progressBar) note(msg string) {
	if b.drawn {
		fmt.Fprintln(b.w)
		b.drawn = false
	}
	fmt.Fprintln(b.w, "whistle:", clean(msg))
}

func (b *progressBar) done() {
	if b.drawn {
		fmt.Fprintln(b.w)
		b.drawn = false
	}
}

// progressLine: a bar over log positions, events done, events per second
// and the time left at that rate.
func progressLine(p readmodel.Progress) string {
	const width = 30
	frac := 0.0
	if p.Target > 0 {
		frac = min(float64(p.Position)/float64(p.Target), 1)
	}
	filled := int(frac * width)
	bar := strings.Repeat("█", filled) + strings.Repeat("░", width-filled)
	rate := 0.0
	if s := p.Elapsed.Seconds(); s > 0 {
		rate = float64(p.Events) / s
	}
	left := "-"
	if frac > 0 && frac < 1 {
		left = (time.Duration(float64(p.Elapsed) * (1 - frac) / frac)).Round(time.Second).String()
	} else if frac >= 1 {
		left = "0s"
	}
	return fmt.Sprintf("replay %s %5.1f%%  %d events  %.0f events/s  %s left", bar, frac*100, p.Events, rate, left)
}
