package ingest

import (
	"log/slog"
	"sync"
	"time"
)

// warnLimiter logs a recurring warning at most once per interval, with the
// number of occurrences since the previous line.
type warnLimiter struct {
	log      *slog.Logger
	msg      string
	interval time.Duration

	mu    sync.Mutex
	last  time.Time
	count uint64
}

func newWarnLimiter(log *slog.Logger, msg string, interval time.Duration) *warnLimiter {
	return &warnLimiter{log: log, msg: msg, interval: interval}
}

// warn counts one occurrence and logs if the interval has passed; attrs
// describe the latest occurrence.
func (w *warnLimiter) warn(attrs ...any) {
	now := time.Now()
	w.mu.Lock()
	w.count++
	if !w.last.IsZero() && now.Sub(w.last) < w.interval {
		w.mu.Unlock()
		return
	}
	n := w.count
	w.count = 0
	w.last = now
	w.mu.Unlock()
	w.log.Warn(w.msg, append([]any{"count", n, "interval", w.interval}, attrs...)...)
}
