package domain

import "time"

// Callbacks (回访): the street calls back the requester of every resolved
// or closed case; a reached callback, or three unreached ones, end the
// round's task. POST /rate (SatisfactionRated) is a reached callback.

// TypeCallbackMade is the event type of a callback.
const TypeCallbackMade = "CallbackMade"

// MaxCallbackAttempts: unreached callbacks after which the task ends.
const MaxCallbackAttempts = 3

// The statuses of a callback task.
const (
	CallbackOpen      = "open"
	CallbackReached   = "reached"
	CallbackUnreached = "unreached" // given up after MaxCallbackAttempts
	CallbackForgotten = "forgotten" // the requester was forgotten: no one to call
)

// CallbackTask is a case's callback of the current round.
type CallbackTask struct {
	Status   string     `json:"status"`
	Attempts int        `json:"attempts"`
	Round    int        `json:"round"`
	Since    time.Time  `json:"since"`
	EndedAt  *time.Time `json:"ended_at,omitempty"`
}

// RecordCallback: the street called the requester back.
type RecordCallback struct {
	Reached bool
	Rating  string
	Note    string
}

func (RecordCallback) CommandName() string { return "callback" }

// CallbackMade is one callback; a reached one may carry the rating.
type CallbackMade struct {
	Reached bool   `json:"reached"`
	Rating  Rating `json:"rating,omitempty"`
	Note    string `json:"note,omitempty"`
	Attempt int    `json:"attempt"`
	Round   int    `json:"round"`
}

func (CallbackMade) EventType() string { return TypeCallbackMade }

// CallbackDue tells whether the case waits for a callback.
func (c *Case) CallbackDue() bool { return c.Callback != nil && c.Callback.Status == CallbackOpen }

func decideCallback(c *Case, cmd RecordCallback) ([]Event, error) {
	if err := checkText("note", cmd.Note, MaxText); err != nil {
		return nil, err
	}
	var rating Rating
	if cmd.Rating != "" {
		r, err := ParseRating(cmd.Rating)
		if err != nil {
			return nil, refuse(ErrInvalidValue, "rating", "%v", err)
		}
		if !cmd.Reached {
			return nil, refuse(ErrInvalidValue, "rating", "an unreached callback has no rating")
		}
		rating = r
	}
	switch {
	case !c.HasRequester:
		return nil, refuse(ErrInvalidTransition, "", "case %s has no requester to call back", c.ID)
	case c.RequesterForgotten:
		return nil, refuse(ErrInvalidTransition, "", "the requester of case %s was forgotten", c.ID)
	case !c.CallbackDue():
		if c.Callback == nil {
			return nil, refuse(ErrInvalidTransition, "", "a case is called back once resolved; this one is %s", c.Status)
		}
		return nil, refuse(ErrInvalidTransition, "", "the callback of this round is over (%s)", c.Callback.Status)
	case rating != "" && c.Status != StatusClosed:
		return nil, refuse(ErrInvalidValue, "rating", "a rating follows closure; this case is %s", c.Status)
	case rating != "" && c.CallbackRated:
		return nil, refuse(ErrInvalidTransition, "", "this round was already rated by callback")
	}
	return []Event{CallbackMade{Reached: cmd.Reached, Rating: rating, Note: cmd.Note, Attempt: c.Callback.Attempts + 1, Round: c.Round()}}, nil
}

// evolveCallback folds a callback, or a rating the street recorded (a
// reached callback).
func (c *Case) evolveCallback(e Event, at time.Time) {
	reached, rated := false, false
	switch e := e.(type) {
	case CallbackMade:
		reached = e.Reached
		if e.Rating != "" {
			r := e.Rating
			c.Rating, rated = &r, true
		}
	case SatisfactionRated:
		reached, rated = true, true
		r := e.Rating
		c.Rating = &r
	}
	if rated {
		c.CallbackRated = true
	}
	t := c.Callback
	if t == nil || t.Status != CallbackOpen {
		return
	}
	cp := *t // replaced, not written through: Clone shares it
	cp.Attempts++
	switch {
	case reached:
		cp.Status, cp.EndedAt = CallbackReached, &at
	case cp.Attempts >= MaxCallbackAttempts:
		cp.Status, cp.EndedAt = CallbackUnreached, &at
	}
	c.Callback = &cp
}

// noteCallback opens the round's callback task once the case is resolved
// or closed and has a requester to call; a forgotten requester ends it.
func (c *Case) noteCallback(at time.Time) {
	switch {
	case c.Callback != nil && c.Callback.Status == CallbackOpen && c.RequesterForgotten:
		cp := *c.Callback
		cp.Status, cp.EndedAt = CallbackForgotten, &at
		c.Callback = &cp
	case c.Callback == nil && c.HasRequester && !c.RequesterForgotten &&
		(c.Status == StatusResolved || c.Status == StatusClosed):
		c.Callback = &CallbackTask{Status: CallbackOpen, Round: c.Round(), Since: at}
	}
}
