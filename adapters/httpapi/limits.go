package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"github.com/whistle-gov/whistle/domain"
)

// Load shedding. A request over the bound is answered at once with the
// error shape and Retry-After rather than queued: a queue grows latency for
// everyone, an answer lets the client back off. Health, readiness and
// metrics are never shed: an orchestrator that cannot reach them under
// load would restart a service that is merely busy.

// Defaults of the bounds (whistled's --max-in-flight and
// --max-streams-per-principal).
const (
	DefaultMaxInFlight            = 256
	DefaultMaxStreamsPerPrincipal = 8
)

// shedRetryAfter is the Retry-After, in seconds, of a shed request.
const shedRetryAfter = 1

// limits holds the counters of the bounds; zero bounds mean none.
type limits struct {
	inFlight chan struct{} // a slot per request served; nil: unbounded

	maxStreams int
	mu         sync.Mutex
	streams    map[domain.Actor]int
}

func newLimits(maxInFlight, maxStreams int) *limits {
	l := &limits{maxStreams: maxStreams, streams: map[domain.Actor]int{}}
	if maxInFlight > 0 {
		l.inFlight = make(chan struct{}, maxInFlight)
	}
	return l
}

// neverShed are the routes answered whatever the load.
func neverShed(r *http.Request) bool {
	switch r.URL.Path {
	case "/healthz", "/readyz", "/metrics":
		return true
	}
	return false
}

// admit takes a slot for r, or answers 503 and returns false. The release
// func gives the slot back. Event streams take no slot: they live for
// hours, and have their bound per principal (admitStream).
func (l *limits) admit(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	if l.inFlight == nil || neverShed(r) || wantsEventStream(r) {
		return func() {}, true
	}
	select {
	case l.inFlight <- struct{}{}:
		return func() { <-l.inFlight }, true
	default:
	}
	w.Header().Set("Retry-After", strconv.Itoa(shedRetryAfter))
	writeError(w, http.StatusServiceUnavailable, "overloaded",
		fmt.Sprintf("the service is serving its limit of %d requests at once (--max-in-flight); retry after %d s", cap(l.inFlight), shedRetryAfter), "")
	return nil, false
}

// admitStream counts an event stream of actor, or answers 429 and returns
// false when actor has its limit open already.
func (l *limits) admitStream(w http.ResponseWriter, actor domain.Actor) (release func(), ok bool) {
	if l.maxStreams <= 0 {
		return func() {}, true
	}
	l.mu.Lock()
	n := l.streams[actor]
	if n >= l.maxStreams {
		l.mu.Unlock()
		w.Header().Set("Retry-After", strconv.Itoa(shedRetryAfter))
		writeError(w, http.StatusTooManyRequests, "too_many_streams",
			fmt.Sprintf("%s %s has %d event streams open, the limit (--max-streams-per-principal); close one first", actor.Role, actor.ID, n), "")
		return nil, false
	}
	l.streams[actor] = n + 1
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		if l.streams[actor]--; l.streams[actor] <= 0 {
			delete(l.streams, actor)
		}
		l.mu.Unlock()
	}, true
}
