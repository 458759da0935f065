package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/whistle-gov/whistle/adapters/coretest"
	"github.com/whistle-gov/whistle/domain"
)

// startDispatcher runs a dispatcher on env until the test ends (or stop).
func startDispatcher(t *testing.T, env *coretest.Env, cfg Config) (d *Dispatcher, stop func()) {
	t.Helper()
	cfg.Store, cfg.Conn = env.Store, env.Conn
	if cfg.Instance == "" {
		cfg.Instance = "test-" + t.Name()
	}
	d, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = d.Run(ctx)
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return d, stop
}

// stored is a message of the dispatch stream.
type stored struct {
	seq     uint64
	subject string
	msgID   string
	body    Message
}

// dispatchStream opens the dispatch stream of env.
func dispatchStream(t *testing.T, env *coretest.Env) jetstream.Stream {
	t.Helper()
	js, err := jetstream.New(env.Conn)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(context.Background(), StreamName)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// readAll reads the whole dispatch stream.
func readAll(t *testing.T, env *coretest.Env) []stored {
	t.Helper()
	s := dispatchStream(t, env)
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []stored
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(context.Background(), seq)
		if err != nil {
			continue // deleted
		}
		var body Message
		if err := json.Unmarshal(m.Data, &body); err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		out = append(out, stored{seq: seq, subject: m.Subject, msgID: m.Header.Get(jetstream.MsgIDHeader), body: body})
	}
	return out
}

// dispatchedAll waits until every event of the cases has its street
// notification in the stream (the last message of each event's batch).
func dispatchedAll(t *testing.T, env *coretest.Env, caseIDs ...string) []stored {
	t.Helper()
	var msgs []stored
	coretest.Eventually(t, 10*time.Second, "every event dispatched", func() error {
		msgs = readAll(t, env)
		seen := map[string]bool{}
		for _, m := range msgs {
			seen[m.msgID] = true
		}
		for _, id := range caseIDs {
			for _, e := range env.History(t, id) {
				if !seen[msgID(e.ID, "s", "longqiao")] {
					return fmt.Errorf("event %s (%s) of case %s not dispatched to its street", e.ID, e.Type, id)
				}
			}
		}
		return nil
	})
	return msgs
}

func noDuplicates(t *testing.T, msgs []stored) {
	t.Helper()
	seen := map[string]uint64{}
	for _, m := range msgs {
		if prev, dup := seen[m.msgID]; dup {
			t.Fatalf("message %s stored twice, at %d and %d", m.msgID, prev, m.seq)
		}
		seen[m.msgID] = m.seq
	}
}

// changesOf lists the changes dispatched to an assignee for a case.
func changesOf(msgs []stored, assignee, caseID string) []string {
	var out []string
	for _, m := range msgs {
		if m.subject == DispatchSubject(assignee) && m.body.CaseID == caseID {
			out = append(out, m.body.Change+":"+string(m.body.Assignment.Status))
		}
	}
	return out
}

func TestDispatchesEveryChangeToItsAssignee(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	startDispatcher(t, env, Config{})

	issue := env.Raise(t, "river-pollution", "urgent").ID
	env.Do(t, issue, coretest.Ecology, domain.Report{Assignee: "ecology-bureau"})
	env.Do(t, issue, coretest.Water, domain.Report{Assignee: "water-bureau"})
	env.Do(t, issue, coretest.Ecology, domain.Resolve{Assignee: "ecology-bureau"})
	env.Do(t, issue, coretest.Street, domain.Verify{Accepted: false, Note: "still smells"})
	env.Do(t, issue, coretest.Ecology, domain.Resolve{Assignee: "ecology-bureau"})
	env.Do(t, issue, coretest.Street, domain.Verify{Accepted: true})

	need := env.Raise(t, "after-school-care", "routine").ID
	env.Do(t, need, coretest.Units[1], domain.Claim{Assignee: coretest.Units[1].ID})

	msgs := dispatchedAll(t, env, issue, need)
	noDuplicates(t, msgs)
	want := map[string][]string{
		"ecology-bureau": {"made:assigned", "reported:reported", "resolved:resolved", "rejected:reported", "resolved:resolved", "closed:resolved"},
		"water-bureau":   {"made:assigned", "reported:reported", "closed:reported"},
	}
	for assignee, w := range want {
		if got := changesOf(msgs, assignee, issue); !slices.Equal(got, w) {
			t.Errorf("%s got %v, want %v", assignee, got, w)
		}
	}
	wantNeed := map[string][]string{
		"putian-university":            {"made:assigned", "lapsed:lapsed"},
		"putian-telecom":               {"made:assigned", "claimed:reported"},
		"putian-rural-commercial-bank": {"made:assigned", "lapsed:lapsed"},
	}
	for assignee, w := range wantNeed {
		if got := changesOf(msgs, assignee, need); !slices.Equal(got, w) {
			t.Errorf("need: %s got %v, want %v", assignee, got, w)
		}
	}
	// Every event went to the street, with the case's essentials and no
	// description or location.
	street := 0
	for _, m := range msgs {
		if m.subject == StreetSubject("longqiao") {
			street++
			if m.body.Category == "" || m.body.Urgency == "" || m.body.CaseStatus == "" || m.body.Position == 0 {
				t.Errorf("street message %s lacks the case's essentials: %+v", m.msgID, m.body)
			}
		}
	}
	if n := len(env.History(t, issue)) + len(env.History(t, need)); street != n {
		t.Errorf("%d street notifications for %d events", street, n)
	}
}

// TestRestartRepeatsNothingAndLosesNothing rewinds the checkpoint to the
// start (a crash before any checkpoint was written) and removes some
// messages (publishes lost in the crash), and waits past the duplicate
// window: the restarted dispatcher must publish exactly the missing ones.
func TestRestartRepeatsNothingAndLosesNothing(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	cfg := Config{Stream: StreamOptions{DuplicateWindow: 100 * time.Millisecond}, CheckpointEvery: 10 * time.Millisecond}
	d, stop := startDispatcher(t, env, cfg)
	var cases []string
	for i := 0; i < 10; i++ {
		c := env.Raise(t, "river-pollution", "routine")
		env.Do(t, c.ID, coretest.Ecology, domain.Report{Assignee: "ecology-bureau"})
		cases = append(cases, c.ID)
	}
	before := dispatchedAll(t, env, cases...)
	stop()

	// The crash: no checkpoint, and three publishes that never landed.
	if _, err := d.ckpt.Put(context.Background(), CheckpointKey, []byte(`{"position":0,"sequence":0}`)); err != nil {
		t.Fatal(err)
	}
	lost := map[string]bool{}
	for _, i := range []int{3, len(before) / 2, len(before) - 1} {
		if err := d.stream.DeleteMsg(context.Background(), before[i].seq); err != nil {
			t.Fatal(err)
		}
		lost[before[i].msgID] = true
	}
	time.Sleep(300 * time.Millisecond) // the duplicate window cannot help any more

	// Meanwhile the log moves on.
	for i := 0; i < 5; i++ {
		cases = append(cases, env.Raise(t, "neighbour-dispute", "routine").ID)
	}
	startDispatcher(t, env, cfg)
	after := dispatchedAll(t, env, cases...)
	noDuplicates(t, after)
	have := map[string]bool{}
	for _, m := range after {
		have[m.msgID] = true
	}
	for _, m := range before {
		if !have[m.msgID] {
			t.Errorf("message %s lost", m.msgID)
		}
	}
	republished := 0
	for _, m := range after {
		if m.seq > before[len(before)-1].seq && lost[m.msgID] {
			republished++
		}
	}
	if republished != len(lost) {
		t.Errorf("%d lost messages republished, want %d", republished, len(lost))
	}
}

func TestOneDispatcherLeadsAtATime(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	cfg := Config{LeaseTTL: 2 * time.Second}
	cfg.Instance = "first"
	d1, stop1 := startDispatcher(t, env, cfg)
	coretest.Eventually(t, 5*time.Second, "first leads", func() error {
		if !d1.Leading() {
			return coretest.ErrNotYet
		}
		return nil
	})
	cfg.Instance = "second"
	d2, _ := startDispatcher(t, env, cfg)
	var cases []string
	for i := 0; i < 5; i++ {
		cases = append(cases, env.Raise(t, "river-pollution", "routine").ID)
	}
	dispatchedAll(t, env, cases...)
	if d2.Leading() {
		t.Fatal("two dispatchers lead at once")
	}
	stop1() // a clean stop releases the lease
	for i := 0; i < 5; i++ {
		cases = append(cases, env.Raise(t, "river-pollution", "routine").ID)
	}
	msgs := dispatchedAll(t, env, cases...)
	if !d2.Leading() {
		t.Fatal("the second dispatcher did not take over")
	}
	noDuplicates(t, msgs)
}

func TestMessagesCarryNoFreeText(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	startDispatcher(t, env, Config{})
	c := env.Raise(t, "river-pollution", "routine")
	env.Do(t, c.ID, coretest.Ecology, domain.Decline{Assignee: "ecology-bureau", Reason: "私人住址 not ours"})
	for _, m := range dispatchedAll(t, env, c.ID) {
		raw, _ := json.Marshal(m.body)
		if strings.Contains(string(raw), "私人住址") {
			t.Fatalf("message %s carries the decline's reason: %s", m.msgID, raw)
		}
	}
}

// TestBacklogGoesOutInAtomicBatches: what the log runs ahead by is written as
// atomic batches (one fsync each with fsync always), in log order, each
// message once.
func TestBacklogGoesOutInAtomicBatches(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	var cases []string
	for i := 0; i < 12; i++ {
		c := env.Raise(t, "river-pollution", "routine")
		env.Do(t, c.ID, coretest.Ecology, domain.Report{Assignee: "ecology-bureau"})
		cases = append(cases, c.ID)
	}
	startDispatcher(t, env, Config{AtomicBatches: true})
	msgs := dispatchedAll(t, env, cases...)
	noDuplicates(t, msgs)
	if len(msgs) < minAtomicBatch {
		t.Fatalf("%d messages: the backlog is too small to be batched", len(msgs))
	}
	s := dispatchStream(t, env)
	batched := 0
	var lastPos uint64
	for _, m := range msgs {
		if m.body.Position < lastPos {
			t.Fatalf("message %d at log position %d after one at %d", m.seq, m.body.Position, lastPos)
		}
		lastPos = m.body.Position
		raw, err := s.GetMsg(context.Background(), m.seq)
		if err != nil {
			t.Fatal(err)
		}
		if raw.Header.Get("Nats-Batch-Id") != "" {
			batched++
		}
	}
	if batched < minAtomicBatch {
		t.Errorf("%d of %d messages came in an atomic batch, want the backlog's", batched, len(msgs))
	}
}

// TestAsyncStreamCheckpointTrailsWhatIsOnDisk: with the stream stored
// without an fsync per message, the checkpoint moves only to what was
// acknowledged DurableAfter ago, so a crash that takes the stream's
// unsynced tail also leaves it behind the checkpoint: the lost messages are
// published again under their ids, nothing twice; no atomic batch is used.
func TestAsyncStreamCheckpointTrailsWhatIsOnDisk(t *testing.T) {
	env := coretest.Start(t, coretest.Options{SyncAlways: true})
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	cfg := Config{Stream: StreamOptions{Async: true, DuplicateWindow: 100 * time.Millisecond}, CheckpointEvery: 10 * time.Millisecond,
		DurableAfter: time.Hour, Now: now, AtomicBatches: true}
	d, stop := startDispatcher(t, env, cfg)
	if info := d.stream.CachedInfo(); info.Config.PersistMode != jetstream.AsyncPersistMode || d.atomicOK {
		t.Fatalf("persist mode %v, atomic batches %v; want async and none", info.Config.PersistMode, d.atomicOK)
	}
	var cases []string
	for i := 0; i < 10; i++ {
		c := env.Raise(t, "river-pollution", "routine")
		env.Do(t, c.ID, coretest.Ecology, domain.Report{Assignee: "ecology-bureau"})
		cases = append(cases, c.ID)
	}
	before := dispatchedAll(t, env, cases...)
	time.Sleep(100 * time.Millisecond) // ten checkpoint ticks
	stop()
	if cp, err := d.loadCheckpoint(context.Background()); err != nil || cp.Position != 0 || cp.Sequence != 0 {
		t.Fatalf("checkpoint %+v (%v) written before anything was old enough to be on disk", cp, err)
	}

	// The crash takes the stream's last three messages, never synced.
	lost := map[string]bool{}
	for _, m := range before[len(before)-3:] {
		if err := d.stream.DeleteMsg(context.Background(), m.seq); err != nil {
			t.Fatal(err)
		}
		lost[m.msgID] = true
	}
	time.Sleep(300 * time.Millisecond) // the duplicate window cannot help any more
	d2, _ := startDispatcher(t, env, cfg)
	after := dispatchedAll(t, env, cases...)
	noDuplicates(t, after)
	have := map[string]bool{}
	for _, m := range after {
		have[m.msgID] = true
	}
	for _, m := range before {
		if !have[m.msgID] {
			t.Errorf("message %s lost", m.msgID)
		}
	}

	// Once the acknowledgements are old enough, the checkpoint follows.
	offset.Store(int64(2 * time.Hour))
	cases = append(cases, env.Raise(t, "neighbour-dispute", "routine").ID)
	dispatchedAll(t, env, cases...)
	coretest.Eventually(t, 5*time.Second, "the checkpoint moves once the acknowledgements are on disk", func() error {
		cp, err := d2.loadCheckpoint(context.Background())
		if err != nil {
			return err
		}
		if cp.Position == 0 {
			return fmt.Errorf("checkpoint %+v", cp)
		}
		return nil
	})
}
