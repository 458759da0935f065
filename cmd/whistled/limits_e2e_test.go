package main

import (
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/whistle-gov/whistle/cmd/whistled/whistledtest"
)

// TestSlowClientsAreShedAndHealthIsAnswered: many clients that send their
// raise slowly hold the requests in flight; the ones over --max-in-flight
// are answered 503 at once with Retry-After, /healthz is answered 200 all
// along, and each 201 is a case that exists.
func TestSlowClientsAreShedAndHealthIsAnswered(t *testing.T) {
	s := whistledtest.Start(t, "--max-in-flight", "8")
	smp := pickSample(t, s)
	body, _ := json.Marshal(raiseBody(smp.street, smp.community, smp.issue.ID, "routine"))
	token := s.Token("street:" + smp.street)

	stopHealth := make(chan struct{})
	var healthBad, healthOK atomic.Int64
	var healthWG sync.WaitGroup
	healthWG.Add(1)
	go func() {
		defer healthWG.Done()
		client := &http.Client{Timeout: 2 * time.Second}
		for {
			select {
			case <-stopHealth:
				return
			case <-time.After(20 * time.Millisecond):
			}
			resp, err := client.Get(s.URL + "/healthz")
			if err != nil || resp.StatusCode != 200 {
				healthBad.Add(1)
			} else {
				healthOK.Add(1)
			}
			if resp != nil {
				resp.Body.Close()
			}
		}
	}()

	const clients = 40
	type answer struct {
		status     int
		retryAfter string
		code       string
		caseID     string
	}
	answers := make(chan answer, clients)
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pr, pw := io.Pipe()
			go func() {
				// A byte every 30 ms: about 1.5 s in all for the first 50.
				for i := 0; i < len(body); i++ {
					if _, err := pw.Write(body[i : i+1]); err != nil {
						return
					}
					if i < 50 {
						time.Sleep(30 * time.Millisecond)
					}
				}
				pw.Close()
			}()
			req, _ := http.NewRequest("POST", s.URL+"/v1/whistles", pr)
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
			if err != nil {
				pr.CloseWithError(err)
				answers <- answer{status: -1, code: err.Error()}
				return
			}
			defer resp.Body.Close()
			pr.CloseWithError(io.ErrClosedPipe) // a shed request's body is not read
			var v struct {
				CaseID string `json:"case_id"`
				Error  struct {
					Code string `json:"code"`
				} `json:"error"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&v)
			answers <- answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), code: v.Error.Code, caseID: v.CaseID}
		}()
	}
	wg.Wait()
	close(stopHealth)
	healthWG.Wait()
	close(answers)

	counts := map[int]int{}
	for a := range answers {
		counts[a.status]++
		switch a.status {
		case 201:
			var c caseView
			if st := s.Do("GET", "/v1/cases/"+a.caseID, "auditor:auditor", nil, &c); st != 200 || c.CaseID != a.caseID {
				t.Errorf("a 201 for case %s, which reads %d", a.caseID, st)
			}
		case 503:
			if a.retryAfter == "" || a.code != "overloaded" {
				t.Errorf("a 503 with Retry-After %q and code %q, want Retry-After and overloaded", a.retryAfter, a.code)
			}
		default:
			t.Errorf("a slow raise answered %d %s", a.status, a.code)
		}
	}
	t.Logf("%d slow clients: %v; /healthz %d ok, %d not", clients, counts, healthOK.Load(), healthBad.Load())
	if counts[503] == 0 || counts[201] == 0 || counts[201] > 8*3 {
		t.Errorf("answers %v: want some 201 (at most 8 at a time) and some 503", counts)
	}
	if healthBad.Load() > 0 || healthOK.Load() < 10 {
		t.Errorf("/healthz: %d ok, %d not, want 200 throughout", healthOK.Load(), healthBad.Load())
	}
	if st := s.Do("GET", "/v1/directory", "auditor:auditor", nil, nil); st != 200 {
		t.Errorf("after the load: GET /v1/directory %d", st)
	}
}
