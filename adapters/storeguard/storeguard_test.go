package storeguard

import (
	"errors"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{"64MiB": 64 << 20, "512KiB": 512 << 10, "1GiB": 1 << 30, "10MB": 10e6, "0": 0, "4096": 4096, " 2 MiB ": 2 << 20} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1MiB", "1.5GiB", "64 megs", "1e6"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
}

// A reserve larger than any disk is always under: Full names the disk and
// the flag, and matches ErrFull; no reserve is never full.
func TestFullUnderTheReserve(t *testing.T) {
	g := New(Config{Dir: t.TempDir(), Reserve: 1 << 62})
	err := g.Full()
	if !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), "--disk-reserve") {
		t.Fatalf("Full() = %v", err)
	}
	if err := New(Config{Dir: t.TempDir(), Reserve: 0}).Full(); err != nil {
		t.Fatalf("no reserve: %v", err)
	}
}
