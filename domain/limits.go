package domain

import "errors"

// ErrLimitReached: the case holds as many events as it may; the command
// was not applied.
var ErrLimitReached = errors.New("limit reached")

// DefaultMaxEventsPerCase bounds a case's events unless configured
// otherwise: a case in its ordinary course takes a few dozen, and one that
// grows without end (thousands of notes) would make every read of it slow.
const DefaultMaxEventsPerCase = 1000

// CheckCaseSize refuses a command whose added events would take case c
// past max events (0: no bound). Commands that settle a case (resolve,
// decline, verify, rate, a ticket's accept or return, a reveal) may go a
// tenth over, so a case that reached the limit with notes can still be
// finished; a forget and the deadline checks are never refused, since the
// first is a resident's right and the second the service's own duty (both
// add at most a few events per case and deadline).
func CheckCaseSize(c *Case, cmd Command, added, max int) error {
	if max <= 0 || added == 0 {
		return nil
	}
	limit := uint64(max)
	switch cmd.(type) {
	case ForgetRequester, CheckDeadlines:
		return nil
	case Resolve, Decline, Verify, Rate, AcceptTicket, ReturnTicket, RevealRequester:
		limit += uint64(max / 10)
	}
	if c.Version+uint64(added) <= limit {
		return nil
	}
	return refuse(ErrLimitReached, "", "case %s holds %d events, and a case may hold at most %d (the limit of events per case, --max-events-per-case): the %s command was not applied",
		c.ID, c.Version, max, cmd.CommandName())
}
