package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"sync"

	"github.com/whistle-gov/whistle/adapters/dispatch"
	"github.com/whistle-gov/whistle/adapters/httpapi"
	"github.com/whistle-gov/whistle/adapters/natsbus"
)

// The dispatcher (log → whistle.dispatch.<assignee> and
// whistle.notify.street.<street>), and the routes of the queues (the read
// models' board seen by assignee) and notifications:
// GET /v1/queues/{assignee} and GET /v1/notifications.
func startDispatch(ctx context.Context, d *deps) (running, error) {
	log := d.log.Named("dispatch")
	disp, err := dispatch.New(ctx, dispatch.Config{
		Store:    d.store,
		Conn:     d.bus.nc,
		Log:      log,
		Instance: instanceName(d.opts.data),
		Stream:   dispatchStream(d),
		// Where dispatch messages are fsynced like commits (not on the
		// embedded server: dispatchStream), share the fsyncs where group
		// commit shares the log's.
		AtomicBatches: d.opts.groupCommitOn(),
		DurableAfter:  3 * natsbus.EmbeddedSyncInterval,
		Cases:         d.cases,
		Follow:        d.follow,
	})
	if err != nil {
		return running{}, err
	}
	if d.readModels == nil {
		return running{}, errors.New("the queue view is the read models' board: start the read models first")
	}
	// The queues are the case board seen by assignee: caught up with the
	// read models, before whistled serves.
	queues := d.readModels.Queues()
	feed, err := dispatch.NewFeed(d.bus.nc)
	if err != nil {
		return running{}, err
	}
	d.metrics.DispatchLag(d.metrics.Behind(disp.Published))
	d.metrics.ProjectionLag("queues", d.metrics.Behind(queues.Position))
	d.metrics.OverdueAssignments(func() float64 { return float64(queues.Overdue()) })
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = disp.Run(runCtx)
	}()
	return running{serve: func(cfg *httpapi.Config) { cfg.Queues, cfg.Feed, cfg.Inbox, cfg.Outbox = queues, feed, queues, feed }, stop: func() {
		cancel()
		wg.Wait()
	}}, nil
}

// dispatchStream configures the dispatch stream. On the embedded server it
// is stored without an fsync per message: it is derived from the log, the
// server dies with this process, and the dispatcher's checkpoint trails
// what the server has synced (DurableAfter), so a crash loses nothing that
// is not published again (DESIGN.md §11). On an external NATS it syncs as
// the server is configured to.
func dispatchStream(d *deps) dispatch.StreamOptions {
	return dispatch.StreamOptions{Replicas: d.opts.replicas, Async: d.bus.embedded != nil && d.opts.replicas == 1}
}

// instanceName names this whistled for the dispatcher's lease: the same for
// a restart on the same host and data folder, so a restarted process takes
// its lease back at once, and different for another instance.
func instanceName(data string) string {
	host, _ := os.Hostname()
	abs, err := filepath.Abs(data)
	if err != nil {
		abs = data
	}
	sum := sha256.Sum256([]byte(host + "\x00" + abs))
	return host + "-" + hex.EncodeToString(sum[:6])
}
