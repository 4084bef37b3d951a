// Package ratelog is the one rate-limited warning of the daemon: a recurring
// warning (decode errors, dropped frames, refused requests) is logged at most
// once per interval, with the number of occurrences since the previous line,
// so a camera spewing errors or a hostile page in a loop cannot flood the log.
package ratelog

import (
	"log/slog"
	"sync"
	"time"
)

// Limiter logs one warning message at most once per interval. Safe for
// concurrent use.
type Limiter struct {
	log      *slog.Logger
	msg      string
	interval time.Duration
	now      func() time.Time // tests set it

	mu    sync.Mutex
	last  time.Time
	count uint64
}

// New returns a limiter logging msg on log at most once per interval (0: every
// occurrence). A nil log discards.
func New(log *slog.Logger, msg string, interval time.Duration) *Limiter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Limiter{log: log, msg: msg, interval: interval, now: time.Now}
}

// Warn counts one occurrence and logs when the interval since the previous
// line has passed (the first occurrence always logs). The line carries
// "count" (occurrences since the previous line, this one included),
// "interval", then attrs, which describe the latest occurrence. It reports
// whether it logged.
func (l *Limiter) Warn(attrs ...any) bool {
	now := l.now()
	l.mu.Lock()
	l.count++
	if !l.last.IsZero() && now.Sub(l.last) < l.interval {
		l.mu.Unlock()
		return false
	}
	n := l.count
	l.count = 0
	l.last = now
	l.mu.Unlock()
	l.log.Warn(l.msg, append([]any{"count", n, "interval", l.interval}, attrs...)...)
	return true
}
