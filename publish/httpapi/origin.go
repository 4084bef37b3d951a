package httpapi

import (
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// sameOriginChanges is the CSRF rule, applied in front of every route: a
// request that changes something (any method but GET, HEAD, OPTIONS) and is
// authenticated by something the browser attaches on its own must come from
// the page's own origin.
//
//   - With the session cookie (and no bearer token) it needs evidence: a
//     same-origin Origin header or, when the browser sent none, Sec-Fetch-Site:
//     same-origin or a same-origin Referer. Every current browser sends Origin
//     on fetch() with such a method, and Sec-Fetch-Site as well; SameSite=Strict
//     alone does not cover a sibling origin on the same site (another port of
//     the same host).
//   - Without a token configured, nothing is needed to authenticate, so a
//     change is refused when one of those headers shows another origin; tools
//     such as curl send none of them and keep working.
//   - Bearer-token requests are not affected: a browser never attaches that
//     header by itself, and a page on another origin cannot set it without a
//     CORS preflight, which is not answered.
func (s *Server) sameOriginChanges(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if safeMethod(r.Method) || hasBearer(r) {
			next.ServeHTTP(w, r)
			return
		}
		var why string
		switch {
		case s.auth.enabled && hasSessionCookie(r):
			why = sameOriginEvidence(r)
		case !s.auth.enabled:
			why = crossOriginEvidence(r)
		}
		if why != "" {
			s.refused.Warn("method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "reason", why)
			writeError(w, http.StatusForbidden, "", "cross-origin request refused: "+why+
				"; changes must come from this server's page, or authenticate with Authorization: Bearer <token>")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// loopbackHostOnly is the DNS-rebinding guard of a server without a token
// (which only a loopback listen allows): every request must name this
// machine in its Host (127.0.0.0/8, ::1 or localhost, with any port). A
// page of another site whose name an attacker points at 127.0.0.1 reaches
// the port, but its requests say Host: attacker.example and are refused,
// reads included (Origin checks cannot catch it: the page's origin is the
// rebound name, equal to its Host). With a token nothing changes: the
// token is what such a page lacks.
func (s *Server) loopbackHostOnly(next http.Handler) http.Handler {
	if s.auth.enabled {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			s.refused.Warn("method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "reason", "host "+quoteHeader(r.Host)+" is not loopback")
			writeError(w, http.StatusForbidden, "", "Host "+quoteHeader(r.Host)+
				" is not this machine: without a token this server answers only requests to 127.0.0.1, [::1] or localhost "+
				"(set publish.http.token_env or token_file to serve other names)")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// loopbackHost reports whether a Host header names this machine.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return isLoopback(strings.ToLower(host))
}

// refusedWarnInterval aggregates the warnings about refused cross-origin
// changes: a hostile page can send them in a loop.
const refusedWarnInterval = 10 * time.Second

func safeMethod(m string) bool { return m == "GET" || m == "HEAD" || m == "OPTIONS" }

func hasBearer(r *http.Request) bool {
	scheme, _, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	return ok && strings.EqualFold(scheme, "Bearer")
}

func hasSessionCookie(r *http.Request) bool {
	c, err := r.Cookie(sessionCookie)
	return err == nil && c.Value != ""
}

// sameOriginEvidence returns "" when the headers show the request comes from
// this origin, else why not.
func sameOriginEvidence(r *http.Request) string {
	if o := r.Header.Get("Origin"); o != "" {
		if !sameHost(o, r) {
			return "Origin " + quoteHeader(o) + " is not this server"
		}
		return ""
	}
	if sf := r.Header.Get("Sec-Fetch-Site"); sf != "" {
		if sf != "same-origin" {
			return "Sec-Fetch-Site is " + quoteHeader(sf) + ", not same-origin"
		}
		return ""
	}
	if ref := r.Header.Get("Referer"); ref != "" {
		if !sameHost(ref, r) {
			return "Referer " + quoteHeader(ref) + " is not this server"
		}
		return ""
	}
	return "a change made with the session cookie needs a same-origin Origin header (or Sec-Fetch-Site: same-origin, or a same-origin Referer)"
}

// crossOriginEvidence returns why the headers show another origin, or "".
func crossOriginEvidence(r *http.Request) string {
	if o := r.Header.Get("Origin"); o != "" && !sameHost(o, r) {
		return "Origin " + quoteHeader(o) + " is not this server"
	}
	// "none" is a request the user started (a bookmark, the address bar)
	if sf := r.Header.Get("Sec-Fetch-Site"); sf != "" && sf != "same-origin" && sf != "none" {
		return "Sec-Fetch-Site is " + quoteHeader(sf) + ", not same-origin"
	}
	if ref := r.Header.Get("Referer"); ref != "" && !sameHost(ref, r) {
		return "Referer " + quoteHeader(ref) + " is not this server"
	}
	return ""
}

// sameHost reports whether the origin or URL raw names this server: an http
// or https URL whose host:port is the request's Host. The scheme is not
// compared, so that a TLS-terminating proxy in front of plain HTTP works; an
// opaque origin ("null") never matches.
func sameHost(raw string, r *http.Request) bool {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

// quoteHeader quotes a header value for an error message, cut to a sane
// length.
func quoteHeader(v string) string {
	const max = 100
	if len(v) > max {
		v = v[:max] + "..."
	}
	return strconv.Quote(v)
}
