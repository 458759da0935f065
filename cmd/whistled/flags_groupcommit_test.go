package main

import (
	"io"
	"testing"
)

// TestGroupCommitFlag: auto turns group commit on where it shares fsyncs
// (fsync always, or an external NATS) and off on an embedded server that
// syncs on an interval; on and off (and true and false) choose.
func TestGroupCommitFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{nil, true},
		{[]string{"--fsync", "interval"}, false},
		{[]string{"--fsync", "interval", "--nats", "nats://127.0.0.1:4222"}, true},
		{[]string{"--group-commit", "off"}, false},
		{[]string{"--group-commit=false"}, false},
		{[]string{"--fsync", "interval", "--group-commit", "on"}, true},
		{[]string{"--fsync", "interval", "--group-commit=true"}, true},
	} {
		o, err := parseOptions(tc.args, func(string) string { return "" }, io.Discard)
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if got := o.groupCommitOn(); got != tc.want {
			t.Errorf("%q: group commit %v, want %v", tc.args, got, tc.want)
		}
	}
	if _, err := parseOptions([]string{"--group-commit", "sometimes"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Error("--group-commit sometimes accepted")
	}
}

// TestGroupCommitPackedFlag: packed chooses the packed log (and keeps the
// dispatch stream's batching as auto does); it needs fsync always on the
// embedded server.
func TestGroupCommitPackedFlag(t *testing.T) {
	o, err := parseOptions([]string{"--group-commit", "packed"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !o.packed() || !o.groupCommitOn() {
		t.Errorf("--group-commit packed: packed %v, group commit %v; want both", o.packed(), o.groupCommitOn())
	}
	if _, err := parseOptions([]string{"--group-commit", "packed", "--fsync", "interval"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Error("--group-commit packed with --fsync interval on the embedded server accepted")
	}
	if o, err := parseOptions([]string{"--group-commit", "packed", "--fsync", "interval", "--nats", "nats://127.0.0.1:4222"}, func(string) string { return "" }, io.Discard); err != nil || !o.packed() {
		t.Errorf("--group-commit packed on an external NATS: %v, packed %v", err, o.packed())
	}
}

// TestGroupCommitAutoResolvesToPacked: auto is the packed log wherever
// commits have fsyncs to share, except on data whose log was written one
// message per commit, which keeps it; explicit settings and EventStoreDB
// are left as they are, and the store is not asked then.
func TestGroupCommitAutoResolvesToPacked(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		oldLog     bool
		wantPacked bool
		wantGroup  bool
		asks       bool
	}{
		{nil, false, true, true, true},
		{nil, true, false, true, true},
		{[]string{"--nats", "nats://127.0.0.1:4222", "--fsync", "interval"}, false, true, true, true},
		{[]string{"--fsync", "interval"}, false, false, false, false},
		{[]string{"--group-commit", "on"}, false, false, true, false},
		{[]string{"--group-commit", "off"}, false, false, false, false},
		{[]string{"--store", "esdb://127.0.0.1:2113"}, false, false, true, false},
	} {
		o, err := parseOptions(tc.args, func(string) string { return "" }, io.Discard)
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		asked := false
		o, err = o.resolveLayout(func() (bool, error) { asked = true; return tc.oldLog, nil })
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if o.packed() != tc.wantPacked || o.groupCommitOn() != tc.wantGroup || asked != tc.asks {
			t.Errorf("%q (a per-message log: %v): packed %v, group commit %v, asked %v; want %v, %v, %v",
				tc.args, tc.oldLog, o.packed(), o.groupCommitOn(), asked, tc.wantPacked, tc.wantGroup, tc.asks)
		}
	}
}
