package jetstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/adapters/eventstore/storetest"
	"github.com/whistle-gov/whistle/adapters/natsbus"
)

// invalidNames are stream names that cannot be one subject token.
var invalidNames = []string{
	"case.0190c1f4",
	"case-*",
	"case->",
	">",
	"case 1",
	"case\t1",
	"case\n1",
	"case\x001",
	"\xff\xfe",
	strings.Repeat("x", MaxStreamNameLen+1),
}

func features(reopen func(t *testing.T) (eventstore.Store, func() eventstore.Store)) storetest.Features {
	return storetest.Features{Reopen: reopen, InvalidStreamNames: invalidNames}
}

// ---- embedded server ----

func startEmbedded(t testing.TB, dir string, syncAlways bool) *server.Server {
	t.Helper()
	ns, err := natsbus.StartEmbedded(natsbus.EmbeddedOptions{StoreDir: dir, SyncAlways: syncAlways})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns
}

func connect(t testing.TB, cfg natsbus.ConnectConfig) *nats.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := natsbus.Connect(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func openStore(t testing.TB, nc *nats.Conn, cfg Config) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Open(ctx, nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// reopenEmbedded gives a store on a private embedded server; reopening shuts
// the server down and starts a new one on the same directory.
func reopenEmbedded(t *testing.T) (eventstore.Store, func() eventstore.Store) {
	dir := t.TempDir()
	ns := startEmbedded(t, dir, true)
	nc := connect(t, natsbus.ConnectConfig{Server: ns})
	s := openStore(t, nc, Config{})
	return s, func() eventstore.Store {
		s.Close()
		nc.Close()
		ns.Shutdown()
		ns.WaitForShutdown()
		ns2 := startEmbedded(t, dir, true)
		return openStore(t, connect(t, natsbus.ConnectConfig{Server: ns2}), Config{})
	}
}

func TestConformanceEmbedded(t *testing.T) {
	ns := startEmbedded(t, t.TempDir(), true)
	nc := connect(t, natsbus.ConnectConfig{Server: ns, Name: "conformance"})
	t.Run("cache", func(t *testing.T) {
		f := features(reopenEmbedded)
		f.Crash, f.LoseAck = crashPerMessage(ns, Config{}), loseAck
		storetest.Run(t, f, func(t *testing.T) eventstore.Store {
			return openStore(t, nc, Config{})
		})
	})
	t.Run("nocache", func(t *testing.T) {
		// Every append reads the stream's tip first: the path taken by a
		// process that has never seen the stream.
		storetest.Run(t, features(nil), func(t *testing.T) eventstore.Store {
			return openStore(t, nc, Config{CacheSize: -1})
		})
	})
}

// ---- separate nats-server process ----

var build struct {
	once sync.Once
	dir  string
	bin  string
	err  error
	skip string
}

func TestMain(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// natsdBinary builds adapters/natsbus/cmd/natsd once per test binary.
func natsdBinary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		gobin, err := exec.LookPath("go")
		if err != nil {
			build.skip = "no go toolchain on PATH to build natsd; install Go or run the embedded tests only"
			return
		}
		if build.dir, build.err = os.MkdirTemp("", "whistle-natsd-"); build.err != nil {
			return
		}
		build.bin = filepath.Join(build.dir, "natsd")
		out, err := exec.Command(gobin, "build", "-o", build.bin, "github.com/whistle-gov/whistle/adapters/natsbus/cmd/natsd").CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build natsd: %v\n%s", err, out)
		}
	})
	if build.skip != "" {
		t.Skip(build.skip)
	}
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.bin
}

// natsd is a nats-server process.
type natsd struct {
	cmd    *exec.Cmd
	url    string
	stderr *syncBuffer
	exited chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startNatsd starts natsd with JetStream (fsync always) on a free loopback
// port and storage in dir, waits until it accepts clients, and kills it at
// the end of the test.
func startNatsd(t testing.TB, dir string) *natsd {
	t.Helper()
	return startNatsdArgs(t, "-addr", "127.0.0.1:0", "-js", "-sync", "-store", dir, "-server_name", "whistle-test")
}

// startNatsdArgs starts natsd with args, which must ask for a port of 0 or
// a free one, and waits until it accepts clients.
func startNatsdArgs(t testing.TB, args ...string) *natsd {
	t.Helper()
	bin := natsdBinary(t)
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &natsd{cmd: cmd, stderr: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start natsd: %v", err)
	}
	go func() {
		cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(p.kill)
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if url, ok := strings.CutPrefix(sc.Text(), "natsd ready "); ok {
				ready <- url
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case p.url = <-ready:
	case <-p.exited:
		t.Fatalf("natsd exited before it was ready:\n%s", p.stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("natsd not ready after 30s:\n%s", p.stderr)
	}
	return p
}

// kill ends the process at once, as a crash would.
func (p *natsd) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// reopenProcess gives a store on a private natsd; reopening kills the
// process (SIGKILL: acknowledged appends must already be on disk) and starts
// a new one on the same directory.
func reopenProcess(t *testing.T) (eventstore.Store, func() eventstore.Store) {
	dir := t.TempDir()
	p := startNatsd(t, dir)
	nc := connect(t, natsbus.ConnectConfig{URLs: p.url})
	s := openStore(t, nc, Config{})
	return s, func() eventstore.Store {
		s.Close()
		nc.Close()
		p.kill()
		p2 := startNatsd(t, dir)
		return openStore(t, connect(t, natsbus.ConnectConfig{URLs: p2.url}), Config{})
	}
}

func TestConformanceProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the tests against a separate nats-server process (they build one)")
	}
	p := startNatsd(t, t.TempDir())
	nc := connect(t, natsbus.ConnectConfig{URLs: p.url, Name: "conformance"})
	storetest.Run(t, features(reopenProcess), func(t *testing.T) eventstore.Store {
		return openStore(t, nc, Config{})
	})
}

// ---- adapter-specific behaviour ----

func testStore(t *testing.T, cfg Config) (*Store, *nats.Conn) {
	ns := startEmbedded(t, t.TempDir(), false)
	nc := connect(t, natsbus.ConnectConfig{Server: ns})
	return openStore(t, nc, cfg), nc
}

func newEvents(n int) []eventstore.EventData {
	evs := make([]eventstore.EventData, n)
	for i := range evs {
		evs[i] = eventstore.EventData{ID: uuid.Must(uuid.NewV7()).String(), Type: "ProgressNoted", Data: []byte(`{"note":"x"}`)}
	}
	return evs
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// loseAcks makes s's publishes land but report a timeout, as when the
// acknowledgement is lost on the way back, for the first n calls.
func loseAcks(s *Store, n int32) *atomic.Int32 {
	var calls atomic.Int32
	real := s.publish
	s.publish = func(ctx context.Context, m *nats.Msg, opts ...natsjs.PublishOpt) (*natsjs.PubAck, error) {
		ack, err := real(ctx, m, opts...)
		if calls.Add(1) <= n && err == nil {
			return nil, nats.ErrTimeout
		}
		return ack, err
	}
	return &calls
}

func TestLostAckRecognised(t *testing.T) {
	ctx := testCtx(t)
	s, _ := testStore(t, Config{})
	for _, existing := range []bool{false, true} {
		t.Run(fmt.Sprintf("existing=%v", existing), func(t *testing.T) {
			stream := "case-" + uuid.NewString()
			var expected uint64
			if existing {
				if _, err := s.Append(ctx, stream, 0, newEvents(1)); err != nil {
					t.Fatal(err)
				}
				expected = 1
			}
			real := s.publish
			defer func() { s.publish = real }()
			calls := loseAcks(s, 1)
			evs := newEvents(2)
			res, err := s.Append(ctx, stream, expected, evs)
			if err != nil {
				t.Fatalf("Append after a lost ack: %v; want success", err)
			}
			// First try landed; the re-send met the expected sequence.
			if n := calls.Load(); n != 2 {
				t.Fatalf("%d publishes, want 2", n)
			}
			got, err := s.ReadStream(ctx, stream)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != int(expected)+2 || got[expected].ID != evs[0].ID || got[len(got)-1].Position != res.Position {
				t.Fatalf("stream holds %d events, last at position %d; want %d, the commit at %d once", len(got), got[len(got)-1].Position, expected+2, res.Position)
			}
			if res.NextVersion != expected+2 {
				t.Fatalf("NextVersion %d, want %d", res.NextVersion, expected+2)
			}
		})
	}
}

func TestLostAckThenCallerRetries(t *testing.T) {
	ctx := testCtx(t)
	s, _ := testStore(t, Config{PublishRetries: -1})
	stream := "case-" + uuid.NewString()
	if _, err := s.Append(ctx, stream, 0, newEvents(1)); err != nil {
		t.Fatal(err)
	}
	real := s.publish
	loseAcks(s, 1)
	evs := newEvents(3)
	_, err := s.Append(ctx, stream, 1, evs)
	if err == nil || errors.Is(err, eventstore.ErrConflict) || !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("Append with the ack lost and no retries: %v; want a timeout, not a conflict", err)
	}
	s.publish = real
	// The command handler tries again with the same command.
	res, err := s.Append(ctx, stream, 1, evs)
	if err != nil {
		t.Fatalf("the caller's retry: %v; want success", err)
	}
	got, err := s.ReadStream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || got[1].Position != res.Position || res.NextVersion != 4 {
		t.Fatalf("stream holds %d events, result %+v; want 4 events, the commit once at %d", len(got), res, got[1].Position)
	}
}

func TestStaleCacheTwoStores(t *testing.T) {
	ctx := testCtx(t)
	ns := startEmbedded(t, t.TempDir(), false)
	nc := connect(t, natsbus.ConnectConfig{Server: ns})
	a, b := openStore(t, nc, Config{}), openStore(t, nc, Config{})
	stream := "case-" + uuid.NewString()

	// Alternate writers: each finds its cache one commit behind.
	var version uint64
	for i := range 10 {
		s := a
		if i%2 == 1 {
			s = b
		}
		res, err := s.Append(ctx, stream, version, newEvents(1+i%3))
		if err != nil {
			t.Fatalf("append %d at version %d: %v", i, version, err)
		}
		version = res.NextVersion
	}

	// a's cache matches a's own last append; b appends after it; a, still
	// believing its cache, expects the old length and must be refused.
	res, err := a.Append(ctx, stream, version, newEvents(1))
	if err != nil {
		t.Fatal(err)
	}
	version = res.NextVersion
	if _, err := b.Append(ctx, stream, version, newEvents(1)); err != nil {
		t.Fatal(err)
	}
	_, err = a.Append(ctx, stream, version, newEvents(1))
	var ce *eventstore.ConflictError
	if !errors.As(err, &ce) || ce.Actual != version+1 {
		t.Fatalf("append with a stale cache: %v; want a conflict reporting length %d", err, version+1)
	}
	version++

	// A cache that is right about the length but wrong about the sequence
	// (as after the stream was recreated) costs a retry, not a conflict.
	a.cache.set(stream, tip{next: version, seq: 1})
	if _, err := a.Append(ctx, stream, version, newEvents(1)); err != nil {
		t.Fatalf("append with a wrong cached sequence: %v; want success after a re-read", err)
	}
	version++

	for _, s := range []*Store{a, b} {
		got, err := s.ReadStream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		if uint64(len(got)) != version {
			t.Fatalf("stream holds %d events, want %d", len(got), version)
		}
		for i, e := range got {
			if e.Version != uint64(i) {
				t.Fatalf("event %d has version %d", i, e.Version)
			}
		}
	}
}

func TestForeignMessageReported(t *testing.T) {
	ctx := testCtx(t)
	s, nc := testStore(t, Config{})
	stream := "case-" + uuid.NewString()
	if _, err := s.Append(ctx, stream, 0, newEvents(1)); err != nil {
		t.Fatal(err)
	}
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, DefaultSubjectPrefix+"."+stream, []byte("not a commit")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadStream(ctx, stream); !errors.Is(err, errNotCommit) {
		t.Fatalf("ReadStream over a foreign message: %v; want an error naming it", err)
	}
	if _, err := s.ReadAll(ctx, 0, 10); !errors.Is(err, errNotCommit) {
		t.Fatalf("ReadAll over a foreign message: %v; want an error naming it", err)
	}
}

func TestAppendRefusesBadEvents(t *testing.T) {
	ctx := testCtx(t)
	s, _ := testStore(t, Config{})
	stream := "case-" + uuid.NewString()
	if _, err := s.Append(ctx, stream, 0, nil); err == nil {
		t.Fatal("Append of no events succeeded")
	}
	if _, err := s.Append(ctx, stream, 0, []eventstore.EventData{{ID: "not-a-uuid", Type: "X"}}); err == nil || !strings.Contains(err.Error(), "not-a-uuid") {
		t.Fatalf("Append with a bad id: %v; want an error naming it", err)
	}
	if _, err := s.ReadAll(ctx, 0, 0); err == nil {
		t.Fatal("ReadAll with limit 0 succeeded")
	}
}

func TestCodecRoundTrip(t *testing.T) {
	evs := []eventstore.EventData{
		{ID: uuid.NewString(), Type: "", Data: nil},
		{ID: uuid.NewString(), Type: "类型", Data: []byte{0, 0xff, 0x80}},
	}
	body := encodeCommit(7, evs)
	r := rawMsg{subject: "whistle.events.s", seq: 9, header: nats.Header{HeaderVersion: {"7"}, HeaderCount: {"2"}}, data: body}
	c, err := decodeCommit("s", r)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range c.Events {
		if e.Version != 7+uint64(i) || e.ID != evs[i].ID || e.Type != evs[i].Type || string(e.Data) != string(evs[i].Data) || e.Position != 9 {
			t.Fatalf("event %d = %+v", i, e)
		}
	}
	// Every truncation and a header that disagrees are reported.
	for n := range len(body) {
		if _, err := decodeCommit("s", rawMsg{header: r.header, data: body[:n]}); err == nil {
			t.Fatalf("truncated body of %d bytes decoded", n)
		}
	}
	r.header = nats.Header{HeaderVersion: {"8"}, HeaderCount: {"2"}}
	if _, err := decodeCommit("s", r); err == nil {
		t.Fatal("a body disagreeing with its headers decoded")
	}
}

// ---- benchmarks ----

func BenchmarkAppend(b *testing.B) {
	for _, fsync := range []struct {
		name   string
		always bool
	}{{"fsync=always", true}, {"fsync=interval", false}} {
		b.Run(fsync.name, func(b *testing.B) {
			ns := startEmbedded(b, b.TempDir(), fsync.always)
			nc := connect(b, natsbus.ConnectConfig{Server: ns})
			s := openStore(b, nc, Config{})
			ctx := context.Background()
			// A command appends two events of ~200 bytes to one of many
			// cases, sequentially.
			const cases = 1000
			streams := make([]string, cases)
			versions := make([]uint64, cases)
			for i := range streams {
				streams[i] = "case-" + uuid.NewString()
			}
			data := []byte(strings.Repeat("x", 200))
			i := 0
			for b.Loop() {
				k := i % cases
				i++
				evs := []eventstore.EventData{
					{ID: uuid.Must(uuid.NewV7()).String(), Type: "AssignmentReported", Data: data},
					{ID: uuid.Must(uuid.NewV7()).String(), Type: "ProgressNoted", Data: data},
				}
				res, err := s.Append(ctx, streams[k], versions[k], evs)
				if err != nil {
					b.Fatal(err)
				}
				versions[k] = res.NextVersion
			}
		})
	}
}

func BenchmarkReadStream(b *testing.B) {
	ns, err := natsbus.StartEmbedded(natsbus.EmbeddedOptions{StoreDir: b.TempDir(), ListenAddr: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	ctx := context.Background()
	data := []byte(strings.Repeat("x", 200))
	for _, transport := range []struct {
		name string
		cfg  natsbus.ConnectConfig
	}{
		{"inprocess", natsbus.ConnectConfig{Server: ns}},
		{"loopback", natsbus.ConnectConfig{URLs: ns.ClientURL()}},
	} {
		s := openStore(b, connect(b, transport.cfg), Config{})
		for _, shape := range []struct{ commits, perCommit int }{{5, 1}, {10, 2}} {
			b.Run(fmt.Sprintf("%s/events=%d", transport.name, shape.commits*shape.perCommit), func(b *testing.B) {
				stream := "case-" + uuid.NewString()
				var v uint64
				for range shape.commits {
					evs := make([]eventstore.EventData, shape.perCommit)
					for j := range evs {
						evs[j] = eventstore.EventData{ID: uuid.Must(uuid.NewV7()).String(), Type: "ProgressNoted", Data: data}
					}
					res, err := s.Append(ctx, stream, v, evs)
					if err != nil {
						b.Fatal(err)
					}
					v = res.NextVersion
				}
				for b.Loop() {
					evs, err := s.ReadStream(ctx, stream)
					if err != nil || uint64(len(evs)) != v {
						b.Fatalf("ReadStream: %d events, %v", len(evs), err)
					}
				}
			})
		}
	}
}

func BenchmarkReadAll(b *testing.B) {
	ns := startEmbedded(b, b.TempDir(), false)
	nc := connect(b, natsbus.ConnectConfig{Server: ns})
	s := openStore(b, nc, Config{})
	ctx := context.Background()
	data := []byte(strings.Repeat("x", 200))
	// 20,000 commits of 2 events across 2,000 cases.
	const commits, page = 20_000, 1000
	versions := make(map[string]uint64)
	streams := make([]string, 2000)
	for i := range streams {
		streams[i] = "case-" + uuid.NewString()
	}
	for i := range commits {
		st := streams[i%len(streams)]
		evs := []eventstore.EventData{
			{ID: uuid.Must(uuid.NewV7()).String(), Type: "A", Data: data},
			{ID: uuid.Must(uuid.NewV7()).String(), Type: "B", Data: data},
		}
		res, err := s.Append(ctx, st, versions[st], evs)
		if err != nil {
			b.Fatal(err)
		}
		versions[st] = res.NextVersion
	}
	var n int
	for b.Loop() {
		// A full replay, page by page.
		var after eventstore.Position
		for {
			cs, err := s.ReadAll(ctx, after, page)
			if err != nil {
				b.Fatal(err)
			}
			n += len(cs)
			if len(cs) < page {
				break
			}
			after = cs[len(cs)-1].Position
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/commit")
}

// ---- a three-node cluster ----

// freePorts returns n loopback ports that were free a moment ago.
func freePorts(t testing.TB, n int) []int {
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

// startCluster starts three natsd processes routed to each other and
// returns their client URLs, comma-separated.
func startCluster(t *testing.T) string {
	t.Helper()
	routePorts := freePorts(t, 3)
	var routes []string
	for _, p := range routePorts {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	var urls []string
	for i := range 3 {
		p := startNatsdArgs(t,
			"-addr", "127.0.0.1:0", "-js", "-sync", "-store", t.TempDir(),
			"-server_name", fmt.Sprintf("n%d", i+1), "-cluster_name", "whistle",
			"-cluster", fmt.Sprintf("127.0.0.1:%d", routePorts[i]), "-routes", strings.Join(routes, ","))
		urls = append(urls, p.url)
	}
	return strings.Join(urls, ",")
}

func TestConformanceCluster(t *testing.T) {
	if os.Getenv("WHISTLE_CLUSTER_TESTS") == "" {
		t.Skip("set WHISTLE_CLUSTER_TESTS=1 to run the suite on a three-process JetStream cluster with replicas 3 (slow on a small machine)")
	}
	urls := startCluster(t)
	nc := connect(t, natsbus.ConnectConfig{URLs: urls, Name: "conformance"})
	// The cluster elects its JetStream meta leader after it forms; until
	// then creating the stream fails.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := Open(ctx, nc, Config{Replicas: 3})
		cancel()
		if err == nil {
			s.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no JetStream cluster after 30s: %v", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	storetest.Run(t, features(nil), func(t *testing.T) eventstore.Store {
		return openStore(t, nc, Config{Replicas: 3})
	})
	t.Run("LostAck", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		s := openStore(t, nc, Config{Replicas: 3})
		stream := "case-" + uuid.NewString()
		if _, err := s.Append(ctx, stream, 0, newEvents(1)); err != nil {
			t.Fatal(err)
		}
		calls := loseAcks(s, 1)
		evs := newEvents(2)
		res, err := s.Append(ctx, stream, 1, evs)
		if err != nil {
			t.Fatalf("Append after a lost ack: %v; want success", err)
		}
		got, err := s.ReadStream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		if calls.Load() != 2 || len(got) != 3 || got[1].ID != evs[0].ID || got[2].Position != res.Position {
			t.Fatalf("%d publishes, stream of %d events, result %+v; want 2 publishes and the commit once", calls.Load(), len(got), res)
		}
	})
}
