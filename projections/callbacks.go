package projections

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/whistle-gov/whistle/domain"
)

// CallbackItem is a case waiting for its callback (回访), as the street's
// callback list shows it: GET /v1/callbacks. The requester is not in it:
// the street reveals the phone on demand (GET /v1/cases/{id}?reveal=requester).
type CallbackItem struct {
	CaseID      string               `json:"case_id"`
	Street      string               `json:"street"`
	Community   string               `json:"community"`
	Category    string               `json:"category"`
	Title       string               `json:"title,omitempty"`
	CaseStatus  domain.Status        `json:"case_status"`
	SecondRound bool                 `json:"second_round,omitempty"`
	Callback    *domain.CallbackTask `json:"callback"`
	ClosedAt    *time.Time           `json:"closed_at"`
	Version     uint64               `json:"version"`
}

func callbackDue(s *CaseSummary) bool {
	return s.Callback != nil && s.Callback.Status == domain.CallbackOpen
}

// indexCallback puts the case in its street's callback list while its
// callback is due, and takes it out after. Lock held.
func (b *Board) indexCallback(ent *boardEntry) {
	s := &ent.sum
	if ent.c != nil {
		// show has not run yet for the event being applied when called from
		// index; the state is the truth.
		s = &CaseSummary{CaseID: ent.c.ID, Street: ent.c.Street, Callback: ent.c.Callback}
	}
	q := b.callbacks[s.Street]
	if callbackDue(s) {
		if q == nil {
			q = map[string]*boardEntry{}
			b.callbacks[s.Street] = q
		}
		q[s.CaseID] = ent
		return
	}
	if q != nil {
		delete(q, s.CaseID)
		if len(q) == 0 {
			delete(b.callbacks, s.Street)
		}
	}
}

// Callbacks returns the callbacks due in street ("" for every street's),
// the longest waiting first (then by case id).
func (b *Board) Callbacks(street string) []CallbackItem {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := []CallbackItem{}
	for st, q := range b.callbacks {
		if street != "" && st != street {
			continue
		}
		for _, ent := range q {
			s := &ent.sum
			cb := *s.Callback
			out = append(out, CallbackItem{CaseID: s.CaseID, Street: s.Street, Community: s.Community, Category: s.Category,
				Title: s.Title, CaseStatus: s.Status, SecondRound: s.SecondRound, Callback: &cb, ClosedAt: s.ClosedAt, Version: s.Version})
		}
	}
	slices.SortFunc(out, func(x, y CallbackItem) int {
		return cmp.Or(x.Callback.Since.Compare(y.Callback.Since), strings.Compare(x.CaseID, y.CaseID))
	})
	return out
}
