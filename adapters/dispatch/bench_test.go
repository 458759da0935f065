package dispatch

import (
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/whistle-gov/whistle/adapters/casehandler"
	"github.com/whistle-gov/whistle/adapters/coretest"
	"github.com/whistle-gov/whistle/domain"
)

// BenchmarkRaiseToDispatch measures raise → delivery: from the call of the
// command handler that raises a whistle to the arrival of the lead's
// AssignmentMade on whistle.dispatch.<lead>, through the event store, the
// log subscription, the dispatcher and the dispatch stream. It reports the
// percentiles of that latency:
//
//	go test -run '^$' -bench RaiseToDispatch -benchtime 2000x ./adapters/dispatch
//
// "sequential" raises one whistle at a time (the latency of an idle
// service); "concurrent" keeps 8 raises in flight (latency under load).
// "fsync" runs the store as whistled does by default (--fsync always);
// "nofsync" as with --fsync interval.
func BenchmarkRaiseToDispatch(b *testing.B) {
	for _, bc := range []struct {
		name    string
		workers int
		fsync   bool
	}{{"sequential/fsync", 1, true}, {"concurrent/fsync", 8, true}, {"sequential/nofsync", 1, false}, {"concurrent/nofsync", 8, false}} {
		b.Run(bc.name, func(b *testing.B) {
			env := coretest.Start(b, coretest.Options{SyncAlways: bc.fsync})
			d, err := New(b.Context(), Config{Store: env.Store, Conn: env.Conn, Instance: "bench", AtomicBatches: bc.fsync}) // as whistled: batches where fsyncs are shared
			if err != nil {
				b.Fatal(err)
			}
			go d.Run(b.Context()) //nolint:errcheck // ends with the benchmark

			var mu sync.Mutex
			arrived := map[string]chan time.Time{}
			var lat []time.Duration
			sub, err := env.Conn.Subscribe(DispatchSubject("ecology-bureau"), func(m *nats.Msg) {
				at := time.Now()
				var body Message
				if json.Unmarshal(m.Data, &body) != nil || body.Change != ChangeMade {
					return
				}
				mu.Lock()
				ch := arrived[body.CaseID]
				mu.Unlock()
				if ch != nil {
					ch <- at
				}
			})
			if err != nil {
				b.Fatal(err)
			}
			defer sub.Unsubscribe()
			raise := func() {
				// The case id is chosen here and its wait registered before
				// the raise, so that the dispatch cannot arrive first.
				id := uuid.Must(uuid.NewV7()).String()
				ch := make(chan time.Time, 1)
				mu.Lock()
				arrived[id] = ch
				mu.Unlock()
				start := time.Now()
				if _, err := env.Handler.Execute(b.Context(), casehandler.Request{
					CaseID: id, CommandID: uuid.NewString(), Actor: coretest.Street, New: true,
					Command: domain.Raise{Street: "longqiao", Community: "wanhui", Category: "river-pollution", Urgency: "routine", Title: "bench"},
				}); err != nil {
					b.Error(err)
					return
				}
				select {
				case at := <-ch:
					mu.Lock()
					lat = append(lat, at.Sub(start))
					delete(arrived, id)
					mu.Unlock()
				case <-time.After(10 * time.Second):
					b.Errorf("case %s not dispatched within 10s", id)
				}
			}
			raise() // warm up: the stream, the lease, the subscription
			lat = lat[:0]
			b.ResetTimer()
			var wg sync.WaitGroup
			work := make(chan struct{})
			for w := 0; w < bc.workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range work {
						raise()
					}
				}()
			}
			for b.Loop() {
				work <- struct{}{}
			}
			close(work)
			wg.Wait()
			b.StopTimer()
			slices.Sort(lat)
			pct := func(p float64) float64 {
				if len(lat) == 0 {
					return 0
				}
				return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
			}
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.90), "p90-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
		})
	}
}
