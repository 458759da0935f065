package main

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/whistle-gov/whistle/adapters/dispatch"
	whistlejs "github.com/whistle-gov/whistle/adapters/eventstore/jetstream"
	"github.com/whistle-gov/whistle/adapters/natsauth"
	"github.com/whistle-gov/whistle/adapters/natsbus"
	"go.uber.org/zap"
)

// Direct NATS: with --nats-listen the embedded server accepts clients, each
// department, unit, street and auditor logging in with its whistle token
// and seeing only its own (see package natsauth). Without --nats-listen
// nobody outside the process can connect; with an external NATS server
// (--nats) its operator's accounts decide who may read what.
func startNATSAuth(ctx context.Context, d *deps) (running, error) {
	if d.bus.embedded == nil || d.opts.natsListen == "" {
		return running{}, nil
	}
	js, err := jetstream.New(d.bus.nc)
	if err != nil {
		return running{}, err
	}
	// Created here, before the dispatcher, for the consumers; it is idempotent.
	if _, err := dispatch.EnsureStream(ctx, js, dispatchStream(d)); err != nil {
		return running{}, err
	}
	actors := d.principals.Actors()
	if err := natsauth.EnsureConsumers(ctx, js, dispatch.StreamName, actors); err != nil {
		return running{}, err
	}
	logStreams, logSubjects := whistlejs.ReadableStreams(whistlejs.Config{Packed: d.opts.packed()})
	auth, err := natsauth.Install(d.bus.embedded, natsauth.Config{Principals: d.principals, Actors: actors, DispatchStream: dispatch.StreamName,
		EventStreams: logStreams, EventSubjects: logSubjects})
	if err != nil {
		return running{}, err
	}
	if err := natsbus.SetClientAuthentication(d.bus.embedded, auth); err != nil {
		return running{}, fmt.Errorf("nats client authentication: %w", err)
	}
	d.log.Info("nats clients log in with their whistle token", zap.String("nats_url", d.bus.embedded.ClientURL()), zap.Int("principals", len(actors)))
	return running{}, nil
}
