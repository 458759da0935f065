package caseno

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func numbers(t *testing.T) *Numbers { return numbersWith(t, false) }

// openedOn is the JetStream context each Numbers of these tests was opened
// on, for a second Open on the same server.
var openedOn sync.Map

// numbersWith starts an embedded server (fsyncing every write when
// syncAlways, as whistled's default does) and opens Numbers on it.
func numbersWith(t testing.TB, syncAlways bool) *Numbers {
	t.Helper()
	ns, err := server.NewServer(&server.Options{JetStream: true, StoreDir: t.TempDir(), DontListen: true, SyncAlways: syncAlways})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats not ready")
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	loc, _ := time.LoadLocation("Asia/Shanghai")
	n, err := Open(context.Background(), js, loc, Config{})
	if err != nil {
		t.Fatal(err)
	}
	openedOn.Store(n, js)
	return n
}

// TestNumbersAreUniquePerStreetAndDay: twenty raises at once in one street
// get twenty different numbers, 1 to 20; another street and another day
// (of the calendar's zone: 16:30 UTC is the next day in Shanghai) start
// again from 1.
func TestNumbersAreUniquePerStreetAndDay(t *testing.T) {
	n := numbers(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			no, err := n.Next(ctx, "longqiao", now)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			seen[no] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(seen) != 20 || !seen["20261202-0001"] || !seen["20261202-0020"] {
		t.Fatalf("numbers %v, want 20261202-0001 to -0020", seen)
	}
	for _, tc := range []struct {
		street string
		at     time.Time
		want   string
	}{
		{"xindu", now, "20261202-0001"},
		{"longqiao", time.Date(2026, 12, 2, 16, 30, 0, 0, time.UTC), "20261203-0001"},
		{"longqiao", now, "20261202-0021"},
	} {
		if got, err := n.Next(ctx, tc.street, tc.at); err != nil || got != tc.want {
			t.Errorf("%s at %s: %q %v, want %q", tc.street, tc.at, got, err, tc.want)
		}
	}
}

// BenchmarkNext is what a raise pays for its case number: a read and a
// compare-and-set of its street's key, on a server that fsyncs every write
// (whistled's default --fsync always) or on its interval.
func BenchmarkNext(b *testing.B) {
	for _, always := range []bool{true, false} {
		name := "fsync=interval"
		if always {
			name = "fsync=always"
		}
		b.Run(name, func(b *testing.B) {
			n := numbersWith(b, always)
			now := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := n.Next(context.Background(), "longqiao", now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestTwoProcessesShareOneSequence: two Numbers on one bucket (two whistled
// on one NATS), each taking numbers concurrently, never hand out one twice:
// one that wrote last only learns of the other's writes by a refused update.
func TestTwoProcessesShareOneSequence(t *testing.T) {
	a := numbers(t)
	b := &Numbers{kv: a.kv, loc: a.loc, keys: map[string]*sequence{}}
	ctx := context.Background()
	now := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for i := range 40 {
		n := a
		if i%2 == 1 {
			n = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			no, err := n.Next(ctx, "longqiao", now)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if seen[no] {
				t.Errorf("%s handed out twice", no)
			}
			seen[no] = true
		}()
	}
	wg.Wait()
	if len(seen) != 40 || !seen["20261202-0040"] {
		t.Fatalf("%d numbers, want 20261202-0001 to -0040: %v", len(seen), seen)
	}
}

// TestEveryInstanceSharesOneTokenSecret: the first Open makes the secret;
// a second Open on the same bus (another whistled) reads the same one, and
// it is never a day's sequence.
func TestEveryInstanceSharesOneTokenSecret(t *testing.T) {
	a := numbers(t)
	js, _ := openedOn.Load(a)
	b, err := Open(context.Background(), js.(jetstream.JetStream), a.loc, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.TokenSecret()) != 32 || string(a.TokenSecret()) != string(b.TokenSecret()) {
		t.Fatalf("secrets differ or are not 32 bytes: %x, %x", a.TokenSecret(), b.TokenSecret())
	}
	if no, err := a.Next(context.Background(), "longqiao", time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)); err != nil || no != "20261202-0001" {
		t.Fatalf("first number after the secret: %q, %v", no, err)
	}
}
