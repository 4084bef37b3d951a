package eval

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/srdgd/srdgd/match"
)

// synthetic descriptors: each identity a random unit direction, its photo
// and sightings noisy copies (sightings noisier, and sharing an "SR" bias,
// as SR faces resemble each other)
func synthetic(ids, perID int, seed uint64) (gallery, sightings, probes []Descriptor) {
	rng := rand.New(rand.NewPCG(seed, 1))
	const dim = 32
	unit := func(v []float32) []float32 {
		var n float64
		for _, x := range v {
			n += float64(x) * float64(x)
		}
		for i := range v {
			v[i] /= float32(math.Sqrt(n))
		}
		return v
	}
	bias := make([]float32, dim)
	for i := range bias {
		bias[i] = float32(rng.NormFloat64())
	}
	noisy := func(c []float32, sd float64, sr bool) []float32 {
		v := make([]float32, dim)
		for i := range v {
			v[i] = c[i] + float32(sd*rng.NormFloat64())
			if sr {
				v[i] += 0.3 * bias[i] / float32(math.Sqrt(dim))
			}
		}
		return unit(v)
	}
	for i := 0; i < ids; i++ {
		id := fmt.Sprintf("id%03d", i)
		c := make([]float32, dim)
		for j := range c {
			c[j] = float32(rng.NormFloat64())
		}
		c = unit(c)
		gallery = append(gallery, Descriptor{Image: id + "-g", Identity: id, Vec: noisy(c, 0.05, false)})
		for k := 0; k < perID; k++ {
			sightings = append(sightings, Descriptor{Image: fmt.Sprintf("%s-s%d", id, k), Identity: id, Vec: noisy(c, 0.25, true)})
			probes = append(probes, Descriptor{Image: fmt.Sprintf("%s-p%d", id, k), Identity: id, Vec: noisy(c, 0.25, true)})
		}
	}
	return gallery, sightings, probes
}

func TestFitTemplateMap(t *testing.T) {
	g, s, _ := synthetic(40, 2, 7)
	a, b, err := FitTemplateMap(g, s)
	if err != nil {
		t.Fatal(err)
	}
	// after the map the impostor template pairs have the photo pairs' mean
	var photo, tmpl []float64
	for _, x := range s {
		for _, y := range g {
			if x.Identity != y.Identity {
				photo = append(photo, match.Similarity(x.Vec, y.Vec))
			}
		}
		for _, y := range s {
			if x.Identity < y.Identity {
				tmpl = append(tmpl, a*match.Similarity(x.Vec, y.Vec)+b)
			}
		}
	}
	mp, sp := meanSD(photo)
	mt, st := meanSD(tmpl)
	if math.Abs(mp-mt) > 1e-9 || math.Abs(sp-st) > 1e-9 {
		t.Errorf("mapped impostors mean %.4f sd %.4f, photo impostors %.4f %.4f", mt, st, mp, sp)
	}
	if _, _, err := FitTemplateMap(g[:1], s[:1]); err == nil {
		t.Error("one identity: no error")
	}
}

// TestTemplateStudySynthetic: confirmed sightings that are the probes
// themselves must raise Rank-1 to 1; the study's rows must be there in
// order, on the same probes.
func TestTemplateStudySynthetic(t *testing.T) {
	g, s, p := synthetic(50, 2, 3)
	rows, rule, err := TemplateStudy(TemplateStudyOptions{Gallery: g, Sightings: p, Probes: p, Confirm: []int{2},
		Identify: 0.9, Margin: 0.02, Review: 0.5, NegMargins: []float64{0}})
	if err != nil {
		t.Fatal(err)
	}
	if rule.A <= 0 {
		t.Errorf("map A = %v", rule.A)
	}
	if len(rows) != 4 || rows[0].Templates != 0 || rows[1].Templates != 100 {
		t.Fatalf("rows %+v", rows)
	}
	if rows[1].R1 != 1 || rows[0].R1 >= 1 {
		t.Errorf("Rank-1 photos only %.3f, with the probes as templates %.3f (want < 1 and 1)", rows[0].R1, rows[1].R1)
	}
	// real (independent) sightings: the study runs and reports every row
	rows, _, err = TemplateStudy(TemplateStudyOptions{Gallery: g, Sightings: s, Probes: p, Confirm: []int{1, 2},
		Identify: 0.9, Margin: 0.02, Review: 0.5, NegMargins: []float64{0, 0.05}})
	if err != nil || len(rows) != 7 {
		t.Fatalf("%d rows, %v", len(rows), err)
	}
	if md := TemplateMarkdown(rows); len(md) == 0 {
		t.Error("no markdown")
	}
}

// TestTemplateStudyCelebA is the measurement behind the feedback defaults
// (bench/templates/run.sh): SR faces of CelebA val probes as the sightings
// an operator reviews, CelebA test probes as the faces searched, both from
// the caches of `srdgd eval --celeba ... --split val|test --scale 8
// --sampler fast`. CelebA val and test identities are the identities of
// the score models' training (and of the gallery's train photos). It runs
// when SRDGD_TEMPLATES names the folder holding val/cache.jsonl and
// test/cache.jsonl.
func TestTemplateStudyCelebA(t *testing.T) {
	dir := os.Getenv("SRDGD_TEMPLATES")
	if dir == "" {
		t.Skip("SKIPPING: set SRDGD_TEMPLATES=<folder with val/ and test/ eval caches> to run the template study")
	}
	cel := bakeoffCeleba(t)
	load := func(split string) ([]Descriptor, []Descriptor, string) {
		set, err := CelebASet(cel, split, 0)
		if err != nil {
			t.Fatal(err)
		}
		g, p, model, err := CachedDescriptors(filepath.Join(dir, split, "cache.jsonl"), set, "sr-fast-unguided", 8)
		if err != nil {
			t.Fatal(err)
		}
		return g, p, model
	}
	gal, sightings, m1 := load("val")
	_, probes, m2 := load("test")
	if m1 != m2 {
		t.Fatalf("val cache of %q, test cache of %q", m1, m2)
	}
	cal, err := match.DefaultCalibration()
	if err != nil {
		t.Fatal(err)
	}
	op, err := cal.Entry(8, 1)
	if err != nil {
		t.Fatal(err)
	}
	rows, rule, err := TemplateStudy(TemplateStudyOptions{Gallery: gal, Sightings: sightings, Probes: probes,
		Confirm: []int{1, 2, 3}, Identify: op.Identify, Margin: op.Margin, Review: op.Identify,
		NegMargins: []float64{0, 0.02, 0.05}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("embedder %s; %d gallery identities, %d val sightings, %d test probes (16x16, fast); template map a=%.4f b=%.4f; operating point identify %.4f margin %.3f,\n%s",
		m1, len(identities(gal)), len(sightings), len(probes), rule.A, rule.B, op.Identify, op.Margin, TemplateMarkdown(rows))
}
