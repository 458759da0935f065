package main

import (
	"context"
	"path/filepath"

	"github.com/whistle-gov/whistle/adapters/httpapi"
	"github.com/whistle-gov/whistle/adapters/storeguard"
)

// Store guard: with the embedded event store, watches the free space under
// the data folder and the server's write errors; a full disk is answered
// at once (507 on commands, 503 on /readyz, whistle_store_full 1) and left
// behind without a restart when space returns (storeguard). With an
// external NATS or EventStoreDB the log is not on this disk: nothing to
// watch here.
func startStoreGuard(ctx context.Context, d *deps) (running, error) {
	if d.bus.embedded == nil || d.opts.store != "jetstream" {
		return running{}, nil
	}
	g := storeguard.New(storeguard.Config{
		Dir:     filepath.Join(d.opts.data, "jetstream"),
		Reserve: d.opts.diskReserve,
		Server:  d.bus.embedded,
		Log:     d.log.Named("storeguard"),
	})
	// A scrape sees the free space of now.
	d.metrics.StoreFull(func() float64 {
		if g.Full() != nil {
			return 1
		}
		return 0
	})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = g.Run(runCtx)
	}()
	return running{
		serve: func(cfg *httpapi.Config) { cfg.StoreFull = g.Full },
		ready: func(context.Context) error { return g.Full() },
		stop:  func() { cancel(); <-done },
	}, nil
}
