package readmodel

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/whistle-gov/whistle/adapters/config"
	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/domain"
)

// headStore is a store whose log ends at head; Open asks it nothing else.
type headStore struct {
	eventstore.Store
	head eventstore.Position
}

func (s headStore) Head(context.Context) (eventstore.Position, error) { return s.head, nil }

// openCaseLog is a log of n whistles raised as the load generator of
// scripts/bench.sh --grow raises them (issues and disputes of the sample
// directory, all routine, a title, a description of a few lines and an
// address), spread over 30 days, none reported in: every case stays open.
// Each raise is one commit (WhistleRaised and its AssignmentMade events).
func openCaseLog(tb testing.TB, n int) (*domain.Directory, []Commit) {
	return caseLog(tb, n, false)
}

// caseLog is openCaseLog, and with lives each case also goes on, by chance:
// reported in by its assignees, checked for deadlines (some overdue and
// escalated), resolved, rejected once, verified and rated; some stay open
// at each step, some closed cases are not rated.
func caseLog(tb testing.TB, n int, lives bool) (*domain.Directory, []Commit) {
	tb.Helper()
	dir, err := config.SampleDirectory()
	if err != nil {
		tb.Fatal(err)
	}
	type place struct{ street, community string }
	var places []place
	for _, s := range dir.Streets {
		for _, c := range s.Communities {
			places = append(places, place{s.ID, c.ID})
		}
	}
	var categories []string
	for _, c := range dir.Categories {
		if c.Kind != domain.KindNeed && c.Lead != "" {
			categories = append(categories, c.ID)
		}
	}
	rng := rand.New(rand.NewPCG(7, uint64(n)))
	lat, lon := 25.43, 119.0
	start := time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC)
	step := 30 * 24 * time.Hour / time.Duration(n)
	commits := make([]Commit, 0, n)
	do := func(c *domain.Case, actor domain.Actor, cmd domain.Command, now time.Time) {
		events, err := domain.Decide(c, cmd, dir, now)
		if err != nil {
			tb.Fatalf("%s on %s: %v", cmd.CommandName(), c.ID, err)
		}
		if len(events) == 0 {
			return
		}
		envs, err := domain.Seal(c, domain.CommandMeta{CommandID: "cmd-" + strconv.Itoa(len(commits)), Actor: actor, Now: now}, events)
		if err != nil {
			tb.Fatal(err)
		}
		for _, env := range envs {
			e, err := domain.DecodeEvent(env.Type, env.Data)
			if err != nil {
				tb.Fatal(err)
			}
			c.Apply(env, e)
		}
		commits = append(commits, Commit{Position: uint64(len(commits) + 1), Stream: "case-" + c.ID, Events: envs})
	}
	assignee := func(id string) domain.Actor {
		if dir.IsUnit(id) {
			return domain.Actor{Role: domain.ActorUnit, ID: id}
		}
		return domain.Actor{Role: domain.ActorDepartment, ID: id}
	}
	for i := range n {
		now := start.Add(time.Duration(i) * step)
		p := places[rng.IntN(len(places))]
		id := fmt.Sprintf("%08x-0000-4000-8000-%012x", rng.Uint32(), i)
		urgency := "routine"
		if lives && rng.IntN(4) == 0 {
			urgency = "urgent"
		}
		c := domain.NewCase(id)
		street := domain.Actor{Role: domain.ActorStreet, ID: p.street}
		do(c, street, domain.Raise{
			Street: p.street, Community: p.community, Category: categories[rng.IntN(len(categories))], Urgency: urgency,
			Title:       "bench " + strconv.FormatInt(int64(i), 36),
			Description: "raised by the load generator: a realistic description of a few lines, as a grid worker types it " + strings.Repeat("…", 40),
			Location:    &domain.Location{Address: "load generator road " + strconv.Itoa(i), Lat: &lat, Lon: &lon},
		}, now)
		if !lives {
			continue
		}
		if rng.IntN(8) == 0 { // nobody reports in: overdue, escalated
			do(c, domain.Actor{Role: domain.ActorSystem, ID: "sla-watcher"}, domain.CheckDeadlines{}, now.Add(3*time.Hour))
			continue
		}
		if rng.IntN(5) == 0 {
			continue
		}
		now = now.Add(time.Duration(1+rng.IntN(40)) * time.Minute)
		for _, a := range c.Assignments {
			if a.Status == domain.Assigned && (a.Role == domain.RoleLead || a.Role == domain.RoleAssist) {
				do(c, assignee(a.Assignee), domain.Report{Assignee: a.Assignee}, now)
			}
		}
		if rng.IntN(4) == 0 {
			continue
		}
		resolve := func() {
			now = now.Add(time.Duration(1+rng.IntN(60)) * time.Hour)
			for _, a := range c.Assignments {
				if a.Role == domain.RoleLead && a.Status == domain.Reported {
					m := ""
					if c.Kind == domain.KindDispute {
						m = "success"
					}
					do(c, assignee(a.Assignee), domain.Resolve{Assignee: a.Assignee, Mediation: m}, now)
				}
			}
		}
		resolve()
		if rng.IntN(6) == 0 {
			do(c, street, domain.Verify{Accepted: false, Note: "still there"}, now.Add(time.Hour))
			resolve()
		}
		do(c, street, domain.Verify{Accepted: true}, now.Add(2*time.Hour))
		if rng.IntN(3) != 0 {
			do(c, street, domain.Rate{Rating: string(domain.Ratings()[rng.IntN(3)])}, now.Add(3*time.Hour))
		}
	}
	return dir, commits
}

var (
	openModelsMu sync.Mutex
	openModels   = map[int]*Models{}
	openDirs     = map[int]*domain.Directory{}
)

// openCaseModels are the read models folded from openCaseLog(n), built once
// per n.
func openCaseModels(b *testing.B, n int) (*domain.Directory, *Models) {
	openModelsMu.Lock()
	defer openModelsMu.Unlock()
	if m := openModels[n]; m != nil {
		return openDirs[n], m
	}
	dir, log := openCaseLog(b, n)
	m, err := NewModels(dir)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range log {
		if err := m.ApplyCommit(c); err != nil {
			b.Fatal(err)
		}
	}
	openModels[n], openDirs[n] = m, dir
	return dir, m
}

// heapSampler follows the bytes of heap objects (live and not yet swept)
// every half millisecond, for the peak over a baseline.
type heapSampler struct {
	stop chan struct{}
	done chan struct{}
	peak atomic.Uint64
}

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func sampleHeap() *heapSampler {
	h := &heapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	h.peak.Store(heapObjects())
	go func() {
		defer close(h.done)
		t := time.NewTicker(500 * time.Microsecond)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-t.C:
				if v := heapObjects(); v > h.peak.Load() {
					h.peak.Store(v)
				}
			}
		}
	}()
	return h
}

func (h *heapSampler) end() uint64 {
	close(h.stop)
	<-h.done
	if v := heapObjects(); v > h.peak.Load() {
		h.peak.Store(v)
	}
	return h.peak.Load()
}

// contender takes and releases applyMu as the fold does for every commit,
// every 200 µs, and keeps the longest wait: how long a save stops the fold.
type contender struct {
	stop    chan struct{}
	done    chan struct{}
	longest time.Duration
}

func contend(r *Runner) *contender {
	c := &contender{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			select {
			case <-c.stop:
				return
			default:
			}
			t := time.Now()
			r.applyMu.Lock()
			r.applyMu.Unlock()
			c.longest = max(c.longest, time.Since(t))
			time.Sleep(200 * time.Microsecond)
		}
	}()
	return c
}

func (c *contender) end() time.Duration {
	close(c.stop)
	<-c.done
	return c.longest
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkRunnerSnapshot is the cost of the read models' snapshot file at
// 10,000 and 100,000 open cases: save (Runner.Save: encode, write, fsync,
// rename) and restore (Open reading it back). Besides time and allocations
// it reports, as medians over the iterations: peak-MB, the peak of the
// heap's objects during the operation over what they were before it (the
// models themselves excluded for save; included for restore, which builds
// them); pause-ms, the longest a goroutine taking applyMu as the fold does
// waited during a save; file-MB, the snapshot's size.
func BenchmarkRunnerSnapshot(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("open=%d", n), func(b *testing.B) {
			dir, m := openCaseModels(b, n)
			folder := b.TempDir()
			cfg := Config{Store: headStore{head: eventstore.Position(m.Position())}, Directory: dir, Dir: folder}
			r, err := Open(context.Background(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			r.models = m
			b.Run("save", func(b *testing.B) {
				var peaks, pauses []float64
				b.ReportAllocs()
				for b.Loop() {
					b.StopTimer()
					runtime.GC()
					r.saved = 0
					c := contend(r)
					h := sampleHeap()
					base := h.peak.Load()
					b.StartTimer()
					if err := r.Save(); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					peaks = append(peaks, float64(h.end()-base)/(1<<20))
					pauses = append(pauses, float64(c.end())/float64(time.Millisecond))
					b.StartTimer()
				}
				st, err := os.Stat(filepath.Join(folder, SnapshotFile))
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(median(peaks), "peak-MB")
				b.ReportMetric(median(pauses), "pause-ms")
				b.ReportMetric(float64(st.Size())/(1<<20), "file-MB")
			})
			b.Run("restore", func(b *testing.B) {
				var peaks []float64
				b.ReportAllocs()
				for b.Loop() {
					b.StopTimer()
					runtime.GC()
					h := sampleHeap()
					base := h.peak.Load()
					b.StartTimer()
					r2, err := Open(context.Background(), cfg)
					if err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					peaks = append(peaks, float64(h.end()-base)/(1<<20))
					if r2.Position() != m.Position() || r2.Board().Len() != n {
						b.Fatalf("restored at %d with %d cases, want %d and %d", r2.Position(), r2.Board().Len(), m.Position(), n)
					}
					b.StartTimer()
				}
				b.ReportMetric(median(peaks), "peak-MB")
			})
		})
	}
}
