package readmodel_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/whistle-gov/whistle/adapters/coretest"
	"github.com/whistle-gov/whistle/adapters/readmodel"
	"github.com/whistle-gov/whistle/domain"
	"github.com/whistle-gov/whistle/projections"
)

// running is a Runner whose Run goroutine the test can end.
type running struct {
	*readmodel.Runner
	cancel context.CancelFunc
	done   chan struct{}
}

func open(t *testing.T, env *coretest.Env, dir string, d *domain.Directory) *readmodel.Runner {
	t.Helper()
	r, err := readmodel.Open(context.Background(), readmodel.Config{
		Store: env.Store, Directory: d, Dir: dir, SnapshotEvery: time.Hour, // saves only when the test says
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func start(t *testing.T, r *readmodel.Runner) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rr := &running{Runner: r, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(rr.done)
		if err := r.Run(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Run ended with %v", err)
		}
	}()
	t.Cleanup(rr.stop)
	return rr
}

// stop ends Run, which saves a last snapshot.
func (r *running) stop() {
	r.cancel()
	<-r.done
}

func catchUp(t *testing.T, env *coretest.Env, r *readmodel.Runner) uint64 {
	t.Helper()
	head, err := env.Store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.WaitFor(ctx, uint64(head)); err != nil {
		t.Fatal(err)
	}
	return uint64(head)
}

// walk gives a case of each kind some history: an issue reported, resolved,
// rejected, resolved again, verified and rated; a dispute mediated; a need
// claimed.
func walk(t *testing.T, env *coretest.Env) {
	t.Helper()
	issue := env.Raise(t, "river-pollution", "urgent").ID
	env.Do(t, issue, coretest.Ecology, domain.Report{Assignee: coretest.Ecology.ID})
	env.Do(t, issue, coretest.Water, domain.Report{Assignee: coretest.Water.ID})
	env.Do(t, issue, coretest.Ecology, domain.Resolve{Assignee: coretest.Ecology.ID})
	env.Do(t, issue, coretest.Street, domain.Verify{Accepted: false, Note: "still smells"})
	env.Do(t, issue, coretest.Ecology, domain.Resolve{Assignee: coretest.Ecology.ID})
	env.Do(t, issue, coretest.Street, domain.Verify{Accepted: true})
	env.Do(t, issue, coretest.Street, domain.Rate{Rating: "basically_satisfied"})
	judicial := domain.Actor{Role: domain.ActorDepartment, ID: "judicial-office"}
	dispute := env.Raise(t, "neighbour-dispute", "routine").ID
	env.Do(t, dispute, judicial, domain.Report{Assignee: judicial.ID})
	env.Do(t, dispute, judicial, domain.Resolve{Assignee: judicial.ID, Mediation: "success"})
	need := env.Raise(t, "after-school-care", "routine").ID
	env.Do(t, need, coretest.Units[1], domain.Claim{Assignee: coretest.Units[1].ID})
}

// rebuilt folds the whole log from zero.
func rebuilt(t *testing.T, env *coretest.Env) *readmodel.Models {
	t.Helper()
	read := func(ctx context.Context, after uint64, limit int) ([]readmodel.Commit, error) {
		return readmodel.ReadLog(ctx, env.Store, after, limit)
	}
	m, err := readmodel.Fold(context.Background(), env.Dir, read, readmodel.FoldOptions{PageSize: 7})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// live reads a runner's models back through its snapshot encoding.
func live(t *testing.T, env *coretest.Env, r *readmodel.Runner) *readmodel.Models {
	t.Helper()
	data, _, err := r.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	m, err := readmodel.NewModels(env.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Unmarshal(data); err != nil {
		t.Fatal(err)
	}
	return m
}

// totalRaised is the raised count summed over streets.
func totalRaised(t *testing.T, r *readmodel.Runner) int64 {
	t.Helper()
	res, err := r.Stats().Query("street", time.Time{}, time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, g := range res.Groups {
		n += g.Raised
	}
	return n
}

func assertEqualsReplay(t *testing.T, env *coretest.Env, r *readmodel.Runner) {
	t.Helper()
	if diffs := live(t, env, r).Diff(rebuilt(t, env)); len(diffs) > 0 {
		t.Fatalf("live models differ from a replay of the log:\n%s", strings.Join(diffs, "\n"))
	}
}

func TestRestartResumesFromTheSnapshot(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	dir := t.TempDir()
	walk(t, env)
	r1 := start(t, open(t, env, dir, env.Dir))
	head1 := catchUp(t, env, r1.Runner)
	r1.stop() // saves at head1

	walk(t, env) // written while the read models are down
	r2 := open(t, env, dir, env.Dir)
	if got := r2.Position(); got != head1 {
		t.Fatalf("reopened at position %d, the snapshot was saved at %d", got, head1)
	}
	if n := r2.Board().Len(); n != 3 {
		t.Fatalf("reopened with %d cases on the board, the snapshot held 3", n)
	}
	start(t, r2)
	catchUp(t, env, r2)
	if n := totalRaised(t, r2); n != 6 {
		t.Fatalf("after the restart %d cases counted as raised, 6 were", n)
	}
	assertEqualsReplay(t, env, r2)
}

func TestCrashAfterApplyBeforeSnapshotCountsNothingTwice(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	dir := t.TempDir()
	walk(t, env)
	r1 := start(t, open(t, env, dir, env.Dir))
	catchUp(t, env, r1.Runner)
	if err := r1.Save(); err != nil {
		t.Fatal(err)
	}
	// More commits are applied in memory but never saved: the disk at the
	// moment of a crash holds the older snapshot. Copy it aside as it is.
	walk(t, env)
	catchUp(t, env, r1.Runner)
	crashed := t.TempDir()
	data, err := os.ReadFile(filepath.Join(dir, readmodel.SnapshotFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(crashed, readmodel.SnapshotFile), data, 0o600); err != nil {
		t.Fatal(err)
	}
	// A save cut short leaves a temporary file behind; it is ignored.
	if err := os.WriteFile(filepath.Join(crashed, readmodel.SnapshotFile+".tmp-123"), []byte(`{"format":`), 0o600); err != nil {
		t.Fatal(err)
	}

	r2 := open(t, env, crashed, env.Dir)
	if n := r2.Board().Len(); n != 3 {
		t.Fatalf("reopened with %d cases, the saved snapshot held 3", n)
	}
	// Commits at or before the snapshot's position delivered again (a
	// subscription restarted from an older checkpoint) change nothing.
	before := live(t, env, r2)
	commits, err := readmodel.ReadLog(context.Background(), env.Store, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	m := live(t, env, r2)
	for _, c := range commits {
		if c.Position > r2.Position() {
			break
		}
		if err := m.ApplyCommit(c); err != nil {
			t.Fatalf("redelivered commit %d: %v", c.Position, err)
		}
	}
	if diffs := before.Diff(m); len(diffs) > 0 {
		t.Fatalf("redelivered commits changed the models:\n%s", strings.Join(diffs, "\n"))
	}

	start(t, r2)
	catchUp(t, env, r2)
	if n := totalRaised(t, r2); n != 6 {
		t.Fatalf("after the crash %d cases counted as raised, 6 were", n)
	}
	assertEqualsReplay(t, env, r2)
	if _, err := os.Stat(filepath.Join(crashed, readmodel.SnapshotFile+".tmp-123")); !os.IsNotExist(err) {
		t.Fatalf("the leftover temporary file is still there: %v", err)
	}
}

func TestUnusableSnapshotRebuildsFromZero(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	walk(t, env)
	dir := t.TempDir()
	r := start(t, open(t, env, dir, env.Dir))
	catchUp(t, env, r.Runner)
	r.stop()
	good, err := os.ReadFile(filepath.Join(dir, readmodel.SnapshotFile))
	if err != nil {
		t.Fatal(err)
	}
	otherVersion := *env.Dir
	otherVersion.Version = "test-2"
	flipped := []byte(strings.Replace(string(good), `"raised":1`, `"raised":2`, 1))
	if string(flipped) == string(good) {
		t.Fatal("test setup: no raised counter to alter in the snapshot")
	}
	for _, tc := range []struct {
		name string
		data []byte
		dir  *domain.Directory
	}{
		{"figures of the format before the breakdowns within a street", statsFormat1(t, env.Dir, good), env.Dir},
		{"figures of UTC days (the format before the calendar's days)", statsFormat2(t, env.Dir, good), env.Dir},
		{"torn", good[:len(good)/2], env.Dir},
		{"altered", flipped, env.Dir},
		{"not JSON", []byte("\x00\x01garbage"), env.Dir},
		{"another directory version", good, &otherVersion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			path := filepath.Join(d, readmodel.SnapshotFile)
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			r := open(t, env, d, tc.dir)
			if r.Position() != 0 || r.Board().Len() != 0 {
				t.Fatalf("opened at position %d with %d cases, want a fresh start", r.Position(), r.Board().Len())
			}
			if _, err := os.Stat(path + ".bad"); err != nil {
				t.Fatalf("the unusable snapshot was not moved aside: %v", err)
			}
			start(t, r)
			catchUp(t, env, r)
			if n := totalRaised(t, r); n != 3 {
				t.Fatalf("rebuilt with %d cases raised, want 3", n)
			}
			// The rebuild holds the breakdowns within a street too.
			res, err := r.Stats().QueryStreet("longqiao", "category", time.Time{}, time.Time{})
			if err != nil || len(res.Groups) != 3 {
				t.Fatalf("rebuilt: longqiao by category %+v, %v; want its 3 categories", res.Groups, err)
			}
		})
	}

	t.Run("ahead of the log", func(t *testing.T) {
		other := coretest.Start(t, coretest.Options{}) // an empty log
		d := t.TempDir()
		if err := os.WriteFile(filepath.Join(d, readmodel.SnapshotFile), good, 0o600); err != nil {
			t.Fatal(err)
		}
		r := open(t, other, d, other.Dir)
		if r.Position() != 0 || r.Board().Len() != 0 {
			t.Fatalf("a snapshot past the end of the log was used: position %d, %d cases", r.Position(), r.Board().Len())
		}
	})
}

// statsFormat1 rewrites a snapshot file as the code before the breakdowns
// within a street wrote it: figures of format whistle-stats/1 without the
// street_category and street_urgency buckets, checksum and all in order.
func statsFormat1(t *testing.T, dir *domain.Directory, good []byte) []byte {
	t.Helper()
	var file map[string]json.RawMessage
	if err := json.Unmarshal(good, &file); err != nil {
		t.Fatal(err)
	}
	var stats map[string]json.RawMessage
	if err := json.Unmarshal(file["stats"], &stats); err != nil {
		t.Fatal(err)
	}
	var buckets []map[string]any
	if err := json.Unmarshal(stats["buckets"], &buckets); err != nil {
		t.Fatal(err)
	}
	kept := buckets[:0]
	for _, b := range buckets {
		if d := b["dim"]; d != "street_category" && d != "street_urgency" {
			kept = append(kept, b)
		}
	}
	if len(kept) == len(buckets) {
		t.Fatal("test setup: the snapshot holds no bucket within a street")
	}
	stats["format"], _ = json.Marshal("whistle-stats/1")
	stats["buckets"], _ = json.Marshal(kept)
	delete(stats, "time_zone") // format 3 named it; formats 1 and 2 counted UTC days
	return rewriteStats(t, dir, file, stats, "whistle-stats/1")
}

// statsFormat2 rewrites a snapshot file as the code before figures counted
// the calendar's days wrote it: figures of format whistle-stats/2, of UTC
// days, without a time_zone.
func statsFormat2(t *testing.T, dir *domain.Directory, good []byte) []byte {
	t.Helper()
	var file map[string]json.RawMessage
	if err := json.Unmarshal(good, &file); err != nil {
		t.Fatal(err)
	}
	var stats map[string]json.RawMessage
	if err := json.Unmarshal(file["stats"], &stats); err != nil {
		t.Fatal(err)
	}
	if _, ok := stats["time_zone"]; !ok {
		t.Fatal("test setup: the snapshot's figures name no time zone")
	}
	stats["format"], _ = json.Marshal("whistle-stats/2")
	delete(stats, "time_zone")
	return rewriteStats(t, dir, file, stats, "whistle-stats/2")
}

// rewriteStats puts figures rewritten as an older format into a snapshot
// file, checksum and all in order, and checks that it is refused for that
// format.
func rewriteStats(t *testing.T, dir *domain.Directory, file, stats map[string]json.RawMessage, format string) []byte {
	t.Helper()
	file["stats"] = inOrder(t, stats, "format", "position", "buckets", "open", "closed")
	var directory string
	if err := json.Unmarshal(file["directory"], &directory); err != nil {
		t.Fatal(err)
	}
	file["sha256"], _ = json.Marshal(readmodel.Checksum(directory, file["stats"], file["board"]))
	out := inOrder(t, file, "format", "directory", "position", "taken_at", "stats", "board", "sha256")
	// Refused for its format, not for a checksum this rewrite got wrong.
	m, err := readmodel.NewModels(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Unmarshal(out); !errors.Is(err, projections.ErrBadSnapshot) || !strings.Contains(err.Error(), `format "`+format+`"`) {
		t.Fatalf("test setup: a %s snapshot is refused with %v, want its format named", format, err)
	}
	return out
}

// inOrder writes the object of members m with its members in the order
// of names, which must be all of them: the layout snapshots are read in.
func inOrder(t *testing.T, m map[string]json.RawMessage, names ...string) json.RawMessage {
	t.Helper()
	if len(names) != len(m) {
		t.Fatalf("test setup: %d members, %d names", len(m), len(names))
	}
	out := []byte("{")
	for i, name := range names {
		v, ok := m[name]
		if !ok {
			t.Fatalf("test setup: no member %q", name)
		}
		if i > 0 {
			out = append(out, ',')
		}
		k, _ := json.Marshal(name)
		out = append(append(append(out, k...), ':'), v...)
	}
	return append(out, '}')
}

func TestWaitForSeesTheWrite(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	r := start(t, open(t, env, t.TempDir(), env.Dir))
	c := env.Raise(t, "river-pollution", "routine")
	head, err := env.Store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.WaitFor(ctx, uint64(head)); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Board().Get(c.ID); !ok {
		t.Fatalf("case %s not on the board at position %d", c.ID, head)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if err := r.WaitFor(short, uint64(head)+100); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting for a position never written: %v", err)
	}
}

func TestFoldAsOfCutsEachCaseAtTheMoment(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	env := coretest.Start(t, coretest.Options{Now: clock})

	first := env.Raise(t, "river-pollution", "routine").ID
	advance(time.Minute)
	env.Do(t, first, coretest.Ecology, domain.Report{Assignee: coretest.Ecology.ID})
	env.Do(t, first, coretest.Ecology, domain.Resolve{Assignee: coretest.Ecology.ID})
	asOf := clock()
	advance(time.Minute)
	env.Do(t, first, coretest.Street, domain.Verify{Accepted: true}) // after as_of
	env.Raise(t, "river-pollution", "routine")                       // after as_of

	read := func(ctx context.Context, after uint64, limit int) ([]readmodel.Commit, error) {
		return readmodel.ReadLog(ctx, env.Store, after, limit)
	}
	m, err := readmodel.Fold(context.Background(), env.Dir, read, readmodel.FoldOptions{AsOf: asOf})
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Stats.Query("street", time.Time{}, time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Groups) != 1 || res.Groups[0].Raised != 1 || res.Groups[0].Closed != 0 {
		t.Fatalf("as of %s: %+v, want 1 raised and none closed", asOf, res.Groups)
	}
	c, ok := m.Board.Get(first)
	if !ok || c.Status != domain.StatusResolved {
		t.Fatalf("as of %s the case is %+v, want resolved", asOf, c)
	}
}
