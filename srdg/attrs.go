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

// parseAttributes reads srdgd.attributes: a JSON array or a comma list.
func parseAttributes(v string) []string {
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

// AttrPredictor predicts guidance attributes from the LR probe itself (for
// faces no operator has labelled).
type AttrPredictor struct {
	Attributes []string
	Scale, LR  int
	s          *ort.Session
	in, out    map[int][]float32
	tc         tensorCache
}

// OpenAttrPredictor loads an lr_attrs model.
func OpenAttrPredictor(rt *ort.Runtime, path string, o ort.SessionOptions) (*AttrPredictor, error) {
	s, err := rt.NewSession(path, AttrSlot, o)
	if err != nil {
		return nil, err
	}
	p := &AttrPredictor{s: s, Attributes: parseAttributes(s.Meta["srdgd.attributes"]), in: map[int][]float32{}, out: map[int][]float32{}}
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

// Predict returns, per LR probe (3 x LR x LR planar), the probability that
// each attribute has label 1. Buffers are kept per batch size.
func (p *AttrPredictor) Predict(ctx context.Context, lrs [][]float32) ([][]float64, error) {
	b := len(lrs)
	n := 3 * p.LR * p.LR
	A := len(p.Attributes)
	in, ok := p.in[b]
	if !ok {
		in, p.in[b], p.out[b] = make([]float32, b*n), make([]float32, b*n), make([]float32, b*A)
		in = p.in[b]
	}
	out := p.out[b]
	for i, lr := range lrs {
		if len(lr) != n {
			return nil, fmt.Errorf("LR attribute model: probe %d has %d values, want %d", i, len(lr), n)
		}
		copy(in[i*n:], lr)
	}
	it, err := p.tc.get(in, int64(b), 3, int64(p.LR), int64(p.LR))
	if err != nil {
		return nil, err
	}
	ot, err := p.tc.get(out, int64(b), int64(A))
	if err != nil {
		return nil, err
	}
	if err := p.s.Run(ctx, []ort.Value{it}, []ort.Value{ot}); err != nil {
		return nil, err
	}
	res := make([][]float64, b)
	for i := range res {
		res[i] = make([]float64, A)
		for a := 0; a < A; a++ {
			res[i][a] = float64(out[i*A+a])
		}
	}
	return res, nil
}

// Close releases the session.
func (p *AttrPredictor) Close() error {
	p.tc.close()
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
