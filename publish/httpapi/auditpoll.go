package httpapi

import (
	"sync"
	"time"
)

// listAuditWindow is how long a repeated list request (the same actor,
// action and query: a page polling for new hits or visits) is covered by
// the audit entry of the first one. A list shows no images (each image
// fetch is audited on its own), so one entry per window says who looked at
// what without a page that stays open writing an entry every few seconds.
const listAuditWindow = time.Minute

// listAudits remembers when each (actor, action, query) list request was
// last audited. It is bounded: entries older than the window are dropped
// when it grows past maxListAudits, and past that it forgets all of them
// (each then audits again: the safe side).
type listAudits struct {
	mu   sync.Mutex
	last map[string]time.Time
}

const maxListAudits = 1024

// due reports whether a list request keyed by key must be audited at now,
// and if so records that it was.
func (l *listAudits) due(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.last[key]; ok && now.Sub(t) < listAuditWindow && !now.Before(t) {
		return false
	}
	if l.last == nil {
		l.last = map[string]time.Time{}
	}
	if len(l.last) >= maxListAudits {
		for k, t := range l.last {
			if now.Sub(t) >= listAuditWindow {
				delete(l.last, k)
			}
		}
		if len(l.last) >= maxListAudits {
			clear(l.last)
		}
	}
	l.last[key] = now
	return true
}
