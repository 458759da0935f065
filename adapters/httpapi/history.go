package httpapi

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/whistle-gov/whistle/domain"
)

// History pages: a case of a thousand notes of 4,000 characters is
// megabytes, so GET /v1/cases/{id}/history answers at most limit events
// (DefaultHistoryLimit unless asked) after the first `after` ones, with
// `next` the after of the page that follows.
const (
	DefaultHistoryLimit = 200
	MaxHistoryLimit     = 1000
)

// historyPage reads ?after= and ?limit= (a case version, that is the count
// of events already seen, and a page size); it answers the error itself.
func historyPage(w http.ResponseWriter, q url.Values) (after uint64, limit int, ok bool) {
	if s := q.Get("after"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			invalid(w, "after", "after is a case version, the number of events already read (a whole number), got %q", s)
			return 0, 0, false
		}
		after = v
	}
	limit = DefaultHistoryLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxHistoryLimit {
			invalid(w, "limit", "limit is a whole number from 1 to %d, got %q", MaxHistoryLimit, s)
			return 0, 0, false
		}
		limit = n
	}
	return after, limit, true
}

// pageOf cuts history (the events the reader may see, in version order) to
// the page after `after` of at most limit events; next is nil on the last.
func pageOf(history []domain.Envelope, after uint64, limit int) (page []domain.Envelope, next *uint64) {
	if after >= uint64(len(history)) {
		return []domain.Envelope{}, nil
	}
	page = history[after:]
	if len(page) > limit {
		page = page[:limit]
		n := after + uint64(limit)
		next = &n
	}
	return page, next
}
