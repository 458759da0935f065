package esdb

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/whistle-gov/whistle/adapters/eventstore"
)

// Append implements eventstore.Store.
//
// Beyond the port's contract: stream must start with Config.StreamPrefix;
// events must be non-empty, each ID a UUID other than the nil one and each
// Type non-empty; a commit larger than the server's maximum append size
// (1 MiB by default) is refused by the server.
//
// A retried append is recognised in two ways. The server itself answers a
// re-sent append with the same event ids at the same expected revision as
// done (it returns no position then); and when it reports a wrong expected
// version instead, Append reads the stream's last events. Either way the
// append counts as done only if the stream's last commit starts at
// expectedVersion with the same event ids; otherwise it is a conflict.
// Failures that may pass (unavailable server, leader change, timeout) are
// retried up to Config.Retries times.
func (s *Store) Append(ctx context.Context, stream string, expectedVersion uint64, events []eventstore.EventData) (eventstore.AppendResult, error) {
	op := "append to " + strconv.Quote(stream)
	if err := checkStreamName(s.cfg.StreamPrefix, stream); err != nil {
		return eventstore.AppendResult{}, err
	}
	data, err := toEventData(events)
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("esdb: %s: %w", op, err)
	}
	ctx, done, err := s.begin(ctx, op)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	defer done()

	var expected esdb.ExpectedRevision = esdb.NoStream{}
	if expectedVersion > 0 {
		expected = esdb.Revision(expectedVersion - 1)
	}
	want := expectedVersion + uint64(len(events))
	var res eventstore.AppendResult
	err = s.retry(ctx, op, func(c *conn) error {
		wr, err := call(ctx, c, func(cl *esdb.Client) (*esdb.WriteResult, error) {
			return cl.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: expected}, data...)
		}, nil)
		if err != nil {
			if code, ok := errCode(err); ok && code == esdb.ErrorCodeWrongExpectedVersion {
				res, err = s.settle(ctx, c, stream, expectedVersion, events)
			}
			return err
		}
		if wr.CommitPosition == 0 || wr.NextExpectedVersion != want-1 {
			// The server recognised the events as written already (an
			// idempotent write reports no position), possibly as a commit
			// that is no longer the last.
			res, err = s.settle(ctx, c, stream, expectedVersion, events)
			return err
		}
		res = eventstore.AppendResult{Position: eventstore.Position(wr.CommitPosition), NextVersion: want}
		return nil
	})
	if err != nil {
		var ce *eventstore.ConflictError
		if errors.As(err, &ce) {
			return eventstore.AppendResult{}, err
		}
		return eventstore.AppendResult{}, fail(ctx, op, err)
	}
	return res, nil
}

// settle decides an append the server refused for a wrong expected version,
// or accepted as already written: it reads the stream's last len(events)
// events and returns success if they are this very commit (it landed before
// and its acknowledgement was lost), or else a *ConflictError with the
// stream's length.
func (s *Store) settle(ctx context.Context, c *conn, stream string, expectedVersion uint64, events []eventstore.EventData) (eventstore.AppendResult, error) {
	tail, err := readStreamEvents(ctx, c, stream, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, uint64(len(events)))
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("read the stream's last events after a conflict: %w", err)
	}
	var actual uint64
	if len(tail) > 0 {
		actual = tail[0].EventNumber + 1
	}
	if actual == expectedVersion+uint64(len(events)) && len(tail) == len(events) && sameCommit(tail, events) {
		first := tail[len(tail)-1]
		r, err := toRecorded(first)
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		return eventstore.AppendResult{Position: r.Position, NextVersion: actual}, nil
	}
	return eventstore.AppendResult{}, &eventstore.ConflictError{Stream: stream, Expected: expectedVersion, Actual: actual}
}

// sameCommit reports whether tail (newest first) holds exactly events, as
// one commit.
func sameCommit(tail []*esdb.RecordedEvent, events []eventstore.EventData) bool {
	n := len(events)
	for i, e := range events {
		got := tail[n-1-i]
		id, err := uuid.Parse(e.ID)
		if err != nil || got.EventID != id {
			return false
		}
		m, err := decodeMeta(got.UserMetadata)
		if err != nil || m.Index != i || m.Size != n || got.Position.Commit != tail[n-1].Position.Commit {
			return false
		}
	}
	return true
}
