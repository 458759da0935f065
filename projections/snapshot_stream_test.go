package projections

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/whistle-gov/whistle/domain"
)

// TestSnapshotStreamIsJSONMarshal: the streamed encoding of both models is
// byte for byte what json.Marshal writes for their snapshot structs (the
// encoding before it streamed), over random logs cut at several points and
// a year of cases, so that snapshot files written before and after read
// alike and equal states still encode to equal bytes.
func TestSnapshotStreamIsJSONMarshal(t *testing.T) {
	check := func(t *testing.T, name string, s *Stats, b *Board) {
		t.Helper()
		want, err := json.Marshal(s.snapshot())
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := s.WriteSnapshot(&got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("%s: stats stream differs from json.Marshal at byte %d:\n%s\n%s", name, firstDiff(got.Bytes(), want), around(got.Bytes(), want), around(want, got.Bytes()))
		}
		want, err = json.Marshal(b.snapshot())
		if err != nil {
			t.Fatal(err)
		}
		got.Reset()
		if err := b.WriteSnapshot(&got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("%s: board stream differs from json.Marshal at byte %d:\n%s\n%s", name, firstDiff(got.Bytes(), want), around(got.Bytes(), want), around(want, got.Bytes()))
		}
	}
	check(t, "empty", newStats(t), NewBoard())
	for seed := uint64(20); seed < 28; seed++ {
		w := simulateWith(t, seed, 400, seed >= 26) // the last ones with tickets
		for _, cut := range []int{1, len(w.commits) / 2, len(w.commits)} {
			s, b := newStats(t), NewBoard()
			for _, c := range w.commits[:cut] {
				if err := s.ApplyCommit(c.pos, c.events, nil); err != nil {
					t.Fatal(err)
				}
				if err := b.ApplyCommit(c.pos, c.events, nil); err != nil {
					t.Fatal(err)
				}
			}
			check(t, "simulated", s, b)
		}
	}
	w := yearWorld(t, 3)
	check(t, "a year", statsOf(t, w), boardOf(t, w))

	// Titles and ids that encoding/json escapes.
	w = newWorld(t, 3)
	for _, title := range []string{`<b>&"quoted"\</b>`, "tab\tnew line\nreturn\r\x01\x1f\u007f", "行 \u2028 段 \u2029 end", "é 😀"} {
		id := w.newID()
		w.must(id, domain.Raise{Street: "longqiao", Community: "wanhui", Category: "river-pollution", Urgency: "routine", Title: title})
	}
	check(t, "escaped titles", statsOf(t, w), boardOf(t, w))
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func around(a, b []byte) string {
	i := firstDiff(a, b)
	return string(a[max(0, i-80):min(len(a), i+80)])
}

// TestAppendJSONStringIsJSONMarshal holds the string escaping to
// encoding/json's on every byte and on random strings, invalid UTF-8
// included.
func TestAppendJSONStringIsJSONMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cases := []string{"", "plain", "\u2028\u2029", "\xff\xfe", "a\xc3", "\xed\xa0\x80", "<>&"}
	for b := range 256 {
		cases = append(cases, string([]byte{byte(b)}), "x"+string([]byte{byte(b)})+"y")
	}
	for range 2000 {
		n := r.IntN(12)
		bs := make([]byte, n)
		for i := range bs {
			bs[i] = byte(r.IntN(256))
		}
		cases = append(cases, string(bs), string([]rune{rune(r.IntN(0x3000))}))
	}
	for _, s := range cases {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("%q: got %s, json.Marshal %s", s, got, want)
		}
	}
}

// TestSnapshotStreamFields: the members the streamed encoding writes for a
// case of the board are CaseSummary's and AssignmentSummary's JSON fields,
// so that a field added to them is not silently left out of snapshots
// (TestSnapshotStreamIsJSONMarshal shows the values).
func TestSnapshotStreamFields(t *testing.T) {
	names := func(v any) []string {
		var out []string
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			tag := rt.Field(i).Tag.Get("json")
			out = append(out, strings.Split(tag, ",")[0])
		}
		return out
	}
	for _, tc := range []struct {
		v    any
		want []string
	}{
		{CaseSummary{}, []string{"case_id", "street", "community", "category", "kind", "urgency", "title", "status", "raised_at", "closed_at", "assignments", "version", "position", "second_round", "callback", "source", "priority", "accept_by", "accept_overdue", "returned_at"}},
		{AssignmentSummary{}, []string{"assignee", "role", "status", "report_by", "resolve_by", "overdue"}},
		{openSnap{}, []string{"case_id", "version", "raised_at", "kind", "street", "community", "category", "urgency", "involved", "assignments", "counted"}},
		{asgSnap{}, []string{"assignee", "role", "made", "report_by", "resolve_by", "reported", "declined"}},
		{closedSnap{}, []string{"case_id", "version", "day", "street", "community", "category", "urgency", "assignees", "dispute"}},
		{bucketSnap{}, []string{"dim", "key", "day", "counts", "report_seconds", "close_seconds"}},
		{statsSnap{}, []string{"format", "time_zone", "position", "buckets", "open", "closed"}},
		{boardSnap{}, []string{"format", "position", "cases", "day", "retired"}},
	} {
		if got := names(tc.v); !slices.Equal(got, tc.want) {
			t.Errorf("%T has the JSON fields %v; WriteSnapshot writes %v: write the new ones there too", tc.v, got, tc.want)
		}
	}
}

// TestReadSnapshotStreams: ReadSnapshot restores what WriteSnapshot wrote,
// calls step once the snapshot opens and after every record, and leaves the
// decoder right after the snapshot; a snapshot of the same content in
// another member order is refused (there is one layout), and so is a torn
// one, the state unchanged.
func TestReadSnapshotStreams(t *testing.T) {
	w := simulate(t, 7, 400)
	s, b := statsOf(t, w), boardOf(t, w)
	var buf bytes.Buffer
	if err := s.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	statsBytes := slices.Clone(buf.Bytes())
	buf.Reset()
	if err := b.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	boardBytes := slices.Clone(buf.Bytes())

	// Both in one stream, as the read model runner's file holds them.
	stream := append(append(append([]byte(nil), statsBytes...), ' '), boardBytes...)
	dec := json.NewDecoder(bytes.NewReader(stream))
	var steps []int64
	step := func() { steps = append(steps, dec.InputOffset()) }
	s2, b2 := newStats(t), NewBoard()
	if err := s2.ReadSnapshot(dec, step); err != nil {
		t.Fatal(err)
	}
	if dec.InputOffset() != int64(len(statsBytes)) {
		t.Fatalf("after the stats the decoder stands at %d, the stats end at %d", dec.InputOffset(), len(statsBytes))
	}
	if steps[0] != 1 || !slices.IsSorted(steps) {
		t.Fatalf("steps at %v, want the first right after the opening brace and in order", steps[:min(5, len(steps))])
	}
	records := len(s.snapshot().Buckets) + len(s.snapshot().Open) + len(s.snapshot().Closed)
	if len(steps) != 1+records {
		t.Fatalf("%d steps for %d records", len(steps), records)
	}
	if err := b2.ReadSnapshot(dec, nil); err != nil {
		t.Fatal(err)
	}
	if d := Diff(s, s2); len(d) > 0 {
		t.Fatalf("stats restored from the stream differ:\n%s", strings.Join(d, "\n"))
	}
	if d := Diff(b, b2); len(d) > 0 {
		t.Fatalf("board restored from the stream differs:\n%s", strings.Join(d, "\n"))
	}

	// Another member order: a map marshals its keys sorted.
	reorder := func(data []byte) []byte {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		out, _ := json.Marshal(m)
		return out
	}
	for name, data := range map[string][]byte{"stats": reorder(statsBytes), "board": reorder(boardBytes)} {
		var err error
		if name == "stats" {
			err = newStats(t).ReadSnapshot(json.NewDecoder(bytes.NewReader(data)), nil)
		} else {
			err = NewBoard().ReadSnapshot(json.NewDecoder(bytes.NewReader(data)), nil)
		}
		if !errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("%s in another order: %v, want ErrBadSnapshot", name, err)
		}
	}
	s3, b3 := newStats(t), NewBoard()
	if err := s3.UnmarshalBinary(reorder(statsBytes)); !errors.Is(err, ErrBadSnapshot) || s3.Position() != 0 {
		t.Fatalf("stats in another order, read whole: %v, want ErrBadSnapshot and nothing restored", err)
	}
	if err := b3.UnmarshalBinary(reorder(boardBytes)); !errors.Is(err, ErrBadSnapshot) || b3.Len() != 0 {
		t.Fatalf("board in another order, read whole: %v, want ErrBadSnapshot and nothing restored", err)
	}

	// Torn anywhere: refused.
	for _, data := range [][]byte{statsBytes, boardBytes} {
		for cut := 0; cut < len(data); cut += 1 + cut/50 {
			fs, fb := newStats(t), NewBoard()
			var err error
			if bytes.Equal(data, statsBytes) {
				err = fs.ReadSnapshot(json.NewDecoder(bytes.NewReader(data[:cut])), nil)
			} else {
				err = fb.ReadSnapshot(json.NewDecoder(bytes.NewReader(data[:cut])), nil)
			}
			if !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("torn at %d of %d: %v, want ErrBadSnapshot", cut, len(data), err)
			}
			if fs.Position() != 0 || fb.Len() != 0 {
				t.Fatalf("torn at %d: the state changed", cut)
			}
			if err := fs.UnmarshalBinary(data[:cut]); !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("UnmarshalBinary torn at %d: %v", cut, err)
			}
		}
	}
	if err := newStats(t).UnmarshalBinary(append(slices.Clone(statsBytes), `{}`...)); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("data after the snapshot: %v, want ErrBadSnapshot", err)
	}
}

// TestWriteSnapshotRefusesAnUnencodableTime: a time json.Marshal refuses
// fails the stream too.
func TestWriteSnapshotRefusesAnUnencodableTime(t *testing.T) {
	var buf bytes.Buffer
	e := newSnapWriter(&buf)
	e.time(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))
	if err := e.done(); err == nil {
		t.Fatal("a year 10000 was encoded")
	}
	if _, err := json.Marshal(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)); err == nil {
		t.Fatal("json.Marshal encodes a year 10000: WriteSnapshot should too")
	}
}

// TestAppendUTCIsAppendText holds the fast time encoding to
// time.Time.AppendText on random UTC times over years 0 to 9999, the
// edges of days, months, leap years and centuries, and whole seconds; a
// time it does not take (another zone, a year of five digits, before year
// 0) is left to AppendText.
func TestAppendUTCIsAppendText(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var times []time.Time
	lo, hi := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).Unix()
	for range 200000 {
		ns := r.IntN(1e9)
		switch r.IntN(4) {
		case 0:
			ns = 0
		case 1:
			ns = ns / 1e6 * 1e6
		}
		times = append(times, time.Unix(lo+r.Int64N(hi-lo+1), int64(ns)).UTC())
	}
	for _, y := range []int{0, 1, 4, 100, 400, 1600, 1900, 1969, 1970, 2000, 2024, 2026, 2100, 9999} {
		for _, md := range [][2]int{{1, 1}, {2, 28}, {2, 29}, {3, 1}, {12, 31}} {
			d := time.Date(y, time.Month(md[0]), md[1], 0, 0, 0, 0, time.UTC)
			times = append(times, d, d.Add(-time.Nanosecond), d.Add(time.Nanosecond), d.Add(24*time.Hour-time.Nanosecond), d.Add(time.Second))
		}
	}
	times = append(times, time.Time{}, time.Unix(0, 0).UTC())
	for _, tm := range times {
		want, werr := tm.AppendText(nil)
		got, ok := appendUTC(nil, tm)
		if werr != nil {
			if ok {
				t.Fatalf("%v: AppendText refuses it (%v), appendUTC wrote %s", tm, werr, got)
			}
			continue
		}
		if !ok || !bytes.Equal(got, want) {
			t.Fatalf("%v: appendUTC %s (%v), AppendText %s", tm, got, ok, want)
		}
	}
	for _, tm := range []time.Time{
		time.Date(2026, 11, 23, 9, 0, 0, 0, time.FixedZone("CST", 8*3600)),
		time.Date(2026, 11, 23, 9, 0, 0, 0, time.Local),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 12, 31, 0, 0, 0, 0, time.UTC),
	} {
		if tm.Location() == time.UTC && tm.Year() >= 0 && tm.Year() <= 9999 {
			continue // time.Local may be UTC here
		}
		if got, ok := appendUTC(nil, tm); ok {
			t.Fatalf("%v: appendUTC took it: %s", tm, got)
		}
	}
}
