package readmodel

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/whistle-gov/whistle/projections"
)

// snapshotFormat names the encoding of WriteSnapshot; another one is
// refused.
const snapshotFormat = "whistle-readmodels/1"

// The snapshot is one JSON object, written by WriteSnapshot in this order
// and read back only in it: format, directory, position (the minimum of
// the models' own, which each model's snapshot carries), taken_at, stats,
// board, and sha256 last, computed as the models stream out: the sha256 of
// the directory version, a zero byte, the stats' bytes, a zero byte, the
// board's bytes, so that a torn or altered file is refused rather than
// half restored.

// WriteSnapshot encodes every model into w as the snapshot file holds them
// and returns the position they describe. It streams: the models are
// written record by record through buffers of about 64 KiB, and the
// checksum is computed on the way, so it costs those buffers, not a copy
// of the models. The caller must hold the models still (no commit applied
// meanwhile) until it returns, for the encoding to describe one position.
func (m *Models) WriteSnapshot(w io.Writer, now time.Time) (uint64, error) {
	pos, finish, err := m.writeSnapshot(w, now)
	if err != nil {
		return 0, err
	}
	return pos, finish()
}

// writeSnapshot is WriteSnapshot in two steps: it encodes the models, and
// finish, to be called once they may move again, writes the rest. The
// models are encoded on the caller's goroutine (which holds them still)
// while another one writes the chunks to w and checksums them, on the
// other core if there is one; at most snapshotChunks chunks wait between
// the two. finish waits for that writer, then writes the checksum. The
// models are read only before writeSnapshot returns, never by finish.
func (m *Models) writeSnapshot(w io.Writer, now time.Time) (pos uint64, finish func() error, err error) {
	pos = m.Position()
	dir, err := json.Marshal(m.directory)
	if err != nil {
		return 0, nil, fmt.Errorf("readmodel: encode snapshot: %w", err)
	}
	taken, err := json.Marshal(now.UTC())
	if err != nil {
		return 0, nil, fmt.Errorf("readmodel: encode snapshot: %w", err)
	}
	p := newChunkPipe(w)
	p.send([]byte(m.directory), false, true)
	p.send([]byte{0}, false, true)
	stop := func(err error) (uint64, func() error, error) {
		p.close()
		return 0, nil, err
	}
	head := `{"format":"` + snapshotFormat + `","directory":` + string(dir) +
		`,"position":` + strconv.FormatUint(pos, 10) + `,"taken_at":` + string(taken) + `,"stats":`
	p.send([]byte(head), true, false)
	if err := m.Stats.WriteSnapshot(p.hashed()); err != nil {
		return stop(fmt.Errorf("readmodel: encode stats: %w", err))
	}
	p.send([]byte{0}, false, true) // between the models' bytes in the checksum
	p.send([]byte(`,"board":`), true, false)
	if err := m.Board.WriteSnapshot(p.hashed()); err != nil {
		return stop(fmt.Errorf("readmodel: encode board: %w", err))
	}
	return pos, func() error {
		if err := p.close(); err != nil {
			return err
		}
		if _, err := io.WriteString(w, `,"sha256":"`+hex.EncodeToString(p.h.Sum(nil))+`"}`); err != nil {
			return fmt.Errorf("readmodel: write snapshot: %w", err)
		}
		return nil
	}, nil
}

// snapshotChunks is how many chunks of encoded models may wait to be
// written (each about 64 KiB, see projections.WriteSnapshot).
const snapshotChunks = 4

// chunkPipe hands chunks of a snapshot from the encoding goroutine to a
// writer goroutine, which writes them to w and checksums those marked so.
type chunkPipe struct {
	w      io.Writer
	h      hash.Hash
	full   chan snapChunk
	free   chan []byte
	done   chan struct{}
	failed atomic.Bool
	err    error // the writer's, read after done
	closed bool
}

// snapChunk is bytes to write to w, to checksum, or both.
type snapChunk struct {
	data          []byte
	write, hashed bool
}

func newChunkPipe(w io.Writer) *chunkPipe {
	p := &chunkPipe{w: w, h: sha256.New(), full: make(chan snapChunk, snapshotChunks), free: make(chan []byte, snapshotChunks+1), done: make(chan struct{})}
	for range snapshotChunks + 1 {
		p.free <- make([]byte, 0, 80<<10)
	}
	go func() {
		defer close(p.done)
		for c := range p.full {
			if p.err == nil {
				if c.hashed {
					p.h.Write(c.data)
				}
				if c.write {
					if _, err := p.w.Write(c.data); err != nil {
						p.err = fmt.Errorf("readmodel: write snapshot: %w", err)
						p.failed.Store(true)
					}
				}
			}
			p.free <- c.data[:0]
		}
	}()
	return p
}

// send copies b into a free buffer and queues it, to be written to w,
// checksummed, or both.
func (p *chunkPipe) send(b []byte, write, hashed bool) {
	buf := append(<-p.free, b...)
	p.full <- snapChunk{buf, write, hashed}
}

// hashed is a writer whose bytes are written and checksummed.
func (p *chunkPipe) hashed() io.Writer { return hashedWriter{p} }

type hashedWriter struct{ p *chunkPipe }

func (h hashedWriter) Write(b []byte) (int, error) {
	if h.p.failed.Load() {
		return 0, errors.New("readmodel: write snapshot: the writer failed")
	}
	h.p.send(b, true, true)
	return len(b), nil
}

// close waits until every chunk is written and returns the writer's error.
func (p *chunkPipe) close() error {
	if !p.closed {
		p.closed = true
		close(p.full)
		<-p.done
	}
	return p.err
}

// Marshal encodes every model into memory (see WriteSnapshot, which
// streams the same bytes; the caller must hold the models still).
func (m *Models) Marshal(now time.Time) ([]byte, uint64, error) {
	var buf bytes.Buffer
	pos, err := m.WriteSnapshot(&buf, now)
	if err != nil {
		return nil, 0, err
	}
	return buf.Bytes(), pos, nil
}

// Unmarshal replaces every model with a snapshot written by WriteSnapshot
// (or Marshal), and returns the position it describes, as ReadSnapshot
// does from memory. It replaces the models themselves, so call it before
// handing them to readers.
func (m *Models) Unmarshal(data []byte) (uint64, error) {
	return m.ReadSnapshot(bytes.NewReader(data))
}

// ReadSnapshot replaces every model with the snapshot r holds, written by
// WriteSnapshot, decoding it as it streams: one record of a model at a
// time, the checksum computed over each model's bytes as they pass, so
// that it costs about the largest record and the decoder's buffer, besides
// the models it builds. The models are replaced only once the whole
// document has checked out (format, directory version, the members in
// WriteSnapshot's order, checksum, position, nothing after it); else the
// error matches projections.ErrBadSnapshot and nothing changes (an error
// of r itself is returned as it is).
func (m *Models) ReadSnapshot(r io.Reader) (uint64, error) {
	pos, _, err := m.readSnapshotStream(r)
	return pos, err
}

// readSnapshotStream is ReadSnapshot, with its reader for a test.
func (m *Models) readSnapshotStream(r io.Reader) (uint64, *spanReader, error) {
	sr := &spanReader{r: r}
	dec := json.NewDecoder(sr)
	stats, err := projections.NewStats(m.weights, m.days)
	if err != nil {
		return 0, sr, err
	}
	board := projections.NewBoard()
	pos, err := m.readSnapshot(dec, sr, stats, board)
	if sr.readErr != nil {
		// The input failed (a disk error), not the snapshot.
		return 0, sr, fmt.Errorf("readmodel: read snapshot: %w", sr.readErr)
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // the document ended early: torn
		}
		return 0, sr, fmt.Errorf("%w: %w", projections.ErrBadSnapshot, err)
	}
	m.Stats, m.Board = stats, board
	return pos, sr, nil
}

func (m *Models) readSnapshot(dec *json.Decoder, sr *spanReader, stats *projections.Stats, board *projections.Board) (uint64, error) {
	if err := delim(dec, '{'); err != nil {
		return 0, err
	}
	var format, directory, sum string
	var pos uint64
	var taken time.Time
	if err := member(dec, "format", &format); err != nil {
		return 0, err
	}
	if format != snapshotFormat {
		return 0, fmt.Errorf("format %q, want %q", format, snapshotFormat)
	}
	if err := member(dec, "directory", &directory); err != nil {
		return 0, err
	}
	if directory != m.directory {
		return 0, fmt.Errorf("folded under directory version %q, this is %q", directory, m.directory)
	}
	if err := member(dec, "position", &pos); err != nil {
		return 0, err
	}
	if err := member(dec, "taken_at", &taken); err != nil {
		return 0, err
	}
	if err := expectKey(dec, "stats"); err != nil {
		return 0, err
	}
	h := sha256.New()
	h.Write([]byte(directory))
	h.Write([]byte{0})
	if err := stats.ReadSnapshot(dec, sr.stepper(dec, h)); err != nil {
		return 0, err
	}
	if err := sr.end(dec.InputOffset()); err != nil {
		return 0, err
	}
	h.Write([]byte{0})
	if err := expectKey(dec, "board"); err != nil {
		return 0, err
	}
	if err := board.ReadSnapshot(dec, sr.stepper(dec, h)); err != nil {
		return 0, err
	}
	if err := sr.end(dec.InputOffset()); err != nil {
		return 0, err
	}
	if err := member(dec, "sha256", &sum); err != nil {
		return 0, err
	}
	if dec.More() {
		name, _ := key(dec)
		return 0, fmt.Errorf("member %q after the checksum", name)
	}
	if err := delim(dec, '}'); err != nil {
		return 0, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return 0, errors.New("data after the snapshot")
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		return 0, errors.New("checksum does not match the content")
	}
	if got := min(stats.Position(), board.Position()); got != pos {
		return 0, fmt.Errorf("it says position %d, its models are at %d", pos, got)
	}
	return pos, nil
}

func delim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("%v where %v was expected", tok, want)
	}
	return nil
}

// key reads the next member's name.
func key(dec *json.Decoder) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", err
	}
	s, ok := tok.(string)
	if !ok {
		return "", fmt.Errorf("%v where a member was expected", tok)
	}
	return s, nil
}

func expectKey(dec *json.Decoder, want string) error {
	name, err := key(dec)
	if err != nil {
		return err
	}
	if name != want {
		return fmt.Errorf("member %q where %q was expected", name, want)
	}
	return nil
}

func member(dec *json.Decoder, name string, v any) error {
	if err := expectKey(dec, name); err != nil {
		return err
	}
	return dec.Decode(v)
}

// spanReader passes a snapshot's bytes to its json.Decoder and feeds the
// bytes of each model's value (a span) to a checksum, exactly: from the
// model's opening brace to its closing one, whatever whitespace the
// document holds. It keeps the bytes it has read and not yet passed on,
// from the decoder's position (InputOffset) to what the decoder has read
// ahead; the decoder's position moves at each record of a model (the
// models' ReadSnapshot step), so what it keeps is about one record and
// the decoder's buffer, never a model.
type spanReader struct {
	r     io.Reader
	pend  []byte // pend[start:] are the bytes from input offset base on
	start int
	base  int64
	h     hash.Hash // inside a span, its checksum; nil outside
	err   error
	// readErr is r's error other than io.EOF: the reading failed, which
	// says nothing of the snapshot.
	readErr error
	most    int // the most bytes kept at once, for a test
}

func (s *spanReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF && s.readErr == nil {
		s.readErr = err
	}
	if s.start > 0 && len(s.pend)+n > cap(s.pend) {
		k := copy(s.pend, s.pend[s.start:])
		s.pend, s.start = s.pend[:k], 0
	}
	s.pend = append(s.pend, p[:n]...)
	s.most = max(s.most, len(s.pend)-s.start)
	return n, err
}

// advance passes on the bytes before input offset off: to the checksum
// inside a span, nowhere outside.
func (s *spanReader) advance(off int64) {
	k := off - s.base
	if k < 0 || k > int64(len(s.pend)-s.start) {
		if s.err == nil {
			s.err = fmt.Errorf("readmodel: snapshot reader out of step: at %d, holding %d bytes from %d", off, len(s.pend)-s.start, s.base)
		}
		return
	}
	if s.h != nil {
		s.h.Write(s.pend[s.start : s.start+int(k)])
	}
	s.start += int(k)
	s.base = off
}

// stepper returns the step for a model's ReadSnapshot: its first call (the
// model's opening brace just read) opens the span at the brace, the next
// ones (after each record) pass the bytes read so far to h.
func (s *spanReader) stepper(dec *json.Decoder, h hash.Hash) func() {
	opened := false
	return func() {
		off := dec.InputOffset()
		if !opened {
			opened = true
			s.advance(off - 1) // drop what comes before the brace
			s.h = h
		}
		s.advance(off)
	}
}

// end closes the span at input offset off, right after a model's closing
// brace.
func (s *spanReader) end(off int64) error {
	if s.h == nil && s.err == nil {
		s.err = errors.New("readmodel: snapshot reader: a model ended that never began")
	}
	s.advance(off)
	s.h = nil
	return s.err
}
