package main

import (
	"context"

	"github.com/whistle-gov/whistle/adapters/eventstore/jetstream"
	"github.com/whistle-gov/whistle/adapters/httpapi"
)

// Metrics: GET /metrics in the Prometheus text format, open to anyone like
// /healthz (it names routes and counts, no case data), and with --pprof Go's
// profiles on /debug/pprof/. It starts first, so that the handler reports
// every command, the SLA watcher's too.
func init() {
	registerComponent(component{name: "metrics", order: 0, start: startMetrics})
}

func startMetrics(_ context.Context, d *deps) (running, error) {
	d.handler.SetObserver(d.metrics)
	jetstream.SetBatchObserver(d.metrics.BatchCommits)
	h := d.metrics.Handler()
	withPprof := d.opts.pprof
	return running{
		serve: func(cfg *httpapi.Config) { cfg.Metrics, cfg.Pprof = h, withPprof },
		// The batch observer is process-wide: a whistled run in a test
		// process must not report into a stopped one's registry.
		stop: func() { jetstream.SetBatchObserver(nil) },
	}, nil
}
