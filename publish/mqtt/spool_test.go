package mqtt

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/srdgd/srdgd/internal/seal"
)

// testKey seals the spools of the tests (a gallery key).
var testKey = bytes.Repeat([]byte{7}, seal.KeySize)

func testSealer(t testing.TB) *seal.Sealer {
	t.Helper()
	s, err := seal.New(testKey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sealOverhead is what sealing adds to an entry: version, nonce, GCM tag.
const sealOverhead = 1 + 12 + 16

// recSize is the size on disk of a record of an entry of n bytes.
func recSize(n int) int { return recHeaderLen + recFixedLen + sealOverhead + n }

// testRecord is the record Append writes for entry at seq (time 0).
func testRecord(t testing.TB, seq uint64, entry string) []byte {
	t.Helper()
	sealed, err := testSealer(t).Seal([]byte(entry), spoolAD(seq))
	if err != nil {
		t.Fatal(err)
	}
	return encodeRecord(seq, 0, nil, sealed)
}

func testSpool(t *testing.T, dir string, maxMsgs int, maxBytes, segBytes int64) *spool {
	t.Helper()
	s, err := openSpool(spoolOptions{Dir: dir, MaxMessages: maxMsgs, MaxBytes: maxBytes, SegmentBytes: segBytes, Sealer: testSealer(t)})
	if err != nil {
		t.Fatalf("open spool: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// drain returns every live entry in order without acking.
func drain(t *testing.T, s *spool) (seqs []uint64, entries []string) {
	t.Helper()
	var after uint64
	have := false
	for {
		seq, e, ok, err := s.Next(after, have)
		if err != nil {
			t.Fatalf("next: %v", err)
		}
		if !ok {
			return seqs, entries
		}
		seqs = append(seqs, seq)
		entries = append(entries, string(e))
		after, have = seq, true
	}
}

func appendN(t *testing.T, s *spool, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if _, err := s.Append([]byte(fmt.Sprintf("entry-%03d", i))); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
}

func names(from, n int) []string {
	var out []string
	for i := from; i < from+n; i++ {
		out = append(out, fmt.Sprintf("entry-%03d", i))
	}
	return out
}

func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, segPrefix+"*"+segSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSpoolOrderAckReopen(t *testing.T) {
	tests := []struct {
		name     string
		segBytes int64
		n, ack   int
	}{
		{"one segment", 1 << 20, 10, 4},
		{"many segments", 64, 25, 13},
		{"all acked", 64, 7, 7},
		{"none acked", 1 << 20, 5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := testSpool(t, dir, 1000, 1<<20, tt.segBytes)
			appendN(t, s, 0, tt.n)
			seqs, got := drain(t, s)
			if !slicesEqual(got, names(0, tt.n)) {
				t.Fatalf("entries %v, want %v", got, names(0, tt.n))
			}
			for _, seq := range seqs[:tt.ack] {
				s.Ack(seq)
			}
			// An ack out of order or repeated is a no-op.
			if tt.ack > 0 {
				s.Ack(seqs[tt.ack-1])
			}
			if n, _ := s.Depth(); n != tt.n-tt.ack {
				t.Fatalf("depth %d, want %d", n, tt.n-tt.ack)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			s2 := testSpool(t, dir, 1000, 1<<20, tt.segBytes)
			seqs2, got2 := drain(t, s2)
			if !slicesEqual(got2, names(tt.ack, tt.n-tt.ack)) {
				t.Fatalf("after reopen %v, want %v", got2, names(tt.ack, tt.n-tt.ack))
			}
			// Sequence numbers continue, never reused.
			seq, err := s2.Append([]byte("next"))
			if err != nil {
				t.Fatal(err)
			}
			if len(seqs2) > 0 && seq <= seqs2[len(seqs2)-1] || seq < uint64(tt.n) {
				t.Fatalf("new seq %d after %v (n=%d)", seq, seqs2, tt.n)
			}
			// Segments whose entries are all acked are gone: at most
			// the live ones plus the active one.
			if live := tt.n - tt.ack; live == 0 && len(segFiles(t, dir)) > 1 {
				t.Fatalf("segments left: %v", segFiles(t, dir))
			}
		})
	}
}

func TestSpoolBoundDropsOldest(t *testing.T) {
	rec := int64(recSize(len("entry-000")))
	tests := []struct {
		name     string
		maxMsgs  int
		maxBytes int64
		n        int
		keep     int
	}{
		{"by messages", 5, 1 << 20, 12, 5},
		{"by bytes", 1000, 3 * rec, 10, 3},
		{"both, bytes tighter", 4, 2 * rec, 6, 2},
		{"under the bound", 10, 1 << 20, 7, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := testSpool(t, dir, tt.maxMsgs, tt.maxBytes, 2*rec)
			appendN(t, s, 0, tt.n)
			_, got := drain(t, s)
			if want := names(tt.n-tt.keep, tt.keep); !slicesEqual(got, want) {
				t.Fatalf("entries %v, want %v", got, want)
			}
			if d := s.Dropped(); d != uint64(tt.n-tt.keep) {
				t.Fatalf("dropped %d, want %d", d, tt.n-tt.keep)
			}
			n, b := s.Depth()
			if n != tt.keep || b != int64(tt.keep)*rec {
				t.Fatalf("depth %d/%d, want %d/%d", n, b, tt.keep, int64(tt.keep)*rec)
			}
			// Disk use stays within the bound plus one segment.
			var disk int64
			for _, f := range segFiles(t, dir) {
				st, err := os.Stat(f)
				if err != nil {
					t.Fatal(err)
				}
				disk += st.Size()
			}
			if disk > b+2*rec+rec {
				t.Fatalf("disk %d bytes for %d live", disk, b)
			}
			// The drops survive a restart: the dropped ones stay dropped.
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s2 := testSpool(t, dir, tt.maxMsgs, tt.maxBytes, 2*rec)
			if _, got := drain(t, s2); !slicesEqual(got, names(tt.n-tt.keep, tt.keep)) {
				t.Fatalf("after reopen %v", got)
			}
		})
	}
}

func TestSpoolTooLarge(t *testing.T) {
	s := testSpool(t, t.TempDir(), 10, 64, 0)
	if _, err := s.Append(bytes.Repeat([]byte("x"), 100)); err == nil || !strings.Contains(err.Error(), "larger than the spool bound") {
		t.Fatalf("err %v", err)
	}
}

func TestSpoolRecovery(t *testing.T) {
	rec := recSize(len("entry-000"))
	tests := []struct {
		name        string
		damage      func(b []byte) []byte // the single segment's bytes
		want        []string
		corrupt     uint64
		truncated   bool
		wantLenFile int // segment size after recovery, -1 = don't care
	}{
		{
			name:   "torn tail: half a header",
			damage: func(b []byte) []byte { return append(b, testRecord(t, 99, "entry-xxx")[:7]...) },
			want:   names(0, 4), truncated: true, wantLenFile: 4 * rec,
		},
		{
			name:   "torn tail: header, half the body",
			damage: func(b []byte) []byte { return append(b, testRecord(t, 4, "entry-004")[:rec-3]...) },
			want:   names(0, 4), truncated: true, wantLenFile: 4 * rec,
		},
		{
			name:   "torn tail: last record cut",
			damage: func(b []byte) []byte { return b[:len(b)-1] },
			want:   names(0, 3), truncated: true, wantLenFile: 3 * rec,
		},
		{
			name:   "zeros after the last record (preallocated)",
			damage: func(b []byte) []byte { return append(b, make([]byte, 4096)...) },
			want:   names(0, 4), truncated: true, wantLenFile: 4 * rec,
		},
		{
			name: "corrupt body in the middle",
			damage: func(b []byte) []byte {
				b[rec+recHeaderLen+recSeqLen] ^= 0xff
				return b
			},
			want: []string{"entry-000", "entry-002", "entry-003"}, corrupt: 1, wantLenFile: 4 * rec,
		},
		{
			name: "corrupt length in the middle",
			damage: func(b []byte) []byte {
				b[2*rec+5] = 0x7f
				return b
			},
			want: []string{"entry-000", "entry-001", "entry-003"}, corrupt: 1, wantLenFile: 4 * rec,
		},
		{
			name: "corrupt magic of the first",
			damage: func(b []byte) []byte {
				b[0] = 'X'
				return b
			},
			want: names(1, 3), corrupt: 1, wantLenFile: 4 * rec,
		},
		{
			name:   "garbage only",
			damage: func(b []byte) []byte { return bytes.Repeat([]byte("garbage!"), 20) },
			want:   nil, truncated: true, wantLenFile: -1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := testSpool(t, dir, 100, 1<<20, 1<<20)
			appendN(t, s, 0, 4)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			segs := segFiles(t, dir)
			if len(segs) != 1 {
				t.Fatalf("segments %v", segs)
			}
			b, err := os.ReadFile(segs[0])
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(segs[0], tt.damage(b), 0o600); err != nil {
				t.Fatal(err)
			}
			s2 := testSpool(t, dir, 100, 1<<20, 1<<20)
			_, got := drain(t, s2)
			if !slicesEqual(got, tt.want) {
				t.Fatalf("entries %v, want %v", got, tt.want)
			}
			if s2.Corrupt() != tt.corrupt {
				t.Fatalf("corrupt %d, want %d", s2.Corrupt(), tt.corrupt)
			}
			if (s2.truncated > 0) != tt.truncated {
				t.Fatalf("truncated %d bytes, want some: %v", s2.truncated, tt.truncated)
			}
			if tt.wantLenFile >= 0 {
				st, err := os.Stat(segs[0])
				if err != nil {
					t.Fatal(err)
				}
				if st.Size() != int64(tt.wantLenFile) {
					t.Fatalf("segment %d bytes after recovery, want %d", st.Size(), tt.wantLenFile)
				}
			}
			// Appending after recovery works and survives another reopen.
			if _, err := s2.Append([]byte("after")); err != nil {
				t.Fatal(err)
			}
			if err := s2.Close(); err != nil {
				t.Fatal(err)
			}
			s3 := testSpool(t, dir, 100, 1<<20, 1<<20)
			_, got3 := drain(t, s3)
			if want := append(append([]string{}, tt.want...), "after"); !slicesEqual(got3, want) {
				t.Fatalf("after second reopen %v, want %v", got3, want)
			}
		})
	}
}

func TestSpoolCorruptHead(t *testing.T) {
	dir := t.TempDir()
	s := testSpool(t, dir, 100, 1<<20, 1<<20)
	appendN(t, s, 0, 3)
	seqs, _ := drain(t, s)
	s.Ack(seqs[0])
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, headName), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	// An unreadable head redelivers (duplicates), it never loses.
	s2 := testSpool(t, dir, 100, 1<<20, 1<<20)
	if _, got := drain(t, s2); !slicesEqual(got, names(0, 3)) {
		t.Fatalf("entries %v", got)
	}
}

func TestEntryRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		msgs []message
		ok   bool
	}{
		{"one", []message{{Topic: "a/b", QoS: 1, Payload: []byte("{}")}}, true},
		{"several, retained, empty payload", []message{
			{Topic: "a/hit", QoS: 1, Payload: []byte("x")},
			{Topic: "a/last", QoS: 0, Retain: true},
			{Topic: "a/face", QoS: 2, Retain: true, Payload: bytes.Repeat([]byte{0xff}, 70000)},
		}, true},
		{"none", nil, false},
		{"empty topic", []message{{Topic: ""}}, false},
		{"qos 3", []message{{Topic: "a", QoS: 3}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := encodeEntry(tt.msgs)
			if (err == nil) != tt.ok {
				t.Fatalf("encode err %v", err)
			}
			if err != nil {
				return
			}
			got, err := decodeEntry(b)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.msgs) {
				t.Fatalf("got %d messages", len(got))
			}
			for i := range got {
				w := tt.msgs[i]
				if got[i].Topic != w.Topic || got[i].QoS != w.QoS || got[i].Retain != w.Retain || !bytes.Equal(got[i].Payload, w.Payload) {
					t.Fatalf("message %d: %+v, want %+v", i, got[i], w)
				}
			}
			for cut := range len(b) {
				if _, err := decodeEntry(b[:cut]); err == nil {
					t.Fatalf("truncated entry (%d of %d bytes) decoded", cut, len(b))
				}
			}
		})
	}
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
