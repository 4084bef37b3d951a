package history

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/srdgd/srdgd/face"
)

// visit builds a visit of camera whose decision is name (unknown when
// ""), with candidates as its top-k, and shots referring to hits.
func visit(id, camera string, start time.Time, rev int, name string, candidates []string, shots ...*face.Hit) *face.Visit {
	v := &face.Visit{ID: id, Camera: camera, TrackID: 9, State: face.VisitNew, Rev: rev,
		Start: start, LastSeen: start.Add(4 * time.Second), FacePx: 15,
		Decision: face.Decision{Reason: face.ReasonBelowThreshold, Similarity: 0.4, Threshold: 0.6, MinMargin: 0.05, Shots: len(shots), Fusion: "mean"}}
	if rev > 1 {
		v.State = face.VisitUpdate
	}
	if name != "" {
		v.Decision = face.Decision{Known: true, PersonID: 4, Name: name, Confidence: 0.93, Similarity: 0.81, Margin: 0.2,
			Threshold: 0.6, MinMargin: 0.05, Shots: len(shots), Fusion: "mean"}
	}
	for i, c := range candidates {
		v.Decision.TopK = append(v.Decision.TopK, face.Candidate{PersonID: int64(10 + i), Name: c, Similarity: 0.8 - 0.1*float64(i)})
	}
	for _, h := range shots {
		v.Shots = append(v.Shots, face.ShotRef{HitID: h.ID, FrameTime: h.FrameTime, FacePx: h.FacePx, Quality: 0.7, Similarity: 0.5})
		v.BestShot = h.ID
	}
	return v
}

func TestVisitUpsertListGet(t *testing.T) {
	ctx := context.Background()
	for _, enc := range []bool{false, true} {
		t.Run(map[bool]string{false: "plaintext", true: "encrypted"}[enc], func(t *testing.T) {
			o := Options{Path: filepath.Join(t.TempDir(), "history.db")}
			if enc {
				o.Key = key(3)
			}
			s := open(t, o)
			t0 := time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
			h1 := hit(face.NewID(t0), "door", "", t0)
			h2 := hit(face.NewID(t0.Add(time.Second)), "door", "", t0.Add(time.Second))
			for _, h := range []*face.Hit{h1, h2} {
				if err := s.Publish(ctx, h); err != nil {
					t.Fatal(err)
				}
			}
			ids := make([]string, 4)
			for i := range ids {
				ids[i] = face.NewID(t0.Add(time.Duration(i) * time.Minute))
			}
			at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }
			events := []*face.Visit{
				// visit 0: new (undecided, Zoë a candidate), update (named Zoë), end
				visit(ids[0], "door", at(0), 1, "", []string{"Zoë Quinn", "Bob"}, h1),
				visit(ids[0], "door", at(0), 2, "Zoë Quinn", []string{"Zoë Quinn", "Bob"}, h1, h2),
				visit(ids[1], "yard", at(1), 1, "Bob", []string{"Bob"}),
				visit(ids[2], "door", at(2), 1, "", []string{"Carol"}),
				visit(ids[3], "yard", at(3), 1, "", nil),
			}
			end := visit(ids[0], "door", at(0), 3, "Zoë Quinn", []string{"Zoë Quinn", "Bob"}, h1, h2)
			end.State, end.End = face.VisitEnd, at(0).Add(10*time.Second)
			events = append(events, end,
				// a late, older event changes nothing
				visit(ids[0], "door", at(0), 1, "", []string{"Mallory"}))
			for _, v := range events {
				if err := s.PublishVisit(ctx, v); err != nil {
					t.Fatal(err)
				}
			}
			if n, _ := s.CountVisits(ctx); n != 4 {
				t.Fatalf("%d visits stored, want 4 (one row per id)", n)
			}
			if st := s.Stats(); st.Visits != 6 || st.Saved != 2 {
				t.Errorf("stats %+v, want 6 visit events stored (the stale one skipped) and 2 hits", st)
			}
			got, err := s.GetVisit(ctx, ids[0])
			if err != nil {
				t.Fatal(err)
			}
			if got.State != face.VisitEnd || got.Rev != 3 || got.Decision.Name != "Zoë Quinn" || len(got.Shots) != 2 ||
				got.Shots[1].HitID != h2.ID || !got.End.Equal(end.End) || got.BestShot != h2.ID {
				t.Fatalf("visit after new, update, end and a stale event: %+v", got)
			}
			// the shots refer to hits that are stored, images included
			if h, err := s.Get(ctx, got.BestShot); err != nil || !bytes.HasPrefix(h.SRJPEG, []byte("sr-jpeg-bytes")) {
				t.Fatalf("best shot %s: %v", got.BestShot, err)
			}
			if _, err := s.GetVisit(ctx, "nope"); !errors.Is(err, ErrVisitNotFound) {
				t.Fatalf("GetVisit(nope) = %v, want ErrVisitNotFound", err)
			}
			yes, no := true, false
			cases := []struct {
				name string
				q    VisitQuery
				want []int
			}{
				{"all newest first", VisitQuery{}, []int{3, 2, 1, 0}},
				{"camera", VisitQuery{Camera: "yard"}, []int{3, 1}},
				{"person as decision", VisitQuery{Person: "Zoë Quinn"}, []int{0}},
				{"person case-insensitive", VisitQuery{Person: "zoË quinn"}, []int{0}},
				{"person as candidate too", VisitQuery{Person: "bob"}, []int{1, 0}},
				{"person only a candidate", VisitQuery{Person: "CAROL"}, []int{2}},
				{"stale candidate gone", VisitQuery{Person: "Mallory"}, nil},
				{"known", VisitQuery{Known: &yes}, []int{1, 0}},
				{"unknown", VisitQuery{Known: &no}, []int{3, 2}},
				{"known and candidate", VisitQuery{Known: &no, Person: "carol"}, []int{2}},
				{"before id", VisitQuery{Before: ids[2]}, []int{1, 0}},
				{"until time", VisitQuery{Until: at(2)}, []int{1, 0}},
				{"since last seen", VisitQuery{Since: at(2)}, []int{3, 2}},
				{"since covers the end", VisitQuery{Since: at(0).Add(8 * time.Second)}, []int{3, 2, 1, 0}},
				{"limit", VisitQuery{Limit: 2}, []int{3, 2}},
				{"nobody", VisitQuery{Person: "dave"}, nil},
			}
			for _, c := range cases {
				vs, err := s.ListVisits(ctx, c.q)
				if err != nil {
					t.Fatal(c.name, err)
				}
				var gotIDs, wantIDs []string
				for _, v := range vs {
					gotIDs = append(gotIDs, v.ID)
				}
				for _, i := range c.want {
					wantIDs = append(wantIDs, ids[i])
				}
				if strings.Join(gotIDs, ",") != strings.Join(wantIDs, ",") {
					t.Errorf("%s: got %v want %v", c.name, gotIDs, wantIDs)
				}
			}
			s.Close()
			raw, err := os.ReadFile(o.Path)
			if err != nil {
				t.Fatal(err)
			}
			wal, _ := os.ReadFile(o.Path + "-wal")
			raw = append(raw, wal...)
			for _, secret := range []string{"Zoë Quinn", "zoë quinn", "Carol", "carol", "sr-jpeg-bytes", "below_threshold"} {
				if got := bytes.Contains(raw, []byte(secret)); got != !enc {
					t.Errorf("file contains %q: %v (encrypted %v)", secret, got, enc)
				}
			}
		})
	}
}

func TestVisitBadInput(t *testing.T) {
	ctx := context.Background()
	s := open(t, Options{Path: filepath.Join(t.TempDir(), "h.db"), Key: key(1)})
	t0 := time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		v    *face.Visit
		want string
	}{
		{"nil", nil, "without an id"},
		{"no id", &face.Visit{Start: t0}, "without an id"},
		{"no start", &face.Visit{ID: face.NewID(t0)}, "without a start time"},
	}
	for _, c := range cases {
		if err := s.PublishVisit(ctx, c.v); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", c.name, err, c.want)
		}
	}
}

func TestVisitRetention(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	s := open(t, Options{Path: filepath.Join(t.TempDir(), "h.db"), Key: key(2), Retention: 24 * time.Hour, Now: func() time.Time { return now }})
	cases := []struct {
		start, last time.Duration // before now
		keep        bool
	}{
		{48 * time.Hour, 47 * time.Hour, false},
		{25 * time.Hour, 24*time.Hour + time.Minute, false},
		// started before the cut, but seen after it: kept
		{25 * time.Hour, 23 * time.Hour, true},
		{time.Minute, 0, true},
	}
	var kept []string
	for _, c := range cases {
		v := visit(face.NewID(now.Add(-c.start)), "a", now.Add(-c.start), 1, "Ann", []string{"Ann"})
		v.LastSeen = now.Add(-c.last)
		if err := s.PublishVisit(ctx, v); err != nil {
			t.Fatal(err)
		}
		if c.keep {
			kept = append([]string{v.ID}, kept...)
		}
	}
	if err := s.Publish(ctx, hit(face.NewID(now.Add(-30*time.Hour)), "a", "", now.Add(-30*time.Hour))); err != nil {
		t.Fatal(err)
	}
	n, err := s.Sweep(ctx)
	if err != nil || n != 3 {
		t.Fatalf("sweep deleted %d (%v), want 3 (two visits and a hit)", n, err)
	}
	vs, err := s.ListVisits(ctx, VisitQuery{Person: "ann"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vs {
		got = append(got, v.ID)
	}
	if strings.Join(got, ",") != strings.Join(kept, ",") {
		t.Fatalf("after the sweep: %v, want %v", got, kept)
	}
	// the swept visits' person rows went with them
	var orphans int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM visit_people WHERE visit_id NOT IN (SELECT id FROM visits)`).Scan(&orphans); err != nil || orphans != 0 {
		t.Fatalf("%d person rows of deleted visits (%v)", orphans, err)
	}
}

func TestHitsStored(t *testing.T) {
	ctx := context.Background()
	s := open(t, Options{Path: filepath.Join(t.TempDir(), "h.db"), Key: key(4)})
	t0 := time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 1200 { // more than one query's worth of ids
		id := face.NewID(t0.Add(time.Duration(i) * time.Millisecond))
		ids = append(ids, id)
		if i%3 == 0 {
			if err := s.Publish(ctx, hit(id, "door", "", t0)); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := s.HitsStored(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		if got[id] != (i%3 == 0) {
			t.Fatalf("hit %d: stored %v, want %v", i, got[id], i%3 == 0)
		}
	}
	if len(got) != 400 {
		t.Errorf("%d stored, want 400", len(got))
	}
	if got, err := s.HitsStored(ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("no ids: %v %v", got, err)
	}
}
