package jsonscan

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// seeds are JSON texts, valid and not, near the edges of what Scanner
// handles.
var seeds = []string{
	``, ` `, `{}`, ` { } `, `[]`, `[1,2]`, `[1,]`, `{"a":1,}`, `{"a" 1}`, `{"a":}`, `{a:1}`,
	`"plain"`, `"es\"cape"`, `"\u00e9t\u00E9"`, `"\u12"`, `"\x"`, "\"tab\there\"", `"unterminated`,
	`"é"`, "\"\xff\xfe\"", "\"\xed\xa0\x80\"", `"\/\b\f\n\r\t\\"`,
	`0`, `-0`, `01`, `-`, `1.`, `.5`, `1.5`, `1e5`, `1E+5`, `1e-5`, `1e`, `-1`, `18446744073709551615`,
	`18446744073709551616`, `9999999999999999999`, `1e400`, `123abc`,
	`true`, `false`, `null`, `tru`, `nul`, `truex`,
	`"2026-11-23T13:31:30.498582587Z"`, `"2026-11-23T13:31:30+08:00"`, `"2026-02-30T00:00:00Z"`,
	`"2026-11-23T13:31:30z"`, `"2026-11-23 13:31:30Z"`, `"2026-11-23T13:31:30.Z"`,
	`{"a":[{"b":{"c":[null,true,false,"x",1.5e3]}}],"d":{}}`,
	"\t\n\r {\"a\" : [ 1 , 2 ] } \n",
	`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`,
	"\xef\xbb\xbf{}", `{"a":1}{}`, `{"a":1} x`, "{\"a\":\"\x00\"}",
}

func FuzzSkip(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := New(b)
		raw, ok := s.Skip()
		ok = ok && s.End()
		valid := json.Valid(b)
		if ok && !valid {
			t.Fatalf("Skip accepted %q, which encoding/json refuses", b)
		}
		if ok {
			var want json.RawMessage
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(raw, want) {
				t.Fatalf("Skip(%q) = %q, encoding/json %q", b, raw, want)
			}
		}
		// Valid JSON is refused only when it nests deeper than MaxDepth.
		if valid && !ok && bytes.Count(b, []byte("["))+bytes.Count(b, []byte("{")) <= MaxDepth {
			t.Fatalf("Skip refused valid %q", b)
		}
	})
}

// FuzzReaders holds each typed reader equal to encoding/json decoding the
// same text into the same type: when a reader reports ok, encoding/json
// decodes the whole text without error to the same value.
func FuzzReaders(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		check := func(name string, got any, ok bool, want any) {
			t.Helper()
			if !ok {
				return
			}
			err := json.Unmarshal(b, want)
			if err != nil {
				t.Fatalf("%s accepted %q, which encoding/json refuses: %v", name, b, err)
			}
			if w := reflect.ValueOf(want).Elem().Interface(); !reflect.DeepEqual(got, w) {
				t.Fatalf("%s(%q) = %#v, encoding/json %#v", name, b, got, w)
			}
		}
		{
			s := New(b)
			v, ok := s.String()
			check("String", string(v), ok && s.End(), new(string))
		}
		{
			s := New(b)
			v, ok := s.Text()
			check("Text", string(v), ok && s.End(), new(string))
		}
		{
			s := New(b)
			v, ok := s.Uint64()
			check("Uint64", v, ok && s.End(), new(uint64))
		}
		{
			s := New(b)
			v, ok := s.Float64()
			check("Float64", v, ok && s.End(), new(float64))
		}
		{
			s := New(b)
			v, ok := s.Bool()
			check("Bool", v, ok && s.End(), new(bool))
		}
		{
			s := New(b)
			v, ok := s.Time()
			check("Time", v, ok && s.End(), new(time.Time))
		}
		{
			s := New(b)
			v, ok := s.RawString()
			check("RawString", json.RawMessage(v), ok && s.End(), new(json.RawMessage))
		}
		{
			// An object of any members, skipped.
			s := New(b)
			n := 0
			ok := s.Object(func([]byte) bool { n++; _, ok := s.Skip(); return ok })
			var m map[string]json.RawMessage
			if ok && s.End() {
				if err := json.Unmarshal(b, &m); err != nil {
					t.Fatalf("Object accepted %q, which encoding/json refuses: %v", b, err)
				}
				if len(m) > n {
					t.Fatalf("Object(%q) saw %d members, encoding/json %d", b, n, len(m))
				}
			}
		}
	})
}

func TestReadersOnWhatWhistleWrites(t *testing.T) {
	at := time.Date(2026, 11, 23, 13, 31, 30, 498582587, time.UTC)
	b, _ := json.Marshal(struct {
		S  string    `json:"s"`
		U  uint64    `json:"u"`
		F  float64   `json:"f"`
		T  time.Time `json:"t"`
		B  bool      `json:"b"`
		R  any       `json:"r"`
		Zh string    `json:"zh"`
	}{"luocheng", 42, 25.43, at, true, map[string]any{"x": []any{1, "two", nil}}, "龙桥街道"})
	s := New(b)
	got := map[string]any{}
	ok := s.Object(func(k []byte) bool {
		var v any
		var ok bool
		switch string(k) {
		case "s", "zh":
			var b []byte
			b, ok = s.String()
			v = string(b)
		case "u":
			v, ok = s.Uint64()
		case "f":
			v, ok = s.Float64()
		case "t":
			v, ok = s.Time()
		case "b":
			v, ok = s.Bool()
		case "r":
			var b []byte
			b, ok = s.Skip()
			v = string(b)
		}
		got[string(k)] = v
		return ok
	})
	if !ok || !s.End() {
		t.Fatalf("refused %s", b)
	}
	want := map[string]any{"s": "luocheng", "u": uint64(42), "f": 25.43, "t": at, "b": true, "r": `{"x":[1,"two",null]}`, "zh": "龙桥街道"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
