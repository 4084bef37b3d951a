package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/srdgd/srdgd/publish/httpapi"
)

// login opens a session on r and returns its Cookie header.
func login(t *testing.T, r *running) string {
	t.Helper()
	lr := r.do(t, "POST", "/api/v1/login", strings.NewReader(`{"token":"`+token+`"}`), "Content-Type: application/json")
	for _, c := range (&http.Response{Header: lr.header}).Cookies() {
		if c.Name == "srdgd_session" {
			return "Cookie: srdgd_session=" + c.Value
		}
	}
	t.Fatalf("login: %d %s: no session cookie", lr.status, lr.body)
	return ""
}

// TestCSRF: a change authenticated by the session cookie needs a same-origin
// Origin, or without one Sec-Fetch-Site: same-origin or a same-origin
// Referer; without a token configured, a change showing another origin is
// refused; bearer-token requests are not affected. Every state-changing
// method goes through the same rule, on the WHEP mount and on the API.
func TestCSRF(t *testing.T) {
	withToken := start(t, httpapi.Options{Token: token, Live: liveEcho})
	noToken := start(t, httpapi.Options{Live: liveEcho})
	sess := login(t, withToken)
	self, other := withToken.url, noToken.url // another port on the same host is another origin
	bearer := "Authorization: Bearer " + token

	type auth int
	const (
		cookie auth = iota
		bearerOnly
		cookieAndBearer
		nothing   // token configured, no credentials
		anonymous // no token configured
	)
	cases := []struct {
		name string
		auth auth
		hdr  []string
		want int // for /whep/cam1/abc, which answers 200 once through
	}{
		{"cookie, same Origin", cookie, []string{"Origin: " + self}, 200},
		{"cookie, same host over https (proxy)", cookie, []string{"Origin: " + strings.Replace(self, "http:", "https:", 1)}, 200},
		{"cookie, foreign Origin", cookie, []string{"Origin: https://evil.example"}, 403},
		{"cookie, Origin of another port", cookie, []string{"Origin: " + other}, 403},
		{"cookie, opaque Origin", cookie, []string{"Origin: null"}, 403},
		{"cookie, foreign Origin wins over same-origin fetch metadata", cookie, []string{"Origin: https://evil.example", "Sec-Fetch-Site: same-origin"}, 403},
		{"cookie, no origin headers", cookie, nil, 403},
		{"cookie, Sec-Fetch-Site same-origin", cookie, []string{"Sec-Fetch-Site: same-origin"}, 200},
		{"cookie, Sec-Fetch-Site cross-site", cookie, []string{"Sec-Fetch-Site: cross-site"}, 403},
		{"cookie, Sec-Fetch-Site same-site", cookie, []string{"Sec-Fetch-Site: same-site"}, 403},
		{"cookie, Sec-Fetch-Site none", cookie, []string{"Sec-Fetch-Site: none"}, 403},
		{"cookie, cross-site despite a same-origin Referer", cookie, []string{"Sec-Fetch-Site: cross-site", "Referer: " + self + "/"}, 403},
		{"cookie, same-origin Referer", cookie, []string{"Referer: " + self + "/#live"}, 200},
		{"cookie, foreign Referer", cookie, []string{"Referer: https://evil.example/page"}, 403},
		{"cookie, Referer of another port", cookie, []string{"Referer: " + other + "/"}, 403},
		{"cookie, Referer not a URL", cookie, []string{"Referer: ::"}, 403},
		{"bearer, foreign Origin", bearerOnly, []string{"Origin: https://evil.example"}, 200},
		{"bearer, cross-site", bearerOnly, []string{"Sec-Fetch-Site: cross-site"}, 200},
		{"bearer, no origin headers", bearerOnly, nil, 200},
		{"cookie and bearer, cross-site", cookieAndBearer, []string{"Sec-Fetch-Site: cross-site"}, 200},
		{"no credentials, cross-site", nothing, []string{"Sec-Fetch-Site: cross-site"}, 401},
		{"anonymous, no origin headers (curl)", anonymous, nil, 200},
		{"anonymous, same Origin", anonymous, []string{"Origin: " + other}, 200},
		{"anonymous, foreign Origin", anonymous, []string{"Origin: https://evil.example"}, 403},
		{"anonymous, Sec-Fetch-Site cross-site", anonymous, []string{"Sec-Fetch-Site: cross-site"}, 403},
		{"anonymous, Sec-Fetch-Site same-site", anonymous, []string{"Sec-Fetch-Site: same-site"}, 403},
		{"anonymous, Sec-Fetch-Site none", anonymous, []string{"Sec-Fetch-Site: none"}, 200},
		{"anonymous, foreign Referer", anonymous, []string{"Referer: http://evil.example/"}, 403},
	}
	for _, c := range cases {
		for _, method := range []string{"POST", "PUT", "PATCH", "DELETE", "GET"} {
			t.Run(c.name+"/"+method, func(t *testing.T) {
				srv, hdr := withToken, c.hdr
				switch c.auth {
				case cookie:
					hdr = append(hdr, sess)
				case bearerOnly:
					hdr = append(hdr, bearer)
				case cookieAndBearer:
					hdr = append(hdr, sess, bearer)
				case anonymous:
					srv = noToken
				}
				want := c.want
				if method == "GET" && want == 403 {
					want = 200 // reading changes nothing
				}
				got := srv.do(t, method, "/whep/cam1/abc", nil, hdr...)
				if got.status != want {
					t.Fatalf("%s with %q: %d %s, want %d", method, hdr, got.status, got.body, want)
				}
				if want == 403 {
					if msg, _ := got.apiErr(t); !strings.HasPrefix(msg, "cross-origin request refused: ") ||
						!strings.Contains(msg, "Authorization: Bearer") {
						t.Fatalf("403 message %q", msg)
					}
				}
			})
		}
	}

	// The API's own changes take the same rule: a gallery DELETE (503: no
	// gallery here, so through the check) and a logout.
	for _, c := range []struct {
		name, method, path string
		hdr                []string
		want               int
	}{
		{"gallery delete cross-site", "DELETE", "/api/v1/gallery/ada", []string{sess, "Sec-Fetch-Site: cross-site"}, 403},
		{"gallery delete foreign Referer", "DELETE", "/api/v1/gallery/ada", []string{sess, "Referer: https://evil.example/"}, 403},
		{"gallery delete same origin", "DELETE", "/api/v1/gallery/ada", []string{sess, "Origin: " + self}, 503},
		{"enrol cross-site", "POST", "/api/v1/gallery", []string{sess, "Sec-Fetch-Site: cross-site"}, 403},
		{"logout cross-site", "POST", "/api/v1/logout", []string{sess, "Sec-Fetch-Site: cross-site"}, 403},
		{"the session survived", "GET", "/api/v1/version", []string{sess}, 200},
		{"logout same origin", "POST", "/api/v1/logout", []string{sess, "Sec-Fetch-Site: same-origin"}, 204},
		{"the session is gone", "GET", "/api/v1/version", []string{sess}, 401},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := withToken.do(t, c.method, c.path, nil, c.hdr...); got.status != c.want {
				t.Fatalf("%s %s: %d %s, want %d", c.method, c.path, got.status, got.body, c.want)
			}
		})
	}
}

// TestLoopbackHostWithoutToken: without a token (loopback listen only)
// every request, reads included, must name this machine in its Host, so a
// rebound DNS name cannot reach the API from a browser; with a token the
// Host does not matter.
func TestLoopbackHostWithoutToken(t *testing.T) {
	open := start(t, httpapi.Options{})
	withToken := start(t, httpapi.Options{Token: token})
	cases := []struct {
		host string
		want int
	}{
		{"127.0.0.1:8080", 200},
		{"127.1.2.3", 200},
		{"localhost:8080", 200},
		{"LOCALHOST", 200},
		{"[::1]:8080", 200},
		{"evil.example:8080", 403},
		{"evil.example", 403},
		{"192.0.2.1:8080", 403},
		{"localhost.evil.example", 403},
		{"127.0.0.1.nip.io", 403},
	}
	for _, c := range cases {
		for _, path := range []string{"/api/v1/version", "/"} {
			got := open.do(t, "GET", path, nil, "Host: "+c.host)
			if got.status != c.want {
				t.Errorf("no token, Host %q, GET %s: %d %s, want %d", c.host, path, got.status, got.body, c.want)
			}
			if c.want == 403 && !strings.Contains(string(got.body), "is not this machine") {
				t.Errorf("Host %q: refusal does not say why: %s", c.host, got.body)
			}
		}
		if got := withToken.do(t, "GET", "/api/v1/version", nil, "Host: "+c.host, "Authorization: Bearer "+token); got.status != 200 {
			t.Errorf("with a token, Host %q: %d, want 200", c.host, got.status)
		}
	}
}
