package domain

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckCaseSize(t *testing.T) {
	const max = 100
	cases := []struct {
		name    string
		version uint64
		cmd     Command
		added   int
		max     int
		refused bool
	}{
		{"under the limit", 50, NoteProgress{}, 1, max, false},
		{"up to the limit", 99, NoteProgress{}, 1, max, false},
		{"past the limit", 100, NoteProgress{}, 1, max, true},
		{"a commit that would cross it", 99, Route{}, 2, max, true},
		{"a report at the limit", 100, Report{}, 1, max, true},
		{"resolve has a tenth more", 105, Resolve{}, 1, max, false},
		{"verify up to the margin", 109, Verify{}, 1, max, false},
		{"resolve past the margin", 110, Resolve{}, 1, max, true},
		{"reveal has the margin", 100, RevealRequester{}, 1, max, false},
		{"forget is never refused", 500, ForgetRequester{}, 1, max, false},
		{"deadline checks never refused", 500, CheckDeadlines{}, 2, max, false},
		{"nothing added", 500, NoteProgress{}, 0, max, false},
		{"no bound", 1 << 20, NoteProgress{}, 1, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cs := NewCase("c-1")
			cs.Version = c.version
			err := CheckCaseSize(cs, c.cmd, c.added, c.max)
			if !c.refused {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var r *Refusal
			if !errors.As(err, &r) || !errors.Is(err, ErrLimitReached) {
				t.Fatalf("err = %v, want a Refusal of ErrLimitReached", err)
			}
			for _, part := range []string{"c-1", "100", "--max-events-per-case", c.cmd.CommandName()} {
				if !strings.Contains(r.Reason, part) {
					t.Errorf("reason %q does not name %q", r.Reason, part)
				}
			}
		})
	}
}
