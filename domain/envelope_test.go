package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestSealContinuesVersionsAndChain(t *testing.T) {
	h := newHarness(t)
	raiseEvents, err := Decide(h.c, raiseOf(catIssue, UrgencyRoutine), h.dir, t0)
	if err != nil {
		t.Fatal(err)
	}
	meta := CommandMeta{CommandID: uuid.NewString(), Actor: street, Now: t0.In(time.FixedZone("CST", 8*3600))}
	first, err := Seal(h.c, meta, raiseEvents)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 3 {
		t.Fatalf("%d envelopes for 3 events", len(first))
	}
	for i, env := range first {
		if env.Version != uint64(i) || env.CaseID != h.c.ID || env.Type != raiseEvents[i].EventType() ||
			env.CorrelationID != meta.CommandID || env.Actor != street || !env.OccurredAt.Equal(t0) ||
			env.OccurredAt.Location() != time.UTC || env.ID != EventID(meta.CommandID, i, meta.Now) {
			t.Fatalf("envelope %d = %+v", i, env)
		}
		if env.Hash != env.ComputeHash() || len(env.Hash) != 64 {
			t.Fatalf("envelope %d: hash %q, want %q", i, env.Hash, env.ComputeHash())
		}
		wantPrev := ""
		if i > 0 {
			wantPrev = first[i-1].Hash
		}
		if env.PrevHash != wantPrev {
			t.Fatalf("envelope %d: prev_hash %q, want %q", i, env.PrevHash, wantPrev)
		}
		var back map[string]any
		if err := json.Unmarshal(env.Data, &back); err != nil {
			t.Fatalf("envelope %d data is not JSON: %v", i, err)
		}
	}
	for i, env := range first {
		h.c.Apply(env, raiseEvents[i])
	}
	if h.c.Version != 3 || h.c.LastHash != first[2].Hash || h.c.Commands[meta.CommandID] != 3 {
		t.Fatalf("after applying: version %d, last hash %q, commands %v", h.c.Version, h.c.LastHash, h.c.Commands)
	}

	// The next command continues where the first ended.
	meta2 := CommandMeta{CommandID: uuid.NewString(), Actor: ecology, Now: t0.Add(time.Minute)}
	second, err := Seal(h.c, meta2, []Event{AssignmentReported{Assignee: "ecology-bureau", Role: RoleLead}})
	if err != nil {
		t.Fatal(err)
	}
	if len(second) != 1 || second[0].Version != 3 || second[0].PrevHash != first[2].Hash {
		t.Fatalf("second command's envelope %+v does not continue the chain", second[0])
	}
	if err := VerifyChain(append(append([]Envelope{}, first...), second...)); err != nil {
		t.Fatalf("VerifyChain: %v", err)
	}
	// Sealing nothing yields nothing.
	if none, err := Seal(h.c, meta2, nil); err != nil || len(none) != 0 {
		t.Fatalf("Seal(nil) = %v, %v", none, err)
	}
	if VerifyChain(nil) != nil {
		t.Fatal("an empty history is not whole")
	}
}

// sampleHistory is a whole history of a closed, rated case.
func sampleHistory(t *testing.T) []Envelope {
	t.Helper()
	h := runScenario(t, []step{
		{actor: street, cmd: raiseOf(catIssue, UrgencyRoutine), want: typesRaisedIssue},
		{at: time.Minute, actor: ecology, cmd: Report{Assignee: "ecology-bureau", Note: "在路上"}, want: one(TypeAssignmentReported)},
		{at: time.Hour, actor: ecology, cmd: Resolve{Assignee: "ecology-bureau", Note: "done"}, want: one(TypeAssignmentResolved)},
		{at: 2 * time.Hour, actor: street, cmd: Verify{Accepted: true}, want: typesClose},
		{at: 3 * time.Hour, actor: street, cmd: Rate{Rating: "satisfied"}, want: one(TypeSatisfactionRated)},
	})
	if len(h.history) != 8 {
		t.Fatalf("%d events in the sample history", len(h.history))
	}
	return h.history
}

func TestVerifyChainDetectsTampering(t *testing.T) {
	good := sampleHistory(t)
	if err := VerifyChain(good); err != nil {
		t.Fatalf("the untouched history fails: %v", err)
	}
	clone := func() []Envelope {
		out := make([]Envelope, len(good))
		for i, e := range good {
			e.Data = append(json.RawMessage(nil), e.Data...)
			out[i] = e
		}
		return out
	}
	tests := []struct {
		name    string
		tamper  func(h []Envelope) []Envelope
		version uint64 // where the break is reported
		problem string
	}{
		{"a data value changed", func(h []Envelope) []Envelope {
			h[4].Data = bytes.Replace(h[4].Data, []byte("ecology-bureau"), []byte("ecology-bureaU"), 1)
			return h
		}, 4, "hash does not match"},
		{"a removed event", func(h []Envelope) []Envelope { return append(h[:3], h[4:]...) }, 3, "found version 4"},
		{"the last but one removed", func(h []Envelope) []Envelope { return append(h[:6], h[7]) }, 6, "found version 7"},
		{"the first removed", func(h []Envelope) []Envelope { return h[1:] }, 0, "found version 1"},
		{"two events swapped", func(h []Envelope) []Envelope { h[2], h[3] = h[3], h[2]; return h }, 2, "found version 3"},
		{"swapped and renumbered", func(h []Envelope) []Envelope {
			h[2], h[3] = h[3], h[2]
			h[2].Version, h[3].Version = 2, 3
			return h
		}, 2, "prev_hash"},
		{"removed and renumbered", func(h []Envelope) []Envelope {
			h = append(h[:3], h[4:]...)
			for i := range h {
				h[i].Version = uint64(i)
			}
			return h
		}, 3, "prev_hash"},
		{"removed, renumbered and rehashed from there", func(h []Envelope) []Envelope {
			h = append(h[:3], h[4:]...)
			for i := 3; i < len(h); i++ {
				h[i].Version = uint64(i)
				h[i].Hash = h[i].ComputeHash() // without fixing prev_hash
			}
			return h
		}, 3, "prev_hash"},
		{"another type", func(h []Envelope) []Envelope { h[5].Type = TypeResolutionRejected; return h }, 5, "hash"},
		{"another actor", func(h []Envelope) []Envelope { h[5].Actor.ID = "xindu"; return h }, 5, "hash"},
		{"another time", func(h []Envelope) []Envelope { h[7].OccurredAt = h[7].OccurredAt.Add(-time.Nanosecond); return h }, 7, "hash"},
		{"another correlation id", func(h []Envelope) []Envelope { h[1].CorrelationID = uuid.NewString(); return h }, 1, "hash"},
		{"another event id", func(h []Envelope) []Envelope { h[0].ID = uuid.NewString(); return h }, 0, "hash"},
		{"another case id", func(h []Envelope) []Envelope { h[6].CaseID = uuid.NewString(); return h }, 6, "hash"},
		{"a forged prev_hash", func(h []Envelope) []Envelope { h[0].PrevHash = strings.Repeat("0", 64); return h }, 0, "prev_hash"},
		{"a forged hash", func(h []Envelope) []Envelope { h[7].Hash = strings.Repeat("f", 64); return h }, 7, "hash does not match"},
		{"an event appended off the chain", func(h []Envelope) []Envelope {
			extra := h[7]
			extra.Version = 8
			extra.Hash = extra.ComputeHash()
			return append(h, extra)
		}, 8, "prev_hash"},
		{"an event of another case spliced in", func(h []Envelope) []Envelope {
			other := sampleHistory(t)
			return append(h[:5], other[5:]...)
		}, 5, "prev_hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyChain(tt.tamper(clone()))
			var ce *ChainError
			if !errors.As(err, &ce) {
				t.Fatalf("VerifyChain = %v, want a *ChainError", err)
			}
			if ce.Version != tt.version || !strings.Contains(ce.Problem, tt.problem) {
				t.Fatalf("broken at %d (%s), want %d (%s)", ce.Version, ce.Problem, tt.version, tt.problem)
			}
			if !strings.Contains(err.Error(), "version") {
				t.Fatalf("error %q does not say where", err)
			}
		})
	}
	if err := VerifyChain(good); err != nil {
		t.Fatalf("tampering with clones changed the original: %v", err)
	}
}

func TestVerifyChainDetectsEveryChangedDataByte(t *testing.T) {
	good := sampleHistory(t)
	for v, env := range good {
		for i := range env.Data {
			for _, flip := range []byte{0x01, 0x20} {
				h := append([]Envelope(nil), good...)
				data := append(json.RawMessage(nil), env.Data...)
				if flip == 0x20 {
					data[i] = ' ' // whitespace in place of any byte
				} else {
					data[i] ^= flip
				}
				if bytes.Equal(data, env.Data) {
					continue
				}
				h[v].Data = data
				var ce *ChainError
				if err := VerifyChain(h); !errors.As(err, &ce) || ce.Version != uint64(v) {
					t.Fatalf("version %d: data %q (byte %d changed) not detected: %v", v, data, i, err)
				}
			}
		}
	}
}

func TestVerifyChainSurvivesStorage(t *testing.T) {
	good := sampleHistory(t)
	// Through JSON, as a store keeps it.
	if err := VerifyChain(roundTrip(t, good)); err != nil {
		t.Fatalf("after a JSON round trip: %v", err)
	}
	// A store that re-indents the data and keeps times in another zone.
	h := roundTrip(t, good)
	for i := range h {
		var buf bytes.Buffer
		if err := json.Indent(&buf, h[i].Data, "", "  "); err != nil {
			t.Fatal(err)
		}
		h[i].Data = buf.Bytes()
		h[i].OccurredAt = h[i].OccurredAt.In(time.FixedZone("CST", 8*3600))
	}
	if err := VerifyChain(h); err != nil {
		t.Fatalf("after re-indenting: %v", err)
	}
}

// Data that is not JSON is still covered: the hash must depend on every other
// field of the envelope too.
func TestHashCoversEnvelopeWhoseDataIsNotJSON(t *testing.T) {
	base := Envelope{ID: EventID("cmd", 0, t0), Type: TypeCaseClosed, CaseID: uuid.NewString(), OccurredAt: t0,
		Actor: street, CorrelationID: "cmd", Data: json.RawMessage(`{"broken`)}
	other := base
	other.Actor = otherStreet
	if base.ComputeHash() == other.ComputeHash() {
		t.Fatal("two envelopes with the same broken data and different actors hash alike")
	}
	other = base
	other.Data = json.RawMessage(`{"brokeN`)
	if base.ComputeHash() == other.ComputeHash() {
		t.Fatal("two different broken data hash alike")
	}
	empty := base
	empty.Data = nil
	if empty.ComputeHash() == base.ComputeHash() {
		t.Fatal("empty and broken data hash alike")
	}
}

func TestEventID(t *testing.T) {
	cmd := uuid.NewString()
	now := time.Date(2026, 3, 2, 9, 15, 30, 123456789, time.UTC)
	id := EventID(cmd, 0, now)
	if EventID(cmd, 0, now) != id || EventID(cmd, 0, now.In(time.FixedZone("CST", 8*3600))) != id {
		t.Fatal("EventID is not deterministic")
	}
	distinct := map[string]string{id: "the original"}
	for name, other := range map[string]string{
		"another index":           EventID(cmd, 1, now),
		"another command":         EventID(uuid.NewString(), 0, now),
		"a millisecond later":     EventID(cmd, 0, now.Add(time.Millisecond)),
		"a nanosecond later":      EventID(cmd, 0, now.Add(time.Nanosecond)),
		"an empty command":        EventID("", 0, now),
		"a command id with a NUL": EventID(cmd+"\x00", 0, now),
		"a much later instant":    EventID(cmd, 0, now.Add(24*time.Hour)),
		"a shorter command id":    EventID(cmd[:len(cmd)-1], 0, now),
	} {
		if prev, dup := distinct[other]; dup {
			t.Errorf("%s gives the same id as %s: %s", name, prev, other)
		}
		distinct[other] = name
	}
	for i := 0; i < 2000; i++ {
		e := EventID(cmd, i, now)
		if i > 1 {
			if _, dup := distinct[e]; dup {
				t.Fatalf("index %d repeats an id", i)
			}
		}
		distinct[e] = "index"
	}
	for s := range distinct {
		u, err := uuid.Parse(s)
		if err != nil || u.String() != s || len(s) != 36 {
			t.Fatalf("%q is not a canonical UUID: %v", s, err)
		}
		if u.Version() != 7 || u.Variant() != uuid.RFC4122 {
			t.Fatalf("%s is version %d variant %v, want a UUIDv7", s, u.Version(), u.Variant())
		}
	}
	u := uuid.MustParse(id)
	sec, nsec := u.Time().UnixTime()
	if got := time.Unix(sec, nsec).UTC(); !got.Equal(now.Truncate(time.Millisecond)) {
		t.Fatalf("the id's time is %v, want %v", got, now.Truncate(time.Millisecond))
	}
	// Ids sort by time, as UUIDv7s should.
	a, b := EventID(cmd, 5, now), EventID(cmd, 0, now.Add(time.Millisecond))
	if !(a < b) {
		t.Fatalf("ids do not sort by time: %s !< %s", a, b)
	}
}

// allEvents holds one fully filled example of every event type.
func allEvents() []Event {
	lat, lon := 25.4310, 119.0076
	at := time.Date(2026, 3, 2, 9, 30, 0, 123456789, time.UTC)
	return []Event{
		WhistleRaised{Street: "longqiao", Community: "wanhui", Category: catIssue, Kind: KindIssue, Urgency: UrgencyUrgent,
			Title: "木兰溪 污染", Description: "oil on the water \"near\" the bridge\n", DirectoryVersion: "test-1",
			Location: &Location{Address: "龙桥街道 3号", Lat: &lat, Lon: &lon}, RequestSHA256: strings.Repeat("ab", 32)},
		AssignmentMade{Assignee: "ecology-bureau", Role: RoleLead, ReportBy: at, ResolveBy: at.Add(72 * time.Hour), ByHand: true},
		AssignmentReported{Assignee: "water-bureau", Role: RoleAssist, Note: "on site"},
		AssignmentOverdue{Assignee: "water-bureau", Role: RoleAssist, Deadline: DeadlineResolve, Level: "city", Due: at},
		CaseEscalated{Deadline: DeadlineReport, Level: "district", Assignee: "ecology-bureau"},
		ProgressNoted{Assignee: "ecology-bureau", Role: RoleLead, Note: "50%"},
		AssignmentDeclined{Assignee: "judicial-office", Role: RoleLead, Reason: "civil matter", Suggest: "urban-management"},
		NeedClaimed{Assignee: "no1-middle-school", Role: RoleLead, ResolveBy: at, Note: "room 101"},
		AssignmentResolved{Assignee: "judicial-office", Role: RoleLead, Note: "agreed", Mediation: MediationFailure},
		ResolutionVerified{Note: "checked on site"},
		ResolutionRejected{Note: "still leaking"},
		CaseClosed{},
		SatisfactionRated{Rating: RatingBasicallySatisfied},
	}
}

func TestDecodeEventRoundTripsEveryType(t *testing.T) {
	types := []string{TypeWhistleRaised, TypeAssignmentMade, TypeAssignmentReported, TypeAssignmentOverdue,
		TypeCaseEscalated, TypeProgressNoted, TypeAssignmentDeclined, TypeNeedClaimed, TypeAssignmentResolved,
		TypeResolutionVerified, TypeResolutionRejected, TypeCaseClosed, TypeSatisfactionRated}
	seen := map[string]bool{}
	for _, e := range allEvents() {
		t.Run(e.EventType(), func(t *testing.T) {
			seen[e.EventType()] = true
			data, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			back, err := DecodeEvent(e.EventType(), data)
			if err != nil {
				t.Fatalf("DecodeEvent(%s): %v", data, err)
			}
			if !reflect.DeepEqual(back, e) {
				t.Fatalf("round trip changed the event:\n got %#v\nwant %#v", back, e)
			}
			if reflect.TypeOf(back).Kind() == reflect.Pointer {
				t.Fatalf("DecodeEvent returned a pointer %T", back)
			}
			// And through an envelope, as stored.
			envs, err := Seal(NewCase(uuid.NewString()), CommandMeta{CommandID: "c", Actor: street, Now: t0}, []Event{e})
			if err != nil {
				t.Fatal(err)
			}
			stored := roundTrip(t, envs)[0]
			again, err := DecodeEvent(stored.Type, stored.Data)
			if err != nil || !reflect.DeepEqual(again, e) {
				t.Fatalf("through an envelope: %#v, %v", again, err)
			}
		})
	}
	sort.Strings(types)
	var got []string
	for k := range seen {
		got = append(got, k)
	}
	sort.Strings(got)
	if !reflect.DeepEqual(got, types) {
		t.Fatalf("round-tripped %v, want every type %v", got, types)
	}
}

func TestDecodeEventRefusals(t *testing.T) {
	if _, err := DecodeEvent("CaseReopened", []byte(`{}`)); err == nil || !strings.Contains(err.Error(), `"CaseReopened"`) {
		t.Fatalf("unknown type: %v", err)
	}
	if _, err := DecodeEvent(TypeAssignmentMade, []byte(`{"assignee": 7}`)); err == nil || !strings.Contains(err.Error(), TypeAssignmentMade) {
		t.Fatalf("bad data: %v", err)
	}
	if _, err := DecodeEvent(TypeSatisfactionRated, []byte(`{"rating":`)); err == nil {
		t.Fatal("truncated data decoded")
	}
	e, err := DecodeEvent(TypeCaseClosed, nil)
	if err != nil || e != (CaseClosed{}) {
		t.Fatalf("empty data: %#v, %v", e, err)
	}
	// Fields added later are ignored by older readers: types only grow.
	e, err = DecodeEvent(TypeSatisfactionRated, []byte(`{"rating":"satisfied","channel":"hotline"}`))
	if err != nil || e != (SatisfactionRated{Rating: RatingSatisfied}) {
		t.Fatalf("extra field: %#v, %v", e, err)
	}
}

// The data of events uses the field names of the API shapes.
func TestEventDataFieldNames(t *testing.T) {
	want := map[string][]string{
		TypeWhistleRaised:      {"street", "community", "category", "kind", "urgency", "title", "description", "location", "directory_version"},
		TypeAssignmentMade:     {"assignee", "role", "report_by", "resolve_by"},
		TypeAssignmentReported: {"assignee", "role", "note"},
		TypeAssignmentOverdue:  {"assignee", "role", "deadline", "level"},
		TypeCaseEscalated:      {"deadline", "level", "assignee"},
		TypeProgressNoted:      {"assignee", "role", "note"},
		TypeAssignmentDeclined: {"assignee", "role", "reason", "suggest"},
		TypeNeedClaimed:        {"assignee", "role", "resolve_by"},
		TypeAssignmentResolved: {"assignee", "role", "note", "mediation"},
		TypeSatisfactionRated:  {"rating"},
	}
	for _, e := range allEvents() {
		data, _ := json.Marshal(e)
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(data, &fields); err != nil {
			t.Fatal(err)
		}
		for _, f := range want[e.EventType()] {
			if _, ok := fields[f]; !ok {
				t.Errorf("%s data %s has no %q", e.EventType(), data, f)
			}
		}
	}
	var loc map[string]any
	data, _ := json.Marshal(allEvents()[0])
	var raised struct{ Location json.RawMessage }
	_ = json.Unmarshal(data, &raised)
	if err := json.Unmarshal(raised.Location, &loc); err != nil || loc["address"] == nil || loc["lat"] == nil || loc["lon"] == nil {
		t.Errorf("location %s lacks address, lat or lon", raised.Location)
	}
}

func TestStream(t *testing.T) {
	id := uuid.NewString()
	if got := Stream(id); got != "case-"+id || strings.TrimPrefix(got, "case-") != id {
		t.Fatalf("Stream(%s) = %s", id, got)
	}
}
