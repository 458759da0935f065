// Package atomicfile replaces files whole: a reader, or a restart after a
// crash, finds the old content or the new one, never a mix. The derived
// state whistle keeps on disk (the read models' snapshot, the SLA
// watcher's schedule) is written with it.
package atomicfile

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
)

// Write replaces the file at path with what write writes (through
// a 64 KiB buffer) and returns its size: a temporary file in the same
// folder, synced, renamed over path, and the folder synced.
func Write(path string, write func(io.Writer) error) (int64, error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return 0, err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 64<<10)
	cw := &countingWriter{w: bw}
	if err := write(cw); err != nil {
		return 0, err
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return 0, err
	}
	ok = true
	// Sync the folder so that the rename, not only the data, is on disk
	// before the saved position is relied on.
	d, err := os.Open(dir)
	if err != nil {
		return 0, err
	}
	defer d.Close()
	return cw.n, d.Sync()
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
