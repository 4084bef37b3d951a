package history

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/srdgd/srdgd/face"
)

// TestHitPersonFilter: the person filter finds a hit by its match or by
// any top-k candidate, case-insensitively, in plaintext and encrypted
// stores; a hit's tags go with it when retention deletes it.
func TestHitPersonFilter(t *testing.T) {
	for _, k := range [][]byte{nil, key(4)} {
		t.Run(fmt.Sprintf("key=%v", k != nil), func(t *testing.T) {
			ctx := context.Background()
			now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
			s := open(t, Options{Path: filepath.Join(t.TempDir(), "h.db"), Key: k, Retention: time.Hour, Now: func() time.Time { return now }})
			named := hit("01M8W25VPYJ7E17F2BRH4W0001", "gate", "Ada Lovelace", now.Add(-2*time.Hour))
			cand := hit("01M8W25VPYJ7E17F2BRH4W0002", "gate", "", now)
			cand.Match.TopK = []face.Candidate{{Name: "Grace Hopper", Similarity: 0.9}, {Name: "Ada Lovelace", Similarity: 0.8}}
			other := hit("01M8W25VPYJ7E17F2BRH4W0003", "door", "Grace Hopper", now)
			for _, h := range []*face.Hit{named, cand, other} {
				if err := s.Publish(ctx, h); err != nil {
					t.Fatal(err)
				}
			}
			cases := []struct {
				person string
				want   []string
			}{
				{"Ada Lovelace", []string{cand.ID, named.ID}},
				{"ada lovelace", []string{cand.ID, named.ID}},
				{" GRACE HOPPER ", []string{other.ID, cand.ID}},
				{"Grace", nil},
				{"Nobody", nil},
			}
			for _, c := range cases {
				hits, err := s.List(ctx, Query{Person: c.person})
				if err != nil {
					t.Fatal(err)
				}
				var ids []string
				for _, h := range hits {
					ids = append(ids, h.ID)
				}
				if !slices.Equal(ids, c.want) {
					t.Errorf("person %q: %v, want %v", c.person, ids, c.want)
				}
			}
			if n, err := s.Sweep(ctx); err != nil || n != 1 {
				t.Fatalf("sweep: %d, %v; want the 2 h old hit deleted", n, err)
			}
			var left int
			if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM hit_people WHERE hit_id = ?`, named.ID).Scan(&left); err != nil || left != 0 {
				t.Errorf("the deleted hit keeps %d person tags (%v)", left, err)
			}
		})
	}
}

// TestHitPersonFilterBackfill: a store whose hits were written before the
// person tags existed gets them once when it opens.
func TestHitPersonFilterBackfill(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "h.db")
	s, err := Open(ctx, Options{Path: path, Key: key(2)})
	if err != nil {
		t.Fatal(err)
	}
	h := hit("01M8W25VPYJ7E17F2BRH4W0009", "gate", "", time.Now())
	h.Match.TopK = []face.Candidate{{Name: "Ada Lovelace", Similarity: 0.9}}
	if err := s.Publish(ctx, h); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// as the old code left it: no tags, no meta row
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DELETE FROM hit_people`, `DELETE FROM meta WHERE k = 'hit_people'`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s = open(t, Options{Path: path, Key: key(2)})
	hits, err := s.List(ctx, Query{Person: "ADA LOVELACE"})
	if err != nil || len(hits) != 1 || hits[0].ID != h.ID {
		t.Fatalf("after the backfill: %v, %v; want hit %s", hits, err, h.ID)
	}
}

// TestAuditSearch: newest first with Before paging, and the actor, action
// (exact or prefix) and target filters, also through an encrypted store's
// target tags.
func TestAuditSearch(t *testing.T) {
	for _, k := range [][]byte{nil, key(3)} {
		t.Run(fmt.Sprintf("key=%v", k != nil), func(t *testing.T) {
			ctx := context.Background()
			s := open(t, Options{Path: filepath.Join(t.TempDir(), "h.db"), Key: k})
			entries := []AuditEntry{
				{Actor: "cli:root", Action: "gallery.add", Target: "Ada Lovelace"},
				{Actor: "api:token", Action: "hit.view", Target: "01M8W25VPYJ7E17F2BRH4W0001"},
				{Actor: "api:token", Action: "hit.image", Target: "01M8W25VPYJ7E17F2BRH4W0001", Detail: "lr.png"},
				{Actor: "api:session:1a2b3c4d", Action: "gallery.remove", Target: "Ada Lovelace"},
				{Actor: "api:token", Action: "gallery.add.failed", Target: "Bob", Detail: "no face found"},
			}
			for _, e := range entries {
				if err := s.Audit(ctx, e); err != nil {
					t.Fatal(err)
				}
			}
			seqs := func(q AuditQuery) []int64 {
				t.Helper()
				es, err := s.AuditSearch(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				var out []int64
				for _, e := range es {
					out = append(out, e.Seq)
				}
				return out
			}
			cases := []struct {
				name string
				q    AuditQuery
				want []int64
			}{
				{"oldest first", AuditQuery{}, []int64{1, 2, 3, 4, 5}},
				{"newest first", AuditQuery{Newest: true, Limit: 2}, []int64{5, 4}},
				{"newest before", AuditQuery{Newest: true, Before: 4, Limit: 2}, []int64{3, 2}},
				{"actor", AuditQuery{Actor: "api:token"}, []int64{2, 3, 5}},
				{"action exact", AuditQuery{Action: "gallery.add"}, []int64{1}},
				{"action prefix", AuditQuery{Action: "gallery."}, []int64{1, 4, 5}},
				{"target", AuditQuery{Target: "Ada Lovelace", Newest: true}, []int64{4, 1}},
				{"target hit", AuditQuery{Target: "01M8W25VPYJ7E17F2BRH4W0001"}, []int64{2, 3}},
				{"no such target", AuditQuery{Target: "ada lovelace"}, nil},
			}
			for _, c := range cases {
				if got := seqs(c.q); !slices.Equal(got, c.want) {
					t.Errorf("%s: %v, want %v", c.name, got, c.want)
				}
			}
		})
	}
}
