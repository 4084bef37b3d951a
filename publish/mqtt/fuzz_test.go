package mqtt

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

var writeSeeds = flag.Bool("write-seeds", false, "rewrite the fuzz seed corpora in testdata/fuzz")

// v1Record is a record of the earlier plaintext format ("SRQ1"), which
// recovery migrates.
func v1Record(seq uint64, entry string) []byte {
	b := make([]byte, recHeaderLen+recSeqLen+len(entry))
	binary.BigEndian.PutUint32(b[0:4], recMagicV1)
	binary.BigEndian.PutUint32(b[4:8], uint32(recSeqLen+len(entry)))
	binary.BigEndian.PutUint64(b[12:20], seq)
	copy(b[20:], entry)
	binary.BigEndian.PutUint32(b[8:12], crc32.Checksum(b[12:], castagnoli))
	return b
}

// seedEntry is the alert in spoolSeeds.
func seedEntry() []byte {
	entry, _ := encodeEntry([]message{{Topic: "srdgd/cam/hit", QoS: 1, Payload: []byte(`{"schema":1}`)}, {Topic: "srdgd/cam/last_match", Retain: true, Payload: []byte("{}")}})
	return entry
}

// seedEntries are the plaintexts sealed in spoolSeeds (and the committed
// corpus): a sealed record that opens can only hold one of them.
func seedEntries() []string {
	return []string{"a", "c", "d", "dddd", "x", "y", "z", "SRQ1SRQ2", "clear", "sealed", string(seedEntry()), string(v1Record(9, "inner"))}
}

// spoolSeeds are segment files: valid, torn, corrupt and hostile, sealed,
// and of the earlier plaintext format.
func spoolSeeds(t testing.TB) map[string][]byte {
	rec := func(seq uint64, s string) []byte { return testRecord(t, seq, s) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	entry := seedEntry()
	three := cat(rec(0, "a"), rec(1, string(entry)), rec(2, "c"))
	flipped := bytes.Clone(three)
	flipped[recHeaderLen+recFixedLen] ^= 1
	hugeLen := bytes.Clone(three)
	hugeLen[5] = 0xff
	sealed, _ := testSealer(t).Seal([]byte("sealed"), spoolAD(4))
	withClear := encodeRecord(4, 1, []byte("clear"), sealed)
	badClearLen := bytes.Clone(withClear)
	binary.BigEndian.PutUint32(badClearLen[28:32], 1<<20)
	return map[string][]byte{
		"empty":            {},
		"valid-three":      three,
		"torn-header":      cat(three, rec(3, "d")[:5]),
		"torn-body":        cat(three, rec(3, "dddd")[:recHeaderLen+recFixedLen+1]),
		"flipped-body":     flipped,
		"huge-length":      hugeLen,
		"magic-only":       {0x53, 0x52, 0x51, 0x32},
		"out-of-order-seq": cat(rec(5, "x"), rec(2, "y"), rec(6, "z")),
		"zero-tail":        cat(three, make([]byte, 64)),
		"magic-in-payload": cat(rec(0, "SRQ1SRQ2"), rec(1, string(v1Record(9, "inner")))),
		"with-clear-copy":  cat(three, withClear),
		"bad-clear-length": cat(three, badClearLen),
		"other-key":        cat(encodeRecord(0, 0, nil, []byte("\x01not sealed with the key, not at all")), rec(1, "a")),
		"v1-plaintext":     cat(v1Record(0, "a"), v1Record(1, string(entry)), v1Record(2, "c")),
		"v1-then-v2":       cat(v1Record(0, "x"), rec(1, "y"), v1Record(2, "SRQ1SRQ2")[:9]),
	}
}

func TestWriteFuzzSeeds(t *testing.T) {
	if !*writeSeeds {
		t.Skip("run with -write-seeds to rewrite testdata/fuzz")
	}
	write := func(target, name string, b []byte) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(b)))
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, b := range spoolSeeds(t) {
		write("FuzzSpoolRecover", name, b)
	}
	entry, _ := encodeEntry([]message{{Topic: "a/b", QoS: 1, Payload: []byte("x")}, {Topic: "c", Retain: true}})
	write("FuzzDecodeEntry", "valid", entry)
	write("FuzzDecodeEntry", "truncated", entry[:len(entry)-1])
	write("FuzzDecodeEntry", "bad-flags", []byte{1, 1, 0xff, 0, 1, 'a', 0, 0, 0, 0})
}

// FuzzSpoolRecover feeds arbitrary bytes as a segment file to recovery:
// it must not fail or panic, must yield valid entries in increasing
// sequence, must accept appends afterwards, and what it kept must survive
// another reopen unchanged.
func FuzzSpoolRecover(f *testing.F) {
	for _, b := range spoolSeeds(f) {
		f.Add(b)
	}
	known := seedEntries()
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segName(0)), data, 0o600); err != nil {
			t.Fatal(err)
		}
		opts := spoolOptions{Dir: dir, MaxMessages: 1 << 20, MaxBytes: 1 << 30, NoSync: true, Sealer: testSealer(t)}
		s, err := openSpool(opts)
		if err != nil {
			t.Fatalf("recover: %v", err)
		}
		seqs, entries := drain(t, s)
		for i := 1; i < len(seqs); i++ {
			if seqs[i] <= seqs[i-1] {
				t.Fatalf("seqs not increasing: %v", seqs)
			}
		}
		for _, e := range entries {
			if !bytes.Contains(data, []byte(e)) && !slices.Contains(known, e) {
				t.Fatalf("entry %q not from the input", e)
			}
		}
		// Every live record is sealed: none of the earlier plaintext
		// format is left.
		for _, e := range s.entries {
			b, err := os.ReadFile(filepath.Join(dir, segName(e.seg)))
			if err != nil {
				t.Fatal(err)
			}
			if r, ok := decodeRecordAt(b, int(e.off)); !ok || r.v1 {
				t.Fatalf("entry %d: record at %d in %s is not a sealed record", e.seq, e.off, segName(e.seg))
			}
		}
		if n, _ := s.Depth(); n != len(entries) {
			t.Fatalf("depth %d, entries %d", n, len(entries))
		}
		seq, err := s.Append([]byte("tail"))
		if err != nil {
			t.Fatalf("append after recovery: %v", err)
		}
		if len(seqs) > 0 && seq <= seqs[len(seqs)-1] {
			t.Fatalf("append seq %d after %v", seq, seqs)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s2, err := openSpool(opts)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer s2.Close()
		_, again := drain(t, s2)
		want := append(append([]string{}, entries...), "tail")
		if !slicesEqual(again, want) {
			t.Fatalf("after reopen %q, want %q", again, want)
		}
	})
}

// FuzzDecodeEntry: no input panics, and whatever decodes re-encodes to
// the same bytes.
func FuzzDecodeEntry(f *testing.F) {
	entry, _ := encodeEntry([]message{{Topic: "a/b", QoS: 1, Payload: []byte("x")}})
	f.Add(entry)
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs, err := decodeEntry(data)
		if err != nil {
			return
		}
		b, err := encodeEntry(msgs)
		if err != nil {
			t.Fatalf("decoded entry does not encode: %v", err)
		}
		if !bytes.Equal(b, data) {
			t.Fatalf("round trip differs")
		}
	})
}
