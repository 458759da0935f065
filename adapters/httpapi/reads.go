package httpapi

import (
	"net/http"
	"time"

	"github.com/whistle-gov/whistle/adapters/casestate"
	"github.com/whistle-gov/whistle/domain"
)

// HistoryAnswer is the body of GET /v1/cases/{id}/history.
type HistoryAnswer struct {
	Events []domain.Envelope `json:"events"`
	// ChainWhole tells whether the hash chain checks out from the first event
	// to the last; ChainProblem says where it breaks when it does not.
	ChainWhole   bool   `json:"chain_whole"`
	ChainProblem string `json:"chain_problem,omitempty"`
	// Next is the after of the next page; absent on the last one. Total is
	// the number of events the whole history holds (up to as_of).
	Next  *uint64 `json:"next,omitempty"`
	Total uint64  `json:"total"`
}

// readHistory reads a case's own stream (so a client sees its own writes at
// once), checks the reader may see it, and cuts it at ?as_of= when given.
func (a *API) readHistory(w http.ResponseWriter, r *http.Request) ([]domain.Envelope, *domain.Case, bool) {
	caseID, ok := caseIDFrom(w, r)
	if !ok {
		return nil, nil, false
	}
	var asOf time.Time
	if s := r.URL.Query().Get("as_of"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			writeError(w, http.StatusUnprocessableEntity, "invalid_value", "as_of is an RFC 3339 time such as 2026-11-23T09:00:00Z, got "+s, "as_of")
			return nil, nil, false
		}
		asOf = t
	}
	history, err := casestate.ReadHistory(r.Context(), a.cfg.Store, caseID)
	if err != nil {
		a.writeFailure(w, err)
		return nil, nil, false
	}
	if len(history) == 0 {
		writeError(w, http.StatusNotFound, "not_found", "no case "+caseID, "")
		return nil, nil, false
	}
	full, err := domain.Replay(caseID, history)
	if err != nil {
		a.writeFailure(w, err)
		return nil, nil, false
	}
	if err := domain.AuthorizeCaseRead(actorOf(r), full); err != nil {
		a.writeFailure(w, err)
		return nil, nil, false
	}
	if asOf.IsZero() {
		return history, full, true
	}
	cut := 0
	for cut < len(history) && !history[cut].OccurredAt.After(asOf) {
		cut++
	}
	if cut == 0 {
		writeError(w, http.StatusNotFound, "not_found", "case "+caseID+" had not been raised at "+asOf.Format(time.RFC3339), "")
		return nil, nil, false
	}
	c, err := domain.Replay(caseID, history[:cut])
	if err != nil {
		a.writeFailure(w, err)
		return nil, nil, false
	}
	return history[:cut], c, true
}

func (a *API) getCase(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r, "as_of", "reveal")
	if !ok {
		return
	}
	reveal := q.Get("reveal")
	if reveal != "" && reveal != "requester" {
		writeError(w, http.StatusUnprocessableEntity, "invalid_value", "reveal takes requester", "reveal")
		return
	}
	_, c, ok := a.readHistory(w, r)
	if !ok {
		return
	}
	if reveal != "" {
		a.revealRequester(w, r, c)
		return
	}
	view, err := a.requesterView(r.Context(), c)
	if err != nil {
		a.writeFailure(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a.caseAnswer(r, c, 0, view))
}

func (a *API) getHistory(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r, "as_of", "after", "limit")
	if !ok {
		return
	}
	after, limit, ok := historyPage(w, q)
	if !ok {
		return
	}
	history, _, ok := a.readHistory(w, r)
	if !ok {
		return
	}
	// The chain is checked whole, from the first event, whichever page is asked.
	answer := HistoryAnswer{ChainWhole: true, Total: uint64(len(history))}
	if err := domain.VerifyChain(history); err != nil {
		answer.ChainWhole, answer.ChainProblem = false, err.Error()
	}
	answer.Events, answer.Next = pageOf(history, after, limit)
	writeJSON(w, http.StatusOK, answer)
}
