package main

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/whistle-gov/whistle/adapters/attachments"
	"github.com/whistle-gov/whistle/adapters/caseno"
	"github.com/whistle-gov/whistle/adapters/pii"
	"github.com/whistle-gov/whistle/domain"
)

// openVault opens the key store of the requesters' personal data: a bucket
// on the bus beside the log, whatever the event store (an EventStoreDB log
// keeps its keys in NATS too, so destroying one never touches the log).
func openVault(ctx context.Context, opts options, nc *nats.Conn) (*pii.Vault, error) {
	js, err := natsjs.New(nc)
	if err != nil {
		return nil, fmt.Errorf("key store: %w", err)
	}
	return pii.Open(ctx, js, pii.Config{Replicas: opts.replicas})
}

// openCaseNumbers opens the receipts' case-number sequences, a bucket on
// the bus beside the log (days in the calendar's time zone).
func openCaseNumbers(ctx context.Context, opts options, nc *nats.Conn, dir *domain.Directory) (*caseno.Numbers, error) {
	js, err := natsjs.New(nc)
	if err != nil {
		return nil, fmt.Errorf("case numbers: %w", err)
	}
	return caseno.Open(ctx, js, dir.WorkCalendar().Location(), caseno.Config{Replicas: opts.replicas})
}

// openAttachments opens the object store bucket of the cases' files, on the
// bus beside the log like the keys, replicated as the other buckets.
func openAttachments(ctx context.Context, opts options, nc *nats.Conn) (*attachments.Store, error) {
	js, err := natsjs.New(nc)
	if err != nil {
		return nil, fmt.Errorf("attachment store: %w", err)
	}
	return attachments.Open(ctx, js, attachments.Config{Replicas: opts.replicas})
}
