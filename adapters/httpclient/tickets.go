package httpclient

import (
	"context"
	"net/url"
	"strconv"

	"github.com/whistle-gov/whistle/adapters/sse"
	"github.com/whistle-gov/whistle/domain/view"
)

// Tickets from above: a platform sends them and reads its replies; the
// street signs for them (accept) or returns them.

type (
	// AcceptBody fills in what a ticket lacked as the street signs for it.
	AcceptBody struct {
		Category  string `json:"category,omitempty"`
		Community string `json:"community,omitempty"`
		Urgency   string `json:"urgency,omitempty"`
	}
	// ReturnBody is why the street returns a ticket.
	ReturnBody struct {
		Reason string `json:"reason"`
	}
	// Inbox is a street's tickets waiting to be signed for.
	Inbox struct {
		Street   string           `json:"street"`
		Tickets  []view.InboxItem `json:"tickets"`
		Position uint64           `json:"position"`
	}
	// OutboxPage is a page of a platform's replies; Next is the after of
	// the next page.
	OutboxPage struct {
		Replies []view.Reply `json:"replies"`
		Next    uint64       `json:"next"`
	}
)

// SendTicket sends a ticket (platforms). The same external_id with the
// same body answers the same case; with another body ErrConflict.
func (c *Client) SendTicket(ctx context.Context, t view.TicketRequest) (*CaseAnswer, error) {
	var out CaseAnswer
	if err := c.do(ctx, "POST", "/v1/tickets", t, &out, nil); err != nil {
		return nil, err
	}
	return &out, nil
}

// Accept signs for a ticket (its street) and routes its case.
func (c *Client) Accept(ctx context.Context, caseID string, b AcceptBody, idempotencyKey string) (*CaseAnswer, error) {
	return c.command(ctx, caseID, "accept", b, idempotencyKey)
}

// Return returns a ticket to its platform (its street, while received).
func (c *Client) Return(ctx context.Context, caseID string, b ReturnBody, idempotencyKey string) (*CaseAnswer, error) {
	return c.command(ctx, caseID, "return", b, idempotencyKey)
}

// Inbox reads a street's tickets waiting to be signed for.
func (c *Client) Inbox(ctx context.Context, street string) (*Inbox, error) {
	var out Inbox
	if err := c.do(ctx, "GET", "/v1/streets/"+url.PathEscape(street)+"/inbox", nil, &out, nil); err != nil {
		return nil, err
	}
	return &out, nil
}

// Outbox reads a page of a platform's replies after seq after (limit 0:
// the server's default).
func (c *Client) Outbox(ctx context.Context, platform string, after uint64, limit int) (*OutboxPage, error) {
	q := url.Values{"after": {strconv.FormatUint(after, 10)}}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out OutboxPage
	if err := c.do(ctx, "GET", "/v1/outbox/"+url.PathEscape(platform)+"?"+q.Encode(), nil, &out, nil); err != nil {
		return nil, err
	}
	return &out, nil
}

// FollowOutbox reads a platform's replies after seq after as an event
// stream (events "reply", data a view.Reply), reconnecting as FollowQueue
// does.
func (c *Client) FollowOutbox(ctx context.Context, platform string, after uint64, handle func(sse.Event) error, o FollowOptions) error {
	return c.follow(ctx, "/v1/outbox/"+url.PathEscape(platform)+"?after="+strconv.FormatUint(after, 10), handle, o)
}
