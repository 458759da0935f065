package jetstream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/whistle-gov/whistle/adapters/eventstore"
)

// Headers of a commit message. They repeat what the body says so that a
// reader learns a commit's versions (and a retried append its command) from a
// direct get or a headers-only consumer without decoding the body.
const (
	// HeaderVersion is the version of the commit's first event, in decimal.
	HeaderVersion = "Whistle-Version"
	// HeaderCount is the number of events in the commit, in decimal.
	HeaderCount = "Whistle-Count"
)

// formatV1 is the first byte of a commit body. The layout, all integers as
// unsigned varints:
//
//	0x01 firstVersion count { len(ID) ID len(Type) Type len(Data) Data }*count
//
// Length prefixes carry any bytes unchanged, and the body costs a few bytes
// per event over the data itself.
const formatV1 = 0x01

// encodeCommit frames events as one commit body starting at version first.
func encodeCommit(first uint64, events []eventstore.EventData) []byte {
	n := 1 + 2*binary.MaxVarintLen64
	for _, e := range events {
		n += 3*binary.MaxVarintLen64 + len(e.ID) + len(e.Type) + len(e.Data)
	}
	b := make([]byte, 0, n)
	b = append(b, formatV1)
	b = binary.AppendUvarint(b, first)
	b = binary.AppendUvarint(b, uint64(len(events)))
	for _, e := range events {
		b = appendBytes(b, []byte(e.ID))
		b = appendBytes(b, []byte(e.Type))
		b = appendBytes(b, e.Data)
	}
	return b
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// rawMsg is a stored message as any of the three read paths (direct get,
// stream-leader get, consumer) delivers it.
type rawMsg struct {
	subject string
	seq     uint64
	header  nats.Header
	data    []byte
}

// commitMeta is what the headers of a commit say.
type commitMeta struct {
	first uint64 // version of the first event
	count uint64
	id    string // Nats-Msg-Id: the first event's ID
}

func (m commitMeta) next() uint64 { return m.first + m.count }

// errNotCommit marks a message in whistle's subject space that whistle did not
// write; the log is then not whole and readers must not skip it silently.
var errNotCommit = errors.New("not a whistle commit")

// metaOf reads a commit's headers.
func metaOf(r rawMsg) (commitMeta, error) {
	first, err := strconv.ParseUint(r.header.Get(HeaderVersion), 10, 64)
	if err != nil {
		return commitMeta{}, fmt.Errorf("jetstream: message %d on %s: header %s %q: %w", r.seq, r.subject, HeaderVersion, r.header.Get(HeaderVersion), errNotCommit)
	}
	count, err := strconv.ParseUint(r.header.Get(HeaderCount), 10, 64)
	if err != nil || count == 0 {
		return commitMeta{}, fmt.Errorf("jetstream: message %d on %s: header %s %q: %w", r.seq, r.subject, HeaderCount, r.header.Get(HeaderCount), errNotCommit)
	}
	return commitMeta{first: first, count: count, id: r.header.Get(natsjs.MsgIDHeader)}, nil
}

// decodeCommit turns a stored message into a commit of stream. It checks that
// the body agrees with the headers, so a damaged message is reported rather
// than read as other events.
func decodeCommit(stream string, r rawMsg) (eventstore.Commit, error) {
	meta, err := metaOf(r)
	if err != nil {
		return eventstore.Commit{}, err
	}
	bad := func(what string) error {
		return fmt.Errorf("jetstream: message %d on %s: %s: %w", r.seq, r.subject, what, errNotCommit)
	}
	c, first, count, err := decodeBody(stream, eventstore.Position(r.seq), r.data, bad)
	if err != nil {
		return eventstore.Commit{}, err
	}
	if first != meta.first || count != meta.count {
		return eventstore.Commit{}, bad(fmt.Sprintf("body says versions %d+%d, headers %d+%d", first, count, meta.first, meta.count))
	}
	return c, nil
}

// decodeBody decodes a commit body (formatV1) of stream at position pos;
// bad wraps what is wrong with it.
func decodeBody(stream string, pos eventstore.Position, b []byte, bad func(string) error) (c eventstore.Commit, first, count uint64, err error) {
	if len(b) == 0 || b[0] != formatV1 {
		return eventstore.Commit{}, 0, 0, bad("unknown body format")
	}
	b = b[1:]
	first, n := binary.Uvarint(b)
	if n <= 0 {
		return eventstore.Commit{}, 0, 0, bad("truncated first version")
	}
	b = b[n:]
	count, n = binary.Uvarint(b)
	if n <= 0 {
		return eventstore.Commit{}, 0, 0, bad("truncated count")
	}
	b = b[n:]
	// Each event takes at least three bytes; this bounds the allocation by
	// the body's size whatever count says.
	if count > uint64(len(b))/3 {
		return eventstore.Commit{}, 0, 0, bad(fmt.Sprintf("count %d does not fit in %d bytes", count, len(b)))
	}
	events := make([]eventstore.RecordedEvent, count)
	for i := range events {
		var id, typ, data []byte
		var ok bool
		if id, b, ok = takeBytes(b); !ok {
			return eventstore.Commit{}, 0, 0, bad(fmt.Sprintf("event %d: truncated id", i))
		}
		if typ, b, ok = takeBytes(b); !ok {
			return eventstore.Commit{}, 0, 0, bad(fmt.Sprintf("event %d: truncated type", i))
		}
		if data, b, ok = takeBytes(b); !ok {
			return eventstore.Commit{}, 0, 0, bad(fmt.Sprintf("event %d: truncated data", i))
		}
		events[i] = eventstore.RecordedEvent{
			Stream:   stream,
			Version:  first + uint64(i),
			ID:       string(id),
			Type:     string(typ),
			Data:     data,
			Position: pos,
		}
	}
	if len(b) != 0 {
		return eventstore.Commit{}, 0, 0, bad(fmt.Sprintf("%d trailing bytes", len(b)))
	}
	return eventstore.Commit{Stream: stream, Position: pos, Events: events}, first, count, nil
}

// takeBytes splits a length-prefixed field off b. The field aliases b, which
// each read path allocates per message, so no copy is needed.
func takeBytes(b []byte) (field, rest []byte, ok bool) {
	l, n := binary.Uvarint(b)
	if n <= 0 || l > uint64(len(b)-n) {
		return nil, nil, false
	}
	b = b[n:]
	return b[:l:l], b[l:], true
}
