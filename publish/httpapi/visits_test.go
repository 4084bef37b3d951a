package httpapi_test

import (
	"bytes"
	"context"
	"image/jpeg"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/internal/app"
	"github.com/srdgd/srdgd/publish/history"
	"github.com/srdgd/srdgd/publish/httpapi"
)

// openHistory opens an encrypted history store (the real one) for t.
func openHistory(t testing.TB) *history.Store {
	t.Helper()
	s, err := history.Open(context.Background(), history.Options{Path: filepath.Join(t.TempDir(), "history.db"), Key: bytes.Repeat([]byte{9}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// visitSpec describes a stored visit: decided name ("" unknown), top
// candidates, shots (stored as hits with real images), state.
type visitSpec struct {
	camera, name string
	cands        []string
	shots        int
	state        string
}

// storeVisit stores a visit of sp that started at start, its shots as hits.
func storeVisit(t testing.TB, s *history.Store, start time.Time, track uint64, faceN int, sp visitSpec) *face.Visit {
	t.Helper()
	ctx := context.Background()
	v := &face.Visit{ID: face.NewID(start), Camera: sp.camera, TrackID: track, State: sp.state, Rev: 1,
		Start: start, LastSeen: start.Add(20 * time.Second), FacePx: 15, Shots: []face.ShotRef{}, Attributes: []face.Attribute{},
		Decision: face.Decision{Reason: face.ReasonBelowThreshold, Threshold: 0.6, MinMargin: 0.05, Fusion: "descriptor", TopK: []face.Candidate{}}}
	if sp.state == face.VisitEnd {
		v.End, v.Rev = v.LastSeen, 3
	}
	if sp.name != "" {
		v.Decision.Known, v.Decision.Name, v.Decision.PersonID, v.Decision.Reason = true, sp.name, 4, ""
		v.Decision.Confidence, v.Decision.Similarity = 0.91, 0.82
	}
	for j, c := range sp.cands {
		v.Decision.TopK = append(v.Decision.TopK, face.Candidate{PersonID: int64(j + 1), Name: c, Similarity: 0.8 - 0.1*float64(j)})
	}
	for j := range sp.shots {
		h := makeHit(t, start.Add(time.Duration(j+1)*time.Second), sp.camera, faceN, false, "")
		h.TrackID = v.TrackID
		if err := s.Publish(ctx, h); err != nil {
			t.Fatal(err)
		}
		v.Shots = append(v.Shots, face.ShotRef{HitID: h.ID, FrameTime: h.FrameTime, FacePx: 15, Quality: 0.6, Similarity: 0.7})
		v.BestShot = h.ID
	}
	v.Decision.Shots = len(v.Shots)
	if err := s.PublishVisit(ctx, v); err != nil {
		t.Fatal(err)
	}
	return v
}

// visitFixture is an encrypted history store (the real one, behind the
// daemon's adapter) with 4 visits a minute apart, oldest first, each with
// its shots stored as hits:
//
//	0 door  known "Zoë Quinn" (candidates Zoë Quinn, Bob), ended, 2 shots
//	1 yard  unknown (candidates Bob, Carol), ended, 1 shot
//	2 door  known "Bob" (candidates Bob), open (update), 1 shot and one
//	  whose hit is not in the history (swept by the retention)
//	3 yard  unknown, no candidates, no shots (no gallery)
func visitFixture(t testing.TB) (*history.Store, []*face.Visit) {
	t.Helper()
	s := openHistory(t)
	t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	spec := []visitSpec{
		{"door", "Zoë Quinn", []string{"Zoë Quinn", "Bob"}, 2, face.VisitEnd},
		{"yard", "", []string{"Bob", "Carol"}, 1, face.VisitEnd},
		{"door", "Bob", []string{"Bob"}, 1, face.VisitUpdate},
		{"yard", "", nil, 0, face.VisitNew},
	}
	var out []*face.Visit
	for i, sp := range spec {
		start := t0.Add(time.Duration(i) * time.Minute)
		if i == 2 {
			// a shot whose hit is gone: stored without it first, then again
			v := storeVisit(t, s, start, uint64(10+i), i, sp)
			gone := face.NewID(start)
			v.Shots = append([]face.ShotRef{{HitID: gone, FrameTime: start, FacePx: 12}}, v.Shots...)
			v.Decision.Shots, v.Rev = len(v.Shots), v.Rev+1
			if err := s.PublishVisit(context.Background(), v); err != nil {
				t.Fatal(err)
			}
			out = append(out, v)
			continue
		}
		out = append(out, storeVisit(t, s, start, uint64(10+i), i, sp))
	}
	return s, out
}

type visitsPage struct {
	Visits []visitBody `json:"visits"`
	Next   string      `json:"next"`
}

type visitBody struct {
	ID       string        `json:"id"`
	Camera   string        `json:"camera"`
	State    string        `json:"state"`
	Decision face.Decision `json:"decision"`
	BestShot string        `json:"best_shot"`
	Shots    []struct {
		HitID  string                            `json:"hit_id"`
		Images *struct{ LR, SR, Preview string } `json:"images"`
	} `json:"shots"`
	Images struct {
		Best       *struct{ LR, SR, Preview string } `json:"best"`
		Gallery    string                            `json:"gallery"`
		Candidates []struct{ Name, Photo string }    `json:"candidates"`
	} `json:"images"`
}

func (p visitsPage) ids() []string {
	var out []string
	for _, v := range p.Visits {
		out = append(out, v.ID)
	}
	return out
}

func TestVisitsList(t *testing.T) {
	store, vs := visitFixture(t)
	api := app.HistoryAPI{S: store}
	r := start(t, httpapi.Options{Token: token, Hits: api, Visits: api, Auditor: api})
	auth := "Authorization: Bearer " + token
	id := func(i ...int) []string {
		var out []string
		for _, k := range i {
			out = append(out, vs[k].ID)
		}
		return out
	}
	cases := []struct {
		name, query string
		want        []string
		next        string
	}{
		{"all, newest first", "", id(3, 2, 1, 0), ""},
		{"camera", "?camera=door", id(2, 0), ""},
		{"known", "?known=true", id(2, 0), ""},
		{"unknown", "?known=false", id(3, 1), ""},
		{"known as 1", "?known=1", id(2, 0), ""},
		{"person decided", "?person=" + url.QueryEscape("Zoë Quinn"), id(0), ""},
		{"person case-insensitive", "?person=" + url.QueryEscape("ZOË quinn"), id(0), ""},
		{"person as a candidate", "?person=bob", id(2, 1, 0), ""},
		{"person only a candidate", "?person=carol", id(1), ""},
		{"person and unknown", "?person=BOB&known=false", id(1), ""},
		{"person nobody", "?person=dave", nil, ""},
		{"first page", "?limit=2", id(3, 2), vs[2].ID},
		{"second page", "?limit=2&before=" + vs[2].ID, id(1, 0), vs[0].ID},
		{"last page", "?limit=2&before=" + vs[0].ID, nil, ""},
		{"since (last seen)", "?since=2026-11-26T08:02:00Z", id(3, 2), ""},
		{"since covers a visit still in view", "?since=2026-11-26T08:01:15Z", id(3, 2, 1), ""},
		{"before a time (start)", "?before=2026-11-26T08:02:00Z", id(1, 0), ""},
		{"since and before", "?since=2026-11-26T08:00:30Z&before=2026-11-26T08:02:30Z", id(2, 1), ""},
		{"camera and person", "?camera=yard&person=bob", id(1), ""},
		{"nothing", "?camera=garage", nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := r.do(t, "GET", "/api/v1/visits"+c.query, nil, auth)
			if got.status != 200 {
				t.Fatalf("%d %s", got.status, got.body)
			}
			var p visitsPage
			got.json(t, &p)
			if !slices.Equal(p.ids(), c.want) || p.Next != c.next {
				t.Errorf("ids %v next %q, want %v next %q", p.ids(), p.Next, c.want, c.next)
			}
			if !bytes.Contains(got.body, []byte(`"visits":[`)) {
				t.Errorf("visits is not a list: %s", got.body)
			}
		})
	}
	bad := []struct{ query, field string }{
		{"?known=maybe", "known"},
		{"?limit=0", "limit"},
		{"?limit=501", "limit"},
		{"?limit=-3", "limit"},
		{"?limit=x", "limit"},
		{"?before=123", "before"},
		{"?before=yesterday", "before"},
		{"?since=yesterday", "since"},
		{"?since=2026-11-26", "since"},
		{"?since=2026-11-26T09:00:00Z&before=2026-11-26T08:00:00Z", "before"},
		{"?cam=door", "cam"},
		{"?until=2026-11-26T08:00:00Z", "until"},
		{"?camera=a&camera=b", "camera"},
		{"?person=" + strings.Repeat("x", 257), "person"},
		{"?camera=%zz", ""},
	}
	for _, c := range bad {
		t.Run("bad "+c.query[:min(len(c.query), 40)], func(t *testing.T) {
			got := r.do(t, "GET", "/api/v1/visits"+c.query, nil, auth)
			if got.status != http.StatusBadRequest {
				t.Fatalf("%d %s, want 400", got.status, got.body)
			}
			msg, f := got.apiErr(t)
			if f != c.field {
				t.Errorf("field %q, want %q (%s)", f, c.field, msg)
			}
			if c.field != "" && !strings.Contains(msg, c.field) {
				t.Errorf("message %q does not name %q", msg, c.field)
			}
		})
	}
	// every successful list was audited, the refused ones not
	entries, err := store.AuditLog(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var lists int
	for _, e := range entries {
		if e.Action == "visits.list" {
			lists++
		}
	}
	if lists != len(cases) {
		t.Errorf("%d visits.list audit entries, want %d", lists, len(cases))
	}
	if got := r.do(t, "GET", "/api/v1/visits", nil); got.status != http.StatusUnauthorized {
		t.Errorf("without a token: %d, want 401", got.status)
	}
}

func TestVisitDetailsAndShotImages(t *testing.T) {
	store, vs := visitFixture(t)
	api := app.HistoryAPI{S: store}
	// without a gallery, no photo links (nothing would serve them)
	bare := start(t, httpapi.Options{Token: token, Hits: api, Visits: api, Auditor: api})
	auth := "Authorization: Bearer " + token
	var nb visitBody
	bare.do(t, "GET", "/api/v1/visits/"+vs[0].ID, nil, auth).json(t, &nb)
	if nb.Images.Gallery != "" || len(nb.Images.Candidates) != 0 || nb.Images.Best == nil {
		t.Errorf("without a gallery: images %+v, want the best shot's and no photos", nb.Images)
	}
	if !modelsPresent(t) {
		t.Skip("SKIPPING the rest: the face models (a real gallery) are absent")
	}
	r := start(t, httpapi.Options{Token: token, Hits: api, Visits: api, Auditor: api, Gallery: app.NewGalleryAPI(realGallery(t))})
	v := vs[0]
	got := r.do(t, "GET", "/api/v1/visits/"+v.ID, nil, auth)
	var d visitBody
	got.json(t, &d)
	if got.status != 200 || d.ID != v.ID || d.State != face.VisitEnd || d.Decision.Name != "Zoë Quinn" || d.Decision.Confidence != 0.91 ||
		len(d.Shots) != 2 || d.BestShot != v.Shots[1].HitID {
		t.Fatalf("details: %d %s", got.status, got.body)
	}
	if d.Images.Best == nil || d.Images.Best.SR != "/api/v1/hits/"+v.BestShot+"/sr.jpg" ||
		d.Images.Gallery != "/api/v1/gallery/Zo%C3%AB%20Quinn/photo.jpg" || len(d.Images.Candidates) != 2 ||
		d.Images.Candidates[1].Name != "Bob" || d.Images.Candidates[1].Photo != "/api/v1/gallery/Bob/photo.jpg" {
		t.Errorf("visit images %+v", d.Images)
	}
	// every shot's images are its hit's, from the hit routes
	for _, s := range d.Shots {
		if s.Images == nil || s.Images.LR != "/api/v1/hits/"+s.HitID+"/lr.png" {
			t.Errorf("shot %s links %+v", s.HitID, s.Images)
		}
		img := r.do(t, "GET", s.Images.SR, nil, auth)
		if img.status != 200 || img.header.Get("Content-Type") != "image/jpeg" {
			t.Fatalf("%s: %d", s.Images.SR, img.status)
		}
		if m, err := jpeg.Decode(bytes.NewReader(img.body)); err != nil || m.Bounds().Dx() != 128 {
			t.Fatalf("%s: %v", s.Images.SR, err)
		}
	}
	// a visit without shots: no best images, empty lists (not null)
	got = r.do(t, "GET", "/api/v1/visits/"+vs[3].ID, nil, auth)
	if got.status != 200 || !bytes.Contains(got.body, []byte(`"shots":[]`)) || !bytes.Contains(got.body, []byte(`"candidates":[]`)) ||
		bytes.Contains(got.body, []byte(`"best"`)) {
		t.Errorf("visit without shots: %d %s", got.status, got.body)
	}
	// a shot whose hit is gone has no image links; the stored one has
	var d2 visitBody
	r.do(t, "GET", "/api/v1/visits/"+vs[2].ID, nil, auth).json(t, &d2)
	if len(d2.Shots) != 2 || d2.Shots[0].Images != nil || d2.Shots[1].Images == nil || d2.Images.Best == nil {
		t.Errorf("visit with a swept shot: %+v", d2)
	}
	unknownID := face.NewID(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
	for _, p := range []string{"/api/v1/visits/" + unknownID, "/api/v1/visits/not-an-id", "/api/v1/visits/" + strings.ToLower(v.ID)} {
		got := r.do(t, "GET", p, nil, auth)
		if got.status != http.StatusNotFound {
			t.Fatalf("%s: %d %s, want 404", p, got.status, got.body)
		}
		if msg, _ := got.apiErr(t); !strings.Contains(msg, "visit") {
			t.Errorf("%s: message %q does not say visit", p, msg)
		}
	}
	if got := r.do(t, "DELETE", "/api/v1/visits/"+v.ID, nil, auth); got.status != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %d, want 405", got.status)
	}
	entries, err := store.AuditLog(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range entries {
		a := e.Action + " " + e.Target
		if e.Action == "hit.image" {
			a += " " + e.Detail
		}
		actions = append(actions, a)
	}
	want := []string{"visit.view " + vs[0].ID, "visit.view " + v.ID, "hit.image " + v.Shots[0].HitID + " sr.jpg", "hit.image " + v.Shots[1].HitID + " sr.jpg",
		"visit.view " + vs[3].ID, "visit.view " + vs[2].ID}
	if !slices.Equal(actions, want) {
		t.Errorf("audit %q, want %q", actions, want)
	}
}

func TestVisitsWithoutHistory(t *testing.T) {
	r := start(t, httpapi.Options{Token: token})
	for _, p := range []string{"/api/v1/visits", "/api/v1/visits/" + face.NewID(time.Now())} {
		got := r.do(t, "GET", p, nil, "Authorization: Bearer "+token)
		if got.status != http.StatusServiceUnavailable {
			t.Errorf("%s: %d, want 503", p, got.status)
		}
		got.apiErr(t)
	}
}
