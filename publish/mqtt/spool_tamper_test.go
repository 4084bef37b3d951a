package mqtt

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"strings"
	"testing"
)

// TestSpoolTamperedRecordRefused: a record whose sealed bytes were changed
// (CRC recomputed, so only AES-GCM can notice) or that was moved to another
// sequence number does not open: it is refused, counted as corrupt, logged,
// and never delivered; the untouched records are delivered in order.
func TestSpoolTamperedRecordRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(body []byte)
	}{
		{"flipped sealed byte", func(body []byte) { body[len(body)-1] ^= 0x01 }},
		{"moved to another seq", func(body []byte) { binary.BigEndian.PutUint64(body[0:8], binary.BigEndian.Uint64(body[0:8])+100) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openOpts(t, spoolOptions{Dir: dir})
			for i := range 3 {
				if _, err := s.Append([]byte(fmt.Sprintf(`{"n":%d}`, i))); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			segs := segFiles(t, dir)
			if len(segs) != 1 {
				t.Fatalf("segments %v", segs)
			}
			path := segs[0]
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			// the last record: skip the first two by their lengths
			off := 0
			for range 2 {
				off += recHeaderLen + int(binary.BigEndian.Uint32(b[off+4:off+8]))
			}
			n := int(binary.BigEndian.Uint32(b[off+4 : off+8]))
			body := b[off+recHeaderLen : off+recHeaderLen+n]
			tc.tamper(body)
			binary.BigEndian.PutUint32(b[off+8:off+12], crc32.Checksum(body, castagnoli))
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			s2 := openOpts(t, spoolOptions{Dir: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			_, got := drain(t, s2)
			if strings.Join(got, ",") != `{"n":0},{"n":1}` {
				t.Fatalf("delivered %q, want the first two only", got)
			}
			if s2.Corrupt() != 1 {
				t.Errorf("corrupt %d, want 1", s2.Corrupt())
			}
			if !strings.Contains(logs.String(), "dropped") {
				t.Errorf("no warning about the refused record:\n%s", logs.String())
			}
		})
	}
}
