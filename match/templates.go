package match

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"sync"
)

// TemplateRule scores a gallery person for a probe from the probe's best
// similarities to the person's enrolled photos (HR), to the person's
// low-resolution templates (the SR faces of sightings an operator confirmed
// as them) and to the person's negatives (the SR faces of sightings an
// operator rejected as them).
//
// A template is a super-resolved face like the probe, so an SR-vs-template
// similarity is not on the scale of an SR-vs-photo one (SR faces resemble
// each other more than they resemble photos); it is mapped onto that scale
// with A*s + B, fitted so that the impostor pair distributions of the two
// agree in mean and standard deviation (eval.FitTemplateMap, on CelebA val
// sightings), so the thresholds calibrated for SR-vs-photo scores keep their
// false-accept meaning.
type TemplateRule struct {
	// Templates: a person's score is the larger of the photo score and the
	// mapped template score.
	Templates bool `json:"templates"`
	// Negatives: a person whose mapped negative score reaches their score
	// less NegMargin is vetoed for this probe (scored -1): the probe looks
	// more like a sighting rejected as them than like them.
	Negatives bool    `json:"negatives"`
	NegMargin float64 `json:"neg_margin"`
	// A and B map an SR-vs-template similarity onto the SR-vs-photo scale;
	// when both are zero the gallery takes them from the shipped map of its
	// embedder at Scale (DefaultTemplateMap), and uses no template or
	// negative when there is none.
	A     float64 `json:"a"`
	B     float64 `json:"b"`
	Scale int     `json:"scale"`
}

// On reports whether the rule uses templates or negatives.
func (r TemplateRule) On() bool { return r.Templates || r.Negatives }

// TemplateMap is the measured map of SR-vs-template similarities onto the
// SR-vs-photo scale for one embedder and scale (eval.FitTemplateMap).
type TemplateMap struct {
	Embedder  string  `json:"embedder"`
	Scale     int     `json:"scale"`
	A         float64 `json:"a"`
	B         float64 `json:"b"`
	Sightings int     `json:"sightings"`
	Source    string  `json:"source"`
}

//go:embed calib/templates.json
var templatesJSON []byte

var loadTemplateMaps = sync.OnceValues(func() ([]TemplateMap, error) {
	var m []TemplateMap
	if err := json.Unmarshal(templatesJSON, &m); err != nil {
		return nil, fmt.Errorf("template maps match/calib/templates.json: %w", err)
	}
	return m, nil
})

// DefaultTemplateMap is the shipped map for an embedder model at a scale.
func DefaultTemplateMap(model string, scale int) (TemplateMap, bool) {
	ms, err := loadTemplateMaps()
	if err != nil {
		return TemplateMap{}, false
	}
	for _, m := range ms {
		if m.Embedder == model && m.Scale == scale {
			return m, true
		}
	}
	return TemplateMap{}, false
}

// resolveRule fills a rule's map from the shipped ones for the gallery's
// embedder; without one, the rule is off (and the gallery says so once).
func (g *Gallery) resolveRule(r TemplateRule) TemplateRule {
	if !r.On() || r.A != 0 || r.B != 0 || g.emb == nil {
		return r
	}
	// the map is of the model that reads restored faces
	model := ReaderModel(g.emb, r.Scale)
	m, ok := DefaultTemplateMap(model, r.Scale)
	if !ok {
		if _, warned := g.ruleWarned.LoadOrStore(r.Scale, true); !warned {
			g.log.Warn("no measured template map for this embedder and scale: feedback templates and negatives are stored but not used in search",
				"model", model, "scale", r.Scale)
		}
		return TemplateRule{}
	}
	r.A, r.B = m.A, m.B
	return r
}

// Vetoed is the score of a person a negative vetoed.
const Vetoed = -1.0

// Score is the person's score from the best similarity to their photos
// (hr), templates (lr) and negatives (neg); -Inf where the person has none
// of that kind. Without templates or negatives it is hr.
func (r TemplateRule) Score(hr, lr, neg float64) float64 {
	s := hr
	if r.Templates && !math.IsInf(lr, -1) {
		if m := r.A*lr + r.B; m > s {
			s = m
		}
	}
	if r.Negatives && !math.IsInf(neg, -1) && !math.IsInf(s, -1) {
		if r.A*neg+r.B >= s-r.NegMargin {
			return Vetoed
		}
	}
	return s
}

// BestSimilarity is the highest Similarity of the probe e to vecs (-Inf for
// none) and the index of the vector that gave it (-1 for none).
func BestSimilarity(e []float32, vecs [][]float32) (float64, int) {
	best, at := math.Inf(-1), -1
	for i, v := range vecs {
		if s := Similarity(e, v); s > best {
			best, at = s, i
		}
	}
	return best, at
}
