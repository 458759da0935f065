package natsauth_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/whistle-gov/whistle/adapters/coretest"
	"github.com/whistle-gov/whistle/adapters/dispatch"
)

// TestPlatformReadsOnlyItsOwnOutbox: a platform's NATS user hears its own
// replies live, and is refused another platform's, the dispatches, the
// notifications and the log.
func TestPlatformReadsOnlyItsOwnOutbox(t *testing.T) {
	dir := strings.Replace(coretest.Directory, `"sla":`,
		`"platforms": [{"id": "hotline-12345", "name": "12345热线"}, {"id": "city-management", "name": "数字城管"}], "sla":`, 1)
	f := setupWith(t, false, dir)
	ctx := context.Background()
	p := f.connect(t, "platform:hotline-12345")
	own, err := p.nc.SubscribeSync(dispatch.OutboxSubject("hotline-12345"))
	if err != nil {
		t.Fatal(err)
	}
	p.nc.Flush()
	if _, err := f.js.Publish(ctx, dispatch.OutboxSubject("hotline-12345"), []byte(`{"outcome":"closed"}`)); err != nil {
		t.Fatal(err)
	}
	if m, err := own.NextMsg(2 * time.Second); err != nil || !strings.Contains(string(m.Data), "closed") {
		t.Fatalf("platform hears its reply: %v", err)
	}
	for _, subject := range []string{dispatch.OutboxSubject("city-management"), "whistle.outbox.>", dispatch.DispatchSubject("ecology-bureau"), dispatch.StreetSubject("longqiao"), "whistle.events.>"} {
		p.nc.SubscribeSync(subject)
		p.nc.Flush()
		p.denied(t, "platform subscribes to "+subject, subject)
	}
	// Nor does it read the stream by sequence, where every outbox is.
	sctx, cancel := short()
	defer cancel()
	if _, err := p.js.Stream(sctx, dispatch.StreamName); err == nil {
		t.Fatal("a platform read the dispatch stream's info")
	}
}
