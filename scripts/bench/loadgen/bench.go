package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// saturation is what the closed-loop phase measured.
type saturation struct {
	whistlesPerS  float64
	raise         *latencies
	delivery      *latencies
	errors        int64
	cpuPerWhistle time.Duration // whistled's CPU time per whistle raised
	undelivered   int
}

// fixedRate is what the open-loop phase measured.
type fixedRate struct {
	projLag     *latencies
	rate        float64
	achieved    float64
	raise       *latencies
	delivery    *latencies
	undelivered int
}

// lagStats are the lag gauges sampled during the load, in commits behind the
// log's head.
type lagStats struct {
	mu          sync.Mutex
	dispatch    []float64
	projections map[string][]float64 // by projection
}

func quantile99(v []float64) (p99, maxv float64) {
	if len(v) == 0 {
		return math.NaN(), math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[max(0, int(math.Ceil(0.99*float64(len(s))))-1)], s[len(s)-1]
}

func (l *lagStats) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	names := slices.Sorted(maps.Keys(l.projections))
	for _, n := range names {
		p99, mx := quantile99(l.projections[n])
		fmt.Fprintf(&b, "projection %s p99=%.0f max=%.0f; ", n, p99, mx)
	}
	p99, mx := quantile99(l.dispatch)
	fmt.Fprintf(&b, "dispatch p99=%.0f max=%.0f", p99, mx)
	return b.String()
}

func benchMode(ctx context.Context, o options, log *zap.Logger) error {
	if o.whistled == "" {
		return errors.New("-whistled: the path of the whistled binary is required")
	}
	data, cleanup, err := tempDir(o, log, "whistle-bench-")
	if err != nil {
		return err
	}
	defer cleanup()
	args := []string{"--fsync", o.fsync}
	if o.profile != "" {
		args = append(args, "--pprof")
	}
	w, err := startWhistled(ctx, log, o.whistled, data, args...)
	if err != nil {
		return err
	}
	defer func() {
		select {
		case <-w.exited:
		default:
			w.kill()
		}
	}()
	rssStart, _ := procStatus(w.pid(), "VmRSS")

	r, stopRun, err := startRun(ctx, w, o, log)
	if err != nil {
		return err
	}
	lags := &lagStats{projections: map[string][]float64{}}
	sampleCtx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	var sampling sync.WaitGroup
	sampling.Add(1)
	go func() { defer sampling.Done(); sampleLag(sampleCtx, r, lags) }()

	var profiling sync.WaitGroup
	if o.profile != "" {
		profiling.Add(1)
		go func() {
			defer profiling.Done()
			sleep(ctx, o.warmup)
			secs := max(1, int(o.duration.Seconds())-1)
			saveProfile(ctx, r, fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), filepath.Join(o.profile, "cpu-saturation.pprof"), log)
		}()
	}
	sat, err := saturate(ctx, r, o, log)
	profiling.Wait()
	if err != nil {
		stopRun()
		return err
	}
	fr, err := fixed(ctx, r, o, sat.whistlesPerS, log)
	if err != nil {
		stopRun()
		return err
	}
	stopSampling()
	sampling.Wait()
	settle(ctx, r, o.settle, log)
	stopRun()

	units, _ := r.metricsSample(ctx, "whistle_append_batch_commits_sum", "whistle_append_batch_commits_count")
	if o.profile != "" {
		saveProfile(ctx, r, "/debug/pprof/heap", filepath.Join(o.profile, "heap.pprof"), log)
	}
	cases := r.seq.Load()
	rssEnd, _ := procStatus(w.pid(), "VmRSS")
	hwm, _ := procStatus(w.pid(), "VmHWM")
	reports, reportErrs := r.reports.Load(), r.reportErr.Load()
	if err := w.stop(); err != nil {
		return err
	}

	rep, err := replayDir(ctx, data, log)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}

	var gcOther *saturation
	if o.compareGC {
		if gcOther, err = saturationOnly(ctx, o, log, "--group-commit="+otherGC(o)); err != nil {
			return fmt.Errorf("group commit %s: %w", otherGC(o), err)
		}
	}

	size := rep.raiseCommitBytes
	raw, err := rawBaseline(ctx, o, size, log)
	if err != nil {
		return fmt.Errorf("raw baseline: %w", err)
	}
	var peer *appendResult
	if o.peerDSN != "" {
		if peer, err = peerBaseline(ctx, o, size, log); err != nil {
			return fmt.Errorf("peer: %w", err)
		}
	}

	perCase := float64(rssEnd-rssStart) * 1024 / float64(max(cases, 1))
	_, dp99, _ := fr.delivery.quantiles()

	fmt.Printf("machine: %s\n", machine())
	fmt.Printf("whistled: fsync=%s, %d street clients, %d department streams, saturation %s after %s warm-up, fixed rate %s\n",
		o.fsync, o.concurrency, len(r.world.assignees), o.duration, o.warmup, o.rateDur)
	fmt.Printf("saturation: %.0f whistles/s sustained (%d raise errors), whistled CPU %s per whistle; raise %s\n", sat.whistlesPerS, sat.errors, sat.cpuPerWhistle.Round(10*time.Microsecond), sat.raise)
	fmt.Printf("saturation: raise→department delivery %s%s\n", sat.delivery, undelivered(sat.undelivered, o.settle/2))
	fmt.Printf("fixed rate %.0f/s (achieved %.0f/s): raise %s\n", fr.rate, fr.achieved, fr.raise)
	fmt.Printf("fixed rate %.0f/s: raise→department delivery %s%s\n", fr.rate, fr.delivery, undelivered(fr.undelivered, o.settle))
	fmt.Printf("report-ins: %d answered, %d failed\n", reports, reportErrs)
	if c := units["whistle_append_batch_commits_count"]; c > 0 {
		fmt.Printf("group commit: %.0f commits in %.0f units, %.1f commits per unit on average\n",
			units["whistle_append_batch_commits_sum"], c, units["whistle_append_batch_commits_sum"]/c)
	}
	if fr.projLag.count() > 0 {
		fmt.Printf("fixed rate %.0f/s: projection lag (raise answered → GET /v1/cases?position= answered) %s\n", fr.rate, fr.projLag)
	}
	fmt.Printf("lag during load (commits behind the log, sampled every 250ms): %s\n", lags)
	fmt.Printf("replay of the run's log (%d commits, %d events): %.0f events/s read+decode+fold (fold alone %.0f events/s)\n",
		rep.commits, rep.events, rep.eventsPerS(), rep.foldEventsPerS())
	fmt.Printf("memory: peak RSS %.0f MiB; %d open cases; RSS grew %.0f MiB from start: %.0f bytes per open case\n",
		float64(hwm)/1024, cases, float64(rssEnd-rssStart)/1024, perCase)
	fmt.Printf("raw JetStream single appends (expected last subject sequence, %d appenders, %d-byte messages, fsync=%s): %.0f/s, append %s\n",
		o.concurrency, size, o.fsync, raw.perS, raw.lat)
	if gcOther != nil {
		fmt.Printf("group commit: %s (whistled's default) %.0f whistles/s (raise p99 %s) vs %s %.0f whistles/s (raise p99 %s): %.2fx\n",
			defaultGC(o), sat.whistlesPerS, pq(sat.raise, 1), otherGC(o), gcOther.whistlesPerS, pq(gcOther.raise, 1), sat.whistlesPerS/gcOther.whistlesPerS)
	}
	if peer != nil {
		fmt.Printf("peer: PostgreSQL durable appends (synchronous_commit=on, unique (stream, version), %d connections, %d-byte rows): %.0f/s, append %s\n",
			o.concurrency, size, peer.perS, peer.lat)
		fmt.Printf("peer side by side: whistle %.0f whistles/s, raw JetStream %.0f appends/s, PostgreSQL %.0f appends/s\n",
			sat.whistlesPerS, raw.perS, peer.perS)
	}
	fmt.Printf("bench: whistles_per_s=%.0f raw_appends_per_s=%.0f ratio=%.2f dispatch_p99_ms=%s replay_events_per_s=%.0f rss_mb=%.0f fsync=%s cpu_ms_per_whistle=%.3f\n",
		sat.whistlesPerS, raw.perS, sat.whistlesPerS/raw.perS, msNum(dp99), rep.eventsPerS(), float64(hwm)/1024, o.fsync,
		float64(sat.cpuPerWhistle)/float64(time.Millisecond))
	return nil
}

func pq(l *latencies, which int) string {
	p50, p99, p999 := l.quantiles()
	return ms([]time.Duration{p50, p99, p999}[which])
}

// startRun opens every department's queue stream and starts the reporters.
func startRun(ctx context.Context, w *whistled, o options, log *zap.Logger) (*run, func(), error) {
	client := newClient(8)
	wd, err := loadWorld(ctx, w, client)
	if err != nil {
		return nil, nil, err
	}
	r := newRun(w, wd, o.concurrency, log)
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	synced := make(chan struct{}, len(wd.assignees))
	for _, a := range wd.assignees {
		wg.Add(1)
		go func() { defer wg.Done(); r.follow(runCtx, a, synced) }()
	}
	for range o.concurrency {
		wg.Add(1)
		go func() { defer wg.Done(); r.reporter(runCtx) }()
	}
	stop := func() { cancel(); wg.Wait() }
	timeout := time.After(15 * time.Second)
	for range wd.assignees {
		select {
		case <-synced:
		case <-timeout:
			stop()
			return nil, nil, errors.New("department queue streams not synced within 15s")
		}
	}
	return r, stop, nil
}

// saturate runs the street clients as fast as they are answered.
func saturate(ctx context.Context, r *run, o options, log *zap.Logger) (*saturation, error) {
	log.Info("saturation phase", zap.Int("street_clients", o.concurrency), zap.Duration("warmup", o.warmup), zap.Duration("duration", o.duration))
	phase, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for phase.Err() == nil {
				r.raise(phase, rng, time.Now())
			}
		}()
	}
	sleep(ctx, o.warmup)
	r.resetRecording()
	cpu0, _ := cpuTime(r.w.pid())
	r.recording.Store(true)
	start := time.Now()
	sleep(ctx, o.duration)
	r.recording.Store(false)
	elapsed := time.Since(start)
	cpu1, _ := cpuTime(r.w.pid())
	cancel()
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n := r.raises.Load()
	s := &saturation{whistlesPerS: float64(n) / elapsed.Seconds(), raise: r.raiseLat.Load(), delivery: r.delivery.Load(), errors: r.raiseErrs.Load()}
	if n > 0 {
		s.cpuPerWhistle = (cpu1 - cpu0) / time.Duration(n)
	}
	s.undelivered = r.awaitDeliveries(ctx, o.settle/2)
	if s.raise.count() == 0 {
		return nil, fmt.Errorf("no whistle raised in %s; last error: %v\n%s", o.duration, r.lastErr.Load(), r.w.stderr)
	}
	log.Info("saturation done", zap.Float64("whistles_per_s", math.Round(s.whistlesPerS)), zap.Stringer("raise", s.raise))
	return s, nil
}

// fixed raises at a fixed rate (open loop: each raise is due at its time
// whatever the answers to the earlier ones), to time delivery under a load
// the service sustains.
func fixed(ctx context.Context, r *run, o options, sustained float64, log *zap.Logger) (*fixedRate, error) {
	rate := min(o.rate, 0.8*sustained)
	log.Info("fixed-rate phase", zap.Float64("rate", math.Round(rate)), zap.Duration("duration", o.rateDur))
	// Let the saturation's backlog (report-ins, dispatch) drain first.
	settle(ctx, r, o.settle, log)
	r.resetRecording()
	phase, cancel := context.WithCancel(ctx)
	defer cancel()
	due := make(chan time.Time, 4096)
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 11))
			for t := range due {
				r.raise(phase, rng, t)
			}
		}()
	}
	r.recording.Store(true)
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	n := 0
	for next := start; time.Since(start) < o.rateDur && ctx.Err() == nil; next = next.Add(interval) {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		select {
		case due <- next:
			n++
		default: // 4096 raises queued in the client: the service is not keeping up
		}
	}
	close(due)
	wg.Wait()
	elapsed := time.Since(start)
	r.recording.Store(false)
	// Deliveries of the last raises are still on their way.
	missing := r.awaitDeliveries(ctx, o.settle)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fr := &fixedRate{rate: rate, achieved: float64(r.raises.Load()) / elapsed.Seconds(), raise: r.raiseLat.Load(), delivery: r.delivery.Load(), undelivered: missing, projLag: r.projLag.Load()}
	log.Info("fixed-rate done", zap.Stringer("raise", fr.raise), zap.Stringer("delivery", fr.delivery))
	return fr, nil
}

// settle waits (at most limit) until the report-ins queued are sent and the
// dispatcher has caught up with the log.
func settle(ctx context.Context, r *run, limit time.Duration, log *zap.Logger) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		m, err := r.metricsSample(ctx, "whistle_dispatch_lag_commits")
		if len(r.reportQ) == 0 && err == nil && m["whistle_dispatch_lag_commits"] == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	log.Warn("load did not settle", zap.Duration("waited", limit), zap.Int("reports_queued", len(r.reportQ)))
}

func sampleLag(ctx context.Context, r *run, l *lagStats) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m, err := r.metricsSample(ctx, "whistle_projection_lag_commits", "whistle_dispatch_lag_commits")
		if err != nil {
			continue
		}
		l.mu.Lock()
		for k, v := range m {
			if k == "whistle_dispatch_lag_commits" {
				l.dispatch = append(l.dispatch, v)
				continue
			}
			// whistle_projection_lag_commits{projection="queues"} → queues
			name := strings.TrimSuffix(strings.TrimPrefix(k, `whistle_projection_lag_commits{projection="`), `"}`)
			l.projections[name] = append(l.projections[name], v)
		}
		l.mu.Unlock()
	}
}

// saturationOnly runs the saturation phase on a fresh whistled started with
// extra flags.
func saturationOnly(ctx context.Context, o options, log *zap.Logger, args ...string) (*saturation, error) {
	data, cleanup, err := tempDir(o, log, "whistle-bench-")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	w, err := startWhistled(ctx, log, o.whistled, data, append([]string{"--fsync", o.fsync}, args...)...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = w.stop() }()
	r, stopRun, err := startRun(ctx, w, o, log)
	if err != nil {
		return nil, err
	}
	defer stopRun()
	return saturate(ctx, r, o, log)
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// saveProfile fetches one of whistled's profiles into file.
func saveProfile(ctx context.Context, r *run, path, file string, log *zap.Logger) {
	req, err := http.NewRequestWithContext(ctx, "GET", r.w.url+path, nil)
	if err == nil {
		var resp *http.Response
		if resp, err = http.DefaultClient.Do(req); err == nil {
			defer resp.Body.Close()
			var b []byte
			if b, err = io.ReadAll(resp.Body); err == nil && resp.StatusCode == 200 {
				err = os.WriteFile(file, b, 0o644)
			} else if err == nil {
				err = fmt.Errorf("%s: %d", path, resp.StatusCode)
			}
		}
	}
	if err != nil {
		log.Warn("profile not saved", zap.String("path", path), zap.Error(err))
		return
	}
	log.Info("profile saved", zap.String("file", file))
}

func undelivered(n int, waited time.Duration) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("; %d not delivered within %s, counted at the time waited", n, waited)
}

// cpuTime is the user and system CPU time a process has used
// (/proc/<pid>/stat, in clock ticks of 10ms).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces: fields count from after its ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// defaultGC is what whistled's --group-commit=auto resolves to on its
// embedded server, and otherGC the setting compared with it.
func defaultGC(o options) string {
	if o.fsync == "always" {
		return "on"
	}
	return "off"
}

func otherGC(o options) string {
	if defaultGC(o) == "on" {
		return "off"
	}
	return "on"
}
