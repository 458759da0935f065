package natsauth_test

import (
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/whistle-gov/whistle/adapters/config"
	"github.com/whistle-gov/whistle/adapters/coretest"
	"github.com/whistle-gov/whistle/adapters/dispatch"
	whistlejs "github.com/whistle-gov/whistle/adapters/eventstore/jetstream"
	"github.com/whistle-gov/whistle/adapters/natsauth"
	"github.com/whistle-gov/whistle/adapters/natsbus"
)

// fixture is an embedded server that listens, with whistle's principals
// installed, a message in the dispatch stream for two departments.
type fixture struct {
	env    *coretest.Env
	url    string
	tokens map[string]string // "role:id" → token
	js     jetstream.JetStream
}

func setup(t *testing.T) *fixture { return setupLayout(t, false) }

// setupLayout is setup on the log of one message per commit or, packed, on
// the packed log and its index, with the streams an auditor may read.
func setupLayout(t *testing.T, packed bool) *fixture { return setupWith(t, packed, "") }

// setupWith is setupLayout with a directory of its own ("": coretest's).
func setupWith(t *testing.T, packed bool, directory string) *fixture {
	t.Helper()
	env := coretest.Start(t, coretest.Options{ListenAddr: "127.0.0.1:0", Packed: packed, Directory: directory})
	principals, issued, err := config.EnsurePrincipals(filepath.Join(t.TempDir(), "principals.json"), env.Dir, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{env: env, url: env.Server.ClientURL(), tokens: map[string]string{}}
	for _, it := range issued {
		f.tokens[it.Actor.String()] = it.Token
	}
	ctx := context.Background()
	if f.js, err = jetstream.New(env.Conn); err != nil {
		t.Fatal(err)
	}
	if _, err := dispatch.EnsureStream(ctx, f.js, dispatch.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := natsauth.EnsureConsumers(ctx, f.js, dispatch.StreamName, principals.Actors()); err != nil {
		t.Fatal(err)
	}
	logStreams, logSubjects := whistlejs.ReadableStreams(whistlejs.Config{Packed: packed})
	auth, err := natsauth.Install(env.Server, natsauth.Config{Principals: principals, Actors: principals.Actors(),
		EventStreams: logStreams, EventSubjects: logSubjects})
	if err != nil {
		t.Fatal(err)
	}
	if err := natsbus.SetClientAuthentication(env.Server, auth); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"ecology-bureau", "water-bureau"} {
		if _, err := f.js.Publish(ctx, dispatch.DispatchSubject(a), []byte(`{"for":"`+a+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// client connects as a principal and collects its asynchronous errors
// (permissions violations).
type client struct {
	nc         *nats.Conn
	js         jetstream.JetStream
	violations chan error
}

func (f *fixture) connect(t *testing.T, principal string) *client {
	t.Helper()
	c := &client{violations: make(chan error, 16)}
	nc, err := nats.Connect(f.url, nats.Token(f.tokens[principal]), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case c.violations <- err:
		default:
		}
	}))
	if err != nil {
		t.Fatalf("%s connects: %v", principal, err)
	}
	t.Cleanup(nc.Close)
	c.nc = nc
	c.js, _ = jetstream.New(nc)
	return c
}

// denied waits for the server's permissions violation naming subject.
func (c *client) denied(t *testing.T, what, subject string) {
	t.Helper()
	deadline := time.After(3 * time.Second)
	for {
		select {
		case err := <-c.violations:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), subject) {
				return
			}
		case <-deadline:
			t.Fatalf("%s: no permissions violation for %s", what, subject)
		}
	}
}

func short() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 500*time.Millisecond)
}

func TestDepartmentReadsOnlyItsOwn(t *testing.T) {
	f := setup(t)
	eco := f.connect(t, "department:ecology-bureau")

	// Its durable consumer: the message for it, acknowledged.
	ctx := context.Background()
	cons, err := eco.js.Consumer(ctx, dispatch.StreamName, "ecology-bureau")
	if err != nil {
		t.Fatalf("own consumer: %v", err)
	}
	batch, err := cons.Fetch(10, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for m := range batch.Messages() {
		got = append(got, string(m.Data()))
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
	if len(got) != 1 || got[0] != `{"for":"ecology-bureau"}` {
		t.Fatalf("own consumer gave %q", got)
	}
	// Its live subject.
	live, err := eco.nc.SubscribeSync(dispatch.DispatchSubject("ecology-bureau"))
	if err != nil {
		t.Fatal(err)
	}
	eco.nc.Flush()
	if _, err := f.js.Publish(ctx, dispatch.DispatchSubject("ecology-bureau"), []byte(`{"live":true}`)); err != nil {
		t.Fatal(err)
	}
	if m, err := live.NextMsg(2 * time.Second); err != nil || string(m.Data) != `{"live":true}` {
		t.Fatalf("own live subject: %v", err)
	}

	// Another's subject, consumer, or a consumer of its own making: refused.
	if _, err := eco.nc.SubscribeSync(dispatch.DispatchSubject("water-bureau")); err != nil {
		t.Fatal(err)
	}
	eco.nc.Flush()
	eco.denied(t, "subscribe to another's subject", "whistle.dispatch.water-bureau")

	sctx, cancel := short()
	_, err = eco.js.Consumer(sctx, dispatch.StreamName, "water-bureau")
	cancel()
	if err == nil {
		t.Fatal("read another department's consumer")
	}
	eco.denied(t, "another's consumer", "CONSUMER.INFO."+dispatch.StreamName+".water-bureau")

	sctx, cancel = short()
	_, err = eco.js.CreateOrUpdateConsumer(sctx, dispatch.StreamName, jetstream.ConsumerConfig{Durable: "sneaky", FilterSubject: dispatch.DispatchSubject("water-bureau")})
	cancel()
	if err == nil {
		t.Fatal("created a consumer on another department's subject")
	}
	eco.denied(t, "create a consumer on another's subject", "CONSUMER.CREATE")

	// Not even on its own subject: a consumer's configuration (a deliver
	// subject) would make the server publish where the client likes.
	sctx, cancel = short()
	oc, err := eco.js.OrderedConsumer(sctx, dispatch.StreamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{dispatch.DispatchSubject("ecology-bureau")}})
	if err == nil {
		_, err = oc.Fetch(1, jetstream.FetchMaxWait(300*time.Millisecond)) // creates the consumer
	}
	cancel()
	if err == nil {
		t.Fatal("a department configured a consumer of its own")
	}
	eco.denied(t, "create a consumer on its own subject", "CONSUMER.CREATE")

	if err := eco.nc.Publish(dispatch.DispatchSubject("water-bureau"), []byte("forged")); err != nil {
		t.Fatal(err)
	}
	eco.nc.Flush()
	eco.denied(t, "publish a dispatch", "whistle.dispatch.water-bureau")

	// The water bureau's message is still there, unread.
	info, err := f.js.Consumer(ctx, dispatch.StreamName, "water-bureau")
	if err != nil {
		t.Fatal(err)
	}
	if ci, err := info.Info(ctx); err != nil || ci.NumPending != 1 {
		t.Fatalf("water's consumer: %+v %v", ci, err)
	}
}

// TestRepliesCannotReachTheLog: JetStream answers a fetch on the reply
// subject the client chose. In its own account that can only be its own;
// were it in the service's account, the answer would land in the event log.
func TestRepliesCannotReachTheLog(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	events, err := f.js.Stream(ctx, "WHISTLE_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	before, err := events.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	eco := f.connect(t, "department:ecology-bureau")
	if err := eco.nc.PublishRequest("$JS.API.CONSUMER.MSG.NEXT."+dispatch.StreamName+".ecology-bureau", "whistle.events.case-forged", []byte(`{"batch":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := eco.nc.PublishRequest("$JS.API.CONSUMER.INFO."+dispatch.StreamName+".ecology-bureau", "whistle.events.case-forged", nil); err != nil {
		t.Fatal(err)
	}
	eco.nc.Flush()
	time.Sleep(300 * time.Millisecond)
	after, err := events.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.State.Msgs != before.State.Msgs {
		t.Fatalf("a department's reply reached the event log: %d messages, were %d", after.State.Msgs, before.State.Msgs)
	}
}

func TestAuditorReadsEverythingStreetItsOwn(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	aud := f.connect(t, "auditor:auditor")
	s, err := aud.js.Stream(ctx, dispatch.StreamName)
	if err != nil {
		t.Fatalf("auditor stream info: %v", err)
	}
	for seq := uint64(1); seq <= 2; seq++ {
		if _, err := s.GetMsg(ctx, seq); err != nil {
			t.Fatalf("auditor reads message %d: %v", seq, err)
		}
	}
	sub, err := aud.nc.SubscribeSync("whistle.dispatch.>")
	if err != nil {
		t.Fatal(err)
	}
	aud.nc.Flush()
	f.js.Publish(ctx, dispatch.DispatchSubject("water-bureau"), []byte("x"))
	if _, err := sub.NextMsg(2 * time.Second); err != nil {
		t.Fatalf("auditor live: %v", err)
	}
	// Reading is all: no consumer of its own making.
	sctx, cancel := short()
	_, err = aud.js.CreateOrUpdateConsumer(sctx, dispatch.StreamName, jetstream.ConsumerConfig{Durable: "audit"})
	cancel()
	if err == nil {
		t.Fatal("an auditor created a consumer")
	}

	street := f.connect(t, "street:longqiao")
	own, err := street.nc.SubscribeSync(dispatch.StreetSubject("longqiao"))
	if err != nil {
		t.Fatal(err)
	}
	street.nc.Flush()
	f.js.Publish(ctx, dispatch.StreetSubject("longqiao"), []byte("y"))
	if _, err := own.NextMsg(2 * time.Second); err != nil {
		t.Fatalf("street live: %v", err)
	}
	street.nc.SubscribeSync(dispatch.StreetSubject("zhenhai"))
	street.nc.Flush()
	street.denied(t, "another street", "whistle.notify.street.zhenhai")
}

// TestAuditorReadsThePackedLog: on the packed log an auditor reads the log's
// batches and a case's history from the index, live too, and may not
// listen to the owner's request subject (forwarded appends) nor read
// anything of a street.
func TestAuditorReadsThePackedLog(t *testing.T) {
	f := setupLayout(t, true)
	ctx := context.Background()
	c := f.env.Raise(t, "river-pollution", "urgent")
	aud := f.connect(t, "auditor:auditor")
	for _, name := range []string{"WHISTLE_LOG", "WHISTLE_INDEX"} {
		s, err := aud.js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("auditor stream info %s: %v", name, err)
		}
		if _, err := s.GetMsg(ctx, 1); err != nil {
			t.Fatalf("auditor reads %s's first message: %v", name, err)
		}
	}
	idx, err := aud.js.Stream(ctx, "WHISTLE_INDEX")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := idx.GetLastMsgForSubject(ctx, "whistle.index.case-"+c.ID); err != nil {
		t.Fatalf("auditor reads the case's history from the index: %v", err)
	}
	live, err := aud.nc.SubscribeSync("whistle.log.p0")
	if err != nil {
		t.Fatal(err)
	}
	aud.nc.Flush()
	f.env.Raise(t, "river-pollution", "urgent")
	if _, err := live.NextMsg(3 * time.Second); err != nil {
		t.Fatalf("auditor follows the packed log live: %v", err)
	}
	aud.nc.SubscribeSync("whistle.log.rpc.>")
	aud.nc.Flush()
	aud.denied(t, "the owner's request subject", "whistle.log.rpc.>")
}

func TestUnknownTokenRefused(t *testing.T) {
	f := setup(t)
	if nc, err := nats.Connect(f.url, nats.Token("wst_not-a-token")); err == nil {
		nc.Close()
		t.Fatal("connected with an unknown token")
	}
	if nc, err := nats.Connect(f.url); err == nil {
		nc.Close()
		t.Fatal("connected without a token")
	}
}
