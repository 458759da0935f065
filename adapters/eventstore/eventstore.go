// Package eventstore is the port through which whistle appends and reads its
// event log. Two adapters implement it: jetstream (the embedded default, also
// for an external NATS cluster) and esdb (EventStoreDB). Both are tested by the
// one conformance suite in eventstore/storetest.
//
// The store treats event data as opaque bytes; it knows streams, versions,
// commits and global positions, nothing of cases.
package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Position is a place in the global log. Positions only grow: a commit
// appended later has a larger position. Zero is "before the first commit", so
// ReadAll(ctx, 0, n) and Subscribe(ctx, 0, h) start at the beginning. A
// subscriber checkpoints the position of the last commit it has fully handled.
type Position uint64

// EventData is an event to append. ID must be a UUID chosen by the caller and
// derived from the command, so that a retried append is recognised as done.
type EventData struct {
	ID   string
	Type string
	Data []byte
}

// RecordedEvent is an event as stored.
type RecordedEvent struct {
	Stream   string
	Version  uint64 // position in its stream, from 0, contiguous
	ID       string
	Type     string
	Data     []byte
	Position Position // the global position of the commit that holds it
}

// Commit is the events of one Append, in order; they share one position.
type Commit struct {
	Stream   string
	Position Position
	Events   []RecordedEvent
}

// AppendResult says where an append landed.
type AppendResult struct {
	Position    Position // global position of the commit
	NextVersion uint64   // the stream's length after the commit
}

// Sentinel errors; match them with errors.Is.
var (
	// ErrConflict: the stream's length was not the expected version. Nothing
	// was appended.
	ErrConflict = errors.New("eventstore: wrong expected version")
	// ErrInvalidStream: the stream name cannot be stored (empty, too long or
	// with characters the store cannot carry).
	ErrInvalidStream = errors.New("eventstore: invalid stream name")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("eventstore: closed")
)

// ConflictError is returned, wrapping ErrConflict, when an append expected
// another stream length than the one found.
type ConflictError struct {
	Stream   string
	Expected uint64
	Actual   uint64 // the length found, when the store could tell; else Expected
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("eventstore: append to %s expected version %d, stream has %d", e.Stream, e.Expected, e.Actual)
}

func (e *ConflictError) Unwrap() error { return ErrConflict }

// Store is the event log. Implementations must be safe for concurrent use.
type Store interface {
	// Append atomically appends events to stream when, and only when, the
	// stream holds exactly expectedVersion events (0: the stream must not
	// exist). The events get versions expectedVersion, expectedVersion+1, ...
	// On a wrong expectation it returns an error matching ErrConflict and
	// appends nothing. There is no "expect any".
	//
	// Append is idempotent per command: if the stream's last commit starts at
	// expectedVersion with the same first event ID, it was this very append
	// (retried after a lost acknowledgement) and Append returns that commit's
	// result without writing again.
	//
	// When Append returns an error other than ErrConflict (a timeout, a
	// cancelled context, a lost connection) the append may or may not have
	// happened; calling it again with the same arguments is safe.
	//
	// On success the commit is durable to the store's configured level
	// (fsync, replication) before Append returns.
	Append(ctx context.Context, stream string, expectedVersion uint64, events []EventData) (AppendResult, error)

	// ReadStream returns every event of stream in version order; a stream
	// that does not exist reads as empty, with no error.
	ReadStream(ctx context.Context, stream string) ([]RecordedEvent, error)

	// ReadAll returns up to limit commits of the global log with positions
	// strictly after `after`, in increasing position order. Fewer than limit
	// means the end of the log was reached at the time of the call.
	ReadAll(ctx context.Context, after Position, limit int) ([]Commit, error)

	// Subscribe calls handle with every commit after `after`, in log order:
	// first those already stored, then new ones as they are appended. It
	// returns when ctx is done (with ctx.Err()) or when handle returns an
	// error (with that error). handle is called from one goroutine at a time.
	Subscribe(ctx context.Context, after Position, handle func(Commit) error) error

	// Head returns the position of the last commit in the global log (0 when
	// the log is empty), for progress and lag figures.
	Head(ctx context.Context) (Position, error)

	// Close releases the store. Appends acknowledged before Close are kept.
	Close() error
}

// MaxStreamNameLen is the longest event stream name any store accepts, in
// bytes.
const MaxStreamNameLen = 255

// PortableStreamName tells why stream is not a name every store can keep
// (so that a log moves between them), or "" when it is: not empty, at most
// MaxStreamNameLen bytes of UTF-8, no whitespace or control characters, and
// no '.', '*' or '>' (a JetStream subject holds the name as one token). A
// store adds its own rules and reports either with ErrInvalidStream.
func PortableStreamName(stream string) string {
	switch {
	case stream == "":
		return "empty"
	case len(stream) > MaxStreamNameLen:
		return fmt.Sprintf("longer than %d bytes", MaxStreamNameLen)
	case !utf8.ValidString(stream):
		return "not UTF-8"
	case strings.ContainsAny(stream, ".*>"):
		return "contains '.', '*' or '>'"
	case strings.IndexFunc(stream, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return "contains whitespace or a control character"
	}
	return ""
}
