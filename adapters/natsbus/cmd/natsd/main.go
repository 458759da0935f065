// Command natsd is a nats-server built from the module version whistle
// depends on, for tests and scripts that need a NATS server in a separate
// process (an "external" server, or the members of a cluster).
//
// It logs to stderr and, once it accepts clients, prints one line to stdout:
//
//	natsd ready nats://127.0.0.1:41234
//
// so that a caller that asked for port 0 learns the port. It stops on SIGINT
// or SIGTERM.
//
// Usage:
//
//	natsd -addr 127.0.0.1:0 -js -store /tmp/js [-sync] [-server_name n1]
//	      [-cluster_name whistle -cluster 127.0.0.1:6222 -routes nats-route://127.0.0.1:6223,...]
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "natsd:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		addr        = flag.String("addr", "127.0.0.1:4222", "client listen `host:port`; port 0 picks a free one")
		store       = flag.String("store", "", "JetStream storage `dir` (required with -js)")
		js          = flag.Bool("js", false, "enable JetStream")
		sync        = flag.Bool("sync", false, "fsync every JetStream write (default: interval sync)")
		serverName  = flag.String("server_name", "", "server `name` (required in a JetStream cluster)")
		clusterName = flag.String("cluster_name", "", "cluster `name`")
		clusterAddr = flag.String("cluster", "", "cluster (route) listen `host:port`")
		routes      = flag.String("routes", "", "comma-separated route `urls`, e.g. nats-route://127.0.0.1:6222")
	)
	flag.Parse()

	host, port, err := hostPort("addr", *addr)
	if err != nil {
		return err
	}
	opts := &server.Options{
		ServerName: *serverName,
		Host:       host,
		Port:       port,
		JetStream:  *js,
		StoreDir:   *store,
		SyncAlways: *sync,
	}
	if *js && *store == "" {
		return fmt.Errorf("-js needs -store")
	}
	if *clusterAddr != "" {
		h, p, err := hostPort("cluster", *clusterAddr)
		if err != nil {
			return err
		}
		opts.Cluster.Name = *clusterName
		opts.Cluster.Host, opts.Cluster.Port = h, p
	}
	if *routes != "" {
		opts.Routes = server.RoutesFromStr(*routes)
		if len(opts.Routes) == 0 {
			return fmt.Errorf("-routes %q: no valid route URL", *routes)
		}
	}

	ns, err := server.NewServer(opts)
	if err != nil {
		return err
	}
	// NewServer has installed the server's own SIGINT/SIGTERM handling
	// (opts.NoSigs is false), which shuts down cleanly.
	ns.ConfigureLogger()
	ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return fmt.Errorf("not ready for connections after 30s")
	}
	fmt.Printf("natsd ready %s\n", ns.ClientURL())
	ns.WaitForShutdown()
	return nil
}

func hostPort(flagName, addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("-%s %q: %w", flagName, addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("-%s %q: bad port", flagName, addr)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	return h, port, nil
}
