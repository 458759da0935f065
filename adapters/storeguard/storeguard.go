// Package storeguard watches the room the event store has to write: the
// free space of the file system under the data folder, and the embedded
// nats-server's own write errors. A full disk is then answered at once
// (commands are refused, /readyz says why, a metric shows it) instead of
// each command waiting for the store's timeout; and it is left behind
// without a restart when space returns.
//
// Why both checks: nats-server answers nothing to a publish whose write
// failed (ENOSPC), it keeps that error on the stream (and the file store)
// for good, and goes on refusing every later write until JetStream is
// started again (server/stream.go, processJetStreamMsg and
// setWriteErrLocked; server/filestore.go, setWriteErr). A reserve of free
// space kept by refusing commands first means the store seldom meets
// ENOSPC; when it does anyway (something else filled the disk at once, or
// background writes such as the log's lease did), the guard sees the
// stream's write error in the server's health report and, once there is
// room again, shuts JetStream down and enables it again with the same
// configuration (what the server's own reload does, restartJetStream),
// which reloads the streams from disk without the error. Nothing
// acknowledged is lost by that: a message is acknowledged only once
// written (and fsynced with --fsync always); the one whose write failed was
// never acknowledged.
package storeguard

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap"
)

// DefaultReserve is the free space kept on the data folder's file system.
const DefaultReserve = 64 << 20

// ErrFull is the sentinel of a store that cannot write now (errors.Is).
var ErrFull = errors.New("storeguard: the event store cannot write")

// FullError says why the store cannot write.
type FullError struct{ Cause string }

func (e *FullError) Error() string        { return e.Cause }
func (e *FullError) Is(target error) bool { return target == ErrFull }

// Config is what the guard watches.
type Config struct {
	// Dir is a folder on the file system that holds the store (the data
	// folder); empty: free space is not watched.
	Dir string
	// Reserve is the free space, in bytes, below which commands are refused.
	Reserve uint64
	// Server is the embedded nats-server, whose write errors are watched
	// and which is restarted when space returns; nil with an external one.
	Server *server.Server
	// Interval between checks of the server's health; default 500 ms.
	Interval time.Duration
	Log      *zap.Logger
	// OnChange, when set, is told each time the guard turns full or not.
	OnChange func(full bool)
}

// Guard is safe for concurrent use.
type Guard struct {
	cfg Config
	// storeErr is the server's write error seen at the last check ("":
	// none).
	storeErr atomic.Pointer[string]
	// last reported state, for OnChange and the log.
	mu       sync.Mutex
	wasFull  bool
	lastKick time.Time
	// jsConfig is the embedded server's JetStream configuration, read at
	// New (the server forgets it once JetStream is shut down).
	jsConfig *server.JetStreamConfig
}

// New returns a guard; Run watches.
func New(cfg Config) *Guard {
	if cfg.Interval <= 0 {
		cfg.Interval = 500 * time.Millisecond
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	g := &Guard{cfg: cfg}
	if cfg.Server != nil {
		g.jsConfig = cfg.Server.JetStreamConfig()
	}
	none := ""
	g.storeErr.Store(&none)
	return g
}

// Full returns a *FullError when the store cannot write now: the free space
// is under the reserve (checked at each call: a statfs is cheap), or the
// server reported a write error at its last check.
func (g *Guard) Full() error {
	cause := g.cause(g.lowSpace())
	g.report(cause)
	if cause == "" {
		return nil
	}
	return &FullError{Cause: cause}
}

func (g *Guard) cause(low string) string {
	if se := *g.storeErr.Load(); se != "" {
		if low != "" {
			return low + "; " + se
		}
		return se + " (it writes again once there is room: the guard restarts it)"
	}
	return low
}

// lowSpace says, when the free space is under the reserve, how much there is.
func (g *Guard) lowSpace() string {
	if g.cfg.Dir == "" || g.cfg.Reserve == 0 {
		return ""
	}
	free, ok := freeBytes(g.cfg.Dir)
	if !ok || free >= g.cfg.Reserve {
		return ""
	}
	return fmt.Sprintf("the disk of the data folder is full: %s free, under the reserve of %s (--disk-reserve)",
		Size(free), Size(g.cfg.Reserve))
}

// Run checks until ctx is done.
func (g *Guard) Run(ctx context.Context) error {
	t := time.NewTicker(g.cfg.Interval)
	defer t.Stop()
	for {
		g.check()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// check reads the server's write errors and, when there is room again,
// restarts its JetStream.
func (g *Guard) check() {
	se := g.serverWriteError()
	g.storeErr.Store(&se)
	low := g.lowSpace()
	if se != "" && low == "" {
		g.restartJetStream(se)
	}
	g.report(g.cause(low))
}

// serverWriteError is the embedded server's first stream write error, or
// JetStream found disabled (the server turns it off on some write errors).
func (g *Guard) serverWriteError() string {
	s := g.cfg.Server
	if s == nil {
		return ""
	}
	if !s.JetStreamEnabled() {
		return "the event store (JetStream) is disabled after a write error"
	}
	h := s.Healthz(&server.HealthzOptions{Details: true})
	if h == nil {
		return ""
	}
	for _, e := range h.Errors {
		if strings.Contains(e.Error, "write error") {
			return "the event store could not write: " + e.Error
		}
	}
	if strings.Contains(h.Error, "write error") {
		return "the event store could not write: " + h.Error
	}
	return ""
}

// restartJetStream shuts JetStream down (its state stays on disk) and
// enables it again with the same configuration, at most every 5 s.
func (g *Guard) restartJetStream(why string) {
	g.mu.Lock()
	if time.Since(g.lastKick) < 5*time.Second {
		g.mu.Unlock()
		return
	}
	g.lastKick = time.Now()
	g.mu.Unlock()
	s := g.cfg.Server
	cfg := g.jsConfig
	if cfg == nil {
		g.cfg.Log.Error("event store: JetStream's configuration is unknown; it cannot be restarted here", zap.String("cause", why))
		return
	}
	c := *cfg // EnableJetStream may adjust what it is given
	// The running configuration names the store's own folder, which
	// EnableJetStream would append "jetstream" to again (a new, empty
	// store): give it the folder it was first given, as the server's
	// reload does (restartJetStream, from its options).
	if filepath.Base(c.StoreDir) == server.JetStreamStoreDir {
		c.StoreDir = filepath.Dir(c.StoreDir)
	}
	g.cfg.Log.Warn("event store: restarting JetStream after a write error, now that there is room", zap.String("cause", why))
	if s.JetStreamEnabled() {
		if err := s.ShutdownJetStream(); err != nil {
			g.cfg.Log.Error("event store: JetStream did not shut down", zap.Error(err))
			return
		}
	}
	if err := s.EnableJetStream(&c); err != nil {
		g.cfg.Log.Error("event store: JetStream did not start again; the next check retries", zap.Error(err))
		return
	}
	if se := g.serverWriteError(); se == "" {
		none := ""
		g.storeErr.Store(&none)
		g.cfg.Log.Info("event store: JetStream writes again")
	}
}

func (g *Guard) report(cause string) {
	full := cause != ""
	g.mu.Lock()
	changed := full != g.wasFull
	g.wasFull = full
	g.mu.Unlock()
	if !changed {
		return
	}
	if full {
		g.cfg.Log.Error("event store full: commands are refused until there is room", zap.String("cause", cause))
	} else {
		g.cfg.Log.Info("event store has room again: commands are served")
	}
	if g.cfg.OnChange != nil {
		g.cfg.OnChange(full)
	}
}

// Size prints a byte count in binary units.
func Size(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// ParseSize reads a size such as 64MiB, 512KiB, 1GiB, 64MB or a plain
// number of bytes.
func ParseSize(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	mult := uint64(1)
	for _, u := range []struct {
		suffix string
		mult   uint64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	var n uint64
	if _, err := fmt.Sscan(t, &n); err != nil || fmt.Sprint(n) != t {
		return 0, fmt.Errorf("%q is not a size (such as 64MiB, 512KiB or a number of bytes)", s)
	}
	return n * mult, nil
}
