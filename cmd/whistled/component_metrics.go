package main

import (
	"context"

	"github.com/whistle-gov/whistle/adapters/httpapi"
)

// Metrics: GET /metrics in the Prometheus text format, open to anyone like
// /healthz (it names routes and counts, no case data), and with --pprof Go's
// profiles on /debug/pprof/. It starts first, so that the handler reports
// every command, the SLA watcher's too.
func startMetrics(_ context.Context, d *deps) (running, error) {
	// The store reports its group commit's batch sizes through its
	// Config.BatchObserver (openStore).
	d.handler.SetObserver(d.metrics)
	h := d.metrics.Handler()
	withPprof := d.opts.pprof
	return running{
		serve: func(cfg *httpapi.Config) { cfg.Metrics, cfg.Pprof = h, withPprof },
	}, nil
}
