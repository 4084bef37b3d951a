package httpapi

import (
	"fmt"
	"testing"
	"time"
)

// TestListAuditsDue: a repeated list is audited once per window, per
// actor, action and query; the table stays bounded.
func TestListAuditsDue(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	var l listAudits
	steps := []struct {
		key  string
		at   time.Duration
		want bool
	}{
		{"a|hits.list|limit=20", 0, true},
		{"a|hits.list|limit=20", 3 * time.Second, false},
		{"a|hits.list|limit=20&person=x", 3 * time.Second, true},
		{"b|hits.list|limit=20", 4 * time.Second, true},
		{"a|hits.list|limit=20", 59 * time.Second, false},
		{"a|hits.list|limit=20", 61 * time.Second, true},
		{"a|hits.list|limit=20", 30 * time.Second, true}, // the clock went back
	}
	for i, s := range steps {
		if got := l.due(s.key, t0.Add(s.at)); got != s.want {
			t.Errorf("step %d %q at %v: due %v, want %v", i, s.key, s.at, got, s.want)
		}
	}
	for i := range 3 * maxListAudits {
		l.due(fmt.Sprint("k", i), t0)
	}
	if n := len(l.last); n > maxListAudits {
		t.Errorf("%d keys remembered, want at most %d", n, maxListAudits)
	}
}
