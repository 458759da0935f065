// Package dispatch routes every change to an assignment over NATS JetStream
// to its assignee, and every change to a case to its street.
//
// The Dispatcher follows the global event log from a durable checkpoint and
// publishes to the dispatch stream (StreamName): whistle.dispatch.<assignee>
// for assignments, whistle.notify.street.<street> for a street's cases.
// Nothing is published from the command path: a command only appends to the
// log, and the dispatch stream is derived from the log, so it can always be
// rebuilt and never disagrees with it.
//
// Feed reads the dispatch stream for the live queues and notifications of
// adapters/httpapi; "what is open for me" is the case board seen by
// assignee (readmodel.Queues).
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Names of the dispatch stream and its subjects.
const (
	// StreamName is the JetStream stream of dispatches and notifications.
	StreamName = "WHISTLE_DISPATCH"
	// DispatchPrefix starts the subject of an assignee: DispatchPrefix + id.
	DispatchPrefix = "whistle.dispatch."
	// StreetPrefix starts the subject of a street: StreetPrefix + id.
	StreetPrefix = "whistle.notify.street."
)

// Headers of every message on the dispatch stream, besides Nats-Msg-Id.
const (
	HeaderEventID  = "Whistle-Event-Id"
	HeaderType     = "Whistle-Event-Type"
	HeaderCaseID   = "Whistle-Case-Id"
	HeaderPosition = "Whistle-Position" // the log position of the event's commit
	HeaderChange   = "Whistle-Change"
)

// DispatchSubject is the subject on which an assignee receives its changes.
func DispatchSubject(assignee string) string { return DispatchPrefix + assignee }

// StreetSubject is the subject on which a street receives its cases' changes.
func StreetSubject(street string) string { return StreetPrefix + street }

// Defaults of StreamOptions.
const (
	// DefaultDuplicateWindow is how long the server remembers a message id.
	//
	// It must cover the checkpoint lag: the time between a message's first
	// publish and its publish again after a restart from the checkpoint.
	// That lag is the checkpoint interval (DefaultCheckpointEvery, a
	// second) plus the time the restart takes (for another instance taking
	// over, the lease TTL, DefaultLeaseTTL) — and a restart may take longer
	// than any window. So a dispatcher does not rely on the window there:
	// before it resumes from the checkpoint it reads the ids of the
	// messages stored after the checkpoint's sequence and skips them (see
	// Checkpoint). What the window must still cover is (a) a publish
	// re-sent after a lost acknowledgement, within seconds (PublishTimeout),
	// and (b) the last batch of a previous leader still in flight while the
	// new leader scanned, which lands within a lease TTL plus a publish
	// timeout of that leader's last renewal. Two minutes covers both with a
	// wide margin, and the one-second checkpoint lag many times over.
	DefaultDuplicateWindow = 2 * time.Minute
	// DefaultMaxAge is how long dispatches are kept: an assignee that reads
	// its durable consumer after a longer absence asks its queue instead.
	DefaultMaxAge = 30 * 24 * time.Hour
)

// StreamOptions configures the dispatch stream.
type StreamOptions struct {
	// Replicas of the stream and of the dispatcher's buckets; default 1.
	Replicas int
	// DuplicateWindow; default DefaultDuplicateWindow.
	DuplicateWindow time.Duration
	// MaxAge; default DefaultMaxAge.
	MaxAge time.Duration
	// Async stores the stream without an fsync per message (PersistMode
	// async; one replica only): its messages are derived from the log, and
	// the dispatcher's checkpoint trails what is surely on disk (see
	// Config.DurableAfter), so what a crash takes from the stream's tail is
	// published again, under the same message ids. A stream that exists
	// keeps the mode it was created with (the server cannot change it).
	Async bool
}

func (o *StreamOptions) setDefaults() {
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.DuplicateWindow <= 0 {
		o.DuplicateWindow = DefaultDuplicateWindow
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
}

// EnsureStream creates the dispatch stream, or updates its configuration,
// and returns it. It is safe to call from several processes at once.
func EnsureStream(ctx context.Context, js jetstream.JetStream, opts StreamOptions) (jetstream.Stream, error) {
	opts.setDefaults()
	cfg := jetstream.StreamConfig{
		Name:        StreamName,
		Description: "whistle dispatches (whistle.dispatch.<assignee>) and street notifications, derived from the event log",
		Subjects:    []string{DispatchPrefix + ">", "whistle.notify.>", OutboxPrefix + ">"},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      opts.MaxAge,
		Discard:     jetstream.DiscardOld,
		Storage:     jetstream.FileStorage,
		Replicas:    opts.Replicas,
		Duplicates:  opts.DuplicateWindow,
		AllowDirect: true,
		// The dispatcher writes what the log runs ahead by as atomic
		// batches, which share one fsync (see publishAtomic).
		AllowAtomicPublish: true,
	}
	if opts.Async {
		cfg.PersistMode = jetstream.AsyncPersistMode
	}
	if old, err := js.Stream(ctx, StreamName); err == nil {
		cfg.PersistMode = old.CachedInfo().Config.PersistMode
	} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("dispatch: stream %s: %w", StreamName, err)
	}
	if cfg.PersistMode == jetstream.AsyncPersistMode {
		cfg.AllowAtomicPublish = false // the server refuses both; without fsyncs there is nothing to share
	}
	s, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("dispatch: create or update stream %s (replicas %d): %w", StreamName, opts.Replicas, err)
	}
	return s, nil
}
