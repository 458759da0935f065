package domain

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// t0 is when the test cases are raised.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// Principals of the test directory.
var (
	street      = Actor{Role: ActorStreet, ID: "longqiao"}
	otherStreet = Actor{Role: ActorStreet, ID: "xindu"}
	auditor     = Actor{Role: ActorAuditor, ID: "audit-office"}
	district    = Actor{Role: ActorDistrict, ID: "chengxiang"}
	platform    = Actor{Role: ActorPlatform, ID: "hotline-12345"}
	system      = Actor{Role: ActorSystem, ID: "sla-watcher"}
	ecology     = Actor{Role: ActorDepartment, ID: "ecology-bureau"}
	water       = Actor{Role: ActorDepartment, ID: "water-bureau"}
	judicial    = Actor{Role: ActorDepartment, ID: "judicial-office"}
	urban       = Actor{Role: ActorDepartment, ID: "urban-management"}
	police      = Actor{Role: ActorDepartment, ID: "police-station"}
	university  = Actor{Role: ActorUnit, ID: "putian-university"}
	school      = Actor{Role: ActorUnit, ID: "no1-middle-school"}
	hospital    = Actor{Role: ActorUnit, ID: "city-hospital"}
)

// Categories of the test directory, one per kind (and one issue with two
// assists).
const (
	catIssue        = "river-pollution"      // lead ecology-bureau, assist water-bureau
	catConstruction = "illegal-construction" // lead urban-management, assist police-station and putian-university
	catDispute      = "neighbour-dispute"    // lead judicial-office
	catNeed         = "after-school-care"    // offered to wanhui's three units
)

// newTestDirectory builds a small directory in Go, shaped like the sample of
// DESIGN.md, without validating it.
func newTestDirectory() *Directory {
	return &Directory{
		Version: "test-1",
		Streets: []Street{
			{ID: "longqiao", Name: "龙桥街道", Communities: []Community{
				{ID: "wanhui", Name: "万辉社区", Units: []string{"putian-university", "no1-middle-school", "city-hospital"}},
				{ID: "qiaodong", Name: "桥东社区"}, // no resident units
			}},
			{ID: "xindu", Name: "新度镇", Communities: []Community{
				{ID: "xindu-centre", Name: "新度中心社区", Units: []string{"city-hospital"}},
			}},
		},
		Departments: []Organisation{
			{ID: "ecology-bureau", Name: "生态环境局"},
			{ID: "water-bureau", Name: "水利局"},
			{ID: "judicial-office", Name: "司法所"},
			{ID: "urban-management", Name: "城管局"},
			{ID: "police-station", Name: "派出所"},
		},
		Units: []Organisation{
			{ID: "putian-university", Name: "莆田学院"},
			{ID: "no1-middle-school", Name: "第一中学"},
			{ID: "city-hospital", Name: "市第一医院"},
		},
		Categories: []Category{
			{ID: catIssue, Name: "河道污染", Kind: KindIssue, Lead: "ecology-bureau", Assist: []string{"water-bureau"}},
			{ID: catDispute, Name: "邻里纠纷", Kind: KindDispute, Lead: "judicial-office"},
			{ID: catNeed, Name: "四点半课堂", Kind: KindNeed},
			{ID: catConstruction, Name: "违法建设", Kind: KindIssue, Lead: "urban-management",
				Assist: []string{"police-station", "putian-university"}},
		},
		SLA: map[string]SLA{
			"routine":   {ReportWithin: clock(30 * time.Minute), ResolveWithin: clock(72 * time.Hour)},
			"urgent":    {ReportWithin: clock(15 * time.Minute), ResolveWithin: clock(24 * time.Hour)},
			"emergency": {ReportWithin: clock(5 * time.Minute), ResolveWithin: clock(2 * time.Hour)},
		},
		Escalation: []EscalationStep{
			{Level: "district", After: 0},
			{Level: "city", After: Duration(30 * time.Minute)},
		},
		SatisfactionWeights: map[string]float64{"satisfied": 1, "basically_satisfied": 0.9, "unsatisfied": 0},
		Districts:           []District{{ID: "chengxiang", Name: "城厢区", Streets: []string{"longqiao"}}},
		Platforms:           []Organisation{{ID: "hotline-12345", Name: "12345热线"}},
	}
}

// clock is ClockTime for durations a test knows to be positive.
func clock(d time.Duration) SLADuration {
	c, err := ClockTime(d)
	if err != nil {
		panic(err)
	}
	return c
}

// testDirectory returns the test directory, validated.
func testDirectory(t testing.TB) *Directory {
	t.Helper()
	d := newTestDirectory()
	if err := d.Validate(); err != nil {
		t.Fatalf("test directory does not validate: %v", err)
	}
	return d
}

// harness drives one case the way the command handler does: Authorize,
// Decide, Seal, Apply. After every command it checks that the history is a
// whole chain and that replaying it gives the state built by Apply.
type harness struct {
	t       *testing.T
	dir     *Directory
	c       *Case
	history []Envelope
	now     time.Time
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	return newHarnessWith(t, testDirectory(t))
}

func newHarnessWith(t *testing.T, dir *Directory) *harness {
	return &harness{t: t, dir: dir, c: NewCase(uuid.NewString()), now: t0}
}

// raised returns a harness whose case was raised at t0 by the street.
func raised(t *testing.T, category string, urgency Urgency) *harness {
	t.Helper()
	h := newHarness(t)
	h.must(street, raiseOf(category, urgency))
	return h
}

// raiseOf is the street raising a case of category in wanhui.
func raiseOf(category string, urgency Urgency) Raise {
	return Raise{Street: "longqiao", Community: "wanhui", Category: category, Urgency: string(urgency),
		Title: "case of " + category, Description: "found by the grid worker"}
}

// at sets the clock to t0 + d.
func (h *harness) at(d time.Duration) *harness {
	h.now = t0.Add(d)
	return h
}

// exec runs one command; on success it appends and applies the events.
func (h *harness) exec(actor Actor, cmd Command) ([]Event, error) {
	h.t.Helper()
	var target *Case
	if h.c.Exists() {
		target = h.c
	}
	if err := Authorize(target, actor, cmd); err != nil {
		return nil, err
	}
	before := snapshot(h.t, h.c)
	events, err := Decide(h.c, cmd, h.dir, h.now)
	if after := snapshot(h.t, h.c); after != before {
		h.t.Fatalf("Decide(%T) changed the case:\nbefore %s\nafter  %s", cmd, before, after)
	}
	if err != nil {
		if len(events) != 0 {
			h.t.Fatalf("Decide(%T) refused with %v but returned %d events", cmd, err, len(events))
		}
		return nil, err
	}
	h.append(actor, events)
	return events, nil
}

// append seals and applies events as one command of actor, then checks the
// chain and the replay.
func (h *harness) append(actor Actor, events []Event) {
	h.t.Helper()
	meta := CommandMeta{CommandID: uuid.NewString(), Actor: actor, Now: h.now}
	envs, err := Seal(h.c, meta, events)
	if err != nil {
		h.t.Fatalf("Seal: %v", err)
	}
	for i, env := range envs {
		h.c.Apply(env, events[i])
	}
	h.history = append(h.history, envs...)
	if err := VerifyChain(h.history); err != nil {
		h.t.Fatalf("history after %d events is not whole: %v", len(h.history), err)
	}
	replayed, err := Replay(h.c.ID, roundTrip(h.t, h.history))
	if err != nil {
		h.t.Fatalf("Replay: %v", err)
	}
	if !reflect.DeepEqual(replayed, h.c) {
		h.t.Fatalf("replayed state differs from applied state:\nreplayed %s\napplied  %s",
			snapshot(h.t, replayed), snapshot(h.t, h.c))
	}
}

// must runs a command that has to succeed.
func (h *harness) must(actor Actor, cmd Command) []Event {
	h.t.Helper()
	events, err := h.exec(actor, cmd)
	if err != nil {
		h.t.Fatalf("%s %T%+v refused: %v", actor, cmd, cmd, err)
	}
	if len(events) == 0 {
		h.t.Fatalf("%s %T%+v produced no events", actor, cmd, cmd)
	}
	return events
}

// refused runs a command that has to be refused with a *Refusal wrapping
// kind, naming field, with a reason holding why; nothing may be appended.
func (h *harness) refused(actor Actor, cmd Command, kind error, field, why string) {
	h.t.Helper()
	version := h.c.Version
	events, err := h.exec(actor, cmd)
	if err == nil {
		h.t.Fatalf("%s %T%+v: want refusal (%v), got events %v", actor, cmd, cmd, kind, eventTypes(events))
	}
	checkRefusal(h.t, err, kind, field, why)
	if h.c.Version != version {
		h.t.Fatalf("a refused command appended: version %d → %d", version, h.c.Version)
	}
}

// checkRefusal asserts err is a *Refusal wrapping kind with that field and a
// reason that holds why.
func checkRefusal(t *testing.T, err error, kind error, field, why string) {
	t.Helper()
	var r *Refusal
	if !errors.As(err, &r) {
		t.Fatalf("want a *Refusal, got %T: %v", err, err)
	}
	if !errors.Is(err, kind) {
		t.Fatalf("refusal %q wraps %v, want %v", r.Reason, r.Err, kind)
	}
	if r.Field != field {
		t.Fatalf("refusal %q names field %q, want %q", r.Reason, r.Field, field)
	}
	if strings.TrimSpace(r.Reason) == "" || r.Error() != r.Reason {
		t.Fatalf("refusal has no reason: %+v", r)
	}
	if !strings.Contains(r.Reason, why) {
		t.Fatalf("refusal reason %q does not say %q", r.Reason, why)
	}
}

// snapshot is the case's JSON plus its unexported bookkeeping, to compare
// states in messages and to catch mutation.
func snapshot(t testing.TB, c *Case) string {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("marshal case: %v", err)
	}
	return string(b) + " " + c.LastHash
}

// roundTrip sends envelopes through JSON, as a store would.
func roundTrip(t testing.TB, envs []Envelope) []Envelope {
	t.Helper()
	b, err := json.Marshal(envs)
	if err != nil {
		t.Fatalf("marshal envelopes: %v", err)
	}
	var out []Envelope
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("unmarshal envelopes: %v", err)
	}
	return out
}

func eventTypes(events []Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.EventType()
	}
	return out
}

// assignment returns the assignee's latest assignment or fails.
func (h *harness) assignment(id string) *Assignment {
	h.t.Helper()
	a := h.c.Assignment(id)
	if a == nil {
		h.t.Fatalf("%s holds no assignment; assignments: %s", id, snapshot(h.t, h.c))
	}
	return a
}

func ptrTime(t time.Time) *time.Time { return &t }

func sameTime(a *time.Time, b time.Time) bool { return a != nil && a.Equal(b) }
