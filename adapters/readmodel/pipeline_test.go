package readmodel_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/whistle-gov/whistle/adapters/coretest"
	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/adapters/readmodel"
)

// rawLog is the whole stored log of env, undecoded.
func rawLog(t *testing.T, env *coretest.Env) []eventstore.Commit {
	t.Helper()
	raw, err := env.Store.ReadAll(context.Background(), 0, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// sliceReader reads log as eventstore.Store.ReadAll would.
func sliceReader(log []eventstore.Commit) readmodel.RawReadFunc {
	return func(ctx context.Context, after uint64, limit int) ([]eventstore.Commit, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var out []eventstore.Commit
		for _, c := range log {
			if uint64(c.Position) > after && len(out) < limit {
				out = append(out, c)
			}
		}
		return out, nil
	}
}

// sequentialFold is the fold without a pipeline: read, decode and apply one
// commit after another, up to upTo (0: all).
func sequentialFold(t *testing.T, env *coretest.Env, log []eventstore.Commit, upTo uint64) *readmodel.Models {
	t.Helper()
	m, err := readmodel.NewModels(env.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range log {
		if upTo > 0 && uint64(raw.Position) > upTo {
			break
		}
		c, err := readmodel.DecodeCommit(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.ApplyCommit(c); err != nil {
			t.Fatalf("sequential fold at %d: %v", c.Position, err)
		}
	}
	return m
}

// pipelineLog is a log of several case lives, with small decoding jobs so
// that a page spans several workers.
func pipelineLog(t *testing.T) (*coretest.Env, []eventstore.Commit) {
	t.Helper()
	t.Cleanup(readmodel.SetChunkSize(3))
	env := coretest.Start(t, coretest.Options{})
	for range 4 {
		walk(t, env)
	}
	log := rawLog(t, env)
	if len(log) < 40 {
		t.Fatalf("%d commits, want a longer log", len(log))
	}
	return env, log
}

func TestPipelinedFoldEqualsSequentialFold(t *testing.T) {
	env, log := pipelineLog(t)
	want := sequentialFold(t, env, log, 0)
	for _, page := range []int{1, 2, 7, 10, len(log), 1000} {
		for _, upTo := range []uint64{0, uint64(log[len(log)/2].Position)} {
			t.Run(fmt.Sprintf("page %d up to %d", page, upTo), func(t *testing.T) {
				var progs []readmodel.Progress
				got, err := readmodel.FoldLog(context.Background(), env.Dir, sliceReader(log), readmodel.FoldOptions{
					PageSize: page, UpTo: upTo, Progress: func(p readmodel.Progress) { progs = append(progs, p) },
				})
				if err != nil {
					t.Fatal(err)
				}
				ref := want
				if upTo > 0 {
					ref = sequentialFold(t, env, log, upTo)
				}
				if diffs := ref.Diff(got); len(diffs) > 0 {
					t.Fatalf("pipelined fold differs from the sequential one:\n%s", strings.Join(diffs, "\n"))
				}
				if got.Position() != ref.Position() {
					t.Fatalf("position %d, want %d", got.Position(), ref.Position())
				}
				// Progress comes once a page, moving forward, and ends at the
				// last commit folded.
				for i := 1; i < len(progs); i++ {
					if progs[i].Position < progs[i-1].Position || progs[i].Commits < progs[i-1].Commits {
						t.Fatalf("progress went back: %+v then %+v", progs[i-1], progs[i])
					}
				}
				if len(progs) == 0 || progs[len(progs)-1].Position != ref.Position() {
					t.Fatalf("last progress %+v, want position %d", progs, ref.Position())
				}
			})
		}
	}
	// Fold, over decoded pages, is the same pipeline without the workers.
	read := func(ctx context.Context, after uint64, limit int) ([]readmodel.Commit, error) {
		return readmodel.ReadLog(ctx, env.Store, after, limit)
	}
	got, err := readmodel.Fold(context.Background(), env.Dir, read, readmodel.FoldOptions{PageSize: 5})
	if err != nil {
		t.Fatal(err)
	}
	if diffs := want.Diff(got); len(diffs) > 0 {
		t.Fatalf("Fold differs from the sequential fold:\n%s", strings.Join(diffs, "\n"))
	}
}

func TestPipelinedFoldStopsAtTheFirstError(t *testing.T) {
	env, log := pipelineLog(t)
	bad := len(log) / 2
	broken := append([]eventstore.Commit(nil), log...)
	evs := append([]eventstore.RecordedEvent(nil), broken[bad].Events...)
	evs[0].Data = []byte(`{"id": 1`)
	broken[bad].Events = evs
	_, err := readmodel.FoldLog(context.Background(), env.Dir, sliceReader(broken), readmodel.FoldOptions{
		PageSize: 4, Refused: func(readmodel.Commit, error) {},
	})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("position %d", broken[bad].Position)) {
		t.Fatalf("fold over an undecodable commit at %d: %v", broken[bad].Position, err)
	}
	// Up to a position before it, the fold never reaches it.
	if _, err := readmodel.FoldLog(context.Background(), env.Dir, sliceReader(broken), readmodel.FoldOptions{
		PageSize: 4, UpTo: uint64(broken[bad-1].Position),
	}); err != nil {
		t.Fatalf("fold up to the commit before the undecodable one: %v", err)
	}

	boom := errors.New("boom")
	reads := 0
	failing := func(ctx context.Context, after uint64, limit int) ([]eventstore.Commit, error) {
		reads++
		if reads == 3 {
			return nil, boom
		}
		return sliceReader(log)(ctx, after, limit)
	}
	if _, err := readmodel.FoldLog(context.Background(), env.Dir, failing, readmodel.FoldOptions{PageSize: 4}); !errors.Is(err, boom) {
		t.Fatalf("fold over a failing read: %v, want %v", err, boom)
	}

	// A log that goes back is refused.
	again := func(ctx context.Context, after uint64, limit int) ([]eventstore.Commit, error) {
		return sliceReader(log)(ctx, 0, limit)
	}
	if _, err := readmodel.FoldLog(context.Background(), env.Dir, again, readmodel.FoldOptions{PageSize: 4}); err == nil || !strings.Contains(err.Error(), "went back") {
		t.Fatalf("fold over a log that goes back: %v", err)
	}
}

func TestPipelinedFoldHonoursCancellation(t *testing.T) {
	env, log := pipelineLog(t)
	before := runtime.NumGoroutine()

	// Cancelled while the fold is under way: the reader blocks on the third
	// page until the context ends.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reads := 0
	blocking := func(ctx context.Context, after uint64, limit int) ([]eventstore.Commit, error) {
		reads++
		if reads == 3 {
			cancel()
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return sliceReader(log)(ctx, after, limit)
	}
	if _, err := readmodel.FoldLog(ctx, env.Dir, blocking, readmodel.FoldOptions{PageSize: 4}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled fold: %v, want %v", err, context.Canceled)
	}

	// Cancelled from the Progress callback, with pages read ahead.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	pages := 0
	_, err := readmodel.FoldLog(ctx2, env.Dir, sliceReader(log), readmodel.FoldOptions{PageSize: 2, Progress: func(readmodel.Progress) {
		if pages++; pages == 2 {
			cancel2()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("fold cancelled after 2 pages: %v, want %v", err, context.Canceled)
	}

	// Already cancelled: nothing is read.
	ctx3, cancel3 := context.WithCancel(context.Background())
	cancel3()
	if _, err := readmodel.FoldLog(ctx3, env.Dir, sliceReader(log), readmodel.FoldOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("fold with a cancelled context: %v", err)
	}

	// The pipeline's goroutines are gone once a fold returns.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after the folds, %d before", n, before)
	}
}
