package slawatch

import (
	"container/heap"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/whistle-gov/whistle/adapters/atomicfile"
	"github.com/whistle-gov/whistle/adapters/eventstore"
	"go.uber.org/zap"
)

// CheckpointFile is the name of the schedule's checkpoint in Config.Dir.
const CheckpointFile = "schedule.json"

// checkpointFormat names the layout of CheckpointFile.
const checkpointFormat = "whistle-sla-schedule/1"

// checkpoint is the schedule as it stood at a log position: a restart
// follows the log from there instead of from its start. It is derived
// state (the log rebuilds it), written only as a whole and never ahead of
// the schedule it describes.
type checkpoint struct {
	Format    string               `json:"format"`
	Directory string               `json:"directory"` // the directory version the deadlines were computed under
	Position  eventstore.Position  `json:"position"`
	Due       map[string]time.Time `json:"due"`
}

// restore loads the checkpoint in cfg.Dir, if any. One that cannot be used
// (unreadable, of another format or directory version, or ahead of the
// log: a log that was replaced) is logged and ignored: the schedule is
// rebuilt from the start of the log, as without one.
func (w *Watcher) restore(head eventstore.Position) {
	if w.cfg.Dir == "" {
		return
	}
	path := filepath.Join(w.cfg.Dir, CheckpointFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	var cp checkpoint
	if err == nil {
		err = json.Unmarshal(b, &cp)
	}
	switch {
	case err != nil:
	case cp.Format != checkpointFormat:
		err = fmt.Errorf("format %q, want %q", cp.Format, checkpointFormat)
	case cp.Directory != w.cfg.Directory.Version:
		err = fmt.Errorf("computed under directory %q, this is %q", cp.Directory, w.cfg.Directory.Version)
	case cp.Position > head:
		err = fmt.Errorf("it describes log position %d, the log ends at %d (another log?)", cp.Position, head)
	}
	if err != nil {
		w.cfg.Log.Warn("sla schedule checkpoint unusable: rebuilding the schedule from the log", zap.String("path", path), zap.Error(err))
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pos, w.saved = cp.Position, cp.Position
	for id, at := range cp.Due {
		w.due[id] = at
		heap.Push(&w.sched, entry{at: at, caseID: id})
	}
	w.cfg.Log.Info("sla schedule restored", zap.Uint64("position", uint64(cp.Position)), zap.Int("cases_with_deadlines", len(cp.Due)))
}

// save writes the checkpoint when the schedule moved since the last one.
func (w *Watcher) save() error {
	if w.cfg.Dir == "" {
		return nil
	}
	w.saveMu.Lock()
	defer w.saveMu.Unlock()
	w.mu.Lock()
	if w.pos == w.saved {
		w.mu.Unlock()
		return nil
	}
	cp := checkpoint{Format: checkpointFormat, Directory: w.cfg.Directory.Version, Position: w.pos, Due: make(map[string]time.Time, len(w.due))}
	for id, at := range w.due {
		cp.Due[id] = at
	}
	w.mu.Unlock()
	if err := os.MkdirAll(w.cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("slawatch: checkpoint folder: %w", err)
	}
	if _, err := atomicfile.Write(filepath.Join(w.cfg.Dir, CheckpointFile), func(out io.Writer) error {
		return json.NewEncoder(out).Encode(cp)
	}); err != nil {
		return fmt.Errorf("slawatch: save the schedule: %w", err)
	}
	w.mu.Lock()
	w.saved = cp.Position
	w.mu.Unlock()
	return nil
}

func (w *Watcher) saveAndLog() {
	if err := w.save(); err != nil {
		// The next save tries again; a restart rebuilds from the last one.
		w.cfg.Log.Error("sla schedule checkpoint not saved", zap.Error(err))
	}
}
