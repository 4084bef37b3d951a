package httpapi

import (
	"context"
	"embed"
	"io/fs"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

//go:embed web
var webFS embed.FS

// csp allows only the page's own files: no inline script or style, no
// framing. data: images are the SR crops from the live view's data channel,
// blob: the video elements' streams.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"media-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

type ctxKey struct{}

// methods maps an HTTP method to its handler for one path.
type methods map[string]http.HandlerFunc

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	api := func(pattern string, m methods) { mux.Handle(pattern, s.authed(dispatch(m))) }
	mux.Handle("/api/v1/health", dispatch(methods{"GET": s.health}))
	mux.Handle("/api/v1/login", dispatch(methods{"POST": s.login}))
	mux.Handle("/api/v1/logout", dispatch(methods{"POST": s.logout}))
	mux.Handle("/api/v1/session", dispatch(methods{"GET": s.sessionInfo}))
	api("/api/v1/version", methods{"GET": s.version})
	api("/api/v1/cameras", methods{"GET": s.cameras})
	api("/api/v1/hits", methods{"GET": s.listHits})
	api("/api/v1/hits/{id}", methods{"GET": s.getHit})
	api("/api/v1/hits/{id}/{image}", methods{"GET": s.hitImage})
	api("/api/v1/hits/{id}/feedback", methods{"POST": s.hitFeedback})
	api("/api/v1/visits", methods{"GET": s.listVisits})
	api("/api/v1/visits/{id}", methods{"GET": s.getVisit})
	api("/api/v1/visits/{id}/feedback", methods{"POST": s.visitFeedback})
	api("/api/v1/gallery", methods{"GET": s.listGallery, "POST": s.enrol})
	api("/api/v1/gallery/{name}", methods{"DELETE": s.removePerson, "PATCH": s.patchPerson})
	api("/api/v1/gallery/{name}/photo.jpg", methods{"GET": s.personPhoto})
	api("/api/v1/audit", methods{"GET": s.auditLog})
	api("/api/v1/schemas", methods{"GET": s.listSchemas})
	api("/api/v1/schemas/{name}", methods{"GET": s.schema})
	mux.Handle("/api/", s.authed(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "", "no such endpoint: "+r.URL.Path)
	})))
	if s.o.Live != nil {
		// "/whep" too: the live view lists its cameras at GET /whep
		mux.Handle("/whep", s.authed(s.o.Live))
		mux.Handle("/whep/", s.authed(s.o.Live))
	}
	if s.o.Metrics != nil {
		mux.Handle("GET /metrics", s.authed(s.o.Metrics))
	}
	mux.Handle("/", s.page())
	return s.common(s.loopbackHostOnly(s.sameOriginChanges(mux)))
}

// dispatch answers a method the path does not support with a JSON 405.
func dispatch(m methods) http.HandlerFunc {
	allow := slices.Sorted(maps.Keys(m))
	if _, ok := m["GET"]; ok {
		allow = append(allow, "HEAD")
	}
	return func(w http.ResponseWriter, r *http.Request) {
		method := r.Method
		if method == "HEAD" {
			method = "GET"
		}
		if h, ok := m[method]; ok {
			h(w, r)
			return
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, "", r.Method+" is not allowed here (allowed: "+strings.Join(allow, ", ")+")")
	}
}

// statusWriter records the status for the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and deadlines (WHEP).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// common sets the security headers, limits the body and logs the request
// (method, path, status, time, remote, actor; never headers or cookies).
func (s *Server) common(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		if s.tls != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		if strings.HasPrefix(r.URL.Path, "/api/") || strings.HasPrefix(r.URL.Path, "/whep/") {
			h.Set("Cache-Control", "no-store")
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, s.o.MaxBodyBytes)
		}
		sw := &statusWriter{ResponseWriter: w}
		ctx := context.WithValue(r.Context(), ctxKey{}, &principal{})
		next.ServeHTTP(sw, r.WithContext(ctx))
		actor := ""
		if p, ok := ctx.Value(ctxKey{}).(*principal); ok {
			actor = p.actor
		}
		s.log.Debug("http request", "method", r.Method, "path", r.URL.Path, "status", sw.status,
			"ms", time.Since(start).Milliseconds(), "remote", r.RemoteAddr, "actor", actor)
	})
}

// authed lets authenticated requests through (sameOriginChanges, in front
// of every route, has already refused cross-origin changes).
func (s *Server) authed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, f := s.auth.check(r)
		if f != nil {
			refuse(w, f)
			return
		}
		if lp, ok := r.Context().Value(ctxKey{}).(*principal); ok {
			*lp = p // for the access log
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, p)))
	})
}

// refuse answers a failed authentication.
func refuse(w http.ResponseWriter, f *authFailure) {
	if f.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(f.retryAfter)))
	}
	if f.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="srdgd"`)
	}
	writeError(w, f.status, "", f.msg)
}

// actorOf returns the audit actor of an authenticated request.
func actorOf(r *http.Request) string {
	switch p := r.Context().Value(ctxKey{}).(type) {
	case principal:
		return p.actor
	case *principal:
		return p.actor
	}
	return ""
}

// page serves the embedded web page; directories other than / are 404.
func (s *Server) page() http.Handler {
	files := http.FileServerFS(s.web)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "GET" && r.Method != "HEAD" {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "", r.Method+" is not allowed here")
			return
		}
		name := strings.TrimPrefix(r.URL.Path, "/")
		if name != "" && (strings.HasSuffix(name, "/") || !utf8.ValidString(name) || !fs.ValidPath(name)) {
			writeError(w, http.StatusNotFound, "", "not found")
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}
