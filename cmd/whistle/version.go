package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// buildInfo is what the binary knows of its own build.
type buildInfo struct {
	Version  string `json:"version"` // the module version, "(devel)" for a build from a work tree
	Commit   string `json:"commit,omitempty"`
	Time     string `json:"commit_time,omitempty"`
	Modified bool   `json:"modified"` // built from a work tree with changes not committed
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

func readBuildInfo() buildInfo {
	b := buildInfo{Version: "(unknown)", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if info.Main.Version != "" {
		b.Version = info.Main.Version
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Commit = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

func versionLine(b buildInfo) string {
	s := "whistle " + b.Version
	if b.Commit != "" {
		s += " commit " + b.Commit
		if b.Modified {
			s += " (modified)"
		}
	}
	if b.Time != "" {
		s += " of " + b.Time
	}
	return s + ", " + b.Go + " " + b.Platform
}

func (a *app) versionCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "version",
		Short: "The CLI's version: module version, commit, Go version",
		Args:  noArgs,
	}
	out := addOutput(cmd, false)
	cmd.RunE = a.action(func(cmd *cobra.Command, _ []string) error {
		b := readBuildInfo()
		if out.isJSON() {
			return printJSON(a.stdout, b)
		}
		_, err := fmt.Fprintln(a.stdout, versionLine(b))
		return err
	})
	return cmd
}
