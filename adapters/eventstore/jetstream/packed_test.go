package jetstream

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/adapters/eventstore/storetest"
	"github.com/whistle-gov/whistle/adapters/natsbus"
)

// packed is the configuration whistled uses on its embedded server.
func packed() Config {
	return Config{Packed: true, IndexAsync: true, IndexDurableAfter: 3 * natsbus.EmbeddedSyncInterval}
}

// reopenPacked is reopenEmbedded for the packed log.
func reopenPacked(t *testing.T) (eventstore.Store, func() eventstore.Store) {
	dir := t.TempDir()
	ns := startEmbedded(t, dir, true)
	nc := connect(t, natsbus.ConnectConfig{Server: ns})
	s := openStore(t, nc, packed())
	return s, func() eventstore.Store {
		s.Close()
		nc.Close()
		ns.Shutdown()
		ns.WaitForShutdown()
		ns2 := startEmbedded(t, dir, true)
		return openStore(t, connect(t, natsbus.ConnectConfig{Server: ns2}), packed())
	}
}

func TestConformancePacked(t *testing.T) {
	ns := startEmbedded(t, t.TempDir(), true)
	nc := connect(t, natsbus.ConnectConfig{Server: ns, Name: "conformance-packed"})
	f := features(reopenPacked)
	f.Crash, f.LoseAck = crashPacked, loseAck
	storetest.Run(t, f, func(t *testing.T) eventstore.Store {
		return openStore(t, nc, packed())
	})
}

// crashPacked gives two stores on a private embedded server: the victim
// opens first and owns the log; crash cuts its connection right after the
// server stored its next batch, before the index copies or any answer.
func crashPacked(t *testing.T) (eventstore.Store, eventstore.Store, func()) {
	ns := startEmbedded(t, t.TempDir(), true)
	cfg := packed()
	cfg.LeaseTTL = 600 * time.Millisecond
	vnc := connect(t, natsbus.ConnectConfig{Server: ns, Name: "victim"})
	victim := openStore(t, vnc, cfg)
	if !victim.Owner() {
		t.Fatal("the first store on a fresh server does not own the log")
	}
	survivor := openStore(t, connect(t, natsbus.ConnectConfig{Server: ns, Name: "survivor"}), cfg)
	var armed atomic.Bool
	var once sync.Once
	cut := make(chan struct{})
	real := victim.publish
	victim.publish = func(ctx context.Context, m *nats.Msg, opts ...natsjs.PublishOpt) (*natsjs.PubAck, error) {
		ack, err := real(ctx, m, opts...)
		if err == nil && armed.Load() {
			once.Do(func() {
				vnc.Close()
				close(cut)
			})
			return nil, nats.ErrConnectionClosed
		}
		return ack, err
	}
	return victim, survivor, func() {
		armed.Store(true)
		select {
		case <-cut:
		case <-time.After(10 * time.Second):
			t.Fatal("the victim stored no batch within 10s of being armed")
		}
	}
}

// loseAck makes the next acknowledgement s waits for, of a batch it writes
// as the owner or of an append it forwarded, come back as a timeout after
// the commit landed.
func loseAck(t *testing.T, es eventstore.Store) {
	s := es.(*Store)
	var lost atomic.Bool
	realPublish, realRequest := s.publish, s.request
	s.publish = func(ctx context.Context, m *nats.Msg, opts ...natsjs.PublishOpt) (*natsjs.PubAck, error) {
		ack, err := realPublish(ctx, m, opts...)
		if err == nil && lost.CompareAndSwap(false, true) {
			return nil, nats.ErrTimeout
		}
		return ack, err
	}
	if realRequest != nil {
		s.request = func(ctx context.Context, m *nats.Msg) (*nats.Msg, error) {
			reply, err := realRequest(ctx, m)
			if err == nil && reply.Header.Get(hdrResult) == "ok" && lost.CompareAndSwap(false, true) {
				return nil, nats.ErrTimeout
			}
			return reply, err
		}
	}
}

// crashPerMessage gives two stores, each on a connection of its own, over
// the shared server; crash closes the victim's connection.
func crashPerMessage(ns *server.Server, cfg Config) func(t *testing.T) (eventstore.Store, eventstore.Store, func()) {
	return func(t *testing.T) (eventstore.Store, eventstore.Store, func()) {
		vnc := connect(t, natsbus.ConnectConfig{Server: ns, Name: "victim"})
		victim := openStore(t, vnc, cfg)
		survivor := openStore(t, connect(t, natsbus.ConnectConfig{Server: ns, Name: "survivor"}), cfg)
		return victim, survivor, vnc.Close
	}
}
