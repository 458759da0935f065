// Command loadgen measures whistle end to end; scripts/bench.sh builds and
// runs it. Modes:
//
//   - bench (default): starts whistled in a fresh data folder and drives it
//     over loopback HTTP with concurrent street clients raising whistles and
//     department clients following their queues (server-sent events) and
//     reporting in. It measures sustained whistles/s, raise latency, raise →
//     department delivery at a fixed rate, projection and dispatch lag, peak
//     RSS and memory per open case; then stops whistled and replays its log
//     through the projections; then runs the raw JetStream baseline (and the
//     PostgreSQL peer when -peer-dsn is given) at the same concurrency and
//     message size. Its last line is the summary bench.sh prints.
//   - grow: raises cases without closing them and reports memory and
//     throughput at each count of open cases in -grow.
//   - store: whistle's Store.Append on the packed log against the
//     PostgreSQL peer, in alternated rounds at 16 and 64 appenders.
//   - replay: writes a log of -events events through the command handler
//     into an embedded store, then replays it from disk through the
//     projections.
//   - restart: writes a log of -events events of mostly closed cases, folds
//     it with whistled once, then times a cold restart (no read model
//     snapshot) and a warm one to /readyz answering 200.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

type options struct {
	mode        string
	whistled    string
	fsync       string
	concurrency int
	warmup      time.Duration
	duration    time.Duration
	rate        float64
	rateDur     time.Duration
	rawDur      time.Duration
	peerDSN     string
	compareGC   bool
	grow        []int
	events      int
	keep        bool
	replayData  string
	profile     string
	settle      time.Duration
	rounds      int
}

func main() {
	var o options
	var grow string
	flag.StringVar(&o.mode, "mode", "bench", "bench, grow, replay, restart, store, or freeport (print a free loopback TCP port)")
	flag.StringVar(&o.whistled, "whistled", "", "path of the whistled binary (bench, grow, restart)")
	flag.StringVar(&o.fsync, "fsync", "always", "whistled's --fsync and the baselines': always or interval")
	flag.IntVar(&o.concurrency, "concurrency", 16, "street clients raising at once; also the raw baseline's and the peer's appenders")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "load before measuring")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "the saturation phase: street clients raise as fast as they are answered")
	flag.Float64Var(&o.rate, "rate", 1000, "whistles/s of the fixed-rate phase that times delivery to departments (capped at 80% of the saturation figure)")
	flag.DurationVar(&o.rateDur, "rate-duration", 10*time.Second, "the fixed-rate phase")
	flag.DurationVar(&o.rawDur, "raw-duration", 8*time.Second, "each baseline's measurement")
	flag.StringVar(&o.peerDSN, "peer-dsn", "", "PostgreSQL connection string: also measure the peer")
	flag.BoolVar(&o.compareGC, "compare-group-commit", false, "also run the saturation phase on a whistled with group commit the other way (off with fsync always, on with interval)")
	flag.StringVar(&grow, "grow", "10000,100000", "grow: open-case counts at which to measure")
	flag.IntVar(&o.events, "events", 1_000_000, "replay, restart: events in the log")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary data folders")
	flag.StringVar(&o.replayData, "replay-data", "", "replay: replay the log of this data folder (one kept with -keep) instead of writing one")
	flag.DurationVar(&o.settle, "settle", 20*time.Second, "longest wait for the backlog to drain between phases, and for the deliveries of a phase's raises")
	flag.IntVar(&o.rounds, "rounds", 3, "store: alternated rounds of the store and the peer")
	flag.StringVar(&o.profile, "profile", "", "bench: run whistled with --pprof and save its CPU profile of the saturation phase and a heap profile at the end in this folder")
	flag.Parse()
	for _, f := range strings.Split(grow, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "loadgen: -grow %q: want positive counts separated by commas\n", grow)
			os.Exit(2)
		}
		o.grow = append(o.grow, n)
	}
	if o.fsync != "always" && o.fsync != "interval" {
		fmt.Fprintf(os.Stderr, "loadgen: -fsync %q: want always or interval\n", o.fsync)
		os.Exit(2)
	}

	enc := zap.NewDevelopmentEncoderConfig()
	enc.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
	log := zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.Lock(os.Stderr), zapcore.InfoLevel))
	defer log.Sync() //nolint:errcheck // stderr

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	switch o.mode {
	case "bench":
		err = benchMode(ctx, o, log)
	case "grow":
		err = growMode(ctx, o, log)
	case "replay":
		err = replayMode(ctx, o, log)
	case "restart":
		err = restartMode(ctx, o, log)
	case "store":
		err = storeMode(ctx, o, log)
	case "freeport":
		err = freePort()
	default:
		err = fmt.Errorf("-mode %q: want bench, grow, replay, restart, store or freeport", o.mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// freePort prints a loopback TCP port that was free a moment ago, for
// bench.sh's PostgreSQL.
func freePort() error {
	port, err := freePortNumber()
	if err != nil {
		return err
	}
	fmt.Println(port)
	return nil
}

// tempDir makes a data folder that is removed at the end unless -keep.
func tempDir(o options, log *zap.Logger, pattern string) (string, func(), error) {
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		return "", nil, err
	}
	return dir, func() {
		if o.keep {
			log.Info("kept data folder", zap.String("dir", dir))
			return
		}
		_ = os.RemoveAll(dir)
	}, nil
}
