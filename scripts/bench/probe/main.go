// Command probe measures how an embedded JetStream server (configured like
// whistled's: file storage, one replica, fsync on every write) turns
// concurrent durable writes into fsyncs, for the three ways a store could
// write: one publish per commit, awaited (what the JetStream store did
// before group commit); many async publishes in flight at once; and atomic
// batches of commits. It answers the question group commit rests on: which
// of these shares an fsync among several commits. The figures are in
// BENCHMARKS.md ("Group commit").
//
//	go run ./scripts/bench/probe -fsync always -size 1200 -duration 5s
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/whistle-gov/whistle/adapters/natsbus"
)

func main() {
	fsync := flag.String("fsync", "always", "always or interval")
	size := flag.Int("size", 1200, "message body bytes")
	dur := flag.Duration("duration", 4*time.Second, "time per measurement")
	flag.StringVar(&only, "only", "", "run one way only: single, async or batch")
	flag.Parse()
	if err := run(*fsync == "always", *size, *dur); err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
}

var only string

var batchSizes = []int{2, 8, 32, 100, 250, 500}

func run(syncAlways bool, size int, dur time.Duration) error {
	dir, err := os.MkdirTemp("", "whistle-probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ns, err := natsbus.StartEmbedded(natsbus.EmbeddedOptions{StoreDir: dir, SyncAlways: syncAlways})
	if err != nil {
		return err
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	ctx := context.Background()
	nc, err := natsbus.Connect(ctx, natsbus.ConnectConfig{Server: ns})
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := natsjs.New(nc, natsjs.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return err
	}
	if _, err := js.CreateStream(ctx, natsjs.StreamConfig{
		Name: "PROBE", Subjects: []string{"probe.>"}, Storage: natsjs.FileStorage,
		Duplicates: 2 * time.Minute, AllowDirect: true, AllowAtomicPublish: true,
	}); err != nil {
		return err
	}
	body := make([]byte, size)

	fmt.Printf("fsync=%v size=%d\n", syncAlways, size)
	for _, conc := range []int{1, 16, 64} {
		if only != "" && only != "single" {
			break
		}
		n := measure(dur, conc, func(w int) (int, error) {
			// A new case: its subject must have no message yet.
			_, err := js.PublishMsg(ctx, &nats.Msg{Subject: "probe." + uuid.NewString(), Data: body, Header: nats.Header{}},
				natsjs.WithMsgID(uuid.NewString()), natsjs.WithExpectLastSequencePerSubject(0))
			return 1, err
		})
		fmt.Printf("single publish, awaited        concurrency=%-3d %8.0f commits/s\n", conc, n)
	}
	for _, inflight := range []int{16, 64, 256} {
		if only != "" && only != "async" {
			break
		}
		n := measure(dur, 1, func(int) (int, error) {
			futs := make([]natsjs.PubAckFuture, inflight)
			for i := range futs {
				f, err := js.PublishMsgAsync(&nats.Msg{Subject: "probe." + uuid.NewString(), Data: body, Header: nats.Header{}},
					natsjs.WithMsgID(uuid.NewString()), natsjs.WithExpectLastSequencePerSubject(0))
				if err != nil {
					return 0, err
				}
				futs[i] = f
			}
			for _, f := range futs {
				select {
				case <-f.Ok():
				case err := <-f.Err():
					return 0, err
				}
			}
			return inflight, nil
		})
		fmt.Printf("async publishes in flight      inflight=%-5d %8.0f commits/s\n", inflight, n)
	}
	for _, bs := range batchSizes {
		if only != "" && only != "batch" {
			break
		}
		for _, conc := range []int{1, 2} {
			n := measure(dur, conc, func(int) (int, error) {
				if err := atomicBatch(ctx, nc, body, bs); err != nil {
					return 0, err
				}
				return bs, nil
			})
			fmt.Printf("atomic batch of %-3d  batches in flight=%d %8.0f commits/s\n", bs, conc, n)
		}
	}
	return nil
}

// atomicBatch writes n commits to n new subjects as one atomic batch, each
// with its expected last subject sequence, as group commit does.
func atomicBatch(ctx context.Context, nc *nats.Conn, body []byte, n int) error {
	id := uuid.NewString()
	for i := 1; i <= n; i++ {
		m := &nats.Msg{Subject: "probe." + uuid.NewString(), Data: body, Header: nats.Header{}}
		m.Header.Set("Nats-Batch-Id", id)
		m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(i))
		m.Header.Set(natsjs.MsgIDHeader, uuid.NewString())
		m.Header.Set(natsjs.ExpectedLastSubjSeqHeader, "0")
		if i < n {
			if err := nc.PublishMsg(m); err != nil {
				return err
			}
			continue
		}
		m.Header.Set("Nats-Batch-Commit", "1")
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := nc.RequestMsgWithContext(rctx, m)
		cancel()
		if err != nil {
			return err
		}
		if len(resp.Data) == 0 || resp.Data[0] != '{' || bytes.Contains(resp.Data, []byte(`"error"`)) {
			return fmt.Errorf("batch: %s", resp.Data)
		}
	}
	return nil
}

// measure runs op from conc goroutines for d and returns the commits per
// second they completed.
func measure(d time.Duration, conc int, op func(worker int) (int, error)) float64 {
	var done atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	start := time.Now()
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				n, err := op(w)
				if err != nil {
					fmt.Fprintln(os.Stderr, "probe:", err)
					return
				}
				done.Add(int64(n))
			}
		}()
	}
	wg.Wait()
	return float64(done.Load()) / time.Since(start).Seconds()
}
