package httpapi_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/internal/app"
	"github.com/srdgd/srdgd/match"
	"github.com/srdgd/srdgd/publish/httpapi"
)

// TestHitFeedbackAndWatchlist gives verdicts on hits through the API to a
// real gallery (real embedder): each stores a template of the right kind
// for the right person, audited; bad requests name the field and store
// nothing; the watchlist flag is set and cleared.
func TestHitFeedbackAndWatchlist(t *testing.T) {
	rows := celebaRows(t)
	g := realGallery(t)
	ctx := context.Background()
	// two enrolled people: the identities of faces 0 and 1
	var people []string
	for _, i := range []int{0, 1} {
		name := "celeb " + rows[i].identity
		if res, err := g.Add(ctx, name, []match.Photo{{Source: rows[i].image, Data: readFile(t, celebaPath(t, rows[i].image))}}); err != nil || !res[0].Enrolled {
			t.Fatalf("enrol %s: %v %+v", name, err, res)
		}
		people = append(people, name)
	}
	hist := &memHistory{}
	now := time.Now().UTC()
	named := makeHit(t, now.Add(-3*time.Second), "door", 2, true, people[0])
	unknown := makeHit(t, now.Add(-2*time.Second), "door", 3, false, "")
	unknown.Match.TopK = nil
	ranked := makeHit(t, now.Add(-time.Second), "door", 4, false, "")
	ranked.Match.TopK = []face.Candidate{{PersonID: 2, Name: people[1], Similarity: 0.9}}
	noImage := makeHit(t, now, "door", 5, true, people[0])
	noImage.SRJPEG = nil
	for _, h := range []*face.Hit{named, unknown, ranked, noImage} {
		hist.add(h)
	}
	r := start(t, httpapi.Options{Token: token, Hits: hist, Gallery: app.NewGalleryAPI(g), Auditor: hist, MaxBodyBytes: 1 << 20})
	auth := "Authorization: Bearer " + token
	jsonCT := "Content-Type: application/json"
	post := func(hit, body string) reply {
		return r.do(t, "POST", "/api/v1/hits/"+hit+"/feedback", strings.NewReader(body), auth, jsonCT)
	}
	kinds := func(name string) []string {
		tl, err := g.Templates(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		var k []string
		for _, x := range tl {
			k = append(k, x.Kind+":"+x.Source)
		}
		return k
	}

	for _, c := range []struct {
		name   string
		hit    string
		body   string
		status int
		field  string
		stored []string // people a template was stored for
	}{
		{"confirm", unknown.ID, `{"verdict":"confirm","person":"` + people[1] + `"}`, 201, "", []string{people[1]}},
		{"reject defaults to the named person", named.ID, `{"verdict":"reject"}`, 201, "", []string{people[0]}},
		{"reject defaults to the top candidate", ranked.ID, `{"verdict":"reject"}`, 201, "", []string{people[1]}},
		{"not enrolled rejects the candidates", named.ID, `{"verdict":"not_enrolled"}`, 201, "", []string{people[0]}},
		{"confirm without a person", unknown.ID, `{"verdict":"confirm"}`, 400, "person", nil},
		{"reject with nobody to reject", unknown.ID, `{"verdict":"reject"}`, 400, "person", nil},
		{"not enrolled with a person", named.ID, `{"verdict":"not_enrolled","person":"x"}`, 400, "person", nil},
		{"unknown verdict", named.ID, `{"verdict":"maybe"}`, 400, "verdict", nil},
		{"unknown field", named.ID, `{"verdict":"confirm","person":"x","score":1}`, 400, "score", nil},
		{"malformed", named.ID, `{"verdict":`, 400, "", nil},
		{"unknown person", unknown.ID, `{"verdict":"confirm","person":"Nobody Here"}`, 404, "", nil},
		{"unknown hit", "01ZZZZZZZZZZZZZZZZZZZZZZZZ", `{"verdict":"reject","person":"` + people[0] + `"}`, 404, "", nil},
		{"hit without its SR face", noImage.ID, `{"verdict":"reject"}`, 409, "", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := post(c.hit, c.body)
			if got.status != c.status {
				t.Fatalf("%d %s, want %d", got.status, got.body, c.status)
			}
			if c.status != 201 {
				if _, f := got.apiErr(t); f != c.field {
					t.Errorf("field %q, want %q", f, c.field)
				}
				return
			}
			var resp struct {
				Hit    string                   `json:"hit"`
				Stored []httpapi.FeedbackResult `json:"stored"`
			}
			got.json(t, &resp)
			var who []string
			for _, s := range resp.Stored {
				who = append(who, s.Person)
				if s.Template <= 0 {
					t.Errorf("template id %d", s.Template)
				}
			}
			if resp.Hit != c.hit || !slices.Equal(who, c.stored) {
				t.Errorf("stored %+v for hit %s, want %v for %s", resp.Stored, resp.Hit, c.stored, c.hit)
			}
		})
	}
	if k := kinds(people[0]); !slices.Equal(k, []string{"rejected:" + named.ID, "rejected:" + named.ID}) {
		t.Errorf("%s's templates %v", people[0], k)
	}
	if k := kinds(people[1]); !slices.Equal(k, []string{"rejected:" + ranked.ID, "confirmed:" + unknown.ID}) {
		t.Errorf("%s's templates %v", people[1], k)
	}
	var fb []string
	for _, a := range hist.audit {
		if strings.HasPrefix(a.Action, "hit.feedback") {
			fb = append(fb, a.Action+" "+a.Target)
		}
	}
	if len(fb) != 5 || fb[4] != "hit.feedback.failed "+unknown.ID {
		t.Errorf("feedback audit entries %q: want 4 stored and the failed one", fb)
	}

	// watchlist from the API
	path := "/api/v1/gallery/" + strings.ReplaceAll(people[1], " ", "%20")
	for _, on := range []bool{true, false} {
		body := `{"watchlist":false}`
		if on {
			body = `{"watchlist":true}`
		}
		if got := r.do(t, "PATCH", path, strings.NewReader(body), auth, jsonCT); got.status != 200 {
			t.Fatalf("watchlist %v: %d %s", on, got.status, got.body)
		}
		ps, _ := g.List(ctx)
		for _, p := range ps {
			if p.Name == people[1] && p.Watchlist != on {
				t.Errorf("watchlist %v, want %v", p.Watchlist, on)
			}
		}
	}
	// the threshold override from the API: listed, used by search, cleared
	if got := r.do(t, "PATCH", path, strings.NewReader(`{"threshold_offset":0.05,"margin_offset":-0.01}`), auth, jsonCT); got.status != 200 {
		t.Fatalf("override: %d %s", got.status, got.body)
	}
	var listed struct {
		People []httpapi.Person `json:"people"`
	}
	r.do(t, "GET", "/api/v1/gallery", nil, auth).json(t, &listed)
	for _, p := range listed.People {
		want := map[string][2]float64{people[1]: {0.05, -0.01}}[p.Name]
		if p.ThresholdOffset != want[0] || p.MarginOffset != want[1] {
			t.Errorf("%s listed with override %v/%v, want %v", p.Name, p.ThresholdOffset, p.MarginOffset, want)
		}
	}
	// (that search then holds people[1] to the shifted bar: match's TestPersonOverride)
	if ps, _ := g.List(ctx); !slices.ContainsFunc(ps, func(p match.Person) bool {
		return p.Name == people[1] && p.Offset == match.Offset{Threshold: 0.05, Margin: -0.01}
	}) {
		t.Errorf("the gallery does not hold the override: %+v", ps)
	}
	if got := r.do(t, "PATCH", path, strings.NewReader(`{"threshold_offset":0,"margin_offset":0}`), auth, jsonCT); got.status != 200 {
		t.Fatalf("clear the override: %d %s", got.status, got.body)
	}
	if ps, _ := g.List(ctx); slices.ContainsFunc(ps, func(p match.Person) bool { return !p.Offset.IsZero() }) {
		t.Errorf("override not cleared: %+v", ps)
	}
	if fb := hist.auditActions(); !slices.Contains(fb, "gallery.override "+people[1]) {
		t.Errorf("override not audited: %q", fb)
	}
	for _, c := range []struct {
		path, body string
		status     int
	}{
		{path, `{}`, 400},
		{path, `{"watchlist":"yes"}`, 400},
		{path, `{"threshold_offset":0.5}`, 400},
		{path, `{"threshold_offset":"high"}`, 400},
		{"/api/v1/gallery/Nobody", `{"watchlist":true}`, 404},
		{"/api/v1/gallery/Nobody", `{"threshold_offset":0.01}`, 404},
	} {
		if got := r.do(t, "PATCH", c.path, strings.NewReader(c.body), auth, jsonCT); got.status != c.status {
			t.Errorf("PATCH %s %s: %d %s, want %d", c.path, c.body, got.status, got.body, c.status)
		}
	}
	if got := r.do(t, "PATCH", path, strings.NewReader(`{"watchlist":true}`), jsonCT); got.status != http.StatusUnauthorized {
		t.Errorf("PATCH without the token: %d", got.status)
	}
}

// TestVisitFeedback answers visits of the real history store: the verdict
// applies to the visit's decision and learns from its best shot's SR face;
// a visit without a stored best shot is 409, an unknown one 404.
func TestVisitFeedback(t *testing.T) {
	if !modelsPresent(t) {
		t.Skip("SKIPPING: the face models (a real gallery) are absent")
	}
	rows := celebaRows(t)
	store, vs := visitFixture(t)
	api := app.HistoryAPI{S: store}
	g := realGallery(t)
	ctx := context.Background()
	for i, name := range []string{"Zoë Quinn", "Bob"} {
		if res, err := g.Add(ctx, name, []match.Photo{{Source: rows[i].image, Data: readFile(t, celebaPath(t, rows[i].image))}}); err != nil || !res[0].Enrolled {
			t.Fatalf("enrol %s: %v %+v", name, err, res)
		}
	}
	r := start(t, httpapi.Options{Token: token, Hits: api, Visits: api, Auditor: api, Gallery: app.NewGalleryAPI(g)})
	auth, jsonCT := "Authorization: Bearer "+token, "Content-Type: application/json"
	for _, c := range []struct {
		name, visit, body string
		status            int
		stored            []string
	}{
		{"reject the named person", vs[0].ID, `{"verdict":"reject"}`, 201, []string{"Zoë Quinn"}},
		{"confirm an unknown visit", vs[1].ID, `{"verdict":"confirm","person":"bob"}`, 201, []string{"bob"}},
		{"not enrolled: the top candidate", vs[1].ID, `{"verdict":"not_enrolled"}`, 201, []string{"Bob"}},
		{"no shots", vs[3].ID, `{"verdict":"confirm","person":"Bob"}`, 409, nil},
		{"no candidate to reject", vs[3].ID, `{"verdict":"reject"}`, 400, nil},
		{"unknown visit", "01ZZZZZZZZZZZZZZZZZZZZZZZZ", `{"verdict":"reject","person":"Bob"}`, 404, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := r.do(t, "POST", "/api/v1/visits/"+c.visit+"/feedback", strings.NewReader(c.body), auth, jsonCT)
			if got.status != c.status {
				t.Fatalf("%d %s, want %d", got.status, got.body, c.status)
			}
			if c.status != 201 {
				got.apiErr(t)
				return
			}
			var resp struct {
				Hit, Visit string
				Stored     []httpapi.FeedbackResult
			}
			got.json(t, &resp)
			var who []string
			for _, s := range resp.Stored {
				who = append(who, s.Person)
			}
			if resp.Visit != c.visit || resp.Hit == "" || !slices.Equal(who, c.stored) {
				t.Errorf("response %+v, want %v stored for visit %s", resp, c.stored, c.visit)
			}
		})
	}
	tl, err := g.Templates(ctx, "Bob")
	if err != nil || len(tl) != 2 || tl[0].Source != vs[1].ID {
		t.Errorf("Bob's templates %+v (%v): want 2 from visit %s", tl, err, vs[1].ID)
	}
}
