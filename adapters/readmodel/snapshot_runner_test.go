package readmodel_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/whistle-gov/whistle/adapters/coretest"
	"github.com/whistle-gov/whistle/adapters/httpapi"
	"github.com/whistle-gov/whistle/adapters/readmodel"
)

// savedSnapshot walks some cases, lets a runner catch up and stop (which
// saves), and returns the snapshot file and the position it was saved at.
func savedSnapshot(t *testing.T, env *coretest.Env) ([]byte, uint64) {
	t.Helper()
	for range 3 {
		walk(t, env)
	}
	dir := t.TempDir()
	r := start(t, open(t, env, dir, env.Dir))
	head := catchUp(t, env, r.Runner)
	r.stop()
	data, err := os.ReadFile(filepath.Join(dir, readmodel.SnapshotFile))
	if err != nil {
		t.Fatal(err)
	}
	return data, head
}

// TestTornSnapshotFileIsRefusedAndRefolded: a snapshot file cut anywhere
// (inside the figures, inside the board, in the checksum, before the last
// brace), as a crash of a writer that did not rename atomically would leave
// it, is moved aside and the log is folded again from the start, to the same
// models as a replay.
func TestTornSnapshotFileIsRefusedAndRefolded(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	good, _ := savedSnapshot(t, env)
	boardAt := bytes.Index(good, []byte(`"board":`))
	for name, cut := range map[string]int{
		"in the figures":       boardAt / 2,
		"in the board":         boardAt + (len(good)-boardAt)/2,
		"in the checksum":      len(good) - 20,
		"before the last byte": len(good) - 1,
	} {
		t.Run(name, func(t *testing.T) {
			d := t.TempDir()
			path := filepath.Join(d, readmodel.SnapshotFile)
			if err := os.WriteFile(path, good[:cut], 0o600); err != nil {
				t.Fatal(err)
			}
			r := open(t, env, d, env.Dir)
			if r.Position() != 0 || r.Board().Len() != 0 {
				t.Fatalf("opened at position %d with %d cases, want a fresh start", r.Position(), r.Board().Len())
			}
			if bad, err := os.ReadFile(path + ".bad"); err != nil || !bytes.Equal(bad, good[:cut]) {
				t.Fatalf("the torn snapshot was not moved aside whole: %v", err)
			}
			start(t, r)
			catchUp(t, env, r)
			if n := totalRaised(t, r); n != 9 {
				t.Fatalf("refolded with %d cases raised, want 9", n)
			}
			assertEqualsReplay(t, env, r)
		})
	}
}

// TestSnapshotFileOfTheCodeBeforeIsRefolded: a snapshot file as the code
// before the streaming wrote it (the checksum before the models) is not one
// the runner reads: it is moved aside and the log folded again, once; the
// runner then goes on, and agrees with a replay.
func TestSnapshotFileOfTheCodeBeforeIsRefolded(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	good, _ := savedSnapshot(t, env)
	var doc struct {
		Format    string          `json:"format"`
		Directory string          `json:"directory"`
		Position  uint64          `json:"position"`
		TakenAt   time.Time       `json:"taken_at"`
		SHA256    string          `json:"sha256"`
		Stats     json.RawMessage `json:"stats"`
		Board     json.RawMessage `json:"board"`
	}
	if err := json.Unmarshal(good, &doc); err != nil {
		t.Fatal(err)
	}
	old, err := json.Marshal(doc) // the code before: json.Marshal of this struct
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(old, good) || !bytes.Contains(old, []byte(`"sha256":"`+doc.SHA256+`","stats":`)) {
		t.Fatal("test setup: not the layout of the code before")
	}
	d := t.TempDir()
	path := filepath.Join(d, readmodel.SnapshotFile)
	if err := os.WriteFile(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	r := open(t, env, d, env.Dir)
	if r.Position() != 0 || r.Board().Len() != 0 {
		t.Fatalf("opened at position %d with %d cases, want a fresh start", r.Position(), r.Board().Len())
	}
	if bad, err := os.ReadFile(path + ".bad"); err != nil || !bytes.Equal(bad, old) {
		t.Fatalf("the snapshot of the code before was not moved aside whole: %v", err)
	}
	walk(t, env)
	start(t, r)
	catchUp(t, env, r)
	if n := totalRaised(t, r); n != 12 {
		t.Fatalf("%d cases counted as raised, 12 were", n)
	}
	assertEqualsReplay(t, env, r)
}

// TestSnapshotRouteServesTheLiveModels: GET /v1/readmodels/snapshot answers
// the live models at the position of its header, with its length, sent from
// a temporary file that is gone once answered.
func TestSnapshotRouteServesTheLiveModels(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	walk(t, env)
	walk(t, env)
	dir := t.TempDir()
	r := start(t, open(t, env, dir, env.Dir))
	head := catchUp(t, env, r.Runner)
	reads, err := readmodel.NewReads(r.Runner, env.Store, env.Dir, env.Log)
	if err != nil {
		t.Fatal(err)
	}
	api := httpapi.New(httpapi.Config{
		Handler: env.Handler, Store: env.Store, Directory: env.Dir, Auth: coretest.Tokens{}, Log: env.Log,
		ReadModels: reads,
	})
	srv := httptest.NewServer(api)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/v1/readmodels/snapshot", nil)
	req.Header.Set("Authorization", "Bearer auditor:auditor")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	if _, err := body.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.ContentLength != int64(body.Len()) || resp.Header.Get(httpapi.PositionHeader) != strconv.FormatUint(head, 10) {
		t.Fatalf("%d, length %d of %d bytes, position %q (want %d)", resp.StatusCode, resp.ContentLength, body.Len(), resp.Header.Get(httpapi.PositionHeader), head)
	}
	m, err := readmodel.NewModels(env.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if pos, err := m.Unmarshal(body.Bytes()); err != nil || pos != head {
		t.Fatalf("the answer read back: position %d, %v", pos, err)
	}
	if diffs := live(t, env, r.Runner).Diff(m); len(diffs) > 0 {
		t.Fatalf("the answer differs from the live models:\n%s", strings.Join(diffs, "\n"))
	}
	left, _ := filepath.Glob(filepath.Join(dir, readmodel.SnapshotFile+".tmp-*"))
	if len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}
