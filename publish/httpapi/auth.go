package httpapi

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

const (
	sessionCookie = "srdgd_session"
	// maxSessions and maxBuckets bound memory under a flood of logins or
	// failures from many addresses; the oldest are pruned first.
	maxSessions = 1024
	maxBuckets  = 4096
)

// principal is who a request authenticated as.
type principal struct {
	// actor as written to the audit log: "token", "session:<8 hex>" or
	// "anonymous" (no token configured).
	actor string
	// via is "token", "session" or "none".
	via     string
	expires time.Time
}

type session struct {
	actor   string
	expires time.Time
}

// bucket is a token bucket of allowed authentication failures.
type bucket struct {
	tokens float64
	last   time.Time
}

// authenticator checks bearer tokens and session cookies and rate-limits
// failed attempts per remote IP. It runs no goroutine: expired sessions and
// full buckets are pruned when the maps grow.
type authenticator struct {
	tokenSum [sha256.Size]byte
	enabled  bool
	ttl      time.Duration
	burst    float64
	every    time.Duration
	secure   bool
	now      func() time.Time

	mu       sync.Mutex
	sessions map[[sha256.Size]byte]session
	buckets  map[string]*bucket
}

func newAuthenticator(token string, ttl time.Duration, burst int, every time.Duration, secure bool) *authenticator {
	return &authenticator{
		tokenSum: sha256.Sum256([]byte(token)), enabled: token != "",
		ttl: ttl, burst: float64(burst), every: every, secure: secure, now: time.Now,
		sessions: map[[sha256.Size]byte]session{}, buckets: map[string]*bucket{},
	}
}

// tokenOK compares in constant time (hashes first, so that the length of the
// token does not leak either).
func (a *authenticator) tokenOK(t string) bool {
	s := sha256.Sum256([]byte(t))
	return subtle.ConstantTimeCompare(s[:], a.tokenSum[:]) == 1
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// limited reports whether ip has used up its failures, and when the next one
// is allowed.
func (a *authenticator) limited(ip string) (bool, time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.refill(ip)
	if b.tokens >= 1 {
		return false, 0
	}
	wait := time.Duration((1 - b.tokens) * float64(a.every))
	return true, wait
}

// fail takes one token from ip's bucket.
func (a *authenticator) fail(ip string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.refill(ip)
	b.tokens = math.Max(0, b.tokens-1)
}

// refill returns ip's bucket, topped up for the time passed; a.mu held.
func (a *authenticator) refill(ip string) *bucket {
	now := a.now()
	b := a.buckets[ip]
	if b == nil {
		if len(a.buckets) >= maxBuckets {
			a.pruneBuckets(now)
		}
		b = &bucket{tokens: a.burst, last: now}
		a.buckets[ip] = b
		return b
	}
	if a.every > 0 {
		b.tokens = math.Min(a.burst, b.tokens+float64(now.Sub(b.last))/float64(a.every))
	} else {
		b.tokens = a.burst
	}
	b.last = now
	return b
}

// pruneBuckets drops the buckets that have refilled (they are equal to a new
// one); if that frees nothing, all of them. a.mu held.
func (a *authenticator) pruneBuckets(now time.Time) {
	for ip, b := range a.buckets {
		if a.every <= 0 || b.tokens+float64(now.Sub(b.last))/float64(a.every) >= a.burst {
			delete(a.buckets, ip)
		}
	}
	if len(a.buckets) >= maxBuckets {
		clear(a.buckets)
	}
}

func sessionKey(id string) [sha256.Size]byte { return sha256.Sum256([]byte(id)) }

// login creates a session and returns its cookie.
func (a *authenticator) login() (*http.Cookie, principal, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, principal{}, err
	}
	id := base64.RawURLEncoding.EncodeToString(raw[:])
	key := sessionKey(id)
	now := a.now()
	// the actor names the session by a hash prefix, never by the id itself
	s := session{actor: "session:" + hex.EncodeToString(key[:4]), expires: now.Add(a.ttl)}
	a.mu.Lock()
	if len(a.sessions) >= maxSessions {
		a.pruneSessions(now)
	}
	a.sessions[key] = s
	a.mu.Unlock()
	c := &http.Cookie{
		Name: sessionCookie, Value: id, Path: "/", Expires: s.expires, MaxAge: int(a.ttl / time.Second),
		HttpOnly: true, Secure: a.secure, SameSite: http.SameSiteStrictMode,
	}
	return c, principal{actor: s.actor, via: "session", expires: s.expires}, nil
}

// pruneSessions drops expired sessions, then the oldest until there is room.
// a.mu held.
func (a *authenticator) pruneSessions(now time.Time) {
	for k, s := range a.sessions {
		if !now.Before(s.expires) {
			delete(a.sessions, k)
		}
	}
	for len(a.sessions) >= maxSessions {
		var oldest [sha256.Size]byte
		first := true
		var t time.Time
		for k, s := range a.sessions {
			if first || s.expires.Before(t) {
				oldest, t, first = k, s.expires, false
			}
		}
		delete(a.sessions, oldest)
	}
}

func (a *authenticator) logout(r *http.Request) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return
	}
	a.mu.Lock()
	delete(a.sessions, sessionKey(c.Value))
	a.mu.Unlock()
}

func (a *authenticator) clearCookie() *http.Cookie {
	return &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: a.secure, SameSite: http.SameSiteStrictMode}
}

// session returns the principal of a valid session cookie.
func (a *authenticator) session(r *http.Request) (principal, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return principal{}, false
	}
	key := sessionKey(c.Value)
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.sessions[key]
	if !ok {
		return principal{}, false
	}
	if !a.now().Before(s.expires) {
		delete(a.sessions, key)
		return principal{}, false
	}
	return principal{actor: s.actor, via: "session", expires: s.expires}, true
}

// authFailure says why a request was refused.
type authFailure struct {
	status     int
	msg        string
	retryAfter time.Duration
}

// check authenticates r: a bearer token or a session cookie. Only wrong
// tokens count against the remote IP's failures (a missing credential is
// not an attack, and session ids are not guessable); once they are used up,
// tokens from that IP are refused unchecked, so guessing cannot go on.
func (a *authenticator) check(r *http.Request) (principal, *authFailure) {
	if !a.enabled {
		return principal{actor: "anonymous", via: "none"}, nil
	}
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return principal{}, &authFailure{status: http.StatusUnauthorized, msg: "the Authorization header must be \"Bearer <token>\""}
		}
		ip := remoteIP(r)
		if lim, wait := a.limited(ip); lim {
			return principal{}, &authFailure{status: http.StatusTooManyRequests, msg: "too many failed authentications from this address", retryAfter: wait}
		}
		if !a.tokenOK(strings.TrimSpace(tok)) {
			a.fail(ip)
			return principal{}, &authFailure{status: http.StatusUnauthorized, msg: "wrong token"}
		}
		return principal{actor: "token", via: "token"}, nil
	}
	if p, ok := a.session(r); ok {
		return p, nil
	}
	if _, err := r.Cookie(sessionCookie); err == nil {
		return principal{}, &authFailure{status: http.StatusUnauthorized, msg: "session expired: log in again"}
	}
	return principal{}, &authFailure{status: http.StatusUnauthorized, msg: "authentication required: Authorization: Bearer <token>, or log in"}
}

// retrySeconds rounds a wait up to whole seconds for Retry-After (>= 1).
func retrySeconds(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return s
}
