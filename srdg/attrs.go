package srdg

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/srdgd/srdgd/internal/ort"
)

// AttrSlot is what the LR attribute predictor must provide (models/README.md).
var AttrSlot = ort.Slot{
	Name: "LR attribute model", Kind: "lr_attrs",
	Inputs: []string{"lr"}, Outputs: []string{"probs"},
	Meta: []string{"srdgd.attributes", "srdgd.scale", "srdgd.lr_size"},
}

// ParseAttributes reads srdgd.attributes: a JSON array or a comma list.
func ParseAttributes(v string) []string {
	var list []string
	if err := json.Unmarshal([]byte(v), &list); err == nil {
		return list
	}
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			list = append(list, s)
		}
	}
	return list
}

// AttrPredictor predicts the soft-biometric attributes (male, glasses,
// no_beard) from the LR probe itself, for faces no operator has labelled.
type AttrPredictor struct {
	Attributes []string
	Scale, LR  int
	s          *ort.Session
	bufs       map[int]*attrBuffers
}

type attrBuffers struct {
	in, out []float32
	it, ot  ort.Value
}

// OpenAttrPredictor loads an lr_attrs model.
func OpenAttrPredictor(rt *ort.Runtime, path string, o ort.SessionOptions) (*AttrPredictor, error) {
	s, err := rt.NewSession(path, AttrSlot, o)
	if err != nil {
		return nil, err
	}
	p := &AttrPredictor{s: s, Attributes: ParseAttributes(s.Meta["srdgd.attributes"]), bufs: map[int]*attrBuffers{}}
	if _, err := fmt.Sscan(s.Meta["srdgd.scale"], &p.Scale); err != nil {
		s.Close()
		return nil, fmt.Errorf("LR attribute model %s: srdgd.scale %q: %w", path, s.Meta["srdgd.scale"], err)
	}
	if _, err := fmt.Sscan(s.Meta["srdgd.lr_size"], &p.LR); err != nil {
		s.Close()
		return nil, fmt.Errorf("LR attribute model %s: srdgd.lr_size %q: %w", path, s.Meta["srdgd.lr_size"], err)
	}
	return p, nil
}

func (p *AttrPredictor) buffers(b int) (*attrBuffers, error) {
	if bb, ok := p.bufs[b]; ok {
		return bb, nil
	}
	bb := &attrBuffers{in: make([]float32, b*3*p.LR*p.LR), out: make([]float32, b*len(p.Attributes))}
	var err error
	if bb.it, err = ort.NewTensor(bb.in, int64(b), 3, int64(p.LR), int64(p.LR)); err != nil {
		return nil, err
	}
	if bb.ot, err = ort.NewTensor(bb.out, int64(b), int64(len(p.Attributes))); err != nil {
		bb.it.Destroy()
		return nil, err
	}
	p.bufs[b] = bb
	return bb, nil
}

// Predict returns, per LR probe (3 x LR x LR planar RGB in [0, 1]), the
// calibrated probability that each attribute has label 1. Buffers are kept
// per batch size. Not safe for concurrent use.
func (p *AttrPredictor) Predict(ctx context.Context, lrs [][]float32) ([][]float64, error) {
	n, A := 3*p.LR*p.LR, len(p.Attributes)
	bb, err := p.buffers(len(lrs))
	if err != nil {
		return nil, err
	}
	for i, lr := range lrs {
		if len(lr) != n {
			return nil, fmt.Errorf("LR attribute model: probe %d has %d values, want 3x%dx%d", i, len(lr), p.LR, p.LR)
		}
		copy(bb.in[i*n:], lr)
	}
	if err := p.s.Run(ctx, []ort.Value{bb.it}, []ort.Value{bb.ot}); err != nil {
		return nil, err
	}
	res := make([][]float64, len(lrs))
	for i := range res {
		res[i] = make([]float64, A)
		for a := 0; a < A; a++ {
			res[i][a] = float64(bb.out[i*A+a])
		}
	}
	return res, nil
}

// Close releases the session and the buffers.
func (p *AttrPredictor) Close() error {
	for b, bb := range p.bufs {
		bb.it.Destroy()
		bb.ot.Destroy()
		delete(p.bufs, b)
	}
	return p.s.Close()
}

// ChooseLabels turns probabilities into guidance labels: 1 when p >=
// threshold, 0 when 1 - p >= threshold, otherwise -1 (abstain: the paper warns
// that wrong attributes produce wrong faces).
func ChooseLabels(probs []float64, threshold float64) []int {
	out := make([]int, len(probs))
	for i, p := range probs {
		switch {
		case p >= threshold:
			out[i] = 1
		case 1-p >= threshold:
			out[i] = 0
		default:
			out[i] = -1
		}
	}
	return out
}
