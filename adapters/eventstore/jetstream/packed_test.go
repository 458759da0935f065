package jetstream

import (
	"testing"

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
	storetest.Run(t, features(reopenPacked), func(t *testing.T) eventstore.Store {
		return openStore(t, nc, packed())
	})
}
