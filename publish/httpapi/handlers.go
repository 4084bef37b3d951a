package httpapi

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/srdgd/srdgd/publish"
)

// healthJSON is GET /api/v1/health. Status is "ok", "degraded" (alive, but
// a camera is not streaming: still 200, since restarting the daemon would
// not bring a camera back) or "unhealthy" (a stage is wedged: 503). Cameras
// counts the cameras per state. The details, which cameras are down and
// why (Down) and what is wedged (Error), only go to an authenticated caller
// (a token, a session, or no token configured): health itself needs none.
type healthJSON struct {
	Status  string         `json:"status"`
	Cameras map[string]int `json:"cameras,omitempty"`
	Down    []cameraDown   `json:"down,omitempty"`
	Error   string         `json:"error,omitempty"`
}

// cameraDown is one camera that is not streaming, and why.
type cameraDown struct {
	Camera      string    `json:"camera"`
	State       string    `json:"state"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	Reconnects  uint64    `json:"reconnects"`
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	_, f := s.auth.check(r)
	details := f == nil
	if s.o.Health != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if err := s.o.Health(ctx); err != nil {
			s.log.Warn("health check failed", "error", err)
			h := healthJSON{Status: "unhealthy"}
			if details {
				h.Error = err.Error()
			}
			writeJSON(w, http.StatusServiceUnavailable, h)
			return
		}
	}
	h := healthJSON{Status: "ok"}
	if s.o.Cameras != nil {
		for _, c := range s.o.Cameras() {
			if h.Cameras == nil {
				h.Cameras = map[string]int{}
			}
			h.Cameras[c.State]++
			if !c.Connected {
				h.Status = "degraded"
				if details {
					h.Down = append(h.Down, cameraDown{Camera: c.Camera, State: c.State, LastError: c.LastError,
						LastErrorAt: c.LastErrorAt, Reconnects: c.Reconnects})
				}
			}
		}
	}
	writeJSON(w, http.StatusOK, h)
}

type loginRequest struct {
	Token string `json:"token"`
}

type sessionResponse struct {
	Authenticated bool   `json:"authenticated"`
	Actor         string `json:"actor,omitempty"`
	// Auth is "token", "session" or "none" (no token configured).
	Auth    string     `json:"auth,omitempty"`
	Expires *time.Time `json:"expires,omitempty"`
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	ip := remoteIP(r)
	if lim, wait := s.auth.limited(ip); lim && s.auth.enabled {
		w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(wait)))
		writeError(w, http.StatusTooManyRequests, "", "too many failed authentications from this address")
		return
	}
	var req loginRequest
	if err := decodeJSON(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if !s.auth.enabled {
		writeJSON(w, http.StatusOK, sessionResponse{Authenticated: true, Actor: "anonymous", Auth: "none"})
		return
	}
	if req.Token == "" {
		writeError(w, http.StatusBadRequest, "token", "token is required")
		return
	}
	if !s.auth.tokenOK(req.Token) {
		s.auth.fail(ip)
		s.log.Warn("login with a wrong token", "remote", r.RemoteAddr)
		writeError(w, http.StatusUnauthorized, "token", "wrong token")
		return
	}
	c, p, err := s.auth.login()
	if err != nil {
		s.fail(w, r, fmt.Errorf("new session: %w", err))
		return
	}
	if s.o.Auditor != nil {
		if err := s.o.Auditor.Audit(r.Context(), AuditRecord{Actor: p.actor, Action: "login", Remote: r.RemoteAddr}); err != nil {
			s.fail(w, r, fmt.Errorf("audit login: %w", err))
			return
		}
	}
	http.SetCookie(w, c)
	writeJSON(w, http.StatusOK, sessionResponse{Authenticated: true, Actor: p.actor, Auth: p.via, Expires: &p.expires})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	s.auth.logout(r)
	http.SetCookie(w, s.auth.clearCookie())
	w.WriteHeader(http.StatusNoContent)
}

// sessionInfo tells the page whether it must log in. It needs no
// credentials (it reveals only the caller's own state); a wrong bearer token
// is still a failure, and a limited address still gets 429.
func (s *Server) sessionInfo(w http.ResponseWriter, r *http.Request) {
	p, f := s.auth.check(r)
	if f != nil {
		if f.status == http.StatusUnauthorized && r.Header.Get("Authorization") == "" {
			writeJSON(w, http.StatusOK, sessionResponse{})
			return
		}
		refuse(w, f)
		return
	}
	resp := sessionResponse{Authenticated: true, Actor: p.actor, Auth: p.via}
	if !p.expires.IsZero() {
		resp.Expires = &p.expires
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.o.Version)
}

// cameraJSON is a camera's status and whether the live view can show it.
type cameraJSON struct {
	publish.CameraStatus
	Live bool `json:"live"`
}

func (s *Server) cameras(w http.ResponseWriter, r *http.Request) {
	live := map[string]bool{}
	if s.o.Viewable != nil && s.o.Live != nil {
		for _, c := range s.o.Viewable() {
			live[c] = true
		}
	}
	out := []cameraJSON{}
	if s.o.Cameras != nil {
		for _, c := range s.o.Cameras() {
			out = append(out, cameraJSON{CameraStatus: c, Live: live[c.Camera]})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"cameras": out})
}

func (s *Server) listSchemas(w http.ResponseWriter, r *http.Request) {
	names := slices.Sorted(maps.Keys(s.o.Schemas))
	if names == nil {
		names = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"schemas": names})
}

func (s *Server) schema(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	b, ok := s.o.Schemas[name]
	if !ok {
		writeError(w, http.StatusNotFound, "", fmt.Sprintf("no schema %q", name))
		return
	}
	w.Header().Set("Content-Type", "application/schema+json")
	_, _ = w.Write(b)
}

// query reads the query parameters, refusing any not in allowed.
func query(r *http.Request, allowed ...string) (map[string]string, error) {
	return queryValues(r.URL.Query(), allowed...)
}

// queryValues is query for parsed values.
func queryValues(vals url.Values, allowed ...string) (map[string]string, error) {
	out := map[string]string{}
	for k, v := range vals {
		if k == "" {
			return nil, errorf(http.StatusBadRequest, k, "a query parameter without a name (%q): want name=value", "="+v[0])
		}
		if !slices.Contains(allowed, k) {
			return nil, errorf(http.StatusBadRequest, k, "unknown query parameter %q (allowed: %v)", k, allowed)
		}
		if len(v) > 1 {
			return nil, errorf(http.StatusBadRequest, k, "query parameter %q given %d times", k, len(v))
		}
		out[k] = v[0]
	}
	return out, nil
}

// limitParam parses "limit": default def, 1..max.
func limitParam(q map[string]string, def, max int) (int, error) {
	v, ok := q["limit"]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, errorf(http.StatusBadRequest, "limit", "limit %q: want a whole number from 1 to %d", v, max)
	}
	return n, nil
}

type auditResponse struct {
	Entries []AuditRecord `json:"entries"`
	// Next is the after= value (oldest first) or the before= value (newest
	// first) for the following page; absent on the last.
	Next *int64 `json:"next,omitempty"`
}

// auditLog lists the audit log: oldest first from after= (the default), or
// newest first (order=newest) from before=; filtered by actor, action
// (exact, or a prefix ending in ".") and target.
func (s *Server) auditLog(w http.ResponseWriter, r *http.Request) {
	if s.o.Auditor == nil {
		writeError(w, http.StatusServiceUnavailable, "", "no audit log configured")
		return
	}
	q, err := query(r, "after", "before", "order", "actor", "action", "target", "limit")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	aq := AuditQuery{Actor: q["actor"], Action: q["action"], Target: q["target"]}
	if aq.Limit, err = limitParam(q, 100, 1000); err != nil {
		s.fail(w, r, err)
		return
	}
	switch q["order"] {
	case "", "oldest":
	case "newest":
		aq.Newest = true
	default:
		s.fail(w, r, errorf(http.StatusBadRequest, "order", "order %q: want oldest or newest", q["order"]))
		return
	}
	for _, f := range []struct {
		name string
		dst  *int64
	}{{"after", &aq.After}, {"before", &aq.Before}} {
		if v, ok := q[f.name]; ok {
			if *f.dst, err = strconv.ParseInt(v, 10, 64); err != nil || *f.dst < 0 {
				s.fail(w, r, errorf(http.StatusBadRequest, f.name, "%s %q: want a sequence number >= 0", f.name, v))
				return
			}
		}
	}
	entries, err := s.o.Auditor.AuditSearch(r.Context(), aq)
	if err != nil {
		s.fail(w, r, fmt.Errorf("audit log: %w", err))
		return
	}
	resp := auditResponse{Entries: entries}
	if resp.Entries == nil {
		resp.Entries = []AuditRecord{}
	}
	if len(entries) == aq.Limit {
		n := entries[len(entries)-1].Seq
		resp.Next = &n
	}
	writeJSON(w, http.StatusOK, resp)
}

// audit writes an entry for the request; the caller fails the request when
// it returns an error.
func (s *Server) audit(r *http.Request, action, target, detail string) error {
	if strings.HasSuffix(action, ".list") && !s.lists.due(actorOf(r)+"\x00"+action+"\x00"+target, time.Now()) {
		return nil // covered by the entry of the same list a moment ago
	}
	err := s.o.Auditor.Audit(r.Context(), AuditRecord{Actor: actorOf(r), Action: action, Target: target, Detail: detail, Remote: r.RemoteAddr})
	if err != nil {
		return fmt.Errorf("audit %s %q: %w", action, target, err)
	}
	return nil
}
