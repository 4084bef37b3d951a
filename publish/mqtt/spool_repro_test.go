package mqtt

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestSpoolReproIssue19 is issue 19's repro at the package level: 105
// alerts carrying an SR JPEG are spooled and acknowledged, then the
// segment files are grepped for "sr_jpeg":"/9j/.
func TestSpoolReproIssue19(t *testing.T) {
	dir := t.TempDir()
	s, err := openSpool(spoolOptions{Dir: dir, MaxMessages: 10000, MaxBytes: 64 << 20, Sealer: testSealer(t)})
	if err != nil {
		t.Fatal(err)
	}
	const n = 105
	var last uint64
	for i := 0; i < n; i++ {
		e := []byte(fmt.Sprintf(`{"id":"h%d","image":{"sr_jpeg":"/9j/4AAQSkZJRgABAQ%04d"},"match":{"top_k":[{"name":"Alice Example"}]}}`, i, i))
		if last, err = s.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	count := func() (int, int) {
		segs, _ := filepath.Glob(filepath.Join(dir, "seg-*.log"))
		c := 0
		for _, f := range segs {
			b, _ := os.ReadFile(f)
			c += bytes.Count(b, []byte(`"sr_jpeg":"/9j/`))
		}
		return c, len(segs)
	}
	c, k := count()
	t.Logf("before ack: %d plaintext sr_jpeg in %d segments", c, k)
	if c != 0 || k == 0 {
		t.Errorf("before ack: %d plaintext sr_jpeg in %d segments, want 0 in at least one", c, k)
	}
	for q := uint64(0); q <= last; q++ {
		s.Ack(q)
	}
	c, k = count()
	t.Logf("after ack of all %d: %d plaintext sr_jpeg in %d segments", n, c, k)
	if c != 0 || k != 0 {
		t.Errorf("after ack of all %d: %d plaintext sr_jpeg in %d segments, want none", n, c, k)
	}
	s.Close()
}
