package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/srdgd/srdgd/internal/testutil"
	"github.com/srdgd/srdgd/publish/httpapi"
)

// recorder is a WHEP mount that records what reaches it.
type recorder struct {
	mu   sync.Mutex
	seen []string
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.mu.Lock()
	rec.seen = append(rec.seen, r.Method+" "+r.URL.Path)
	rec.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(r.Method + " " + r.URL.Path))
}

func (rec *recorder) changes() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out []string
	for _, s := range rec.seen {
		if m, _, _ := strings.Cut(s, " "); m != "GET" && m != "HEAD" && m != "OPTIONS" {
			out = append(out, s)
		}
	}
	return out
}

// attackPage is served by another origin: another port of the same host, so
// the same site, and the SameSite=Strict session cookie goes along with its
// requests. It tries what a page can do without a CORS answer: no-cors
// POSTs, a DELETE (which needs a preflight), and a form POST that navigates.
const attackPage = `<!doctype html><html><body>
<form id="f" method="POST" action="TARGET/api/v1/logout" enctype="text/plain"><input name="a" value="b"></form>
<script>
async function attack() {
  const out = {};
  const tries = {
    whep_post:   [TARGET + "/whep/cam1",        {method: "POST", mode: "no-cors", credentials: "include", body: "v=0"}],
    whep_delete: [TARGET + "/whep/cam1/abc",    {method: "DELETE", credentials: "include"}],
    gallery_del: [TARGET + "/api/v1/gallery/ada", {method: "DELETE", credentials: "include"}],
    feedback:    [TARGET + "/api/v1/hits/x/feedback", {method: "POST", mode: "no-cors", credentials: "include", body: "{}"}],
    logout:      [TARGET + "/api/v1/logout",    {method: "POST", mode: "no-cors", credentials: "include"}],
  };
  for (const [name, [url, init]] of Object.entries(tries)) {
    try { await fetch(url, init); out[name] = "sent"; } catch (e) { out[name] = "rejected: " + e.name; }
  }
  return out;
}
</script></body></html>`

// TestCSRFInBrowser: real Chromium, logged in on the server's page. A page
// of another origin on the same host sends no-cors POSTs, DELETEs and a form
// POST with the session cookie: Chromium attaches the cookie and an Origin
// header, the server answers 403 naming the Origin, and nothing reaches the
// WHEP mount or ends the session. The page's own fetch with the same methods
// goes through (the rule does not stop the page itself).
func TestCSRFInBrowser(t *testing.T) {
	ctx, _ := testutil.Browser(context.Background(), t, testutil.Chromium(t), testutil.BrowserOptions{})
	rec := &recorder{}
	r := start(t, httpapi.Options{Token: token, Live: rec})
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		page := strings.ReplaceAll(attackPage, "TARGET + ", `"`+r.url+`" + `)
		_, _ = w.Write([]byte(strings.ReplaceAll(page, "TARGET", r.url)))
	}))
	t.Cleanup(evil.Close)
	run := func(name string, a chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, a); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	eval := func(expr string) map[string]string {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		v, err := chromedp.Run(sctx, chromedp.Evaluate[map[string]string](expr, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return v
	}
	status := func(method, path string) string {
		t.Helper()
		return eval(`fetch("` + path + `", {method: "` + method + `"}).then(r => ({status: String(r.status)}))`)["status"]
	}

	// the first action runs on the browser's own context: a timeout on
	// it would stop the browser
	if err := chromedp.Do(ctx, chromedp.Navigate(r.url+"/")); err != nil {
		t.Fatalf("open the page: %v", err)
	}
	login := eval(`fetch("/api/v1/login", {method: "POST", headers: {"Content-Type": "application/json"},
		body: JSON.stringify({token: "` + token + `"})}).then(r => ({status: String(r.status)}))`)
	if login["status"] != "204" && login["status"] != "200" {
		t.Fatalf("login from the page: %v", login)
	}
	if got := status("GET", "/api/v1/version"); got != "200" {
		t.Fatalf("GET /api/v1/version after login: %s", got)
	}

	run("open the other origin's page", chromedp.Navigate(evil.URL+"/"))
	out := eval(`attack()`)
	// no-cors answers from here are rejected by the browser whatever their
	// status (Cross-Origin-Resource-Policy: same-origin), a DELETE fails its
	// preflight: what counts is that nothing reached the handlers
	t.Logf("cross-origin fetches: %v", out)
	for _, name := range []string{"whep_post", "whep_delete", "gallery_del", "feedback", "logout"} {
		if out[name] == "" {
			t.Errorf("%s: not tried (%v)", name, out)
		}
	}
	// the form navigates to the server's answer, which the browser shows
	run("submit the form", chromedp.Evaluate[chromedp.Void](`setTimeout(() => document.getElementById("f").submit(), 0)`))
	var body string
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	testutil.WaitFor(t, wctx, "the form's answer", func() bool {
		v, err := chromedp.Run(wctx, chromedp.Evaluate[string](
			`location.href.endsWith("/api/v1/logout") && document.body ? document.body.innerText : ""`))
		body = v
		return err == nil && body != ""
	})
	if !strings.Contains(body, "cross-origin request refused") || !strings.Contains(body, evil.URL) {
		t.Errorf("the form POST was answered %q, want the 403 naming the Origin %s", body, evil.URL)
	}
	if got := rec.changes(); len(got) != 0 {
		t.Errorf("cross-origin changes reached the WHEP mount: %v", got)
	}

	run("back to the page", chromedp.Navigate(r.url+"/"))
	if got := status("GET", "/api/v1/version"); got != "200" {
		t.Fatalf("the session did not survive the other origin's logout attempts: GET /api/v1/version %s", got)
	}
	for _, c := range []struct{ method, path, want string }{
		{"DELETE", "/whep/cam1/abc", "200"},
		{"POST", "/whep/cam1", "200"},
		{"DELETE", "/api/v1/gallery/ada", "503"}, // no gallery here: through the check
	} {
		if got := status(c.method, c.path); got != c.want {
			t.Errorf("%s %s from the page: %s, want %s", c.method, c.path, got, c.want)
		}
	}
	if got, want := rec.changes(), []string{"DELETE /whep/cam1/abc", "POST /whep/cam1"}; !slices.Equal(got, want) {
		t.Errorf("the page's own changes reaching the WHEP mount: %v, want %v", got, want)
	}
	if got := status("POST", "/api/v1/logout"); got != "204" {
		t.Errorf("logout from the page: %s, want 204", got)
	}
}
