package natsbus

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func start(t *testing.T, opts EmbeddedOptions) *server.Server {
	t.Helper()
	ns, err := StartEmbedded(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns
}

func TestEmbeddedInProcess(t *testing.T) {
	ns := start(t, EmbeddedOptions{StoreDir: t.TempDir(), SyncAlways: true})
	nc, err := Connect(t.Context(), ConnectConfig{Server: ns, Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Request("$JS.API.INFO", nil, 5*time.Second); err != nil {
		t.Fatalf("JetStream request in process: %v", err)
	}
}

func TestEmbeddedListensAndConnectsByURL(t *testing.T) {
	ns := start(t, EmbeddedOptions{StoreDir: t.TempDir(), ListenAddr: "127.0.0.1:0", ServerName: "n1"})
	url := ns.ClientURL()
	if strings.HasSuffix(url, ":4222") || strings.HasSuffix(url, ":0") {
		t.Fatalf("ClientURL %s: want a free port picked by the server", url)
	}
	// The same server twice, as a cluster's list would be.
	nc, err := Connect(t.Context(), ConnectConfig{URLs: url + ", " + url})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if got := nc.ConnectedServerName(); got != "n1" {
		t.Fatalf("connected to server %q, want n1", got)
	}
}

func TestStartEmbeddedRefuses(t *testing.T) {
	if _, err := StartEmbedded(EmbeddedOptions{}); err == nil || !strings.Contains(err.Error(), "StoreDir") {
		t.Fatalf("no StoreDir: %v; want an error about it", err)
	}
	if _, err := StartEmbedded(EmbeddedOptions{StoreDir: t.TempDir(), ListenAddr: "localhost"}); err == nil || !strings.Contains(err.Error(), `"localhost"`) {
		t.Fatalf("bad listen address: %v; want an error naming it", err)
	}
}

func TestConnectRefuses(t *testing.T) {
	ns := start(t, EmbeddedOptions{StoreDir: t.TempDir()})
	for name, cfg := range map[string]ConnectConfig{
		"neither":       {},
		"both":          {Server: ns, URLs: "nats://127.0.0.1:4222"},
		"empty element": {URLs: "nats://127.0.0.1:4222,,nats://127.0.0.1:4223"},
	} {
		if nc, err := Connect(t.Context(), cfg); err == nil {
			nc.Close()
			t.Errorf("%s: connected; want an error", name)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Connect(ctx, ConnectConfig{Server: ns}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v; want context.Canceled", err)
	}
}
