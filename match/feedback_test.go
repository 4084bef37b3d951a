package match

import (
	"bytes"
	"context"
	"errors"
	"image"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTemplateRuleScore(t *testing.T) {
	inf := math.Inf(-1)
	on := TemplateRule{Templates: true, Negatives: true, NegMargin: 0.02, A: 0.5, B: 0.4}
	for _, c := range []struct {
		name        string
		rule        TemplateRule
		hr, lr, neg float64
		want        float64
	}{
		{"zero rule is photos only", TemplateRule{}, 0.9, 0.99, 0.99, 0.9},
		{"template below the photo", on, 0.9, 0.9, inf, 0.9},       // 0.5*0.9+0.4 = 0.85
		{"template above the photo", on, 0.8, 0.9, inf, 0.85},      // mapped 0.85
		{"no photo, a template", on, inf, 1, inf, 0.9},             // mapped 0.9
		{"negative far below", on, 0.9, inf, 0.5, 0.9},             // mapped 0.65 < 0.88
		{"negative within the margin", on, 0.9, inf, 0.97, Vetoed}, // mapped 0.885 >= 0.88
		{"negatives off", TemplateRule{Templates: true, A: 1}, 0.9, inf, 1, 0.9},
		{"nothing at all", on, inf, inf, 1, inf},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.rule.Score(c.hr, c.lr, c.neg); math.Abs(got-c.want) > 1e-12 && got != c.want {
				t.Errorf("Score(%v, %v, %v) = %v, want %v", c.hr, c.lr, c.neg, got, c.want)
			}
		})
	}
}

func TestParseVerdict(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{{"confirm", true}, {"reject", true}, {"not_enrolled", true}, {"Confirm", false}, {"", false}, {"yes", false}} {
		v, err := ParseVerdict(c.in)
		if (err == nil) != c.ok || (c.ok && string(v) != c.in) {
			t.Errorf("ParseVerdict(%q) = %q, %v", c.in, v, err)
		}
		if err != nil && !strings.Contains(err.Error(), "confirm, reject or not_enrolled") {
			t.Errorf("ParseVerdict(%q): error %q does not list the verdicts", c.in, err)
		}
	}
}

// TestFeedbackTemplates stores confirmed and rejected sightings of real
// CelebA faces with the real embedder and checks that search scores by the
// rule, that templates persist sealed, are bounded, can be undone, and go
// with their person.
func TestFeedbackTemplates(t *testing.T) {
	fx := newFixture(t, 3, 1)
	ctx := context.Background()
	th := Thresholds{Identify: 0.93, Margin: 0.02, Verify: 0.93}
	g, o := enrolledGallery(t, fx, th)
	defer func() { g.Close() }()
	a := fx.people[0]
	crop := func(name string) image.Image {
		return loadCeleba(t, name).(interface {
			SubImage(image.Rectangle) image.Image
		}).SubImage(celebaBox)
	}
	probe := crop(fx.probe[a])
	pe, err := g.EmbedFaces(ctx, []EmbedInput{{Image: probe}})
	if err != nil {
		t.Fatal(err)
	}
	rule := TemplateRule{Templates: true, Negatives: true, NegMargin: 0.02, A: 1, B: 0}
	withRule := th
	withRule.Rule = rule
	score := func(name string) Candidate {
		t.Helper()
		r, err := g.SearchEmbeddingAt(pe[0], 0, withRule)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range r.Candidates {
			if c.Name == name {
				return c
			}
		}
		t.Fatalf("%s not among the candidates", name)
		return Candidate{}
	}
	before := score(a)
	if before.Template || before.Vetoed {
		t.Fatalf("without feedback: %+v", before)
	}

	// bad input
	for _, c := range []struct {
		name string
		who  string
		v    Verdict
		s    Sighting
		want string
	}{
		{"unknown verdict", a, "maybe", Sighting{Face: probe, Scale: 8}, "unknown verdict"},
		{"no face", a, Confirm, Sighting{Scale: 8}, "no face image"},
		{"bad scale", a, Confirm, Sighting{Face: probe, Scale: 4}, "scale 4"},
		{"unknown person", "Nobody Here", Confirm, Sighting{Face: probe, Scale: 8}, "not in the gallery"},
	} {
		if _, err := g.AddFeedback(ctx, c.who, c.v, c.s); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", c.name, err, c.want)
		}
	}
	if _, err := g.AddFeedback(ctx, "Nobody Here", Confirm, Sighting{Face: probe, Scale: 8}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown person: %v, want ErrNotFound", err)
	}

	// the probe itself confirmed as a: a template at cosine 1 decides
	const source = "hit-01SECRETSOURCE"
	id, err := g.AddFeedback(ctx, a, Confirm, Sighting{Face: probe, Scale: 8, Source: source})
	if err != nil {
		t.Fatal(err)
	}
	if c := score(a); !c.Template || c.Similarity < 0.999 || c.Similarity <= before.Similarity {
		t.Errorf("after confirming the probe: %+v (before %+v)", c, before)
	}
	// without the rule the template is not used
	if r, _ := g.SearchEmbeddingAt(pe[0], 0, th); r.Candidates[0].Template {
		t.Errorf("photos-only search used a template: %+v", r.Candidates[0])
	}
	tl, err := g.Templates(ctx, a)
	if err != nil || len(tl) != 1 || tl[0].ID != id || tl[0].Kind != "confirmed" || tl[0].Source != source || tl[0].Scale != 8 {
		t.Fatalf("templates %+v, %v", tl, err)
	}
	if err := g.RemoveTemplate(ctx, a, id); err != nil {
		t.Fatal(err)
	}
	if c := score(a); c.Template || math.Abs(c.Similarity-before.Similarity) > 1e-9 {
		t.Errorf("after undoing the confirmation: %+v, want %+v", c, before)
	}
	if err := g.RemoveTemplate(ctx, a, id); !errors.Is(err, ErrNotFound) {
		t.Errorf("removing it twice: %v", err)
	}

	// the probe rejected as a: a is vetoed for it, others are not
	if _, err := g.AddFeedback(ctx, a, Reject, Sighting{Face: probe, Scale: 8, Source: source}); err != nil {
		t.Fatal(err)
	}
	if c := score(a); !c.Vetoed || c.Similarity != Vetoed {
		t.Errorf("after rejecting the probe as %s: %+v", a, c)
	}
	if c := score(fx.people[1]); c.Vetoed {
		t.Errorf("%s vetoed by %s's negative: %+v", fx.people[1], a, c)
	}

	// bounded: MaxTemplates of one kind per person, the newest kept
	other := crop(fx.enrol[fx.people[1]][0])
	for i := 0; i < MaxTemplates+1; i++ {
		if _, err := g.AddFeedback(ctx, fx.people[2], Reject, Sighting{Face: other, Scale: 16, Source: "bulk"}); err != nil {
			t.Fatal(err)
		}
	}
	if tl, _ := g.Templates(ctx, fx.people[2]); len(tl) != MaxTemplates {
		t.Errorf("%d templates kept, want %d", len(tl), MaxTemplates)
	}

	// persisted and sealed: reopened, a is still vetoed; neither the
	// descriptor nor the source is in the files
	g.mu.RLock()
	negVec := g.index[before.PersonID].neg[0]
	g.mu.RUnlock()
	g.Close()
	for _, f := range []string{"g.db", "g.db-wal"} {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(o.Path), f))
		if err != nil {
			continue
		}
		if bytes.Contains(b, vecBytes(negVec)[:32]) || bytes.Contains(b, []byte(source)) {
			t.Errorf("%s holds a template's descriptor or source in the clear", f)
		}
	}
	if g, err = Open(ctx, o); err != nil {
		t.Fatal(err)
	}
	if c := score(a); !c.Vetoed {
		t.Errorf("after reopening: %+v, want vetoed", c)
	}
	// removing the person removes their templates
	if err := g.Remove(ctx, fx.people[2]); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := g.db.QueryRow(`SELECT count(*) FROM templates`).Scan(&n); err != nil || n != 1 {
		t.Errorf("%d templates after removing a person (%v), want 1 (a's negative)", n, err)
	}
}

// TestShippedTemplateMap: the shipped map covers the packaged embedder at
// x8 (measured) and nothing else; a rule without a map resolves to the
// shipped one, or to off.
func TestShippedTemplateMap(t *testing.T) {
	emb := testEmbedder(t)
	m, ok := DefaultTemplateMap(emb.ModelID(), 8)
	if !ok || m.A <= 0 || m.Sightings == 0 || m.Source == "" {
		t.Fatalf("x8 map for %s: %+v %v", emb.ModelID(), m, ok)
	}
	if _, ok := DefaultTemplateMap(emb.ModelID(), 16); ok {
		t.Error("an x16 map is shipped: was it measured? update this test")
	}
	dir := t.TempDir()
	g, err := Open(context.Background(), Options{Path: filepath.Join(dir, "g.db"), KeyFile: newKey(t, dir), Embedder: emb})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if r := g.resolveRule(TemplateRule{Templates: true, Scale: 8}); r.A != m.A || r.B != m.B || !r.Templates {
		t.Errorf("x8 rule resolved to %+v", r)
	}
	if r := g.resolveRule(TemplateRule{Templates: true, Scale: 16}); r.On() {
		t.Errorf("x16 rule without a map resolved to %+v, want off", r)
	}
}
