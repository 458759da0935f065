package readmodel_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/whistle-gov/whistle/adapters/casehandler"
	"github.com/whistle-gov/whistle/adapters/coretest"
	"github.com/whistle-gov/whistle/adapters/httpapi"
	"github.com/whistle-gov/whistle/adapters/readmodel"
	"github.com/whistle-gov/whistle/domain"
	"github.com/whistle-gov/whistle/projections"
)

// statsAPI serves the read models' routes over env, caught up with its log.
func statsAPI(t *testing.T, env *coretest.Env) *httpapi.API {
	t.Helper()
	r := start(t, open(t, env, t.TempDir(), env.Dir))
	catchUp(t, env, r.Runner)
	reads, err := readmodel.NewReads(r.Runner, env.Store, env.Dir, env.Log)
	if err != nil {
		t.Fatal(err)
	}
	return httpapi.New(httpapi.Config{
		Handler: env.Handler, Store: env.Store, Directory: env.Dir, Auth: coretest.Tokens{}, Log: env.Log,
		ReadModels: reads,
	})
}

// get answers GET path as principal ("role:id"), decoding the body into out.
func get(t *testing.T, api *httpapi.API, path, principal string, out any) int {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("Authorization", "Bearer "+principal)
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, req)
	if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
		t.Fatalf("GET %s as %s: %d, body %q: %v", path, principal, rec.Code, rec.Body.String(), err)
	}
	return rec.Code
}

// raiseIn raises a whistle as street in one of its communities.
func raiseIn(t *testing.T, env *coretest.Env, street, community, category, urgency string) string {
	t.Helper()
	id := uuid.Must(uuid.NewV7()).String()
	_, err := env.Handler.Execute(context.Background(), casehandler.Request{
		CaseID: id, CommandID: uuid.NewString(), Actor: domain.Actor{Role: domain.ActorStreet, ID: street}, New: true,
		Command: domain.Raise{Street: street, Community: community, Category: category, Urgency: urgency, Title: "河道有异味"},
	})
	if err != nil {
		t.Fatalf("raise %s in %s: %v", category, street, err)
	}
	return id
}

// counted is what a test expects of a group.
type counted struct{ raised, closed, assignments int64 }

func groupsOf(res projections.Result) map[string]counted {
	out := map[string]counted{}
	for _, g := range res.Groups {
		out[g.Key] = counted{g.Raised, g.Closed, g.Assignments}
	}
	return out
}

func sameGroups(got, want map[string]counted) bool {
	if len(got) != len(want) {
		return false
	}
	for k, w := range want {
		if got[k] != w {
			return false
		}
	}
	return true
}

// TestStreetFiguresByCategoryAndUrgency: a street reads its own figures by
// category and by urgency, counting its own cases only; an auditor reads
// any street's with street=; every other reading keeps its rules, and each
// refusal names the parameter and why.
func TestStreetFiguresByCategoryAndUrgency(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	// longqiao: two river pollutions (one closed), a dispute; zhenhai: one
	// river pollution, an emergency.
	closed := env.Raise(t, "river-pollution", "urgent").ID
	env.Do(t, closed, coretest.Ecology, domain.Report{Assignee: coretest.Ecology.ID})
	env.Do(t, closed, coretest.Water, domain.Report{Assignee: coretest.Water.ID})
	env.Do(t, closed, coretest.Ecology, domain.Resolve{Assignee: coretest.Ecology.ID})
	env.Do(t, closed, coretest.Street, domain.Verify{Accepted: true})
	env.Raise(t, "river-pollution", "routine")
	env.Raise(t, "neighbour-dispute", "routine")
	raiseIn(t, env, "zhenhai", "wenxian", "river-pollution", "emergency")
	api := statsAPI(t, env)

	longqiaoByCategory := map[string]counted{"river-pollution": {2, 1, 4}, "neighbour-dispute": {1, 0, 1}}
	zhenhaiByCategory := map[string]counted{"river-pollution": {1, 0, 2}}
	for _, tc := range []struct {
		name, path, principal string
		want                  map[string]counted
	}{
		{"a street by category", "/v1/stats?group_by=category", "street:longqiao", longqiaoByCategory},
		{"a street by category, naming itself", "/v1/stats?group_by=category&street=longqiao", "street:longqiao", longqiaoByCategory},
		{"a street by urgency", "/v1/stats?group_by=urgency", "street:longqiao", map[string]counted{"urgent": {1, 1, 2}, "routine": {2, 0, 3}}},
		{"the other street by category", "/v1/stats?group_by=category", "street:zhenhai", zhenhaiByCategory},
		{"the other street by urgency", "/v1/stats?group_by=urgency", "street:zhenhai", map[string]counted{"emergency": {1, 0, 2}}},
		{"a street by category over a window", "/v1/stats?group_by=category&from=2000-01-01&to=2000-01-02", "street:longqiao", map[string]counted{}},
		{"an auditor, one street by category", "/v1/stats?group_by=category&street=zhenhai", "auditor:auditor", zhenhaiByCategory},
		{"an auditor, one street by urgency", "/v1/stats?group_by=urgency&street=longqiao", "auditor:auditor", map[string]counted{"urgent": {1, 1, 2}, "routine": {2, 0, 3}}},
		{"an auditor, every street by category", "/v1/stats?group_by=category", "auditor:auditor", map[string]counted{"river-pollution": {3, 1, 6}, "neighbour-dispute": {1, 0, 1}}},
		{"an auditor, one street's own group", "/v1/stats?group_by=street&street=zhenhai", "auditor:auditor", map[string]counted{"zhenhai": {1, 0, 2}}},
		{"an auditor, one street's communities", "/v1/stats?group_by=community&street=zhenhai", "auditor:auditor", map[string]counted{"wenxian": {1, 0, 2}}},
		{"a street, still its own group", "/v1/stats", "street:zhenhai", map[string]counted{"zhenhai": {1, 0, 2}}},
		{"a department, still its own group", "/v1/stats", "department:water-bureau", map[string]counted{"water-bureau": {3, 1, 3}}},
	} {
		var res projections.Result
		if st := get(t, api, tc.path, tc.principal, &res); st != http.StatusOK {
			t.Errorf("%s: GET %s as %s: %d, want 200", tc.name, tc.path, tc.principal, st)
			continue
		}
		if got := groupsOf(res); !sameGroups(got, tc.want) {
			t.Errorf("%s: GET %s as %s: groups %v, want %v", tc.name, tc.path, tc.principal, got, tc.want)
		}
	}

	// One street's figures day by day, for an auditor: the street's own days.
	var days projections.Result
	if st := get(t, api, "/v1/stats?group_by=day&street=zhenhai", "auditor:auditor", &days); st != http.StatusOK || days.GroupBy != "day" {
		t.Errorf("zhenhai by day, as the auditor: %d %+v", st, days)
	}
	var raised int64
	for _, g := range days.Groups {
		raised += g.Raised
	}
	if raised != 1 {
		t.Errorf("zhenhai by day, as the auditor: %+v; want days holding its one case", days.Groups)
	}

	for _, tc := range []struct {
		name, path, principal string
		status                int
		field                 string
		says                  []string // the message names what, where and why
	}{
		{"a street naming another street", "/v1/stats?group_by=category&street=zhenhai", "street:longqiao", 403, "street", []string{"longqiao", "zhenhai", "own"}},
		{"a street by assignee", "/v1/stats?group_by=assignee", "street:longqiao", 403, "group_by", []string{"assignee", "other streets"}},
		{"a department naming a street", "/v1/stats?street=longqiao", "department:water-bureau", 403, "street", []string{"street="}},
		{"a department by category", "/v1/stats?group_by=category", "department:water-bureau", 403, "group_by", []string{"category"}},
		{"a unit by urgency", "/v1/stats?group_by=urgency", "unit:putian-telecom", 403, "group_by", []string{"urgency"}},
		{"an unknown street", "/v1/stats?group_by=category&street=atlantis", "auditor:auditor", 422, "street", []string{"atlantis", "test-1"}},
		{"one street by assignee", "/v1/stats?group_by=assignee&street=zhenhai", "auditor:auditor", 422, "group_by", []string{"zhenhai", "assignee", "not kept per street"}},
		{"street given twice", "/v1/stats?group_by=category&street=zhenhai&street=longqiao", "auditor:auditor", 400, "street", []string{"2 times"}},
		{"a misspelt street", "/v1/stats?group_by=category&streets=zhenhai", "street:longqiao", 400, "streets", []string{"street"}},
		{"a bad group_by", "/v1/stats?group_by=district&street=zhenhai", "auditor:auditor", 422, "group_by", []string{"district"}},
	} {
		var e httpapi.ErrorBody
		st := get(t, api, tc.path, tc.principal, &e)
		if st != tc.status || e.Error.Field != tc.field || e.Error.Message == "" {
			t.Errorf("%s: GET %s as %s: %d %+v, want %d naming field %q", tc.name, tc.path, tc.principal, st, e.Error, tc.status, tc.field)
			continue
		}
		for _, s := range tc.says {
			if !strings.Contains(e.Error.Message, s) {
				t.Errorf("%s: message %q does not say %q", tc.name, e.Error.Message, s)
			}
		}
	}
}

// TestStatsDaysAreTheCalendarsDays: figures by day, and from/to given as
// days, are in the calendar's time zone (Asia/Shanghai by default): a case
// raised at 17:00 UTC on 1 December, 01:00 on the 2nd in Shanghai, counts
// on the 2nd.
func TestStatsDaysAreTheCalendarsDays(t *testing.T) {
	raisedAt := time.Date(2026, 12, 1, 17, 0, 0, 0, time.UTC)
	env := coretest.Start(t, coretest.Options{Now: func() time.Time { return raisedAt }})
	env.Raise(t, "river-pollution", "routine")
	api := statsAPI(t, env)

	var byDay projections.Result
	if code := get(t, api, "/v1/stats?group_by=day", "auditor:auditor", &byDay); code != http.StatusOK {
		t.Fatalf("group_by=day: %d", code)
	}
	if got := groupsOf(byDay); !sameGroups(got, map[string]counted{"2026-12-02": {1, 0, 2}}) {
		t.Errorf("by day %v, want the case on 2026-12-02", got)
	}
	for _, tc := range []struct {
		window string
		want   map[string]counted
	}{
		{"from=2026-12-02&to=2026-12-03", map[string]counted{"longqiao": {1, 0, 2}}},
		{"from=2026-12-01&to=2026-12-02", map[string]counted{}},
	} {
		var res projections.Result
		if code := get(t, api, "/v1/stats?group_by=street&"+tc.window, "auditor:auditor", &res); code != http.StatusOK {
			t.Fatalf("%s: %d", tc.window, code)
		}
		if got := groupsOf(res); !sameGroups(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.window, got, tc.want)
		}
		from, _ := time.Parse(time.RFC3339, tc.window[5:15]+"T00:00:00+08:00")
		if res.From == nil || !res.From.Equal(from) {
			t.Errorf("%s: from %v, want midnight in Shanghai, %s", tc.window, res.From, from)
		}
	}
}
