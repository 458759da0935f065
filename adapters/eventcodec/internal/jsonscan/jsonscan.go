// Package jsonscan reads JSON of the plain shape whistle writes (objects of
// known keys, strings without escapes, unsigned integers, RFC 3339 times)
// without reflection, for decoders on the replay path that fall back to
// encoding/json for anything else.
//
// The contract of every method: when it reports ok, the bytes it consumed
// are valid JSON as encoding/json reads them and the value it returns is
// the one encoding/json would decode; when it reports !ok, the input is
// invalid or merely outside the narrow cases handled here (an escape in a
// string, a number that is not a small unsigned integer, nesting deeper
// than MaxDepth), and the caller must decode the whole input again with
// encoding/json, which then gives the value or the error. A Scanner never
// reports a value encoding/json would refuse, and never reports an error
// itself: its !ok is "ask encoding/json".
package jsonscan

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// MaxDepth bounds the nesting a skipped value may have (encoding/json
// allows 10,000; deeper input is left to it).
const MaxDepth = 64

// Scanner reads one JSON text from the front of a byte slice.
type Scanner struct {
	b []byte
	i int
}

// New returns a Scanner at the start of b.
func New(b []byte) Scanner { return Scanner{b: b} }

// isSpace is JSON's whitespace.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (s *Scanner) skipSpace() {
	for s.i < len(s.b) && isSpace(s.b[s.i]) {
		s.i++
	}
}

// Consume skips whitespace and reports whether the next byte is c,
// consuming it if so.
func (s *Scanner) Consume(c byte) bool {
	s.skipSpace()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// End reports whether nothing but whitespace is left.
func (s *Scanner) End() bool {
	s.skipSpace()
	return s.i == len(s.b)
}

// Object reads an object, calling member for each member with its key,
// the scanner placed before the member's value; member must read the value
// and report whether it could. Keys with escapes (which encoding/json would
// unescape, then match to fields without regard to case) are not handled.
// Duplicate keys are passed on in order, as encoding/json applies them
// (the last one wins).
func (s *Scanner) Object(member func(key []byte) bool) bool {
	if !s.Consume('{') {
		return false
	}
	if s.Consume('}') {
		return true
	}
	for {
		s.skipSpace()
		key, ok := s.str()
		if !ok || !s.Consume(':') {
			return false
		}
		if !member(key) {
			return false
		}
		if s.Consume(',') {
			continue
		}
		return s.Consume('}')
	}
}

// strPlain[c] is true for the bytes a string holds as they are: everything
// from 0x20 on but the quote and the backslash (encoding/json copies any
// other byte, UTF-8 or not, and refuses control characters).
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str reads a string without escapes at the front and returns its
// contents (aliasing the input), which may not be valid UTF-8.
func (s *Scanner) str() ([]byte, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	start := s.i + 1
	j := start
	for j < len(s.b) && strPlain[s.b[j]] {
		j++
	}
	if j >= len(s.b) || s.b[j] != '"' {
		return nil, false // an escape, a control character, or no end
	}
	s.i = j + 1
	return s.b[start:j], true
}

// String reads a string and returns its contents, aliasing the input, as
// encoding/json decodes a string: only for strings without escapes that
// are valid UTF-8 (encoding/json would replace invalid bytes), which it
// returns unchanged.
func (s *Scanner) String() ([]byte, bool) {
	s.skipSpace()
	v, ok := s.str()
	if !ok || !validUTF8(v) {
		return nil, false
	}
	return v, true
}

// Text reads a string and returns what encoding/json decodes it to: the
// contents of a string without escapes that is valid UTF-8, aliasing the
// input, as String does; for any other string (escapes, bytes that are
// not UTF-8), encoding/json's own decoding of that string alone.
func (s *Scanner) Text() ([]byte, bool) {
	s.skipSpace()
	start := s.i
	if v, ok := s.str(); ok && validUTF8(v) {
		return v, true
	}
	s.i = start
	if !s.anyString() {
		return nil, false
	}
	var v string
	if json.Unmarshal(s.b[start:s.i], &v) != nil {
		return nil, false
	}
	return []byte(v), true
}

func validUTF8(v []byte) bool {
	for _, c := range v {
		if c >= utf8.RuneSelf {
			return utf8.Valid(v)
		}
	}
	return true
}

// Uint64 reads a number that is an unsigned integer of at most 19 digits
// without a leading zero, as encoding/json decodes it into a uint64.
func (s *Scanner) Uint64() (uint64, bool) {
	s.skipSpace()
	start := s.i
	var v uint64
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		v = v*10 + uint64(s.b[s.i]-'0')
		s.i++
	}
	n := s.i - start
	if n == 0 || n > 19 || (n > 1 && s.b[start] == '0') {
		return 0, false
	}
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case '.', 'e', 'E': // a fraction or an exponent: not an integer here
			return 0, false
		}
	}
	return v, true
}

// Bool reads true or false.
func (s *Scanner) Bool() (v, ok bool) {
	s.skipSpace()
	switch {
	case hasWord(s.b[s.i:], "true"):
		s.i += 4
		return true, true
	case hasWord(s.b[s.i:], "false"):
		s.i += 5
		return false, true
	}
	return false, false
}

func hasWord(b []byte, w string) bool { return len(b) >= len(w) && string(b[:len(w)]) == w }

// Time reads a string as encoding/json decodes it into a time.Time: the
// string's bytes, quotes included, go to time.Time.UnmarshalJSON. Strings
// with escapes (which that method does not unescape either) are left to
// encoding/json.
func (s *Scanner) Time() (time.Time, bool) {
	raw, ok := s.RawString()
	if !ok {
		return time.Time{}, false
	}
	var t time.Time
	if t.UnmarshalJSON(raw) != nil {
		return time.Time{}, false
	}
	return t, true
}

// RawString reads a string without escapes and returns it with its quotes,
// aliasing the input.
func (s *Scanner) RawString() ([]byte, bool) {
	s.skipSpace()
	start := s.i
	if _, ok := s.str(); !ok {
		return nil, false
	}
	return s.b[start:s.i], true
}

// Float64 reads a number as encoding/json decodes it into a float64
// (strconv.ParseFloat of its bytes; out of range is left to
// encoding/json, which refuses it).
func (s *Scanner) Float64() (float64, bool) {
	s.skipSpace()
	start := s.i
	if s.i >= len(s.b) || !(s.b[s.i] == '-' || isDigit(s.b[s.i])) || !s.number() {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(s.b[start:s.i]), 64)
	return f, err == nil
}

// Skip reads any JSON value, checking it as encoding/json does, and
// returns its bytes (aliasing the input; what encoding/json gives a
// json.RawMessage). Strings in it may hold escapes; nesting is bounded by
// MaxDepth.
func (s *Scanner) Skip() ([]byte, bool) {
	s.skipSpace()
	start := s.i
	if !s.value(0) {
		return nil, false
	}
	return s.b[start:s.i], true
}

// value checks the value at the front (after whitespace was skipped).
func (s *Scanner) value(depth int) bool {
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		return s.anyString()
	case c == '{':
		if depth >= MaxDepth {
			return false
		}
		s.i++
		if s.Consume('}') {
			return true
		}
		for {
			s.skipSpace()
			if !s.anyString() || !s.Consume(':') {
				return false
			}
			s.skipSpace()
			if !s.value(depth + 1) {
				return false
			}
			if s.Consume(',') {
				continue
			}
			return s.Consume('}')
		}
	case c == '[':
		if depth >= MaxDepth {
			return false
		}
		s.i++
		if s.Consume(']') {
			return true
		}
		for {
			s.skipSpace()
			if !s.value(depth + 1) {
				return false
			}
			if s.Consume(',') {
				continue
			}
			return s.Consume(']')
		}
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	case c == 't':
		return s.word("true")
	case c == 'f':
		return s.word("false")
	case c == 'n':
		return s.word("null")
	}
	return false
}

func (s *Scanner) word(w string) bool {
	if !hasWord(s.b[s.i:], w) {
		return false
	}
	s.i += len(w)
	return true
}

// anyString checks a string at the front, escapes allowed.
func (s *Scanner) anyString() bool {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return false
	}
	j := s.i + 1
	for j < len(s.b) {
		c := s.b[j]
		switch {
		case strPlain[c]:
			j++
		case c == '"':
			s.i = j + 1
			return true
		case c == '\\':
			if j+1 >= len(s.b) {
				return false
			}
			switch s.b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if j+6 > len(s.b) {
					return false
				}
				for _, h := range s.b[j+2 : j+6] {
					if !isHex(h) {
						return false
					}
				}
				j += 6
			default:
				return false
			}
		default: // a control character
			return false
		}
	}
	return false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// number checks a number at the front:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *Scanner) number() bool {
	b, i := s.b, s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	s.i = i
	return true
}
