package projections

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/whistle-gov/whistle/domain"
)

// t0 is when the tests' world begins: a Monday morning, UTC.
var t0 = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)

// testDirectory is a small city: two streets, issues with and without
// assisting departments, disputes, and needs offered to one or two units.
func testDirectory(t testing.TB) *domain.Directory {
	t.Helper()
	d := &domain.Directory{
		Version: "test-1",
		Streets: []domain.Street{
			{ID: "longqiao", Name: "龙桥街道", Communities: []domain.Community{
				{ID: "wanhui", Name: "万辉社区", Units: []string{"putian-university", "city-hospital"}},
				{ID: "xiazhu", Name: "霞著社区", Units: []string{"no6-school"}},
			}},
			{ID: "donghai", Name: "东海街道", Communities: []domain.Community{
				{ID: "dongyuan", Name: "东园社区", Units: []string{"putian-university"}},
			}},
		},
		Departments: []domain.Organisation{
			{ID: "ecology-bureau", Name: "生态环境局"}, {ID: "water-bureau", Name: "水利局"},
			{ID: "judicial-office", Name: "司法所"}, {ID: "urban-management", Name: "城管局"},
			{ID: "housing-bureau", Name: "住建局"},
		},
		Units: []domain.Organisation{
			{ID: "putian-university", Name: "莆田学院"}, {ID: "city-hospital", Name: "市医院"}, {ID: "no6-school", Name: "六中"},
		},
		Categories: []domain.Category{
			{ID: "river-pollution", Name: "河道污染", Kind: domain.KindIssue, Lead: "ecology-bureau", Assist: []string{"water-bureau"}},
			{ID: "manhole-cover", Name: "井盖", Kind: domain.KindIssue, Lead: "urban-management"},
			{ID: "neighbour-dispute", Name: "邻里纠纷", Kind: domain.KindDispute, Lead: "judicial-office"},
			{ID: "rent-dispute", Name: "租赁纠纷", Kind: domain.KindDispute, Lead: "judicial-office", Assist: []string{"housing-bureau"}},
			{ID: "after-school-care", Name: "四点半课堂", Kind: domain.KindNeed},
		},
		SLA: map[string]domain.SLA{
			"routine":   {ReportWithin: clockSLA(30 * time.Minute), ResolveWithin: clockSLA(72 * time.Hour)},
			"urgent":    {ReportWithin: clockSLA(15 * time.Minute), ResolveWithin: clockSLA(24 * time.Hour)},
			"emergency": {ReportWithin: clockSLA(5 * time.Minute), ResolveWithin: clockSLA(2 * time.Hour)},
		},
		Escalation: []domain.EscalationStep{
			{Level: "district", After: 0}, {Level: "city", After: domain.Duration(30 * time.Minute)},
		},
		SatisfactionWeights: map[string]float64{"satisfied": 1, "basically_satisfied": 0.9, "unsatisfied": 0},
		Platforms:           []domain.Organisation{{ID: "hotline-12345", Name: "12345热线"}},
	}
	if err := d.Validate(); err != nil {
		t.Fatalf("test directory: %v", err)
	}
	return d
}

// world drives cases through the domain (Authorize, Decide, Seal, Apply) and
// records the global log they produce, one commit per command.
type world struct {
	t       testing.TB
	dir     *domain.Directory
	now     time.Time
	cases   map[string]*domain.Case
	ids     []string // in order of raising
	commits []commit
	seq     int
	idSrc   *rand.ChaCha8
}

// model is a read model's one way in and its position.
type model interface {
	ApplyCommit(pos uint64, events []domain.Envelope, decoded []domain.Event) error
	Position() uint64
}

// applyOne applies env as a commit of its own, right after m's position.
func applyOne(m model, env domain.Envelope) error {
	return m.ApplyCommit(m.Position()+1, []domain.Envelope{env}, nil)
}

// commit is one command's events at their log position.
type commit struct {
	pos    uint64
	events []domain.Envelope
}

func newWorld(t testing.TB, seed uint64) *world {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	return &world{t: t, dir: testDirectory(t), now: t0, cases: map[string]*domain.Case{}, idSrc: rand.NewChaCha8(s)}
}

// envelopes returns the whole log, event by event.
func (w *world) envelopes() []domain.Envelope {
	var out []domain.Envelope
	for _, c := range w.commits {
		out = append(out, c.events...)
	}
	return out
}

func (w *world) advance(d time.Duration) *world {
	w.now = w.now.Add(d)
	return w
}

// actorFor is who issues cmd on c.
func (w *world) actorFor(c *domain.Case, cmd domain.Command) domain.Actor {
	assignee := ""
	switch cmd := cmd.(type) {
	case domain.Raise:
		return domain.Actor{Role: domain.ActorStreet, ID: cmd.Street}
	case domain.ReceiveTicket:
		return domain.Actor{Role: domain.ActorPlatform, ID: cmd.Platform}
	case domain.AcceptTicket, domain.ReturnTicket:
		return domain.Actor{Role: domain.ActorStreet, ID: c.Street}
	case domain.Route, domain.Verify, domain.Rate, domain.RevealRequester, domain.ForgetRequester, domain.IssueReceipt, domain.RecordCallback:
		return domain.Actor{Role: domain.ActorStreet, ID: c.Street}
	case domain.RateByResident:
		return domain.Actor{Role: domain.ActorResident, ID: "link"}
	case domain.CheckDeadlines:
		return domain.Actor{Role: domain.ActorSystem, ID: "sla-watcher"}
	case domain.AddAttachment:
		return cmd.By
	case domain.Report:
		assignee = cmd.Assignee
	case domain.NoteProgress:
		assignee = cmd.Assignee
	case domain.Resolve:
		assignee = cmd.Assignee
	case domain.Decline:
		assignee = cmd.Assignee
	case domain.Claim:
		assignee = cmd.Assignee
	}
	if w.dir.IsUnit(assignee) {
		return domain.Actor{Role: domain.ActorUnit, ID: assignee}
	}
	return domain.Actor{Role: domain.ActorDepartment, ID: assignee}
}

// try decides cmd on the case at w.now and appends what it yields; a refusal
// is returned and appends nothing.
func (w *world) try(caseID string, cmd domain.Command) error {
	c := w.cases[caseID]
	if c == nil {
		c = domain.NewCase(caseID)
	}
	actor := w.actorFor(c, cmd)
	var target *domain.Case
	if c.Exists() {
		target = c
	}
	if err := domain.Authorize(target, actor, cmd); err != nil {
		return err
	}
	events, err := domain.Decide(c, cmd, w.dir, w.now)
	if err != nil {
		return err
	}
	if len(events) == 0 {
		return nil
	}
	w.seq++
	envs, err := domain.Seal(c, domain.CommandMeta{CommandID: fmt.Sprintf("cmd-%06d", w.seq), Actor: actor, Now: w.now}, events)
	if err != nil {
		w.t.Fatalf("seal: %v", err)
	}
	for _, env := range envs {
		e, err := domain.DecodeEvent(env.Type, env.Data)
		if err != nil {
			w.t.Fatalf("decode what was sealed: %v", err)
		}
		c.Apply(env, e)
	}
	if _, known := w.cases[caseID]; !known {
		w.ids = append(w.ids, caseID)
	}
	w.cases[caseID] = c
	w.commits = append(w.commits, commit{pos: uint64(len(w.commits) + 1), events: envs})
	return nil
}

// must is try that fails the test on a refusal.
func (w *world) must(caseID string, cmd domain.Command) *world {
	w.t.Helper()
	if err := w.try(caseID, cmd); err != nil {
		w.t.Fatalf("%s on %s at %s: %v", cmd.CommandName(), caseID, w.now.Format(time.RFC3339), err)
	}
	return w
}

func (w *world) newID() string {
	u, err := uuid.NewRandomFromReader(w.idSrc)
	if err != nil {
		w.t.Fatal(err)
	}
	return u.String()
}

// raise blows a whistle and returns the new case's id.
func (w *world) raise(street, community, category string, urgency domain.Urgency) string {
	w.t.Helper()
	id := w.newID()
	w.must(id, domain.Raise{Street: street, Community: community, Category: category, Urgency: string(urgency), Title: "case " + id[:8]})
	return id
}

// checkAll runs the SLA watcher over every open case.
func (w *world) checkAll() {
	for _, id := range w.ids {
		if w.cases[id].Status != domain.StatusClosed {
			w.must(id, domain.CheckDeadlines{})
		}
	}
}

// simulate builds a random log: cases of every kind raised over several days
// going through report, progress, resolve (with mediation), reject, verify,
// rate, decline, route by hand, claim, and the SLA watcher's overdue marks
// and escalations. Every command is decided by the domain; refused ones
// append nothing.
func simulate(t testing.TB, seed uint64, steps int) *world {
	return simulateWith(t, seed, steps, false)
}

// simulateWith is simulate, with tickets from a platform besides the
// raises when tickets is set (see ticketStep).
func simulateWith(t testing.TB, seed uint64, steps int, tickets bool) *world {
	w := newWorld(t, seed)
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	pick := func(xs []string) string { return xs[r.IntN(len(xs))] }
	type place struct{ street, community string }
	places := []place{{"longqiao", "wanhui"}, {"longqiao", "xiazhu"}, {"donghai", "dongyuan"}}
	categories := []string{"river-pollution", "manhole-cover", "neighbour-dispute", "rent-dispute", "after-school-care"}
	assignees := []string{"ecology-bureau", "water-bureau", "judicial-office", "urban-management", "housing-bureau", "putian-university", "city-hospital", "no6-school"}
	for range steps {
		switch x := r.Float64(); {
		case x < 0.7:
			w.advance(time.Duration(r.IntN(25)) * time.Minute)
		case x < 0.97:
			w.advance(time.Duration(r.IntN(3*60)) * time.Minute)
		default:
			w.advance(time.Duration(6+r.IntN(30)) * time.Hour)
		}
		if r.Float64() < 0.15 {
			w.checkAll()
		}
		var open, unrated []string
		for _, id := range w.ids {
			c := w.cases[id]
			switch {
			case c.Status != domain.StatusClosed:
				open = append(open, id)
			case c.Rating == nil:
				unrated = append(unrated, id)
			}
		}
		if tickets && r.Float64() < 0.2 {
			w.ticketStep(r)
			continue
		}
		if len(open) == 0 || r.Float64() < 0.18 {
			p := places[r.IntN(len(places))]
			urgencies := domain.Urgencies()
			w.raise(p.street, p.community, pick(categories), urgencies[r.IntN(len(urgencies))])
			continue
		}
		if len(unrated) > 0 && r.Float64() < 0.15 {
			ratings := domain.Ratings()
			w.must(pick(unrated), domain.Rate{Rating: string(ratings[r.IntN(len(ratings))])})
			continue
		}
		id := pick(open)
		c := w.cases[id]
		var cmds []domain.Command
		for _, a := range c.Assignments {
			switch {
			case a.Role == domain.RoleOffer && a.Status == domain.Assigned:
				cmds = append(cmds, domain.Claim{Assignee: a.Assignee}, domain.Claim{Assignee: a.Assignee})
				if r.Float64() < 0.2 {
					cmds = append(cmds, domain.Decline{Assignee: a.Assignee, Reason: "no capacity"})
				}
			case a.Status == domain.Assigned:
				cmds = append(cmds, domain.Report{Assignee: a.Assignee}, domain.Report{Assignee: a.Assignee})
				if r.Float64() < 0.15 {
					cmds = append(cmds, domain.Decline{Assignee: a.Assignee, Reason: "not ours"})
				}
			case a.Status == domain.Reported:
				m := ""
				if c.Kind == domain.KindDispute {
					m = string(domain.MediationSuccess)
					if r.Float64() < 0.3 {
						m = string(domain.MediationFailure)
					}
				}
				cmds = append(cmds, domain.Resolve{Assignee: a.Assignee, Mediation: m, Evidence: evidenceOf(c)}, domain.NoteProgress{Assignee: a.Assignee, Note: "on it"})
				if r.Float64() < 0.05 {
					cmds = append(cmds, domain.Decline{Assignee: a.Assignee, Reason: "handed over"})
				}
			}
		}
		if r.Float64() < 0.1 {
			w.seq++
			by := domain.Actor{Role: domain.ActorStreet, ID: c.Street}
			cmds = append(cmds, domain.AddAttachment{SHA256: fmt.Sprintf("%064x", w.seq), Name: "现场.jpg", Type: domain.MediaJPEG, Size: 1000 + int64(w.seq), By: by})
		}
		switch c.Status {
		case domain.StatusResolved:
			cmds = append(cmds, domain.Verify{Accepted: r.Float64() < 0.7, Evidence: evidenceOf(c)})
		case domain.StatusUnassigned:
			cmds = append(cmds, domain.Route{Lead: pick(assignees)})
		default:
			if r.Float64() < 0.05 {
				cmds = append(cmds, domain.Route{Assist: []string{pick(assignees)}})
			}
		}
		if len(cmds) == 0 {
			continue
		}
		if err := w.try(id, cmds[r.IntN(len(cmds))]); err != nil && !isRefusal(err) {
			t.Fatal(err)
		}
	}
	return w
}

// evidenceOf names the case's first attachment as evidence, when it has one.
func evidenceOf(c *domain.Case) []string {
	if len(c.Attachments) == 0 {
		return nil
	}
	return []string{c.Attachments[0].SHA256}
}

func isRefusal(err error) bool {
	var r *domain.Refusal
	return errors.As(err, &r)
}

// kinds counts the event types of a log, to show a fixture covers them.
func kinds(envs []domain.Envelope) map[string]int {
	m := map[string]int{}
	for _, e := range envs {
		m[e.Type]++
	}
	return m
}

func TestSimulationCoversEveryEventType(t *testing.T) {
	w := simulate(t, 1, 400)
	got := kinds(w.envelopes())
	for _, typ := range []string{
		domain.TypeWhistleRaised, domain.TypeAssignmentMade, domain.TypeAssignmentReported, domain.TypeAssignmentOverdue,
		domain.TypeCaseEscalated, domain.TypeProgressNoted, domain.TypeAssignmentDeclined, domain.TypeNeedClaimed,
		domain.TypeAssignmentResolved, domain.TypeResolutionVerified, domain.TypeResolutionRejected,
		domain.TypeCaseClosed, domain.TypeSatisfactionRated, domain.TypeAttachmentAdded,
	} {
		if got[typ] == 0 {
			t.Errorf("the fixture has no %s", typ)
		}
	}
	n := len(w.envelopes())
	if n < 300 {
		t.Errorf("the fixture has %d events, want several hundred", n)
	}
	days := map[int32]bool{}
	for _, id := range w.ids {
		days[dayOf(*w.cases[id].RaisedAt, time.UTC)] = true
	}
	if len(days) < 3 {
		t.Errorf("cases were raised on %d days, want several", len(days))
	}
	t.Logf("%d events, %d cases over %d days: %v", n, len(w.ids), len(days), got)
}

// clockSLA is domain.ClockTime for durations a test knows to be positive.
func clockSLA(d time.Duration) domain.SLADuration {
	c, err := domain.ClockTime(d)
	if err != nil {
		panic(err)
	}
	return c
}
