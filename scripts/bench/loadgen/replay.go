package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/whistle-gov/whistle/adapters/casehandler"
	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/adapters/eventstore/jetstream"
	"github.com/whistle-gov/whistle/adapters/natsbus"
	"github.com/whistle-gov/whistle/domain"
	"github.com/whistle-gov/whistle/projections"
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
	store, err := jetstream.Open(ctx, nc, jetstream.Config{})
	if err != nil {
		return replayResult{}, err
	}
	defer store.Close()
	return replay(ctx, store, log)
}

func replay(ctx context.Context, store eventstore.Store, log *zap.Logger) (replayResult, error) {
	stats, err := projections.NewStats(projections.DefaultSatisfactionWeights())
	if err != nil {
		return replayResult{}, err
	}
	board := projections.NewBoard()
	var res replayResult
	var raiseBytes, raises int
	start := time.Now()
	var after eventstore.Position
	for {
		page, err := store.ReadAll(ctx, after, replayPage)
		if err != nil {
			return res, err
		}
		if len(page) == 0 {
			break
		}
		for _, c := range page {
			envs, err := casehandler.DecodeEnvelopes(c.Events)
			if err != nil {
				return res, err
			}
			f0 := time.Now()
			if err := stats.ApplyCommit(uint64(c.Position), envs); err != nil {
				return res, fmt.Errorf("stats at %d: %w", c.Position, err)
			}
			if err := board.ApplyCommit(uint64(c.Position), envs); err != nil {
				return res, fmt.Errorf("board at %d: %w", c.Position, err)
			}
			res.fold += time.Since(f0)
			res.commits++
			res.events += len(c.Events)
			if c.Events[0].Type == domain.TypeWhistleRaised {
				raises++
				for _, e := range c.Events {
					raiseBytes += len(e.Data)
				}
			}
			after = c.Position
		}
	}
	res.total = time.Since(start)
	if raises > 0 {
		res.raiseCommitBytes = raiseBytes / raises
	} else {
		res.raiseCommitBytes = 1200
	}
	log.Info("replayed", zap.Int("commits", res.commits), zap.Int("events", res.events), zap.Duration("took", res.total),
		zap.Int("board_cases", board.Len()))
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
