package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/whistle-gov/whistle/adapters/casehandler"
	"github.com/whistle-gov/whistle/adapters/casestate"
	"github.com/whistle-gov/whistle/adapters/config"
	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/adapters/eventstore/esdb"
	"github.com/whistle-gov/whistle/adapters/eventstore/jetstream"
	"github.com/whistle-gov/whistle/adapters/follow"
	"github.com/whistle-gov/whistle/adapters/httpapi"
	"github.com/whistle-gov/whistle/adapters/metrics"
	"github.com/whistle-gov/whistle/adapters/natsbus"
	"github.com/whistle-gov/whistle/domain"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// shutdownGrace is how long in-flight requests may take to finish on SIGTERM.
const shutdownGrace = 15 * time.Second

// run starts whistled and blocks until ctx is done, then drains and closes.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	opts, err := parseOptions(args, getenv, stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(opts.logLevel, stderr)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck // stderr may not sync; nothing to do

	dir, err := loadDirectory(opts.directory)
	if err != nil {
		return err
	}
	// Bind first: a start that fails here (the port is taken) must not
	// have minted and printed tokens that the next start would not show.
	listener, err := net.Listen("tcp", opts.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", opts.addr, err)
	}
	defer listener.Close() // Serve closes it; this covers a start that fails first
	if err := os.MkdirAll(opts.data, 0o700); err != nil {
		return fmt.Errorf("data folder %s: %w", opts.data, err)
	}
	loaded, issued, err := config.EnsurePrincipals(opts.principals, dir, rand.Reader)
	if err != nil {
		return err
	}
	principals := newLivePrincipals(loaded)
	principals.reloadOnHangUp(ctx, opts.principals, dir, log)
	if len(issued) > 0 {
		printTokens(stdout, opts.principals, issued)
	}

	bus, err := connectBus(ctx, opts, log)
	if err != nil {
		return err
	}
	defer bus.close()

	var store eventstore.Store
	// The metrics read the log's head once the store is open (nothing
	// scrapes them before whistled serves).
	mtr := metrics.New(func(ctx context.Context) (eventstore.Position, error) { return store.Head(ctx) })
	opts, err = opts.resolveLayout(func() (bool, error) {
		return jetstream.HoldsPerMessageLog(ctx, bus.nc, jetstream.Config{})
	})
	if err != nil {
		return err
	}
	store, err = openStore(ctx, opts, bus.nc, log, mtr.BatchCommits)
	if err != nil {
		return err
	}
	defer store.Close()

	vault, err := openVault(ctx, opts, bus.nc)
	if err != nil {
		return err
	}
	caseNumbers, err := openCaseNumbers(ctx, opts, bus.nc, dir)
	if err != nil {
		return err
	}
	files, err := openAttachments(ctx, opts, bus.nc)
	if err != nil {
		return err
	}
	handler := casehandler.New(store, dir, time.Now, log)
	handler.SetMaxEvents(opts.maxEventsPerCase)
	// One cache of case states and one subscription to the log, shared by
	// the handler and every follower (casestate, follow).
	cases := casestate.New(store, 0)
	handler.SetCache(cases)
	followers := follow.New(store, follow.Options{Log: log.Named("follow")})
	deps := &deps{opts: opts, log: log, dir: dir, store: store, bus: bus, handler: handler, principals: principals, metrics: mtr,
		cases: cases, follow: followers}
	workCtx, stopWork := context.WithCancel(context.Background())
	followDone := make(chan struct{})
	go func() {
		defer close(followDone)
		_ = followers.Run(workCtx)
	}()
	started, err := startComponents(workCtx, deps, components())
	if err != nil {
		stopWork()
		<-followDone
		return err
	}
	// Components end their work before the store and the bus close (deferred earlier).
	defer func() { stopWork(); started.stop(); <-followDone }()
	apiCfg := httpapi.Config{
		Handler:     handler,
		Store:       store,
		Directory:   dir,
		Auth:        principals,
		Requesters:  vault,
		CaseNumbers: caseNumbers,
		Attachments: files,
		Log:         log,
		Ready: func(ctx context.Context) error {
			if !bus.nc.IsConnected() {
				return errors.New("not connected to NATS")
			}
			if _, err := store.Head(ctx); err != nil {
				return fmt.Errorf("event store: %w", err)
			}
			return started.ready(ctx)
		},
		Observer:               mtr,
		MaxInFlight:            opts.maxInFlight,
		MaxStreamsPerPrincipal: opts.maxStreams,
	}
	started.serve(&apiCfg)
	api := httpapi.New(apiCfg)

	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second, // long-lived streams lift it per request
		IdleTimeout:       120 * time.Second,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
	// Event streams end at once on shutdown; requests in flight drain.
	srv.RegisterOnShutdown(api.EndStreams)
	log.Info("whistled ready", zap.String("addr", listener.Addr().String()), zap.String("data", opts.data),
		zap.String("store", storeName(opts)), zap.String("log_layout", layoutName(opts)), zap.String("nats", natsName(opts)),
		zap.String("directory", dir.Version), zap.String("fsync", opts.fsync))

	var wg sync.WaitGroup
	serveErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(listener); !errors.Is(err, http.ErrServerClosed) {
			serveErr <- err
		}
	}()

	select {
	case <-ctx.Done():
		log.Info("shutting down: draining requests")
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	}
	drainCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(drainCtx); err != nil {
		log.Warn("requests still running at shutdown", zap.Error(err))
	}
	wg.Wait()
	log.Info("stopped")
	return nil
}

func newLogger(level string, out io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.Lock(zapcore.AddSync(out)), lvl)
	return zap.New(core), nil
}

func loadDirectory(path string) (*domain.Directory, error) {
	if path == "" {
		return config.SampleDirectory()
	}
	return config.LoadDirectory(path)
}

// printTokens shows freshly issued tokens once: they are stored only as hashes.
func printTokens(out io.Writer, path string, issued []config.IssuedToken) {
	fmt.Fprintf(out, "whistled: created %s with %d principals. Their tokens are shown once, here; only their SHA-256 is stored.\n", path, len(issued))
	for _, t := range issued {
		fmt.Fprintf(out, "  %-10s %-32s %s\n", t.Actor.Role, t.Actor.ID, t.Token)
	}
}

// bus is the NATS connection, and the embedded server when whistled runs one.
type bus struct {
	embedded *server.Server
	nc       *nats.Conn
}

func (b *bus) close() {
	if b.nc != nil {
		b.nc.Close()
	}
	if b.embedded != nil {
		b.embedded.Shutdown()
		b.embedded.WaitForShutdown()
	}
}

func connectBus(ctx context.Context, opts options, log *zap.Logger) (*bus, error) {
	b := &bus{}
	cfg := natsbus.ConnectConfig{Name: "whistled", Logger: log.Named("nats")}
	if opts.nats == "" {
		ns, err := natsbus.StartEmbedded(natsbus.EmbeddedOptions{
			StoreDir:   filepath.Join(opts.data, "jetstream"),
			SyncAlways: opts.fsync == "always",
			ListenAddr: opts.natsListen,
			// Network clients wait for their principals (component
			// nats-auth) rather than get in with full rights meanwhile.
			RefuseClientsUntilAuthenticated: true,
		})
		if err != nil {
			return nil, err
		}
		b.embedded = ns
		cfg.Server = ns
	} else {
		cfg.URLs = opts.nats
	}
	nc, err := natsbus.Connect(ctx, cfg)
	if err != nil {
		b.close()
		return nil, err
	}
	b.nc = nc
	return b, nil
}

func openStore(ctx context.Context, opts options, nc *nats.Conn, log *zap.Logger, batches jetstream.BatchObserver) (eventstore.Store, error) {
	if opts.store != "jetstream" {
		// An esdb:// or esdb+discover:// connection string (checked by
		// parseOptions); NATS stays the bus.
		return esdb.Open(ctx, esdb.Config{URL: opts.store, Logger: log})
	}
	cfg := jetstream.Config{Replicas: opts.replicas, BatchObserver: batches, Logger: log}
	switch {
	case opts.packed():
		cfg.Packed = true
		if opts.nats == "" {
			// The embedded server dies with this process: its index may
			// skip the fsync per copy (DESIGN.md §11).
			cfg.IndexAsync = true
			cfg.IndexDurableAfter = 3 * natsbus.EmbeddedSyncInterval
		}
	case !opts.groupCommitOn():
		cfg.MaxBatch = 1 // one publish per commit
	}
	if err := jetstream.CheckLayout(ctx, nc, cfg); err != nil {
		return nil, err
	}
	return jetstream.Open(ctx, nc, cfg)
}

func storeName(opts options) string {
	if opts.store == "jetstream" {
		return "jetstream"
	}
	return "esdb" // the URL may carry credentials: never log it
}

func layoutName(opts options) string {
	switch {
	case opts.store != "jetstream":
		return "esdb"
	case opts.packed():
		return "packed"
	}
	return "per-message"
}

func natsName(opts options) string {
	if opts.nats == "" {
		return "embedded"
	}
	return "external"
}
