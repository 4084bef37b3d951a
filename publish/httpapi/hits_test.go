package httpapi_test

import (
	"bytes"
	"image"
	"image/jpeg"
	"image/png"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/publish/httpapi"
)

// hitFixture fills a history with 5 hits a second apart, oldest first:
// door unknown, door known "alice", yard unknown, door unknown, yard known "bob".
func hitFixture(t testing.TB) (*memHistory, []*face.Hit) {
	hist := &memHistory{}
	t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	spec := []struct {
		camera string
		known  bool
		name   string
	}{{"door", false, ""}, {"door", true, "alice"}, {"yard", false, ""}, {"door", false, ""}, {"yard", true, "bob"}}
	var hits []*face.Hit
	for i, s := range spec {
		h := makeHit(t, t0.Add(time.Duration(i)*time.Second), s.camera, i, s.known, s.name)
		hist.add(h)
		hits = append(hits, h)
	}
	return hist, hits
}

type hitsPage struct {
	Hits []struct {
		ID     string `json:"id"`
		Camera string `json:"camera"`
		Match  struct {
			Known bool   `json:"known"`
			Name  string `json:"name"`
		} `json:"match"`
		Images struct{ LR, SR, Preview, Gallery string } `json:"images"`
	} `json:"hits"`
	Next string `json:"next"`
}

func (p hitsPage) ids() []string {
	var out []string
	for _, h := range p.Hits {
		out = append(out, h.ID)
	}
	return out
}

func TestHitsList(t *testing.T) {
	hist, hits := hitFixture(t)
	r := start(t, httpapi.Options{Token: token, Hits: hist, Auditor: hist})
	auth := "Authorization: Bearer " + token
	id := func(i ...int) []string {
		var out []string
		for _, k := range i {
			out = append(out, hits[k].ID)
		}
		return out
	}
	cases := []struct {
		name, query string
		want        []string
		next        string
	}{
		{"all, newest first", "", id(4, 3, 2, 1, 0), ""},
		{"camera", "?camera=door", id(3, 1, 0), ""},
		{"known", "?known=true", id(4, 1), ""},
		{"unknown", "?known=false", id(3, 2, 0), ""},
		{"person", "?person=alice", id(1), ""},
		{"first page", "?limit=2", id(4, 3), hits[3].ID},
		{"second page", "?limit=2&before=" + hits[3].ID, id(2, 1), hits[1].ID},
		{"last page", "?limit=2&before=" + hits[1].ID, id(0), ""},
		{"since", "?since=2026-11-26T08:00:03Z", id(4, 3), ""},
		{"camera and known", "?camera=yard&known=false", id(2), ""},
		{"nothing", "?camera=garage", nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := r.do(t, "GET", "/api/v1/hits"+c.query, nil, auth)
			if got.status != 200 {
				t.Fatalf("%d %s", got.status, got.body)
			}
			var p hitsPage
			got.json(t, &p)
			if !slices.Equal(p.ids(), c.want) || p.Next != c.next {
				t.Errorf("ids %v next %q, want %v next %q", p.ids(), p.Next, c.want, c.next)
			}
			if !bytes.Contains(got.body, []byte(`"hits":[`)) {
				t.Errorf("hits is not a list: %s", got.body)
			}
			for _, h := range p.Hits {
				if h.Images.SR != "/api/v1/hits/"+h.ID+"/sr.jpg" || (h.Match.Known != (h.Images.Gallery != "")) {
					t.Errorf("hit %s links %+v", h.ID, h.Images)
				}
			}
		})
	}
	bad := []struct{ query, field string }{
		{"?known=maybe", "known"},
		{"?limit=0", "limit"},
		{"?limit=501", "limit"},
		{"?limit=x", "limit"},
		{"?before=123", "before"},
		{"?since=yesterday", "since"},
		{"?cam=door", "cam"},
		{"?camera=a&camera=b", "camera"},
	}
	for _, c := range bad {
		t.Run("bad "+c.query, func(t *testing.T) {
			got := r.do(t, "GET", "/api/v1/hits"+c.query, nil, auth)
			if got.status != http.StatusBadRequest {
				t.Fatalf("%d %s, want 400", got.status, got.body)
			}
			if _, f := got.apiErr(t); f != c.field {
				t.Errorf("field %q, want %q", f, c.field)
			}
		})
	}
	// every successful list was audited, the refused ones not
	var lists int
	for _, a := range hist.auditActions() {
		if strings.HasPrefix(a, "hits.list ") {
			lists++
		}
	}
	if lists != len(cases) {
		t.Errorf("%d hits.list audit entries, want %d", lists, len(cases))
	}
}

func TestHitDetailsAndImages(t *testing.T) {
	hist, hits := hitFixture(t)
	r := start(t, httpapi.Options{Token: token, Hits: hist, Auditor: hist})
	auth := "Authorization: Bearer " + token
	h := hits[1]
	unknownID := face.NewID(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))

	got := r.do(t, "GET", "/api/v1/hits/"+h.ID, nil, auth)
	var d struct {
		ID         string           `json:"id"`
		Camera     string           `json:"camera"`
		Attributes []face.Attribute `json:"attributes"`
		Match      face.Match       `json:"match"`
		SR         face.SR          `json:"sr"`
		Images     struct{ Gallery, Closest string }
	}
	got.json(t, &d)
	if got.status != 200 || d.ID != h.ID || d.Match.Name != "alice" || len(d.Attributes) != 1 || d.SR.Sampler != "pc" ||
		d.Images.Gallery != "/api/v1/gallery/alice/photo.jpg" {
		t.Fatalf("details: %d %s", got.status, got.body)
	}
	// the decision explained; no link to a photo no gallery can serve
	if x := d.Match.Explanation; x.Text != h.Match.Explanation.Text || !strings.HasPrefix(x.Text, "Named alice: 0.950") || x.Closest == nil || d.Images.Closest != "" {
		t.Fatalf("explanation %+v, closest photo %q", x, d.Images.Closest)
	}
	if bytes.Contains(got.body, []byte("SRJPEG")) {
		t.Error("details carry the image bytes")
	}
	images := []struct {
		name, ctype string
		size        int
	}{{"lr.png", "image/png", 16}, {"sr.jpg", "image/jpeg", 128}, {"preview.jpg", "image/jpeg", 128}}
	for _, im := range images {
		t.Run(im.name, func(t *testing.T) {
			got := r.do(t, "GET", "/api/v1/hits/"+h.ID+"/"+im.name, nil, auth)
			if got.status != 200 || got.header.Get("Content-Type") != im.ctype {
				t.Fatalf("%d %q", got.status, got.header.Get("Content-Type"))
			}
			var img image.Image
			var err error
			if im.ctype == "image/png" {
				img, err = png.Decode(bytes.NewReader(got.body))
			} else {
				img, err = jpeg.Decode(bytes.NewReader(got.body))
			}
			if err != nil || img.Bounds().Dx() != im.size {
				t.Fatalf("decode: %v", err)
			}
		})
	}
	notFound := []string{
		"/api/v1/hits/" + unknownID,
		"/api/v1/hits/" + unknownID + "/sr.jpg",
		"/api/v1/hits/not-an-id",
		"/api/v1/hits/" + h.ID + "/hr.png",
	}
	for _, p := range notFound {
		t.Run(p, func(t *testing.T) {
			got := r.do(t, "GET", p, nil, auth)
			if got.status != http.StatusNotFound {
				t.Fatalf("%d %s, want 404", got.status, got.body)
			}
			got.apiErr(t)
		})
	}
	// an image fetch is audited on the hit, the image named in the detail
	// (so the audit page groups one hit's fetches and filters by hit id)
	want := []string{"hit.view " + h.ID + " ", "hit.image " + h.ID + " lr.png", "hit.image " + h.ID + " sr.jpg", "hit.image " + h.ID + " preview.jpg"}
	var audited []string
	for _, a := range hist.records() {
		audited = append(audited, a.Action+" "+a.Target+" "+a.Detail)
	}
	if !slices.Equal(audited, want) {
		t.Errorf("audit %q, want %q", audited, want)
	}
	for _, a := range hist.records() {
		if a.Actor != "token" || !strings.HasPrefix(a.Remote, "127.0.0.1:") {
			t.Errorf("audit entry %+v: want actor token and the remote address", a)
		}
	}

	// the audit log, in pages
	var page1, page2 struct {
		Entries []httpapi.AuditRecord `json:"entries"`
		Next    *int64                `json:"next"`
	}
	r.do(t, "GET", "/api/v1/audit?limit=3", nil, auth).json(t, &page1)
	if len(page1.Entries) != 3 || page1.Next == nil || *page1.Next != 3 || page1.Entries[0].Action != "hit.view" {
		t.Fatalf("audit page 1: %+v", page1)
	}
	r.do(t, "GET", "/api/v1/audit?limit=3&after=3", nil, auth).json(t, &page2)
	if len(page2.Entries) != 1 || page2.Next != nil || page2.Entries[0].Seq != 4 {
		t.Fatalf("audit page 2: %+v", page2)
	}
	if got := r.do(t, "GET", "/api/v1/audit?after=-1", nil, auth); got.status != 400 {
		t.Errorf("after=-1: %d", got.status)
	}
}

func TestNoAccessWithoutAudit(t *testing.T) {
	hist, hits := hitFixture(t)
	hist.failAudit = true
	r := start(t, httpapi.Options{Token: token, Hits: hist, Auditor: hist})
	for _, p := range []string{"/api/v1/hits", "/api/v1/hits/" + hits[0].ID, "/api/v1/hits/" + hits[0].ID + "/sr.jpg"} {
		got := r.do(t, "GET", p, nil, "Authorization: Bearer "+token)
		if got.status != http.StatusInternalServerError || bytes.Contains(got.body, []byte(hits[0].ID)) {
			t.Errorf("%s with a failing audit log: %d %s, want 500 without data", p, got.status, got.body)
		}
		if msg, _ := got.apiErr(t); strings.Contains(msg, "disk full") {
			t.Errorf("internal error details leak: %q", msg)
		}
	}
}
