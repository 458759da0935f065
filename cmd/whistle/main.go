// Command whistle is the CLI for streets, departments, units and auditors. It
// talks to whistled over HTTP through adapters/httpclient and links none of
// the server's packages; the token comes from WHISTLE_TOKEN (never a flag,
// so it does not show in process lists) and the server from WHISTLE_URL
// (default http://127.0.0.1:8080).
//
// Its shape follows gh and kubectl: one flag set per command, flags before
// or after the arguments, `whistle <command> --help`, `-o table|wide|json`
// on every command that prints, `whistle version`, `whistle completion`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/whistle-gov/whistle/adapters/httpclient"
)

// Exit codes: 0 done, 1 the command failed, 2 the command line is wrong.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// app is what every command shares: where it prints, the environment, and
// the client and directory, made when a command first needs them.
type app struct {
	ctx            context.Context
	getenv         func(string) string
	stdout, stderr io.Writer
	// started is set when a command's own work begins: an error before that
	// is the command line's (exit 2), after it the command's (exit 1).
	started bool
	client  *httpclient.Client
	names   *names
}

// usageError is a wrong command line.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	a := &app{ctx: ctx, getenv: getenv, stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	if ue, ok := errors.AsType[usageError](err); ok || !a.started {
		if ok {
			err = ue.err
		}
		fmt.Fprintf(stderr, "whistle: %s\nRun '%s --help' for usage.\n", clean(err.Error()), cmd.CommandPath())
		return exitUsage
	}
	fmt.Fprintln(stderr, "whistle:", clean(describe(err)))
	return exitError
}

// describe says what to do about the errors a user can fix.
func describe(err error) string {
	switch {
	case errors.Is(err, httpclient.ErrNoToken):
		return "set WHISTLE_TOKEN to your bearer token"
	case errors.Is(err, httpclient.ErrUnauthorized):
		return err.Error() + " (is WHISTLE_TOKEN right, and WHISTLE_URL the server that issued it?)"
	}
	return err.Error()
}

// Command groups, by who uses them.
const (
	groupStreet   = "street"
	groupAssignee = "assignee"
	groupRead     = "read"
	groupAudit    = "audit"
)

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "whistle",
		Short: "The CLI of whistle: streets raise cases, departments and units report in, auditors replay",
		Long: `whistle is the CLI of the whistle service (街道吹哨、部门报到): streets raise cases
and verify them, departments and units report in and resolve their parts, and
auditors read every history and rebuild every figure from the log.`,
		Example: `  WHISTLE_TOKEN=$STREET whistle raise --street longqiao --community wanhui \
      --category river-pollution --urgency urgent --title "Oil on the creek"
  WHISTLE_TOKEN=$DEPT   whistle queue ecology-bureau --follow
  WHISTLE_TOKEN=$DEPT   whistle report CASE --note "on site"
  WHISTLE_TOKEN=$STREET whistle cases --status closed --all -o json
  WHISTLE_TOKEN=$AUDITOR whistle replay`,
		Version:       versionLine(readBuildInfo()),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddGroup(
		&cobra.Group{ID: groupStreet, Title: "Streets:"},
		&cobra.Group{ID: groupAssignee, Title: "Departments and units:"},
		&cobra.Group{ID: groupRead, Title: "Everyone involved, and auditors:"},
		&cobra.Group{ID: groupAudit, Title: "Auditors:"},
		&cobra.Group{ID: groupPlatform, Title: "Platforms (12345 and others):"},
	)
	root.AddCommand(a.raiseCommand())
	for _, c := range a.caseCommands() {
		root.AddCommand(c)
	}
	root.AddCommand(a.caseCommand(), a.historyCommand(), a.directoryCommand(), a.casesCommand(),
		a.statsCommand(), a.queueCommand(), a.replayCommand(), a.versionCommand(),
		a.ticketsCommand(), a.inboxCommand())
	root.SetUsageTemplate(root.UsageTemplate() + `
Environment:
  WHISTLE_URL     the server (default ` + httpclient.DefaultURL + `)
  WHISTLE_TOKEN   your bearer token
`)
	return root
}

// action wraps a command's work: from here on an error is the command's,
// not the command line's.
func (a *app) action(f func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		a.started = true
		return f(cmd, args)
	}
}

// api returns the client of WHISTLE_URL as WHISTLE_TOKEN.
func (a *app) api() (*httpclient.Client, error) {
	if a.client != nil {
		return a.client, nil
	}
	opts := []httpclient.Option{httpclient.WithUserAgent("whistle/" + readBuildInfo().Version)}
	if lang := language(a.getenv); lang != "" {
		opts = append(opts, httpclient.WithLanguage(lang))
	}
	c, err := httpclient.New(a.getenv("WHISTLE_URL"), a.getenv("WHISTLE_TOKEN"), opts...)
	if err != nil {
		return nil, fmt.Errorf("WHISTLE_URL: %w", err)
	}
	a.client = c
	return c, nil
}

// language is the user's language from the locale (LC_ALL, LC_MESSAGES,
// LANG), for the server's error messages; "" for none or the C locale.
func language(getenv func(string) string) string {
	for _, name := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		v := getenv(name)
		if v == "" {
			continue
		}
		v, _, _ = strings.Cut(v, ".")
		v, _, _ = strings.Cut(v, "@")
		if v == "C" || v == "POSIX" {
			return ""
		}
		return strings.ReplaceAll(v, "_", "-")
	}
	return ""
}

// exactArgs wants n arguments, named in the error: "give the case id".
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < n:
			return usageError{fmt.Errorf("%s: give %s", cmd.Name(), what)}
		case len(args) > n:
			return usageError{fmt.Errorf("%s: give only %s; unexpected %q", cmd.Name(), what, args[n:])}
		}
		return nil
	}
}

// noArgs refuses arguments.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("%s takes no arguments, got %q", cmd.Name(), args)}
	}
	return nil
}
