package projections

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"
)

// Snapshots are streamed both ways: WriteSnapshot appends the JSON of one
// record at a time to a small buffer and hands it to the writer in chunks
// of snapChunk bytes, so that encoding a model costs a bounded buffer, not
// a copy of the model; ReadSnapshot decodes one record at a time from a
// json.Decoder and restores it before reading the next.
//
// The bytes are exactly those json.Marshal writes for the snapshot structs
// (statsSnap, boardSnap): the same members in the same order, strings
// escaped as encoding/json escapes them, times as time.Time.MarshalJSON
// writes them. TestSnapshotStreamIsJSONMarshal holds the two together. It
// is the one layout read back: a snapshot whose members are in another
// order is refused (ErrBadSnapshot), and its owner folds the log again.

// snapChunk is how much encoded JSON WriteSnapshot gathers before writing.
const snapChunk = 64 << 10

// errSnapshotLayout: the snapshot is JSON, but its members are not in the
// order WriteSnapshot writes them.
var errSnapshotLayout = errors.New("snapshot members not in the streamed order")

// snapWriter appends JSON to buf and writes it to w in chunks. The first
// error (of w, or of encoding a time) stops everything after it.
type snapWriter struct {
	w   io.Writer
	buf []byte
	err error
}

func newSnapWriter(w io.Writer) *snapWriter {
	return &snapWriter{w: w, buf: make([]byte, 0, snapChunk+4<<10)}
}

// record ends a record: the chunk is written once it is full.
func (e *snapWriter) record() {
	if len(e.buf) >= snapChunk {
		e.flush()
	}
}

func (e *snapWriter) flush() {
	if e.err == nil && len(e.buf) > 0 {
		_, e.err = e.w.Write(e.buf)
	}
	e.buf = e.buf[:0]
}

// done writes what is left and returns the first error.
func (e *snapWriter) done() error {
	e.flush()
	return e.err
}

func (e *snapWriter) raw(s string) { e.buf = append(e.buf, s...) }

func (e *snapWriter) str(s string) { e.buf = appendJSONString(e.buf, s) }

func (e *snapWriter) uint(v uint64) { e.buf = strconv.AppendUint(e.buf, v, 10) }

func (e *snapWriter) int(v int64) { e.buf = strconv.AppendInt(e.buf, v, 10) }

func (e *snapWriter) bool(v bool) { e.buf = strconv.AppendBool(e.buf, v) }

// time writes t as time.Time.MarshalJSON does (RFC 3339 with nanoseconds,
// quoted); a time it refuses (a year outside 0–9999) fails the encoding,
// as it fails json.Marshal.
func (e *snapWriter) time(t time.Time) {
	e.buf = append(e.buf, '"')
	if b, ok := appendUTC(e.buf, t); ok {
		e.buf = append(b, '"')
		return
	}
	b, err := t.AppendText(e.buf)
	if err != nil {
		if e.err == nil {
			e.err = fmt.Errorf("projections: snapshot: %w", err)
		}
		return
	}
	e.buf = append(b, '"')
}

// appendUTC appends t as time.Time.AppendText does (RFC 3339 with
// nanoseconds, trailing zeros cut) when t is in UTC with a year of four
// digits, which is every time the models hold, about three times faster;
// it reports false, appending nothing, for any other t.
func appendUTC(b []byte, t time.Time) ([]byte, bool) {
	if t.Location() != time.UTC {
		return b, false
	}
	sec, ns := t.Unix(), t.Nanosecond()
	days := sec / 86400
	if sec%86400 < 0 {
		days--
	}
	rem := sec - days*86400
	// The civil date of a count of days since 1970-01-01 (Howard Hinnant's
	// civil_from_days, proleptic Gregorian like package time).
	z := days + 719468
	era := z / 146097
	if z < 0 {
		era = (z - 146096) / 146097
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if mp >= 10 {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	if y < 0 || y > 9999 {
		return b, false
	}
	b = append(b, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10), 'T',
		byte('0'+rem/36000), byte('0'+rem/3600%10), ':', byte('0'+rem/600%6), byte('0'+rem/60%10), ':',
		byte('0'+rem%60/10), byte('0'+rem%10))
	if ns != 0 {
		var frac [10]byte
		frac[0] = '.'
		for i := 9; i >= 1; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		b = append(b, frac[:n]...)
	}
	return append(b, 'Z'), true
}

// timeOrNull writes a *time.Time that has no omitempty.
func (e *snapWriter) timeOrNull(t *time.Time) {
	if t == nil {
		e.raw("null")
		return
	}
	e.time(*t)
}

func (e *snapWriter) day(d int32) {
	var b [16]byte
	e.buf = appendJSONString(e.buf, string(dayStart(d).AppendFormat(b[:0], dayLayout)))
}

// strs writes a []string that is never nil.
func (e *snapWriter) strs(ss []string) {
	e.buf = append(e.buf, '[')
	for i, s := range ss {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		e.str(s)
	}
	e.buf = append(e.buf, ']')
}

const hexDigits = "0123456789abcdef"

// jsonSafe tells the bytes a JSON string holds as they are: printable
// ASCII but for ", \, <, > and &.
var jsonSafe = func() (t [256]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\' && b != '<' && b != '>' && b != '&'
	}
	return t
}()

// appendJSONString appends s as encoding/json writes a string (with its
// default HTML escaping): ", \ and control characters escaped, <, > and &
// as \u003c, \u003e and \u0026, U+2028 and U+2029 escaped, and each byte of
// invalid UTF-8 as \ufffd.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	// Most strings (ids, keys, enum values) need no escaping.
	i := 0
	for i < len(s) && jsonSafe[s[i]] {
		i++
	}
	if i == len(s) {
		dst = append(dst, s...)
		return append(dst, '"')
	}
	start := 0
	for i < len(s) {
		if b := s[i]; b < utf8.RuneSelf {
			if jsonSafe[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// snapReader reads a streamed snapshot's members in their order.
type snapReader struct {
	dec  *json.Decoder
	step func()
}

// syntax turns the end of the input inside a snapshot into an error (the
// decoder reports a torn document's end as io.EOF).
func syntax(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func (r *snapReader) delim(want json.Delim) error {
	tok, err := r.dec.Token()
	if err != nil {
		return syntax(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("%w: %v where %v was expected", errSnapshotLayout, tok, want)
	}
	return nil
}

// open reads the snapshot's opening brace.
func (r *snapReader) open() error {
	if err := r.delim('{'); err != nil {
		return err
	}
	if r.step != nil {
		r.step()
	}
	return nil
}

// key reads the next member's name, which must be name.
func (r *snapReader) key(name string) error {
	tok, err := r.dec.Token()
	if err != nil {
		return syntax(err)
	}
	if s, ok := tok.(string); !ok || s != name {
		return fmt.Errorf("%w: %v where %q was expected", errSnapshotLayout, tok, name)
	}
	return nil
}

// optional reads the next member's name if it is name and reports whether
// it was; it leaves anything else (another member, the end of the object)
// to be read next.
func (r *snapReader) optional(name string) (bool, error) {
	if !r.dec.More() {
		return false, nil
	}
	tok, err := r.dec.Token()
	if err != nil {
		return false, syntax(err)
	}
	if s, ok := tok.(string); !ok || s != name {
		return false, fmt.Errorf("%w: %v where %q or the end was expected", errSnapshotLayout, tok, name)
	}
	return true, nil
}

// member reads the member name's value into v.
func (r *snapReader) member(name string, v any) error {
	if err := r.key(name); err != nil {
		return err
	}
	return syntax(r.dec.Decode(v))
}

// array reads the member name, an array, calling each for every element,
// which must decode it and restore it.
func (r *snapReader) array(name string, each func(*json.Decoder) error) error {
	if err := r.key(name); err != nil {
		return err
	}
	tok, err := r.dec.Token()
	if err != nil {
		return syntax(err)
	}
	if tok == nil { // null: an empty list, as json.Unmarshal reads it
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return fmt.Errorf("%s is %v, not a list", name, tok)
	}
	for r.dec.More() {
		if err := each(r.dec); err != nil {
			return syntax(err)
		}
		if r.step != nil {
			r.step()
		}
	}
	return r.delim(']')
}

// close reads the snapshot's closing brace.
func (r *snapReader) close() error {
	if r.dec.More() {
		tok, err := r.dec.Token()
		if err != nil {
			return syntax(err)
		}
		return fmt.Errorf("%w: %v where the end was expected", errSnapshotLayout, tok)
	}
	return r.delim('}')
}

// unmarshalWhole restores data, which holds one snapshot and nothing after
// it, with read, which decodes one from a json.Decoder.
func unmarshalWhole(data []byte, read func(*json.Decoder) error) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := read(dec); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the snapshot", ErrBadSnapshot)
	}
	return nil
}
