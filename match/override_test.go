package match

import (
	"context"
	"errors"
	"image"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/srdgd/srdgd/face"
)

// TestPersonOverride: a person's threshold override holds decisions whose
// top candidate is that person to the shifted bar (stricter: the probe
// that was named is not; looser: named again), the hit says which override
// decided, other people keep the base, it survives a reopen and clears.
func TestPersonOverride(t *testing.T) {
	fx := newFixture(t, 3, 1)
	ctx := context.Background()
	th := Thresholds{Identify: 0.93, Margin: 0.02, Verify: 0.93}
	g, o := enrolledGallery(t, fx, th)
	defer func() { g.Close() }()
	a, b := fx.people[0], fx.people[1]
	embed := func(name string) Embedding {
		t.Helper()
		img := loadCeleba(t, name).(interface {
			SubImage(image.Rectangle) image.Image
		}).SubImage(celebaBox)
		es, err := g.EmbedFaces(ctx, []EmbedInput{{Image: img}})
		if err != nil {
			t.Fatal(err)
		}
		return es[0]
	}
	pa, pb := embed(fx.probe[a]), embed(fx.probe[b])
	search := func(e Embedding) *SearchResult {
		t.Helper()
		r, err := g.SearchEmbeddingAt(e, 3, th)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	base := search(pa)
	if base.Match == nil || base.Match.Name != a || base.Override != "" {
		t.Fatalf("without an override: %+v (the fixture's probe of %s must be named)", base, a)
	}
	top := base.Candidates[0].Similarity
	// stricter than this probe's similarity: unknown, by the override
	strict := Offset{Threshold: math.Min(top-th.Identify+0.01, MaxOffset)}
	if err := g.SetOffset(ctx, a, &strict); err != nil {
		t.Fatal(err)
	}
	r := search(pa)
	if r.Match != nil || r.Reason != face.ReasonBelowThreshold || r.Override != face.OverridePerson || r.OverrideName != a ||
		math.Abs(r.Thresholds.Identify-(th.Identify+strict.Threshold)) > 1e-9 {
		t.Fatalf("stricter override %+v: match %v reason %q override %q %q threshold %v", strict, r.Match, r.Reason, r.Override, r.OverrideName, r.Thresholds.Identify)
	}
	h := NewHit(&face.Shot{Probe: &face.Probe{Camera: "door"}}, r, "", th, nil, time.Now())
	if h.Match.Threshold != r.Thresholds.Identify || !strings.Contains(h.Match.Explanation.Text, "person threshold override for "+a) {
		t.Errorf("hit threshold %v, explanation %q: want the override's %v, named", h.Match.Threshold, h.Match.Explanation.Text, r.Thresholds.Identify)
	}
	// another person's decisions keep the base
	if rb := search(pb); rb.Override != "" || rb.Thresholds.Identify != th.Identify {
		t.Errorf("%s's search shifted by %s's override: %+v", b, a, rb)
	}
	// it survives a reopen and is listed
	g.Close()
	var err error
	if g, err = Open(ctx, o); err != nil {
		t.Fatal(err)
	}
	if r := search(pa); r.Match != nil || r.Override != face.OverridePerson {
		t.Errorf("after a reopen: %+v", r)
	}
	people, err := g.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range people {
		if want := map[string]Offset{a: strict}[p.Name]; p.Offset != want {
			t.Errorf("%s listed with offset %+v, want %+v", p.Name, p.Offset, want)
		}
	}
	// looser: named again, by the override; then cleared
	loose := Offset{Threshold: -0.05, Margin: -0.01}
	if err := g.SetOffset(ctx, a, &loose); err != nil {
		t.Fatal(err)
	}
	if r := search(pa); r.Match == nil || r.Override != face.OverridePerson || math.Abs(r.Thresholds.Margin-(th.Margin-0.01)) > 1e-9 {
		t.Errorf("looser override: %+v", r)
	}
	if err := g.SetOffset(ctx, a, nil); err != nil {
		t.Fatal(err)
	}
	if r := search(pa); r.Match == nil || r.Override != "" {
		t.Errorf("cleared: %+v", r)
	}
	// bad input
	for _, c := range []struct {
		who  string
		o    Offset
		want string
	}{
		{a, Offset{Threshold: 0.31}, "threshold_offset 0.31"},
		{a, Offset{Margin: math.NaN()}, "margin_offset NaN"},
		{"Nobody Here", Offset{Threshold: 0.01}, "not"},
	} {
		if err := g.SetOffset(ctx, c.who, &c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("SetOffset(%q, %+v): %v, want %q", c.who, c.o, err, c.want)
		}
	}
	if err := g.SetOffset(ctx, "Nobody Here", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown person: %v, want ErrNotFound", err)
	}
}

// TestCameraOffsets: the per-camera override shifts the thresholds of its
// camera only, within bounds, and says so.
func TestCameraOffsets(t *testing.T) {
	th := Thresholds{Identify: 0.93, Margin: 0.02, Verify: 0.9}
	c := CameraOffsets{"door": {Threshold: 0.03, Margin: -0.05}, "yard": {}, "lab": {Threshold: 0.3}}
	for _, tc := range []struct {
		camera       string
		identify, mm float64
		scope        string
	}{
		{"door", 0.96, 0, face.OverrideCamera},
		{"yard", 0.93, 0.02, ""},
		{"gate", 0.93, 0.02, ""},
		{"lab", 1, 0.02, face.OverrideCamera},
	} {
		got, _, scope := c.For(tc.camera, th)
		if math.Abs(got.Identify-tc.identify) > 1e-9 || math.Abs(got.Margin-tc.mm) > 1e-9 || scope != tc.scope || got.Verify != th.Verify {
			t.Errorf("%s: %+v %q, want identify %v margin %v %q", tc.camera, got, scope, tc.identify, tc.mm, tc.scope)
		}
	}
}

// enrolledGallery opens a new encrypted gallery with the real embedder and
// thresholds th, and enrols each of fx's people from their first photo.
func enrolledGallery(t *testing.T, fx galleryFixture, th Thresholds) (*Gallery, Options) {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	o := Options{Path: filepath.Join(dir, "g.db"), KeyFile: newKey(t, dir), Embedder: testEmbedder(t), Finder: FixedBox(celebaBox), Thresholds: &th}
	g, err := Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range fx.people {
		if res, err := g.Add(ctx, p, []Photo{{Source: p + ".jpg", Data: readCeleba(t, fx.enrol[p][0])}}); err != nil || !res[0].Enrolled {
			g.Close()
			t.Fatalf("enrol %s: %v %+v", p, err, res)
		}
	}
	return g, o
}
