package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/whistle-gov/whistle/adapters/casehandler"
	"github.com/whistle-gov/whistle/adapters/dispatch"
	"github.com/whistle-gov/whistle/adapters/sse"
	"github.com/whistle-gov/whistle/domain"
	"github.com/whistle-gov/whistle/domain/view"
	"github.com/whistle-gov/whistle/projections"
	"go.uber.org/zap"
)

// Tickets from above: POST /v1/tickets (a platform sends one), the street's
// inbox of tickets to sign for, and the platform's outbox of replies.

// ticketNamespace derives a ticket's case id from (platform, external_id),
// so that the same ticket sent twice, to any whistled, is the same case.
var ticketNamespace = uuid.MustParse("c2b7d6a4-8e1f-4b3a-9c5d-7f60a1b2c3d4")

// TicketRequest is the body of POST /v1/tickets.
type TicketRequest = view.TicketRequest

// InboxView is the street's inbox of tickets waiting to be signed for
// (readmodel.Queues). It must be safe for concurrent use.
type InboxView interface {
	Inbox(street string) []projections.InboxItem
}

// InboxAnswer is the answer to GET /v1/streets/{street}/inbox.
type InboxAnswer struct {
	Street   string                  `json:"street"`
	Tickets  []projections.InboxItem `json:"tickets"`
	Position uint64                  `json:"position"`
}

// OutboxFeed is the platforms' replies (dispatch.Feed). It must be safe for
// concurrent use.
type OutboxFeed interface {
	Replies(ctx context.Context, platform string, after uint64, limit int) ([]view.Reply, error)
	FollowOutbox(ctx context.Context, platform string, start uint64) (<-chan dispatch.Change, error)
}

// OutboxAnswer is the answer to GET /v1/outbox/{platform}: Next is the
// after of the next page (the last reply's seq, or the after asked).
type OutboxAnswer struct {
	Replies []view.Reply `json:"replies"`
	Next    uint64       `json:"next"`
}

func (a *API) ticket(w http.ResponseWriter, r *http.Request) {
	actor := actorOf(r)
	if actor.Role != domain.ActorPlatform {
		writeError(w, http.StatusForbidden, "not_yours", "only a platform sends tickets", "")
		return
	}
	var body TicketRequest
	if !decodeBody(w, r, &body, false) {
		return
	}
	for _, req := range []struct{ field, value string }{
		{"external_id", body.ExternalID}, {"street", body.Street}, {"title", body.Title},
	} {
		if req.value == "" {
			invalid(w, req.field, "%s is required", req.field)
			return
		}
	}
	cmd := domain.ReceiveTicket{
		Platform: actor.ID, ExternalID: body.ExternalID, Street: body.Street, Title: body.Title, Description: body.Description,
		Category: body.Category, Community: body.Community, Urgency: body.Urgency, Location: body.Location,
		ReplyBy: body.ReplyBy, Channel: body.Channel, Priority: body.Priority,
	}
	scope := actor.ID + "\x00ticket\x00" + body.ExternalID
	req := casehandler.Request{
		Actor: actor, CaseID: uuid.NewSHA1(ticketNamespace, []byte(scope)).String(),
		CommandID: uuid.NewSHA1(commandNamespace, []byte(scope)).String(),
	}
	fingerprinted := body
	fingerprinted.Requester = nil
	canonical, _ := json.Marshal(fingerprinted) // re-encoded so that spacing does not change the fingerprint
	if body.Requester != nil {
		if _, err := domain.NewRequester(body.Requester.Name, body.Requester.Phone); err != nil {
			a.writeFailure(w, err)
			return
		}
		// Decided first (pure), so that no key is made for a refused ticket.
		if err := domain.Authorize(nil, actor, cmd); err != nil {
			a.writeFailure(w, err)
			return
		}
		if _, err := domain.Decide(nil, cmd, a.cfg.Directory, time.Now()); err != nil {
			a.writeFailure(w, err)
			return
		}
		sealed, print, err := a.sealRequester(r.Context(), req.CaseID, *body.Requester)
		if err != nil {
			a.writeFailure(w, err)
			return
		}
		cmd.Requester = sealed
		canonical = append(canonical, "\x00requester "+print...)
	}
	// As for a keyed raise: the receipt is not fingerprinted, and the
	// ticket sent again makes its link again.
	token, receipt, ok := a.receiptFor(w, r, req.CaseID, cmd.Street, req.CommandID, cmd)
	if !ok {
		return
	}
	cmd.Receipt = receipt
	r = withReceiptToken(r, token)
	sum := sha256.Sum256(canonical)
	cmd.RequestSHA256 = hex.EncodeToString(sum[:])
	req.Command = cmd
	// The same ticket again answers 200 with the same case (a repeat, not
	// a creation); another body under its external_id is 409.
	a.executeAnswer(w, r, req, http.StatusCreated, http.StatusOK)
}

func (a *API) inbox(w http.ResponseWriter, r *http.Request) {
	if _, ok := query(w, r); !ok {
		return
	}
	street := r.PathValue("street")
	if err := domain.AuthorizeInboxRead(actorOf(r), street, a.cfg.Directory); err != nil {
		a.writeFailure(w, err)
		return
	}
	if !a.boardCaughtUp(w, r, "the inbox", zap.String("street", street)) {
		return
	}
	writeJSON(w, http.StatusOK, InboxAnswer{Street: street, Tickets: a.cfg.Inbox.Inbox(street), Position: uint64(a.cfg.Queues.Position())})
}

func (a *API) outbox(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r, "after", "limit", "last_event_id")
	if !ok {
		return
	}
	platform := r.PathValue("platform")
	if err := domain.AuthorizeOutboxRead(actorOf(r), platform, a.cfg.Directory); err != nil {
		a.writeFailure(w, err)
		return
	}
	var after uint64
	if s := q.Get("after"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			invalid(w, "after", "after is the seq of a reply already read (0 or more), got %q", s)
			return
		}
		after = n
	}
	limit := 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > dispatch.MaxReplies {
			invalid(w, "limit", "limit is from 1 to %d, got %q", dispatch.MaxReplies, s)
			return
		}
		limit = n
	}
	if wantsEventStream(r) {
		if last, ok := lastEventID(r); ok {
			after = max(after, last)
		}
		release, ok := a.limits.admitStream(w, actorOf(r))
		if !ok {
			return
		}
		defer release()
		replies, err := a.cfg.Outbox.FollowOutbox(r.Context(), platform, after+1)
		if err != nil {
			a.streamUnavailable(w, err)
			return
		}
		if out, ok := sse.Start(w, a.cfg.Log); ok {
			a.relayAs(r.Context(), out, "reply", replies)
		}
		return
	}
	replies, err := a.cfg.Outbox.Replies(r.Context(), platform, after, limit)
	if err != nil {
		a.cfg.Log.Warn("outbox read failed", zap.String("platform", platform), zap.Error(err))
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the outbox cannot be read now; try again", "")
		return
	}
	next := after
	if n := len(replies); n > 0 {
		next = replies[n-1].Seq
	}
	writeJSON(w, http.StatusOK, OutboxAnswer{Replies: replies, Next: next})
}
