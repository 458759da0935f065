// Package metrics holds whistle's Prometheus metrics and serves them on
// GET /metrics. It implements the observer hooks of the command handler
// (casehandler.Observer), the HTTP API (httpapi.Observer) and the JetStream
// store's group commit (jetstream.BatchObserver), and exports the lag of the
// log's followers (dispatch, projections) as gauges read at scrape time.
//
// Every metric is named whistle_*; the Go runtime and process collectors are
// registered too (go_*, process_*).
package metrics

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/whistle-gov/whistle/adapters/eventstore"
)

// HeadFunc returns the log's head position; eventstore.Store.Head is one.
type HeadFunc func(ctx context.Context) (eventstore.Position, error)

// headTTL is how long a read of the log's head serves the lag gauges: one
// scrape reads several of them, and the head is one request to the store.
const headTTL = time.Second

// headTimeout bounds the head request made during a scrape.
const headTimeout = 2 * time.Second

// Metrics is the registry of one whistled. It is safe for concurrent use.
type Metrics struct {
	reg  *prometheus.Registry
	head HeadFunc

	commands     *prometheus.CounterVec
	commandTime  *prometheus.HistogramVec
	appendTime   *prometheus.HistogramVec
	batchCommits prometheus.Histogram
	conflicts    prometheus.Counter
	retries      prometheus.Counter
	httpRequests *prometheus.CounterVec
	httpTime     *prometheus.HistogramVec

	mu       sync.Mutex
	gaugeFns map[string]bool // gauge funcs registered, to refuse a repeat

	headMu  sync.Mutex
	headAt  time.Time
	headPos eventstore.Position
	headErr error
}

// latencyBuckets span a loopback request (~100µs) to a stuck one (10s),
// fine around the few milliseconds an fsync costs.
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .002, .003, .005, .0075, .01, .015, .025, .05, .1, .25, .5, 1, 2.5, 10}

// New returns the metrics of a process whose log head is read with head (nil:
// the lag gauges are not available and report nothing).
func New(head HeadFunc) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), head: head, gaugeFns: map[string]bool{}}
	m.commands = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "whistle_commands_total",
		Help: "Commands executed, by command type and outcome (ok, already_done, noop, refused, contention, error).",
	}, []string{"command", "outcome"})
	m.commandTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "whistle_command_duration_seconds",
		Help:    "Time to execute a command (read or cached state, decide, durable append), by command type.",
		Buckets: latencyBuckets,
	}, []string{"command"})
	m.appendTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "whistle_append_duration_seconds",
		Help:    "Time of one append to the event store until it is durable, by outcome (ok, conflict, error).",
		Buckets: latencyBuckets,
	}, []string{"outcome"})
	m.batchCommits = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "whistle_append_batch_commits",
		Help:    "Commits per unit written by the JetStream group commit: an atomic batch, or 1 for a commit written alone.",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000},
	})
	m.conflicts = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "whistle_append_conflicts_total",
		Help: "Appends refused because the case had moved (optimistic concurrency).",
	})
	m.retries = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "whistle_command_retries_total",
		Help: "Commands re-decided on the case's new state after a version conflict.",
	})
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "whistle_http_requests_total",
		Help: "HTTP requests served, by route pattern and status code.",
	}, []string{"route", "status"})
	m.httpTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "whistle_http_request_duration_seconds",
		Help:    "Time to serve an HTTP request, by route pattern (event streams count until they end).",
		Buckets: latencyBuckets,
	}, []string{"route"})
	m.reg.MustRegister(m.commands, m.commandTime, m.appendTime, m.batchCommits, m.conflicts, m.retries,
		m.httpRequests, m.httpTime,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the registry, to add collectors of other components.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// CommandDone implements casehandler.Observer.
func (m *Metrics) CommandDone(command, outcome string, took time.Duration) {
	m.commands.WithLabelValues(command, outcome).Inc()
	m.commandTime.WithLabelValues(command).Observe(took.Seconds())
}

// AppendDone implements casehandler.Observer.
func (m *Metrics) AppendDone(took time.Duration, outcome string) {
	m.appendTime.WithLabelValues(outcome).Observe(took.Seconds())
	if outcome == "conflict" {
		m.conflicts.Inc()
	}
}

// Retry implements casehandler.Observer.
func (m *Metrics) Retry(string) { m.retries.Inc() }

// RequestDone implements httpapi.Observer. route is the mux pattern, never
// the raw path, so that the label stays bounded.
func (m *Metrics) RequestDone(route string, status int, took time.Duration) {
	m.httpRequests.WithLabelValues(route, statusText(status)).Inc()
	m.httpTime.WithLabelValues(route).Observe(took.Seconds())
}

// BatchCommits records the size of one unit of the group commit; it is a
// jetstream.Config's BatchObserver.
func (m *Metrics) BatchCommits(commits int) { m.batchCommits.Observe(float64(commits)) }

// ProjectionLag exports whistle_projection_lag_commits{projection=name}, read
// from lag at each scrape. Registering a name twice panics.
func (m *Metrics) ProjectionLag(name string, lag func() float64) {
	m.gaugeFunc("whistle_projection_lag_commits", "Commits of the log a projection has not folded yet.",
		prometheus.Labels{"projection": name}, lag)
}

// DispatchLag exports whistle_dispatch_lag_commits, read from lag at each
// scrape: commits of the log the dispatcher has not published yet.
func (m *Metrics) DispatchLag(lag func() float64) {
	m.gaugeFunc("whistle_dispatch_lag_commits", "Commits of the log the dispatcher has not published to the departments yet.", nil, lag)
}

// OverdueAssignments exports whistle_overdue_assignments, read from n at each
// scrape: open assignments past a deadline.
func (m *Metrics) OverdueAssignments(n func() float64) {
	m.gaugeFunc("whistle_overdue_assignments", "Open assignments past their report-in or resolve deadline.", nil, n)
}

// StoreFull exports whistle_store_full, read from full at each scrape: 1
// while the event store cannot write (its disk is full), else 0.
func (m *Metrics) StoreFull(full func() float64) {
	m.gaugeFunc("whistle_store_full", "1 while the event store cannot write (the data folder's disk is full or the store reported a write error), else 0.", nil, full)
}

func (m *Metrics) gaugeFunc(name, help string, labels prometheus.Labels, f func() float64) {
	key := name
	for k, v := range labels {
		key += "," + k + "=" + v
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gaugeFns[key] {
		panic("metrics: " + key + " registered twice")
	}
	m.gaugeFns[key] = true
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels}, f))
}

// Behind turns the position a follower of the log has reached into its lag:
// the commits between it and the log's head (read at most once a second). It
// reports NaN when the head cannot be read, so a scrape shows a gap rather
// than a false zero.
func (m *Metrics) Behind(position func() eventstore.Position) func() float64 {
	return func() float64 {
		head, err := m.logHead()
		if err != nil {
			return nan()
		}
		pos := position()
		if pos >= head {
			return 0
		}
		return float64(head - pos)
	}
}

func (m *Metrics) logHead() (eventstore.Position, error) {
	if m.head == nil {
		return 0, errNoHead
	}
	m.headMu.Lock()
	defer m.headMu.Unlock()
	if time.Since(m.headAt) < headTTL {
		return m.headPos, m.headErr
	}
	ctx, cancel := context.WithTimeout(context.Background(), headTimeout)
	defer cancel()
	m.headPos, m.headErr = m.head(ctx)
	m.headAt = time.Now()
	return m.headPos, m.headErr
}

var errNoHead = errors.New("metrics: no log head function")

func nan() float64 { return math.NaN() }

// statusText keeps the common codes from allocating a label string each time.
func statusText(code int) string {
	if code >= 100 && code < 600 {
		if s := statusTexts[code-100]; s != "" {
			return s
		}
	}
	return strconv.Itoa(code)
}

var statusTexts = func() (t [500]string) {
	for _, c := range []int{200, 201, 204, 304, 400, 401, 403, 404, 405, 409, 413, 415, 422, 429, 500, 502, 503, 504} {
		t[c-100] = strconv.Itoa(c)
	}
	return t
}()
