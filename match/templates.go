package match

import "math"

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
	// A and B map an SR-vs-template similarity onto the SR-vs-photo scale.
	A float64 `json:"a"`
	B float64 `json:"b"`
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

// BestCosine is the highest cosine similarity of e to vecs (-Inf for none)
// and the index of the vector that gave it (-1 for none).
func BestCosine(e []float32, vecs [][]float32) (float64, int) {
	best, at := math.Inf(-1), -1
	for i, v := range vecs {
		if s := Cosine(e, v); s > best {
			best, at = s, i
		}
	}
	return best, at
}
