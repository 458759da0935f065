package dispatch

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/whistle-gov/whistle/adapters/eventstore"
)

// Feed reads the dispatch stream for live clients (the queue and
// notification streams of the HTTP API): where it stands, the last change
// to an assignee, and the changes from a sequence on. It is safe for
// concurrent use.
type Feed struct {
	js jetstream.JetStream
}

// NewFeed reads the dispatch stream over conn.
func NewFeed(conn *nats.Conn) (*Feed, error) {
	js, err := jetstream.New(conn)
	if err != nil {
		return nil, fmt.Errorf("dispatch: feed: %w", err)
	}
	return &Feed{js: js}, nil
}

// Kept returns the sequences the stream holds: the first and the last, and
// how many messages (none: first is past last).
func (f *Feed) Kept(ctx context.Context) (first, last, msgs uint64, err error) {
	stream, err := f.js.Stream(ctx, StreamName)
	if err != nil {
		return 0, 0, 0, err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	return info.State.FirstSeq, info.State.LastSeq, info.State.Msgs, nil
}

// LastTo returns the sequence of the last change dispatched to assignee
// and the log position of the commit it came from; zeros when there is
// none.
func (f *Feed) LastTo(ctx context.Context, assignee string) (seq uint64, pos eventstore.Position, err error) {
	stream, err := f.js.Stream(ctx, StreamName)
	if err != nil {
		return 0, 0, err
	}
	m, err := stream.GetLastMsgForSubject(ctx, DispatchSubject(assignee))
	switch {
	case err == nil:
		p, _ := strconv.ParseUint(m.Header.Get(HeaderPosition), 10, 64)
		return m.Sequence, eventstore.Position(p), nil
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return 0, 0, nil
	}
	return 0, 0, err
}

// Change is one message of the dispatch stream: its stream sequence and
// its body, a Message as JSON.
type Change struct {
	Seq  uint64
	Data []byte
}

// FollowAssignee sends on the channel every change dispatched to assignee
// from sequence start on (see follow).
func (f *Feed) FollowAssignee(ctx context.Context, assignee string, start uint64) (<-chan Change, error) {
	return f.follow(ctx, DispatchSubject(assignee), start)
}

// FollowStreet sends on the channel every change to the cases of street
// (every street's when street is empty) from sequence start on (see follow).
func (f *Feed) FollowStreet(ctx context.Context, street string, start uint64) (<-chan Change, error) {
	subject := StreetPrefix + ">"
	if street != "" {
		subject = StreetSubject(street)
	}
	return f.follow(ctx, subject, start)
}

// deleteConsumer removes the ordered consumer's current server-side
// consumer (it replaces it when it resets, so the name is read last).
// Best effort: the inactivity threshold removes whatever this misses.
func (f *Feed) deleteConsumer(cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = f.js.DeleteConsumer(ctx, StreamName, info.Name)
}

// follow sends every message on subject from sequence start on, in order,
// until ctx is done or the stream fails; then it closes the channel.
func (f *Feed) follow(ctx context.Context, subject string, start uint64) (<-chan Change, error) {
	cons, err := f.js.OrderedConsumer(ctx, StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{subject},
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       max(start, 1),
		InactiveThreshold: 30 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("dispatch: consumer on %s not created: %w", subject, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return nil, fmt.Errorf("dispatch: consumer on %s not started: %w", subject, err)
	}
	stop := context.AfterFunc(ctx, it.Stop) // ends a Next waiting for a message
	out := make(chan Change)
	go func() {
		defer close(out)
		defer stop()
		// Stop ends only the client's pull: the server keeps the consumer
		// (and its goroutines, in the embedded server) until its inactivity
		// threshold, 30 s after the subscriber left. Delete it at once.
		defer f.deleteConsumer(cons)
		defer it.Stop()
		for {
			m, err := it.Next()
			if err != nil {
				return
			}
			meta, err := m.Metadata()
			if err != nil {
				continue
			}
			select {
			case out <- Change{Seq: meta.Sequence.Stream, Data: m.Data()}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
