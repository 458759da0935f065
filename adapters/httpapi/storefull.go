package httpapi

import (
	"net/http"
	"strconv"
)

// storeFullRetryAfter is the Retry-After, in seconds, of a command refused
// because the store cannot write: space is freed by people, not at once.
const storeFullRetryAfter = 30

// storeFull answers 507 with Retry-After, naming the cause, and returns
// true when the event store cannot write now (Config.StoreFull).
func (a *API) storeFull(w http.ResponseWriter) bool {
	if a.cfg.StoreFull == nil {
		return false
	}
	err := a.cfg.StoreFull()
	if err == nil {
		return false
	}
	w.Header().Set("Retry-After", strconv.Itoa(storeFullRetryAfter))
	writeError(w, http.StatusInsufficientStorage, "store_full",
		"nothing was written: "+err.Error()+"; retrying later with the same Idempotency-Key is safe", "")
	return true
}
