package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/whistle-gov/whistle/adapters/sse"
	"go.uber.org/zap"
)

// whistled is one whistled process started by the load generator.
type whistled struct {
	cmd    *exec.Cmd
	url    string
	data   string
	tokens map[string]string // "role:id" → token
	exited chan struct{}
	stderr *tailBuffer
}

// startWhistled runs bin on data with a free loopback port and waits until it
// serves and its tokens are known (printed once on its first start).
func startWhistled(ctx context.Context, log *zap.Logger, bin, data string, args ...string) (*whistled, error) {
	all := append([]string{"--data", data, "--addr", "127.0.0.1:0", "--log-level", "info"}, args...)
	cmd := exec.Command(bin, all...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	w := &whistled{cmd: cmd, data: data, tokens: map[string]string{}, exited: make(chan struct{}), stderr: &tailBuffer{}}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { _ = cmd.Wait(); close(w.exited) }()
	tokensDone := make(chan struct{})
	var mu sync.Mutex
	go func() {
		defer close(tokensDone)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 3 && (f[0] == "street" || f[0] == "department" || f[0] == "unit" || f[0] == "auditor") {
				mu.Lock()
				w.tokens[f[0]+":"+f[1]] = f[2]
				mu.Unlock()
			}
		}
	}()
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			w.stderr.add(line)
			var e struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(line, &e) == nil && e.Msg == "whistled ready" {
				select {
				case ready <- e.Addr:
				default:
				}
			}
		}
	}()
	select {
	case addr := <-ready:
		w.url = "http://" + addr
	case <-w.exited:
		return nil, fmt.Errorf("whistled exited before it was ready:\n%s", w.stderr)
	case <-time.After(60 * time.Second):
		w.kill()
		return nil, fmt.Errorf("whistled not ready after 60s:\n%s", w.stderr)
	case <-ctx.Done():
		w.kill()
		return nil, ctx.Err()
	}
	// The tokens come before the ready line on stdout; wait until they are
	// all read (stdout stays open, so wait for the auditor's, printed last
	// among them, or a moment).
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		_, ok := w.tokens["auditor:auditor"]
		mu.Unlock()
		if ok {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(w.tokens) == 0 {
		w.kill()
		return nil, errors.New("whistled printed no tokens: is its data folder fresh?")
	}
	log.Info("whistled ready", zap.String("url", w.url), zap.Int("pid", cmd.Process.Pid), zap.Int("principals", len(w.tokens)))
	return w, nil
}

func (w *whistled) pid() int { return w.cmd.Process.Pid }

// stop ends whistled with SIGTERM (it drains and closes the store) and waits.
func (w *whistled) stop() error {
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.exited:
		return nil
	case <-time.After(30 * time.Second):
		w.kill()
		return errors.New("whistled did not stop within 30s of SIGTERM; killed")
	}
}

func (w *whistled) kill() {
	_ = w.cmd.Process.Kill()
	<-w.exited
}

// tailBuffer keeps the last lines of whistled's log for error messages.
type tailBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (t *tailBuffer) add(line []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, string(line))
	if len(t.lines) > 40 {
		t.lines = t.lines[len(t.lines)-40:]
	}
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

// procStatus reads a field of /proc/<pid>/status in KiB (VmRSS, VmHWM).
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, field)
}

// client is the HTTP client of every simulated office: one connection per
// concurrent request, kept alive.
func newClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns * 2,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	}}
}

func (w *whistled) do(ctx context.Context, c *http.Client, method, path, principal string, body []byte, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, w.url+path, rd)
	if err != nil {
		return 0, err
	}
	if principal != "" {
		req.Header.Set("Authorization", "Bearer "+w.tokens[principal])
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decode %q: %w", method, path, raw, err)
		}
	}
	return resp.StatusCode, nil
}

// world is what the load generator raises whistles about, from the
// directory whistled serves.
type world struct {
	places     [][2]string // street, community
	categories []category  // issues and disputes: their leads are departments
	assignees  []string    // departments
}

type category struct{ id, lead string }

func loadWorld(ctx context.Context, w *whistled, c *http.Client) (*world, error) {
	var dir struct {
		Streets []struct {
			ID          string `json:"id"`
			Communities []struct {
				ID string `json:"id"`
			} `json:"communities"`
		} `json:"streets"`
		Departments []struct {
			ID string `json:"id"`
		} `json:"departments"`
		Categories []struct {
			ID   string `json:"id"`
			Kind string `json:"kind"`
			Lead string `json:"lead"`
		} `json:"categories"`
	}
	if st, err := w.do(ctx, c, "GET", "/v1/directory", "auditor:auditor", nil, &dir); err != nil || st != 200 {
		return nil, fmt.Errorf("GET /v1/directory: %d %v", st, err)
	}
	wd := &world{}
	for _, s := range dir.Streets {
		if _, ok := w.tokens["street:"+s.ID]; !ok {
			continue
		}
		for _, cm := range s.Communities {
			wd.places = append(wd.places, [2]string{s.ID, cm.ID})
		}
	}
	for _, cat := range dir.Categories {
		if cat.Kind != "need" && cat.Lead != "" {
			wd.categories = append(wd.categories, category{cat.ID, cat.Lead})
		}
	}
	for _, d := range dir.Departments {
		if _, ok := w.tokens["department:"+d.ID]; ok {
			wd.assignees = append(wd.assignees, d.ID)
		}
	}
	if len(wd.places) == 0 || len(wd.categories) == 0 || len(wd.assignees) == 0 {
		return nil, errors.New("directory has no street, issue category or department with a token")
	}
	return wd, nil
}

// run is the state of one load run against one whistled.
type run struct {
	w      *whistled
	world  *world
	client *http.Client
	log    *zap.Logger

	seq atomic.Int64
	// sent maps a whistle's title to when it was raised (or due, under a
	// fixed rate), so a department stream can time its delivery: the change
	// may arrive before the raise's answer.
	sent sync.Map // title → time.Time

	recording atomic.Bool
	raises    atomic.Int64 // raised while recording
	raiseErrs atomic.Int64
	raiseLat  atomic.Pointer[latencies]
	delivery  atomic.Pointer[latencies]
	reports   atomic.Int64
	reportErr atomic.Int64
	lastErr   atomic.Value // string

	reportQ chan reportJob

	// projLag times, for every 20th raise, from its answer until the read
	// models answer a query at its log position (GET /v1/cases?position=).
	projLag   atomic.Pointer[latencies]
	noProject atomic.Bool // whistled has no such query: stop asking
}

type reportJob struct{ caseID, assignee string }

func newRun(w *whistled, wd *world, conc int, log *zap.Logger) *run {
	r := &run{w: w, world: wd, client: newClient(conc + len(wd.assignees) + 8), log: log, reportQ: make(chan reportJob, 1<<20)}
	r.resetRecording()
	return r
}

// resetRecording starts a new measurement window.
func (r *run) resetRecording() {
	r.sent.Range(func(k, _ any) bool { r.sent.Delete(k); return true })
	r.raises.Store(0)
	r.raiseErrs.Store(0)
	r.raiseLat.Store(&latencies{})
	r.delivery.Store(&latencies{})
	r.projLag.Store(&latencies{})
}

// raise raises one whistle; due is when it was meant to go (the latency
// counts from then, so a queue in the client is not hidden).
func (r *run) raise(ctx context.Context, rng *rand.Rand, due time.Time) {
	n := r.seq.Add(1)
	p := r.world.places[rng.IntN(len(r.world.places))]
	cat := r.world.categories[rng.IntN(len(r.world.categories))]
	title := "bench " + strconv.FormatInt(n, 36)
	body, _ := json.Marshal(map[string]any{
		"street": p[0], "community": p[1], "category": cat.id, "urgency": "routine", "title": title,
		"description": "raised by the load generator: a realistic description of a few lines, as a grid worker types it " + strings.Repeat("…", 40),
		"location":    map[string]any{"address": "load generator road " + strconv.FormatInt(n, 10), "lat": 25.43, "lon": 119.0},
	})
	recording := r.recording.Load()
	if recording {
		r.sent.Store(title, due)
	}
	var ans struct {
		Position uint64 `json:"position"`
	}
	st, err := r.w.do(ctx, r.client, "POST", "/v1/whistles", "street:"+p[0], body, &ans)
	if ctx.Err() != nil || err != nil || st != http.StatusCreated {
		// Cut short at the end of a phase, or failed: not a delivery to wait for.
		r.sent.Delete(title)
	}
	if ctx.Err() != nil {
		return
	}
	if err != nil || st != http.StatusCreated {
		r.raiseErrs.Add(1)
		r.lastErr.Store(fmt.Sprintf("raise: %d %v", st, err))
		return
	}
	if recording && r.recording.Load() {
		r.raiseLat.Load().add(time.Since(due))
		r.raises.Add(1)
		if n%20 == 0 && ans.Position > 0 && !r.noProject.Load() {
			go r.probeProjection(ctx, "street:"+p[0], ans.Position, time.Now(), r.projLag.Load())
		}
	}
}

// follow keeps the assignee's queue stream open: each new lead or assist
// assignment is timed from its raise and queued to be reported in.
func (r *run) follow(ctx context.Context, assignee string, synced chan<- struct{}) {
	once := sync.OnceFunc(func() { synced <- struct{}{} })
	for ctx.Err() == nil {
		err := r.followOnce(ctx, assignee, once)
		if ctx.Err() != nil {
			return
		}
		r.log.Warn("queue stream ended; reconnecting", zap.String("assignee", assignee), zap.Error(err))
		time.Sleep(200 * time.Millisecond)
	}
}

func (r *run) followOnce(ctx context.Context, assignee string, synced func()) error {
	req, err := http.NewRequestWithContext(ctx, "GET", r.w.url+"/v1/queues/"+assignee, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+r.w.tokens["department:"+assignee])
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET /v1/queues/%s: %d", assignee, resp.StatusCode)
	}
	return sse.Read(resp.Body, func(ev sse.Event) error {
		switch ev.Name {
		case "synced":
			synced()
		case "change":
			r.change(assignee, []byte(ev.Data))
		}
		return nil
	})
}

func (r *run) change(assignee string, data []byte) {
	now := time.Now()
	var m struct {
		Change     string `json:"change"`
		CaseID     string `json:"case_id"`
		Title      string `json:"title"`
		Assignment *struct {
			Role   string `json:"role"`
			Status string `json:"status"`
		} `json:"assignment"`
	}
	if json.Unmarshal(data, &m) != nil || m.Change != "made" || m.Assignment == nil || m.Assignment.Status != "assigned" {
		return
	}
	if m.Assignment.Role == "lead" {
		if due, ok := r.sent.LoadAndDelete(m.Title); ok {
			r.delivery.Load().add(now.Sub(due.(time.Time)))
		}
	}
	select {
	case r.reportQ <- reportJob{caseID: m.CaseID, assignee: assignee}:
	default: // the queue is a million deep: the service is far behind; drop
	}
}

// reporter reports in the assignments the streams delivered.
func (r *run) reporter(ctx context.Context) {
	body := []byte(`{"note":"on our way"}`)
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-r.reportQ:
			st, err := r.w.do(ctx, r.client, "POST", "/v1/cases/"+j.caseID+"/report", "department:"+j.assignee, body, nil)
			if ctx.Err() != nil {
				return
			}
			if err != nil || st != 200 {
				r.reportErr.Add(1)
				r.lastErr.Store(fmt.Sprintf("report: %d %v", st, err))
				continue
			}
			r.reports.Add(1)
		}
	}
}

// probeProjection asks the read models for the cases at the raise's log
// position; the query waits until they have folded it.
func (r *run) probeProjection(ctx context.Context, principal string, pos uint64, acked time.Time, into *latencies) {
	st, err := r.w.do(ctx, r.client, "GET", "/v1/cases?limit=1&position="+strconv.FormatUint(pos, 10), principal, nil, nil)
	switch {
	case ctx.Err() != nil:
	case err == nil && st == http.StatusOK:
		into.add(time.Since(acked))
	case st == http.StatusNotFound || st == http.StatusBadRequest:
		r.noProject.Store(true)
	default:
		r.lastErr.Store(fmt.Sprintf("GET /v1/cases?position=: %d %v", st, err))
	}
}

// awaitDeliveries waits until every raise of the window was delivered to its
// lead, or until limit; each one still missing is then counted with the time
// it has waited so far (a lower bound), and their number is returned.
func (r *run) awaitDeliveries(ctx context.Context, limit time.Duration) int {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		pending := 0
		r.sent.Range(func(_, _ any) bool { pending++; return pending == 1 })
		if pending == 0 {
			return 0
		}
		time.Sleep(50 * time.Millisecond)
	}
	missing := 0
	now := time.Now()
	r.sent.Range(func(k, due any) bool {
		if _, ok := r.sent.LoadAndDelete(k); ok {
			r.delivery.Load().add(now.Sub(due.(time.Time)))
			missing++
		}
		return true
	})
	return missing
}

// metricsSample reads gauges of whistled's /metrics.
func (r *run) metricsSample(ctx context.Context, names ...string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", r.w.url+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET /metrics: %d", resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, n := range names {
			if strings.HasPrefix(line, n) {
				f := strings.Fields(line)
				if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
					out[f[0]] = v
				}
			}
		}
	}
	return out, sc.Err()
}
