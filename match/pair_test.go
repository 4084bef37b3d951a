package match

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"
)

func testPair(t *testing.T) *PairEmbedder {
	t.Helper()
	res := loadOther(t, "faceres")
	t.Cleanup(func() { res.Close() })
	p, err := NewPairEmbedder(testEmbedder(t), res)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewPairEmbedderErrors(t *testing.T) {
	e := testEmbedder(t)
	for _, c := range []struct {
		name       string
		photo, res *Embedder
		want       string
	}{
		{"no photo embedder", nil, e, "both embedders are required"},
		{"no restored embedder", e, nil, "both embedders are required"},
		{"same model twice", e, e, "use it alone"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := NewPairEmbedder(c.photo, c.res); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want %q", err, c.want)
			}
		})
	}
}

// TestPairEmbedderSlots: templates hold both models' unit descriptors; a
// photo probe scores a template with face-api's cosine, a restored probe
// with FaceRes', exactly.
func TestPairEmbedderSlots(t *testing.T) {
	p := testPair(t)
	rows := celebaRows(t)
	ids, imgs := byIdentity(rows, "test")
	ctx := context.Background()
	var faces []EmbedInput
	for _, id := range ids[:3] {
		for _, n := range imgs[id][:2] {
			faces = append(faces, EmbedInput{Image: loadCeleba(t, n), Box: celebaBox})
		}
	}
	tmpl, err := p.EmbedTemplates(ctx, faces)
	if err != nil {
		t.Fatal(err)
	}
	restored := make([]EmbedInput, len(faces))
	for i, f := range faces {
		f.Scale = 8
		restored[i] = f
	}
	// one call with photos and restored faces mixed
	probes, err := p.Embed(ctx, append(append([]EmbedInput{}, faces...), restored...))
	if err != nil {
		t.Fatal(err)
	}
	fa, err := p.Photo().Embed(ctx, faces)
	if err != nil {
		t.Fatal(err)
	}
	fr, err := p.Restored().Embed(ctx, faces)
	if err != nil {
		t.Fatal(err)
	}
	d0, d1 := p.Photo().Dim(), p.Restored().Dim()
	if p.Dim() != d0+d1 || !strings.Contains(p.ModelID(), p.Photo().ModelID()) || !strings.Contains(p.ModelID(), p.Restored().ModelID()) {
		t.Fatalf("dim %d id %q", p.Dim(), p.ModelID())
	}
	norm := func(v []float32) float64 {
		var s float64
		for _, x := range v {
			s += float64(x) * float64(x)
		}
		return math.Sqrt(s)
	}
	n := len(faces)
	for i := range faces {
		if tmpl[i].Model != p.ModelID() || probes[i].Model != p.ModelID() || len(tmpl[i].Vector) != p.Dim() || len(probes[i].Vector) != p.Dim() {
			t.Fatalf("face %d: models %q %q, lengths %d %d", i, tmpl[i].Model, probes[i].Model, len(tmpl[i].Vector), len(probes[i].Vector))
		}
		if a, b := norm(tmpl[i].Vector[:d0]), norm(tmpl[i].Vector[d0:]); math.Abs(a-1) > 1e-5 || math.Abs(b-1) > 1e-5 {
			t.Errorf("template %d: slot norms %v %v, want 1 1", i, a, b)
		}
		if a, b := norm(probes[i].Vector[:d0]), norm(probes[i].Vector[d0:]); math.Abs(a-1) > 1e-5 || b != 0 {
			t.Errorf("photo probe %d: slot norms %v %v, want 1 0", i, a, b)
		}
		if a, b := norm(probes[n+i].Vector[:d0]), norm(probes[n+i].Vector[d0:]); a != 0 || math.Abs(b-1) > 1e-5 {
			t.Errorf("restored probe %d: slot norms %v %v, want 0 1", i, a, b)
		}
		for j := range faces {
			if got, want := Similarity(probes[i].Vector, tmpl[j].Vector), Cosine(fa[i].Vector, fa[j].Vector); math.Abs(got-want) > 1e-5 {
				t.Errorf("photo %d vs template %d: %v, face-api cosine %v", i, j, got, want)
			}
			if got, want := Similarity(probes[n+i].Vector, tmpl[j].Vector), Cosine(fr[i].Vector, fr[j].Vector); math.Abs(got-want) > 1e-5 {
				t.Errorf("restored %d vs template %d: %v, faceres cosine %v", i, j, got, want)
			}
		}
	}
	if ReaderModel(p, 0) != p.Photo().ModelID() || ReaderModel(p, 16) != p.Restored().ModelID() || ReaderModel(p.Photo(), 8) != p.Photo().ModelID() {
		t.Errorf("reader models %q %q", ReaderModel(p, 0), ReaderModel(p, 16))
	}
}

// TestPairGalleryReembed: a gallery enrolled with face-api alone is not
// searchable by the pair until re-embedded; then photo searches give the
// face-api scores they gave before and restored faces FaceRes' scores.
func TestPairGalleryReembed(t *testing.T) {
	emb := testEmbedder(t)
	p := testPair(t)
	fx := newFixture(t, 3, 2)
	dir := t.TempDir()
	ctx := context.Background()
	th := Thresholds{Identify: 0.93, Margin: 0.02, Verify: 0.93}
	opts := Options{Path: filepath.Join(dir, "gallery.db"), KeyFile: newKey(t, dir), Embedder: emb, Finder: celebaTiles{}, Thresholds: &th}
	g, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, person := range fx.people {
		ph, err := PhotosFromFiles([]string{celebaPath(t, fx.enrol[person][0]), celebaPath(t, fx.enrol[person][1])})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := g.Add(ctx, person, ph); err != nil {
			t.Fatal(err)
		}
	}
	probe := loadCeleba(t, fx.probe[fx.people[0]])
	before, err := g.SearchFace(ctx, EmbedInput{Image: probe, Box: celebaBox}, 0)
	if err != nil {
		t.Fatal(err)
	}
	g.Close()

	opts.Embedder = p
	g, err = Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if r, err := g.SearchFace(ctx, EmbedInput{Image: probe, Box: celebaBox}, 0); err != nil || len(r.Candidates) != 0 {
		t.Fatalf("before reembed: %v, %d candidates, want none", err, len(r.Candidates))
	}
	rep, err := g.Reembed(ctx, p)
	if err != nil || rep.Stale != 6 || rep.Reembedded != 6 || len(rep.Failed) != 0 {
		t.Fatalf("reembed: %v %+v", err, rep)
	}
	after, err := g.SearchFace(ctx, EmbedInput{Image: probe, Box: celebaBox}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Candidates) != len(before.Candidates) || after.Candidates[0].Name != fx.people[0] {
		t.Fatalf("after reembed: %+v", after.Candidates)
	}
	for i := range before.Candidates {
		b, a := before.Candidates[i], after.Candidates[i]
		if a.Name != b.Name || math.Abs(a.Similarity-b.Similarity) > 1e-5 {
			t.Errorf("candidate %d: %s %.6f after, %s %.6f before", i, a.Name, a.Similarity, b.Name, b.Similarity)
		}
	}
	// the same face as a restored one is scored by FaceRes
	res, err := g.SearchFace(ctx, EmbedInput{Image: probe, Box: celebaBox, Scale: 8}, 0)
	if err != nil {
		t.Fatal(err)
	}
	want, err := p.Restored().Embed(ctx, []EmbedInput{{Image: probe, Box: celebaBox}})
	if err != nil {
		t.Fatal(err)
	}
	var best float64 = -2
	for _, n := range fx.enrol[fx.people[0]] {
		e, err := p.Restored().Embed(ctx, []EmbedInput{{Image: loadCeleba(t, n), Box: celebaBox}})
		if err != nil {
			t.Fatal(err)
		}
		best = max(best, Cosine(want[0].Vector, e[0].Vector))
	}
	var got float64 = math.NaN()
	for _, c := range res.Candidates {
		if c.Name == fx.people[0] {
			got = c.Similarity
		}
	}
	if math.Abs(got-best) > 1e-4 {
		t.Errorf("restored search of %s: %.5f, faceres best cosine %.5f", fx.people[0], got, best)
	}
}
