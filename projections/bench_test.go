package projections

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/whistle-gov/whistle/domain"
)

// yearWorld raises perDay cases on each of 365 days and drives most of them
// to closure and a rating, so every dimension has a year of day buckets.
func yearWorld(tb testing.TB, perDay int) *world {
	w := newWorld(tb, 99)
	r := rand.New(rand.NewPCG(99, 1))
	type place struct{ street, community string }
	places := []place{{"longqiao", "wanhui"}, {"longqiao", "xiazhu"}, {"donghai", "dongyuan"}}
	categories := []string{"river-pollution", "manhole-cover", "neighbour-dispute", "rent-dispute", "after-school-care"}
	ratings := domain.Ratings()
	for day := range 365 {
		for k := range perDay {
			w.now = t0.Add(time.Duration(day)*24*time.Hour + time.Duration(k)*time.Hour/time.Duration(perDay))
			p := places[r.IntN(len(places))]
			id := w.raise(p.street, p.community, categories[r.IntN(len(categories))], domain.Urgencies()[r.IntN(3)])
			c := w.cases[id]
			w.advance(time.Duration(1+r.IntN(50)) * time.Minute)
			if c.Kind == domain.KindNeed {
				w.must(id, domain.Claim{Assignee: c.Assignments[r.IntN(len(c.Assignments))].Assignee})
			} else {
				for _, a := range c.Assignments {
					w.must(id, domain.Report{Assignee: a.Assignee})
				}
			}
			if r.IntN(10) == 0 {
				continue // stays open
			}
			w.advance(time.Duration(1+r.IntN(80)) * time.Hour)
			for _, a := range c.Assignments {
				if a.Role == domain.RoleLead && a.Status == domain.Reported {
					m := ""
					if c.Kind == domain.KindDispute {
						m = "success"
					}
					w.must(id, domain.Resolve{Assignee: a.Assignee, Mediation: m})
				}
			}
			w.must(id, domain.Verify{Accepted: true})
			if r.IntN(4) != 0 {
				w.must(id, domain.Rate{Rating: string(ratings[r.IntN(len(ratings))])})
			}
		}
	}
	return w
}

var (
	yearOnce  sync.Once
	yearLog   *world
	yearStats *Stats
)

func yearFixture(b *testing.B) (*world, *Stats) {
	yearOnce.Do(func() {
		yearLog = yearWorld(b, 20)
		yearStats = statsOf(b, yearLog)
	})
	return yearLog, yearStats
}

// BenchmarkStatsApply is the cost of folding one event (decoding its data
// included), over a year's log.
func BenchmarkStatsApply(b *testing.B) {
	w, _ := yearFixture(b)
	envs := w.envelopes()
	s := newStats(b)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if i == len(envs) {
			b.StopTimer()
			s, i = newStats(b), 0
			b.StartTimer()
		}
		if err := applyOne(s, envs[i]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkQueryYear is a query over a year of day buckets, per group_by.
func BenchmarkQueryYear(b *testing.B) {
	_, s := yearFixture(b)
	from, to := t0, t0.Add(365*24*time.Hour)
	for _, g := range GroupBys() {
		b.Run(g, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				res, err := s.Query(g, from, to, nil)
				if err != nil || len(res.Groups) == 0 {
					b.Fatal(err, len(res.Groups))
				}
			}
		})
	}
	// A street's own figures, from the breakdowns within a street.
	for _, g := range StreetGroupBys() {
		b.Run("street-"+g, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				res, err := s.QueryStreet("longqiao", g, from, to)
				if err != nil || len(res.Groups) == 0 {
					b.Fatal(err, len(res.Groups))
				}
			}
		})
	}
	// For scale: the same query over one day.
	b.Run("street-one-day", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Query("street", from.Add(100*24*time.Hour), from.Add(101*24*time.Hour), nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkStatsSnapshot is the cost of saving and restoring a year.
func BenchmarkStatsSnapshot(b *testing.B) {
	_, s := yearFixture(b)
	data, _ := s.MarshalBinary()
	for b.Loop() {
		d, err := s.MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		if err := newStats(b).UnmarshalBinary(d); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(data)), "bytes/snapshot")
}

// BenchmarkBoardList is a filtered page of a year's cases.
func BenchmarkBoardList(b *testing.B) {
	w, _ := yearFixture(b)
	board := boardOf(b, w)
	yes := true
	for b.Loop() {
		if _, _, err := board.List(ListQuery{Street: "donghai", Overdue: &yes, Limit: 50}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBoardOpenCaseMemory is the live heap an open case costs the
// board (and its queues): n cases raised and left open, as
// scripts/bench.sh --grow raises them, each with a lead and an assist.
func BenchmarkBoardOpenCaseMemory(b *testing.B) {
	const n = 20000
	w := newWorld(b, 11)
	for i := range n {
		w.now = t0.Add(time.Duration(i) * time.Second)
		w.raise("longqiao", "wanhui", "river-pollution", domain.UrgencyRoutine)
	}
	var board *Board
	for b.Loop() {
		var before, after runtime.MemStats
		board = nil
		runtime.GC()
		runtime.ReadMemStats(&before)
		board = boardOf(b, w)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-bytes/open-case")
	}
	runtime.KeepAlive(board)
}
