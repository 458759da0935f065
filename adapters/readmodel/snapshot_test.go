package readmodel

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/whistle-gov/whistle/domain"
	"github.com/whistle-gov/whistle/projections"
)

var (
	livesOnce   sync.Once
	livesDir    *domain.Directory
	livesModels *Models
)

// livesFixture: read models folded from 4,000 case lives of the sample
// directory (caseLog): open cases at every step, overdue and escalated ones,
// closed ones rated and awaiting a rating, a month of day buckets.
func livesFixture(t *testing.T) (*domain.Directory, *Models) {
	livesOnce.Do(func() {
		dir, log := caseLog(t, 4000, true)
		m, err := NewModels(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range log {
			if err := m.ApplyCommit(c); err != nil {
				t.Fatal(err)
			}
		}
		livesDir, livesModels = dir, m
	})
	if livesModels == nil {
		t.Fatal("fixture failed")
	}
	return livesDir, livesModels
}

// choppy hands out its bytes in reads of random sizes, so that the
// decoder's reads end anywhere in the document.
type choppy struct {
	data []byte
	rng  *rand.Rand
}

func (c *choppy) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(c.data), 1+c.rng.IntN(3000))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// biggestWrite records the largest single write.
type biggestWrite struct {
	bytes.Buffer
	most int
}

func (b *biggestWrite) Write(p []byte) (int, error) {
	b.most = max(b.most, len(p))
	return b.Buffer.Write(p)
}

// TestSnapshotStreamRoundTrip: models streamed out and read back as they
// stream equal the original, and encode to the same bytes; the writing goes
// out in chunks of about 64 KiB and the reading holds about one record at a
// time, not a model; the document is the same format as before the
// streaming (its checksum is the old one, and the whole-document decoding
// of the code before reads it).
func TestSnapshotStreamRoundTrip(t *testing.T) {
	dir, m := livesFixture(t)
	if m.Board.Len() < 1000 {
		t.Fatalf("fixture: %d cases", m.Board.Len())
	}
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	var out biggestWrite
	pos, err := m.WriteSnapshot(&out, now)
	if err != nil {
		t.Fatal(err)
	}
	data := out.Bytes()
	if pos != m.Position() || pos == 0 {
		t.Fatalf("written at position %d, the models are at %d", pos, m.Position())
	}
	if out.most > 80<<10 {
		t.Fatalf("a write of %d bytes: the encoding is not streamed in chunks", out.most)
	}
	if len(data) < 4<<20 {
		t.Fatalf("fixture: a snapshot of only %d bytes", len(data))
	}

	restored, err := NewModels(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, sr, err := restored.readSnapshotStream(&choppy{data: data, rng: rand.New(rand.NewPCG(1, 1))})
	if err != nil {
		t.Fatal(err)
	}
	if got != pos {
		t.Fatalf("read back at position %d, written at %d", got, pos)
	}
	if d := m.Diff(restored); len(d) > 0 {
		t.Fatalf("read back, the models differ:\n%s", strings.Join(d[:min(len(d), 20)], "\n"))
	}
	var again bytes.Buffer
	if _, err := restored.WriteSnapshot(&again, now); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), data) {
		t.Fatal("read back and written again, the bytes differ")
	}
	if sr.most > 256<<10 {
		t.Fatalf("reading held %d bytes at once of a %d-byte snapshot: not streamed", sr.most, len(data))
	}
	t.Logf("%d cases, %d bytes; largest write %d bytes, most held while reading %d bytes", m.Board.Len(), len(data), out.most, sr.most)

	// The checksum covers the directory version and the models' bytes.
	var doc snapshot
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	stats, _ := m.Stats.MarshalBinary()
	board, _ := m.Board.MarshalBinary()
	if doc.SHA256 != checksum(dir.Version, stats, board) || !bytes.Equal(doc.Stats, stats) || !bytes.Equal(doc.Board, board) {
		t.Fatal("the streamed document's models or checksum are not those of the format")
	}
}

// oldLayout rewrites a snapshot as the code before the streaming wrote it:
// json.Marshal of the snapshot struct, sha256 fifth, before the models.
func oldLayout(t *testing.T, data []byte) []byte {
	t.Helper()
	var doc snapshot
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	old, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(old, []byte(`","sha256":"`+doc.SHA256+`","stats":{`)) {
		t.Fatal("test setup: sha256 is not before the models")
	}
	return old
}

// TestSnapshotInAnotherLayoutIsRefused: there is one layout, the streamed
// one. A snapshot file laid out as the code before the streaming wrote it
// (sha256 before the models), or whose members some tool reordered, is
// refused (the runner then folds the log again, once), and the models are
// unchanged.
func TestSnapshotInAnotherLayoutIsRefused(t *testing.T) {
	dir, m := livesFixture(t)
	data, pos, err := m.Marshal(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	sorted, _ := json.Marshal(doc) // board, directory, format, position, sha256, stats, taken_at
	for name, other := range map[string][]byte{"the layout before streaming": oldLayout(t, data), "members reordered": sorted} {
		restored, _ := NewModels(dir)
		stats, board := restored.Stats, restored.Board
		if _, err := restored.ReadSnapshot(bytes.NewReader(other)); !errors.Is(err, projections.ErrBadSnapshot) {
			t.Fatalf("%s: %v, want ErrBadSnapshot", name, err)
		}
		if _, err := restored.Unmarshal(other); !errors.Is(err, projections.ErrBadSnapshot) {
			t.Fatalf("%s, Unmarshal: %v, want ErrBadSnapshot", name, err)
		}
		if restored.Stats != stats || restored.Board != board || restored.Position() != 0 {
			t.Fatalf("%s: a refused snapshot changed the models", name)
		}
	}
	restored, _ := NewModels(dir)
	if p, err := restored.Unmarshal(data); err != nil || p != pos {
		t.Fatalf("the streamed layout: position %d, %v", p, err)
	}
}

// TestTornOrAlteredSnapshotIsRefused: a snapshot cut anywhere, or with a
// byte of a model changed, its position changed, or data after it, is
// refused with ErrBadSnapshot, and the models are unchanged.
func TestTornOrAlteredSnapshotIsRefused(t *testing.T) {
	dir, m := livesFixture(t)
	data, _, err := m.Marshal(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	refused := func(name string, doc []byte) {
		t.Helper()
		fresh, _ := NewModels(dir)
		stats, board := fresh.Stats, fresh.Board
		_, err := fresh.Unmarshal(doc)
		if !errors.Is(err, projections.ErrBadSnapshot) {
			t.Fatalf("%s: %v, want ErrBadSnapshot", name, err)
		}
		if fresh.Stats != stats || fresh.Board != board {
			t.Fatalf("%s: a refused snapshot replaced the models", name)
		}
	}
	for _, doc := range [][]byte{data, oldLayout(t, data)} {
		for _, cut := range []int{0, 1, 40, 120, len(doc) / 7, len(doc) / 3, len(doc) / 2, 2 * len(doc) / 3, len(doc) - 90, len(doc) - 66, len(doc) - 2, len(doc) - 1} {
			refused("cut", doc[:cut])
		}
	}
	statsAt := bytes.Index(data, []byte(`"raised":`)) + len(`"raised":`)
	boardAt := bytes.Index(data, []byte(`"title":"bench `)) + len(`"title":"bench `)
	for name, at := range map[string]int{"a count": statsAt, "a title": boardAt} {
		altered := bytes.Clone(data)
		if altered[at] == '1' {
			altered[at] = '2'
		} else {
			altered[at] = '1'
		}
		refused(name+" altered", altered)
		refused(name+" altered, layout before", oldLayout(t, altered))
	}
	var doc snapshot
	_ = json.Unmarshal(data, &doc)
	moved := bytes.Replace(data, []byte(`"position":`+jsonNumber(doc.Position)+`,"taken_at"`), []byte(`"position":`+jsonNumber(doc.Position+1)+`,"taken_at"`), 1)
	if bytes.Equal(moved, data) {
		t.Fatal("test setup: position not found")
	}
	refused("position altered", moved)
	refused("data after it", append(bytes.Clone(data), `{}`...))
}

func jsonNumber(v uint64) string {
	b, _ := json.Marshal(v)
	return string(b)
}
