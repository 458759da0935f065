// Package coretest gives the tests of the log's subscribers (dispatch, the SLA
// watcher, NATS authentication) a real service core in a temporary folder:
// an embedded NATS server with JetStream, the JetStream event store, a
// directory and the command handler.
package coretest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/whistle-gov/whistle/adapters/casehandler"
	"github.com/whistle-gov/whistle/adapters/casestate"
	"github.com/whistle-gov/whistle/adapters/config"
	"github.com/whistle-gov/whistle/adapters/eventstore/jetstream"
	"github.com/whistle-gov/whistle/adapters/natsbus"
	"github.com/whistle-gov/whistle/domain"
	"go.uber.org/zap"
)

// Directory is a small directory for tests: one street with a community of
// three units, two departments, an issue with a lead and an assist, a
// dispute and a need. An emergency must be reported in within a second and
// resolved within an hour; the ladder is district at once, then city after
// two seconds.
const Directory = `{
  "version": "test-1",
  "streets": [{"id": "longqiao", "name": "龙桥街道", "communities": [
    {"id": "wanhui", "name": "万辉社区", "units": ["putian-university", "putian-telecom", "putian-rural-commercial-bank"]}]},
    {"id": "zhenhai", "name": "镇海街道", "communities": [{"id": "wenxian", "name": "文献社区", "units": ["putian-telecom"]}]}],
  "departments": [{"id": "ecology-bureau", "name": "生态环境局"}, {"id": "water-bureau", "name": "水利局"},
                  {"id": "judicial-office", "name": "司法所"}],
  "units": [{"id": "putian-university", "name": "莆田学院"}, {"id": "putian-telecom", "name": "莆田电信"},
            {"id": "putian-rural-commercial-bank", "name": "莆田农商银行"}],
  "categories": [
    {"id": "river-pollution", "name": "河道污染", "kind": "issue", "lead": "ecology-bureau", "assist": ["water-bureau"]},
    {"id": "neighbour-dispute", "name": "邻里纠纷", "kind": "dispute", "lead": "judicial-office"},
    {"id": "after-school-care", "name": "四点半课堂", "kind": "need"}],
  "sla": {"routine": {"report_within": "30m", "resolve_within": "72h"},
          "urgent": {"report_within": "15m", "resolve_within": "24h"},
          "emergency": {"report_within": "1s", "resolve_within": "1h"}},
  "escalation": [{"level": "district", "after": "0s"}, {"level": "city", "after": "2s"}],
  "satisfaction_weights": {"satisfied": 1, "basically_satisfied": 0.9, "unsatisfied": 0}
}`

// Options shape an Env.
type Options struct {
	// Directory JSON; default Directory.
	Directory string
	// Now is the handler's clock; default time.Now.
	Now func() time.Time
	// ListenAddr lets network clients in (see natsbus.EmbeddedOptions).
	ListenAddr string
	// SyncAlways fsyncs every write, as whistled does by default.
	SyncAlways bool
	// Packed opens the packed log (whistled's default layout) instead of
	// the log of one message per commit.
	Packed bool
}

// Env is a running core.
type Env struct {
	Server  *server.Server
	Conn    *nats.Conn
	Store   *jetstream.Store
	Dir     *domain.Directory
	Handler *casehandler.Handler
	Log     *zap.Logger
}

// Start runs a core in t.TempDir(); it is stopped when the test ends.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	if opts.Directory == "" {
		opts.Directory = Directory
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	dir, err := config.ParseDirectory("test-directory.json", []byte(opts.Directory))
	if err != nil {
		t.Fatal(err)
	}
	ns, err := natsbus.StartEmbedded(natsbus.EmbeddedOptions{StoreDir: t.TempDir(), ListenAddr: opts.ListenAddr, SyncAlways: opts.SyncAlways})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	nc := Connect(t, ns)
	store, err := jetstream.Open(context.Background(), nc, jetstream.Config{Packed: opts.Packed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	log := zap.NewNop()
	return &Env{Server: ns, Conn: nc, Store: store, Dir: dir, Handler: casehandler.New(store, dir, opts.Now, log), Log: log}
}

// Connect opens an in-process connection to the env's server, closed when
// the test ends.
func Connect(t testing.TB, ns *server.Server) *nats.Conn {
	t.Helper()
	nc, err := natsbus.Connect(context.Background(), natsbus.ConnectConfig{Server: ns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Street and the others are principals of Directory.
var (
	Street  = domain.Actor{Role: domain.ActorStreet, ID: "longqiao"}
	Ecology = domain.Actor{Role: domain.ActorDepartment, ID: "ecology-bureau"}
	Water   = domain.Actor{Role: domain.ActorDepartment, ID: "water-bureau"}
	Units   = []domain.Actor{
		{Role: domain.ActorUnit, ID: "putian-university"},
		{Role: domain.ActorUnit, ID: "putian-telecom"},
		{Role: domain.ActorUnit, ID: "putian-rural-commercial-bank"},
	}
)

// Raise raises a whistle of category and urgency in longqiao/wanhui and
// returns the case.
func (e *Env) Raise(t testing.TB, category, urgency string) *domain.Case {
	t.Helper()
	res, err := e.Handler.Execute(context.Background(), casehandler.Request{
		CaseID: uuid.Must(uuid.NewV7()).String(), CommandID: uuid.NewString(), Actor: Street, New: true,
		Command: domain.Raise{Street: "longqiao", Community: "wanhui", Category: category, Urgency: urgency, Title: "河道有异味"},
	})
	if err != nil {
		t.Fatalf("raise %s %s: %v", category, urgency, err)
	}
	return res.Case
}

// Do runs a command on a case with a fresh command id.
func (e *Env) Do(t testing.TB, caseID string, actor domain.Actor, cmd domain.Command) *domain.Case {
	t.Helper()
	res, err := e.Handler.Execute(context.Background(), casehandler.Request{CaseID: caseID, CommandID: uuid.NewString(), Actor: actor, Command: cmd})
	if err != nil {
		t.Fatalf("%s by %s on %s: %v", cmd.CommandName(), actor, caseID, err)
	}
	return res.Case
}

// History reads a case's events.
func (e *Env) History(t testing.TB, caseID string) []domain.Envelope {
	t.Helper()
	h, err := casestate.ReadHistory(context.Background(), e.Store, caseID)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// Eventually polls cond every 10ms until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Errorf is fmt.Errorf, for conditions of Eventually.
func Errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// ErrNotYet is a condition's "not yet" without details.
var ErrNotYet = errors.New("not yet")

// Tokens authenticates a token "role:id" as that principal: an
// httpapi.Authenticator for tests of the HTTP routes.
type Tokens struct{}

// Authenticate implements httpapi.Authenticator.
func (Tokens) Authenticate(token string) (domain.Actor, bool) {
	role, id, ok := strings.Cut(token, ":")
	return domain.Actor{Role: domain.ActorRole(role), ID: id}, ok
}
