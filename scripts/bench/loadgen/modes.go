package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/whistle-gov/whistle/adapters/casehandler"
	"github.com/whistle-gov/whistle/adapters/config"
	"github.com/whistle-gov/whistle/adapters/eventstore/jetstream"
	"github.com/whistle-gov/whistle/adapters/natsbus"
	"github.com/whistle-gov/whistle/domain"
)

// growMode raises cases that stay open and, at each count of -grow, lets the
// service settle and reads its memory: what an open case costs, and whether
// raising gets slower as they pile up.
func growMode(ctx context.Context, o options, log *zap.Logger) error {
	if o.whistled == "" {
		return errors.New("-whistled: the path of the whistled binary is required")
	}
	data, cleanup, err := tempDir(o, log, "whistle-grow-")
	if err != nil {
		return err
	}
	defer cleanup()
	// --pprof: the memory readings force a collection first (GET
	// /debug/pprof/heap?gc=1), so that the heap figure is what is live.
	w, err := startWhistled(ctx, log, o.whistled, data, "--fsync", o.fsync, "--pprof")
	if err != nil {
		return err
	}
	defer func() { _ = w.stop() }()
	wd, err := loadWorld(ctx, w, newClient(8))
	if err != nil {
		return err
	}
	r := newRun(w, wd, o.concurrency, log)
	base, err := memory(ctx, r, "")
	if err != nil {
		return err
	}
	fmt.Printf("machine: %s\n", machine())
	fmt.Printf("grow: fsync=%s, %d street clients, no department clients (nothing reported in: every case stays open); start RSS %.1f MiB, live Go heap %.1f MiB\n", o.fsync, o.concurrency, base.rss/(1<<20), base.heap/(1<<20))
	for _, target := range o.grow {
		r.resetRecording()
		r.recording.Store(true)
		start := time.Now()
		var wg sync.WaitGroup
		for i := range o.concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(i), uint64(target)))
				for ctx.Err() == nil && r.seq.Load() < int64(target) {
					r.raise(ctx, rng, time.Now())
				}
			}()
		}
		wg.Wait()
		r.recording.Store(false)
		elapsed := time.Since(start)
		if err := ctx.Err(); err != nil {
			return err
		}
		if errs := r.raiseErrs.Load(); errs > 0 {
			return fmt.Errorf("%d raises failed; last: %v", errs, r.lastErr.Load())
		}
		settle(ctx, r, o.settle, log)
		sleep(ctx, 2*time.Second) // let the followers' batches and the GC settle
		heapFile := ""
		if o.profile != "" {
			heapFile = filepath.Join(o.profile, fmt.Sprintf("heap-%d.pprof", target))
		}
		m, err := memory(ctx, r, heapFile)
		if err != nil {
			return err
		}
		n := float64(r.seq.Load())
		fmt.Printf("open cases %d: RSS %.1f MiB (%.0f bytes/case over start), live Go heap %.1f MiB (%.0f bytes/case over start); last %.0f raised at %.0f whistles/s, raise %s\n",
			int(n), m.rss/(1<<20), (m.rss-base.rss)/n, m.heap/(1<<20), (m.heap-base.heap)/n,
			float64(r.raises.Load()), float64(r.raises.Load())/elapsed.Seconds(), r.raiseLat.Load())
	}
	return nil
}

type mem struct{ rss, heap float64 }

// memory reads whistled's RSS and, after a forced collection, its live heap
// (heap in use); the heap profile taken to force it is saved in file, if
// named.
func memory(ctx context.Context, r *run, file string) (mem, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", r.w.url+"/debug/pprof/heap?gc=1", nil)
	if err != nil {
		return mem{}, err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return mem{}, err
	}
	prof, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		return mem{}, fmt.Errorf("GET /debug/pprof/heap: %d %v", resp.StatusCode, err)
	}
	if file != "" {
		if err := os.WriteFile(file, prof, 0o644); err != nil {
			return mem{}, err
		}
	}
	rss, err := procStatus(r.w.pid(), "VmRSS")
	if err != nil {
		return mem{}, err
	}
	m, err := r.metricsSample(ctx, "go_memstats_heap_inuse_bytes")
	if err != nil {
		return mem{}, err
	}
	return mem{rss: float64(rss) * 1024, heap: m["go_memstats_heap_inuse_bytes"]}, nil
}

// replayMode writes a log of o.events events through the command handler
// (whole case lives: raise, report-ins, resolution, verification, rating)
// into an embedded store, stops the server, and replays the log from disk.
func replayMode(ctx context.Context, o options, log *zap.Logger) error {
	if o.replayData != "" {
		if o.profile != "" {
			stop, err := cpuProfile(filepath.Join(o.profile, "cpu-replay.pprof"))
			if err != nil {
				return err
			}
			defer stop()
		}
		rep, err := replayDir(ctx, o.replayData, log)
		if err != nil {
			return err
		}
		fmt.Printf("machine: %s\n", machine())
		fmt.Printf("replay: log of %d events in %d commits in %s; replayed from disk in %s: %.0f events/s read+decode+fold, fold alone %.0f events/s\n",
			rep.events, rep.commits, o.replayData, rep.total.Round(time.Millisecond), rep.eventsPerS(), rep.foldEventsPerS())
		return nil
	}
	dir, cleanup, err := tempDir(o, log, "whistle-replay-")
	if err != nil {
		return err
	}
	defer cleanup()
	written, took, err := writeLog(ctx, dir, o, logShape{}, log)
	if err != nil {
		return err
	}
	log.Info("log written", zap.Int64("events", written), zap.Duration("took", took))
	rep, err := replayDir(ctx, dir, log)
	if err != nil {
		return err
	}
	fmt.Printf("machine: %s\n", machine())
	fmt.Printf("replay: log of %d events in %d commits (written in %s at %.0f events/s, fsync=%s); replayed from disk in %s: %.0f events/s read+decode+fold, fold alone %.0f events/s\n",
		rep.events, rep.commits, took.Round(time.Second), float64(written)/took.Seconds(), o.fsync, rep.total.Round(time.Millisecond), rep.eventsPerS(), rep.foldEventsPerS())
	return nil
}

// logShape is what writeLog writes besides whole case lives at the time of
// writing.
type logShape struct {
	// openEvery: every openEvery-th case is raised and reported in, and
	// stays open (0: none).
	openEvery int
	// span: the closed cases are spread over this much time before now, a
	// case's commands a moment apart (0: every case lives now). The open
	// ones live now, so that their deadlines are still ahead.
	span time.Duration
}

func writeLog(ctx context.Context, data string, o options, shape logShape, log *zap.Logger) (int64, time.Duration, error) {
	dir, err := config.SampleDirectory()
	if err != nil {
		return 0, 0, err
	}
	ns, err := natsbus.StartEmbedded(natsbus.EmbeddedOptions{StoreDir: data + "/jetstream", SyncAlways: o.fsync == "always"})
	if err != nil {
		return 0, 0, err
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	nc, err := natsbus.Connect(ctx, natsbus.ConnectConfig{Server: ns})
	if err != nil {
		return 0, 0, err
	}
	defer nc.Close()
	store, err := jetstream.Open(ctx, nc, jetstream.Config{})
	if err != nil {
		return 0, 0, err
	}
	defer store.Close()

	var places [][2]string
	for _, s := range dir.Streets {
		for _, c := range s.Communities {
			places = append(places, [2]string{s.ID, c.ID})
		}
	}
	var cats []domain.Category
	for _, c := range dir.Categories {
		if c.Kind != domain.KindNeed {
			cats = append(cats, c)
		}
	}
	var events, cases atomic.Int64
	start := time.Now()
	// About 9 events per case life: the closed cases' raises step through
	// the span.
	step := shape.span / time.Duration(max(1, o.events/9))
	lastLog := atomic.Int64{}
	var wg sync.WaitGroup
	errc := make(chan error, o.concurrency)
	for i := range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 3))
			// One handler per writer, whose clock is the case's: a case is
			// written by one writer.
			var at time.Time
			h := casehandler.New(store, dir, func() time.Time {
				at = at.Add(time.Millisecond)
				return at
			}, log.Named("handler"))
			for ctx.Err() == nil && events.Load() < int64(o.events) {
				k := cases.Add(1)
				open := shape.openEvery > 0 && k%int64(shape.openEvery) == 0
				at = time.Now()
				if !open && shape.span > 0 {
					at = start.Add(-shape.span + time.Duration(k)*step)
				}
				n, err := caseLife(ctx, h, places[rng.IntN(len(places))], cats[rng.IntN(len(cats))], open)
				if err != nil {
					errc <- err
					return
				}
				if total := events.Add(int64(n)); total/100_000 > lastLog.Load() {
					lastLog.Store(total / 100_000)
					log.Info("writing the log", zap.Int64("events", total), zap.Float64("events_per_s", math.Round(float64(total)/time.Since(start).Seconds())))
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return 0, 0, err
	}
	return events.Load(), time.Since(start), ctx.Err()
}

// caseLife runs one case from raise to rating (or, open, to its report-ins)
// and returns the events it appended.
func caseLife(ctx context.Context, h *casehandler.Handler, place [2]string, cat domain.Category, open bool) (int, error) {
	id := uuid.Must(uuid.NewV7()).String()
	street := domain.Actor{Role: domain.ActorStreet, ID: place[0]}
	n := 0
	exec := func(actor domain.Actor, cmd domain.Command, isNew bool) (*domain.Case, error) {
		res, err := h.Execute(ctx, casehandler.Request{CaseID: id, CommandID: uuid.NewString(), Actor: actor, Command: cmd, New: isNew})
		if err != nil {
			return nil, fmt.Errorf("%s on case %s: %w", cmd.CommandName(), id, err)
		}
		n += len(res.Events)
		return res.Case, nil
	}
	c, err := exec(street, domain.Raise{Street: place[0], Community: place[1], Category: cat.ID, Urgency: "routine",
		Title: "replay fixture", Description: "a case lived from raise to rating"}, true)
	if err != nil {
		return n, err
	}
	// The case is the handler's cached state: copy what is needed of it.
	type asg struct {
		assignee string
		role     domain.Role
	}
	var assignments []asg
	for _, a := range c.Assignments {
		assignments = append(assignments, asg{a.Assignee, a.Role})
	}
	for _, a := range assignments {
		if _, err := exec(domain.Actor{Role: domain.ActorDepartment, ID: a.assignee}, domain.Report{Assignee: a.assignee}, false); err != nil {
			return n, err
		}
	}
	if open {
		return n, nil
	}
	for _, a := range assignments {
		if a.role != domain.RoleLead {
			continue
		}
		m := ""
		if cat.Kind == domain.KindDispute {
			m = "success"
		}
		if _, err := exec(domain.Actor{Role: domain.ActorDepartment, ID: a.assignee}, domain.Resolve{Assignee: a.assignee, Mediation: m}, false); err != nil {
			return n, err
		}
	}
	if _, err := exec(street, domain.Verify{Accepted: true}, false); err != nil {
		return n, err
	}
	if _, err := exec(street, domain.Rate{Rating: "satisfied"}, false); err != nil {
		return n, err
	}
	return n, nil
}

// cpuProfile profiles this process into path until stop is called.
func cpuProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
