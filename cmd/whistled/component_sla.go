package main

import (
	"context"
	"path/filepath"
	"sync"

	"github.com/whistle-gov/whistle/adapters/slawatch"
)

// The SLA watcher: overdue marks and escalations when deadlines pass.
func startSLA(ctx context.Context, d *deps) (running, error) {
	// The handler decides on time.Now (run.go); the watcher must use the
	// same clock, or it would find nothing due at the moment it wakes.
	w := slawatch.New(slawatch.Config{
		Store: d.store, Handler: d.handler, Directory: d.dir,
		Clock: slawatch.SystemClock{}, Log: d.log.Named("sla"),
		Cases: d.cases, Follow: d.follow,
		// The schedule's checkpoint: a restart follows the log from it.
		Dir: filepath.Join(d.opts.data, "sla"),
	})
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = w.Run(runCtx)
	}()
	// The watcher catches up in the background: it is not part of readiness,
	// which is about serving the API; it checks no deadline before it has
	// caught up, and a deadline that passed meanwhile is due at once then.
	return running{
		stop: func() {
			cancel()
			wg.Wait()
		},
	}, nil
}
