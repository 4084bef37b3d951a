package eval

import (
	"context"
	"hash/fnv"

	"github.com/srdgd/srdgd/internal/resample"
)

// Method is one way to get a 128x128 face back from an LR probe.
type Method struct {
	Name string
	// ID names what the output depends on beyond Name and the input (the
	// models' hashes, steps, seed). A method with an ID has its outputs kept
	// in Options.SRCache, so that a new embedder or fusion rule reuses them.
	ID string
	// Stochastic methods give a different output per Input.Draw; only they
	// get posterior samples (Shots.Samples).
	Stochastic bool
	// Restore returns planar RGB 3 x 128 x 128 in [0, 1] from the input.
	Restore func(ctx context.Context, in Input) ([]float32, error)
	// Adapt, when set, maps the descriptor of each output (an SR adapter,
	// match.Adapter); AdapterID names it in the cache. SRName is the name
	// the SR cache keys the outputs by (default Name): an adapted row shares
	// the outputs of the row it adapts.
	Adapt     func(ctx context.Context, desc []float32) ([]float32, error)
	AdapterID string
	SRName    string
}

// srName is the name the SR cache keys the method's outputs by.
func (m Method) srName() string {
	if m.SRName != "" {
		return m.SRName
	}
	return m.Name
}

// Input is what a Method restores: the LR probe (3 x N x N), the probe's
// description (attributes, path) and which observation of it this is.
type Input struct {
	LR    []float32
	N     int
	Probe Image
	// Draw is "" for the single probe made by MakeLR, else the shot and
	// posterior sample ("shot2.sample0", see Shots).
	Draw string
}

// SeedKey names the input for a noise seed (ProbeSeed): the probe's path,
// with the draw when there is one, so every shot and sample gets its own
// noise and the single probe keeps the seed it always had.
func (in Input) SeedKey() string {
	if in.Draw == "" {
		return in.Probe.Path
	}
	return in.Probe.Path + "#" + in.Draw
}

// LRBicubic is the "LR" baseline: the probe upsampled with antialiased
// bicubic, i.e. the conditioning image y of SRDG.md section 2.
func LRBicubic() Method {
	return Method{Name: "lr-bicubic", Restore: func(_ context.Context, in Input) ([]float32, error) {
		return resample.Resize(in.LR, 3, in.N, in.N, HR, HR, resample.Bicubic)
	}}
}

// HRMethod is the name of the HRReference method.
const HRMethod = "hr"

// HRReference is the upper bound of recognition: the HR face itself (PSNR
// infinite, recorded as 100 dB; SSIM 1). It has no shots.
func HRReference(set *Set) Method {
	return Method{Name: HRMethod, Restore: func(_ context.Context, in Input) ([]float32, error) {
		f, err := set.LoadFace(in.Probe)
		if err != nil {
			return nil, err
		}
		return f.Pix, nil
	}}
}

// ProbeSeed is a per-probe noise seed: the same for a probe whatever the
// order of the run, so a resumed run matches an uninterrupted one.
func ProbeSeed(seed uint64, probe string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(probe))
	return seed ^ h.Sum64()
}
