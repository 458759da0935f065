// Package casestate holds the recent states of cases for everyone in the
// process who folds them: the command handler (the state it decides on)
// and the followers of the log (the state an event was decided on, and the
// one it leaves). One bounded Cache replaces a cache in the handler and a
// tracker in each follower: a commit the handler appended is found by the
// followers already folded, and a case a follower folded is found by the
// next command on it.
//
// States in the Cache are read-only: whoever wants to change one clones it
// first (domain.Case.Clone) and puts the result. For each case the Cache
// keeps its latest state and the one before its last commit, so that a
// follower that needs the state before an event (the dispatcher) and one
// that needs it after (the SLA watcher) both find it, whoever came first.
//
// A state missing, or older than the event it is asked for, is read from
// the case's own stream. The store's global log and the case streams hold
// the same events, so the result is what a fold of the whole log would
// give.
package casestate

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/whistle-gov/whistle/adapters/eventcodec"
	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/domain"
)

// DefaultSize bounds the cases a Cache holds. A case's commands and events
// come in a burst (its raise, then its report-ins, within a second or so)
// and then hours apart, when a miss costs one read of the case's stream, a
// small part of the work: 4,096 cases hold several seconds of raises at
// 1,000 whistles/s, while each case held costs ~1.2 KB per state.
const DefaultSize = 4096

// ErrBehind: the case's stream, read to rebuild a case, does not hold the
// event yet (a replica of a clustered store that lags the one that
// delivered the log). Retrying a little later is enough.
var ErrBehind = errors.New("casestate: case stream is behind the log")

// Cache is a bounded set of case states. It is safe for concurrent use.
type Cache struct {
	store eventstore.Store
	max   int

	mu    sync.Mutex
	cases map[string]entry
}

// entry is a case's latest state held and, when known, the one before
// its last commit.
type entry struct {
	cur, prev *domain.Case
}

// New returns a Cache that reads missing cases from store and holds at
// most max cases (0: DefaultSize), forgetting arbitrary ones beyond that.
func New(store eventstore.Store, max int) *Cache {
	if max <= 0 {
		max = DefaultSize
	}
	return &Cache{store: store, max: max, cases: make(map[string]entry)}
}

// Latest returns the newest state held for a case, read-only.
func (c *Cache) Latest(caseID string) (*domain.Case, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.cases[caseID]
	return e.cur, ok
}

// Put records s as its case's state; s is read-only from then on. A state
// older than the one held is ignored.
func (c *Cache) Put(s *domain.Case) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.cases[s.ID]
	switch {
	case !ok:
		c.makeRoom()
		c.cases[s.ID] = entry{cur: s}
	case s.Version > e.cur.Version:
		c.cases[s.ID] = entry{cur: s, prev: e.cur}
	}
}

// Drop forgets a case: its next use reads its stream.
func (c *Cache) Drop(caseID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.cases, caseID)
}

// Len is the number of cases held.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cases)
}

func (c *Cache) makeRoom() {
	if len(c.cases) < c.max {
		return
	}
	// Forget an arbitrary tenth: map order is random, and a forgotten case
	// costs one stream read when it is met again.
	n := max(c.max/10, 1)
	for id := range c.cases {
		delete(c.cases, id)
		if n--; n == 0 {
			break
		}
	}
}

// Read reads a case's whole stream and returns its state, the caller's to
// change; the Cache keeps a copy.
func (c *Cache) Read(ctx context.Context, caseID string) (*domain.Case, error) {
	history, err := ReadHistory(ctx, c.store, caseID)
	if err != nil {
		return nil, err
	}
	s, err := domain.Replay(caseID, history)
	if err != nil {
		return nil, err
	}
	c.Put(s.Clone())
	return s, nil
}

// ReadHistory reads a case's history from its own stream.
func ReadHistory(ctx context.Context, store eventstore.Store, caseID string) ([]domain.Envelope, error) {
	recs, err := store.ReadStream(ctx, domain.Stream(caseID))
	if err != nil {
		return nil, fmt.Errorf("casestate: read case %s: %w", caseID, err)
	}
	return eventcodec.DecodeEnvelopes(recs)
}

// Before returns the state of a case just before the commit envs (a
// commit's envelopes, in order), read-only: the one held when it stands
// there, else the case's stream read up to it. A WhistleRaised at version
// 0 starts a new case without reading.
func (c *Cache) Before(ctx context.Context, envs []domain.Envelope) (*domain.Case, error) {
	first := envs[0]
	c.mu.Lock()
	e, ok := c.cases[first.CaseID]
	c.mu.Unlock()
	if ok {
		for _, s := range []*domain.Case{e.cur, e.prev} {
			if s != nil && s.Version == first.Version && s.LastHash == first.PrevHash {
				return s, nil
			}
		}
	}
	if first.Version == 0 {
		return domain.NewCase(first.CaseID), nil
	}
	history, err := ReadHistory(ctx, c.store, first.CaseID)
	if err != nil {
		return nil, err
	}
	if uint64(len(history)) < first.Version {
		return nil, fmt.Errorf("%w: case %s has %d events, the log delivered version %d", ErrBehind, first.CaseID, len(history), first.Version)
	}
	return domain.Replay(first.CaseID, history[:first.Version])
}

// After returns the state of a case once the commit envs, with its events,
// is applied, read-only: the one held when it stands there (the command
// handler that appended it, or another follower, put it), else the state
// before it with the commit applied, which the Cache then keeps.
func (c *Cache) After(ctx context.Context, envs []domain.Envelope, events []domain.Event) (*domain.Case, error) {
	last := envs[len(envs)-1]
	c.mu.Lock()
	e, ok := c.cases[last.CaseID]
	c.mu.Unlock()
	if ok && e.cur.Version == last.Version+1 && e.cur.LastHash == last.Hash {
		return e.cur, nil
	}
	before, err := c.Before(ctx, envs)
	if err != nil {
		return nil, err
	}
	s := before.Clone()
	for i, env := range envs {
		s.Apply(env, events[i])
	}
	c.Put(s)
	return s, nil
}
