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

	"github.com/whistle-gov/whistle/adapters/casestate"
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
	cache *casestate.Cache
	obs   Observer
	// maxEvents bounds a case's events (domain.CheckCaseSize); 0: none.
	maxEvents int
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

// SetCache makes h keep its case states in cache, shared with the
// followers of the log (see casestate); call it before h is used. By
// default h has a cache of its own.
func (h *Handler) SetCache(cache *casestate.Cache) { h.cache = cache }

// SetMaxEvents bounds the events of a case (default
// domain.DefaultMaxEventsPerCase; 0: no bound); call it before h is used.
func (h *Handler) SetMaxEvents(n int) { h.maxEvents = n }

// New returns a Handler over store with the routing policy dir.
func New(store eventstore.Store, dir *domain.Directory, now Clock, log *zap.Logger) *Handler {
	return &Handler{store: store, dir: dir, now: now, log: log, seed: maphash.MakeSeed(), cache: casestate.New(store, 0),
		maxEvents: domain.DefaultMaxEventsPerCase}
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

	// fresh: read the case's stream rather than trust the cached state,
	// after a conflict (the case moved) or to confirm a refusal: another
	// process sharing the store (two whistled on one NATS) may have moved
	// the case, and a refusal, unlike a decision, meets no version check.
	fresh := false
	for attempt := 0; attempt < MaxAttempts; attempt++ {
		var c *domain.Case
		cached := false
		if req.New && attempt == 0 {
			c = domain.NewCase(req.CaseID)
		} else {
			var err error
			if c, cached, err = h.load(ctx, req.CaseID, fresh); err != nil {
				return Result{}, err
			}
		}
		if _, done := c.Commands[req.CommandID]; done {
			if print, ok := requestPrint(req.Command); ok && print != c.RequestSHA256 {
				return Result{}, ErrIdempotencyMismatch
			}
			return Result{Case: c.Clone(), AlreadyDone: true}, nil
		}
		var target *domain.Case
		if c.Exists() {
			target = c
		}
		if err := domain.Authorize(target, req.Actor, req.Command); err != nil {
			if cached {
				fresh = true
				continue
			}
			if !c.Exists() && !isRaise(req.Command) {
				return Result{}, &domain.Refusal{Err: domain.ErrNoCase, Reason: "no case " + req.CaseID}
			}
			return Result{}, err
		}
		now := h.now()
		events, err := domain.Decide(c, req.Command, h.dir, now)
		if err != nil {
			if cached {
				fresh = true
				continue
			}
			return Result{}, err
		}
		if len(events) == 0 {
			return Result{Case: c.Clone()}, nil
		}
		if err := domain.CheckCaseSize(c, req.Command, len(events), h.maxEvents); err != nil {
			if cached {
				fresh = true
				continue
			}
			return Result{}, err
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
			fresh = true
			continue
		}
		if err != nil {
			h.cache.Drop(req.CaseID) // the append may have happened: read the truth next time
			return Result{}, fmt.Errorf("casehandler: append to case %s: %w", req.CaseID, err)
		}
		for i, env := range envs {
			c.Apply(env, events[i])
		}
		h.cache.Put(c)
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

func isRaise(cmd domain.Command) bool {
	switch cmd.(type) {
	case domain.Raise, domain.ReceiveTicket:
		return true
	}
	return false
}

// requestPrint is the fingerprint of the request that opens a case (a
// raise, a ticket), which its retry must repeat.
func requestPrint(cmd domain.Command) (string, bool) {
	switch cmd := cmd.(type) {
	case domain.Raise:
		return cmd.RequestSHA256, true
	case domain.ReceiveTicket:
		return cmd.RequestSHA256, true
	}
	return "", false
}

// load returns the case's state, the caller's to change (it holds the
// case's lock): a copy of the cached one unless fresh is asked for (cached
// then tells so), else read from the case's stream.
func (h *Handler) load(ctx context.Context, caseID string, fresh bool) (c *domain.Case, cached bool, err error) {
	if !fresh {
		if c, ok := h.cache.Latest(caseID); ok {
			return c.Clone(), true, nil
		}
	}
	c, err = h.cache.Read(ctx, caseID)
	return c, false, err
}
