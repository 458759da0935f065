package esdb

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/whistle-gov/whistle/adapters/eventstore"
)

// MaxStreamNameLen is the longest event stream name accepted, in bytes; the
// same bound as the JetStream adapter, so that a log moves between the two.
const MaxStreamNameLen = eventstore.MaxStreamNameLen

// errNotCommit reports an event in one of the store's streams that this
// adapter did not write (it lacks the commit metadata), so the commit it
// belongs to cannot be told.
var errNotCommit = errors.New("event without whistle's commit metadata (written by another program?)")

// commitMeta is stored as each event's custom (user) metadata: where the
// event sits in the commit (the events of one Append) that holds it. A
// subscription knows from it when a commit is complete without waiting for
// the next one.
type commitMeta struct {
	Index int `json:"commit_index"`
	Size  int `json:"commit_size"`
}

func encodeMeta(index, size int) []byte {
	return fmt.Appendf(nil, `{"commit_index":%d,"commit_size":%d}`, index, size)
}

func decodeMeta(b []byte) (commitMeta, error) {
	var m commitMeta
	if len(b) == 0 {
		return m, errNotCommit
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%w: metadata %.64q: %v", errNotCommit, b, err)
	}
	if m.Size < 1 || m.Index < 0 || m.Index >= m.Size {
		return m, fmt.Errorf("%w: metadata %.64q: index %d of %d", errNotCommit, b, m.Index, m.Size)
	}
	return m, nil
}

// checkStreamName refuses names the store cannot keep in its global log:
// names not portable between the stores (see eventstore.PortableStreamName,
// so that a log can move to JetStream), outside the prefix (the global log
// is $all filtered on it), and system streams ('$').
func checkStreamName(prefix, stream string) error {
	why := eventstore.PortableStreamName(stream)
	switch {
	case why != "":
	case strings.HasPrefix(stream, "$"):
		why = "a system stream name (starts with '$')"
	case !strings.HasPrefix(stream, prefix) || len(stream) == len(prefix):
		why = fmt.Sprintf("does not start with %q followed by an id (the global log holds only those streams)", prefix)
	}
	if why != "" {
		return fmt.Errorf("esdb: stream %q: %s: %w", stream, why, eventstore.ErrInvalidStream)
	}
	return nil
}

// toEventData converts the events of one Append. Each id must be a UUID (it
// becomes the EventStoreDB event id, which makes a retried append
// recognisable) and each type non-empty (EventStoreDB requires one).
func toEventData(events []eventstore.EventData) ([]esdb.EventData, error) {
	if len(events) == 0 {
		return nil, errors.New("no events")
	}
	out := make([]esdb.EventData, len(events))
	for i, e := range events {
		id, err := uuid.Parse(e.ID)
		if err != nil {
			return nil, fmt.Errorf("event %d id %q is not a UUID: %v", i, e.ID, err)
		}
		if id == uuid.Nil {
			// The client would replace it with a random id, and a retry
			// would then write the events twice.
			return nil, fmt.Errorf("event %d id is the nil UUID", i)
		}
		if e.Type == "" {
			return nil, fmt.Errorf("event %d (%s) has no type", i, e.ID)
		}
		data := e.Data
		if data == nil {
			data = []byte{}
		}
		out[i] = esdb.EventData{
			EventID:     id,
			EventType:   e.Type,
			ContentType: esdb.ContentTypeBinary, // opaque bytes: stored and returned as given
			Data:        data,
			Metadata:    encodeMeta(i, len(events)),
		}
	}
	return out, nil
}

// noPosition is how the server says it did not report a position.
const noPosition = math.MaxUint64

// toRecorded converts a stored event of one of the store's streams.
func toRecorded(e *esdb.RecordedEvent) (eventstore.RecordedEvent, error) {
	if e.Position.Commit == noPosition || e.Position.Commit == 0 && e.Position.Prepare == 0 {
		return eventstore.RecordedEvent{}, fmt.Errorf("event %d of %s has no global position (EventStoreDB before 22.6 does not report it on stream reads)", e.EventNumber, e.StreamID)
	}
	return eventstore.RecordedEvent{
		Stream:   e.StreamID,
		Version:  e.EventNumber,
		ID:       e.EventID.String(),
		Type:     e.EventType,
		Data:     e.Data,
		Position: eventstore.Position(e.Position.Commit),
	}, nil
}

// before reports whether position a is before b in the log.
func before(a, b esdb.Position) bool {
	return a.Commit < b.Commit || a.Commit == b.Commit && a.Prepare < b.Prepare
}

// group gathers the events of one commit as they come from $all.
type group struct {
	commit eventstore.Commit
	first  esdb.Position // of the commit's first event: a valid place to resume from
	size   int
}

// add adds an event of the store's streams, in log order. It returns true
// when the commit is complete.
func (g *group) add(e *esdb.RecordedEvent) (bool, error) {
	m, err := decodeMeta(e.UserMetadata)
	if err != nil {
		return false, fmt.Errorf("event %d of %s at position %d: %w", e.EventNumber, e.StreamID, e.Position.Commit, err)
	}
	r, err := toRecorded(e)
	if err != nil {
		return false, err
	}
	if len(g.commit.Events) == 0 {
		if m.Index != 0 {
			return false, fmt.Errorf("event %d of %s at position %d is event %d of its commit, but the commit's first was not seen", e.EventNumber, e.StreamID, e.Position.Commit, m.Index)
		}
		g.commit = eventstore.Commit{Stream: r.Stream, Position: r.Position}
		g.first = e.Position
		g.size = m.Size
	} else if r.Stream != g.commit.Stream || r.Position != g.commit.Position || m.Index != len(g.commit.Events) || m.Size != g.size {
		return false, fmt.Errorf("event %d of %s at position %d (index %d of %d) interrupts the commit of %s at %d after %d of its %d events",
			e.EventNumber, e.StreamID, e.Position.Commit, m.Index, m.Size, g.commit.Stream, g.commit.Position, len(g.commit.Events), g.size)
	}
	if n := len(g.commit.Events); n > 0 && r.Version != g.commit.Events[n-1].Version+1 {
		return false, fmt.Errorf("event %d of %s follows version %d in one commit", r.Version, r.Stream, g.commit.Events[n-1].Version)
	}
	g.commit.Events = append(g.commit.Events, r)
	return len(g.commit.Events) == g.size, nil
}

func (g *group) reset() { *g = group{} }
