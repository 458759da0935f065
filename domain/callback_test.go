package domain

import "testing"

// TestCallbacks: a resolved case with a requester waits for a callback; an
// unreached one counts an attempt, the third ends the task; a reached one
// ends it; POST /rate is a reached callback; a forgotten requester ends the
// task and cannot be called.
func TestCallbacks(t *testing.T) {
	called := func(status string, attempts int) func(*testing.T, *harness, []Event) {
		return func(t *testing.T, h *harness, _ []Event) {
			t.Helper()
			if c := h.c.Callback; c == nil || c.Status != status || c.Attempts != attempts {
				t.Fatalf("callback %+v, want %s after %d", c, status, attempts)
			}
		}
	}
	unreached := RecordCallback{Reached: false, Note: "no answer"}
	resolved := []step{
		{actor: street, cmd: raiseWithRequester(), want: typesRaisedIssue,
			check: func(t *testing.T, h *harness, _ []Event) {
				if h.c.Callback != nil || !h.c.HasRequester {
					t.Fatalf("a case just raised has a callback task %+v", h.c.Callback)
				}
			}},
		{name: "call before resolution", actor: street, cmd: unreached, err: ErrInvalidTransition, why: "once resolved"},
		{actor: ecology, cmd: Report{Assignee: "ecology-bureau"}, want: one(TypeAssignmentReported)},
		{actor: ecology, cmd: Resolve{Assignee: "ecology-bureau"}, want: one(TypeAssignmentResolved), status: StatusResolved, check: called(CallbackOpen, 0)},
	}
	runScenario(t, append(append([]step{}, resolved...), []step{
		{name: "by the lead", actor: ecology, cmd: unreached, err: ErrNotYours, why: "only a street"},
		{name: "by another street", actor: otherStreet, cmd: unreached, err: ErrNotYours, why: "belongs to street"},
		{name: "a rating unreached", actor: street, cmd: RecordCallback{Reached: false, Rating: "satisfied"}, err: ErrInvalidValue, field: "rating", why: "unreached"},
		{name: "a rating before closure", actor: street, cmd: RecordCallback{Reached: true, Rating: "satisfied"}, err: ErrInvalidValue, field: "rating", why: "follows closure"},
		{name: "first unreached", actor: street, cmd: unreached, want: one(TypeCallbackMade), status: StatusResolved, check: called(CallbackOpen, 1)},
		{actor: street, cmd: Verify{Accepted: true}, want: typesClose, status: StatusClosed, check: called(CallbackOpen, 1)},
		{name: "second unreached", actor: street, cmd: unreached, want: one(TypeCallbackMade), status: StatusClosed, check: called(CallbackOpen, 2)},
		{name: "third unreached", actor: street, cmd: unreached, want: one(TypeCallbackMade), status: StatusClosed, check: called(CallbackUnreached, 3)},
		{name: "a fourth", actor: street, cmd: unreached, err: ErrInvalidTransition, why: "is over (unreached)"},
		{name: "rate stays", actor: street, cmd: Rate{Rating: "basically_satisfied"}, want: one(TypeSatisfactionRated), status: StatusClosed},
	}...))

	runScenario(t, append(append([]step{}, resolved...), []step{
		{actor: street, cmd: Verify{Accepted: true}, want: typesClose, status: StatusClosed},
		{name: "reached with a rating", actor: street, cmd: RecordCallback{Reached: true, Rating: "satisfied", Note: "fixed"}, want: one(TypeCallbackMade), status: StatusClosed,
			check: func(t *testing.T, h *harness, events []Event) {
				called(CallbackReached, 1)(t, h, events)
				if e := events[0].(CallbackMade); !e.Reached || e.Rating != RatingSatisfied || e.Attempt != 1 || e.Round != 1 {
					t.Fatalf("callback %+v", e)
				}
				if *h.c.Rating != RatingSatisfied {
					t.Fatalf("rating %v", *h.c.Rating)
				}
			}},
		{name: "again", actor: street, cmd: RecordCallback{Reached: true}, err: ErrInvalidTransition, why: "is over (reached)"},
		{name: "rate after a rated callback", actor: street, cmd: Rate{Rating: "satisfied"}, err: ErrInvalidTransition, why: "recorded once"},
	}...))

	runScenario(t, append(append([]step{}, resolved...), []step{
		{actor: street, cmd: Verify{Accepted: true}, want: typesClose, status: StatusClosed},
		{name: "rate is a reached callback", actor: street, cmd: Rate{Rating: "satisfied"}, want: one(TypeSatisfactionRated), status: StatusClosed, check: called(CallbackReached, 1)},
	}...))

	runScenario(t, append(append([]step{}, resolved...), []step{
		{actor: street, cmd: ForgetRequester{Reason: "asked"}, want: one(TypeRequesterForgotten), status: StatusResolved, check: called(CallbackForgotten, 0)},
		{name: "nobody to call", actor: street, cmd: unreached, err: ErrInvalidTransition, why: "was forgotten"},
	}...))

	// Without a requester there is no task, and nothing to call.
	runScenario(t, []step{
		{actor: street, cmd: raiseOf(catIssue, UrgencyRoutine), want: typesRaisedIssue},
		{actor: ecology, cmd: Report{Assignee: "ecology-bureau"}, want: one(TypeAssignmentReported)},
		{actor: ecology, cmd: Resolve{Assignee: "ecology-bureau"}, want: one(TypeAssignmentResolved), status: StatusResolved,
			check: func(t *testing.T, h *harness, _ []Event) {
				if h.c.Callback != nil {
					t.Fatalf("a case without requester has a callback task %+v", h.c.Callback)
				}
			}},
		{actor: street, cmd: RecordCallback{Reached: true}, err: ErrInvalidTransition, why: "no requester"},
	})
}
