package eval

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/internal/locate"
	"github.com/srdgd/srdgd/internal/ort"
	"github.com/srdgd/srdgd/match"
	"github.com/srdgd/srdgd/srdg"
)

// MethodSet makes the methods of a run per scale (Options.Methods): the HR
// reference, LR bicubic, and SRDG per sampler, unguided and guided. It opens
// one SR engine per scale it is asked for; Close releases them.
type MethodSet struct {
	Set     *Set
	Runtime *ort.Runtime
	Session ort.SessionOptions
	// Models finds score_x<scale>.onnx and guidance.onnx.
	Models locate.Models
	// Samplers are SR sampler names (none: LR and HR only).
	Samplers         []string
	Unguided, Guided bool
	HR               bool
	Steps            int
	Seed             uint64
	// Adapters are SR adapters by scale (OpenAdapters): each SR method of
	// a scale with one gets an adapted twin, "<method>+adapter".
	Adapters map[int]*match.Adapter
	engines  []*srdg.Engine
}

// Close releases the engines opened so far.
func (m *MethodSet) Close() {
	for _, e := range m.engines {
		e.Close()
	}
	m.engines = nil
	for _, a := range m.Adapters {
		a.Close()
	}
	m.Adapters = nil
}

// Methods returns the methods of scale.
func (m *MethodSet) Methods(scale int) ([]Method, error) {
	ms := []Method{LRBicubic()}
	if m.HR {
		ms = append([]Method{HRReference(m.Set)}, ms...)
	}
	if len(m.Samplers) == 0 || (!m.Guided && !m.Unguided) || face.IsDirectScale(scale) {
		// a direct scale has no SR model: the daemon reads those faces
		// as they are (srdg.direct_side), i.e. the LR row
		return ms, nil
	}
	key := m.Models.DirKey
	scorePath, err := m.Models.File(key, "", fmt.Sprintf("score_x%d.onnx", scale))
	if err != nil {
		return nil, err
	}
	gp := ""
	if m.Guided {
		if gp, err = m.Models.File(key, "", "guidance.onnx"); err != nil {
			return nil, err
		}
	}
	eng, err := srdg.Open(srdg.ModelOptions{Runtime: m.Runtime, Session: m.Session, WantScale: scale, ScorePath: scorePath, GuidancePath: gp})
	if err != nil {
		return nil, err
	}
	m.engines = append(m.engines, eng)
	ids, err := ModelIDs(scorePath, gp)
	if err != nil {
		return nil, err
	}
	var srs []Method
	for _, s := range m.Samplers {
		if m.Unguided {
			srs = append(srs, m.srMethod(eng, s, false, ids[0]))
		}
		if m.Guided {
			srs = append(srs, m.srMethod(eng, s, true, ids[0]+"+"+ids[1]))
		}
	}
	ms = append(ms, srs...)
	if a := m.Adapters[scale]; a != nil {
		for _, sm := range srs {
			ms = append(ms, adapted(sm, a))
		}
	}
	return ms, nil
}

// adapted is meth with its descriptors mapped by the SR adapter a; it
// reads meth's outputs from the SR cache.
func adapted(meth Method, a *match.Adapter) Method {
	out := meth
	out.Name, out.SRName, out.AdapterID = meth.Name+"+adapter", meth.srName(), a.ID()
	out.Adapt = func(ctx context.Context, d []float32) ([]float32, error) {
		v := append([]float32(nil), d...)
		if err := a.Apply(ctx, [][]float32{v}); err != nil {
			return nil, err
		}
		return v, nil
	}
	return out
}

// OpenAdapters opens the SR adapters of the scales found by m.Models
// (match.AdapterFile; a scale without one has none), each made for emb.
func (m *MethodSet) OpenAdapters(emb *match.Embedder, scales []int) error {
	for _, sc := range scales {
		path, err := m.Models.File(m.Models.DirKey, "", match.AdapterFile(sc))
		if err != nil {
			continue // optional
		}
		a, err := match.OpenAdapterFor(m.Runtime, path, sc, m.Session, emb)
		if err != nil {
			return err
		}
		if m.Adapters == nil {
			m.Adapters = map[int]*match.Adapter{}
		}
		m.Adapters[sc] = a
	}
	return nil
}

// ModelIDs are sha256 prefixes of the model files ("" for no file), naming
// the SR cache's entries.
func ModelIDs(paths ...string) ([]string, error) {
	out := make([]string, len(paths))
	for i, p := range paths {
		if p == "" {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		h := sha256.Sum256(b)
		out[i] = hex.EncodeToString(h[:8])
	}
	return out, nil
}

// srMethod is SRDG with one sampler, guided by the probe's attributes or not.
func (m *MethodSet) srMethod(eng *srdg.Engine, sampler string, guide bool, models string) Method {
	suffix := ""
	if m.Steps != 0 {
		suffix += fmt.Sprintf("-n%d", m.Steps)
	}
	if m.Seed != 1 {
		suffix += fmt.Sprintf("-seed%d", m.Seed)
	}
	kind := "unguided"
	if guide {
		kind = "guided"
	}
	attrs := eng.Attributes()
	steps, seed := m.Steps, m.Seed
	return Method{Name: "sr-" + sampler + suffix + "-" + kind, Stochastic: true,
		ID: fmt.Sprintf("%s|steps%d|seed%d", models, steps, seed),
		Restore: func(ctx context.Context, in Input) ([]float32, error) {
			var labels []int // nil: all abstain (unguided)
			if guide {
				labels = make([]int, len(attrs))
				for i, a := range attrs {
					labels[i] = -1
					if v, ok := in.Probe.Attributes[a]; ok {
						labels[i] = v
					}
				}
			}
			res, err := eng.SuperResolve(ctx, []srdg.Input{{LR: in.LR, Labels: labels}},
				srdg.Params{Sampler: sampler, Steps: steps}, srdg.NewSeededNoise(ProbeSeed(seed, in.SeedKey())))
			if err != nil {
				return nil, err
			}
			return res[0].SR, nil
		}}
}
