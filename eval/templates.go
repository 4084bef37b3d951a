package eval

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/srdgd/srdgd/match"
)

// Descriptor is one cached probe descriptor with its identity.
type Descriptor struct {
	Image, Identity string
	Vec             []float32
}

// CachedDescriptors reads from an evaluation cache (cache.jsonl of a run of
// Evaluate on set) the gallery descriptors (one per set.Gallery image, in
// order) and the descriptors of method at scale for those of set's probes
// the cache holds (in the set's order; a run with --limit stops early); all
// of one embedder model. Every gallery image must be there.
func CachedDescriptors(path string, set *Set, method string, scale int) (gallery, probes []Descriptor, model string, err error) {
	recs, err := readCache(path)
	if err != nil {
		return nil, nil, "", err
	}
	// the cache's key holds the model: index by the rest
	byImage := map[string]record{}
	for _, r := range recs {
		byImage[fmt.Sprintf("%s|%d|%s|%s", r.Kind, r.Scale, r.Method, r.Image)] = r
	}
	pick := func(kind string, sc int, meth string, ims []Image) ([]Descriptor, error) {
		out := make([]Descriptor, 0, len(ims))
		for _, im := range ims {
			r, ok := byImage[fmt.Sprintf("%s|%d|%s|%s", kind, sc, meth, im.Path)]
			if !ok && kind == kindProbe {
				continue // a run with --limit: the probes it got to
			}
			if !ok {
				return nil, fmt.Errorf("cache %s: no %s record of %s %s x%d", path, kind, im.Path, meth, sc)
			}
			if model == "" {
				model = r.Model
			} else if r.Model != model {
				return nil, fmt.Errorf("cache %s: %s is of model %q, others of %q", path, im.Path, r.Model, model)
			}
			out = append(out, Descriptor{Image: im.Path, Identity: im.Identity, Vec: r.Embedding})
		}
		return out, nil
	}
	if gallery, err = pick(kindGallery, 0, "", set.Gallery); err != nil {
		return nil, nil, "", err
	}
	if probes, err = pick(kindProbe, scale, method, set.Probes); err != nil {
		return nil, nil, "", err
	}
	if len(probes) == 0 {
		return nil, nil, "", fmt.Errorf("cache %s: no %s probe at x%d", path, method, scale)
	}
	return gallery, probes, model, nil
}

// FitTemplateMap fits the TemplateRule map A*s + B of SR-vs-template
// similarities onto the SR-vs-photo scale: the impostor pairs of sightings
// (SR faces of different identities) get the mean and standard deviation of
// the impostor pairs of sightings and gallery photos.
func FitTemplateMap(gallery, sightings []Descriptor) (a, b float64, err error) {
	var photo, tmpl []float64
	for _, s := range sightings {
		for _, g := range gallery {
			if g.Identity != s.Identity {
				photo = append(photo, match.Similarity(s.Vec, g.Vec))
			}
		}
	}
	for i, s := range sightings {
		for _, t := range sightings[i+1:] {
			if t.Identity != s.Identity {
				tmpl = append(tmpl, match.Similarity(s.Vec, t.Vec))
			}
		}
	}
	if len(photo) < 2 || len(tmpl) < 2 {
		return 0, 0, fmt.Errorf("template map: %d photo and %d template impostor pairs, want at least 2 each", len(photo), len(tmpl))
	}
	mp, sp := meanSD(photo)
	mt, st := meanSD(tmpl)
	if st == 0 {
		return 0, 0, fmt.Errorf("template map: template impostor similarities do not vary")
	}
	a = sp / st
	return a, mp - a*mt, nil
}

func meanSD(v []float64) (mean, sd float64) {
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	for _, x := range v {
		sd += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(sd / float64(len(v)))
}

// TemplateStudyOptions configure TemplateStudy.
type TemplateStudyOptions struct {
	// Gallery: one HR descriptor per identity (or more); Sightings: SR
	// descriptors the operator reviews (CelebA val), Probes: SR descriptors
	// tested (CelebA test).
	Gallery, Sightings, Probes []Descriptor
	// Confirm is the number of confirmed sightings per identity each
	// template row uses (e.g. 1, 2, 3).
	Confirm []int
	// Operating point (the daemon's calibrated single-shot identify and
	// margin) at which fixed-threshold rates are reported and at which the
	// reviewed sightings are decided; Review, when below Identify, is the
	// threshold down to which an operator also reviews (and rejects) wrong
	// top candidates.
	Identify, Margin, Review float64
	// NegMargins are the TemplateRule.NegMargin values tried.
	NegMargins []float64
}

// TemplateRow is one rule's result on the probes.
type TemplateRow struct {
	Name      string
	Templates int // templates in the gallery
	Negatives int
	R1, R10   float64
	// Best: the highest DIR at FPIR <= 1 % over the open-set grid; At: the
	// rates at the fixed operating point.
	Best *OpenSetPoint
	At   OpenSetPoint
}

// TemplateStudy measures what operator feedback does to SR identification:
// confirmed sightings as low-resolution templates of their person, rejected
// ones as negatives. Sightings are confirmed in order, up to n per
// identity; a sighting is rejected for the person it was wrongly accepted
// as (studyNegatives). Every rule is scored on the same probes.
func TemplateStudy(o TemplateStudyOptions) ([]TemplateRow, match.TemplateRule, error) {
	a, b, err := FitTemplateMap(o.Gallery, o.Sightings)
	if err != nil {
		return nil, match.TemplateRule{}, err
	}
	base := match.TemplateRule{A: a, B: b}
	ids := identities(o.Gallery)
	negs := studyNegatives(o, ids)
	var rows []TemplateRow
	add := func(name string, rule match.TemplateRule, tmpl map[string][][]float32, neg map[string][][]float32) error {
		row, err := templateRow(name, rule, o, ids, tmpl, neg)
		if err != nil {
			return err
		}
		rows = append(rows, row)
		return nil
	}
	if err := add("photos only (today)", base, nil, nil); err != nil {
		return nil, base, err
	}
	for _, n := range o.Confirm {
		r := base
		r.Templates = true
		if err := add(fmt.Sprintf("+ %d confirmed per person", n), r, confirmed(o.Sightings, n), nil); err != nil {
			return nil, base, err
		}
	}
	for _, m := range o.NegMargins {
		r := base
		r.Negatives, r.NegMargin = true, m
		if err := add(fmt.Sprintf("+ negatives (margin %.2f)", m), r, nil, negs); err != nil {
			return nil, base, err
		}
		if len(o.Confirm) > 0 {
			n := o.Confirm[len(o.Confirm)-1]
			r.Templates = true
			if err := add(fmt.Sprintf("+ %d confirmed + negatives (margin %.2f)", n, m), r, confirmed(o.Sightings, n), negs); err != nil {
				return nil, base, err
			}
		}
	}
	return rows, base, nil
}

func identities(gallery []Descriptor) []string {
	var ids []string
	for _, g := range gallery {
		if !slices.Contains(ids, g.Identity) {
			ids = append(ids, g.Identity)
		}
	}
	return ids
}

// confirmed returns up to n sightings per identity, in order.
func confirmed(sightings []Descriptor, n int) map[string][][]float32 {
	out := map[string][][]float32{}
	for _, s := range sightings {
		if len(out[s.Identity]) < n {
			out[s.Identity] = append(out[s.Identity], s.Vec)
		}
	}
	return out
}

// studyNegatives decides every sighting the way the daemon does (photos
// only, at the operating point), once with its own identity enrolled and
// once as an unknown person (its identity removed), and rejects each wrong
// acceptance for the person it named: the false alerts an operator would
// answer with "not X". With Review below Identify, a search whose top
// candidate reaches Review also counts (an operator reviewing near misses).
func studyNegatives(o TemplateStudyOptions, ids []string) map[string][][]float32 {
	out := map[string][][]float32{}
	for _, s := range o.Sightings {
		for _, unknown := range []bool{false, true} {
			best, second, who := math.Inf(-1), math.Inf(-1), ""
			for _, id := range ids {
				if unknown && id == s.Identity {
					continue
				}
				sc, _ := match.BestSimilarity(s.Vec, photosOf(o.Gallery, id))
				if sc > best {
					best, second, who = sc, best, id
				} else if sc > second {
					second = sc
				}
			}
			th := min(o.Identify, o.Review)
			if who != "" && who != s.Identity && best >= th && best-second >= o.Margin {
				out[who] = append(out[who], s.Vec)
			}
		}
	}
	return out
}

func photosOf(gallery []Descriptor, id string) [][]float32 {
	var v [][]float32
	for _, g := range gallery {
		if g.Identity == id {
			v = append(v, g.Vec)
		}
	}
	return v
}

// templateRow scores every probe against every identity with the rule and
// measures Rank-1/10 and open-set rates.
func templateRow(name string, rule match.TemplateRule, o TemplateStudyOptions, ids []string, tmpl, neg map[string][][]float32) (TemplateRow, error) {
	row := TemplateRow{Name: name}
	for _, id := range ids {
		row.Templates += len(tmpl[id])
		row.Negatives += len(neg[id])
	}
	sim := make([][]float64, len(o.Probes))
	probeID := make([]string, len(o.Probes))
	photos := map[string][][]float32{}
	for _, id := range ids {
		photos[id] = photosOf(o.Gallery, id)
	}
	for p, pr := range o.Probes {
		probeID[p] = pr.Identity
		sim[p] = make([]float64, len(ids))
		for i, id := range ids {
			hr, _ := match.BestSimilarity(pr.Vec, photos[id])
			lr, _ := match.BestSimilarity(pr.Vec, tmpl[id])
			ng, _ := match.BestSimilarity(pr.Vec, neg[id])
			sim[p][i] = rule.Score(hr, lr, ng)
		}
	}
	cmc, err := CMC(sim, probeID, ids, 10)
	if err != nil {
		return row, fmt.Errorf("%s: %w", name, err)
	}
	row.R1, row.R10 = cmc[0], cmc[9]
	sc, err := NewOpenSetScores(sim, probeID, ids)
	if err != nil {
		return row, fmt.Errorf("%s: %w", name, err)
	}
	for th := openSetLo; th <= openSetHi+1e-9; th += openSetStep {
		for _, m := range openSetMargins {
			pt := sc.At(th, m)
			if pt.FPIR <= openSetFPIR && (row.Best == nil || pt.DIR > row.Best.DIR) {
				pt := pt
				row.Best = &pt
			}
		}
	}
	row.At = sc.At(o.Identify, o.Margin)
	return row, nil
}

// TemplateMarkdown is the study as a Markdown table.
func TemplateMarkdown(rows []TemplateRow) string {
	var b strings.Builder
	b.WriteString("| rule | templates | negatives | Rank-1 | Rank-10 | DIR @ FPIR<=1 % (best grid point) | at the calibrated point: DIR / wrong / FPIR |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		best := "none"
		if r.Best != nil {
			best = fmt.Sprintf("%.1f %% (t %.4f, m %.3f, FPIR %.1f %%)", 100*r.Best.DIR, r.Best.Threshold, r.Best.Margin, 100*r.Best.FPIR)
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %.1f %% | %.1f %% | %s | %.1f / %.1f / %.1f %% |\n", r.Name, r.Templates, r.Negatives,
			100*r.R1, 100*r.R10, best, 100*r.At.DIR, 100*r.At.Wrong, 100*r.At.FPIR)
	}
	return b.String()
}
