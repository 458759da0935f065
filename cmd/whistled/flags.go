package main

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/whistle-gov/whistle/adapters/httpapi"
	"github.com/whistle-gov/whistle/adapters/storeguard"
	"github.com/whistle-gov/whistle/domain"
)

// options are whistled's settings; each flag --name is also WHISTLE_NAME in
// the environment (dashes become underscores), the flag winning.
type options struct {
	addr       string
	data       string
	directory  string
	principals string
	store      string
	nats       string
	natsListen string
	replicas   int
	fsync      string
	// groupCommit: auto, on, off or packed; see groupCommitOn and packed.
	groupCommit string
	// pprof serves /debug/pprof/ on the API address, for profiling.
	pprof    bool
	logLevel string
	// maxInFlight and maxStreams bound the requests served at once and the
	// event streams per principal (load shedding); maxEventsPerCase bounds
	// a case's events (the CLI's history pages, the case does not grow
	// without end).
	maxInFlight      int
	maxStreams       int
	maxEventsPerCase int
	// diskReserve is the free space kept under the data folder (storeguard).
	diskReserve uint64
}

func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("whistled", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "HTTP listen address")
	fs.StringVar(&o.data, "data", "./data", "data folder: the embedded event store, principals, read model state")
	fs.StringVar(&o.directory, "directory", "", "directory JSON file (default: the sample that ships)")
	fs.StringVar(&o.principals, "principals", "", "principals JSON file (default: <data>/principals.json, created with fresh tokens when missing)")
	fs.StringVar(&o.store, "store", "jetstream", "event store: jetstream, or an esdb:// URL for EventStoreDB")
	fs.StringVar(&o.nats, "nats", "", "NATS URL or comma-separated cluster URLs (empty: embedded server)")
	fs.StringVar(&o.natsListen, "nats-listen", "", "host:port on which the embedded NATS server accepts clients (empty: in-process only)")
	fs.IntVar(&o.replicas, "replicas", 1, "JetStream replicas of whistle's streams and buckets on an external cluster")
	fs.StringVar(&o.fsync, "fsync", "always", "always: fsync every commit before acknowledging it; interval: the server's periodic sync")
	fs.StringVar(&o.groupCommit, "group-commit", "auto", "JetStream store: packed: the packed log, every waiting commit in one message, one writer at a time (DESIGN.md §11; needs --fsync always on the embedded server); on: atomic batches sharing one fsync; off: one message per commit; auto: packed where there are fsyncs to share (--fsync always, or an external NATS) unless the data holds a log written one message per commit (then on), off on an embedded server with --fsync interval")
	fs.BoolVar(&o.pprof, "pprof", false, "serve Go's profiles on /debug/pprof/ (no authentication: for a trusted network only)")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.IntVar(&o.maxInFlight, "max-in-flight", httpapi.DefaultMaxInFlight, "requests served at once (event streams aside); more are answered 503 with Retry-After; /healthz, /readyz and /metrics are never shed; 0: no bound")
	fs.IntVar(&o.maxStreams, "max-streams-per-principal", httpapi.DefaultMaxStreamsPerPrincipal, "event streams (queues, notifications) one principal may keep open; more are answered 429 with Retry-After; 0: no bound")
	fs.IntVar(&o.maxEventsPerCase, "max-events-per-case", domain.DefaultMaxEventsPerCase, "events one case may hold; a command past it is answered 409 case_event_limit (commands that settle a case have a margin: DESIGN.md §9)")

	reserve := fs.String("disk-reserve", "64MiB", "free space kept on the data folder's disk for the embedded event store: under it commands are answered 507 at once and /readyz 503, until there is room again (0: only the store's own write errors are watched)")

	given := map[string]bool{}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		env := "WHISTLE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(env); v != "" && !given[f.Name] && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s=%q: %v", env, v, err)
			}
		}
	})
	if envErr != nil {
		return o, envErr
	}
	switch o.fsync {
	case "always", "interval":
	default:
		return o, fmt.Errorf("--fsync %q: want always or interval", o.fsync)
	}
	switch o.groupCommit {
	case "auto", "on", "off", "packed":
	case "true":
		o.groupCommit = "on"
	case "false":
		o.groupCommit = "off"
	default:
		return o, fmt.Errorf("--group-commit %q: want auto, on, off or packed", o.groupCommit)
	}
	if o.groupCommit == "packed" && o.nats == "" && o.fsync != "always" {
		// The index is written after the log and must never hold a commit
		// that a power loss took from the log.
		return o, fmt.Errorf("--group-commit packed needs --fsync always on the embedded server, not %q", o.fsync)
	}
	if o.replicas < 1 || o.replicas > 5 {
		return o, fmt.Errorf("--replicas %d: want 1 to 5", o.replicas)
	}
	if o.store != "jetstream" && !strings.HasPrefix(o.store, "esdb://") && !strings.HasPrefix(o.store, "esdb+discover://") {
		return o, fmt.Errorf("--store %q: want jetstream or an esdb:// URL", o.store)
	}
	if o.maxInFlight < 0 || o.maxStreams < 0 {
		return o, fmt.Errorf("--max-in-flight %d, --max-streams-per-principal %d: want 0 (no bound) or more", o.maxInFlight, o.maxStreams)
	}
	size, err := storeguard.ParseSize(*reserve)
	if err != nil {
		return o, fmt.Errorf("--disk-reserve: %v", err)
	}
	o.diskReserve = size
	if o.maxEventsPerCase < 10 {
		return o, fmt.Errorf("--max-events-per-case %d: want 10 or more (a case's ordinary course takes several)", o.maxEventsPerCase)
	}
	if o.principals == "" {
		o.principals = filepath.Join(o.data, "principals.json")
	}
	return o, nil
}

// resolveLayout settles --group-commit auto once the store can be asked:
// packed where commits have fsyncs to share, unless the data already holds
// a log written one message per commit, which keeps that layout (on).
func (o options) resolveLayout(holdsPerMessageLog func() (bool, error)) (options, error) {
	if o.groupCommit != "auto" || o.store != "jetstream" || !o.groupCommitOn() {
		return o, nil
	}
	old, err := holdsPerMessageLog()
	if err != nil {
		return o, err
	}
	if old {
		o.groupCommit = "on"
	} else {
		o.groupCommit = "packed"
	}
	return o, nil
}

// groupCommitOn resolves --group-commit. Group commit shares fsyncs; with
// the embedded server syncing on an interval there are none to share, and
// batching then costs about a tenth of the throughput (BENCHMARKS.md).
func (o options) groupCommitOn() bool {
	if o.groupCommit == "auto" || o.groupCommit == "packed" {
		return o.fsync == "always" || o.nats != ""
	}
	return o.groupCommit == "on"
}

// packed tells whether the event log is the packed log (--group-commit
// packed); the dispatch stream then batches as with auto.
func (o options) packed() bool { return o.groupCommit == "packed" }
