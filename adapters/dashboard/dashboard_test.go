package dashboard_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/whistle-gov/whistle/adapters/dashboard"
	"github.com/whistle-gov/whistle/adapters/httpapi"
	"github.com/whistle-gov/whistle/domain"
	"go.uber.org/zap"
)

type tokens map[string]domain.Actor

func (t tokens) Authenticate(token string) (domain.Actor, bool) {
	a, ok := t[token]
	return a, ok
}

func newServer(t *testing.T) (*httptest.Server, *dashboard.Dashboard) {
	t.Helper()
	d, err := dashboard.New()
	if err != nil {
		t.Fatal(err)
	}
	api := httpapi.New(httpapi.Config{
		Auth:      tokens{"street-token": {Role: domain.ActorStreet, ID: "longqiao"}, "dept-token": {Role: domain.ActorDepartment, ID: "ecology-bureau"}},
		Log:       zap.NewNop(),
		Dashboard: d,
	})
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return srv, d
}

func get(t *testing.T, url string, headers ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestAssetsServedWithContentTypes(t *testing.T) {
	srv, d := newServer(t)
	want := map[string]string{
		".html": "text/html; charset=utf-8",
		".css":  "text/css; charset=utf-8",
		".js":   "text/javascript; charset=utf-8",
		".svg":  "image/svg+xml",
	}
	assets := d.Assets()
	for _, p := range []string{"/ui/app.js", "/ui/i18n.js", "/ui/app.css", "/ui/icon.svg", "/ui/index.html"} {
		if !slices.Contains(assets, p) {
			t.Errorf("asset %s is not embedded; have %v", p, assets)
		}
	}
	for _, p := range assets {
		resp, body := get(t, srv.URL+p)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", p, resp.StatusCode)
			continue
		}
		if got := resp.Header.Get("Content-Type"); got != want[path.Ext(p)] {
			t.Errorf("GET %s: Content-Type %q, want %q", p, got, want[path.Ext(p)])
		}
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q", p, got)
		}
		if got := resp.Header.Get("Content-Security-Policy"); got != dashboard.ContentSecurityPolicy {
			t.Errorf("GET %s: Content-Security-Policy %q", p, got)
		}
		if len(body) == 0 {
			t.Errorf("GET %s: empty body", p)
		}
	}

	resp, page := get(t, srv.URL+"/")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != want[".html"] {
		t.Fatalf("GET /: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// Every asset the page names is served.
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 4 {
		t.Fatalf("the page names only %d assets: %v", len(refs), refs)
	}
	for _, m := range refs {
		ref := m[1]
		if ref == "#main" {
			continue
		}
		if !slices.Contains(assets, ref) {
			t.Errorf("the page names %s, which is not an embedded asset", ref)
		}
	}

	resp, body := get(t, srv.URL+"/ui/nope.js")
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, `"not_found"`) {
		t.Errorf("GET /ui/nope.js: %d %s", resp.StatusCode, body)
	}
	// The API's own routes still answer as before.
	resp, _ = get(t, srv.URL+"/healthz")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz: %d", resp.StatusCode)
	}
	resp, _ = get(t, srv.URL+"/v1/nothing")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /v1/nothing: %d", resp.StatusCode)
	}
}

// Nothing is fetched from elsewhere at run time: no asset names another
// host. The SVG namespace is a name, not a fetch, and is the one exception.
func TestNoAssetReferencesAnExternalURL(t *testing.T) {
	srv, d := newServer(t)
	external := regexp.MustCompile(`(?i)(?:https?:|wss?:|ftp:)?//[a-z0-9.-]+\.[a-z]{2,}|@import|url\(\s*['"]?(?:https?:|//)`)
	allowed := []string{"http://www.w3.org/2000/svg"}
	for _, p := range d.Assets() {
		_, body := get(t, srv.URL+p)
		for _, a := range allowed {
			body = strings.ReplaceAll(body, a, "")
		}
		if m := external.FindString(body); m != "" {
			t.Errorf("%s references %q", p, m)
		}
	}
	_, page := get(t, srv.URL+"/")
	for _, m := range regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page, -1) {
		if !strings.HasPrefix(m[1], "/ui/") && m[1] != "#main" {
			t.Errorf("the page loads %s from outside /ui/", m[1])
		}
	}
	// The script sends the token in a header: it never builds a URL with it.
	_, js := get(t, srv.URL+"/ui/app.js")
	if strings.Contains(js, "new EventSource") {
		t.Error("app.js uses EventSource, which cannot send the Authorization header")
	}
	if regexp.MustCompile(`[?&](?:token|access_token)=`).MatchString(js) {
		t.Error("app.js puts a token in a URL")
	}
}

func TestPageLanguageFollowsAcceptLanguage(t *testing.T) {
	for header, want := range map[string]string{
		"":                                 "zh",
		"zh-CN,zh;q=0.9,en;q=0.8":          "zh",
		"en-GB,en;q=0.9":                   "en",
		"fr-FR, en;q=0.5, zh;q=0.4":        "en",
		"fr":                               "zh",
		"de;q=0.9, zh-TW;q=0.8, en;q=0.85": "en",
		"EN-us":                            "en",
		"en;q=0, zh;q=0.1":                 "zh",
	} {
		if got := dashboard.PickLanguage(header); got != want {
			t.Errorf("PickLanguage(%q) = %q, want %q", header, got, want)
		}
	}
	srv, _ := newServer(t)
	resp, page := get(t, srv.URL+"/", "Accept-Language", "en-US,en;q=0.9")
	if !strings.Contains(page, `<html lang="en" data-server-lang="en">`) || resp.Header.Get("Content-Language") != "en" {
		t.Errorf("English page: Content-Language %q, head %.80q", resp.Header.Get("Content-Language"), page)
	}
	if !strings.Contains(resp.Header.Get("Vary"), "Accept-Language") {
		t.Errorf("Vary %q lacks Accept-Language", resp.Header.Get("Vary"))
	}
	resp, page = get(t, srv.URL+"/", "Accept-Language", "zh-CN")
	if !strings.Contains(page, `<html lang="zh-CN" data-server-lang="zh">`) || resp.Header.Get("Content-Language") != "zh" {
		t.Errorf("Chinese page: Content-Language %q, head %.80q", resp.Header.Get("Content-Language"), page)
	}
}

func TestMeNamesTheTokensPrincipal(t *testing.T) {
	srv, _ := newServer(t)
	for tok, want := range map[string]httpapi.Me{
		"street-token": {Role: "street", ID: "longqiao"},
		"dept-token":   {Role: "department", ID: "ecology-bureau"},
	} {
		resp, body := get(t, srv.URL+"/v1/me", "Authorization", "Bearer "+tok)
		var got httpapi.Me
		if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &got) != nil || got != want {
			t.Errorf("GET /v1/me with %s: %d %s, want %+v", tok, resp.StatusCode, body, want)
		}
	}
	for _, auth := range []string{"", "Bearer nope"} {
		resp, body := get(t, srv.URL+"/v1/me", "Authorization", auth)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"unauthorized"`) {
			t.Errorf("GET /v1/me with %q: %d %s", auth, resp.StatusCode, body)
		}
	}
}

// Every string the script asks for exists in both languages, and the two
// dictionaries hold the same keys.
func TestBothLanguagesHaveEveryString(t *testing.T) {
	srv, _ := newServer(t)
	_, dict := get(t, srv.URL+"/ui/i18n.js")
	zhPart, enPart, ok := strings.Cut(dict, "\n  en: {")
	if !ok {
		t.Fatal("i18n.js has no en block")
	}
	keyRE := regexp.MustCompile(`(?m)(?:^\s*|[{,]\s*)([A-Za-z_]+): '`)
	keys := func(s string) map[string]bool {
		out := map[string]bool{}
		for _, m := range keyRE.FindAllStringSubmatch(s, -1) {
			out[m[1]] = true
		}
		return out
	}
	zh, en := keys(zhPart), keys(enPart)
	if len(zh) < 100 {
		t.Fatalf("found only %d Chinese strings", len(zh))
	}
	for k := range zh {
		if !en[k] {
			t.Errorf("%s has no English string", k)
		}
	}
	for k := range en {
		if !zh[k] {
			t.Errorf("%s has no Chinese string", k)
		}
	}
	_, js := get(t, srv.URL+"/ui/app.js")
	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`\bt\('([A-Za-z_]+)'\s*[,)]`).FindAllStringSubmatch(js, -1) {
		used[m[1]] = true
	}
	// Keys built from values: statuses, roles, kinds, urgencies, ratings,
	// event types, views.
	for _, k := range []string{
		"s_routed", "s_in_progress", "s_resolved", "s_closed", "s_unassigned",
		"a_assigned", "a_reported", "a_resolved", "a_declined", "a_lapsed",
		"r_lead", "r_assist", "r_offer", "k_issue", "k_dispute", "k_need",
		"u_routine", "u_urgent", "u_emergency", "r_satisfied", "r_basically_satisfied", "r_unsatisfied",
		"m_success", "m_failure", "role_street", "role_department", "role_unit", "role_auditor",
		"v_raise", "v_cases", "v_figures", "v_overdue", "v_queue", "v_timeline",
		"t_raised", "t_closed", "t_closure", "t_response", "t_mediation", "t_satisfaction",
		"live", "connecting", "offline", "denied", "report", "progress", "resolve", "decline", "claim", "verify", "rate", "route",
	} {
		used[k] = true
	}
	for _, typ := range []string{domain.TypeWhistleRaised, domain.TypeProgressNoted, domain.TypeResolutionVerified,
		domain.TypeResolutionRejected, domain.TypeCaseClosed, domain.TypeSatisfactionRated, domain.TypeNeedClaimed,
		"AssignmentMade", "AssignmentReported", "AssignmentOverdue", "CaseEscalated", "AssignmentDeclined", "AssignmentResolved"} {
		used["ev_"+typ] = true
	}
	if len(used) < 80 {
		t.Fatalf("found only %d strings used by app.js", len(used))
	}
	for k := range used {
		if !zh[k] || !en[k] {
			t.Errorf("app.js uses %s, missing in zh=%v en=%v", k, zh[k], en[k])
		}
	}
}
