package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// restartMode writes a log of o.events events of mostly closed cases (one
// in ten stays open; the closed ones spread over the past year, so that
// most have left the case board) into an embedded store, starts whistled on
// it once to fold the log, save its read models and publish its dispatches,
// and stops it cleanly. Then it times two restarts to /readyz answering 200:
// cold, with the read models' folder removed (the log is folded from the
// start), and warm, the normal restart.
func restartMode(ctx context.Context, o options, log *zap.Logger) error {
	if o.whistled == "" {
		return errors.New("-whistled: the path of the whistled binary is required")
	}
	data, cleanup, err := tempDir(o, log, "whistle-restart-")
	if err != nil {
		return err
	}
	defer cleanup()
	written, took, err := writeLog(ctx, data, o, logShape{openEvery: 10, span: 365 * 24 * time.Hour}, log)
	if err != nil {
		return err
	}
	log.Info("log written", zap.Int64("events", written), zap.Duration("took", took))
	first, err := timedStart(ctx, o, data, log)
	if err != nil {
		return fmt.Errorf("first start: %w", err)
	}
	log.Info("first start: log folded, read models saved, dispatches published", zap.Duration("ready", first))
	if err := os.RemoveAll(filepath.Join(data, "readmodels")); err != nil {
		return err
	}
	cold, err := timedStart(ctx, o, data, log)
	if err != nil {
		return fmt.Errorf("cold start: %w", err)
	}
	warm, err := timedStart(ctx, o, data, log)
	if err != nil {
		return fmt.Errorf("warm start: %w", err)
	}
	fmt.Printf("machine: %s\n", machine())
	fmt.Printf("restart: events=%d cold_ready_s=%.2f warm_ready_s=%.2f\n", written, cold.Seconds(), warm.Seconds())
	return nil
}

// timedStart starts whistled on data, measures the time from its start to
// /readyz answering 200, lets it finish what it does in the background (the
// dispatcher and the read models reach the log's head), and stops it with
// SIGTERM, which saves the read models.
func timedStart(ctx context.Context, o options, data string, log *zap.Logger) (time.Duration, error) {
	port, err := freePortNumber()
	if err != nil {
		return 0, err
	}
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(o.whistled, "--data", data, "--addr", "127.0.0.1:"+strconv.Itoa(port), "--log-level", "warn", "--fsync", o.fsync)
	stderr := &tailBuffer{}
	cmd.Stderr = lineWriter{stderr}
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", o.whistled, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	w := &whistled{cmd: cmd, url: url, data: data, exited: exited, stderr: stderr}
	client := newClient(2)
	ready := time.Duration(0)
	for ready == 0 {
		select {
		case <-exited:
			return 0, fmt.Errorf("whistled exited before it was ready:\n%s", stderr)
		case <-ctx.Done():
			w.kill()
			return 0, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if time.Since(begin) > 10*time.Minute {
			w.kill()
			return 0, fmt.Errorf("whistled not ready after 10 minutes:\n%s", stderr)
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", url+"/readyz", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				ready = time.Since(begin)
			}
		}
	}
	// Stop only once the followers stand at the head, so that the next
	// start resumes them from there.
	r := &run{w: w, client: client}
	for deadline := time.Now().Add(10 * time.Minute); time.Now().Before(deadline); sleep(ctx, 500*time.Millisecond) {
		m, err := r.metricsSample(ctx, "whistle_dispatch_lag_commits", "whistle_projection_lag_commits")
		if err != nil {
			return 0, err
		}
		behind := 0.0
		for _, v := range m {
			behind += v
		}
		if len(m) > 0 && behind == 0 {
			break
		}
	}
	if err := w.stop(); err != nil {
		return 0, err
	}
	return ready, nil
}

// freePortNumber returns a loopback TCP port that was free a moment ago.
func freePortNumber() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lineWriter hands each whole line written to it to a tailBuffer.
type lineWriter struct{ t *tailBuffer }

func (w lineWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		w.t.add(line)
	}
	return len(p), nil
}
