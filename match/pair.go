package match

import (
	"context"
	"fmt"
	"math"
)

// PairEmbedder reads photos with one embedder and super-resolved faces
// (EmbedInput.Scale > 0) with another: on CelebA the packaged face-api net
// identifies HR photos best and HSE FaceRes the faces SR restores from 16x16
// and 8x8 (models/README.md, "Bake-off"), and neither is best at both.
//
// Its descriptors live in one space of Photo.Dim() + Restored.Dim() values,
// the photo embedder's slot first. A gallery template (EmbedTemplates, what
// enrolment stores) fills both slots, each L2-normalised; a probe (Embed)
// fills the slot of the embedder that read it and leaves the other zero. The
// Similarity of a probe and a template is therefore exactly the cosine of the
// model that read the probe: photos are scored on face-api's scale (the
// match.threshold measured for it holds), restored faces on FaceRes' (the
// match.sr.* settings and the visit calibration measured for it hold). Two
// probes read by the same embedder compare as that embedder's cosine too.
type PairEmbedder struct {
	photo, restored *Embedder
	id              string
}

var _ FaceEmbedder = (*PairEmbedder)(nil)

// NewPairEmbedder pairs two loaded embedders of different models; the pair
// does not own them (the caller closes them after the pair's last use).
func NewPairEmbedder(photo, restored *Embedder) (*PairEmbedder, error) {
	if photo == nil || restored == nil {
		return nil, fmt.Errorf("face embedder pair: both embedders are required")
	}
	if photo.ModelID() == restored.ModelID() {
		return nil, fmt.Errorf("face embedder pair: both embedders are %s (use it alone)", photo.ModelID())
	}
	return &PairEmbedder{photo: photo, restored: restored,
		id: "photo:" + photo.ModelID() + "|sr:" + restored.ModelID()}, nil
}

// ModelID names the pair's descriptor space: "photo:<id>|sr:<id>".
func (p *PairEmbedder) ModelID() string { return p.id }

// Dim is the descriptor length, both slots.
func (p *PairEmbedder) Dim() int { return p.photo.Dim() + p.restored.Dim() }

// Photo and Restored are the two embedders.
func (p *PairEmbedder) Photo() *Embedder    { return p.photo }
func (p *PairEmbedder) Restored() *Embedder { return p.restored }

// Embed makes probe descriptors: photos (Scale 0) in the photo slot,
// restored faces in the restored slot (mapped by the restored embedder's
// SR adapter of their scale, when it has one). Each embedder sees its faces
// in one call.
func (p *PairEmbedder) Embed(ctx context.Context, faces []EmbedInput) ([]Embedding, error) {
	var photos, restored []int
	for i, f := range faces {
		if f.Scale > 0 {
			restored = append(restored, i)
		} else {
			photos = append(photos, i)
		}
	}
	out := make([]Embedding, len(faces))
	for _, part := range []struct {
		e      *Embedder
		idx    []int
		offset int
	}{{p.photo, photos, 0}, {p.restored, restored, p.photo.Dim()}} {
		if err := p.embedInto(ctx, part.e, faces, part.idx, part.offset, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// embedInto embeds faces[idx] with e and writes their descriptors into out at
// offset of the pair's space.
func (p *PairEmbedder) embedInto(ctx context.Context, e *Embedder, faces []EmbedInput, idx []int, offset int, out []Embedding) error {
	if len(idx) == 0 {
		return nil
	}
	sub := make([]EmbedInput, len(idx))
	for j, i := range idx {
		sub[j] = faces[i]
	}
	embs, err := e.Embed(ctx, sub)
	if err != nil {
		return err
	}
	for j, i := range idx {
		em := embs[j]
		v := make([]float32, p.Dim())
		copy(v[offset:], em.Vector)
		em.Vector, em.Model = v, p.id
		out[i] = em
	}
	return nil
}

// EmbedTemplates makes gallery descriptors: both embedders read every face
// (as photos: no SR adapter), each slot L2-normalised. Landmarks and the
// aligned box are the photo embedder's.
func (p *PairEmbedder) EmbedTemplates(ctx context.Context, faces []EmbedInput) ([]Embedding, error) {
	plain := make([]EmbedInput, len(faces))
	for i, f := range faces {
		f.Scale = 0
		plain[i] = f
	}
	a, err := p.photo.Embed(ctx, plain)
	if err != nil {
		return nil, err
	}
	b, err := p.restored.Embed(ctx, plain)
	if err != nil {
		return nil, err
	}
	out := make([]Embedding, len(faces))
	for i := range faces {
		v := make([]float32, 0, p.Dim())
		v = append(append(v, a[i].Vector...), b[i].Vector...)
		out[i] = a[i]
		out[i].Vector, out[i].Model = v, p.id
	}
	return out, nil
}

// ReaderModel is the model whose cosine Similarity gives for a probe of the
// scale (0: a photo): the measured settings of that model apply.
func (p *PairEmbedder) ReaderModel(scale int) string {
	if scale > 0 {
		return p.restored.ModelID()
	}
	return p.photo.ModelID()
}

// templateEmbedder is an embedder whose gallery descriptors differ from its
// probe descriptors (PairEmbedder).
type templateEmbedder interface {
	EmbedTemplates(ctx context.Context, faces []EmbedInput) ([]Embedding, error)
}

// embedTemplates makes the descriptors enrolment stores.
func embedTemplates(ctx context.Context, e FaceEmbedder, faces []EmbedInput) ([]Embedding, error) {
	if t, ok := e.(templateEmbedder); ok {
		return t.EmbedTemplates(ctx, faces)
	}
	return e.Embed(ctx, faces)
}

// ReaderModel is the model whose similarity scale applies to probes of the
// scale read by e: e's own, or for a PairEmbedder the model of the slot.
func ReaderModel(e FaceEmbedder, scale int) string {
	if p, ok := e.(*PairEmbedder); ok {
		return p.ReaderModel(scale)
	}
	return e.ModelID()
}

// Similarity scores a probe descriptor against a gallery descriptor (or
// another probe's): their dot product. Every descriptor is L2-normalised
// per model slot (one slot for an Embedder, two for a PairEmbedder's
// templates), so this is the cosine of the model that read the probe. NaN
// when the lengths differ or the probe is zero.
func Similarity(probe, template []float32) float64 {
	if len(probe) != len(template) {
		return math.NaN()
	}
	var d, n float64
	for i := range probe {
		d += float64(probe[i]) * float64(template[i])
		n += float64(probe[i]) * float64(probe[i])
	}
	if n == 0 {
		return math.NaN()
	}
	return d
}

// UseAdapter and AdapterID are the restored embedder's (Embedder.UseAdapter):
// adapters map restored faces only.
func (p *PairEmbedder) UseAdapter(a *Adapter) error { return p.restored.UseAdapter(a) }
func (p *PairEmbedder) AdapterID(scale int) string  { return p.restored.AdapterID(scale) }

// GalleryEmbedder is what a gallery's embedder is in the daemon: an
// Embedder or a PairEmbedder, with the SR adapters of the model that reads
// restored faces.
type GalleryEmbedder interface {
	FaceEmbedder
	UseAdapter(a *Adapter) error
	AdapterID(scale int) string
}

var (
	_ GalleryEmbedder = (*Embedder)(nil)
	_ GalleryEmbedder = (*PairEmbedder)(nil)
)

// SRReader is the embedder of e that reads restored faces: e itself, or a
// pair's Restored.
func SRReader(e GalleryEmbedder) *Embedder {
	switch v := e.(type) {
	case *PairEmbedder:
		return v.restored
	case *Embedder:
		return v
	}
	return nil
}
