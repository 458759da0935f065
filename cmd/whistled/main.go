// Command whistled is the whistle service: the HTTP API, the event store
// (embedded NATS JetStream by default), and the workers that follow the log.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "whistled:", err)
		os.Exit(1)
	}
}
