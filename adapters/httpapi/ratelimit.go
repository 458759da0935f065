package httpapi

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// clientLimiter limits the requests of each client address to a bucket of
// burst requests refilled at perMinute: the receipt pages and ratings are
// open to anyone, so guessing links or hammering a case is throttled by
// address. The address is the connection's (a proxy in front should limit
// by the real one itself). Memory is bounded: past maxClients, the buckets
// that are full again are dropped, and if none is, all are.
type clientLimiter struct {
	mu        sync.Mutex
	perMinute float64
	burst     float64
	clients   map[string]*bucketState
	now       func() time.Time
}

type bucketState struct {
	tokens float64
	at     time.Time
}

const maxClients = 10000

func newClientLimiter(perMinute, burst int) *clientLimiter {
	return &clientLimiter{perMinute: float64(perMinute), burst: float64(burst), clients: map[string]*bucketState{}, now: time.Now}
}

// allow takes a token of the client; when there is none it says how long
// until there is.
func (l *clientLimiter) allow(client string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.clients[client]
	if b == nil {
		if len(l.clients) >= maxClients {
			l.sweep(now)
		}
		b = &bucketState{tokens: l.burst, at: now}
		l.clients[client] = b
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.at).Minutes()*l.perMinute)
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.perMinute * float64(time.Minute))
	return false, wait
}

func (l *clientLimiter) sweep(now time.Time) {
	for k, b := range l.clients {
		if b.tokens+now.Sub(b.at).Minutes()*l.perMinute >= l.burst {
			delete(l.clients, k)
		}
	}
	if len(l.clients) >= maxClients {
		clear(l.clients)
	}
}

// limited wraps a handler of the open receipt routes: 429 with
// Retry-After (whole seconds, at least 1) once the client's bucket is empty.
func (a *API) limited(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		if ok, wait := a.residentLimit.allow(host); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
			writeError(w, http.StatusTooManyRequests, "too_many_requests", residentText(r).tooMany, "")
			return
		}
		next(w, r)
	}
}
