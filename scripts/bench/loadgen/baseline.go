package main

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/whistle-gov/whistle/adapters/eventstore/jetstream"
	"github.com/whistle-gov/whistle/adapters/natsbus"
)

func numCPU() int { return runtime.NumCPU() }

// appendResult is a baseline's throughput and latency.
type appendResult struct {
	perS float64
	lat  *latencies
}

// measureAppends runs append from conc goroutines for warmup+d and counts
// what completed in d.
func measureAppends(ctx context.Context, conc int, warmup, d time.Duration, appendOne func(worker int) error) (*appendResult, error) {
	var done atomic.Int64
	var recording atomic.Bool
	lat := &latencies{}
	var firstErr atomic.Value
	phase, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for phase.Err() == nil {
				t := time.Now()
				if err := appendOne(w); err != nil {
					if phase.Err() == nil {
						firstErr.CompareAndSwap(nil, err)
						cancel()
					}
					return
				}
				if recording.Load() {
					lat.add(time.Since(t))
					done.Add(1)
				}
			}
		}()
	}
	sleep(phase, warmup)
	recording.Store(true)
	start := time.Now()
	sleep(phase, d)
	recording.Store(false)
	elapsed := time.Since(start)
	cancel()
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &appendResult{perS: float64(done.Load()) / elapsed.Seconds(), lat: lat}, nil
}

// rawBaseline is JetStream without whistle: on an embedded server configured
// like whistled's (file storage, the same fsync, the stream as the store
// creates it), each appender publishes one message per append to a new
// case subject, awaiting its acknowledgement, with the expected last subject
// sequence and a message ID as the store sets them.
func rawBaseline(ctx context.Context, o options, size int, log *zap.Logger) (*appendResult, error) {
	dir, cleanup, err := tempDir(o, log, "whistle-raw-")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	ns, err := natsbus.StartEmbedded(natsbus.EmbeddedOptions{StoreDir: dir, SyncAlways: o.fsync == "always"})
	if err != nil {
		return nil, err
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	nc, err := natsbus.Connect(ctx, natsbus.ConnectConfig{Server: ns})
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	// The store creates the stream exactly as whistled has it; the baseline
	// then bypasses the store.
	store, err := jetstream.Open(ctx, nc, jetstream.Config{})
	if err != nil {
		return nil, err
	}
	_ = store.Close()
	js, err := natsjs.New(nc)
	if err != nil {
		return nil, err
	}
	body := make([]byte, size)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	log.Info("raw JetStream baseline", zap.Int("appenders", o.concurrency), zap.Int("bytes", size), zap.String("fsync", o.fsync))
	return measureAppends(ctx, o.concurrency, time.Second, o.rawDur, func(int) error {
		m := &nats.Msg{Subject: jetstream.DefaultSubjectPrefix + ".case-" + uuid.NewString(), Data: body, Header: nats.Header{}}
		m.Header.Set(jetstream.HeaderVersion, "0")
		m.Header.Set(jetstream.HeaderCount, "3")
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := js.PublishMsg(rctx, m, natsjs.WithMsgID(uuid.Must(uuid.NewV7()).String()), natsjs.WithExpectLastSequencePerSubject(0))
		return err
	})
}

// peerBaseline is what most teams would build instead: events in a
// PostgreSQL table with a unique (stream, version), each append one
// transaction committed with synchronous_commit on, one connection per
// appender. An append is one row of the raw baseline's size.
func peerBaseline(ctx context.Context, o options, size int, log *zap.Logger) (*appendResult, error) {
	setup, err := pgx.Connect(ctx, o.peerDSN)
	if err != nil {
		return nil, err
	}
	defer setup.Close(context.Background())
	var sc string
	if err := setup.QueryRow(ctx, "SHOW synchronous_commit").Scan(&sc); err != nil {
		return nil, err
	}
	if sc != "on" {
		return nil, fmt.Errorf("the peer's synchronous_commit is %q, want on", sc)
	}
	var fsync string
	if err := setup.QueryRow(ctx, "SHOW fsync").Scan(&fsync); err != nil {
		return nil, err
	}
	if _, err := setup.Exec(ctx, `DROP TABLE IF EXISTS events;
		CREATE TABLE events (
			position bigserial PRIMARY KEY,
			stream   text   NOT NULL,
			version  bigint NOT NULL,
			type     text   NOT NULL,
			data     bytea  NOT NULL,
			UNIQUE (stream, version))`); err != nil {
		return nil, err
	}
	conns := make([]*pgx.Conn, o.concurrency)
	for i := range conns {
		if conns[i], err = pgx.Connect(ctx, o.peerDSN); err != nil {
			return nil, err
		}
		defer conns[i].Close(context.Background())
	}
	body := make([]byte, size)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	log.Info("PostgreSQL peer", zap.Int("connections", o.concurrency), zap.Int("bytes", size), zap.String("fsync", fsync))
	res, err := measureAppends(ctx, o.concurrency, time.Second, o.rawDur, func(w int) error {
		_, err := conns[w].Exec(ctx, "INSERT INTO events (stream, version, type, data) VALUES ($1, $2, $3, $4)",
			"case-"+uuid.NewString(), 0, "WhistleRaised", body)
		return err
	})
	if err != nil {
		return nil, err
	}
	var n int64
	if err := setup.QueryRow(ctx, "SELECT count(*) FROM events").Scan(&n); err == nil {
		log.Info("peer rows", zap.Int64("rows", n), zap.String("per_s", strconv.FormatFloat(res.perS, 'f', 0, 64)))
	}
	return res, nil
}
