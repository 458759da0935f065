package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/whistle-gov/whistle/domain"
)

// kitchen holds the kinds of field the strict decoder checks that whistle's
// own files do not use yet.
type kitchen struct {
	Small   int8                       `json:"small"`
	Count   uint                       `json:"count"`
	On      bool                       `json:"on"`
	Ratio   float32                    `json:"ratio"`
	Maybe   *string                    `json:"maybe"`
	Pair    [2]string                  `json:"pair"`
	Blob    []byte                     `json:"blob"`
	Waits   map[string]domain.Duration `json:"waits"`
	Any     any                        `json:"any"`
	Skipped string                     `json:"-"`
	embedded
}

type embedded struct {
	Inner string `json:"inner"`
}

func TestDecodeStrict(t *testing.T) {
	cases := []struct {
		json, path, problem string
	}{
		{`{"small": 1, "count": 2, "on": true, "ratio": 0.5, "maybe": null, "pair": ["a"], "blob": "AAE=",
		   "waits": {"a b": "1s"}, "any": {"x": [1]}, "inner": "ok"}`, "", ""},
		{`{"small": 128}`, "$.small", "want an integer of 8 bits, got 128"},
		{`{"small": 1.5}`, "$.small", "want an integer of 8 bits, got 1.5"},
		{`{"count": -1}`, "$.count", "want a non-negative integer of 64 bits, got -1"},
		{`{"on": "yes"}`, "$.on", `want true or false, got string "yes"`},
		{`{"ratio": 1e39}`, "$.ratio", "1e39 is out of range"},
		{`{"pair": ["a", "b", "c"]}`, "$.pair", "want at most 2 elements, got 3"},
		{`{"pair": [1]}`, "$.pair[0]", "want a string, got number 1"},
		{`{"blob": [1]}`, "$.blob", "want a base64 string, got an array"},
		{`{"waits": {"a b": "soon"}}`, `$.waits["a b"]`, `invalid duration "soon"`},
		{`{"waits": []}`, "$.waits", "want an object, got an array"},
		{`{"inner": 1}`, "$.inner", "want a string, got number 1"},
		{`{"Skipped": "x"}`, "$.Skipped", `unknown field "Skipped"`},
		{`{"embedded": {}}`, "$.embedded", `unknown field "embedded"`},
		{`{"maybe": "` + strings.Repeat("长", 50) + `"}`, "", ""},
		{`{"small": "` + strings.Repeat("长", 50) + `"}`, "$.small", `got string "` + strings.Repeat("长", 40) + `…"`},
	}
	for _, tc := range cases {
		var k kitchen
		_, err := decodeStrict("test", "t.json", []byte(tc.json), &k)
		if tc.path == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.json, err)
			}
			continue
		}
		var fe *FileError
		if !errors.As(err, &fe) {
			t.Errorf("%s: error %v is not a *FileError", tc.json, err)
			continue
		}
		if fe.Path != tc.path || !strings.Contains(fe.Problem, tc.problem) {
			t.Errorf("%s:\n got  %s: %s\n want %s: %s", tc.json, fe.Path, fe.Problem, tc.path, tc.problem)
		}
	}
}

// Whatever the bytes, ParseDirectory returns a valid directory or a
// *FileError, and never panics.
func FuzzParseDirectory(f *testing.F) {
	f.Add([]byte(baseDirectory))
	f.Add(SampleDirectoryJSON())
	f.Add([]byte(`{"version": "x", "streets": [{"id": 1}]}`))
	f.Add([]byte(`{"a": [1, 2,, 3]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir, err := ParseDirectory("fuzz.json", data)
		if err != nil {
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T %v is not a *FileError", err, err)
			}
			if fe.Line < 0 || fe.Column < 0 || (fe.Line > 0) != (fe.Column > 0) {
				t.Fatalf("bad position %d:%d", fe.Line, fe.Column)
			}
			return
		}
		if err := dir.Validate(); err != nil {
			t.Fatalf("ParseDirectory returned an invalid directory: %v", err)
		}
	})
}
