package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/whistle-gov/whistle/adapters/casehandler"
	"github.com/whistle-gov/whistle/adapters/casestate"
	"github.com/whistle-gov/whistle/adapters/config"
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
	principals *config.Principals
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

// component is one part of whistled beside the command API: a read model, the
// dispatcher, the SLA watcher, the dashboard. Each lives in its own file and
// registers itself with registerComponent from an init function.
type component struct {
	name  string
	order int // lower starts first
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

var components []component

func registerComponent(c component) { components = append(components, c) }

type startedComponents struct {
	names []string
	runs  []running
	// serve fills in the API's configuration; ready and stop gather the components'.
	serve []func(cfg *httpapi.Config)
}

func startComponents(ctx context.Context, d *deps) (*startedComponents, error) {
	all := slices.Clone(components)
	slices.SortStableFunc(all, func(a, b component) int { return a.order - b.order })
	s := &startedComponents{}
	for _, c := range all {
		r, err := c.start(ctx, d)
		if err != nil {
			return s, fmt.Errorf("start %s: %w", c.name, err)
		}
		s.names = append(s.names, c.name)
		s.runs = append(s.runs, r)
		if r.serve != nil {
			s.serve = append(s.serve, r.serve)
		}
		d.log.Info("component started", zap.String("component", c.name))
	}
	return s, nil
}

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

// stop stops components in the reverse order of their start.
func (s *startedComponents) stop() {
	for i := len(s.runs) - 1; i >= 0; i-- {
		if s.runs[i].stop != nil {
			s.runs[i].stop()
		}
	}
}
