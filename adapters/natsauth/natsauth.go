// Package natsauth lets whistle's principals use the embedded NATS server
// directly, each seeing only what is its own.
//
// A client logs in with its whistle token (nats.Token). The token's SHA-256
// is checked against the principals, and the client is placed in an account
// of its own, which imports from the service's account (where the streams
// live) only what that principal may see:
//
//   - a department or unit: live messages on whistle.dispatch.<id>, and its
//     durable pull consumer <id> on the dispatch stream (info, fetch, ack);
//   - a street: live messages on whistle.notify.street.<id>;
//   - a platform: live messages on whistle.outbox.<id>, its replies;
//   - an auditor: every subject of the dispatch stream and of the event log,
//     live, and reading both streams by sequence (stream info, message get,
//     direct get).
//
// On top, each user's permissions allow exactly those subjects (and its own
// _INBOX.> for replies), so anything else is refused with a permissions
// violation. A separate account per principal is what makes this safe:
// JetStream answers a request on the reply subject the client chose, and
// with the service's own account that reply could be any subject, for
// instance one that the event log stream captures. In its own account a
// client's replies can only reach itself.
//
// The consumers are created by the service (EnsureConsumers), never by
// clients, because a consumer's configuration (its deliver subject) would
// again let a client make the server publish where it likes.
package natsauth

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/whistle-gov/whistle/domain"
)

// Authenticator maps a token to its principal; *config.Principals is one.
type Authenticator interface {
	Authenticate(token string) (domain.Actor, bool)
}

// Config says whom to admit and which streams they read.
type Config struct {
	// Principals authenticates tokens.
	Principals Authenticator
	// Actors are every principal, so that their accounts exist before any
	// client connects.
	Actors []domain.Actor
	// DispatchStream is the stream of dispatches; default "WHISTLE_DISPATCH".
	DispatchStream string
	// EventStreams are the event log's streams, which auditors may read;
	// default "WHISTLE_EVENTS" (the packed log: "WHISTLE_LOG" and its
	// index "WHISTLE_INDEX").
	EventStreams []string
	// EventSubjects are the event log's subjects; default
	// "whistle.events.>" (the packed log: "whistle.log.p0" and
	// "whistle.index.>", never the owner's request subjects).
	EventSubjects []string
}

func (c *Config) setDefaults() {
	if c.DispatchStream == "" {
		c.DispatchStream = "WHISTLE_DISPATCH"
	}
	if len(c.EventStreams) == 0 {
		c.EventStreams = []string{"WHISTLE_EVENTS"}
	}
	if len(c.EventSubjects) == 0 {
		c.EventSubjects = []string{"whistle.events.>"}
	}
}

// Auth is a server.Authentication for whistle's principals. Install it with
// natsbus.SetClientAuthentication.
type Auth struct {
	cfg      Config
	mu       sync.RWMutex
	accounts map[domain.Actor]*server.Account
}

// access is what one principal may do, as imports and as permissions.
type access struct {
	streams  []string // subjects imported as streams and allowed to subscribe
	services []string // subjects imported as services and allowed to publish
}

// accessOf lists the subjects a principal may use; nothing for an unknown
// role.
func (c *Config) accessOf(a domain.Actor) access {
	api := "$JS.API."
	switch a.Role {
	case domain.ActorDepartment, domain.ActorUnit:
		return access{
			streams: []string{"whistle.dispatch." + a.ID},
			services: []string{
				api + "CONSUMER.INFO." + c.DispatchStream + "." + a.ID,
				api + "CONSUMER.MSG.NEXT." + c.DispatchStream + "." + a.ID,
				"$JS.ACK." + c.DispatchStream + "." + a.ID + ".>",
			},
		}
	case domain.ActorStreet:
		return access{streams: []string{"whistle.notify.street." + a.ID}}
	case domain.ActorPlatform:
		// Its replies, live (the outbox route pages them by sequence).
		return access{streams: []string{"whistle.outbox." + a.ID}}
	case domain.ActorAuditor:
		var svc []string
		for _, s := range append([]string{c.DispatchStream}, c.EventStreams...) {
			svc = append(svc, api+"STREAM.INFO."+s, api+"STREAM.MSG.GET."+s, api+"DIRECT.GET."+s, api+"DIRECT.GET."+s+".>")
		}
		return access{streams: append([]string{"whistle.dispatch.>", "whistle.notify.>", "whistle.outbox.>"}, c.EventSubjects...), services: svc}
	}
	return access{}
}

// Permissions returns the permissions of a principal's NATS user: publish
// only its service subjects, subscribe only its stream subjects and its
// inbox. Nil for a role that may not log in.
func (c Config) Permissions(a domain.Actor) *server.Permissions {
	c.setDefaults()
	acc := c.accessOf(a)
	if len(acc.streams) == 0 {
		return nil
	}
	pub := &server.SubjectPermission{Allow: acc.services}
	if len(acc.services) == 0 {
		pub = &server.SubjectPermission{Deny: []string{">"}}
	}
	return &server.Permissions{
		Publish:   pub,
		Subscribe: &server.SubjectPermission{Allow: append([]string{"_INBOX.>"}, acc.streams...)},
	}
}

// Install exports from ns's global account (the service's, where the
// streams live) what principals may import, creates one account per
// principal with its imports, and returns the authenticator. Call it once
// per server, before installing the authenticator.
func Install(ns *server.Server, cfg Config) (*Auth, error) {
	cfg.setDefaults()
	if cfg.Principals == nil {
		return nil, fmt.Errorf("natsauth: no principals")
	}
	g := ns.GlobalAccount()
	// Exports are public: only this package creates accounts that import
	// them, each importing its own subjects.
	streamExports := append([]string{"whistle.dispatch.>", "whistle.notify.>", "whistle.outbox.>"}, cfg.EventSubjects...)
	for _, s := range streamExports {
		if err := g.AddStreamExport(s, nil); err != nil {
			return nil, fmt.Errorf("natsauth: export stream %s: %w", s, err)
		}
	}
	api := "$JS.API."
	type svc struct {
		subject  string
		streamed bool // several replies to one request
	}
	services := []svc{
		{api + "CONSUMER.INFO." + cfg.DispatchStream + ".*", false},
		{api + "CONSUMER.MSG.NEXT." + cfg.DispatchStream + ".*", true},
		{"$JS.ACK." + cfg.DispatchStream + ".>", false},
	}
	for _, s := range append([]string{cfg.DispatchStream}, cfg.EventStreams...) {
		services = append(services,
			svc{api + "STREAM.INFO." + s, false},
			svc{api + "STREAM.MSG.GET." + s, false},
			svc{api + "DIRECT.GET." + s, true},
			svc{api + "DIRECT.GET." + s + ".>", false})
	}
	for _, s := range services {
		rt := server.Singleton
		if s.streamed {
			rt = server.Streamed
		}
		if err := g.AddServiceExportWithResponse(s.subject, rt, nil); err != nil {
			return nil, fmt.Errorf("natsauth: export service %s: %w", s.subject, err)
		}
	}
	a := &Auth{cfg: cfg, accounts: map[domain.Actor]*server.Account{}}
	actors := append([]domain.Actor(nil), cfg.Actors...)
	sort.Slice(actors, func(i, j int) bool { return actors[i].String() < actors[j].String() })
	for _, actor := range actors {
		acc := cfg.accessOf(actor)
		if len(acc.streams) == 0 {
			continue
		}
		account, err := ns.RegisterAccount("whistle-" + string(actor.Role) + "-" + actor.ID)
		if err != nil {
			return nil, fmt.Errorf("natsauth: account for %s: %w", actor, err)
		}
		for _, s := range acc.streams {
			if err := account.AddStreamImport(g, s, ""); err != nil {
				return nil, fmt.Errorf("natsauth: %s imports stream %s: %w", actor, s, err)
			}
		}
		for _, s := range acc.services {
			if err := account.AddServiceImport(g, s, ""); err != nil {
				return nil, fmt.Errorf("natsauth: %s imports service %s: %w", actor, s, err)
			}
		}
		a.accounts[actor] = account
	}
	return a, nil
}

// Check implements server.Authentication: the client's token must be a
// principal's; the client is then registered in that principal's account
// with its permissions. Tokens are never logged.
func (a *Auth) Check(c server.ClientAuthentication) bool {
	token := c.GetOpts().Token
	if token == "" {
		token = c.GetOpts().Password // nats://user:token@host works too
	}
	actor, ok := a.cfg.Principals.Authenticate(token)
	if !ok {
		return false
	}
	a.mu.RLock()
	account := a.accounts[actor]
	a.mu.RUnlock()
	perms := a.cfg.Permissions(actor)
	if account == nil || perms == nil {
		return false
	}
	c.RegisterUser(&server.User{Username: actor.String(), Account: account, Permissions: perms})
	return true
}

// ConsumerConfig is the durable pull consumer through which an assignee
// reads its dispatches: named after it, filtered on its subject, explicit
// acknowledgements.
func ConsumerConfig(assignee string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       assignee,
		Description:   "dispatches to " + assignee + ", for its own clients",
		FilterSubject: "whistle.dispatch." + assignee,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		MaxAckPending: 1000,
	}
}

// EnsureConsumers creates (or updates) the durable consumer of every
// department and unit among actors on the dispatch stream.
func EnsureConsumers(ctx context.Context, js jetstream.JetStream, stream string, actors []domain.Actor) error {
	for _, a := range actors {
		if !a.IsAssignee() {
			continue
		}
		if _, err := js.CreateOrUpdateConsumer(ctx, stream, ConsumerConfig(a.ID)); err != nil {
			return fmt.Errorf("natsauth: consumer %s on stream %s: %w", a.ID, stream, err)
		}
	}
	return nil
}
