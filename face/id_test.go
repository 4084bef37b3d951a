package face

import (
	"strings"
	"testing"
	"time"
)

func TestNewIDSortsByTime(t *testing.T) {
	base := time.Date(2026, 11, 26, 1, 2, 3, 0, time.UTC)
	seen := map[string]bool{}
	prev := ""
	for i := range 200 {
		id := NewID(base.Add(time.Duration(i) * time.Millisecond))
		if len(id) != 26 {
			t.Fatalf("id %q has %d characters, want 26", id, len(id))
		}
		for _, c := range id {
			if !strings.ContainsRune(crockford, c) {
				t.Fatalf("id %q has %q outside the alphabet", id, c)
			}
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
		if id <= prev {
			t.Fatalf("id %q does not sort after %q", id, prev)
		}
		prev = id
	}
	// same millisecond: still unique
	a, b := NewID(base), NewID(base)
	if a == b || a[:10] != b[:10] {
		t.Fatalf("same-ms ids %q %q: want equal time prefix, different tails", a, b)
	}
}
