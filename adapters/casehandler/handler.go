// Package casehandler runs commands against cases: load the case's events,
// decide with the pure domain, append with optimistic concurrency, and on a
// conflict re-read and re-decide.
package casehandler

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/whistle-gov/whistle/adapters/eventcodec"
	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/domain"
	"go.uber.org/zap"
)

// MaxAttempts bounds how often a command is re-decided after version
// conflicts before it is refused with ErrContention.
const MaxAttempts = 8

// ErrContention: the case kept changing under the command; it was not applied.
var ErrContention = errors.New("casehandler: case changed concurrently too often; try again")

// ErrIdempotencyMismatch: an Idempotency-Key was used again with another body.
var ErrIdempotencyMismatch = errors.New("casehandler: idempotency key was already used with another request body")

// Clock returns the current time; tests pass a fake one.
type Clock func() time.Time

// Handler executes commands. It is safe for concurrent use.
type Handler struct {
	store eventstore.Store
	dir   *domain.Directory
	now   Clock
	log   *zap.Logger
	locks [256]sync.Mutex
	seed  maphash.Seed
	cache *stateCache
	obs   Observer
}

// Observer is told what the handler does, for metrics. Its methods must be
// quick and safe for concurrent use.
type Observer interface {
	// CommandDone: an Execute ended with outcome ok, already_done, noop,
	// refused, contention or error.
	CommandDone(command, outcome string, took time.Duration)
	// AppendDone: an append to the store ended with outcome ok, conflict or
	// error.
	AppendDone(took time.Duration, outcome string)
	// Retry: the command is decided again after a version conflict.
	Retry(command string)
}

// SetObserver makes h report to o; call it before h is used.
func (h *Handler) SetObserver(o Observer) { h.obs = o }

// New returns a Handler over store with the routing policy dir.
func New(store eventstore.Store, dir *domain.Directory, now Clock, log *zap.Logger) *Handler {
	return &Handler{store: store, dir: dir, now: now, log: log, seed: maphash.MakeSeed(), cache: newStateCache(DefaultCacheSize)}
}

// Request is one command to run.
type Request struct {
	CaseID    string
	CommandID string // the idempotency key; the same id is applied at most once
	Actor     domain.Actor
	Command   domain.Command
	// New: the caller made CaseID up at random for this command, so the case
	// cannot exist yet and need not be read first.
	New bool
	// BeforeAppend, when set, runs once the command is decided and before
	// its events are appended, with the case as it was and the events; an
	// error aborts the command (nothing is appended) and is returned. It
	// runs again when a version conflict re-decides, so it must be
	// idempotent. It does what must be done before the events are facts
	// (forget destroys a key: the event never claims what did not happen).
	BeforeAppend func(ctx context.Context, c *domain.Case, events []domain.Event) error
}

// Result is what a command did.
type Result struct {
	Case        *domain.Case      // the case after the command: the caller's own copy
	Events      []domain.Envelope // appended by this call; empty when already done or nothing due
	Position    eventstore.Position
	AlreadyDone bool // the command id had been applied before: nothing was appended
}

// Execute runs one command. Refusals are *domain.Refusal (wrapping the domain
// sentinels); ErrContention when conflicts persist; other errors come from the
// store, and then the command may or may not have been applied (retrying with
// the same CommandID is safe).
func (h *Handler) Execute(ctx context.Context, req Request) (Result, error) {
	if h.obs == nil {
		return h.execute(ctx, req)
	}
	start := time.Now()
	res, err := h.execute(ctx, req)
	h.obs.CommandDone(req.Command.CommandName(), outcome(res, err), time.Since(start))
	return res, err
}

func outcome(res Result, err error) string {
	var refusal *domain.Refusal
	switch {
	case err == nil && res.AlreadyDone:
		return "already_done"
	case err == nil && len(res.Events) == 0:
		return "noop"
	case err == nil:
		return "ok"
	case errors.As(err, &refusal), errors.Is(err, ErrIdempotencyMismatch):
		return "refused"
	case errors.Is(err, ErrContention):
		return "contention"
	}
	return "error"
}

func (h *Handler) execute(ctx context.Context, req Request) (Result, error) {
	// Serialize commands on one case inside this process: conflicts then only
	// arise between processes, and the cached state is never shared mid-update.
	lock := &h.locks[maphash.String(h.seed, req.CaseID)%uint64(len(h.locks))]
	lock.Lock()
	defer lock.Unlock()

	var err error
	for attempt := 0; attempt < MaxAttempts; attempt++ {
		var c *domain.Case
		if req.New && attempt == 0 {
			c = domain.NewCase(req.CaseID)
		} else if c, err = h.load(ctx, req.CaseID, attempt > 0); err != nil {
			return Result{}, err
		}
		if _, done := c.Commands[req.CommandID]; done {
			if raise, ok := req.Command.(domain.Raise); ok && raise.RequestSHA256 != c.RequestSHA256 {
				return Result{}, ErrIdempotencyMismatch
			}
			return Result{Case: c.Clone(), AlreadyDone: true}, nil
		}
		var target *domain.Case
		if c.Exists() {
			target = c
		}
		if err := domain.Authorize(target, req.Actor, req.Command); err != nil {
			if !c.Exists() && !isRaise(req.Command) {
				return Result{}, &domain.Refusal{Err: domain.ErrNoCase, Reason: "no case " + req.CaseID}
			}
			return Result{}, err
		}
		now := h.now()
		events, err := domain.Decide(c, req.Command, h.dir, now)
		if err != nil {
			return Result{}, err
		}
		if len(events) == 0 {
			return Result{Case: c.Clone()}, nil
		}
		if req.BeforeAppend != nil {
			if err := req.BeforeAppend(ctx, c, events); err != nil {
				return Result{}, err
			}
		}
		envs, err := domain.Seal(c, domain.CommandMeta{CommandID: req.CommandID, Actor: req.Actor, Now: now}, events)
		if err != nil {
			return Result{}, err
		}
		data, err := eventcodec.Encode(envs)
		if err != nil {
			return Result{}, err
		}
		appendStart := time.Now()
		res, err := h.store.Append(ctx, domain.Stream(req.CaseID), c.Version, data)
		if h.obs != nil {
			h.observeAppend(req.Command, time.Since(appendStart), err, attempt)
		}
		if errors.Is(err, eventstore.ErrConflict) {
			h.log.Debug("version conflict; re-deciding", zap.String("case_id", req.CaseID),
				zap.String("command_id", req.CommandID), zap.Int("attempt", attempt+1))
			continue
		}
		if err != nil {
			h.cache.drop(req.CaseID) // the append may have happened: read the truth next time
			return Result{}, fmt.Errorf("casehandler: append to case %s: %w", req.CaseID, err)
		}
		for i, env := range envs {
			c.Apply(env, events[i])
		}
		h.cache.put(req.CaseID, c)
		return Result{Case: c.Clone(), Events: envs, Position: res.Position}, nil
	}
	return Result{}, ErrContention
}

func (h *Handler) observeAppend(cmd domain.Command, took time.Duration, err error, attempt int) {
	switch {
	case err == nil:
		h.obs.AppendDone(took, "ok")
	case errors.Is(err, eventstore.ErrConflict):
		h.obs.AppendDone(took, "conflict")
		if attempt+1 < MaxAttempts {
			h.obs.Retry(cmd.CommandName())
		}
	default:
		h.obs.AppendDone(took, "error")
	}
}

func isRaise(cmd domain.Command) bool { _, ok := cmd.(domain.Raise); return ok }

// load returns the case's state, from the cache unless fresh is asked for.
// The returned state is the caller's to change (it holds the case's lock).
func (h *Handler) load(ctx context.Context, caseID string, fresh bool) (*domain.Case, error) {
	if !fresh {
		if c, ok := h.cache.get(caseID); ok {
			return c, nil
		}
	}
	h.cache.drop(caseID)
	history, err := ReadCase(ctx, h.store, caseID)
	if err != nil {
		return nil, err
	}
	return domain.Replay(caseID, history)
}

// ReadCase reads a case's history from its own stream.
func ReadCase(ctx context.Context, store eventstore.Store, caseID string) ([]domain.Envelope, error) {
	recs, err := store.ReadStream(ctx, domain.Stream(caseID))
	if err != nil {
		return nil, fmt.Errorf("casehandler: read case %s: %w", caseID, err)
	}
	return eventcodec.DecodeEnvelopes(recs)
}

// DefaultCacheSize bounds the case states the handler keeps. A case's
// commands come in a burst (its raise, then its report-ins, within a second
// or so at the load generator's pace) and then hours apart, when a miss costs
// one read of the case's stream, a small part of the command: 4,096 cases
// hold several seconds of raises at 1,000 whistles/s, while each case held
// costs ~1.2 KB.
const DefaultCacheSize = 4096

// stateCache keeps the latest known state of recently used cases, so a
// command does not re-read its case's stream. A stale entry is harmless: the
// append's version check catches it and the case is re-read.
type stateCache struct {
	mu    sync.Mutex
	max   int
	cases map[string]*domain.Case
}

func newStateCache(max int) *stateCache {
	return &stateCache{max: max, cases: make(map[string]*domain.Case)}
}

func (s *stateCache) get(id string) (*domain.Case, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cases[id]
	return c, ok
}

func (s *stateCache) put(id string, c *domain.Case) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cases) >= s.max {
		// Evict an arbitrary tenth: map order is random, which is good enough
		// for a cache whose misses cost one stream read.
		n := s.max / 10
		for k := range s.cases {
			delete(s.cases, k)
			if n--; n <= 0 {
				break
			}
		}
	}
	s.cases[id] = c
}

func (s *stateCache) drop(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.cases, id)
}
