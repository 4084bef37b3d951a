package srdg

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"
)

// ScoreNet evaluates the score model on a batch: x and y are B faces of D
// floats (NCHW), sigma has B entries, out receives B*D floats.
type ScoreNet interface {
	Score(ctx context.Context, x, y, sigma, out []float32) error
}

// GuidanceNet evaluates the attribute-guidance model: out = sum over
// attributes a of mask_a * grad_x log softmax(C_a(x, sigma))[label_a], per face.
// labels holds B*A values: 0 or 1, or -1 where the attribute abstains.
type GuidanceNet interface {
	Guidance(ctx context.Context, x, sigma, labels, out []float32) error
}

// Params are a sampler's constants; zero values take the sampler's defaults.
type Params struct {
	// Sampler names one of Samplers. Default "fast".
	Sampler string
	// Steps is the number of predictor steps (N). Default per sampler.
	Steps int
	// CorrectorSteps is the number of Langevin corrector steps per predictor
	// step (PC samplers). Default: 2 for reference, 1 for fast; -1 means none.
	CorrectorSteps int
	// SNR is the Langevin corrector's signal-to-noise ratio. Default 0.16.
	SNR float64
	// W is the guidance weight, the same in corrector and predictor. The
	// released code uses 500 (the paper text says 50); that is the reference
	// sampler's default. The short samplers do not equilibrate at sigma_min and
	// so guide harder at equal W: their defaults are scaled so that on the
	// analytic Gaussian fixture (s = 0.1) their mean shift equals the reference
	// sampler's at 500 (TestGuidanceShiftsMean measures the ratios: fast 5.9x,
	// ode 17x).
	W float64
	// SigmaStart is where samplers that start from the upsampled LR image
	// begin (x = y + SigmaStart * z). Ignored by the reference sampler.
	SigmaStart float64
	// Schedule of the SDE. Default DefaultSchedule.
	Schedule Schedule
	// Progress, when set, is called on the sampling goroutine after each
	// score evaluation of a batch with the evaluations done and the total
	// (EvalsPerFace): for a progress line on long runs (the reference
	// sampler takes minutes on a CPU). It must return quickly.
	Progress func(done, total int)
}

// SamplerInfo describes a sampler for the CLI, config validation and docs.
type SamplerInfo struct {
	Name        string
	Description string
	defaults    Params
	run         func(ctx context.Context, st *state, p Params) error
	evals       func(p Params) int
}

// Samplers lists every sampler by name.
var samplers = map[string]SamplerInfo{
	"reference": {
		Name:        "reference",
		Description: "predictor-corrector of SRDG.md section 5 exactly: from pure noise, reverse-diffusion predictor + Langevin corrector (N=1000, 2 corrector steps, snr 0.16): 3000 evaluations per face",
		defaults:    Params{Steps: 1000, CorrectorSteps: 2, SNR: 0.16, W: 500},
		run:         runReference,
		evals:       func(p Params) int { return p.Steps * (1 + max(p.CorrectorSteps, 0)) },
	},
	"fast": {
		Name:        "fast",
		Description: "Langevin corrector + VE ancestral predictor, started from the upsampled LR image at an intermediate sigma (x = y + sigma_start z), on a geometric grid down to sigma_min: steps*(1+corrector) evaluations per face",
		defaults:    Params{Steps: 16, CorrectorSteps: 1, SNR: 0.16, W: 85, SigmaStart: 2},
		run:         runFast,
		evals:       func(p Params) int { return p.Steps * (1 + max(p.CorrectorSteps, 0)) },
	},
	"ode": {
		Name:        "ode",
		Description: "deterministic probability-flow ODE with Heun's second-order step, started from the upsampled LR image at sigma_start, then one Tweedie denoising step: 2*steps-1 evaluations per face",
		defaults:    Params{Steps: 12, SNR: 0.16, W: 29, SigmaStart: 2, CorrectorSteps: -1},
		run:         runODE,
		evals:       func(p Params) int { return 2*p.Steps - 1 },
	},
}

// FastMinSteps is the fewest steps the fast sampler accepts: at 4 steps its
// output is speckled with noise (seen in the browser test's timeline).
const FastMinSteps = 8

// SamplerNames lists the sampler names, sorted.
func SamplerNames() []string {
	var n []string
	for k := range samplers {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// LookupSampler returns the named sampler.
func LookupSampler(name string) (SamplerInfo, bool) {
	s, ok := samplers[name]
	return s, ok
}

// Resolve fills zero fields of p with the sampler's defaults and validates.
func (p Params) Resolve() (Params, SamplerInfo, error) {
	if p.Sampler == "" {
		p.Sampler = "fast"
	}
	info, ok := samplers[p.Sampler]
	if !ok {
		return p, info, fmt.Errorf("unknown sampler %q (known: %v)", p.Sampler, SamplerNames())
	}
	d := info.defaults
	if p.Steps == 0 {
		p.Steps = d.Steps
	}
	if p.CorrectorSteps == 0 {
		p.CorrectorSteps = d.CorrectorSteps
	}
	if p.SNR == 0 {
		p.SNR = d.SNR
	}
	if p.W == 0 {
		p.W = d.W
	}
	if p.SigmaStart == 0 {
		p.SigmaStart = d.SigmaStart
	}
	if p.Schedule == (Schedule{}) {
		p.Schedule = DefaultSchedule
	}
	switch {
	case p.Steps < 1:
		return p, info, fmt.Errorf("sampler %s: steps %d must be >= 1", p.Sampler, p.Steps)
	case p.Sampler == "fast" && p.Steps < FastMinSteps:
		// its last steps are large ancestral jumps that leave speckle noise
		return p, info, fmt.Errorf("sampler fast: steps %d must be >= %d (fewer leave visible noise; the ode sampler works with as few as 3)", p.Steps, FastMinSteps)
	case p.W < 0:
		return p, info, fmt.Errorf("sampler %s: guidance weight %g must be >= 0", p.Sampler, p.W)
	case p.SNR <= 0:
		return p, info, fmt.Errorf("sampler %s: snr %g must be > 0", p.Sampler, p.SNR)
	case p.Sampler != "reference" && (p.SigmaStart <= p.Schedule.SigmaMin || p.SigmaStart > p.Schedule.SigmaMax):
		return p, info, fmt.Errorf("sampler %s: sigma_start %g must be in (%g, %g]", p.Sampler, p.SigmaStart, p.Schedule.SigmaMin, p.Schedule.SigmaMax)
	}
	return p, info, nil
}

// EvalsPerFace is the number of score evaluations (and, with guidance on, the
// same number of guidance evaluations) one face costs.
func (p Params) EvalsPerFace() int {
	q, info, err := p.Resolve()
	if err != nil {
		return 0
	}
	return info.evals(q)
}

// state is one batch being sampled; every buffer is allocated once per batch
// shape and reused across steps.
type state struct {
	B, D, A int
	score   ScoreNet
	guide   GuidanceNet // nil: no guidance model
	noise   Noise
	y       []float32 // conditioning, B*D
	labels  []float32 // B*A, -1 = abstain
	gw      []float64 // per-face guidance weight (0 = off)
	x       []float32
	xmean   []float32
	g       []float32 // guided score
	gg      []float32 // guidance term
	aux     []float32 // sampler scratch (ODE slope)
	z       []float32
	sigma   []float32 // B, the same value for every face at a step
	nScore  int
	nGuide  int
	netTime time.Duration // time spent inside the networks
	anyGuid bool
	// progress is Params.Progress, total the evaluations it counts towards
	progress func(done, total int)
	total    int
}

func newState(B, D, A int) *state {
	return &state{
		B: B, D: D, A: A,
		y: make([]float32, B*D), labels: make([]float32, B*A), gw: make([]float64, B),
		x: make([]float32, B*D), xmean: make([]float32, B*D), g: make([]float32, B*D),
		gg: make([]float32, B*D), aux: make([]float32, B*D), z: make([]float32, B*D), sigma: make([]float32, B),
	}
}

// guided computes g = score(x, y, sigma) + w_b * guidance(x, sigma, labels).
func (st *state) guided(ctx context.Context, sigma float64) error {
	for b := range st.sigma {
		st.sigma[b] = float32(sigma)
	}
	t0 := time.Now()
	err := st.score.Score(ctx, st.x, st.y, st.sigma, st.g)
	st.netTime += time.Since(t0)
	if err != nil {
		return err
	}
	st.nScore++
	if st.progress != nil {
		st.progress(st.nScore, st.total)
	}
	if !st.anyGuid || st.guide == nil {
		return nil
	}
	t0 = time.Now()
	err = st.guide.Guidance(ctx, st.x, st.sigma, st.labels, st.gg)
	st.netTime += time.Since(t0)
	if err != nil {
		return err
	}
	st.nGuide++
	for b := 0; b < st.B; b++ {
		w := float32(st.gw[b])
		if w == 0 {
			continue
		}
		g, gg := st.g[b*st.D:(b+1)*st.D], st.gg[b*st.D:(b+1)*st.D]
		for i := range g {
			g[i] += w * gg[i]
		}
	}
	return nil
}

// corrector is one Langevin step (SRDG.md 5.2a), with per-image norms:
// step_b = 2 (snr ||z_b|| / ||g_b||)^2; x_mean = x + step g; x = x_mean + sqrt(2 step) z.
func (st *state) corrector(ctx context.Context, sigma, snr float64) error {
	if err := st.guided(ctx, sigma); err != nil {
		return err
	}
	st.noise.Normal(st.z)
	for b := 0; b < st.B; b++ {
		lo, hi := b*st.D, (b+1)*st.D
		gn, zn := norm(st.g[lo:hi]), norm(st.z[lo:hi])
		step := 0.0
		if gn > 0 {
			r := snr * zn / gn
			step = 2 * r * r
		}
		s, ns := float32(step), float32(math.Sqrt(2*step))
		x, xm, g, z := st.x[lo:hi], st.xmean[lo:hi], st.g[lo:hi], st.z[lo:hi]
		for i := range x {
			m := x[i] + s*g[i]
			xm[i] = m
			x[i] = m + ns*z[i]
		}
	}
	return nil
}

// predictor is one reverse-diffusion (ancestral) step (SRDG.md 5.2b):
// d = sigma_k^2 - sigma_{k-1}^2; x_mean = x + d g; x = x_mean + sqrt(d) z.
func (st *state) predictor(ctx context.Context, sigmaC, sigmaK, sigmaPrev float64) error {
	if err := st.guided(ctx, sigmaC); err != nil {
		return err
	}
	st.noise.Normal(st.z)
	d := sigmaK*sigmaK - sigmaPrev*sigmaPrev
	df, sd := float32(d), float32(math.Sqrt(d))
	for i := range st.x {
		m := st.x[i] + df*st.g[i]
		st.xmean[i] = m
		st.x[i] = m + sd*st.z[i]
	}
	return nil
}

// ancestral is the VE ancestral step from sigma to next < sigma (the
// posterior of x_next given x): x_mean = x + (sigma^2 - next^2) g,
// x = x_mean + next sqrt(1 - next^2/sigma^2) z. On a coarse grid it leaves x
// with noise of level next, where the reverse-diffusion predictor's sqrt(d)
// leaves about 1.4x that at a step ratio of 0.7, which the model then turns
// into texture.
func (st *state) ancestral(ctx context.Context, sigma, next float64) error {
	if err := st.guided(ctx, sigma); err != nil {
		return err
	}
	st.noise.Normal(st.z)
	d := sigma*sigma - next*next
	df, sd := float32(d), float32(next*math.Sqrt(d)/sigma)
	for i := range st.x {
		m := st.x[i] + df*st.g[i]
		st.xmean[i] = m
		st.x[i] = m + sd*st.z[i]
	}
	return nil
}

func norm(v []float32) float64 {
	var s float64
	for _, f := range v {
		s += float64(f) * float64(f)
	}
	return math.Sqrt(s)
}

// runReference is SRDG.md section 5 exactly.
func runReference(ctx context.Context, st *state, p Params) error {
	n := p.Steps
	sch := p.Schedule
	st.noise.Normal(st.x)
	for i := range st.x {
		st.x[i] *= float32(sch.SigmaMax)
	}
	ts := sch.Times(n)
	grid := sch.Discrete(n)
	for i := 0; i < n; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		sigmaC := sch.Sigma(ts[i])
		k := n - 1 - i
		for c := 0; c < p.CorrectorSteps; c++ {
			if err := st.corrector(ctx, sigmaC, p.SNR); err != nil {
				return err
			}
		}
		prev := 0.0
		if k > 0 {
			prev = grid[k-1]
		}
		if err := st.predictor(ctx, sigmaC, grid[k], prev); err != nil {
			return err
		}
	}
	return nil
}

// runFast starts from the upsampled LR image at SigmaStart and runs a
// predictor-corrector on a geometric grid from SigmaStart to sigma_min: the
// same Langevin corrector as the reference sampler, and the ancestral
// predictor, whose noise fits a coarse grid (the reverse-diffusion one of the
// reference sampler over-injects noise on 16 steps).
func runFast(ctx context.Context, st *state, p Params) error {
	n := p.Steps
	sch := p.Schedule
	startFromY(st, p.SigmaStart)
	grid := geometric(p.SigmaStart, sch.SigmaMin, n) // descending
	for i := 0; i < n; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		sigma := grid[i]
		for c := 0; c < p.CorrectorSteps; c++ {
			if err := st.corrector(ctx, sigma, p.SNR); err != nil {
				return err
			}
		}
		prev := 0.0
		if i+1 < n {
			prev = grid[i+1]
		}
		if err := st.ancestral(ctx, sigma, prev); err != nil {
			return err
		}
	}
	return nil
}

// runODE integrates the probability-flow ODE dx/dsigma = -sigma G(x, sigma)
// with Heun's method from SigmaStart to sigma_min, then applies Tweedie's
// formula x0 = x + sigma_min^2 G (the posterior mean at sigma_min).
func runODE(ctx context.Context, st *state, p Params) error {
	n := p.Steps
	sch := p.Schedule
	startFromY(st, p.SigmaStart)
	grid := geometric(p.SigmaStart, sch.SigmaMin, n)
	d1 := st.aux
	x0 := st.xmean
	for i := 0; i+1 < n; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		s0, s1 := grid[i], grid[i+1]
		h := s1 - s0 // negative
		if err := st.guided(ctx, s0); err != nil {
			return err
		}
		// slope f(x, s) = -s G(x, s)
		copy(x0, st.x)
		for j := range st.x {
			d1[j] = float32(-s0) * st.g[j]
			st.x[j] = x0[j] + float32(h)*d1[j]
		}
		if err := st.guided(ctx, s1); err != nil {
			return err
		}
		for j := range st.x {
			d2 := float32(-s1) * st.g[j]
			st.x[j] = x0[j] + float32(h/2)*(d1[j]+d2)
		}
	}
	if err := st.guided(ctx, grid[n-1]); err != nil {
		return err
	}
	s2 := float32(grid[n-1] * grid[n-1])
	for j := range st.x {
		st.xmean[j] = st.x[j] + s2*st.g[j]
	}
	return nil
}

// startFromY sets x = y + sigma z.
func startFromY(st *state, sigma float64) {
	st.noise.Normal(st.z)
	s := float32(sigma)
	for i := range st.x {
		st.x[i] = st.y[i] + s*st.z[i]
	}
}

// geometric returns n values from hi down to lo, evenly spaced in log.
func geometric(hi, lo float64, n int) []float64 {
	out := make([]float64, n)
	if n == 1 {
		out[0] = lo
		return out
	}
	a, b := math.Log(hi), math.Log(lo)
	for i := range out {
		out[i] = math.Exp(a + (b-a)*float64(i)/float64(n-1))
	}
	return out
}
