package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/whistle-gov/whistle/cmd/whistled/whistledtest"
)

// TestShutdownEndsEventStreamsAtOnce: SIGTERM with a notification stream
// open ends the stream and the process without waiting out the grace
// period that requests in flight get.
func TestShutdownEndsEventStreamsAtOnce(t *testing.T) {
	s := whistledtest.Start(t)
	var street string
	for k := range s.Tokens {
		if strings.HasPrefix(k, "street:") {
			street = k
			break
		}
	}
	req, _ := http.NewRequest("GET", s.URL+"/v1/notifications", nil)
	req.Header.Set("Authorization", "Bearer "+s.Token(street))
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("notifications: %d", resp.StatusCode)
	}
	ended := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, resp.Body)
		ended <- err
	}()
	begin := time.Now()
	s.Stop()
	if took := time.Since(begin); took >= shutdownGrace {
		t.Fatalf("whistled took %s to stop with a stream open: it waited out the %s grace", took, shutdownGrace)
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream is still open after whistled stopped")
	}
}

// TestSIGHUPReloadsPrincipals: a token removed from the principals file is
// refused, and one added is accepted, after a SIGHUP and without a restart.
func TestSIGHUPReloadsPrincipals(t *testing.T) {
	s := whistledtest.Start(t)
	path := filepath.Join(s.Data, "principals.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Principals []map[string]string `json:"principals"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	revoked := file.Principals[0]["role"] + ":" + file.Principals[0]["id"]
	const added = "wst_a-token-added-by-hand-for-the-test"
	sum := sha256.Sum256([]byte(added))
	file.Principals = append(file.Principals[1:], map[string]string{"role": "auditor", "id": "second-auditor", "token_sha256": hex.EncodeToString(sum[:])})
	out, _ := json.Marshal(file)
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	status := func(token string) int {
		req, _ := http.NewRequest("GET", s.URL+"/v1/directory", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := status(added); st != 401 {
		t.Fatalf("the added token before SIGHUP: %d, want 401", st)
	}
	s.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for status(added) != 200 {
		if time.Now().After(deadline) {
			t.Fatalf("the added token is still refused after SIGHUP\n%s", s.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := status(s.Token(revoked)); st != 401 {
		t.Errorf("the revoked token of %s after SIGHUP: %d, want 401", revoked, st)
	}
	if !strings.Contains(s.Logs(), "principals reloaded") {
		t.Errorf("no log line says the principals were reloaded")
	}
	// Still serving, not killed by the signal.
	if st := status(added); st != 200 {
		t.Errorf("after SIGHUP: %d", st)
	}
}

// TestFailedStartMintsNoTokens: a start that cannot bind its port writes no
// principals file and prints no token, so the next start still creates and
// shows them.
func TestFailedStartMintsNoTokens(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	data := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, whistledtest.Binary(t), "--data", data, "--addr", taken.Addr().String())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("whistled on a taken port: %v, want a failed exit\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "listen on") {
		t.Errorf("stderr does not say it could not listen: %s", stderr.String())
	}
	if _, err := os.Stat(filepath.Join(data, "principals.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("principals.json after a failed start: %v", err)
	}
	if strings.Contains(stdout.String(), "wst_") || strings.Contains(stdout.String(), "created") {
		t.Errorf("tokens printed by a start that failed: %s", stdout.String())
	}
}
