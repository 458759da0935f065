package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/adapters/eventstore/jetstream"
	"github.com/whistle-gov/whistle/adapters/natsbus"
)

// storeConcurrencies are the appenders of -mode store.
var storeConcurrencies = []int{16, 64}

// storeMode measures whistle's Store.Append on the packed log (as whistled
// opens it on its embedded server) against the PostgreSQL peer, with the
// same commit shape: ~1.9 KB (a raise: WhistleRaised and two
// AssignmentMade), a new case per commit, an expected version, durable
// before the answer. Rounds alternate store and peer; medians are printed
// last:
//
//	store: appends_c16=N appends_c64=N peer_c16=N peer_c64=N fsync=always
//
// Each round also measures today's per-message store with group commit
// (--group-commit on) for comparison.
func storeMode(ctx context.Context, o options, log *zap.Logger) error {
	if o.peerDSN == "" {
		return fmt.Errorf("-mode store needs -peer-dsn (bench.sh --store --peer)")
	}
	series := map[string][]float64{}
	for round := 1; round <= o.rounds; round++ {
		for _, conc := range storeConcurrencies {
			for _, kind := range []string{"packed", "peer", "atomic"} {
				var res *appendResult
				var cpu time.Duration
				var err error
				if kind == "peer" {
					po := o
					po.concurrency = conc
					res, err = peerBaseline(ctx, po, raiseSize, log)
				} else {
					res, cpu, err = storeAppends(ctx, o, conc, kind == "packed", log)
				}
				if err != nil {
					return fmt.Errorf("round %d, %s at %d: %w", round, kind, conc, err)
				}
				key := fmt.Sprintf("%s_c%d", kind, conc)
				series[key] = append(series[key], res.perS)
				line := fmt.Sprintf("round %d: %-6s c%-2d %8.0f appends/s, append %s", round, kind, conc, res.perS, res.lat)
				if cpu > 0 {
					line += fmt.Sprintf(", %.0f µs CPU per append (store and server)", float64(cpu.Microseconds())/(res.perS*o.rawDur.Seconds()))
				}
				fmt.Println(line)
			}
		}
	}
	med := func(k string) float64 {
		v := slices.Clone(series[k])
		slices.Sort(v)
		return v[len(v)/2]
	}
	var all []string
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range series {
			if !yield(k) {
				return
			}
		}
	}) {
		all = append(all, fmt.Sprintf("%s=%s", k, strings.Trim(fmt.Sprint(series[k]), "[]")))
	}
	fmt.Println("runs:", strings.Join(all, " "))
	fmt.Printf("store: appends_c16=%.0f appends_c64=%.0f peer_c16=%.0f peer_c64=%.0f fsync=%s\n",
		med("packed_c16"), med("packed_c64"), med("peer_c16"), med("peer_c64"), o.fsync)
	return nil
}

// raiseSize is the bytes of event data of one raise (the peer's row).
const raiseSize = 1900

// raiseEvents is a raise's commit: WhistleRaised and two AssignmentMade,
// ~1.9 KB together.
func raiseEvents() []eventstore.EventData {
	mk := func(typ string, n int) eventstore.EventData {
		return eventstore.EventData{ID: uuid.Must(uuid.NewV7()).String(), Type: typ, Data: []byte(`{"note":"` + strings.Repeat("x", n) + `"}`)}
	}
	return []eventstore.EventData{mk("WhistleRaised", 900-12), mk("AssignmentMade", 500-12), mk("AssignmentMade", 500-12)}
}

// storeAppends runs conc appenders of new cases against a Store on a fresh
// embedded server configured like whistled's: the packed log, or the
// per-message log with group commit.
func storeAppends(ctx context.Context, o options, conc int, packed bool, log *zap.Logger) (*appendResult, time.Duration, error) {
	dir, cleanup, err := tempDir(o, log, "whistle-store-")
	if err != nil {
		return nil, 0, err
	}
	defer cleanup()
	ns, err := natsbus.StartEmbedded(natsbus.EmbeddedOptions{StoreDir: dir, SyncAlways: o.fsync == "always"})
	if err != nil {
		return nil, 0, err
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	nc, err := natsbus.Connect(ctx, natsbus.ConnectConfig{Server: ns})
	if err != nil {
		return nil, 0, err
	}
	defer nc.Close()
	cfg := jetstream.Config{}
	if packed {
		cfg = jetstream.Config{Packed: true, IndexAsync: true, IndexDurableAfter: 3 * natsbus.EmbeddedSyncInterval}
	}
	s, err := jetstream.Open(ctx, nc, cfg)
	if err != nil {
		return nil, 0, err
	}
	defer s.Close()
	cpu0, _ := cpuTime(os.Getpid())
	res, err := measureAppends(ctx, conc, time.Second, o.rawDur, func(int) error {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := s.Append(actx, "case-"+uuid.NewString(), 0, raiseEvents())
		return err
	})
	cpu1, _ := cpuTime(os.Getpid())
	if err != nil {
		return nil, 0, err
	}
	// CPU over warm-up and measurement, scaled to the measured part.
	total := o.rawDur + time.Second
	cpu := time.Duration(float64(cpu1-cpu0) * o.rawDur.Seconds() / total.Seconds())
	return res, cpu, nil
}
