package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/adapters/httpapi"
	"github.com/whistle-gov/whistle/adapters/readmodel"
	"go.uber.org/zap"
)

// The read models (figures, case list and queues), kept in step with the log and
// saved under <data>/readmodels, and their routes: GET /v1/cases,
// GET /v1/stats, and for auditors GET /v1/log and GET /v1/readmodels/snapshot.
func startReadModels(ctx context.Context, d *deps) (running, error) {
	log := d.log.Named("readmodels")
	runner, err := readmodel.Open(ctx, readmodel.Config{
		Store: d.store, Directory: d.dir, Dir: filepath.Join(d.opts.data, "readmodels"), Log: log,
		Follow: d.follow,
	})
	if err != nil {
		return running{}, err
	}
	d.metrics.ProjectionLag("readmodels", d.metrics.Behind(func() eventstore.Position { return eventstore.Position(runner.Position()) }))
	reads, err := readmodel.NewReads(runner, d.store, d.dir, log)
	if err != nil {
		return running{}, err
	}
	startHead, err := d.store.Head(ctx)
	if err != nil {
		return running{}, fmt.Errorf("log head: %w", err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = runner.Run(runCtx) // saves a last snapshot when it ends
	}()
	stop := func() {
		cancel()
		wg.Wait()
	}
	// Caught up before whistled serves: a list or the figures answered
	// right after a start show everything acknowledged before it.
	begin, from := time.Now(), runner.Position()
	if err := runner.WaitFor(ctx, uint64(startHead)); err != nil {
		stop()
		return running{}, err
	}
	log.Info("read models caught up", zap.Uint64("from", from), zap.Uint64("log_head", uint64(startHead)),
		zap.Duration("took", time.Since(begin)))
	d.readModels = runner
	return running{serve: func(cfg *httpapi.Config) { cfg.ReadModels, cfg.Callbacks = reads, runner.Board() }, stop: stop}, nil
}
