// Command whistle is the CLI for streets, departments, units and auditors. It
// talks to whistled over HTTP; the token comes from WHISTLE_TOKEN (never a
// flag, so it does not show in process lists) and the server from WHISTLE_URL
// (default http://127.0.0.1:8080).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: whistle <command> [arguments]

Streets:
  raise --street S --community C --category K --urgency U --title T [--description D] [--address A] [--key K]
  route CASE --lead L [--assist A,B]
  verify CASE --accepted=true|false [--note N]
  rate CASE --rating satisfied|basically_satisfied|unsatisfied
Departments and units:
  report CASE [--note N]      progress CASE --note N      claim CASE [--note N]
  resolve CASE [--note N] [--mediation success|failure]
  decline CASE --reason R [--suggest S]
Everyone involved, and auditors:
  case CASE [--as-of RFC3339]     the case's current state
  history CASE                    every event, and whether the hash chain is whole (checked here)
  directory                       streets, communities, departments, units, categories
  cases [--status --street --community --assignee --category --urgency --overdue --limit --cursor] [--all] [--json]
                                  the case board, as far as you may see it
  stats [--group-by G] [--street S] [--from F] [--to T] [--as-of RFC3339] [--json]
                                  the figures as a table (--as-of: auditors)
Auditors:
  replay [--quiet]                rebuild every read model from the log and compare with the live ones

Environment: WHISTLE_URL (default http://127.0.0.1:8080), WHISTLE_TOKEN (your bearer token).
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		return 0
	}
	cl := newClient(getenv)
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "whistle: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err := cmd(ctx, cl, args[1:], stdout); err != nil {
		fmt.Fprintln(stderr, "whistle:", err)
		return 1
	}
	return 0
}
