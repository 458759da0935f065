package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/domain"
	"github.com/whistle-gov/whistle/domain/view"
)

// The outbox: the replies owed to the platforms that sent tickets. A
// ticket's case that closes, or is returned, gets one reply on
// whistle.outbox.<platform>, published by the dispatcher like any dispatch
// (derived from the log, under its lease, checkpoint and scan), so it is
// published once per outcome whatever restarts or crashes: its message id
// is the event's id (CaseClosed's or TicketReturned's), which the
// dispatcher's scan after its checkpoint and the stream's duplicate window
// recognise. The replies are kept as long as the dispatch stream keeps
// messages (DefaultMaxAge).

// OutboxPrefix starts the subject of a platform's replies.
const OutboxPrefix = "whistle.outbox."

// OutboxSubject is the subject on which a platform receives its replies.
func OutboxSubject(platform string) string { return OutboxPrefix + platform }

// planReply returns the reply that the i-th event of a commit owes the
// ticket's platform, given c, the case's state after that event: for a
// CaseClosed the reply of the ResolutionVerified in the same commit, for a
// TicketReturned its reason.
func planReply(c *domain.Case, env domain.Envelope, events []domain.Event, i int, pos eventstore.Position) (outMsg, bool) {
	if c.Source == nil {
		return outMsg{}, false
	}
	r := view.Reply{EventID: env.ID, Platform: c.Source.Platform, CaseID: env.CaseID, ExternalID: c.Source.ExternalID, At: env.OccurredAt}
	switch e := events[i].(type) {
	case domain.CaseClosed:
		r.Outcome = view.OutcomeClosed
		for _, before := range events[:i] {
			if v, ok := before.(domain.ResolutionVerified); ok {
				r.Reply = v.Reply
			}
		}
		r.Mediation, r.Rating = c.Mediation, c.Rating
	case domain.TicketReturned:
		r.Outcome, r.Reply = view.OutcomeReturned, e.Reason
	default:
		return outMsg{}, false
	}
	head := Message{EventID: env.ID, Type: env.Type, CaseID: env.CaseID, Version: env.Version, Position: uint64(pos), Change: r.Outcome}
	return outMsg{subject: OutboxSubject(r.Platform), msgID: env.ID, body: head, reply: &r}, true
}

// MaxReplies bounds a page of Replies.
const MaxReplies = 500

// Replies returns the platform's replies after sequence after, oldest
// first, at most limit (1 to MaxReplies) of them, each with its sequence.
func (f *Feed) Replies(ctx context.Context, platform string, after uint64, limit int) ([]view.Reply, error) {
	limit = max(1, min(limit, MaxReplies))
	stream, err := f.js.Stream(ctx, StreamName)
	if err != nil {
		return nil, err
	}
	last, err := stream.GetLastMsgForSubject(ctx, OutboxSubject(platform))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return []view.Reply{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := []view.Reply{}
	if last.Sequence <= after {
		return out, nil
	}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changes, err := f.FollowOutbox(fctx, platform, after+1)
	if err != nil {
		return nil, err
	}
	for c := range changes {
		var r view.Reply
		if err := json.Unmarshal(c.Data, &r); err != nil {
			return nil, fmt.Errorf("dispatch: outbox message %d: %w", c.Seq, err)
		}
		out = append(out, r)
		if c.Seq >= last.Sequence || len(out) == limit {
			return out, nil
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("dispatch: the outbox of %s ended before sequence %d", platform, last.Sequence)
}

// FollowOutbox sends every reply to platform from sequence start on, each
// with its sequence in its data (see follow).
func (f *Feed) FollowOutbox(ctx context.Context, platform string, start uint64) (<-chan Change, error) {
	raw, err := f.follow(ctx, OutboxSubject(platform), start)
	if err != nil {
		return nil, err
	}
	out := make(chan Change)
	go func() {
		defer close(out)
		for c := range raw {
			var r view.Reply
			if json.Unmarshal(c.Data, &r) != nil {
				continue // not a reply: nothing else is published there
			}
			r.Seq = c.Seq
			data, _ := json.Marshal(r)
			select {
			case out <- Change{Seq: c.Seq, Data: data}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
