package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/whistle-gov/whistle/adapters/config"
	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/adapters/eventstore/jetstream"
	"github.com/whistle-gov/whistle/adapters/natsbus"
	"github.com/whistle-gov/whistle/adapters/readmodel"
	"github.com/whistle-gov/whistle/domain"
)

// replayPage is how many commits one ReadAll asks for.
const replayPage = 2000

// replayResult is a replay of a log from position zero.
type replayResult struct {
	commits, events  int
	total, fold      time.Duration // read+decode+fold, and the fold alone
	raiseCommitBytes int           // mean payload of a raise's commit (its events' data)
}

func (r replayResult) eventsPerS() float64     { return float64(r.events) / r.total.Seconds() }
func (r replayResult) foldEventsPerS() float64 { return float64(r.events) / r.fold.Seconds() }

// replayDir opens the event store of a stopped whistled's data folder and
// folds its whole log through the stats and board projections, as a
// rebuild from zero does.
func replayDir(ctx context.Context, data string, log *zap.Logger) (replayResult, error) {
	ns, err := natsbus.StartEmbedded(natsbus.EmbeddedOptions{StoreDir: filepath.Join(data, "jetstream")})
	if err != nil {
		return replayResult{}, err
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	nc, err := natsbus.Connect(ctx, natsbus.ConnectConfig{Server: ns})
	if err != nil {
		return replayResult{}, err
	}
	defer nc.Close()
	// The log as whistled wrote it: one message per commit, or packed.
	perMessage, err := jetstream.HoldsPerMessageLog(ctx, nc, jetstream.Config{})
	if err != nil {
		return replayResult{}, err
	}
	cfg := jetstream.Config{}
	if !perMessage {
		// As whistled opens it on its embedded server.
		cfg = jetstream.Config{Packed: true, IndexAsync: true, IndexDurableAfter: 3 * natsbus.EmbeddedSyncInterval}
	}
	store, err := jetstream.Open(ctx, nc, cfg)
	if err != nil {
		return replayResult{}, err
	}
	defer store.Close()
	return replay(ctx, store, log)
}

func replay(ctx context.Context, store eventstore.Store, log *zap.Logger) (replayResult, error) {
	dir, err := config.SampleDirectory()
	if err != nil {
		return replayResult{}, err
	}
	var res replayResult
	var raiseBytes, raises int
	read := readmodel.StoreReader(store)
	// The raise sizes are taken as the pages are read, in the reader's
	// goroutine; FoldLog has returned (and its goroutines ended) before
	// they are used.
	sized := func(ctx context.Context, after uint64, limit int) ([]eventstore.Commit, error) {
		page, err := read(ctx, after, limit)
		for _, c := range page {
			if len(c.Events) > 0 && c.Events[0].Type == domain.TypeWhistleRaised {
				raises++
				for _, e := range c.Events {
					raiseBytes += len(e.Data)
				}
			}
		}
		return page, err
	}
	var last readmodel.Progress
	start := time.Now()
	// The code whistled runs to rebuild its read models from the log (the
	// ?as_of= figures, whistle replay): read ahead, decode in parallel,
	// fold in order.
	m, err := readmodel.FoldLog(ctx, dir, sized, readmodel.FoldOptions{
		PageSize: replayPage,
		Progress: func(p readmodel.Progress) { last = p },
	})
	if err != nil {
		return res, err
	}
	res.total = time.Since(start)
	res.commits, res.events, res.fold = last.Commits, last.Events, last.Folding
	if raises > 0 {
		res.raiseCommitBytes = raiseBytes / raises
	} else {
		res.raiseCommitBytes = 1200
	}
	log.Info("replayed", zap.Int("commits", res.commits), zap.Int("events", res.events), zap.Duration("took", res.total),
		zap.Int("board_cases", m.Board.Len()))
	return res, nil
}

// machine describes the host for the report.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d CPUs", model, numCPU())
}
