// Package natsbus starts whistle's embedded NATS server and connects to NATS,
// embedded or external. NATS is always whistle's bus and, by default, also
// carries its event store (JetStream).
//
// An embedded server runs inside the whistled process with JetStream file
// storage, so a single command runs everything; an external server or cluster
// is reached by URL with the same Connect.
package natsbus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
)

// ReadyTimeout is how long StartEmbedded waits for the server to accept
// connections before giving up.
const ReadyTimeout = 10 * time.Second

// DefaultReconnectWait is the pause between reconnect attempts to the same
// server when ConnectConfig.ReconnectWait is zero. It is short because a
// cluster member restarts in seconds and commands wait while the bus is down.
const DefaultReconnectWait = 500 * time.Millisecond

// EmbeddedOptions configures an in-process nats-server with JetStream.
type EmbeddedOptions struct {
	// StoreDir is the directory of JetStream's file storage. Required: an
	// event log in a temporary directory would be lost silently.
	StoreDir string
	// SyncAlways makes the server fsync every write before acknowledging it,
	// so an acknowledged append survives a power loss. When false the server
	// syncs on its default interval (2 minutes in nats-server 2.x): an
	// acknowledged append survives a crash of the process, since it is in
	// the operating system's page cache, but the last minutes may be lost
	// with the machine.
	SyncAlways bool
	// ListenAddr is the "host:port" on which the server accepts clients.
	// Empty: the server does not listen at all and is reachable only in
	// process (Connect with ConnectConfig.Server). Port 0 picks a free port;
	// read it back with (*server.Server).ClientURL. Until
	// SetClientAuthentication installs an authenticator, network clients
	// have full rights, or none with RefuseClientsUntilAuthenticated.
	ListenAddr string
	// RefuseClientsUntilAuthenticated makes the server refuse every network
	// client until SetClientAuthentication installs an authenticator,
	// instead of admitting them with full rights meanwhile. A service whose
	// clients must authenticate (whistled with --nats-listen) sets it, so
	// that no client ever holds rights it would not be given; tools and
	// tests that want an open server leave it false.
	RefuseClientsUntilAuthenticated bool
	// ServerName names the server in JetStream and monitoring output.
	// Empty: "whistle".
	ServerName string
}

// authGate decides on the clients of an embedded server that listens. An
// in-process connection (a net.Pipe, which only code in this process can
// open) is the service's own and keeps full rights. A network client is
// judged by the authenticator installed with SetClientAuthentication. Until
// one is installed it is refused when strict; otherwise it is admitted with
// full rights, as a server without authentication would, and remembered so
// that installing one disconnects it.
type authGate struct {
	strict   bool
	mu       sync.Mutex
	auth     server.Authentication
	admitted []uint64 // network clients let in before auth was installed
}

// Check implements server.Authentication.
func (g *authGate) Check(c server.ClientAuthentication) bool {
	if addr := c.RemoteAddress(); addr != nil && addr.Network() == "pipe" {
		return true
	}
	g.mu.Lock()
	auth := g.auth
	if auth == nil && !g.strict {
		g.admitted = append(g.admitted, c.GetID())
	}
	g.mu.Unlock()
	if auth == nil {
		return !g.strict
	}
	return auth.Check(c)
}

// gates maps each listening embedded server to its gate.
var gates sync.Map // *server.Server → *authGate

// SetClientAuthentication installs auth as the judge of the network clients
// of ns, an embedded server started with a ListenAddr: it authenticates each
// and registers its account and permissions (see server.Authentication).
// In-process connections are never passed to auth and keep full rights.
// Network clients admitted before the first call (with full rights, as
// without authentication) are disconnected, so that none keeps rights that
// auth would not give; they may reconnect and be judged. Calling it again
// replaces the authenticator for later connections.
func SetClientAuthentication(ns *server.Server, auth server.Authentication) error {
	v, ok := gates.Load(ns)
	if !ok {
		return errors.New("natsbus: set client authentication: the server is not an embedded server with a ListenAddr")
	}
	if auth == nil {
		return errors.New("natsbus: set client authentication: nil authenticator")
	}
	g := v.(*authGate)
	g.mu.Lock()
	g.auth = auth
	early := g.admitted
	g.admitted = nil
	g.mu.Unlock()
	for _, id := range early {
		_ = ns.DisconnectClientByID(id) // it may be gone already
	}
	return nil
}

// EmbeddedSyncInterval is how often an embedded server started with
// SyncAlways syncs the streams that do not sync every write (PersistMode
// async).
const EmbeddedSyncInterval = time.Second

// StartEmbedded starts a nats-server with JetStream file storage in this
// process and returns it once it accepts connections. The server does not
// log and does not handle signals; the caller owns it and stops it with
// Shutdown (then WaitForShutdown), after closing its connections.
func StartEmbedded(opts EmbeddedOptions) (*server.Server, error) {
	if opts.StoreDir == "" {
		return nil, errors.New("natsbus: embedded server needs a StoreDir for JetStream file storage")
	}
	name := opts.ServerName
	if name == "" {
		name = "whistle"
	}
	so := &server.Options{
		ServerName: name,
		JetStream:  true,
		StoreDir:   opts.StoreDir,
		SyncAlways: opts.SyncAlways,
		NoLog:      true,
		NoSigs:     true,
		// The banner is printed through the logger, which is not configured;
		// disabling it states the intent.
		DisableJetStreamBanner: true,
	}
	if opts.SyncAlways {
		// Streams that opt out of a sync per write (the event log's
		// derived index, PersistMode async) are synced this often.
		so.SyncInterval = EmbeddedSyncInterval
	}
	var gate *authGate
	if opts.ListenAddr == "" {
		so.DontListen = true
	} else {
		gate = &authGate{strict: opts.RefuseClientsUntilAuthenticated}
		so.CustomClientAuthentication = gate
		host, port, err := splitHostPort(opts.ListenAddr)
		if err != nil {
			return nil, err
		}
		so.Host, so.Port = host, port
	}

	ns, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("natsbus: embedded server (store %s): %w", opts.StoreDir, err)
	}
	if gate != nil {
		gates.Store(ns, gate)
	}
	// No ConfigureLogger call: without a logger the server writes nothing to
	// stdout or stderr.
	ns.Start()
	if !ns.ReadyForConnections(ReadyTimeout) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("natsbus: embedded server (store %s, listen %q) not ready for connections after %s", opts.StoreDir, opts.ListenAddr, ReadyTimeout)
	}
	if !ns.JetStreamEnabled() {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("natsbus: embedded server (store %s) started without JetStream", opts.StoreDir)
	}
	return ns, nil
}

// splitHostPort parses "host:port"; port 0 means any free port.
func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("natsbus: listen address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("natsbus: listen address %q: bad port %q", addr, p)
	}
	if port == 0 {
		// The server reads 0 as "the default port 4222".
		port = server.RANDOM_PORT
	}
	return host, port, nil
}

// ConnectConfig says where and how to connect. Exactly one of Server and URLs
// must be set.
type ConnectConfig struct {
	// Server is an embedded server to connect to in process, without a
	// socket.
	Server *server.Server
	// URLs is one NATS URL or a comma-separated list of a cluster's URLs,
	// e.g. "nats://10.0.0.1:4222,nats://10.0.0.2:4222". The client learns the
	// rest of a cluster from the server it reaches.
	URLs string
	// Name identifies the connection in the server's monitoring, e.g.
	// "whistled". Empty: "whistle".
	Name string
	// ReconnectWait is the pause before reconnecting to a server that was
	// just tried. Zero: DefaultReconnectWait. The client reconnects forever;
	// while it is disconnected, publishes are buffered (up to the client's
	// default 8 MiB) and requests wait for their own deadline.
	ReconnectWait time.Duration
	// Logger, when set, receives disconnects, reconnects, the final close and
	// asynchronous errors (a slow consumer, a permissions violation). Nil:
	// they are not reported.
	Logger *zap.Logger
}

// Connect connects to NATS as cfg says and returns the connection once it is
// established. It honours ctx while connecting: on cancellation it returns
// ctx.Err() and closes a connection that arrives late. Once connected, the
// connection reconnects forever (nats.MaxReconnects(-1)), waiting
// cfg.ReconnectWait plus up to 100ms of jitter between attempts, so that a
// restarting server or a cluster failover does not kill the service. The
// caller closes the connection (Drain or Close).
func Connect(ctx context.Context, cfg ConnectConfig) (*nats.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("natsbus: connect: %w", err)
	}
	url := strings.TrimSpace(cfg.URLs)
	switch {
	case cfg.Server != nil && url != "":
		return nil, fmt.Errorf("natsbus: connect: both an embedded server and URLs %q given; choose one", url)
	case cfg.Server == nil && url == "":
		return nil, errors.New("natsbus: connect: neither an embedded server nor URLs given")
	}
	name := cfg.Name
	if name == "" {
		name = "whistle"
	}
	wait := cfg.ReconnectWait
	if wait <= 0 {
		wait = DefaultReconnectWait
	}
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(wait),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
	}
	if cfg.Server != nil {
		opts = append(opts, nats.InProcessServer(cfg.Server))
		url = "in-process"
	} else {
		if err := checkURLs(url); err != nil {
			return nil, err
		}
	}
	if d, ok := ctx.Deadline(); ok {
		// Bound each dial by what is left of ctx, so a black-holed address
		// does not outlive the caller's patience by nats' default 2s per URL.
		if left := time.Until(d); left > 0 && left < nats.DefaultTimeout {
			opts = append(opts, nats.Timeout(left))
		}
	}
	if log := cfg.Logger; log != nil {
		opts = append(opts,
			nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
				log.Warn("nats disconnected", zap.String("conn", name), zap.Error(err))
			}),
			nats.ReconnectHandler(func(nc *nats.Conn) {
				log.Info("nats reconnected", zap.String("conn", name), zap.String("url", nc.ConnectedUrlRedacted()))
			}),
			nats.ClosedHandler(func(nc *nats.Conn) {
				log.Info("nats connection closed", zap.String("conn", name))
			}),
			nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
				fields := []zap.Field{zap.String("conn", name), zap.Error(err)}
				if sub != nil {
					fields = append(fields, zap.String("subject", sub.Subject))
				}
				log.Error("nats async error", fields...)
			}),
		)
	}

	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		// nats.Connect does not take a context; run it aside and abandon it
		// on cancellation.
		nc, err := nats.Connect(cfgURL(cfg, url), opts...)
		done <- result{nc, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("natsbus: connect to %s: %w", url, r.err)
		}
		return r.nc, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, fmt.Errorf("natsbus: connect to %s: %w", url, ctx.Err())
	}
}

// cfgURL is the URL argument of nats.Connect: ignored in process.
func cfgURL(cfg ConnectConfig, url string) string {
	if cfg.Server != nil {
		return ""
	}
	return url
}

// checkURLs refuses an empty member of a comma-separated list, which nats
// would otherwise report as a confusing dial error.
func checkURLs(list string) error {
	for _, u := range strings.Split(list, ",") {
		if strings.TrimSpace(u) == "" {
			return fmt.Errorf("natsbus: connect: empty URL in list %q", list)
		}
	}
	return nil
}
