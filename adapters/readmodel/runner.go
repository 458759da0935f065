package readmodel

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/whistle-gov/whistle/adapters/atomicfile"
	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/adapters/follow"
	"github.com/whistle-gov/whistle/domain"
	"github.com/whistle-gov/whistle/projections"
	"go.uber.org/zap"
)

// SnapshotFile is the name of the snapshot in Config.Dir.
const SnapshotFile = "snapshot.json"

// Config wires a Runner.
type Config struct {
	Store     eventstore.Store
	Directory *domain.Directory
	// Dir is the folder of the snapshot file (whistled: <data>/readmodels).
	//
	// The snapshot is a local file rather than a NATS KV entry or stream:
	// it is derived state, rebuildable from the log, so it needs no
	// replication; it is several megabytes for a year of cases, over
	// JetStream's default message size; it is written with one fsync and a
	// rename; and each whistled folds the log itself, so two instances
	// sharing a NATS cluster (or EventStoreDB, with no NATS storage at all)
	// must not overwrite each other's state.
	Dir string
	Log *zap.Logger
	// SnapshotEvery is how often the state is saved while it changes
	// (default 10 s); it is also saved when Run ends.
	SnapshotEvery time.Duration
	// Follow is the process's subscription to the log, shared with the
	// other followers; nil: Run subscribes on its own.
	Follow *follow.Log
}

// FollowerName names the read models among the followers of the log.
const FollowerName = "readmodels"

// Runner keeps the read models in step with the global log. It is safe for
// concurrent use: Run applies commits while requests read the models.
type Runner struct {
	cfg  Config
	log  *zap.Logger
	path string

	// applyMu is held while a commit is folded and while the models are
	// encoded, so that an encoding describes one position.
	applyMu sync.Mutex
	models  *Models

	progress follow.Progress // the last commit handled (applied, or refused and logged)

	saveMu sync.Mutex // one writer of the snapshot file at a time
	saved  uint64     // the position of the snapshot on disk
}

// Open restores the read models from the snapshot in cfg.Dir, or starts
// them empty when there is none. A snapshot that cannot be used (corrupt, of
// another format or directory version, or ahead of the log: a log that was
// replaced) is logged, moved aside and ignored: the models are rebuilt from
// position zero.
func Open(ctx context.Context, cfg Config) (*Runner, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("readmodel: Config.Store is nil")
	case cfg.Directory == nil:
		return nil, errors.New("readmodel: Config.Directory is nil")
	case cfg.Dir == "":
		return nil, errors.New("readmodel: Config.Dir is empty")
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.SnapshotEvery <= 0 {
		cfg.SnapshotEvery = 10 * time.Second
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("readmodel: snapshot folder: %w", err)
	}
	r := &Runner{cfg: cfg, log: cfg.Log, path: filepath.Join(cfg.Dir, SnapshotFile)}
	// Temporary files of a save cut short by a crash; the snapshot they were
	// to replace is still whole.
	if leftovers, err := filepath.Glob(r.path + ".tmp-*"); err == nil {
		for _, f := range leftovers {
			_ = os.Remove(f)
		}
	}
	models, err := NewModels(cfg.Directory)
	if err != nil {
		return nil, err
	}
	r.models = models
	if err := r.restore(ctx); err != nil {
		return nil, err
	}
	r.progress.Set(eventstore.Position(r.models.Position()))
	r.saved = r.models.Position()
	return r, nil
}

func (r *Runner) restore(ctx context.Context) error {
	restored, pos, err := r.readSnapshotFile()
	if errors.Is(err, fs.ErrNotExist) {
		r.log.Info("no read model snapshot: folding the log from the start", zap.String("path", r.path))
		return nil
	}
	if err != nil && !errors.Is(err, projections.ErrBadSnapshot) {
		return fmt.Errorf("readmodel: read snapshot: %w", err)
	}
	if err == nil {
		head, herr := r.cfg.Store.Head(ctx)
		if herr != nil {
			return fmt.Errorf("readmodel: log head: %w", herr)
		}
		if pos > uint64(head) {
			err = fmt.Errorf("%w: it describes log position %d, the log ends at %d (another log?)", projections.ErrBadSnapshot, pos, head)
		}
	}
	if err != nil {
		bad := r.path + ".bad"
		r.log.Warn("read model snapshot unusable: moved aside; folding the log from the start",
			zap.String("path", r.path), zap.String("moved_to", bad), zap.Error(err))
		if rerr := os.Rename(r.path, bad); rerr != nil {
			return fmt.Errorf("readmodel: move the unusable snapshot aside: %w", rerr)
		}
		return nil
	}
	r.models = restored
	r.log.Info("read models restored from snapshot", zap.Uint64("position", pos), zap.Int("cases", restored.Board.Len()))
	return nil
}

// readSnapshotFile decodes the snapshot file as it streams from the disk
// (Models.ReadSnapshot).
func (r *Runner) readSnapshotFile() (*Models, uint64, error) {
	f, err := os.Open(r.path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	restored, err := NewModels(r.cfg.Directory)
	if err != nil {
		return nil, 0, err
	}
	pos, err := restored.ReadSnapshot(bufio.NewReaderSize(f, 64<<10))
	return restored, pos, err
}

// Stats returns the live figures.
func (r *Runner) Stats() *projections.Stats { return r.models.Stats }

// Board returns the live case list.
func (r *Runner) Board() *projections.Board { return r.models.Board }

// Position returns the last log position handled: every commit at or before
// it is in the models (or was refused by them, and logged).
func (r *Runner) Position() uint64 { return uint64(r.progress.Position()) }

// WaitFor waits until the models have handled log position pos, or ctx is
// done.
func (r *Runner) WaitFor(ctx context.Context, pos uint64) error {
	if err := r.progress.WaitFor(ctx, eventstore.Position(pos)); err != nil {
		return fmt.Errorf("readmodel: at log position %d, waiting for %d: %w", r.Position(), pos, err)
	}
	return nil
}

// Run follows the log from the models' position until ctx is done, saving
// a snapshot every SnapshotEvery while they change and once more at the
// end. It returns ctx.Err(). A failure is resumed after a pause (see
// follow.Log.Keep).
func (r *Runner) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(r.cfg.SnapshotEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				r.saveAndLog()
			}
		}
	}()
	shared := r.cfg.Follow
	if shared == nil {
		shared = follow.New(r.cfg.Store, follow.Options{Log: r.log})
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = shared.Run(ctx)
		}()
	}
	_ = shared.Keep(ctx, FollowerName, r.progress.Position, r.handle)
	wg.Wait()
	r.saveAndLog()
	return ctx.Err()
}

// handle folds a batch of commits. A commit the models cannot take
// (undecodable, or refused as impossible) is logged and passed over:
// stopping would freeze every figure behind one bad event, and the
// auditors' replay shows the same refusal.
func (r *Runner) handle(_ context.Context, batch []follow.Commit) error {
	r.applyMu.Lock()
	for _, c := range batch {
		if uint64(c.Position) <= r.models.Position() {
			continue
		}
		var err error
		if c.Envelopes == nil && c.EventsErr != nil {
			err = c.EventsErr // not even the envelopes decode
		} else {
			err = r.models.ApplyCommit(fromCodec(c))
		}
		if err != nil {
			fields := []zap.Field{zap.Uint64("position", uint64(c.Position)), zap.String("stream", c.Stream), zap.Error(err)}
			if len(c.Envelopes) > 0 {
				fields = append(fields, zap.String("case_id", c.CaseID()), zap.String("command_id", c.CommandID()))
			}
			r.log.Error("read models refused a commit; passed over", fields...)
		}
	}
	r.applyMu.Unlock()
	r.progress.Set(batch[len(batch)-1].Position)
	return nil
}

// WriteSnapshot encodes the live models as they stand into w, with the
// position they describe: what the snapshot file holds, and what an auditor
// compares a replay with. The fold waits until it returns (see
// Models.WriteSnapshot), so w must take the bytes quickly: a file or a
// buffer, never a client's connection (SpoolSnapshot is for those).
func (r *Runner) WriteSnapshot(w io.Writer) (uint64, error) {
	r.applyMu.Lock()
	pos, finish, err := r.models.writeSnapshot(w, time.Now())
	r.applyMu.Unlock()
	if err != nil {
		return 0, err
	}
	// The last chunks and the checksum are written while the fold goes on.
	return pos, finish()
}

// Snapshot is WriteSnapshot into memory: the whole encoding at once, for
// small models (tests).
func (r *Runner) Snapshot() ([]byte, uint64, error) {
	var buf bytes.Buffer
	pos, err := r.WriteSnapshot(&buf)
	if err != nil {
		return nil, 0, err
	}
	return buf.Bytes(), pos, nil
}

// SpooledSnapshot is the live models encoded into a temporary file of the
// snapshot folder, rewound, for a reader that may be slow (an auditor's
// connection): it reads the file while the fold goes on. Close removes it.
type SpooledSnapshot struct {
	File     *os.File
	Size     int64
	Position uint64
}

// Close closes the file (its name is already gone).
func (s *SpooledSnapshot) Close() error { return s.File.Close() }

// SpoolSnapshot encodes the live models into a temporary file and returns it
// rewound. The file's name is removed at once, while it stays open: nothing
// is left behind whenever the reader finishes or the process dies (should the
// removal fail, the name is like the save's, so the next Open removes it).
// The fold waits while they are encoded, as for a save; not while the file
// is read. Nothing is synced: the file is not kept.
func (r *Runner) SpoolSnapshot() (*SpooledSnapshot, error) {
	f, err := os.CreateTemp(r.cfg.Dir, SnapshotFile+".tmp-spool-*")
	if err != nil {
		return nil, fmt.Errorf("readmodel: spool snapshot: %w", err)
	}
	_ = os.Remove(f.Name())
	s := &SpooledSnapshot{File: f}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	bw := bufio.NewWriterSize(f, 64<<10)
	if s.Position, err = r.WriteSnapshot(bw); err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("readmodel: spool snapshot: %w", err)
	}
	if s.Size, err = f.Seek(0, io.SeekCurrent); err != nil {
		return nil, fmt.Errorf("readmodel: spool snapshot: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("readmodel: spool snapshot: %w", err)
	}
	ok = true
	return s, nil
}

// Save writes the snapshot file when the models have moved since the last
// one. The file is replaced atomically (temporary file, fsync, rename, fsync
// of the folder), and the position inside it is the one its state was
// encoded at, never later, so a crash at any point leaves a snapshot whose
// state and position agree: the log is resumed right after it, and no
// commit is counted twice.
//
// The models are encoded straight into the temporary file, in chunks of
// about 64 KiB (see Models.WriteSnapshot), while the fold waits on applyMu,
// which is what keeps the encoding at one position; another goroutine
// writes the chunks and checksums them meanwhile. The fold goes on once
// the models are encoded, while the last chunks and the checksum are
// written and the file is synced and renamed.
func (r *Runner) Save() error {
	r.saveMu.Lock()
	defer r.saveMu.Unlock()
	r.applyMu.Lock()
	unchanged := r.models.Position() == r.saved
	r.applyMu.Unlock()
	if unchanged {
		return nil
	}
	var pos uint64
	n, err := atomicfile.Write(r.path, func(w io.Writer) error {
		var err error
		pos, err = r.WriteSnapshot(w)
		return err
	})
	if err != nil {
		return fmt.Errorf("readmodel: save snapshot: %w", err)
	}
	r.saved = pos
	r.log.Debug("read model snapshot saved", zap.Uint64("position", pos), zap.Int64("bytes", n))
	return nil
}

func (r *Runner) saveAndLog() {
	if err := r.Save(); err != nil {
		// The models go on; the next save tries again, and a restart folds
		// the log from the last snapshot that was saved.
		r.log.Error("read model snapshot not saved", zap.Error(err))
	}
}
