package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/whistle-gov/whistle/adapters/coretest"
	"github.com/whistle-gov/whistle/cmd/whistled/whistledtest"
)

// smallDisk mounts a 40 MiB tmpfs for the test and unmounts it when the
// test ends (after whistled is killed: cleanups run last first), or skips
// when mounting is not permitted.
func smallDisk(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "whistle-small-disk-")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", dir).CombinedOutput(); err != nil {
		os.Remove(dir)
		t.Skipf("a full disk needs a small file system to fill: mount -t tmpfs failed (%v: %s); run as root, e.g. sudo go test -run TestDiskFull ./cmd/whistled/",
			err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		for i := 0; i < 50; i++ { // whistled's files close as it dies
			if exec.Command("umount", dir).Run() == nil {
				os.Remove(dir)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		_ = exec.Command("umount", "-l", dir).Run()
		os.Remove(dir)
	})
	return dir
}

// fill writes a file until the disk has no room left, and returns a func
// that removes it.
func fill(t *testing.T, dir string) (free func()) {
	t.Helper()
	path := filepath.Join(dir, "fill")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			break
		}
	}
	// A last byte-sized write takes what the big ones left.
	for {
		if _, err := f.Write(chunk[:512]); err != nil {
			break
		}
	}
	f.Close()
	return func() {
		if err := os.Remove(path); err != nil {
			t.Error(err)
		}
	}
}

// TestDiskFullIsAnsweredAtOnceAndLeftBehind: with the data folder on a
// small disk, filled, a raise is answered 507 at once naming the cause,
// /readyz is 503 and whistle_store_full 1; once space is freed, raises are
// served again without a restart, also after the store itself met the full
// disk (--disk-reserve 0: nats-server keeps a write error until its
// JetStream is restarted, which the guard does). Every 201 is a case that
// is still there after a restart.
func TestDiskFullIsAnsweredAtOnceAndLeftBehind(t *testing.T) {
	disk := smallDisk(t)
	s := whistledtest.Start(t, "--data", filepath.Join(disk, "data"), "--disk-reserve", "4MiB")
	smp := pickSample(t, s)
	body := raiseBody(smp.street, smp.community, smp.issue.ID, "routine")
	street := "street:" + smp.street
	client := &http.Client{Timeout: 5 * time.Second}
	var mu sync.Mutex
	var acknowledged []string
	raise := func() (int, string, http.Header) {
		req, _ := newJSONRequest("POST", s.URL+"/v1/whistles", body)
		req.Header.Set("Authorization", "Bearer "+s.Token(street))
		resp, err := client.Do(req)
		if err != nil {
			return 0, err.Error(), nil
		}
		defer resp.Body.Close()
		var v struct {
			CaseID string `json:"case_id"`
			apiError
		}
		_ = json.NewDecoder(resp.Body).Decode(&v)
		if resp.StatusCode == 201 {
			mu.Lock()
			acknowledged = append(acknowledged, v.CaseID)
			mu.Unlock()
		}
		return resp.StatusCode, v.Error.Code + ": " + v.Error.Message, resp.Header
	}
	storeFull := func() string {
		_, m := s.DoRaw("GET", "/metrics", "", nil)
		for _, line := range strings.Split(string(m), "\n") {
			if strings.HasPrefix(line, "whistle_store_full ") {
				return strings.TrimPrefix(line, "whistle_store_full ")
			}
		}
		return "absent"
	}
	servedAgain := func(what string) {
		t.Helper()
		coretest.Eventually(t, 30*time.Second, what, func() error {
			if st, msg, _ := raise(); st != 201 {
				return fmt.Errorf("raise %d %s", st, msg)
			}
			if st, raw := s.DoRaw("GET", "/readyz", "", nil); st != 200 {
				return fmt.Errorf("readyz %d %s", st, raw)
			}
			if v := storeFull(); v != "0" {
				return fmt.Errorf("whistle_store_full %s", v)
			}
			return nil
		})
	}
	if st, msg, _ := raise(); st != 201 {
		t.Fatalf("a raise on room: %d %s", st, msg)
	}

	// Under the reserve: refused at once, before the store meets the full disk.
	free := fill(t, disk)
	start := time.Now()
	st, msg, h := raise()
	if took := time.Since(start); st != 507 || h.Get("Retry-After") == "" || !strings.Contains(msg, "store_full") ||
		!strings.Contains(msg, "disk") || took > 2*time.Second {
		t.Fatalf("a raise on a full disk: %d %q Retry-After %q after %s, want 507 store_full at once", st, msg, h.Get("Retry-After"), took)
	}
	if st, raw := s.DoRaw("GET", "/readyz", "", nil); st != 503 || !strings.Contains(string(raw), "disk") {
		t.Errorf("/readyz on a full disk: %d %s, want 503 naming the disk", st, raw)
	}
	if st, _ := s.DoRaw("GET", "/healthz", "", nil); st != 200 {
		t.Errorf("/healthz on a full disk: %d", st)
	}
	if v := storeFull(); v != "1" {
		t.Errorf("whistle_store_full %s on a full disk, want 1", v)
	}
	free()
	servedAgain("raises served again once space is freed")

	// No reserve: the store itself meets the full disk and keeps its write
	// error; the guard restarts its JetStream once there is room.
	s.Stop()
	s.Args = []string{"--data", filepath.Join(disk, "data"), "--disk-reserve", "0"}
	s.Restart()
	free = fill(t, disk)
	coretest.Eventually(t, 60*time.Second, "the store's write error answered at once", func() error {
		start := time.Now()
		st, msg, _ := raise()
		if st != 507 || time.Since(start) > 2*time.Second || !strings.Contains(msg, "could not write") {
			return fmt.Errorf("%d %s after %s", st, msg, time.Since(start))
		}
		return nil
	})
	if st, raw := s.DoRaw("GET", "/readyz", "", nil); st != 503 || !strings.Contains(string(raw), "write") {
		t.Errorf("/readyz after a write error: %d %s, want 503 naming it", st, raw)
	}
	free()
	servedAgain("raises served again after the store's write error, without a restart")

	// Nothing acknowledged was lost.
	s.Stop()
	s.Restart()
	mu.Lock()
	defer mu.Unlock()
	for _, id := range acknowledged {
		if st := s.Do("GET", "/v1/cases/"+id, "auditor:auditor", nil, nil); st != 200 {
			t.Errorf("case %s was answered 201 and reads %d after a restart", id, st)
		}
	}
	t.Logf("%d raises acknowledged, all kept", len(acknowledged))
}
