package slawatch_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/whistle-gov/whistle/adapters/casehandler"
	"github.com/whistle-gov/whistle/adapters/coretest"
	"github.com/whistle-gov/whistle/adapters/slawatch/slawatchtest"
	"github.com/whistle-gov/whistle/domain"
)

// ticketDirectory is coretest's with a platform and a short accept deadline
// in clock time, so that the test's fake clock reaches it.
var ticketDirectory = strings.Replace(coretest.Directory,
	`"sla": {"routine": {`,
	`"platforms": [{"id": "hotline-12345", "name": "12345热线"}], "sla": {"routine": {"accept_within": "10s", `, 1)

func TestUnsignedTicketGoesOverdueAndUpTheLadder(t *testing.T) {
	clock := slawatchtest.NewFakeClock(t0)
	env := coretest.Start(t, coretest.Options{Now: clock.Now, Directory: ticketDirectory})
	w, _ := watch(t, env, clock)
	platform := domain.Actor{Role: domain.ActorPlatform, ID: "hotline-12345"}
	receive := func(ext string) string {
		id := uuid.Must(uuid.NewV7()).String()
		_, err := env.Handler.Execute(context.Background(), casehandler.Request{
			CaseID: id, CommandID: uuid.NewString(), Actor: platform, New: true,
			Command: domain.ReceiveTicket{Platform: "hotline-12345", ExternalID: ext, Street: "longqiao", Title: "路灯不亮"},
		})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	late, signed := receive("T-1"), receive("T-2")
	settled(t, env, w, clock)
	if _, at, ok := w.NextDue(); !ok || !at.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("next due at %s (%v), want the accept deadline %s", at, ok, t0.Add(10*time.Second))
	}
	// One street signs in time: its accept deadline leaves the schedule.
	env.Do(t, signed, coretest.Street, domain.AcceptTicket{Category: "river-pollution", Community: "wanhui"})
	clock.Advance(10 * time.Second)
	expectMarks(t, env, late, map[string]int{
		"overdue longqiao accept district":   1,
		"escalated longqiao accept district": 1,
	})
	clock.Advance(2 * time.Second) // the city rung
	expectMarks(t, env, late, map[string]int{
		"overdue longqiao accept district":   1,
		"escalated longqiao accept district": 1,
		"escalated longqiao accept city":     1,
	})
	if got := marks(t, env, signed); len(got) != 0 {
		t.Errorf("the ticket signed in time got %s", show(got))
	}
	// Returned, the late ticket has nothing left to watch.
	env.Do(t, late, coretest.Street, domain.ReturnTicket{Reason: "不属本街道"})
	clock.Advance(time.Minute)
	settled(t, env, w, clock)
	// What is due now is the signed ticket's report-in, not the returned one.
	if id, _, ok := w.NextDue(); ok && id == late {
		t.Errorf("the returned ticket is still scheduled")
	}
	if got := marks(t, env, late); len(got) != 3 {
		t.Errorf("marks after the return: %s", show(got))
	}
}
