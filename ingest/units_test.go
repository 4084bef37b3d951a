package ingest

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestRedaction(t *testing.T) {
	tests := []struct {
		name   string
		rawURL string
		pass   string
		text   string
		want   string
	}{
		{"plain password", "rtsp://cam/x", "hunter2", "auth hunter2 failed", "auth xxxxx failed"},
		{"escaped password", "rtsp://cam/x", "a/b?c", "url rtsp://u:a%2Fb%3Fc@cam", "url rtsp://u:xxxxx@cam"},
		{"userinfo in url", "rtsp://admin:pw0rd@cam:554/x", "", `parse "rtsp://admin:pw0rd@cam:554/x"`, `parse "rtsp://xxxxx@cam:554/x"`},
		{"password alone from url", "rtsp://admin:pw0rd@cam/x", "", "got pw0rd", "got xxxxx"},
		{"url without userinfo", "rtsp://cam/x@y", "", "rtsp://cam/x@y", "rtsp://cam/x@y"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRedactorFromURL(tc.rawURL, newRedactor(tc.pass))
			if got := r.string(tc.text); got != tc.want {
				t.Fatalf("redacted %q, want %q", got, tc.want)
			}
			base := errors.New(tc.text)
			err := r.err(fmt.Errorf("wrap: %w", base))
			if !errors.Is(err, base) || err.Error() != "wrap: "+tc.want {
				t.Fatalf("err = %q (Is=%v), want %q wrapping the original", err, errors.Is(err, base), "wrap: "+tc.want)
			}
		})
	}
}

func TestPTSConversion(t *testing.T) {
	tests := []struct {
		ticks int64
		rate  int
		want  time.Duration
	}{
		{90000, 90000, time.Second},
		{3600, 90000, 40 * time.Millisecond},
		{90000 * 3600 * 24 * 365 * 100, 90000, 100 * 365 * 24 * time.Hour}, // ticks*1e9 would overflow
		{90000*7 + 45000, 90000, 7500 * time.Millisecond},
		{5, 0, 0},
	}
	for _, tc := range tests {
		if got := ptsToDuration(tc.ticks, tc.rate); got != tc.want {
			t.Fatalf("ptsToDuration(%d, %d) = %v, want %v", tc.ticks, tc.rate, got, tc.want)
		}
	}
}

func TestBufPoolCounts(t *testing.T) {
	p := newBufPool(2)
	a, b := p.get(100), p.get(100)
	if p.allocated.Load() != 2 || p.outstanding() != 2 {
		t.Fatalf("allocated %d outstanding %d, want 2 and 2", p.allocated.Load(), p.outstanding())
	}
	p.put(a)
	c := p.get(100) // a again
	if &c[0] != &a[0] || p.reused.Load() != 1 || p.outstanding() != 2 {
		t.Fatalf("reused %d outstanding %d, want a recycled and 2 out", p.reused.Load(), p.outstanding())
	}
	p.put(b)
	p.put(c)
	if p.outstanding() != 0 {
		t.Fatalf("outstanding %d after every buffer came back", p.outstanding())
	}
	// a buffer of another size is let go, and a fresh one made
	if d := p.get(1000); len(d) != 1000 || p.allocated.Load() != 3 {
		t.Fatalf("len %d allocated %d", len(d), p.allocated.Load())
	}
}
