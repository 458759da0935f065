package httpclient_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"github.com/whistle-gov/whistle/domain"
)

// History follows the server's pages (next) to the end: a case longer than
// one page is read whole, a page at a time.
func TestHistoryFollowsPages(t *testing.T) {
	const total = 2345
	const serverMax = 1000
	requests := 0
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		requests++
		after, _ := strconv.Atoi(r.URL.Query().Get("after"))
		limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
		if err != nil || limit > serverMax {
			w.WriteHeader(http.StatusUnprocessableEntity)
			fmt.Fprintf(w, `{"error":{"code":"invalid_value","message":"limit %q","field":"limit"}}`, r.URL.Query().Get("limit"))
			return
		}
		answer := map[string]any{"chain_whole": true, "total": total}
		var events []domain.Envelope
		for v := after; v < total && len(events) < limit; v++ {
			events = append(events, domain.Envelope{CaseID: "c", Version: uint64(v)})
		}
		answer["events"] = events
		if after+len(events) < total {
			answer["next"] = after + len(events)
		}
		_ = json.NewEncoder(w).Encode(answer)
	})
	h, err := c.History(context.Background(), "c")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Events) != total || requests != 3 || h.Next != nil || h.Total != total || !h.ChainWhole {
		t.Fatalf("%d events in %d requests, next %v, total %d", len(h.Events), requests, h.Next, h.Total)
	}
	for i, e := range h.Events {
		if e.Version != uint64(i) {
			t.Fatalf("event %d has version %d", i, e.Version)
		}
	}
}
