package natsbus

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// tokenAuth admits one token, with no rights to publish.
type tokenAuth string

func (a tokenAuth) Check(c server.ClientAuthentication) bool {
	if c.GetOpts().Token != string(a) {
		return false
	}
	c.RegisterUser(&server.User{Username: "reader", Permissions: &server.Permissions{Publish: &server.SubjectPermission{Deny: []string{">"}}}})
	return true
}

func TestSetClientAuthentication(t *testing.T) {
	ns := start(t, EmbeddedOptions{StoreDir: t.TempDir(), ListenAddr: "127.0.0.1:0"})
	url := ns.ClientURL()
	closed := make(chan struct{})
	early, err := nats.Connect(url, nats.NoReconnect(), nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	if err != nil {
		t.Fatalf("before authentication is installed: %v", err)
	}
	defer early.Close()

	if err := SetClientAuthentication(ns, tokenAuth("s3cret")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("a client admitted before authentication was installed kept its connection")
	}
	if nc, err := nats.Connect(url); err == nil {
		nc.Close()
		t.Fatal("connected without a token")
	}
	nc, err := nats.Connect(url, nats.Token("s3cret"))
	if err != nil {
		t.Fatalf("with the token: %v", err)
	}
	nc.Close()
	// The service's own in-process connection keeps full rights.
	own, err := Connect(t.Context(), ConnectConfig{Server: ns})
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	if _, err := own.Request("$JS.API.INFO", nil, 5*time.Second); err != nil {
		t.Fatalf("in-process request: %v", err)
	}

	quiet := start(t, EmbeddedOptions{StoreDir: t.TempDir()})
	if err := SetClientAuthentication(quiet, tokenAuth("x")); err == nil {
		t.Fatal("authentication installed on a server that does not listen")
	}
}

func TestRefuseClientsUntilAuthenticated(t *testing.T) {
	ns := start(t, EmbeddedOptions{StoreDir: t.TempDir(), ListenAddr: "127.0.0.1:0", RefuseClientsUntilAuthenticated: true})
	if nc, err := nats.Connect(ns.ClientURL()); err == nil {
		nc.Close()
		t.Fatal("a network client got in before authentication was installed")
	}
	own, err := Connect(t.Context(), ConnectConfig{Server: ns})
	if err != nil {
		t.Fatalf("in process: %v", err)
	}
	own.Close()
	if err := SetClientAuthentication(ns, tokenAuth("s3cret")); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(ns.ClientURL(), nats.Token("s3cret"))
	if err != nil {
		t.Fatalf("with the token: %v", err)
	}
	nc.Close()
}
