package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/whistle-gov/whistle/adapters/dispatch"
	"go.uber.org/zap"
)

// The dispatcher (log → whistle.dispatch.<assignee> and
// whistle.notify.street.<street>), the queue view, and their routes:
// GET /v1/queues/{assignee} and GET /v1/notifications.
func init() {
	registerComponent(component{name: "dispatch", order: 30, start: startDispatch})
}

func startDispatch(ctx context.Context, d *deps) (running, error) {
	log := d.log.Named("dispatch")
	disp, err := dispatch.New(ctx, dispatch.Config{
		Store:    d.store,
		Conn:     d.bus.nc,
		Log:      log,
		Instance: instanceName(d.opts.data),
		Stream:   dispatch.StreamOptions{Replicas: d.opts.replicas},
		// Dispatch messages are fsynced like commits: share the fsyncs
		// where group commit shares the log's.
		AtomicBatches: d.opts.groupCommitOn(),
	})
	if err != nil {
		return running{}, err
	}
	queues := dispatch.NewQueues(d.store, d.log.Named("queues"))
	routes, err := dispatch.Routes(dispatch.HTTPConfig{
		Queues: queues, Store: d.store, Conn: d.bus.nc, Directory: d.dir, Log: d.log.Named("queues"),
	})
	if err != nil {
		return running{}, err
	}
	d.metrics.DispatchLag(d.metrics.Behind(disp.Published))
	d.metrics.ProjectionLag("queues", d.metrics.Behind(queues.Position))
	d.metrics.OverdueAssignments(func() float64 { return float64(queues.Overdue()) })
	startHead, err := d.store.Head(ctx)
	if err != nil {
		return running{}, fmt.Errorf("log head: %w", err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_ = disp.Run(runCtx)
	}()
	go func() {
		defer wg.Done()
		_ = queues.Run(runCtx)
	}()
	stop := func() {
		cancel()
		wg.Wait()
	}
	// The queue view is caught up with the log before whistled serves, so
	// that a queue answers at once after a start, like a case does.
	begin := time.Now()
	if err := queues.WaitFor(ctx, startHead); err != nil {
		stop()
		return running{}, err
	}
	log.Info("queue view caught up", zap.Uint64("log_head", uint64(startHead)), zap.Duration("took", time.Since(begin)))
	return running{routes: routes, stop: stop}, nil
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
