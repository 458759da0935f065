// Package httpclient is a typed Go client of whistled's HTTP API (v1), for the
// CLI, scripts and other programs. It links none of the server's packages:
// only the domain's value types (a case, an envelope, the directory) and the
// event-stream reader.
//
// A Client is safe for concurrent use. Every call that writes (Raise and the
// case commands) may or may not have been applied when it returns a transport
// error; send an Idempotency-Key to make a retry safe.
package httpclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultURL is where whistled listens by default.
const DefaultURL = "http://127.0.0.1:8080"

// maxAnswer bounds an answer read into memory (a history of a large case is
// the longest; the log's pages are bounded by the server).
const maxAnswer = 256 << 20

// ErrNoToken: a call that needs a bearer token was made without one.
var ErrNoToken = errors.New("httpclient: no bearer token")

// Client calls one whistled as one principal.
type Client struct {
	base      *url.URL
	token     string
	http      *http.Client // calls, with a timeout
	stream    *http.Client // event streams, which live as long as the caller wants
	userAgent string
	language  string
}

// Option configures a Client.
type Option func(*Client) error

// WithHTTPClient sends calls through hc (its Timeout bounds each call);
// event streams use hc's transport without the timeout.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("httpclient: WithHTTPClient(nil)")
		}
		c.http = hc
		c.stream = &http.Client{Transport: hc.Transport, CheckRedirect: hc.CheckRedirect, Jar: hc.Jar}
		return nil
	}
}

// WithUserAgent names the program in the User-Agent header.
func WithUserAgent(ua string) Option {
	return func(c *Client) error { c.userAgent = ua; return nil }
}

// WithLanguage asks for error messages in this language (Accept-Language,
// e.g. "zh" or "en"); the codes and fields do not change.
func WithLanguage(lang string) Option {
	return func(c *Client) error { c.language = lang; return nil }
}

// New returns a client of the whistled at baseURL (DefaultURL when empty)
// that authenticates with token. An empty token is allowed so that a caller
// can still be told what is missing: every call then fails with ErrNoToken.
func New(baseURL, token string, opts ...Option) (*Client, error) {
	if baseURL == "" {
		baseURL = DefaultURL
	}
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("httpclient: server URL %q: %w", baseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("httpclient: server URL %q: want http://host:port or https://host", baseURL)
	}
	c := &Client{
		base:      u,
		token:     token,
		http:      &http.Client{Timeout: 30 * time.Second},
		stream:    &http.Client{},
		userAgent: "whistle-httpclient",
	}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// URL is the server's base URL.
func (c *Client) URL() string { return c.base.String() }

// request builds a request for path (which may hold a query) on the server.
func (c *Client) request(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	if c.token == "" {
		return nil, ErrNoToken
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, body)
	if err != nil {
		return nil, fmt.Errorf("httpclient: %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("User-Agent", c.userAgent)
	if c.language != "" {
		req.Header.Set("Accept-Language", c.language)
	}
	return req, nil
}

// do sends a request with an optional JSON body and decodes a 2xx JSON
// answer into out (skipped when out is nil); any other status is an *Error.
func (c *Client) do(ctx context.Context, method, path string, body any, out any, header http.Header) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("httpclient: %s %s: encode the body: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := c.request(ctx, method, path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("httpclient: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return decodeError(method, path, resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
		return nil
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("httpclient: %s %s: read the answer: %w", method, path, err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("httpclient: %s %s: decode the answer: %w", method, path, err)
	}
	return nil
}

func idempotency(key string) http.Header {
	if key == "" {
		return nil
	}
	return http.Header{"Idempotency-Key": {key}}
}
