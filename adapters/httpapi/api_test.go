package httpapi_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/whistle-gov/whistle/adapters/coretest"
	"github.com/whistle-gov/whistle/adapters/httpapi"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// commandAPI serves the command and case routes over env; logs records
// what the API logged.
func commandAPI(t *testing.T, env *coretest.Env) (srv *httptest.Server, logs *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	api := httpapi.New(httpapi.Config{Handler: env.Handler, Store: env.Store, Directory: env.Dir, Auth: coretest.Tokens{}, Log: zap.New(core)})
	srv = httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return srv, logs
}

// call sends method path with body (nil: none) and headers, and returns the
// status, the headers and the error body when there is one.
func call(t *testing.T, srv *httptest.Server, method, path, body string, headers ...string) (int, http.Header, httpapi.ErrorBody) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer street:longqiao")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	// Redirects are answers here, not something to follow.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var e httpapi.ErrorBody
	if resp.StatusCode >= 300 {
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Errorf("%s %s: %d with a body that is not the error shape: %q", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, resp.Header, e
}

func TestBearerSchemeIsCaseInsensitive(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	srv, _ := commandAPI(t, env)
	for _, scheme := range []string{"Bearer", "bearer", "BEARER"} {
		if st, _, e := call(t, srv, "GET", "/v1/directory", "", "Authorization", scheme+" street:longqiao"); st != 200 {
			t.Errorf("Authorization: %s ...: %d %+v, want 200", scheme, st, e)
		}
	}
	if st, _, _ := call(t, srv, "GET", "/v1/directory", "", "Authorization", "Basic street:longqiao"); st != 401 {
		t.Errorf("Authorization: Basic ...: %d, want 401", st)
	}
}

func TestWrongMethodIs405UnknownPathIs404(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	srv, _ := commandAPI(t, env)
	id := env.Raise(t, "river-pollution", "routine").ID
	for _, tc := range []struct {
		method, path, allow string
	}{
		{"GET", "/v1/whistles", "POST"},
		{"DELETE", "/v1/whistles", "POST"},
		{"POST", "/v1/cases/" + id, "GET, HEAD"},
		{"PUT", "/v1/cases/" + id + "/report", "POST"},
		{"POST", "/healthz", "GET, HEAD"},
	} {
		st, h, e := call(t, srv, tc.method, tc.path, "")
		if st != 405 || h.Get("Allow") != tc.allow || e.Error.Code != "method_not_allowed" || !strings.Contains(e.Error.Message, tc.method) {
			t.Errorf("%s %s: %d Allow %q %+v, want 405 Allow %q", tc.method, tc.path, st, h.Get("Allow"), e, tc.allow)
		}
	}
	for _, path := range []string{"/v1/nothing", "/v1//cases", "/v1/../healthz", "/v1/cases/./" + id, "//v1/directory", "/v1/cases/.."} {
		st, h, e := call(t, srv, "GET", path, "")
		if st != 404 || e.Error.Code != "not_found" || h.Get("Location") != "" {
			t.Errorf("GET %s: %d Location %q %+v, want a JSON 404 and no redirect", path, st, h.Get("Location"), e)
		}
	}
}

func TestUnknownQueryParameterOnACase(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	srv, _ := commandAPI(t, env)
	id := env.Raise(t, "river-pollution", "routine").ID
	for _, path := range []string{"/v1/cases/" + id + "?asof=2026-01-01T00:00:00Z", "/v1/cases/" + id + "/history?reveal=requester"} {
		st, _, e := call(t, srv, "GET", path, "")
		if st != 400 || e.Error.Code != "unknown_field" {
			t.Errorf("GET %s: %d %+v, want 400 unknown_field", path, st, e)
		}
	}
	if st, _, e := call(t, srv, "GET", "/v1/cases/"+id+"?as_of=2030-01-01T00:00:00Z", ""); st != 200 {
		t.Errorf("as_of: %d %+v", st, e)
	}
}

// TestOversizedBodyGets413WithoutExpect: a client that sends its whole body
// before reading the answer, as Python's urllib does, reads the 413 rather
// than a reset connection.
func TestOversizedBodyGets413WithoutExpect(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	srv, _ := commandAPI(t, env)
	for _, size := range []int{2 << 20, 8 << 20, 32 << 20} {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		body := bytes.Repeat([]byte("x"), size)
		fmt.Fprintf(conn, "POST /v1/whistles HTTP/1.1\r\nHost: whistle\r\nAuthorization: Bearer street:longqiao\r\n"+
			"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", size)
		if _, err := conn.Write(body); err != nil {
			t.Errorf("%d MiB: writing the body: %v", size>>20, err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Errorf("%d MiB: reading the answer: %v", size>>20, err)
		} else if resp.StatusCode != 413 {
			t.Errorf("%d MiB: %d, want 413", size>>20, resp.StatusCode)
		}
		conn.Close()
	}
}

func TestStrictJSONBodies(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	srv, _ := commandAPI(t, env)
	raise := `{"street":"longqiao","community":"wanhui","category":"river-pollution","urgency":"routine","title":%s}`
	for _, tc := range []struct {
		name, body, code, field string
	}{
		{"a field name in another case", `{"Street":"longqiao","community":"wanhui","category":"river-pollution","urgency":"routine","title":"t"}`, "unknown_field", "Street"},
		{"a duplicate key", `{"street":"longqiao","street":"xindu","community":"wanhui","category":"river-pollution","urgency":"routine","title":"t"}`, "malformed", "street"},
		{"invalid UTF-8", fmt.Sprintf(raise, "\"\xff\xfe\""), "malformed", ""},
		{"a lone surrogate", fmt.Sprintf(raise, `"\ud800"`), "malformed", ""},
		{"an unknown field", fmt.Sprintf(raise, `"t","colour":"red"`), "unknown_field", "colour"},
		{"a wrong type", fmt.Sprintf(raise, "7"), "malformed", "title"},
		{"data after the value", fmt.Sprintf(raise, `"t"`) + `{}`, "malformed", ""},
	} {
		st, _, e := call(t, srv, "POST", "/v1/whistles", tc.body)
		if st != 400 || e.Error.Code != tc.code || e.Error.Field != tc.field || e.Error.Message == "" {
			t.Errorf("%s: %d %+v, want 400 %s naming %q", tc.name, st, e, tc.code, tc.field)
		}
	}
	if st, _, e := call(t, srv, "POST", "/v1/whistles", fmt.Sprintf(raise, `"河道有异味"`)); st != 201 {
		t.Fatalf("a valid raise: %d %+v", st, e)
	}
}

// TestRefusedValueIsNotLogged: what a caller typed into an id field (a
// phone number as a category) is answered, but not written to the log.
func TestRefusedValueIsNotLogged(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	srv, logs := commandAPI(t, env)
	const phone = "13800138000"
	body := `{"street":"longqiao","community":"wanhui","category":"` + phone + `","urgency":"routine","title":"t"}`
	if st, _, e := call(t, srv, "POST", "/v1/whistles", body); st != 422 || e.Error.Field != "category" {
		t.Fatalf("raise with a phone number as category: %d %+v", st, e)
	}
	refused := logs.FilterMessage("command refused").All()
	if len(refused) != 1 || refused[0].ContextMap()["field"] != "category" {
		t.Fatalf("command refused lines: %+v", refused)
	}
	for _, entry := range logs.All() {
		for k, v := range entry.ContextMap() {
			if strings.Contains(fmt.Sprint(v), phone) {
				t.Errorf("log line %q quotes the value in %s: %v", entry.Message, k, v)
			}
		}
	}
}
