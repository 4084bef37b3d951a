package match

import (
	"context"
	"fmt"
	"image"
	"math"
	"slices"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/internal/faceimg"
)

// Thresholds decide identification and verification on cosine similarity of
// L2-normalised descriptors.
type Thresholds struct {
	// Identify is the lowest top-1 similarity a 1:N search accepts.
	Identify float64
	// Margin is the lowest lead of the top-1 person over the runner-up (a
	// different person) a 1:N search accepts.
	Margin float64
	// Verify is the lowest similarity a 1:1 verification accepts.
	Verify float64
	// Rule says how feedback templates score (the zero rule: photos only).
	Rule TemplateRule
}

// DefaultThresholds were chosen on a measured ROC (see the package
// documentation): Verify at a false match rate of 1e-3 per pair, Identify at
// 1e-4 per pair with a margin of 0.02, on CelebA train-split identities.
func DefaultThresholds() Thresholds {
	return Thresholds{Identify: defaultIdentify, Margin: defaultMargin, Verify: defaultVerify}
}

// Check validates the values: similarities in [-1, 1], margin in [0, 1].
func (t Thresholds) Check() error {
	for _, c := range []struct {
		name string
		v    float64
		lo   float64
	}{{"identify", t.Identify, -1}, {"margin", t.Margin, 0}, {"verify", t.Verify, -1}} {
		if math.IsNaN(c.v) || c.v < c.lo || c.v > 1 {
			return fmt.Errorf("%s threshold %v: want a cosine similarity in [%v, 1]", c.name, c.v, c.lo)
		}
	}
	return nil
}

// Candidate is one gallery person ranked by a search: the best similarity
// over the person's photos, and which photo gave it; with feedback templates
// (Thresholds.Rule) the person's score by the rule, and whether a confirmed
// sighting gave it (Template) or a rejected one vetoed the person (Vetoed).
//
// Its JSON is the candidate of `srdgd gallery search --json`.
type Candidate struct {
	PersonID   int64   `json:"person_id"`
	Name       string  `json:"name"`
	Watchlist  bool    `json:"watchlist"`
	Similarity float64 `json:"similarity"`
	ImageID    int64   `json:"image_id"`
	Template   bool    `json:"-"`
	Vetoed     bool    `json:"-"`
}

// SearchResult is a 1:N identification: the top-k candidates and the
// decision. Match is nil for Unknown, with Reason (face.ReasonEmpty,
// face.ReasonBelowThreshold or face.ReasonAmbiguous) and Detail saying why.
type SearchResult struct {
	Candidates []Candidate
	Match      *Candidate
	Reason     string
	Detail     string
	Model      string
	// Thresholds are what the decision was held to: the ones given,
	// shifted by the top candidate's override when it has one (Override
	// is then face.OverridePerson and OverrideName the person).
	Thresholds   Thresholds
	Override     string
	OverrideName string
	// PersonOffset is the top candidate's override that shifted
	// Thresholds (zero: none).
	PersonOffset Offset
	// Face is where the probe's face was found (Search) and the descriptor.
	Face      image.Rectangle
	Embedding *Embedding
}

// Search finds the one face in a photo (FaceFinder, on the photo reduced to
// PhotoSide) and identifies it. The result's Face is in img's pixels.
func (g *Gallery) Search(ctx context.Context, img image.Image, k int) (*SearchResult, error) {
	if g.find == nil {
		return nil, fmt.Errorf("gallery %s: search: %w", g.path, ErrNoFinder)
	}
	small := faceimg.Shrink(img, PhotoSide)
	box, err := oneFace(ctx, g.find, small)
	if err != nil {
		return nil, fmt.Errorf("gallery %s: search: %w", g.path, err)
	}
	r, err := g.SearchFace(ctx, EmbedInput{Image: small, Box: box}, k)
	if err == nil {
		r.Face = scaleRect(r.Face, small.Bounds(), img.Bounds())
	}
	return r, err
}

// SearchFace identifies a face whose box is known (an SR output: the whole
// image) with the gallery's thresholds.
func (g *Gallery) SearchFace(ctx context.Context, f EmbedInput, k int) (*SearchResult, error) {
	return g.SearchFaceAt(ctx, f, k, g.th)
}

// SearchFaceAt is SearchFace with the given identification threshold and
// margin (a super-resolved face needs lower ones than a photo).
func (g *Gallery) SearchFaceAt(ctx context.Context, f EmbedInput, k int, th Thresholds) (*SearchResult, error) {
	if err := th.Check(); err != nil {
		return nil, fmt.Errorf("gallery %s: search: %w", g.path, err)
	}
	if g.emb == nil {
		return nil, fmt.Errorf("gallery %s: search: %w", g.path, ErrNoEmbedder)
	}
	embs, err := g.emb.Embed(ctx, []EmbedInput{f})
	if err != nil {
		return nil, fmt.Errorf("gallery %s: search: %w", g.path, err)
	}
	r, err := g.SearchEmbeddingAt(embs[0], k, th)
	if err != nil {
		return nil, err
	}
	r.Face, _ = f.box()
	return r, nil
}

// EmbedFaces computes the descriptors of faces whose boxes are known (SR
// outputs), all in one call of the gallery's embedder, so that a batch of
// faces costs one batched network run.
func (g *Gallery) EmbedFaces(ctx context.Context, faces []EmbedInput) ([]Embedding, error) {
	if g.emb == nil {
		return nil, fmt.Errorf("gallery %s: embed: %w", g.path, ErrNoEmbedder)
	}
	embs, err := g.emb.Embed(ctx, faces)
	if err != nil {
		return nil, fmt.Errorf("gallery %s: embed: %w", g.path, err)
	}
	return embs, nil
}

// SearchEmbedding identifies a descriptor: every person's score is the best
// cosine over their photos; the top k are returned (k <= 0: all), and the
// top-1 is a match if it reaches Thresholds.Identify and leads the runner-up
// by at least Thresholds.Margin.
func (g *Gallery) SearchEmbedding(e Embedding, k int) (*SearchResult, error) {
	return g.SearchEmbeddingAt(e, k, g.th)
}

// SearchEmbeddingAt is SearchEmbedding with the given thresholds.
func (g *Gallery) SearchEmbeddingAt(e Embedding, k int, th Thresholds) (*SearchResult, error) {
	if g.emb == nil {
		return nil, fmt.Errorf("gallery %s: search: %w", g.path, ErrNoEmbedder)
	}
	if e.Model != g.emb.ModelID() {
		return nil, fmt.Errorf("gallery %s: search: descriptor of model %q, the gallery searches %q", g.path, e.Model, g.emb.ModelID())
	}
	r := &SearchResult{Model: e.Model, Thresholds: th, Embedding: &e}
	rule := g.resolveRule(th.Rule)
	g.mu.RLock()
	all := make([]Candidate, 0, len(g.index))
	for pid, ix := range g.index {
		c := Candidate{PersonID: pid, Name: ix.name, Watchlist: ix.watchlist, Similarity: math.Inf(-1)}
		hr, at := BestSimilarity(e.Vector, ix.vecs)
		c.Similarity = hr
		if at >= 0 {
			c.ImageID = ix.images[at]
		}
		if rule.On() {
			lr, _ := BestSimilarity(e.Vector, ix.lr)
			neg, _ := BestSimilarity(e.Vector, ix.neg)
			c.Similarity = rule.Score(hr, lr, neg)
			c.Vetoed = c.Similarity == Vetoed && hr != Vetoed
			c.Template = !c.Vetoed && c.Similarity > hr
		}
		all = append(all, c)
	}
	slices.SortFunc(all, func(a, b Candidate) int {
		switch {
		case a.Similarity > b.Similarity:
			return -1
		case a.Similarity < b.Similarity:
			return 1
		}
		return int(a.PersonID - b.PersonID)
	})
	var top Offset // the top candidate's override, read under the lock
	if len(all) > 0 {
		top = g.index[all[0].PersonID].offset
	}
	g.mu.RUnlock()
	if len(all) > 0 {
		if o := top; !o.IsZero() {
			th = th.Shifted(o)
			r.Thresholds, r.Override, r.OverrideName, r.PersonOffset = th, face.OverridePerson, all[0].Name, o
		}
	}
	decide(r, all, th)
	if k > 0 && len(all) > k {
		all = all[:k]
	}
	r.Candidates = all
	return r, nil
}

// decide applies the thresholds to candidates sorted by similarity.
func decide(r *SearchResult, sorted []Candidate, th Thresholds) {
	if len(sorted) == 0 {
		r.Reason, r.Detail = face.ReasonEmpty, "the gallery has no searchable descriptors"
		return
	}
	top := sorted[0]
	if top.Similarity < th.Identify {
		r.Reason = face.ReasonBelowThreshold
		r.Detail = fmt.Sprintf("best %q at %.4f is below the identification threshold %.4f", top.Name, top.Similarity, th.Identify)
		return
	}
	if len(sorted) > 1 {
		if lead := top.Similarity - sorted[1].Similarity; lead < th.Margin {
			r.Reason = face.ReasonAmbiguous
			r.Detail = fmt.Sprintf("best %q at %.4f leads %q by %.4f, less than the margin %.4f",
				top.Name, top.Similarity, sorted[1].Name, lead, th.Margin)
			return
		}
	}
	r.Match = &top
}

// VerifyResult is a 1:1 verification against one person.
type VerifyResult struct {
	Person     string
	Similarity float64 // best over the person's photos
	ImageID    int64
	Threshold  float64
	Match      bool
	Face       image.Rectangle
}

// Verify finds the one face in a photo (reduced to PhotoSide, as Search) and
// checks it against the named person. The result's Face is in img's pixels.
func (g *Gallery) Verify(ctx context.Context, name string, img image.Image) (*VerifyResult, error) {
	if g.find == nil {
		return nil, fmt.Errorf("gallery %s: verify: %w", g.path, ErrNoFinder)
	}
	small := faceimg.Shrink(img, PhotoSide)
	box, err := oneFace(ctx, g.find, small)
	if err != nil {
		return nil, fmt.Errorf("gallery %s: verify: %w", g.path, err)
	}
	r, err := g.VerifyFace(ctx, name, EmbedInput{Image: small, Box: box})
	if err == nil {
		r.Face = scaleRect(r.Face, small.Bounds(), img.Bounds())
	}
	return r, err
}

// VerifyFace checks a face with a known box against the named person.
func (g *Gallery) VerifyFace(ctx context.Context, name string, f EmbedInput) (*VerifyResult, error) {
	if g.emb == nil {
		return nil, fmt.Errorf("gallery %s: verify: %w", g.path, ErrNoEmbedder)
	}
	pid, err := g.personID(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("gallery %s: verify: %w", g.path, err)
	}
	g.mu.RLock()
	ix := g.index[pid]
	var vecs [][]float32
	var imgs []int64
	if ix != nil {
		vecs, imgs = ix.vecs, ix.images
	}
	g.mu.RUnlock()
	if len(vecs) == 0 {
		return nil, fmt.Errorf("gallery %s: verify: person %q has no descriptor of model %q (re-embed the gallery)", g.path, name, g.emb.ModelID())
	}
	embs, err := g.emb.Embed(ctx, []EmbedInput{f})
	if err != nil {
		return nil, fmt.Errorf("gallery %s: verify: %w", g.path, err)
	}
	r := &VerifyResult{Person: name, Similarity: math.Inf(-1), Threshold: g.th.Verify}
	r.Face, _ = f.box()
	for i, v := range vecs {
		if s := Similarity(embs[0].Vector, v); s > r.Similarity {
			r.Similarity, r.ImageID = s, imgs[i]
		}
	}
	r.Match = r.Similarity >= g.th.Verify
	return r, nil
}
