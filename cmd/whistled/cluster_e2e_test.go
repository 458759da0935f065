package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/whistle-gov/whistle/adapters/eventstore/esdb/esdbtest"
	"github.com/whistle-gov/whistle/adapters/eventstore/jetstream"
	"github.com/whistle-gov/whistle/cmd/whistled/whistledtest"
)

// ---- a three-node NATS cluster of natsd processes ----

var natsdBuild struct {
	once sync.Once
	bin  string
	err  error
}

// natsdBin builds adapters/natsbus/cmd/natsd (a nats-server from the
// module's version) once per test process.
func natsdBin(t *testing.T) string {
	t.Helper()
	natsdBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "whistle-natsd-")
		if err != nil {
			natsdBuild.err = err
			return
		}
		natsdBuild.bin = filepath.Join(dir, "natsd")
		out, err := exec.Command("go", "build", "-o", natsdBuild.bin, "github.com/whistle-gov/whistle/adapters/natsbus/cmd/natsd").CombinedOutput()
		if err != nil {
			natsdBuild.err = fmt.Errorf("go build natsd: %v\n%s", err, out)
		}
	})
	if natsdBuild.err != nil {
		t.Fatal(natsdBuild.err)
	}
	return natsdBuild.bin
}

// natsNode is one natsd process of the cluster.
type natsNode struct {
	name   string
	url    string
	cmd    *exec.Cmd
	exited chan struct{}
	stderr *strings.Builder
	mu     sync.Mutex
}

func (n *natsNode) logs() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stderr.String()
}

type lockedWriter struct{ n *natsNode }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.n.mu.Lock()
	defer w.n.mu.Unlock()
	return w.n.stderr.Write(p)
}

// kill ends the node at once, as a crash or a pulled cable would.
func (n *natsNode) kill() {
	select {
	case <-n.exited:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
}

func loopbackPorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		defer l.Close()
	}
	return ports
}

// startNatsCluster starts three natsd processes on loopback with JetStream
// (fsync always), routed to each other, and waits until JetStream answers
// (the cluster elected its meta leader).
func startNatsCluster(t *testing.T) []*natsNode {
	t.Helper()
	bin := natsdBin(t)
	routePorts := loopbackPorts(t, 3)
	var routes []string
	for _, p := range routePorts {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	nodes := make([]*natsNode, 3)
	for i := range nodes {
		n := &natsNode{name: fmt.Sprintf("n%d", i+1), exited: make(chan struct{}), stderr: &strings.Builder{}}
		n.cmd = exec.Command(bin, "-addr", "127.0.0.1:0", "-js", "-sync", "-store", t.TempDir(),
			"-server_name", n.name, "-cluster_name", "whistle",
			"-cluster", fmt.Sprintf("127.0.0.1:%d", routePorts[i]), "-routes", strings.Join(routes, ","))
		stdout, err := n.cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		n.cmd.Stderr = lockedWriter{n}
		if err := n.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { n.cmd.Wait(); close(n.exited) }() //nolint:errcheck // the exit is expected
		t.Cleanup(n.kill)
		ready := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if url, ok := strings.CutPrefix(sc.Text(), "natsd ready "); ok {
					ready <- url
				}
			}
			io.Copy(io.Discard, stdout) //nolint:errcheck
		}()
		select {
		case n.url = <-ready:
		case <-n.exited:
			t.Fatalf("natsd %s exited before it was ready:\n%s", n.name, n.logs())
		case <-time.After(30 * time.Second):
			t.Fatalf("natsd %s not ready after 30s:\n%s", n.name, n.logs())
		}
		nodes[i] = n
	}

	nc, err := nats.Connect(clusterURLs(nodes))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := js.AccountInfo(ctx)
		cancel()
		if err == nil {
			return nodes
		}
		if time.Now().After(deadline) {
			t.Fatalf("no JetStream on the cluster after 30s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// streamLeader returns the node that leads a JetStream stream, so that
// killing it forces an election in the middle of the load.
func streamLeader(t *testing.T, nodes []*natsNode, stream string) *natsNode {
	t.Helper()
	nc, err := nats.Connect(clusterURLs(nodes))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil || info.Cluster == nil {
		t.Fatalf("stream %s info: %v", stream, err)
	}
	if info.Config.Replicas != 3 {
		t.Fatalf("stream %s has %d replicas, want 3", stream, info.Config.Replicas)
	}
	for _, n := range nodes {
		if n.name == info.Cluster.Leader {
			return n
		}
	}
	t.Fatalf("stream %s is led by %q, not one of the nodes", stream, info.Cluster.Leader)
	return nil
}

func clusterURLs(nodes []*natsNode) string {
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = n.url
	}
	return strings.Join(urls, ",")
}

// TestClusterNodeLossDuringLoad runs whistled on a three-node NATS cluster
// (the event store in JetStream with three replicas, the bus on the same
// cluster) and kills one node with SIGKILL during a load of concurrent
// whistles. Every whistle acknowledged (201) must be readable afterwards,
// whole; requests may fail while the streams elect new leaders, and raising
// must work again after.
func TestClusterNodeLossDuringLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the three-node NATS cluster test (it builds natsd and starts four processes)")
	}
	nodes := startNatsCluster(t)
	s := whistledtest.Start(t, "--nats", clusterURLs(nodes), "--replicas", "3")
	sm := pickSample(t, s)
	street := "street:" + sm.street

	var (
		mu       sync.Mutex
		acked    = map[string]int{} // case id → version acknowledged
		failures int
	)
	stop := raiseLoad(s, 6, 15*time.Second, street, raiseBody(sm.street, sm.community, sm.issue.ID, "urgent"), false,
		func(st int, id string, version int) {
			mu.Lock()
			if st == 201 {
				acked[id] = version
			} else {
				failures++
			}
			mu.Unlock()
			if st != 201 {
				time.Sleep(50 * time.Millisecond)
			}
		})
	count := func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		return len(acked), failures
	}

	time.Sleep(2 * time.Second)
	victim := streamLeader(t, nodes, jetstream.DefaultLogStreamName) // the packed log, the default
	before, _ := count()
	victim.kill()
	t.Logf("killed NATS node %s, the leader of the event log's stream, after %d whistles acknowledged", victim.name, before)
	time.Sleep(6 * time.Second)
	stop()
	total, failed := count()
	t.Logf("%d whistles acknowledged in all, %d requests failed", total, failed)
	if before == 0 {
		t.Fatal("no whistle was acknowledged before the node was killed")
	}

	// The service answers again: a raise succeeds within a failover's time.
	client := &http.Client{Timeout: 15 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, id, version := raiseRaw(client, s, street, raiseBody(sm.street, sm.community, sm.issue.ID, "routine"))
		if st == 201 {
			acked[id] = version
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("raising still fails 30s after losing a node (last status %d)\n%s", st, tail(s.Logs(), 4000))
		}
		time.Sleep(250 * time.Millisecond)
	}
	if total == before {
		t.Logf("no whistle was acknowledged between the kill and the end of the load")
	}

	// Nothing acknowledged is lost.
	for id, version := range acked {
		var h history
		if st := s.Do("GET", "/v1/cases/"+id+"/history", "auditor:auditor", nil, &h); st != 200 {
			t.Fatalf("history of acknowledged case %s after losing a node: status %d", id, st)
		}
		if len(h.Events) != version || !h.ChainWhole {
			t.Fatalf("case %s after losing a node: %d events (whole %v), %d acknowledged", id, len(h.Events), h.ChainWhole, version)
		}
	}
	t.Logf("all %d acknowledged whistles read back whole with one NATS node down", len(acked))
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// TestEventStoreDBSwitch runs whistled with --store esdb://... against the
// wire-level EventStoreDB double (see adapters/eventstore/esdb/esdbtest):
// the store is switched by the flag alone, the API works unchanged, and a
// restart reads the log back from the store.
func TestEventStoreDBSwitch(t *testing.T) {
	d, err := esdbtest.Start(esdbtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	s := whistledtest.Start(t, "--store", d.URL())
	if !strings.Contains(s.Logs(), `"store":"esdb"`) {
		t.Fatalf("whistled does not say it uses EventStoreDB:\n%s", tail(s.Logs(), 2000))
	}
	sm := pickSample(t, s)
	street := "street:" + sm.street
	var raised caseView
	mustStatus(t, "raise on EventStoreDB", s.Do("POST", "/v1/whistles", street, raiseBody(sm.street, sm.community, sm.issue.ID, "urgent"), &raised), 201)
	mustStatus(t, "report in", s.Do("POST", "/v1/cases/"+raised.CaseID+"/report", principalOf(s, sm.issue.Lead), nil, nil), 200)
	if d.Appends() < 2 {
		t.Fatalf("the double received %d appends, want at least 2", d.Appends())
	}

	s.Stop()
	s.Restart()
	var h history
	mustStatus(t, "history after restart", s.Do("GET", "/v1/cases/"+raised.CaseID+"/history", "auditor:auditor", nil, &h), 200)
	if len(h.Events) < 3 || !h.ChainWhole || h.Events[0].Type != "WhistleRaised" {
		t.Fatalf("history after restart: %d events, whole %v", len(h.Events), h.ChainWhole)
	}
	// Ready once the workers caught up with the log read back from the store.
	start := time.Now()
	for {
		st, body := s.DoRaw("GET", "/readyz", "", nil)
		if st == 200 {
			t.Logf("ready %s after the restart's first request", time.Since(start).Round(time.Millisecond))
			break
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("readyz on EventStoreDB: %d %s after 20s\n%s", st, body, tail(s.Logs(), 3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
