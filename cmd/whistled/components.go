package main

import (
	"context"
	"fmt"
	"time"

	"github.com/whistle-gov/whistle/adapters/casehandler"
	"github.com/whistle-gov/whistle/adapters/casestate"
	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/adapters/follow"
	"github.com/whistle-gov/whistle/adapters/httpapi"
	"github.com/whistle-gov/whistle/adapters/metrics"
	"github.com/whistle-gov/whistle/adapters/readmodel"
	"github.com/whistle-gov/whistle/domain"
	"go.uber.org/zap"
)

// deps is what every component of whistled may use.
type deps struct {
	opts       options
	log        *zap.Logger
	dir        *domain.Directory
	store      eventstore.Store
	bus        *bus
	handler    *casehandler.Handler
	principals *livePrincipals
	// metrics: components export their gauges here (lag, overdue work).
	metrics *metrics.Metrics
	// cases and follow are the case states and the subscription to the
	// log that the handler and every follower share.
	cases  *casestate.Cache
	follow *follow.Log
	// readModels is set by the read models' component, which starts before
	// the dispatch component that serves their queue view.
	readModels *readmodel.Runner
}

// component is one part of whistled beside the command API: a read model,
// the dispatcher, the SLA watcher, the dashboard. Its start function lives
// in the file of its concern (component_*.go); components lists them all.
type component struct {
	name string
	// start launches the component's background work, which must end when
	// ctx is done, and returns what it adds to the service.
	start func(ctx context.Context, d *deps) (running, error)
}

// running is what a started component adds: what it serves through the
// API, a readiness check and a stop function that waits for its work to
// end. Any may be nil.
type running struct {
	serve func(cfg *httpapi.Config)
	ready func(ctx context.Context) error
	stop  func()
}

// components are whistled's parts, in the order they start; they stop in
// the reverse order, and /readyz asks each in this order.
func components() []component {
	return []component{
		// First, so that the handler reports every command, the SLA
		// watcher's too.
		{name: "metrics", start: startMetrics},
		// Before the rest, so that /readyz names a full disk first.
		{name: "store-guard", start: startStoreGuard},
		// Before anything that follows the log: network clients of the
		// embedded server wait for it.
		{name: "nats-auth", start: startNATSAuth},
		// Caught up with the log before whistled serves; their board is
		// the queue view the dispatch component serves.
		{name: "readmodels", start: startReadModels},
		{name: "dispatch", start: startDispatch},
		{name: "sla-watcher", start: startSLA},
		{name: "dashboard", start: startDashboard},
	}
}

type startedComponents struct {
	names []string
	runs  []running
}

// startComponents starts each of list in order, and stops those started
// when one fails.
func startComponents(ctx context.Context, d *deps, list []component) (*startedComponents, error) {
	s := &startedComponents{}
	for _, c := range list {
		begin := time.Now()
		r, err := c.start(ctx, d)
		if err != nil {
			s.stop()
			return nil, fmt.Errorf("start %s: %w", c.name, err)
		}
		s.names = append(s.names, c.name)
		s.runs = append(s.runs, r)
		d.log.Info("component started", zap.String("component", c.name), zap.Duration("took", time.Since(begin)))
	}
	return s, nil
}

// serve fills in what the components serve through the API.
func (s *startedComponents) serve(cfg *httpapi.Config) {
	for _, r := range s.runs {
		if r.serve != nil {
			r.serve(cfg)
		}
	}
}

// ready asks each component in order; an error names the first one not
// ready.
func (s *startedComponents) ready(ctx context.Context) error {
	for i, r := range s.runs {
		if r.ready != nil {
			if err := r.ready(ctx); err != nil {
				return fmt.Errorf("%s: %w", s.names[i], err)
			}
		}
	}
	return nil
}

// stop stops the components in the reverse order of their start.
func (s *startedComponents) stop() {
	for i := len(s.runs) - 1; i >= 0; i-- {
		if s.runs[i].stop != nil {
			s.runs[i].stop()
		}
		s.names[i] = "" // stopped
	}
	s.runs, s.names = nil, nil
}
