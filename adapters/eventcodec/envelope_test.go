package eventcodec

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/whistle-gov/whistle/adapters/eventstore"
	"github.com/whistle-gov/whistle/domain"
)

var writeSeeds = flag.Bool("write-seeds", false, "rewrite testdata/fuzz/FuzzFoldEnvelope/sealed-* from sealedEnvelopes")

// everyEvent is one filled example of every event type, with the strings
// an envelope's JSON escapes (quotes, newlines, <, >, &) and non-ASCII
// text.
func everyEvent() []domain.Event {
	lat, lon := 25.4310, 119.0076
	at := time.Date(2026, 3, 2, 9, 30, 0, 123456789, time.UTC)
	return []domain.Event{
		domain.WhistleRaised{Street: "longqiao", Community: "wanhui", Category: "river-pollution", Kind: domain.KindIssue,
			Urgency: domain.UrgencyUrgent, Title: "木兰溪 污染", Description: "oil <on> the water \"near\" the bridge & the weir\n",
			DirectoryVersion: "test-1", Location: &domain.Location{Address: "龙桥街道 3号", Lat: &lat, Lon: &lon},
			RequestSHA256: strings.Repeat("ab", 32)},
		domain.WhistleRaised{Street: "luocheng", Community: "xinxia", Category: "falling-facade-tiles", Kind: domain.KindIssue,
			Urgency: domain.UrgencyRoutine, Title: "replay fixture", Description: "a case lived from raise to rating",
			DirectoryVersion: "sample-1"},
		domain.AssignmentMade{Assignee: "ecology-bureau", Role: domain.RoleLead, ReportBy: at, ResolveBy: at.Add(72 * time.Hour), ByHand: true},
		domain.AssignmentMade{Assignee: "water-bureau", Role: domain.RoleAssist, ReportBy: at, ResolveBy: at.Add(72 * time.Hour)},
		domain.AssignmentReported{Assignee: "water-bureau", Role: domain.RoleAssist, Note: "on site"},
		domain.AssignmentOverdue{Assignee: "water-bureau", Role: domain.RoleAssist, Deadline: domain.DeadlineResolve, Level: "city", Due: at},
		domain.CaseEscalated{Deadline: domain.DeadlineReport, Level: "district", Assignee: "ecology-bureau"},
		domain.ProgressNoted{Assignee: "ecology-bureau", Role: domain.RoleLead, Note: "50%"},
		domain.AssignmentDeclined{Assignee: "judicial-office", Role: domain.RoleLead, Reason: "civil matter", Suggest: "urban-management"},
		domain.NeedClaimed{Assignee: "no1-middle-school", Role: domain.RoleLead, ResolveBy: at, Note: "room 101"},
		domain.AssignmentResolved{Assignee: "judicial-office", Role: domain.RoleLead, Note: "agreed", Mediation: domain.MediationFailure},
		domain.ResolutionVerified{Note: "checked on site"},
		domain.ResolutionRejected{Note: "still leaking"},
		domain.CaseClosed{},
		domain.SatisfactionRated{Rating: domain.RatingBasicallySatisfied},
	}
}

// sealedEnvelopes seals everyEvent into one case's history, one command
// per event, and returns each envelope as the command handler stores it
// (json.Marshal of the domain.Envelope), with the case's stream.
func sealedEnvelopes(t testing.TB) (stream string, stored [][]byte) {
	t.Helper()
	c := domain.NewCase("01a2089a-c542-78d1-987d-4536bfa0622f")
	now := time.Date(2026, 11, 23, 13, 31, 30, 498582587, time.UTC)
	actors := []domain.Actor{{Role: domain.ActorStreet, ID: "longqiao"}, {Role: domain.ActorDepartment, ID: "ecology-bureau"},
		{Role: domain.ActorSystem, ID: "sla-watcher"}}
	for i, e := range everyEvent() {
		envs, err := domain.Seal(c, domain.CommandMeta{CommandID: fmt.Sprintf("cmd-%d", i), Actor: actors[i%len(actors)],
			Now: now.Add(time.Duration(i) * time.Second)}, []domain.Event{e})
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(envs[0])
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, b)
		c.Version++
		c.LastHash = envs[0].Hash
	}
	return domain.Stream(c.ID), stored
}

// TestFoldEnvelopeSeeds checks that the fuzz corpus holds the envelopes
// sealedEnvelopes makes (go test -run TestFoldEnvelopeSeeds -write-seeds
// rewrites them) besides the ones taken from a replayed log (log-*).
func TestFoldEnvelopeSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzFoldEnvelope")
	stream, stored := sealedEnvelopes(t)
	for i, b := range stored {
		name := filepath.Join(dir, fmt.Sprintf("sealed-%02d", i))
		file := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\nstring(%s)\n", strconv.Quote(string(b)), strconv.Quote(stream))
		if *writeSeeds {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(name, []byte(file), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(name)
		if err != nil || string(got) != file {
			t.Errorf("%s is not the envelope sealedEnvelopes makes (%v): rerun with -write-seeds", name, err)
		}
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "log-*"))
	if len(logs) == 0 {
		t.Error("no seeds from a replayed log")
	}
}

// TestScanFoldEnvelopeTakesWhatWhistleWrites checks that the envelopes
// whistle stores are read by the scanner, not by the fallback, and alike.
func TestScanFoldEnvelopeTakesWhatWhistleWrites(t *testing.T) {
	stream, stored := sealedEnvelopes(t)
	memo := envelopeMemo{stream: stream}
	for _, b := range stored {
		var fe foldEnvelope
		if !scanFoldEnvelope(b, &fe, &memo) {
			t.Fatalf("the scanner refused %s", b)
		}
		var want foldEnvelope
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fe, want) {
			t.Fatalf("scanned %+v, encoding/json %+v", fe, want)
		}
		// The case id is the stream's own bytes, not a copy.
		if id := stream[len("case-"):]; fe.CaseID != id || unsafe.StringData(fe.CaseID) != unsafe.StringData(id) {
			t.Fatalf("the case id %q was not taken from the stream %q", fe.CaseID, stream)
		}
	}
}

// FuzzFoldEnvelope holds decodeFoldEnvelope equal to encoding/json: for any
// input, both give an error, or both give the same envelope. The memo is
// exercised by decoding each input twice under the same one, as the
// envelopes of one commit are, after one other envelope.
func FuzzFoldEnvelope(f *testing.F) {
	stream, stored := sealedEnvelopes(f)
	for _, b := range stored {
		f.Add(b, stream)
	}
	f.Add([]byte(`{"type":"CaseClosed","version":01}`), "")
	f.Add([]byte(`{"Type":"CaseClosed","version":1}`), "")
	f.Add([]byte(`{"type":"Case\u0043losed","case_id":"x","data":null}`), "case-x")
	f.Add([]byte(`{"type":"CaseClosed","occurred_at":null,"data":{},"data":[1]}`), "")
	f.Add([]byte(`{"occurred_at":"2026-11-23T13:31:30+08:00","occurred_at":"2026-11-23T13:31:30Z"}`), "")
	f.Add([]byte(`{"version":18446744073709551615}`), "")
	f.Add([]byte(`{"version":18446744073709551616}`), "")
	f.Add([]byte(`{"version":1.0}`), "")
	f.Add([]byte(`{"case_id":"é","type":"\xff"}`), "case-é")
	f.Add([]byte(`null`), "")
	f.Add([]byte(`{"data":{"a":"\x01"}}`), "")
	first := stored[0]
	f.Fuzz(func(t *testing.T, b []byte, stream string) {
		memo := envelopeMemo{stream: stream}
		if _, err := decodeFoldEnvelope(first, &memo); err != nil {
			t.Fatal(err)
		}
		var want foldEnvelope
		wantErr := json.Unmarshal(b, &want)
		for range 2 {
			got, err := decodeFoldEnvelope(b, &memo)
			if (err != nil) != (wantErr != nil) {
				t.Fatalf("decodeFoldEnvelope(%q): error %v, encoding/json %v", b, err, wantErr)
			}
			if err != nil {
				if err.Error() != wantErr.Error() {
					t.Fatalf("decodeFoldEnvelope(%q): error %v, encoding/json %v", b, err, wantErr)
				}
				continue
			}
			if got.Type != want.Type || got.CaseID != want.CaseID || got.Version != want.Version ||
				!bytes.Equal(got.Data, want.Data) || (got.Data == nil) != (want.Data == nil) ||
				!reflect.DeepEqual(got.OccurredAt, want.OccurredAt) {
				t.Fatalf("decodeFoldEnvelope(%q) = %+v, encoding/json %+v", b, got, want)
			}
		}
	})
}

// benchCommits are the sealed envelopes as stored commits: the raise and
// its two assignments in one, every other event alone.
func benchCommits(tb testing.TB) []eventstore.Commit {
	stream, stored := sealedEnvelopes(tb)
	var out []eventstore.Commit
	for i := 0; i < len(stored); {
		n := 1
		if i == 1 { // the raise without a location, then its two assignments
			n = 3
		}
		c := eventstore.Commit{Stream: stream, Position: eventstore.Position(len(out) + 1)}
		for _, data := range stored[i : i+n] {
			c.Events = append(c.Events, eventstore.RecordedEvent{Stream: stream, Data: data})
		}
		out = append(out, c)
		i += n
	}
	return out
}

// decodeStoredWithEncodingJSON is DecodeForFold with encoding/json alone,
// the reference the scanners are held to and measured against.
func decodeStoredWithEncodingJSON(c eventstore.Commit) (Commit, error) {
	envs := make([]domain.Envelope, len(c.Events))
	for i, r := range c.Events {
		var fe foldEnvelope
		if err := json.Unmarshal(r.Data, &fe); err != nil {
			return Commit{}, envelopeError(c, r, err)
		}
		envs[i] = domain.Envelope{Type: fe.Type, CaseID: fe.CaseID, Version: fe.Version, OccurredAt: fe.OccurredAt, Data: fe.Data}
	}
	out := Commit{Position: c.Position, Stream: c.Stream, Envelopes: envs, Events: make([]domain.Event, len(envs))}
	for i, env := range envs {
		e, err := domain.DecodeEvent(env.Type, env.Data)
		if err != nil {
			return out, nil
		}
		out.Events[i] = e
	}
	return out, nil
}

// BenchmarkDecodeStored decodes stored commits for a fold, as a replay's
// workers do: with encoding/json alone (decodeStoredWithEncodingJSON) and
// with the scanners (DecodeForFold). Per event.
func BenchmarkDecodeStored(b *testing.B) {
	commits := benchCommits(b)
	events := 0
	for _, c := range commits {
		events += len(c.Events)
	}
	for _, bc := range []struct {
		name   string
		decode func(eventstore.Commit) (Commit, error)
	}{{"encoding-json", decodeStoredWithEncodingJSON}, {"scan", DecodeForFold}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for _, c := range commits {
					if _, err := bc.decode(c); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*events), "ns/event")
		})
	}
}

// TestDecodeForFoldEqualsEncodingJSON: the scanners give the envelopes
// and events encoding/json gives for every event type whistle writes.
func TestDecodeForFoldEqualsEncodingJSON(t *testing.T) {
	for _, c := range benchCommits(t) {
		want, err := decodeStoredWithEncodingJSON(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeForFold(c)
		if err != nil || got.EventsErr != nil {
			t.Fatalf("commit at %d: %v %v", c.Position, err, got.EventsErr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("commit at %d:\n got %+v\nwant %+v", c.Position, got, want)
		}
	}
}

// TestDecodeStoredFastErrors: a commit with an envelope that is not JSON,
// or whose fields have the wrong types, fails with the error the
// encoding/json decoding gives.
func TestDecodeStoredFastErrors(t *testing.T) {
	stream, stored := sealedEnvelopes(t)
	for _, bad := range []string{
		`{"type":"CaseClosed","version":-1}`,
		`{"type":"CaseClosed","occurred_at":"yesterday"}`,
		`{"type":7}`,
		`{"type":"CaseClosed","data":{"a":}}`,
		string(stored[3][:len(stored[3])-1]),
		`[]`,
	} {
		c := eventstore.Commit{Stream: stream, Position: 9, Events: []eventstore.RecordedEvent{
			{Stream: stream, ID: "e0", Data: stored[2]}, {Stream: stream, ID: "e1", Data: []byte(bad)}}}
		_, want := decodeStoredWithEncodingJSON(c)
		_, got := DecodeForFold(c)
		if want == nil || got == nil || got.Error() != want.Error() {
			t.Errorf("%s: error %v, want %v", bad, got, want)
		}
	}
}
