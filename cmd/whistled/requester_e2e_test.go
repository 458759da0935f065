package main

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/whistle-gov/whistle/cmd/whistled/whistledtest"
)

// The requester of the tests: a name and a phone that appear nowhere else.
const (
	requesterName  = "欧阳娜娜"
	requesterPhone = "13912345678"
)

type requesterView struct {
	Name      string `json:"name"`
	Phone     string `json:"phone"`
	Revealed  bool   `json:"revealed"`
	Forgotten bool   `json:"forgotten"`
}

type caseWithRequester struct {
	CaseID    string         `json:"case_id"`
	Version   int            `json:"version"`
	Requester *requesterView `json:"requester"`
}

// inClear lists the forms in which the requester would show in clear: as
// written, JSON-escaped, and the phone's digits split as people write them.
func inClear() [][]byte {
	escaped, _ := json.Marshal(requesterName)
	ascii := strconv.QuoteToASCII(requesterName)
	return [][]byte{[]byte(requesterName), []byte(requesterName[3:]), escaped, []byte(strings.Trim(ascii, `"`)),
		[]byte(requesterPhone), []byte(requesterPhone[3:]), []byte("139 1234 5678"), []byte("139-1234-5678")}
}

func mustNotHoldRequester(t *testing.T, what string, b []byte) {
	t.Helper()
	for _, c := range inClear() {
		if bytes.Contains(b, c) {
			t.Errorf("%s holds the requester in clear (%q)", what, c)
		}
	}
}

// grepDataFolder checks every file under the data folder.
func grepDataFolder(t *testing.T, s *whistledtest.Server) {
	t.Helper()
	files := 0
	err := filepath.WalkDir(s.Data, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		mustNotHoldRequester(t, path, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 3 {
		t.Fatalf("only %d files under %s: nothing much was checked", files, s.Data)
	}
}

func TestRequesterIsSealedMaskedRevealedAndForgotten(t *testing.T) {
	s := whistledtest.Start(t)
	sm := pickSample(t, s)
	street, lead, auditor := "street:"+sm.street, principalOf(s, sm.issue.Lead), "auditor:auditor"
	var other string
	for k := range s.Tokens {
		if strings.HasPrefix(k, "street:") && k != street {
			other = k
		}
	}
	body := raiseBody(sm.street, sm.community, sm.issue.ID, "routine")
	body["requester"] = map[string]string{"name": requesterName, "phone": requesterPhone}

	// Bad requesters are refused naming the field, without repeating it.
	for field, bad := range map[string]map[string]string{
		"requester.phone": {"name": requesterName, "phone": "call me maybe"},
		"requester.name":  {"name": strings.Repeat("欧", 65), "phone": requesterPhone},
	} {
		b := raiseBody(sm.street, sm.community, sm.issue.ID, "routine")
		b["requester"] = bad
		st, raw := s.DoRaw("POST", "/v1/whistles", street, b)
		var e apiError
		_ = json.Unmarshal(raw, &e)
		if st != 422 || e.Error.Field != field {
			t.Fatalf("bad %s: %d %s", field, st, raw)
		}
		mustNotHoldRequester(t, "the refusal of a bad "+field, raw)
	}
	unknown := raiseBody(sm.street, sm.community, sm.issue.ID, "routine")
	unknown["requester"] = map[string]string{"name": requesterName, "phone": requesterPhone, "email": "x@example.com"}
	if st, raw := s.DoRaw("POST", "/v1/whistles", street, unknown); st != 400 {
		t.Fatalf("a requester with an unknown field: %d %s", st, raw)
	}

	// The raise answers the requester masked; a retry with the same key is
	// the same case, the same key with another requester is refused.
	st, raw := s.DoRaw("POST", "/v1/whistles", street, body, "Idempotency-Key", "hotline-call-7")
	mustStatus(t, "raise with a requester", st, 201)
	mustNotHoldRequester(t, "the raise's answer", raw)
	var c caseWithRequester
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	masked := requesterView{Name: "欧*", Phone: "139****5678"}
	if c.Requester == nil || *c.Requester != masked {
		t.Fatalf("raise answers requester %+v, want %+v", c.Requester, masked)
	}
	id := c.CaseID
	var again caseWithRequester
	mustStatus(t, "retry", s.Do("POST", "/v1/whistles", street, body, &again, "Idempotency-Key", "hotline-call-7"), 201)
	if again.CaseID != id || again.Requester == nil || *again.Requester != masked {
		t.Fatalf("retry answered %+v, first %s", again, id)
	}
	otherCaller := raiseBody(sm.street, sm.community, sm.issue.ID, "routine")
	otherCaller["requester"] = map[string]string{"name": requesterName, "phone": "13900000000"}
	mustStatus(t, "same key, another requester", s.Do("POST", "/v1/whistles", street, otherCaller, nil, "Idempotency-Key", "hotline-call-7"), 409)
	mustStatus(t, "lead reports", s.Do("POST", "/v1/cases/"+id+"/report", lead, nil, nil), 200)

	// Every read shows it masked at most.
	reads := []struct{ path, principal string }{
		{"/v1/cases/" + id, street}, {"/v1/cases/" + id, lead}, {"/v1/cases/" + id, auditor},
		{"/v1/cases/" + id + "/history", auditor}, {"/v1/cases/" + id + "/history", street},
		{"/v1/cases?street=" + sm.street, street}, {"/v1/cases", auditor},
		{"/v1/log?after=0&limit=1000", auditor}, {"/v1/readmodels/snapshot", auditor},
		{"/v1/queues/" + sm.issue.Lead, lead}, {"/v1/stats?group_by=street", auditor},
	}
	checkReads := func(when string) {
		t.Helper()
		for _, rd := range reads {
			st, raw := s.DoRaw("GET", rd.path, rd.principal, nil)
			mustStatus(t, when+": GET "+rd.path, st, 200)
			mustNotHoldRequester(t, when+": GET "+rd.path+" as "+rd.principal, raw)
		}
	}
	checkReads("before the reveal")
	var got caseWithRequester
	mustStatus(t, "get as the lead", s.Do("GET", "/v1/cases/"+id, lead, nil, &got), 200)
	if got.Requester == nil || *got.Requester != masked {
		t.Fatalf("the lead sees requester %+v, want %+v", got.Requester, masked)
	}
	var h struct {
		Events []struct {
			Type  string          `json:"type"`
			Actor json.RawMessage `json:"actor"`
			Data  struct {
				Requester *struct {
					KeyID      string `json:"key_id"`
					Ciphertext []byte `json:"ciphertext"`
				} `json:"requester"`
			} `json:"data"`
		} `json:"events"`
		ChainWhole bool `json:"chain_whole"`
	}
	mustStatus(t, "history", s.Do("GET", "/v1/cases/"+id+"/history", auditor, nil, &h), 200)
	if sealed := h.Events[0].Data.Requester; h.Events[0].Type != "WhistleRaised" || sealed == nil || len(sealed.Ciphertext) == 0 || sealed.KeyID == "" {
		t.Fatalf("WhistleRaised does not carry the sealed requester: %+v", h.Events[0])
	}

	// Reveal: the owning street only, and recorded.
	for _, p := range []string{lead, auditor, other} {
		var e apiError
		mustStatus(t, "reveal as "+p, s.Do("GET", "/v1/cases/"+id+"?reveal=requester", p, nil, &e), 403)
	}
	mustStatus(t, "reveal what is not a requester", s.Do("GET", "/v1/cases/"+id+"?reveal=title", street, nil, nil), 422)
	var revealed caseWithRequester
	mustStatus(t, "reveal", s.Do("GET", "/v1/cases/"+id+"?reveal=requester", street, nil, &revealed), 200)
	if want := (requesterView{Name: requesterName, Phone: requesterPhone, Revealed: true}); revealed.Requester == nil || *revealed.Requester != want {
		t.Fatalf("revealed %+v, want %+v", revealed.Requester, want)
	}
	mustStatus(t, "history after the reveal", s.Do("GET", "/v1/cases/"+id+"/history", auditor, nil, &h), 200)
	last := h.Events[len(h.Events)-1]
	if last.Type != "RequesterRevealed" || !strings.Contains(string(last.Actor), sm.street) || !h.ChainWhole {
		t.Fatalf("the reveal is not recorded: last event %s by %s, chain whole %v", last.Type, last.Actor, h.ChainWhole)
	}
	checkReads("after the reveal")

	// The data folder, with the read models' snapshots written at a clean stop.
	s.Stop()
	grepDataFolder(t, s)
	s.Restart()
	mustNotHoldRequester(t, "whistled's log", []byte(s.Logs()))

	// Forget: the owning street or an auditor, with a reason.
	mustStatus(t, "forget as the lead", s.Do("POST", "/v1/cases/"+id+"/forget", lead, map[string]string{"reason": "asked"}, nil), 403)
	mustStatus(t, "forget as another street", s.Do("POST", "/v1/cases/"+id+"/forget", other, map[string]string{"reason": "asked"}, nil), 403)
	var e apiError
	mustStatus(t, "forget without a reason", s.Do("POST", "/v1/cases/"+id+"/forget", street, map[string]string{"reason": ""}, &e), 422)
	if e.Error.Field != "reason" {
		t.Fatalf("forget without a reason names %q", e.Error.Field)
	}
	var forgotten caseWithRequester
	mustStatus(t, "forget as the auditor", s.Do("POST", "/v1/cases/"+id+"/forget", auditor,
		map[string]string{"reason": "the resident asked to be forgotten (PIPL art. 47)"}, &forgotten), 200)
	if forgotten.Requester == nil || !forgotten.Requester.Forgotten || forgotten.Requester.Name != "" || forgotten.Requester.Phone != "" {
		t.Fatalf("after forget the case shows %+v", forgotten.Requester)
	}
	mustStatus(t, "forget twice", s.Do("POST", "/v1/cases/"+id+"/forget", street, map[string]string{"reason": "again"}, nil), 409)

	checkForgotten := func(when string) {
		t.Helper()
		for _, p := range []string{street, lead, auditor} {
			var c caseWithRequester
			mustStatus(t, when+": get as "+p, s.Do("GET", "/v1/cases/"+id, p, nil, &c), 200)
			if c.Requester == nil || !c.Requester.Forgotten || c.Requester.Name != "" || c.Requester.Phone != "" {
				t.Fatalf("%s: %s sees requester %+v", when, p, c.Requester)
			}
		}
		var before, after struct {
			Events     []json.RawMessage `json:"events"`
			ChainWhole bool              `json:"chain_whole"`
		}
		mustStatus(t, when+": history", s.Do("GET", "/v1/cases/"+id+"/history", auditor, nil, &before), 200)
		var c caseWithRequester
		mustStatus(t, when+": reveal", s.Do("GET", "/v1/cases/"+id+"?reveal=requester", street, nil, &c), 200)
		if c.Requester == nil || !c.Requester.Forgotten || c.Requester.Name != "" || c.Requester.Phone != "" {
			t.Fatalf("%s: the reveal answers %+v", when, c.Requester)
		}
		mustStatus(t, when+": history after reveal", s.Do("GET", "/v1/cases/"+id+"/history", auditor, nil, &after), 200)
		if len(after.Events) != len(before.Events) || !after.ChainWhole {
			t.Fatalf("%s: a reveal of a forgotten requester appended (%d → %d events), chain whole %v", when, len(before.Events), len(after.Events), after.ChainWhole)
		}
		forgets := 0
		for _, ev := range before.Events {
			if strings.Contains(string(ev), `"type":"RequesterForgotten"`) {
				forgets++
			}
		}
		if forgets != 1 {
			t.Fatalf("%s: the history holds %d RequesterForgotten events, want 1", when, forgets)
		}
		checkReads(when)
	}
	checkForgotten("after forget")

	// The case goes on, and its figures with it.
	mustStatus(t, "lead resolves", s.Do("POST", "/v1/cases/"+id+"/resolve", lead, map[string]string{"note": "fixed"}, nil), 200)
	mustStatus(t, "verify", s.Do("POST", "/v1/cases/"+id+"/verify", street, map[string]any{"accepted": true}, nil), 200)

	// A restart and a replay from the log change nothing.
	s.Stop()
	grepDataFolder(t, s)
	s.Restart()
	checkForgotten("after restart")
	replay := exec.Command(buildWhistleCLI(t), "replay", "--quiet")
	replay.Env = append(os.Environ(), "WHISTLE_URL="+s.URL, "WHISTLE_TOKEN="+s.Token(auditor))
	out, err := replay.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "no differences") {
		t.Fatalf("whistle replay: %v\n%s", err, out)
	}
	mustNotHoldRequester(t, "whistle replay's output", out)
	checkForgotten("after replay")
	mustNotHoldRequester(t, "whistled's log", []byte(s.Logs()))
}
