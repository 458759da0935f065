package esdb

import (
	"context"
	"errors"
	"fmt"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"go.uber.org/zap"

	"github.com/whistle-gov/whistle/adapters/eventstore"
)

// handlerError carries the error of the subscriber's handler out of the
// subscription loop.
type handlerError struct{ err error }

func (e handlerError) Error() string { return e.err.Error() }

// permanentError is a failure that resubscribing cannot cure: a commit that
// cannot be decoded, a refusal of the server other than a dropped
// connection.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Subscribe implements eventstore.Store with a catch-up subscription to
// $all, filtered on the server by the store's stream prefix: first the
// commits already stored, then new ones as they are appended, each delivered
// whole once its last event arrived.
//
// When the subscription drops (the server restarts, the connection breaks, a
// leader changes) Subscribe resubscribes from the last commit it delivered,
// after a pause that starts at 100ms and doubles up to
// Config.ResubscribeMax, for as long as ctx lasts; commits are neither
// repeated nor skipped across the gap. Besides ctx and handle errors, it
// returns an error wrapping eventstore.ErrClosed when the store is closed,
// and an error when a commit cannot be decoded or the server refuses the
// subscription for another reason than unavailability.
func (s *Store) Subscribe(ctx context.Context, after eventstore.Position, handle func(eventstore.Commit) error) error {
	op := fmt.Sprintf("subscribe after %d", after)
	ctx, done, err := s.begin(ctx, op)
	if err != nil {
		return err
	}
	defer done()

	last := after
	var from esdb.AllPosition
	failures := 0
	for {
		err = nil
		if from == nil {
			from, err = s.startAfter(ctx, op, after)
		}
		if err == nil {
			var delivered bool
			delivered, err = s.subscribeOnce(ctx, from, &last, &from, handle)
			if delivered {
				failures = 0
			}
		}
		var he handlerError
		switch {
		case errors.As(err, &he):
			return he.err
		case ctx.Err() != nil:
			return stopped(ctx, op)
		case errors.As(err, new(permanentError)):
			return fail(ctx, op, err)
		case err == nil:
			err = errors.New("subscription ended")
		}
		pause := backoff(failures, s.cfg.ResubscribeMax)
		failures++
		s.log.Warn("subscription to $all dropped; resubscribing", zap.Uint64("after", uint64(last)), zap.Duration("pause", pause), zap.Error(err))
		if !sleep(ctx, pause) {
			return stopped(ctx, op)
		}
	}
}

// stopped is Subscribe's error once ctx ended: ErrClosed when the store was
// closed, else the context's own error.
func stopped(ctx context.Context, op string) error {
	if cause := context.Cause(ctx); errors.Is(cause, eventstore.ErrClosed) {
		return fmt.Errorf("esdb: %s: %w", op, cause)
	}
	return ctx.Err()
}

// startAfter returns where to subscribe from to see every commit after
// `after` (see ReadAll on positions inside a record).
func (s *Store) startAfter(ctx context.Context, op string, after eventstore.Position) (esdb.AllPosition, error) {
	if after == 0 {
		return esdb.Start{}, nil
	}
	pos := esdb.Position{Commit: uint64(after), Prepare: uint64(after)}
	err := s.retry(ctx, op, func(c *conn) error {
		_, err := readAllEvents(ctx, c, esdb.ReadAllOptions{Direction: esdb.Forwards, From: pos}, 1)
		return err
	})
	if err == nil {
		return pos, nil
	}
	if refused(ctx, err) {
		p, err := s.seek(ctx, op, after)
		if err != nil && !transient(err) && ctx.Err() == nil {
			return nil, permanentError{err}
		}
		return p, err
	}
	return nil, err
}

// subscribeOnce runs one subscription from `from` until it drops, handle
// fails or ctx ends. It advances *last (the last commit delivered) and *from
// (where to resubscribe: the first event of that commit), and reports
// whether it delivered anything.
func (s *Store) subscribeOnce(ctx context.Context, from esdb.AllPosition, last *eventstore.Position, resume *esdb.AllPosition, handle func(eventstore.Commit) error) (delivered bool, err error) {
	c, err := s.acquire()
	if err != nil {
		return false, err
	}
	defer c.users.Done()
	opts := esdb.SubscribeToAllOptions{
		From:   from,
		Filter: &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{s.cfg.StreamPrefix}},
	}
	sub, err := call(ctx, c, func(cl *esdb.Client) (*esdb.Subscription, error) {
		return cl.SubscribeToAll(ctx, opts)
	}, func(sub *esdb.Subscription) { sub.Close() })
	if err != nil {
		if code, ok := errCode(err); ok && (code == esdb.ErrorCodeAccessDenied || code == esdb.ErrorCodeUnauthenticated || code == esdb.ErrorCodeUnsupportedFeature) {
			return false, permanentError{err}
		}
		return false, err
	}
	defer sub.Close()

	var g group
	for {
		ev := sub.Recv()
		switch {
		case ev.SubscriptionDropped != nil:
			if ev.SubscriptionDropped.Error == nil {
				return delivered, errors.New("subscription dropped")
			}
			return delivered, ev.SubscriptionDropped.Error
		case ev.EventAppeared != nil:
			e := ev.EventAppeared.OriginalEvent()
			if e == nil || !s.ours(e.StreamID) || e.Position.Commit <= uint64(*last) {
				continue
			}
			complete, err := g.add(e)
			if err != nil {
				return delivered, permanentError{err}
			}
			if !complete {
				continue
			}
			if err := handle(g.commit); err != nil {
				return delivered, handlerError{err}
			}
			*last, *resume = g.commit.Position, g.first
			delivered = true
			g.reset()
		default:
			// A checkpoint of the server-side filter, caught up, fell
			// behind: nothing to deliver.
		}
	}
}
