package ratelog

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/srdgd/srdgd/internal/testutil"
)

func TestLimiter(t *testing.T) {
	s := time.Second
	tests := []struct {
		name     string
		interval time.Duration
		at       []time.Duration // when each occurrence happens, from the start
		lines    []string        // the count= of each line logged, in order
	}{
		{"first occurrence logs", 10 * s, []time.Duration{0}, []string{"count=1"}},
		{"burst within the interval is one line", 10 * s, []time.Duration{0, 1, 2, 3, 9 * s}, []string{"count=1"}},
		{"next line counts the suppressed ones", 10 * s, []time.Duration{0, s, 2 * s, 10 * s}, []string{"count=1", "count=3"}},
		{"interval starts at the last line", 10 * s, []time.Duration{0, 10 * s, 19 * s, 20 * s}, []string{"count=1", "count=1", "count=2"}},
		{"zero interval logs every time", 0, []time.Duration{0, 0, 0}, []string{"count=1", "count=1", "count=1"}},
		{"quiet period then one", 10 * s, []time.Duration{0, time.Hour}, []string{"count=1", "count=1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := New(slog.New(slog.NewTextHandler(&buf, nil)), "decode errors", tc.interval)
			start := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
			logged := 0
			for i, at := range tc.at {
				l.now = func() time.Time { return start.Add(at) }
				if l.Warn("err", fmt.Sprint("e", i)) {
					logged++
				}
			}
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if len(lines) != len(tc.lines) || logged != len(tc.lines) {
				t.Fatalf("%d lines (Warn said %d), want %d:\n%s", len(lines), logged, len(tc.lines), buf.String())
			}
			for i, want := range tc.lines {
				if !strings.Contains(lines[i], "level=WARN") || !strings.Contains(lines[i], `msg="decode errors"`) ||
					!strings.Contains(lines[i], " "+want+" ") || !strings.Contains(lines[i], "interval=") {
					t.Errorf("line %d %q: want a warning with %s", i, lines[i], want)
				}
			}
			// attrs are the latest occurrence's
			if last := lines[len(lines)-1]; !strings.Contains(last, "err=e") {
				t.Errorf("line %q lacks the occurrence's attrs", last)
			}
		})
	}
}

// TestAggregates (moved from ingest): fifty warnings within an interval are
// one line; once the interval has passed the next line reports what was
// suppressed and the new occurrence.
func TestAggregates(t *testing.T) {
	var buf bytes.Buffer
	w := New(slog.New(slog.NewTextHandler(&buf, nil)), "decode errors", time.Hour)
	for i := range 50 {
		w.Warn("err", fmt.Sprint("e", i))
	}
	out := buf.String()
	if n := strings.Count(out, "decode errors"); n != 1 {
		t.Fatalf("%d log lines for 50 warnings within one interval, want 1:\n%s", n, out)
	}
	w.mu.Lock()
	w.last = time.Now().Add(-2 * time.Hour)
	w.mu.Unlock()
	w.Warn("err", "last")
	if !strings.Contains(buf.String(), "count=50") || !strings.Contains(buf.String(), "err=last") {
		t.Fatalf("second line does not aggregate the 49 suppressed and the new one:\n%s", buf.String())
	}
}

func TestConcurrent(t *testing.T) {
	var buf testutil.SyncBuffer
	l := New(slog.New(slog.NewTextHandler(&buf, nil)), "x", time.Hour)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				l.Warn()
			}
		}()
	}
	wg.Wait()
	if n := strings.Count(buf.String(), "msg=x"); n != 1 {
		t.Fatalf("%d lines from 800 concurrent warnings in one interval, want 1", n)
	}
	if New(nil, "nil logger", 0).Warn() != true {
		t.Fatal("a nil logger must discard, not fail")
	}
}
