package app

import (
	"strings"
	"testing"
	"time"
)

func TestHealthProgress(t *testing.T) {
	now := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	h := newHealth()
	h.now = func() time.Time { return now }
	pending, done := 0, uint64(0)
	h.watch("detect/cam", time.Minute, func() int { return pending }, func() uint64 { return done })
	steps := []struct {
		name    string
		advance time.Duration
		pending int
		done    uint64
		wedged  bool
	}{
		{"idle for long is fine", 10 * time.Minute, 0, 0, false},
		{"work arrives", time.Second, 2, 0, false},
		{"waiting within the limit", 50 * time.Second, 2, 0, false},
		{"waiting past the limit", 20 * time.Second, 2, 0, true},
		{"progress clears it", time.Second, 2, 1, false},
		{"stuck again", 2 * time.Minute, 2, 1, true},
		{"queue drained", time.Second, 0, 1, false},
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		pending, done = s.pending, s.done
		err := h.check()
		if (err != nil) != s.wedged {
			t.Fatalf("%s: check() = %v, want wedged %v", s.name, err, s.wedged)
		}
		if err != nil && !strings.Contains(err.Error(), "detect/cam") {
			t.Fatalf("%s: error %q does not name the stage", s.name, err)
		}
	}
}
