package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/whistle-gov/whistle/adapters/coretest"
	"github.com/whistle-gov/whistle/adapters/dispatch"
	"github.com/whistle-gov/whistle/adapters/httpapi"
	"github.com/whistle-gov/whistle/adapters/sse"
	"github.com/whistle-gov/whistle/cmd/whistled/whistledtest"
	"github.com/whistle-gov/whistle/domain"
)

// ---- helpers of the dispatch and SLA tests ----

// dispStream opens an event stream as a principal; its events arrive on the
// channel until the test ends.
func dispStream(t *testing.T, s *whistledtest.Server, path, principal string) <-chan sse.Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+s.Token(principal))
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s as %s: %d", path, principal, resp.StatusCode)
	}
	ch := make(chan sse.Event, 256)
	go func() {
		defer resp.Body.Close()
		defer close(ch)
		_ = sse.Read(resp.Body, func(ev sse.Event) error {
			if !ev.Comment {
				ch <- ev
			}
			return nil
		})
	}()
	return ch
}

// dispWaitFor returns the first event that match accepts.
func dispWaitFor(t *testing.T, ch <-chan sse.Event, within time.Duration, match func(sse.Event) bool) sse.Event {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("event stream ended")
			}
			if match(ev) {
				return ev
			}
		case <-deadline:
			t.Fatalf("no matching event within %s", within)
		}
	}
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// dispMsg is a message of the dispatch stream.
type dispMsg struct {
	subject, msgID string
	body           dispatch.Message
}

// readDispatchStream reads the whole dispatch stream through nc.
func readDispatchStream(t *testing.T, nc *nats.Conn) []dispMsg {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, dispatch.StreamName)
	if err != nil {
		t.Fatalf("dispatch stream: %v", err)
	}
	info := st.CachedInfo()
	var out []dispMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("dispatch message %d: %v", seq, err)
		}
		var body dispatch.Message
		if err := json.Unmarshal(m.Data, &body); err != nil {
			t.Fatalf("dispatch message %d: %v", seq, err)
		}
		out = append(out, dispMsg{subject: m.Subject, msgID: m.Header.Get(jetstream.MsgIDHeader), body: body})
	}
	return out
}

// fullHistory is a case's history with the events' data.
type fullHistory struct {
	Events []domain.Envelope `json:"events"`
}

func caseEvents(t *testing.T, s *whistledtest.Server, caseID string) []domain.Envelope {
	t.Helper()
	var h fullHistory
	mustStatus(t, "history of "+caseID, s.Do("GET", "/v1/cases/"+caseID+"/history", "auditor:auditor", nil, &h), 200)
	return h.Events
}

// checkDispatched verifies that every event of the cases was dispatched to
// its street, every assignment made to its assignee, and nothing twice; it
// returns an error describing the first problem.
func checkDispatched(t *testing.T, s *whistledtest.Server, msgs []dispMsg, caseIDs []string) error {
	t.Helper()
	count := map[string]int{}
	for _, m := range msgs {
		count[m.msgID]++
	}
	for id, n := range count {
		if n > 1 {
			t.Fatalf("message %s is in the dispatch stream %d times", id, n)
		}
	}
	for _, c := range caseIDs {
		for _, e := range caseEvents(t, s, c) {
			want := []string{e.ID + "/s/longqiao"}
			if e.Type == domain.TypeAssignmentMade {
				var d domain.AssignmentMade
				_ = json.Unmarshal(e.Data, &d)
				want = append(want, e.ID+"/d/"+d.Assignee)
			}
			for _, w := range want {
				if count[w] != 1 {
					return fmt.Errorf("%s (%s of case %s) dispatched %d times", w, e.Type, c, count[w])
				}
			}
		}
	}
	return nil
}

// slaMarks counts a case's overdue marks and escalations by "type assignee
// deadline level".
func slaMarks(t *testing.T, s *whistledtest.Server, caseID string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, e := range caseEvents(t, s, caseID) {
		var d struct{ Assignee, Deadline, Level string }
		switch e.Type {
		case domain.TypeAssignmentOverdue, domain.TypeCaseEscalated:
			_ = json.Unmarshal(e.Data, &d)
			out[fmt.Sprintf("%s %s %s %s", e.Type, d.Assignee, d.Deadline, d.Level)]++
		}
	}
	return out
}

func showMarks(m map[string]int) string {
	var keys []string
	for k, n := range m {
		keys = append(keys, fmt.Sprintf("%s ×%d", k, n))
	}
	sort.Strings(keys)
	return strings.Join(keys, "; ")
}

// reportInMissed is what an emergency of coretest.Directory gets when neither
// the lead nor the assist reports in: one mark and one escalation per rung,
// per assignment.
var reportInMissed = map[string]int{
	"AssignmentOverdue ecology-bureau report district": 1,
	"CaseEscalated ecology-bureau report district":     1,
	"CaseEscalated ecology-bureau report city":         1,
	"AssignmentOverdue water-bureau report district":   1,
	"CaseEscalated water-bureau report district":       1,
	"CaseEscalated water-bureau report city":           1,
}

// awaitMarks waits until every case has want, then a while longer (past the
// ladder's last rung), and checks that nothing was added twice.
func awaitMarks(t *testing.T, servers []*whistledtest.Server, caseIDs []string, want map[string]int) {
	t.Helper()
	s := servers[0]
	deadline := time.Now().Add(20 * time.Second)
	for _, c := range caseIDs {
		for {
			got := slaMarks(t, s, c)
			if showMarks(got) == showMarks(want) {
				break
			}
			for k, n := range got {
				if n > 1 {
					t.Fatalf("case %s: %s appended %d times: %s", c, k, n, showMarks(got))
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("case %s: %s, want %s", c, showMarks(got), showMarks(want))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	time.Sleep(1500 * time.Millisecond) // any second watcher, any retry, has had its chance
	for _, c := range caseIDs {
		if got := slaMarks(t, s, c); showMarks(got) != showMarks(want) {
			t.Fatalf("case %s later: %s, want %s", c, showMarks(got), showMarks(want))
		}
	}
}

func writeTestDirectory(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "directory.json")
	writeFile(t, path, coretest.Directory)
	return path
}

func raiseEmergency(t *testing.T, s *whistledtest.Server) string {
	t.Helper()
	var c caseView
	mustStatus(t, "raise emergency", s.Do("POST", "/v1/whistles", "street:longqiao", raiseBody("longqiao", "wanhui", "river-pollution", "emergency"), &c), 201)
	return c.CaseID
}

// ---- tests ----

func TestLiveQueueShowsNewAssignment(t *testing.T) {
	s := whistledtest.Start(t)
	sm := pickSample(t, s)
	lead := principalOf(s, sm.issue.Lead)
	ch := dispStream(t, s, "/v1/queues/"+sm.issue.Lead, lead)
	dispWaitFor(t, ch, 10*time.Second, func(ev sse.Event) bool { return ev.Name == "synced" })

	var took []time.Duration
	for i := 0; i < 5; i++ {
		start := time.Now()
		var c caseView
		mustStatus(t, "raise", s.Do("POST", "/v1/whistles", "street:"+sm.street, raiseBody(sm.street, sm.community, sm.issue.ID, "urgent"), &c), 201)
		dispWaitFor(t, ch, 5*time.Second, func(ev sse.Event) bool {
			var m dispatch.Message
			return ev.Name == "change" && json.Unmarshal([]byte(ev.Data), &m) == nil && m.CaseID == c.CaseID &&
				m.Change == dispatch.ChangeMade && m.Assignment != nil && m.Assignment.Assignee == sm.issue.Lead
		})
		took = append(took, time.Since(start))
	}
	t.Logf("raise (HTTP, acknowledged) → the lead's live queue: %v", took)

	// The queue itself, and its access rule.
	var q httpapi.QueueAnswer
	mustStatus(t, "own queue", s.Do("GET", "/v1/queues/"+sm.issue.Lead, lead, nil, &q), 200)
	if len(q.Assignments) != 5 {
		t.Fatalf("queue holds %d assignments, want 5", len(q.Assignments))
	}
	mustStatus(t, "another's queue", s.Do("GET", "/v1/queues/"+sm.issue.Lead, principalOf(s, sm.issue.Assist[0]), nil, nil), 403)
	mustStatus(t, "auditor", s.Do("GET", "/v1/queues/"+sm.issue.Lead, "auditor:auditor", nil, nil), 200)
}

func TestTwentyConcurrentClaimsOneWins(t *testing.T) {
	s := whistledtest.Start(t)
	sm := pickSample(t, s)
	var c caseView
	mustStatus(t, "raise need", s.Do("POST", "/v1/whistles", "street:"+sm.street, raiseBody(sm.street, sm.community, sm.need.ID, "routine"), &c), 201)
	// Every unit of the community has the offer in its queue.
	for _, u := range sm.units {
		var q httpapi.QueueAnswer
		mustStatus(t, "queue of "+u, s.Do("GET", "/v1/queues/"+u, "unit:"+u, nil, &q), 200)
		if len(q.Assignments) != 1 || q.Assignments[0].Role != domain.RoleOffer {
			t.Fatalf("queue of %s: %+v", u, q.Assignments)
		}
	}
	var wins, refused atomic.Int32
	var winner atomic.Value
	var wg sync.WaitGroup
	startLine := make(chan struct{})
	for i := 0; i < 20; i++ {
		u := sm.units[i%len(sm.units)] // several claims by each unit
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-startLine
			switch st := s.Do("POST", "/v1/cases/"+c.CaseID+"/claim", "unit:"+u, nil, nil); st {
			case 200:
				wins.Add(1)
				winner.Store(u)
			case 409:
				refused.Add(1)
			default:
				t.Errorf("claim by %s: %d", u, st)
			}
		}()
	}
	close(startLine)
	wg.Wait()
	if wins.Load() != 1 || refused.Load() != 19 {
		t.Fatalf("%d claims won and %d were refused, want 1 and 19", wins.Load(), refused.Load())
	}
	for _, u := range sm.units {
		var q httpapi.QueueAnswer
		mustStatus(t, "queue of "+u, s.Do("GET", "/v1/queues/"+u, "unit:"+u, nil, &q), 200)
		if u == winner.Load() {
			if len(q.Assignments) != 1 || q.Assignments[0].Role != domain.RoleLead || q.Assignments[0].Status != domain.Reported {
				t.Fatalf("winner's queue: %+v", q.Assignments)
			}
		} else if len(q.Assignments) != 0 {
			t.Fatalf("the offer did not lapse for %s: %+v", u, q.Assignments)
		}
	}
}

// TestDispatcherKilledNeitherLosesNorRepeats kills whistled with SIGKILL in
// the middle of a load, restarts it, and counts the messages of every event
// on the dispatch stream, read over NATS as an auditor (--nats-listen).
func TestDispatcherKilledNeitherLosesNorRepeats(t *testing.T) {
	addr := freeAddr(t)
	s := whistledtest.Start(t, "--nats-listen", addr)
	natsURL := "nats://" + addr

	var mu sync.Mutex
	var acked []string
	stop := raiseLoad(s, 4, 10*time.Second, "street:longqiao", raiseBody("longqiao", "wanhui", "river-pollution", "routine"), true,
		func(st int, id string, _ int) {
			if st == 201 {
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
			}
		})
	time.Sleep(1200 * time.Millisecond)
	s.Kill()
	stop()
	if len(acked) == 0 {
		t.Fatal("nothing acknowledged before the kill")
	}
	s.Restart()
	for i := 0; i < 3; i++ {
		var c caseView
		mustStatus(t, "raise after restart", s.Do("POST", "/v1/whistles", "street:longqiao", raiseBody("longqiao", "wanhui", "river-pollution", "routine"), &c), 201)
		acked = append(acked, c.CaseID)
	}

	nc, err := nats.Connect(natsURL, nats.Token(s.Token("auditor:auditor")))
	if err != nil {
		t.Fatalf("auditor over NATS: %v", err)
	}
	defer nc.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		msgs := readDispatchStream(t, nc)
		err := checkDispatched(t, s, msgs, acked)
		if err == nil {
			t.Logf("%d cases acknowledged around the SIGKILL; %d messages on the dispatch stream, each once, none missing", len(acked), len(msgs))
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestDepartmentOverNATS: with --nats-listen a department logs in with its
// whistle token, reads its own dispatches from its durable consumer, and is
// refused another department's subject.
func TestDepartmentOverNATS(t *testing.T) {
	addr := freeAddr(t)
	s := whistledtest.Start(t, "--nats-listen", addr)
	var c caseView
	mustStatus(t, "raise", s.Do("POST", "/v1/whistles", "street:longqiao", raiseBody("longqiao", "wanhui", "river-pollution", "routine"), &c), 201)

	violations := make(chan error, 8)
	nc, err := nats.Connect("nats://"+addr, nats.Token(s.Token("department:ecology-bureau")),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { violations <- err }))
	if err != nil {
		t.Fatalf("department over NATS: %v", err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := js.Consumer(ctx, dispatch.StreamName, "ecology-bureau")
	if err != nil {
		t.Fatalf("own durable consumer: %v", err)
	}
	var m dispatch.Message
	for m.CaseID != c.CaseID {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("no dispatch of case %s on the department's consumer: %v", c.CaseID, err)
		}
		if err := json.Unmarshal(msg.Data(), &m); err != nil {
			t.Fatal(err)
		}
		_ = msg.Ack()
	}
	if m.Change != dispatch.ChangeMade || m.Assignment == nil || m.Assignment.Role != domain.RoleLead {
		t.Fatalf("dispatch %+v", m)
	}
	if _, err := nc.SubscribeSync(dispatch.DispatchSubject("water-bureau")); err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	select {
	case err := <-violations:
		if !strings.Contains(err.Error(), "whistle.dispatch.water-bureau") {
			t.Fatalf("unexpected error %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a department subscribed to another's dispatches")
	}
	if _, err := nats.Connect("nats://"+addr, nats.Token("wst_forged")); err == nil {
		t.Fatal("a forged token connected")
	}
}

func TestEmergencyEscalatesOnceAlsoAfterRestart(t *testing.T) {
	s := whistledtest.Start(t, "--directory", writeTestDirectory(t))
	a := raiseEmergency(t, s)
	// The first rung comes about a second after the raise...
	start := time.Now()
	for slaMarks(t, s, a)["CaseEscalated water-bureau report district"] == 0 {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("no escalation 10s after a one-second deadline: %s", showMarks(slaMarks(t, s, a)))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("report-in deadline of 1s: escalated %s after the raise", time.Since(start))
	// ...then whistled dies; another case is raised and its deadline and the
	// city rung of the first pass while it is down.
	s.Kill()
	s.Restart()
	b := raiseEmergency(t, s)
	time.Sleep(300 * time.Millisecond)
	s.Kill()
	time.Sleep(3500 * time.Millisecond)
	s.Restart()
	awaitMarks(t, []*whistledtest.Server{s}, []string{a, b}, reportInMissed)

	// The flags show on the case and on the queue.
	var c struct {
		Assignments []struct {
			Assignee string `json:"assignee"`
			Overdue  bool   `json:"overdue"`
		} `json:"assignments"`
	}
	mustStatus(t, "case", s.Do("GET", "/v1/cases/"+b, "street:longqiao", nil, &c), 200)
	for _, as := range c.Assignments {
		if !as.Overdue {
			t.Errorf("case %s: %s not flagged overdue", b, as.Assignee)
		}
	}
	var q httpapi.QueueAnswer
	mustStatus(t, "queue", s.Do("GET", "/v1/queues/water-bureau", "department:water-bureau", nil, &q), 200)
	if len(q.Assignments) != 2 || !q.Assignments[0].Overdue || !q.Assignments[1].Overdue {
		t.Fatalf("queue of water-bureau: %+v", q.Assignments)
	}
}

// TestTwoInstancesEscalateOnceAndDispatchOnce runs two whistled on one
// external NATS server; both watch deadlines, one dispatches at a time.
func TestTwoInstancesEscalateOnceAndDispatchOnce(t *testing.T) {
	natsURL := startExternalNATS(t)
	dir := writeTestDirectory(t)
	s1 := whistledtest.Start(t, "--nats", natsURL, "--directory", dir)
	shared := filepath.Join(t.TempDir(), "principals.json")
	raw, err := os.ReadFile(filepath.Join(s1.Data, "principals.json"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, shared, string(raw))
	s2 := whistledtest.Start(t, "--nats", natsURL, "--directory", dir, "--principals", shared)
	for k, v := range s1.Tokens {
		s2.Tokens[k] = v
	}
	var cases []string
	for i := 0; i < 3; i++ {
		cases = append(cases, raiseEmergency(t, s1), raiseEmergency(t, s2))
	}
	awaitMarks(t, []*whistledtest.Server{s1, s2}, cases, reportInMissed)

	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := checkDispatched(t, s1, readDispatchStream(t, nc), cases)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Either instance's queue shows the overdue assignments.
	for _, s := range []*whistledtest.Server{s1, s2} {
		var q httpapi.QueueAnswer
		mustStatus(t, "queue", s.Do("GET", "/v1/queues/ecology-bureau", "department:ecology-bureau", nil, &q), 200)
		if len(q.Assignments) != len(cases) {
			t.Fatalf("queue holds %d assignments, want %d", len(q.Assignments), len(cases))
		}
		for _, it := range q.Assignments {
			if !it.Overdue {
				t.Fatalf("queue item not overdue: %+v", it)
			}
		}
	}
}

// startExternalNATS builds and starts adapters/natsbus/cmd/natsd with
// JetStream in a temporary folder, stopped at the end of the test.
func startExternalNATS(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "natsd")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/whistle-gov/whistle/adapters/natsbus/cmd/natsd").CombinedOutput(); err != nil {
		t.Fatalf("go build natsd: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-js", "-sync", "-store", t.TempDir(), "-server_name", "whistle-e2e")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if url, ok := strings.CutPrefix(sc.Text(), "natsd ready "); ok {
				ready <- url
			}
		}
	}()
	select {
	case url := <-ready:
		return url
	case <-time.After(30 * time.Second):
		t.Fatal("natsd not ready after 30s")
		return ""
	}
}
