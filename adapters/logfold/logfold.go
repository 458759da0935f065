// Package logfold helps the subscribers of the global log (the dispatcher,
// the queue view, the SLA watcher) keep the state of the cases they follow.
//
// A subscriber that starts from a checkpoint, or that forgets cases it no
// longer needs to bound its memory, meets events of cases it does not hold.
// A Tracker then rebuilds such a case from the case's own stream, up to just
// before the event, so that each event is always folded into the state it
// was decided on. The store's global log and the case streams hold the same
// events, so the result is what a fold of the whole log would give.
package logfold

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/whistle-gov/whistle/adapters/casestate"
	"github.com/whistle-gov/whistle/adapters/eventcodec"
	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/domain"
)

// ErrBehind: the case's stream, read to rebuild a case, does not hold the
// event yet (a replica of a clustered store that lags the one that delivered
// the log). Retrying a little later is enough.
var ErrBehind = errors.New("logfold: case stream is behind the log")

// Step is one event of a commit, decoded.
type Step struct {
	Env   domain.Envelope
	Event domain.Event
}

// Decode turns the events of a commit into envelopes and domain events.
func Decode(c eventstore.Commit) ([]Step, error) {
	dc, err := eventcodec.Decode(c)
	if err == nil {
		err = dc.EventsErr
	}
	if err != nil {
		return nil, fmt.Errorf("logfold: %w", err)
	}
	steps := make([]Step, len(dc.Envelopes))
	for i, env := range dc.Envelopes {
		steps[i] = Step{Env: env, Event: dc.Events[i]}
	}
	return steps, nil
}

// Tracker holds the states of the cases a subscriber follows. It is not safe
// for concurrent use: one subscriber goroutine owns it.
type Tracker struct {
	store eventstore.Store
	max   int
	cases map[string]*domain.Case
}

// NewTracker returns a Tracker that reads missing cases from store and holds
// at most max cases (0: no bound), forgetting arbitrary ones beyond that.
func NewTracker(store eventstore.Store, max int) *Tracker {
	return &Tracker{store: store, max: max, cases: make(map[string]*domain.Case)}
}

// Before returns the state of env's case just before env, for the caller to
// apply env to (c.Apply); the Tracker holds the state until Forget. fresh is
// false when env was already applied to the state held (a redelivery): the
// caller skips it. A case not held, or held at an older version (a gap), is
// rebuilt from its stream; a WhistleRaised at version 0 starts a new case
// without reading.
func (t *Tracker) Before(ctx context.Context, env domain.Envelope) (c *domain.Case, fresh bool, err error) {
	if c, ok := t.cases[env.CaseID]; ok {
		switch {
		case c.Version == env.Version:
			return c, true, nil
		case c.Version > env.Version:
			return c, false, nil
		}
	}
	if env.Version == 0 {
		c := domain.NewCase(env.CaseID)
		t.hold(c)
		return c, true, nil
	}
	history, err := casestate.ReadHistory(ctx, t.store, env.CaseID)
	if err != nil {
		return nil, false, err
	}
	if uint64(len(history)) < env.Version {
		return nil, false, fmt.Errorf("%w: case %s has %d events, the log delivered version %d", ErrBehind, env.CaseID, len(history), env.Version)
	}
	c, err = domain.Replay(env.CaseID, history[:env.Version])
	if err != nil {
		return nil, false, err
	}
	t.hold(c)
	return c, true, nil
}

// Held returns the state held for a case, if any. The caller must not keep
// it beyond its next call into the Tracker.
func (t *Tracker) Held(caseID string) (*domain.Case, bool) {
	c, ok := t.cases[caseID]
	return c, ok
}

// Forget drops a case; its next event rebuilds it from its stream.
func (t *Tracker) Forget(caseID string) { delete(t.cases, caseID) }

// Len is the number of cases held.
func (t *Tracker) Len() int { return len(t.cases) }

func (t *Tracker) hold(c *domain.Case) {
	if t.max > 0 && len(t.cases) >= t.max {
		// Forget an arbitrary tenth: map order is random, and a forgotten
		// case costs one stream read when it is met again.
		n := max(t.max/10, 1)
		for id := range t.cases {
			delete(t.cases, id)
			if n--; n == 0 {
				break
			}
		}
	}
	t.cases[c.ID] = c
}

// Fold decodes a commit and hands its steps to apply, which folds them with
// t. A failed apply leaves no half-applied case behind (the commit's case is
// forgotten and rebuilt next time); when the case's stream lags the log
// (ErrBehind) the commit is tried again a little later, up to a bound.
func Fold(ctx context.Context, t *Tracker, c eventstore.Commit, apply func(context.Context, []Step) error) error {
	steps, err := Decode(c)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		err = apply(ctx, steps)
		if err == nil {
			return nil
		}
		if len(steps) > 0 {
			t.Forget(steps[0].Env.CaseID)
		}
		if !errors.Is(err, ErrBehind) || attempt >= behindRetries {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(behindWait):
		}
	}
}

// A lagging replica catches up within seconds; past that the subscriber
// fails and its supervisor resubscribes.
const (
	behindRetries = 50
	behindWait    = 100 * time.Millisecond
)
