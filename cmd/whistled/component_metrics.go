package main

import (
	"context"
	"net/http"
	"net/http/pprof"

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
		routes: func(mux *http.ServeMux, _ *httpapi.API) {
			mux.Handle("GET /metrics", h)
			if withPprof {
				mux.HandleFunc("GET /debug/pprof/", pprof.Index)
				mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
				mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
				mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
			}
		},
		// The batch observer is process-wide: a whistled run in a test
		// process must not report into a stopped one's registry.
		stop: func() { jetstream.SetBatchObserver(nil) },
	}, nil
}
