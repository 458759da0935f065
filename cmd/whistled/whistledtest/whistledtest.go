// Package whistledtest starts the real whistled binary for tests and
// benchmarks: built once from this module, run in a temporary data folder on
// a free loopback port, driven over HTTP, stopped with SIGTERM or SIGKILL.
package whistledtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds cmd/whistled once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		pkg := filepath.Join(filepath.Dir(file), "..")
		dir, err := os.MkdirTemp("", "whistled-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "whistled")
		args := []string{"build", "-o", binPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, ".")...)
		cmd.Dir = pkg
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build whistled: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Server is a running whistled.
type Server struct {
	t      testing.TB
	Data   string
	Args   []string
	URL    string
	Tokens map[string]string // "role:id" → token, from the first start
	cmd    *exec.Cmd
	done   chan struct{}
	stderr *lockedBuffer
	exit   error
}

// Start runs whistled with a fresh data folder and the given extra flags, and
// waits until it serves. It is stopped (SIGKILL) when the test ends.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	s := &Server{t: t, Data: t.TempDir(), Args: args, Tokens: map[string]string{}}
	s.Restart()
	t.Cleanup(func() { s.Kill() })
	return s
}

// Restart starts whistled again on the same data folder (and a new port).
func (s *Server) Restart() {
	s.t.Helper()
	if s.cmd != nil && s.done != nil {
		select {
		case <-s.done:
		default:
			s.t.Fatal("whistledtest: Restart while whistled still runs; Stop or Kill it first")
		}
	}
	args := append([]string{"--data", s.Data, "--addr", "127.0.0.1:0", "--log-level", "info"}, s.Args...)
	cmd := exec.Command(Binary(s.t), args...)
	cmd.Env = append(os.Environ(), "GORACE=halt_on_error=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	s.stderr = &lockedBuffer{}
	ready := make(chan string, 1)
	cmd.Stderr = &lineWatcher{out: s.stderr, onLine: func(line string) {
		var entry struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "whistled ready" {
			select {
			case ready <- entry.Addr:
			default:
			}
		}
	}}
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 3 && (f[0] == "street" || f[0] == "department" || f[0] == "unit" || f[0] == "auditor" || f[0] == "platform" || f[0] == "district") {
				s.setToken(f[0]+":"+f[1], f[2])
			}
		}
	}()
	go func() {
		s.exit = cmd.Wait()
		close(s.done)
	}()
	select {
	case addr := <-ready:
		s.URL = "http://" + addr
	case <-s.done:
		s.t.Fatalf("whistled exited before it was ready: %v\n%s", s.exit, s.stderr.String())
	case <-time.After(60 * time.Second):
		s.Kill()
		s.t.Fatalf("whistled not ready after 60s\n%s", s.stderr.String())
	}
	// Tokens are printed before the ready line; give the stdout reader a moment.
	deadline := time.Now().Add(5 * time.Second)
	for len(s.tokens()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

var tokensMu sync.Mutex

func (s *Server) setToken(k, v string) {
	tokensMu.Lock()
	defer tokensMu.Unlock()
	s.Tokens[k] = v
}

func (s *Server) tokens() map[string]string {
	tokensMu.Lock()
	defer tokensMu.Unlock()
	return s.Tokens
}

// Token returns the token of a principal such as "street:longqiao".
func (s *Server) Token(principal string) string {
	s.t.Helper()
	tokensMu.Lock()
	defer tokensMu.Unlock()
	tok, ok := s.Tokens[principal]
	if !ok {
		s.t.Fatalf("whistledtest: no token for %s", principal)
	}
	return tok
}

// Stop sends SIGTERM and waits for a clean exit.
func (s *Server) Stop() {
	s.t.Helper()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.Kill()
		s.t.Fatalf("whistled did not stop within 30s of SIGTERM\n%s", s.stderr.String())
	}
	if s.exit != nil {
		s.t.Fatalf("whistled exited with %v after SIGTERM\n%s", s.exit, s.stderr.String())
	}
}

// Signal sends sig to whistled (SIGHUP: reload the principals).
func (s *Server) Signal(sig os.Signal) {
	s.t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatal(err)
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

// Logs returns what whistled wrote to stderr so far.
func (s *Server) Logs() string { return s.stderr.String() }

// Do sends a request with a principal's token ("" for none) and a JSON body
// (nil for none), and decodes a JSON answer into out when out is not nil.
func (s *Server) Do(method, path, principal string, body any, out any, headers ...string) int {
	s.t.Helper()
	status, raw := s.DoRaw(method, path, principal, body, headers...)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			s.t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
	return status
}

// DoRaw is Do returning the raw answer body.
func (s *Server) DoRaw(method, path, principal string, body any, headers ...string) (int, []byte) {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if principal != "" {
		req.Header.Set("Authorization", "Bearer "+s.Token(principal))
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("%s %s: read answer: %v", method, path, err)
	}
	return resp.StatusCode, raw
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lineWatcher copies output and calls onLine for each complete line.
type lineWatcher struct {
	out     io.Writer
	onLine  func(string)
	partial []byte
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.out.Write(p) //nolint:errcheck // a lockedBuffer does not fail
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.onLine(string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
	return len(p), nil
}
