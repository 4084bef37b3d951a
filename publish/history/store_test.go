package history

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/srdgd/srdgd/face"
	"go.uber.org/goleak"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func hit(id, camera, name string, t time.Time) *face.Hit {
	one := 1
	p := 0.93
	h := &face.Hit{ID: id, Camera: camera, Time: t, FrameTime: t.Add(-time.Second), TrackID: 7, FacePx: 14,
		Box: face.Box{X: 10, Y: 20, W: 14, H: 14}, FrameW: 1280, FrameH: 720,
		Attributes: []face.Attribute{{Name: "male", Label: &one, Probability: &p, Source: "predicted"}},
		SR:         face.SR{Sampler: "fast", Steps: 16, Evals: 32, Scale: 8, LRSize: 16},
		Match:      face.Match{Reason: "below threshold", Similarity: 0.5},
		Models:     map[string]string{"score": "score_x8@1"},
		LRPNG:      []byte("lr-png-bytes-" + id), SRJPEG: []byte("sr-jpeg-bytes-" + id), PreviewJPEG: []byte("pv-" + id)}
	if name != "" {
		h.Match = face.Match{Known: true, Name: name, PersonID: 3, Similarity: 0.97, Margin: 0.1}
		c := face.Candidate{PersonID: 3, Name: name, Similarity: 0.97}
		h.Match.Explanation = face.Explanation{Outcome: face.OutcomeNamed, Closest: &c, Threshold: 0.94, MarginNeeded: 0.02, Lead: 0.97, Indistinct: 1}
		h.Match.Explanation.Text = h.Match.Explanation.Render()
	}
	return h
}

func open(t *testing.T, o Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestPublishListGet(t *testing.T) {
	ctx := context.Background()
	for _, enc := range []bool{false, true} {
		t.Run(map[bool]string{false: "plaintext", true: "encrypted"}[enc], func(t *testing.T) {
			o := Options{Path: filepath.Join(t.TempDir(), "h", "history.db")}
			if enc {
				o.Key = key(1)
			}
			s := open(t, o)
			t0 := time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
			var ids []string
			for i, c := range []struct{ cam, name string }{{"a", ""}, {"b", "alice"}, {"a", "alice"}, {"a", "bob"}} {
				tt := t0.Add(time.Duration(i) * time.Second)
				id := face.NewID(tt)
				ids = append(ids, id)
				if err := s.Publish(ctx, hit(id, c.cam, c.name, tt)); err != nil {
					t.Fatal(err)
				}
			}
			yes, no := true, false
			cases := []struct {
				name string
				q    Query
				want []string
			}{
				{"all newest first", Query{}, []string{ids[3], ids[2], ids[1], ids[0]}},
				{"camera", Query{Camera: "a"}, []string{ids[3], ids[2], ids[0]}},
				{"person", Query{Person: "alice"}, []string{ids[2], ids[1]}},
				{"known", Query{Known: &yes}, []string{ids[3], ids[2], ids[1]}},
				{"unknown", Query{Known: &no}, []string{ids[0]}},
				{"before", Query{Before: ids[2]}, []string{ids[1], ids[0]}},
				{"limit", Query{Limit: 1}, []string{ids[3]}},
				{"since", Query{Since: t0.Add(2 * time.Second)}, []string{ids[3], ids[2]}},
				{"nobody", Query{Person: "carol"}, nil},
			}
			for _, c := range cases {
				got, err := s.List(ctx, c.q)
				if err != nil {
					t.Fatal(err)
				}
				var gotIDs []string
				for _, h := range got {
					gotIDs = append(gotIDs, h.ID)
					if h.SRJPEG != nil {
						t.Errorf("%s: List returned images", c.name)
					}
				}
				if strings.Join(gotIDs, ",") != strings.Join(c.want, ",") {
					t.Errorf("%s: got %v want %v", c.name, gotIDs, c.want)
				}
			}
			h, err := s.Get(ctx, ids[1])
			if err != nil {
				t.Fatal(err)
			}
			if string(h.SRJPEG) != "sr-jpeg-bytes-"+ids[1] || string(h.LRPNG) != "lr-png-bytes-"+ids[1] || h.Match.Name != "alice" ||
				*h.Attributes[0].Label != 1 || h.SR.Sampler != "fast" || !h.Time.Equal(t0.Add(time.Second)) {
				t.Fatalf("round trip lost data: %+v", h)
			}
			// the record keeps the decision's explanation (sealed with the rest)
			if x := h.Match.Explanation; x.Text != "Named alice: 0.970 (needs 0.940), nobody else searchable." || x.Closest == nil || x.Closest.PersonID != 3 {
				t.Fatalf("explanation after the round trip: %+v", x)
			}
			if _, err := s.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get(nope) = %v, want ErrNotFound", err)
			}
			s.Close()
			raw, err := os.ReadFile(o.Path)
			if err != nil {
				t.Fatal(err)
			}
			wal, _ := os.ReadFile(o.Path + "-wal")
			raw = append(raw, wal...)
			for _, secret := range []string{"sr-jpeg-bytes", "alice", "below threshold", "score_x8"} {
				if got := bytes.Contains(raw, []byte(secret)); got != !enc {
					t.Errorf("file contains %q: %v (encrypted %v)", secret, got, enc)
				}
			}
			if st, _ := os.Stat(o.Path); st.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, want 0600", st.Mode().Perm())
			}
		})
	}
}

func TestKeyMismatch(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	enc := filepath.Join(dir, "enc.db")
	plain := filepath.Join(dir, "plain.db")
	open(t, Options{Path: enc, Key: key(1)}).Close()
	open(t, Options{Path: plain}).Close()
	cases := []struct {
		name string
		o    Options
		want string
	}{
		{"wrong key", Options{Path: enc, Key: key(2)}, "does not open this store"},
		{"no key for encrypted", Options{Path: enc}, "no key is configured"},
		{"key for plaintext", Options{Path: plain, Key: key(1)}, "created without encryption"},
		{"short key", Options{Path: enc, Key: key(1)[:8]}, "8-byte key"},
		{"bad path", Options{Path: "file:x.db"}, "must not"},
		{"no path", Options{}, "no database path"},
	}
	for _, c := range cases {
		_, err := Open(ctx, c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want it to mention %q", c.name, err, c.want)
		}
	}
}

func TestRetentionSweepAndRun(t *testing.T) {
	ign := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ign) }) // runs after the store closes
	ctx := context.Background()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := open(t, Options{Path: filepath.Join(t.TempDir(), "h.db"), Retention: 24 * time.Hour, Now: clock, SweepEvery: time.Hour})
	for i, age := range []time.Duration{48 * time.Hour, 25 * time.Hour, 23 * time.Hour, time.Minute} {
		tt := now.Add(-age)
		if err := s.Publish(ctx, hit(face.NewID(tt), "a", "", tt)); err != nil {
			t.Fatal(i, err)
		}
	}
	n, err := s.Sweep(ctx)
	if err != nil || n != 2 {
		t.Fatalf("sweep deleted %d (%v), want 2", n, err)
	}
	if c, _ := s.Count(ctx); c != 2 {
		t.Fatalf("%d hits left, want 2", c)
	}
	// Run sweeps at once, then returns when ctx ends
	mu.Lock()
	now = now.Add(24 * time.Hour)
	mu.Unlock()
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, _ := s.Count(ctx); c == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not sweep")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v", err)
	}
}

func TestDiskFullDropsOldest(t *testing.T) {
	ctx := context.Background()
	free := uint64(0)
	var mu sync.Mutex
	s := open(t, Options{Path: filepath.Join(t.TempDir(), "h.db"), MinFreeBytes: 100,
		FreeBytes: func(string) (uint64, error) { mu.Lock(); defer mu.Unlock(); return free, nil }})
	set := func(v uint64) { mu.Lock(); free = v; mu.Unlock() }
	set(1000)
	t0 := time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
	for i := range 3 {
		tt := t0.Add(time.Duration(i) * time.Second)
		if err := s.Publish(ctx, hit(face.NewID(tt), "a", "", tt)); err != nil {
			t.Fatal(err)
		}
	}
	set(10) // disk full and stays full: every old hit goes, then the new one is dropped
	err := s.Publish(ctx, hit(face.NewID(t0.Add(time.Hour)), "a", "", t0.Add(time.Hour)))
	if err == nil || !strings.Contains(err.Error(), "min_free_bytes") {
		t.Fatalf("err %v, want a disk-full drop naming storage.min_free_bytes", err)
	}
	if c, _ := s.Count(ctx); c != 0 {
		t.Fatalf("%d hits left", c)
	}
	if st := s.Stats(); st.Dropped != 1 || st.Saved != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestAuditAppendOnlyAndChained(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "h.db")
	s := open(t, Options{Path: path, Key: key(1)})
	for i, a := range []string{"gallery.add", "hits.list", "hits.get", "gallery.remove"} {
		if err := s.Audit(ctx, AuditEntry{Actor: "api:token", Action: a, Target: "t" + string(rune('0'+i)), Remote: "127.0.0.1"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Audit(ctx, AuditEntry{Actor: "x"}); err == nil {
		t.Fatal("entry without action accepted")
	}
	got, err := s.AuditLog(ctx, 1, 2)
	if err != nil || len(got) != 2 || got[0].Seq != 2 || got[0].Action != "hits.list" || got[1].Action != "hits.get" {
		t.Fatalf("AuditLog(1,2) = %+v, %v", got, err)
	}
	if n, err := s.VerifyAudit(ctx); n != 4 || err != nil {
		t.Fatalf("verify: %d, %v", n, err)
	}
	for _, q := range []string{`UPDATE audit SET target='x' WHERE seq=2`, `DELETE FROM audit WHERE seq=3`} {
		if _, err := s.db.ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Fatalf("%s: err %v, want append-only refusal", q, err)
		}
	}
	s.Close()
	// someone with the file drops the triggers and edits a row: VerifyAudit notices
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DROP TRIGGER audit_no_update`, `UPDATE audit SET target='forged' WHERE seq=2`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s2 := open(t, Options{Path: path, Key: key(1)})
	if _, err := s2.VerifyAudit(ctx); err == nil || !strings.Contains(err.Error(), "entry 2") {
		t.Fatalf("verify after tampering: %v", err)
	}
}
