package mqtt

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/srdgd/srdgd/internal/seal"
)

// fakeClock is a settable clock for retention and segment age.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func sealerFor(t *testing.T, b byte) *seal.Sealer {
	t.Helper()
	s, err := seal.New(bytes.Repeat([]byte{b}, seal.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openOpts(t *testing.T, o spoolOptions) *spool {
	t.Helper()
	if o.MaxMessages == 0 {
		o.MaxMessages = 1000
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = 1 << 20
	}
	if o.Sealer == nil {
		o.Sealer = testSealer(t)
	}
	s, err := openSpool(o)
	if err != nil {
		t.Fatalf("open spool: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// dirBytes is every file under dir, concatenated.
func dirBytes(t *testing.T, dir string) []byte {
	t.Helper()
	var all []byte
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		all = append(all, b...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// TestSpoolSealed: what is on disk does not contain the entries, and a
// spool opened with another key (no clear copies) drops them as corrupt.
func TestSpoolSealed(t *testing.T) {
	dir := t.TempDir()
	s := openOpts(t, spoolOptions{Dir: dir})
	secret := `{"sr_jpeg":"/9j/4AAQ","name":"Ada Lovelace"}`
	for i := range 3 {
		if _, err := s.Append([]byte(fmt.Sprintf("%s-%d", secret, i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, got := drain(t, s); len(got) != 3 || got[2] != secret+"-2" {
		t.Fatalf("entries %q", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	disk := dirBytes(t, dir)
	for _, w := range []string{"/9j/", "Ada Lovelace", "sr_jpeg"} {
		if bytes.Contains(disk, []byte(w)) {
			t.Fatalf("%q readable on disk", w)
		}
	}
	// the same key reads them
	if _, got := drain(t, openOpts(t, spoolOptions{Dir: dir})); len(got) != 3 {
		t.Fatalf("reopened: %q", got)
	}
	// another key cannot: dropped, counted, the segment deleted
	s3 := openOpts(t, spoolOptions{Dir: dir, Sealer: sealerFor(t, 9)})
	if _, got := drain(t, s3); len(got) != 0 || s3.Corrupt() != 3 {
		t.Fatalf("with another key: entries %q, corrupt %d", got, s3.Corrupt())
	}
	if f := segFiles(t, dir); len(f) != 0 {
		t.Fatalf("segments left: %v", f)
	}
}

// TestSpoolClearCopy: a spool sealed with a run key keeps a clear copy; after
// a restart (a new key) the clear copies are delivered, in order, and new
// appends are sealed with the new key.
func TestSpoolClearCopy(t *testing.T) {
	dir := t.TempDir()
	redact := func(e []byte) []byte { return append([]byte("clear:"), e[:1]...) }
	s := openOpts(t, spoolOptions{Dir: dir, Sealer: sealerFor(t, 1), Redact: redact})
	appendN(t, s, 0, 3)
	if _, got := drain(t, s); !slicesEqual(got, names(0, 3)) {
		t.Fatalf("same run: %q", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if disk := dirBytes(t, dir); bytes.Contains(disk, []byte("entry-")) {
		t.Fatal("entry readable on disk")
	}
	s2 := openOpts(t, spoolOptions{Dir: dir, Sealer: sealerFor(t, 2), Redact: redact})
	if _, err := s2.Append([]byte("new")); err != nil {
		t.Fatal(err)
	}
	want := []string{"clear:e", "clear:e", "clear:e", "new"}
	if _, got := drain(t, s2); !slicesEqual(got, want) {
		t.Fatalf("after restart %q, want %q", got, want)
	}
	if s2.Corrupt() != 0 {
		t.Fatalf("corrupt %d", s2.Corrupt())
	}
}

// TestSpoolCompaction: acknowledged records do not stay on disk: a segment
// goes as soon as none of its records is live, the active one included, and
// the active segment takes appends for SegmentMaxAge only.
func TestSpoolCompaction(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	dir := t.TempDir()
	s := openOpts(t, spoolOptions{Dir: dir, SegmentMaxAge: time.Minute, Now: clock.Now})
	ack := func(n int) {
		t.Helper()
		seqs, _ := drain(t, s)
		for _, q := range seqs[:n] {
			s.Ack(q)
		}
	}
	steps := []struct {
		name      string
		do        func()
		wantSegs  int
		wantDepth int
	}{
		{"one appended", func() { appendN(t, s, 0, 1) }, 1, 1},
		{"acked: the active segment goes", func() { ack(1) }, 0, 0},
		{"two within a minute share a segment", func() { appendN(t, s, 1, 1); clock.Add(30 * time.Second); appendN(t, s, 2, 1) }, 1, 2},
		{"one more after the minute: a new segment", func() { clock.Add(31 * time.Second); appendN(t, s, 3, 1) }, 2, 3},
		{"first two acked: their segment goes, the third waits", func() { ack(2) }, 1, 1},
		{"all acked: nothing left", func() { ack(1) }, 0, 0},
	}
	for _, st := range steps {
		st.do()
		if n, _ := s.Depth(); n != st.wantDepth || len(segFiles(t, dir)) != st.wantSegs {
			t.Fatalf("%s: depth %d, segments %v; want %d, %d", st.name, n, segFiles(t, dir), st.wantDepth, st.wantSegs)
		}
	}
	// and it still delivers and survives a reopen
	appendN(t, s, 4, 2)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, got := drain(t, openOpts(t, spoolOptions{Dir: dir, Now: clock.Now})); !slicesEqual(got, names(4, 2)) {
		t.Fatalf("after reopen %q", got)
	}
}

// TestSpoolRetention: entries older than the retention are dropped, sent or
// not, counted, by Expire and on open; their segments go with them.
func TestSpoolRetention(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	dir := t.TempDir()
	o := spoolOptions{Dir: dir, Retention: time.Hour, Now: clock.Now}
	s := openOpts(t, o)
	appendN(t, s, 0, 2) // t0
	clock.Add(40 * time.Minute)
	appendN(t, s, 2, 2) // t0+40m
	clock.Add(20*time.Minute + time.Millisecond)
	if n := s.Expire(); n != 2 || s.Expired() != 2 {
		t.Fatalf("expired %d (total %d), want 2", n, s.Expired())
	}
	if _, got := drain(t, s); !slicesEqual(got, names(2, 2)) {
		t.Fatalf("after expiry %q", got)
	}
	if n := s.Expire(); n != 0 {
		t.Fatalf("expired %d more", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Hour)
	s2 := openOpts(t, o)
	if n, _ := s2.Depth(); n != 0 || s2.Expired() != 2 {
		t.Fatalf("on open: depth %d, expired %d; want 0, 2", n, s2.Expired())
	}
	if f := segFiles(t, dir); len(f) != 0 {
		t.Fatalf("segments left: %v", f)
	}
}

// TestSpoolMigratesPlaintext: segments of the earlier plaintext format are
// rewritten sealed (the live records, in order, with a clear copy when the
// spool has one), or deleted when that fails; the acknowledged ones go.
func TestSpoolMigratesPlaintext(t *testing.T) {
	tests := []struct {
		name   string
		redact bool
		block  bool // a directory where the temporary file must go
		want   []string
	}{
		{"sealed", false, false, []string{"plain-1", "plain-2", "plain-3"}},
		{"sealed with a clear copy", true, false, []string{"plain-1", "plain-2", "plain-3"}},
		{"rewrite fails: deleted", false, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			// two segments of the old format, head at 1: plain-0 was acked
			seg0 := bytes.Join([][]byte{v1Record(0, "plain-0"), v1Record(1, "plain-1")}, nil)
			seg2 := bytes.Join([][]byte{v1Record(2, "plain-2"), v1Record(3, "plain-3")}, nil)
			if err := os.WriteFile(filepath.Join(dir, segName(0)), seg0, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, segName(2)), seg2, 0o600); err != nil {
				t.Fatal(err)
			}
			h := openOpts(t, spoolOptions{Dir: t.TempDir()})
			h.head = 1
			if err := h.writeHead(true); err != nil {
				t.Fatal(err)
			}
			hb, _ := os.ReadFile(filepath.Join(h.opts.Dir, headName))
			if err := os.WriteFile(filepath.Join(dir, headName), hb, 0o600); err != nil {
				t.Fatal(err)
			}
			if tt.block {
				for _, first := range []uint64{0, 2} {
					p := filepath.Join(dir, segName(first)+tmpSuffix)
					if err := os.MkdirAll(filepath.Join(p, "x"), 0o700); err != nil {
						t.Fatal(err)
					}
				}
			}
			o := spoolOptions{Dir: dir}
			if tt.redact {
				o.Redact = func(e []byte) []byte { return append([]byte("clear-"), e[len(e)-1]) }
			}
			s := openOpts(t, o)
			if _, got := drain(t, s); !slicesEqual(got, tt.want) {
				t.Fatalf("entries %q, want %q", got, tt.want)
			}
			if tt.block {
				if s.plainGone != 3 {
					t.Fatalf("dropped %d, want 3", s.plainGone)
				}
				for _, first := range []uint64{0, 2} {
					os.RemoveAll(filepath.Join(dir, segName(first)+tmpSuffix))
				}
			}
			disk := dirBytes(t, dir)
			if bytes.Contains(disk, []byte("plain-")) {
				t.Fatal("plaintext left on disk")
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			// sealed for good: the same key reads them, another key reads
			// the clear copies only
			if _, got := drain(t, openOpts(t, spoolOptions{Dir: dir})); !slicesEqual(got, tt.want) {
				t.Fatalf("reopened: %q, want %q", got, tt.want)
			}
			if tt.redact {
				s3 := openOpts(t, spoolOptions{Dir: dir, Sealer: sealerFor(t, 3), Redact: o.Redact})
				if _, got := drain(t, s3); !slicesEqual(got, []string{"clear-1", "clear-2", "clear-3"}) {
					t.Fatalf("clear copies %q", got)
				}
			}
		})
	}
}

// TestSpoolNeedsSealer: a spool without a key is refused.
func TestSpoolNeedsSealer(t *testing.T) {
	if _, err := openSpool(spoolOptions{Dir: t.TempDir(), MaxMessages: 1, MaxBytes: 1}); err == nil {
		t.Fatal("opened without a sealer")
	}
}
