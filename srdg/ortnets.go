package srdg

import (
	"context"

	"fmt"
	"strconv"
	"strings"
	"unsafe"

	"github.com/srdgd/srdgd/internal/ort"
)

// Model slots: what the engine requires of the ONNX files (models/README.md).
var (
	ScoreSlot = ort.Slot{
		Name: "score model", Kind: "score",
		Inputs: []string{"x_t", "y", "sigma"}, Outputs: []string{"score"},
		Meta: []string{"srdgd.scale", "srdgd.sigma_min", "srdgd.sigma_max", "srdgd.hr_size", "srdgd.lr_size"},
	}
	GuidanceSlot = ort.Slot{
		Name: "guidance model", Kind: "guidance",
		Inputs: []string{"x_t", "sigma", "labels"}, Outputs: []string{"grad"},
		Meta: []string{"srdgd.attributes", "srdgd.sigma_min", "srdgd.sigma_max", "srdgd.hr_size"},
	}
)

// tensorKey identifies a caller buffer; the sampler reuses the same buffers for
// a batch shape, so the ORT tensors wrapping them are made once and kept.
type tensorKey struct {
	p unsafe.Pointer
	n int
}

func keyOf(s []float32) tensorKey { return tensorKey{unsafe.Pointer(unsafe.SliceData(s)), len(s)} }

type tensorCache struct {
	m map[tensorKey]ort.Value
}

func (c *tensorCache) get(s []float32, shape ...int64) (ort.Value, error) {
	if c.m == nil {
		c.m = map[tensorKey]ort.Value{}
	}
	k := keyOf(s)
	if t, ok := c.m[k]; ok {
		return t, nil
	}
	t, err := ort.NewTensor(s, shape...)
	if err != nil {
		return nil, err
	}
	c.m[k] = t
	return t, nil
}

func (c *tensorCache) close() {
	for k, t := range c.m {
		t.Destroy()
		delete(c.m, k)
	}
}

// ModelInfo is what the engine reads from a model's metadata.
type ModelInfo struct {
	Path       string
	Name       string
	Provider   string
	Scale      int // score: 8 or 16
	HR, LR     int
	SigmaMin   float64
	SigmaMax   float64
	Attributes []string // guidance
	// AbstainLabel: the guidance graph masks attributes labelled -1
	// (srdgd.label_abstain = "-1"). Without it a face must label every
	// attribute or none.
	AbstainLabel bool
	Meta         map[string]string
}

func parseInfo(s *ort.Session, kind string) (ModelInfo, error) {
	mi := ModelInfo{Path: s.Path, Provider: s.Provider, Meta: s.Meta, Name: s.Meta["srdgd.name"]}
	var probs []string
	num := func(key string) float64 {
		v, err := strconv.ParseFloat(s.Meta[key], 64)
		if err != nil {
			probs = append(probs, fmt.Sprintf("%s %q is not a number", key, s.Meta[key]))
		}
		return v
	}
	mi.SigmaMin, mi.SigmaMax = num("srdgd.sigma_min"), num("srdgd.sigma_max")
	mi.HR = int(num("srdgd.hr_size"))
	if kind == "score" {
		mi.Scale = int(num("srdgd.scale"))
		mi.LR = int(num("srdgd.lr_size"))
	} else {
		mi.Attributes = ParseAttributes(s.Meta["srdgd.attributes"])
		mi.AbstainLabel = s.Meta["srdgd.label_abstain"] == "-1"
	}
	if len(probs) > 0 {
		return mi, fmt.Errorf("%s %s: %s", kind, s.Path, strings.Join(probs, "; "))
	}
	return mi, nil
}

// ORTScore runs a score model through ONNX Runtime.
type ORTScore struct {
	Info ModelInfo
	s    *ort.Session
	tc   tensorCache
	hr   int64
}

// OpenScore loads a score model and checks it fits the slot.
func OpenScore(rt *ort.Runtime, path string, o ort.SessionOptions) (*ORTScore, error) {
	s, err := rt.NewSession(path, ScoreSlot, o)
	if err != nil {
		return nil, err
	}
	mi, err := parseInfo(s, "score")
	if err != nil {
		s.Close()
		return nil, err
	}
	return &ORTScore{Info: mi, s: s, hr: int64(mi.HR)}, nil
}

// Score implements ScoreNet.
func (m *ORTScore) Score(ctx context.Context, x, y, sigma, out []float32) error {
	b := int64(len(sigma))
	xt, err := m.tc.get(x, b, 3, m.hr, m.hr)
	if err != nil {
		return err
	}
	yt, err := m.tc.get(y, b, 3, m.hr, m.hr)
	if err != nil {
		return err
	}
	st, err := m.tc.get(sigma, b)
	if err != nil {
		return err
	}
	ot, err := m.tc.get(out, b, 3, m.hr, m.hr)
	if err != nil {
		return err
	}
	return m.s.Run(ctx, []ort.Value{xt, yt, st}, []ort.Value{ot})
}

// Close releases the session and the tensors.
func (m *ORTScore) Close() error {
	m.tc.close()
	return m.s.Close()
}

// ORTGuidance runs an attribute-guidance model through ONNX Runtime.
type ORTGuidance struct {
	Info ModelInfo
	s    *ort.Session
	tc   tensorCache
	hr   int64
}

// OpenGuidance loads a guidance model and checks it fits the slot.
func OpenGuidance(rt *ort.Runtime, path string, o ort.SessionOptions) (*ORTGuidance, error) {
	s, err := rt.NewSession(path, GuidanceSlot, o)
	if err != nil {
		return nil, err
	}
	mi, err := parseInfo(s, "guidance")
	if err != nil {
		s.Close()
		return nil, err
	}
	return &ORTGuidance{Info: mi, s: s, hr: int64(mi.HR)}, nil
}

// Guidance implements GuidanceNet.
func (m *ORTGuidance) Guidance(ctx context.Context, x, sigma, labels, out []float32) error {
	b := int64(len(sigma))
	xt, err := m.tc.get(x, b, 3, m.hr, m.hr)
	if err != nil {
		return err
	}
	st, err := m.tc.get(sigma, b)
	if err != nil {
		return err
	}
	lt, err := m.tc.get(labels, b, int64(len(m.Info.Attributes)))
	if err != nil {
		return err
	}
	ot, err := m.tc.get(out, b, 3, m.hr, m.hr)
	if err != nil {
		return err
	}
	return m.s.Run(ctx, []ort.Value{xt, st, lt}, []ort.Value{ot})
}

// Close releases the session and the tensors.
func (m *ORTGuidance) Close() error {
	m.tc.close()
	return m.s.Close()
}
