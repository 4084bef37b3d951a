package httpapi_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/srdgd/srdgd/publish"
	"github.com/srdgd/srdgd/publish/httpapi"
	"github.com/srdgd/srdgd/publish/metrics"
)

const token = "s3cret-token-for-tests-0123456789"

func TestNewValidates(t *testing.T) {
	hist := &memHistory{}
	cases := []struct {
		name string
		o    httpapi.Options
		want string // substring of the error; "" = accepted
		is   error
	}{
		{"loopback v4 without token", httpapi.Options{Listen: "127.0.0.1:0"}, "", nil},
		{"loopback v6 without token", httpapi.Options{Listen: "[::1]:0"}, "", nil},
		{"localhost without token", httpapi.Options{Listen: "localhost:0"}, "", nil},
		{"default listen", httpapi.Options{}, "", nil},
		{"any v4 without token", httpapi.Options{Listen: "0.0.0.0:8080"}, `listen "0.0.0.0:8080" is not a loopback address`, httpapi.ErrNoToken},
		{"all interfaces without token", httpapi.Options{Listen: ":8080"}, `listen ":8080" is not a loopback address`, httpapi.ErrNoToken},
		{"any v6 without token", httpapi.Options{Listen: "[::]:8080"}, "not a loopback address", httpapi.ErrNoToken},
		{"lan address without token", httpapi.Options{Listen: "192.168.1.20:8080"}, "not a loopback address", httpapi.ErrNoToken},
		{"host name without token", httpapi.Options{Listen: "box.local:8080"}, "not a loopback address", httpapi.ErrNoToken},
		{"any v4 with token", httpapi.Options{Listen: "0.0.0.0:8080", Token: token}, "", nil},
		{"no port", httpapi.Options{Listen: "127.0.0.1"}, `listen "127.0.0.1"`, nil},
		{"token with space", httpapi.Options{Token: "a b"}, "white space", nil},
		{"cert without key", httpapi.Options{TLSCertFile: "c.pem"}, "give both or neither", nil},
		{"missing cert files", httpapi.Options{TLSCertFile: "nope.pem", TLSKeyFile: "nope.key"}, "tls cert nope.pem", nil},
		{"negative body limit", httpapi.Options{MaxBodyBytes: -1}, "max body bytes -1", nil},
		{"hits without auditor", httpapi.Options{Hits: hist}, "an auditor is required", nil},
		{"hits with auditor", httpapi.Options{Hits: hist, Auditor: hist}, "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := httpapi.New(c.o)
			if c.want == "" {
				if err != nil {
					t.Fatalf("New: %v, want accepted", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New: %v, want an error containing %q", err, c.want)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("New: %v, want errors.Is %v", err, c.is)
			}
		})
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s, err := httpapi.New(httpapi.Options{Listen: "127.0.0.1:0", Token: token})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	<-s.Ready()
	tr := &http.Transport{}
	c := &http.Client{Transport: tr}
	resp, err := c.Get("http://" + s.Addr().String() + "/api/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("health: %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v, want nil", err)
	}
	tr.CloseIdleConnections()
	if _, err := net.Dial("tcp", s.Addr().String()); err == nil {
		t.Error("still listening after Run returned")
	}
	if err := s.Run(context.Background()); err == nil {
		t.Error("a second Run succeeded")
	}
}

func TestRunListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, err := httpapi.New(httpapi.Options{Listen: ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "listen "+ln.Addr().String()) {
		t.Fatalf("Run on a busy port: %v", err)
	}
}

// liveEcho stands in for nothing: it is a real handler the WHEP mount must
// reach only when authenticated (the live view itself is tested in
// publish/live).
var liveEcho = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(r.Method + " " + r.URL.Path))
})

func TestAuth(t *testing.T) {
	hist := &memHistory{}
	reg, err := metrics.New(metrics.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, httpapi.Options{Token: token, Hits: hist, Auditor: hist, Live: liveEcho, Metrics: reg.Handler(), AuthFailBurst: 100})
	bearer := "Authorization: Bearer " + token

	// a session cookie from a login
	lr := r.do(t, "POST", "/api/v1/login", strings.NewReader(`{"token":"`+token+`"}`), "Content-Type: application/json")
	if lr.status != http.StatusOK {
		t.Fatalf("login: %d %s", lr.status, lr.body)
	}
	var cookie *http.Cookie
	for _, c := range (&http.Response{Header: lr.header}).Cookies() {
		if c.Name == "srdgd_session" {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.MaxAge <= 0 || len(cookie.Value) < 40 {
		t.Fatalf("login cookie %+v: want HttpOnly, SameSite=Strict, a max age and a long random id", cookie)
	}
	if strings.Contains(lr.header.Get("Set-Cookie"), token) {
		t.Fatal("the cookie holds the token")
	}
	sess := "Cookie: srdgd_session=" + cookie.Value

	cases := []struct {
		name, method, path string
		hdr                []string
		want               int
	}{
		{"health needs nothing", "GET", "/api/v1/health", nil, 200},
		{"session state needs nothing", "GET", "/api/v1/session", nil, 200},
		{"session state with a bad token", "GET", "/api/v1/session", []string{"Authorization: Bearer nope"}, 401},
		{"no token", "GET", "/api/v1/version", nil, 401},
		{"bad token", "GET", "/api/v1/version", []string{"Authorization: Bearer nope"}, 401},
		{"token prefix", "GET", "/api/v1/version", []string{"Authorization: Bearer " + token[:10]}, 401},
		{"basic scheme", "GET", "/api/v1/version", []string{"Authorization: Basic " + token}, 401},
		{"good token", "GET", "/api/v1/version", []string{bearer}, 200},
		{"lower-case scheme", "GET", "/api/v1/version", []string{"Authorization: bearer " + token}, 200},
		{"session cookie", "GET", "/api/v1/cameras", []string{sess}, 200},
		{"unknown session", "GET", "/api/v1/cameras", []string{"Cookie: srdgd_session=AAAA"}, 401},
		{"hits need auth", "GET", "/api/v1/hits", nil, 401},
		{"gallery needs auth", "GET", "/api/v1/gallery", nil, 401},
		{"audit needs auth", "GET", "/api/v1/audit", nil, 401},
		{"unknown api path needs auth first", "GET", "/api/v1/nope", nil, 401},
		{"unknown api path", "GET", "/api/v1/nope", []string{bearer}, 404},
		{"metrics without token", "GET", "/metrics", nil, 401},
		{"metrics with token", "GET", "/metrics", []string{bearer}, 200},
		{"whep without token", "POST", "/whep/cam1", nil, 401},
		{"whep with token", "POST", "/whep/cam1", []string{bearer}, 200},
		{"whep list without token", "GET", "/whep", nil, 401},
		{"whep list with token", "GET", "/whep", []string{bearer}, 200},
		{"whep with session", "DELETE", "/whep/cam1/abc", []string{sess, "Origin: " + r.url}, 200},
		{"whep with session, no origin", "DELETE", "/whep/cam1/abc", []string{sess}, 403},
		{"whep cross-origin with session", "POST", "/whep/cam1", []string{sess, "Origin: http://evil.example"}, 403},
		{"page needs nothing", "GET", "/", nil, 200},
		{"wrong method", "DELETE", "/api/v1/version", []string{bearer}, 405},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := r.do(t, c.method, c.path, nil, c.hdr...)
			if got.status != c.want {
				t.Fatalf("%s %s: %d %s, want %d", c.method, c.path, got.status, got.body, c.want)
			}
			if got.status >= 400 && strings.HasPrefix(c.path, "/api/") {
				got.apiErr(t)
			}
			if got.status == 401 && got.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}

	if got := r.do(t, "GET", "/metrics", nil, bearer); !strings.Contains(string(got.body), `srdgd_build_info{goversion=`) {
		t.Errorf("metrics through the API lack srdgd_build_info: %.200s", got.body)
	}
	for _, c := range []struct {
		hdr  []string
		want string
	}{{nil, `{"authenticated":false}`}, {[]string{sess}, `{"authenticated":true,"actor":"session:`}, {[]string{bearer}, `{"authenticated":true,"actor":"token","auth":"token"}`}} {
		if got := r.do(t, "GET", "/api/v1/session", nil, c.hdr...); !strings.HasPrefix(string(got.body), c.want) {
			t.Errorf("session with %q: %s, want %s", c.hdr, got.body, c.want)
		}
	}
	// the login was audited, without the token or cookie
	if got := hist.auditActions(); len(got) != 1 || got[0] != "login " {
		t.Errorf("audit after login: %q", got)
	}
	for _, a := range hist.records() {
		if strings.Contains(a.Actor, cookie.Value[:8]) {
			t.Errorf("audit actor %q shows the session id", a.Actor)
		}
	}
	// logout ends the session
	if got := r.do(t, "POST", "/api/v1/logout", nil, sess, "Origin: "+r.url); got.status != http.StatusNoContent {
		t.Fatalf("logout: %d", got.status)
	}
	if got := r.do(t, "GET", "/api/v1/cameras", nil, sess); got.status != http.StatusUnauthorized {
		t.Fatalf("after logout: %d", got.status)
	}
}

func TestAuthRateLimit(t *testing.T) {
	r := start(t, httpapi.Options{Token: token, AuthFailBurst: 3, AuthFailEvery: time.Hour})
	// a session opened before the attack survives it
	lr := r.do(t, "POST", "/api/v1/login", strings.NewReader(`{"token":"`+token+`"}`))
	cookie := (&http.Response{Header: lr.header}).Cookies()[0]
	for i := range 3 {
		got := r.do(t, "GET", "/api/v1/version", nil, "Authorization: Bearer wrong")
		if got.status != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d, want 401", i+1, got.status)
		}
	}
	cases := []struct {
		name, method, path, body string
		hdr                      []string
		want                     int
	}{
		{"another wrong token", "GET", "/api/v1/version", "", []string{"Authorization: Bearer wrong"}, 429},
		{"the right token is not even checked", "GET", "/api/v1/version", "", []string{"Authorization: Bearer " + token}, 429},
		{"login is limited too", "POST", "/api/v1/login", `{"token":"` + token + `"}`, nil, 429},
		{"an existing session still works", "GET", "/api/v1/version", "", []string{"Cookie: srdgd_session=" + cookie.Value}, 200},
		{"health is open", "GET", "/api/v1/health", "", nil, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := r.do(t, c.method, c.path, strings.NewReader(c.body), c.hdr...)
			if got.status != c.want {
				t.Fatalf("%d %s, want %d", got.status, got.body, c.want)
			}
			if c.want == 429 {
				if ra := got.header.Get("Retry-After"); ra == "" || ra == "0" {
					t.Errorf("Retry-After %q", ra)
				}
				got.apiErr(t)
			}
		})
	}
}

func TestJSONErrors(t *testing.T) {
	r := start(t, httpapi.Options{Token: token, MaxBodyBytes: 256, AuthFailBurst: 100})
	cases := []struct {
		name, body, ctype string
		want              int
		field, msg        string
	}{
		{"malformed", `{"token":`, "application/json", 400, "", "malformed JSON"},
		{"syntax error", `{"token" "x"}`, "application/json", 400, "", "malformed JSON at byte"},
		{"empty", ``, "application/json", 400, "", "empty body"},
		{"unknown field", `{"token":"x","user":"root"}`, "application/json", 400, "user", `unknown field "user"`},
		{"wrong type", `{"token":42}`, "application/json", 400, "token", "want a JSON string"},
		{"trailing data", `{"token":"x"} {}`, "application/json", 400, "", "data after the object"},
		{"missing token", `{}`, "application/json", 400, "token", "token is required"},
		{"not json", `token=x`, "application/x-www-form-urlencoded", 415, "", "want application/json"},
		{"oversized", `{"token":"` + strings.Repeat("x", 300) + `"}`, "application/json", 413, "", "larger than 256 bytes"},
		{"wrong token", `{"token":"x"}`, "application/json", 401, "token", "wrong token"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := r.do(t, "POST", "/api/v1/login", strings.NewReader(c.body), "Content-Type: "+c.ctype)
			if got.status != c.want {
				t.Fatalf("%d %s, want %d", got.status, got.body, c.want)
			}
			msg, field := got.apiErr(t)
			if field != c.field || !strings.Contains(msg, c.msg) {
				t.Errorf("error %q field %q, want %q in the message and field %q", msg, field, c.msg, c.field)
			}
		})
	}
}

func TestHeadersAndPage(t *testing.T) {
	r := start(t, httpapi.Options{Token: token})
	cases := []struct {
		path     string
		want     int
		ctype    string
		contains string
	}{
		{"/", 200, "text/html", `<script type="module" src="js/main.js">`},
		{"/js/main.js", 200, "text/javascript", "import"},
		{"/style.css", 200, "text/css", "body"},
		{"/js/", 404, "application/json", ""},
		{"/nope.html", 404, "", ""},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			got := r.do(t, "GET", c.path, nil)
			if got.status != c.want {
				t.Fatalf("%d, want %d", got.status, c.want)
			}
			if c.ctype != "" && !strings.HasPrefix(got.header.Get("Content-Type"), c.ctype) {
				t.Errorf("content type %q, want %q", got.header.Get("Content-Type"), c.ctype)
			}
			if !strings.Contains(string(got.body), c.contains) {
				t.Errorf("body lacks %q", c.contains)
			}
			csp := got.header.Get("Content-Security-Policy")
			for _, want := range []string{"script-src 'self'", "frame-ancestors 'none'", "default-src 'none'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("CSP %q lacks %q", csp, want)
				}
			}
			if strings.Contains(csp, "unsafe-inline") {
				t.Errorf("CSP %q allows inline code", csp)
			}
			if got.header.Get("X-Content-Type-Options") != "nosniff" {
				t.Error("no X-Content-Type-Options: nosniff")
			}
		})
	}
	if got := r.do(t, "POST", "/", nil); got.status != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d", got.status)
	}
}

func TestCamerasVersionSchemas(t *testing.T) {
	cams := func() []publish.CameraStatus {
		return []publish.CameraStatus{{Camera: "door", State: "streaming", Connected: true, FPS: 25}, {Camera: "yard", State: "reconnecting"}}
	}
	r := start(t, httpapi.Options{
		Cameras: cams, Viewable: func() []string { return []string{"door"} }, Live: liveEcho,
		Version: httpapi.VersionInfo{Version: "1.2.3", Models: map[string]string{"score": "score_x8"}},
		Schemas: map[string][]byte{"hit": []byte(`{"$schema":"https://json-schema.org/draft/2020-12/schema"}`)},
	})
	var cr struct {
		Cameras []struct {
			Camera    string `json:"camera"`
			Connected bool   `json:"connected"`
			Live      bool   `json:"live"`
		} `json:"cameras"`
	}
	r.do(t, "GET", "/api/v1/cameras", nil).json(t, &cr)
	if len(cr.Cameras) != 2 || !cr.Cameras[0].Live || cr.Cameras[1].Live || !cr.Cameras[0].Connected {
		t.Errorf("cameras: %+v", cr)
	}
	var v httpapi.VersionInfo
	r.do(t, "GET", "/api/v1/version", nil).json(t, &v)
	if v.Version != "1.2.3" || v.Go == "" || v.Models["score"] != "score_x8" {
		t.Errorf("version: %+v", v)
	}
	if got := r.do(t, "GET", "/api/v1/schemas/hit", nil); got.status != 200 || got.header.Get("Content-Type") != "application/schema+json" {
		t.Errorf("schema: %d %q", got.status, got.header.Get("Content-Type"))
	}
	if got := r.do(t, "GET", "/api/v1/schemas/nope", nil); got.status != 404 {
		t.Errorf("unknown schema: %d", got.status)
	}
	if got := r.do(t, "GET", "/api/v1/hits", nil); got.status != http.StatusServiceUnavailable {
		t.Errorf("hits without a history: %d", got.status)
	}
	var sess struct {
		Authenticated bool
		Actor, Auth   string
	}
	r.do(t, "GET", "/api/v1/session", nil).json(t, &sess)
	if !sess.Authenticated || sess.Auth != "none" || sess.Actor != "anonymous" {
		t.Errorf("session without a token: %+v", sess)
	}
}

func TestHealth(t *testing.T) {
	var unhealthy atomic.Bool
	r := start(t, httpapi.Options{Token: token, Health: func(context.Context) error {
		if !unhealthy.Load() {
			return nil
		}
		return errors.New("camera door: no frames for 30s")
	}})
	if got := r.do(t, "GET", "/api/v1/health", nil); got.status != 200 || string(got.body) != "{\"status\":\"ok\"}\n" {
		t.Errorf("healthy: %d %s", got.status, got.body)
	}
	unhealthy.Store(true)
	got := r.do(t, "GET", "/api/v1/health", nil)
	if got.status != http.StatusServiceUnavailable || strings.Contains(string(got.body), "door") {
		t.Errorf("unhealthy: %d %s (no details without a token)", got.status, got.body)
	}
	got = r.do(t, "GET", "/api/v1/health", nil, "Authorization: Bearer "+token)
	if got.status != http.StatusServiceUnavailable || !strings.Contains(string(got.body), `"error":"camera door: no frames for 30s"`) {
		t.Errorf("unhealthy with a token: %d %s (want the reason)", got.status, got.body)
	}
}

// TestHealthCameras: a camera that is not streaming (auth_failed here) makes
// health "degraded" but still 200, so that nothing restarts the daemon for
// it; the states are counted, and which cameras are down and why is said to
// an authenticated caller only.
func TestHealthCameras(t *testing.T) {
	var yard atomic.Value
	yard.Store("connected")
	at := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	r := start(t, httpapi.Options{Token: token, Health: func(context.Context) error { return nil },
		Cameras: func() []publish.CameraStatus {
			st := yard.Load().(string)
			c := publish.CameraStatus{Camera: "yard", State: st, Connected: st == "connected"}
			if !c.Connected {
				c.LastError, c.LastErrorAt, c.Reconnects = "dial tcp 10.0.0.9:554: connect: connection refused", at, 4
			}
			return []publish.CameraStatus{{Camera: "door", State: "connected", Connected: true}, c}
		}})
	down := func(state string) string {
		return `,"down":[{"camera":"yard","state":"` + state + `","last_error":"dial tcp 10.0.0.9:554: connect: connection refused","last_error_at":"2026-11-26T08:00:00Z","reconnects":4}]`
	}
	cases := []struct {
		yard, body, details string
	}{
		{"connected", `{"status":"ok","cameras":{"connected":2}}`, ""},
		{"auth_failed", `{"status":"degraded","cameras":{"auth_failed":1,"connected":1}}`, down("auth_failed")},
		{"failed", `{"status":"degraded","cameras":{"connected":1,"failed":1}}`, down("failed")},
		{"backoff", `{"status":"degraded","cameras":{"backoff":1,"connected":1}}`, down("backoff")},
	}
	for _, c := range cases {
		t.Run(c.yard, func(t *testing.T) {
			yard.Store(c.yard)
			got := r.do(t, "GET", "/api/v1/health", nil)
			if got.status != 200 || strings.TrimSpace(string(got.body)) != c.body {
				t.Errorf("health: %d %s, want 200 %s", got.status, got.body, c.body)
			}
			want := strings.TrimSuffix(c.body, "}") + c.details + "}"
			got = r.do(t, "GET", "/api/v1/health", nil, "Authorization: Bearer "+token)
			if got.status != 200 || strings.TrimSpace(string(got.body)) != want {
				t.Errorf("health with a token: %d %s\nwant 200 %s", got.status, got.body, want)
			}
		})
	}
}
