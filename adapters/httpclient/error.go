package httpclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Sentinels for the answers callers branch on; an *Error matches the one of
// its status with errors.Is.
var (
	ErrBadRequest   = errors.New("httpclient: bad request")         // 400: malformed, or an unknown field
	ErrUnauthorized = errors.New("httpclient: unauthorized")        // 401: no or a wrong token
	ErrForbidden    = errors.New("httpclient: forbidden")           // 403: not yours
	ErrNotFound     = errors.New("httpclient: not found")           // 404
	ErrConflict     = errors.New("httpclient: conflict")            // 409: invalid transition, version or key conflict
	ErrTooLarge     = errors.New("httpclient: body too large")      // 413
	ErrInvalid      = errors.New("httpclient: invalid value")       // 422: named in Field
	ErrTooMany      = errors.New("httpclient: too many requests")   // 429
	ErrUnavailable  = errors.New("httpclient: service unavailable") // 503: retry after RetryAfter
)

var sentinels = map[int]error{
	http.StatusBadRequest:            ErrBadRequest,
	http.StatusUnauthorized:          ErrUnauthorized,
	http.StatusForbidden:             ErrForbidden,
	http.StatusNotFound:              ErrNotFound,
	http.StatusConflict:              ErrConflict,
	http.StatusRequestEntityTooLarge: ErrTooLarge,
	http.StatusUnprocessableEntity:   ErrInvalid,
	http.StatusTooManyRequests:       ErrTooMany,
	http.StatusServiceUnavailable:    ErrUnavailable,
}

// Error is an answer other than 2xx, decoded from the API's
// {"error":{"code","message","field"}} (Code and Message are empty when the
// body was not that shape, e.g. from a proxy).
type Error struct {
	Method, Path string
	Status       int
	Code         string
	Message      string
	Field        string
	// RetryAfter is the answer's Retry-After, 0 when none.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	s := fmt.Sprintf("%d", e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	s += ": " + msg
	if e.Field != "" {
		s += " (field " + e.Field + ")"
	}
	return s
}

// Is matches the sentinel of the error's status.
func (e *Error) Is(target error) bool {
	s, ok := sentinels[e.Status]
	return ok && s == target
}

// decodeError reads an error answer (at most 64 KiB of it).
func decodeError(method, path string, resp *http.Response) error {
	e := &Error{Method: method, Path: path, Status: resp.StatusCode}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Field   string `json:"field"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &body) == nil {
		e.Code, e.Message, e.Field = body.Error.Code, body.Error.Message, body.Error.Field
	}
	return e
}
