package esdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/whistle-gov/whistle/adapters/eventstore"
)

// streamPage is how many events one read request of a stream asks for.
const streamPage = 1024

// errStreamNotFound is how readStreamEvents says the stream does not exist.
var errStreamNotFound = errors.New("stream not found")

// readStreamEvents reads up to count events of stream. A stream that does
// not exist reads as empty. The whole read runs aside (see call).
func readStreamEvents(ctx context.Context, c *conn, stream string, opts esdb.ReadStreamOptions, count uint64) ([]*esdb.RecordedEvent, error) {
	evs, err := call(ctx, c, func(cl *esdb.Client) ([]*esdb.RecordedEvent, error) {
		rs, err := cl.ReadStream(ctx, stream, opts, count)
		if err != nil {
			return nil, err
		}
		defer rs.Close()
		var out []*esdb.RecordedEvent
		for {
			e, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			if err != nil {
				if code, ok := errCode(err); ok && code == esdb.ErrorCodeResourceNotFound {
					return nil, errStreamNotFound
				}
				return nil, err
			}
			if ev := e.OriginalEvent(); ev != nil {
				out = append(out, ev)
			}
		}
	}, nil)
	if errors.Is(err, errStreamNotFound) {
		return nil, nil
	}
	return evs, err
}

// readAllEvents reads up to count events of $all, every stream included.
func readAllEvents(ctx context.Context, c *conn, opts esdb.ReadAllOptions, count uint64) ([]*esdb.RecordedEvent, error) {
	return call(ctx, c, func(cl *esdb.Client) ([]*esdb.RecordedEvent, error) {
		rs, err := cl.ReadAll(ctx, opts, count)
		if err != nil {
			return nil, err
		}
		defer rs.Close()
		var out []*esdb.RecordedEvent
		for {
			e, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			if err != nil {
				return nil, err
			}
			if ev := e.OriginalEvent(); ev != nil {
				out = append(out, ev)
			}
		}
	}, nil)
}

// ours reports whether a stream of $all belongs to the store's log.
func (s *Store) ours(stream string) bool {
	return strings.HasPrefix(stream, s.cfg.StreamPrefix) && !strings.HasPrefix(stream, "$")
}

// ReadStream implements eventstore.Store. It reports an error rather than a
// gap if the stored revisions do not start at 0 and follow each other (a
// stream truncated in EventStoreDB).
func (s *Store) ReadStream(ctx context.Context, stream string) ([]eventstore.RecordedEvent, error) {
	op := "read stream " + strconv.Quote(stream)
	if err := checkStreamName(s.cfg.StreamPrefix, stream); err != nil {
		return nil, err
	}
	ctx, done, err := s.begin(ctx, op)
	if err != nil {
		return nil, err
	}
	defer done()

	var out []eventstore.RecordedEvent
	for {
		opts := esdb.ReadStreamOptions{Direction: esdb.Forwards, From: esdb.Revision(uint64(len(out)))}
		var page []*esdb.RecordedEvent
		err := s.retry(ctx, op, func(c *conn) (err error) {
			page, err = readStreamEvents(ctx, c, stream, opts, streamPage)
			return err
		})
		if err != nil {
			return nil, fail(ctx, op, err)
		}
		for _, e := range page {
			if e.EventNumber != uint64(len(out)) {
				return nil, fail(ctx, op, fmt.Errorf("event %d follows %d events: the stream is not whole (truncated?)", e.EventNumber, len(out)))
			}
			r, err := toRecorded(e)
			if err != nil {
				return nil, fail(ctx, op, err)
			}
			out = append(out, r)
		}
		if len(page) < streamPage {
			return out, nil
		}
	}
}

// ReadAll implements eventstore.Store. It reads $all forwards from `after`
// in requests of Config.ReadBatch events, skipping system events and other
// streams, until it holds limit whole commits or reaches the end. limit must
// be positive.
//
// EventStoreDB refuses to read from a position inside a record. A position
// this store returned, or 0, is never one; for any other (a position minus
// one, say) ReadAll finds the last event at or before it by reading $all
// backwards from the end, which costs a read per Config.ReadBatch events
// after it.
func (s *Store) ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.Commit, error) {
	op := fmt.Sprintf("read all after %d", after)
	if limit <= 0 {
		return nil, fmt.Errorf("esdb: %s: limit %d must be positive", op, limit)
	}
	ctx, done, err := s.begin(ctx, op)
	if err != nil {
		return nil, err
	}
	defer done()

	var from esdb.AllPosition = esdb.Start{}
	if after > 0 {
		from = esdb.Position{Commit: uint64(after), Prepare: uint64(after)}
	}
	accepted := after == 0
	batch := uint64(s.cfg.ReadBatch)
	var (
		commits []eventstore.Commit
		g       group
		last    esdb.Position
		seen    bool
	)
	for {
		var evs []*esdb.RecordedEvent
		err := s.retry(ctx, op, func(c *conn) (err error) {
			evs, err = readAllEvents(ctx, c, esdb.ReadAllOptions{Direction: esdb.Forwards, From: from}, batch)
			return err
		})
		if err != nil && !accepted && refused(ctx, err) {
			if from, err = s.seek(ctx, op, after); err != nil {
				return nil, fail(ctx, op, err)
			}
			accepted = true
			continue
		}
		if err != nil {
			return nil, fail(ctx, op, err)
		}
		accepted = true
		for _, e := range evs {
			if seen && !before(last, e.Position) {
				continue // the event the page started from
			}
			last, seen = e.Position, true
			if e.Position.Commit <= uint64(after) || !s.ours(e.StreamID) {
				continue
			}
			complete, err := g.add(e)
			if err != nil {
				return nil, fail(ctx, op, err)
			}
			if complete {
				commits = append(commits, g.commit)
				g.reset()
				if len(commits) == limit {
					return commits, nil
				}
			}
		}
		if uint64(len(evs)) < batch {
			if len(g.commit.Events) > 0 {
				return nil, fail(ctx, op, fmt.Errorf("the log ends inside the commit of %s at %d (%d of %d events)", g.commit.Stream, g.commit.Position, len(g.commit.Events), g.size))
			}
			return commits, nil
		}
		from = last
	}
}

// refused reports an error with which the server refused a read that the
// context did not end: a position that is not where a record starts.
func refused(ctx context.Context, err error) bool {
	if ctx.Err() != nil || transient(err) {
		return false
	}
	code, ok := errCode(err)
	return ok && (code == esdb.ErrorCodeUnknown || code == esdb.ErrorCodeInternalServer)
}

// seek returns the position of the last event of $all at or before `after`
// (any stream), or the start of $all when there is none: a valid place to
// read or subscribe from that skips nothing after `after`.
func (s *Store) seek(ctx context.Context, op string, after eventstore.Position) (esdb.AllPosition, error) {
	var from esdb.AllPosition = esdb.End{}
	var last esdb.Position
	seen := false
	batch := uint64(s.cfg.ReadBatch)
	for {
		var evs []*esdb.RecordedEvent
		err := s.retry(ctx, op, func(c *conn) (err error) {
			evs, err = readAllEvents(ctx, c, esdb.ReadAllOptions{Direction: esdb.Backwards, From: from}, batch)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("find the last event at or before %d: %w", after, err)
		}
		for _, e := range evs {
			if seen && !before(e.Position, last) {
				continue
			}
			last, seen = e.Position, true
			if e.Position.Commit <= uint64(after) {
				return e.Position, nil
			}
		}
		if uint64(len(evs)) < batch {
			return esdb.Start{}, nil
		}
		from = last
	}
}

// headCache remembers the answer of the last Head: the newest event of $all
// then (end) and the last commit of the store's log at or before it.
type headCache struct {
	end   esdb.Position
	head  eventstore.Position
	valid bool
}

// headPage is how many events one backwards read of Head asks for.
const headPage = 32

// Head implements eventstore.Store. It reads $all backwards from the end to
// the newest event of the store's streams; system events written since the
// previous call (statistics, every 30 seconds by default) cost a read per
// 32, not a scan of the whole log, because the previous answer is kept.
func (s *Store) Head(ctx context.Context) (eventstore.Position, error) {
	op := "head"
	ctx, done, err := s.begin(ctx, op)
	if err != nil {
		return 0, err
	}
	defer done()

	s.headMu.Lock()
	cache := s.head
	s.headMu.Unlock()

	var (
		from   esdb.AllPosition = esdb.End{}
		newest esdb.Position
		last   esdb.Position
		seen   bool
		head   eventstore.Position
	)
scan:
	for {
		var evs []*esdb.RecordedEvent
		err := s.retry(ctx, op, func(c *conn) (err error) {
			evs, err = readAllEvents(ctx, c, esdb.ReadAllOptions{Direction: esdb.Backwards, From: from}, headPage)
			return err
		})
		if err != nil {
			return 0, fail(ctx, op, err)
		}
		for _, e := range evs {
			if seen && !before(e.Position, last) {
				continue
			}
			if !seen {
				newest = e.Position
				if cache.valid && before(newest, cache.end) {
					cache.valid = false // the log was replaced under us
				}
			}
			last, seen = e.Position, true
			if cache.valid && !before(cache.end, e.Position) {
				head = cache.head
				break scan
			}
			if s.ours(e.StreamID) {
				head = eventstore.Position(e.Position.Commit)
				break scan
			}
		}
		if len(evs) < headPage {
			break
		}
		from = last
	}
	if seen {
		s.headMu.Lock()
		s.head = headCache{end: newest, head: head, valid: true}
		s.headMu.Unlock()
	}
	return head, nil
}
