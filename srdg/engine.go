package srdg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/srdgd/srdgd/internal/resample"
)

// Input is one LR probe to super-resolve.
type Input struct {
	// LR is the probe, planar RGB (3 x LR x LR) in [0, 1].
	LR []float32
	// Labels per guidance attribute (Engine.Attributes order): 1 or 0, or -1
	// to abstain. A face with every attribute abstaining is sampled without
	// guidance. nil means all abstain.
	Labels []int
}

// Result is one super-resolved face.
type Result struct {
	// SR is planar RGB (3 x HR x HR) in [0, 1].
	SR []float32
	// Labels are the guidance labels used (-1 = abstained), Guided whether
	// any guidance was applied to this face.
	Labels []int
	Guided bool
	// Weight is the guidance weight applied to this face: the sampler's
	// resolved weight (its default where the options say 0) when Guided,
	// else 0.
	Weight float64
	// Sampler, Steps and the evaluations this face cost.
	Sampler       string
	Steps         int
	ScoreEvals    int
	GuidanceEvals int
	// Elapsed is the wall time of the batch this face was in, NetTime the
	// part of it spent inside the networks (the rest is sampler overhead).
	Elapsed, NetTime time.Duration
}

// Options configure an Engine.
type Options struct {
	Score    ScoreNet
	Guidance GuidanceNet // nil: no guidance available
	// HR and LR sizes, from the score model's metadata.
	HR, LR int
	// Attributes of the guidance model, in label order.
	Attributes []string
	// AbstainLabel says the guidance model masks attributes labelled -1; when
	// false, a face that labels only some attributes is sampled unguided.
	AbstainLabel bool
	// MaxBatch splits larger requests. Default 8.
	MaxBatch int
	// Schedule of the models (sigma range from their metadata); used when a
	// request's Params leave it zero. Default DefaultSchedule.
	Schedule Schedule
	Logger   *slog.Logger
}

// Engine runs samplers over a score and a guidance network. It keeps one set
// of buffers per batch size, reused across calls; calls are serialised.
type Engine struct {
	// ScoreInfo and GuidanceInfo describe the loaded models (set by Open).
	ScoreInfo    ModelInfo
	GuidanceInfo *ModelInfo

	o       Options
	closers []func() error
	mu      sync.Mutex
	states  map[int]*state
	up      *resample.Resizer
}

// NewEngine validates the options.
func NewEngine(o Options) (*Engine, error) {
	if o.Score == nil {
		return nil, fmt.Errorf("srdg: no score model")
	}
	if o.HR <= 0 || o.LR <= 0 || o.HR%o.LR != 0 {
		return nil, fmt.Errorf("srdg: bad sizes HR %d, LR %d", o.HR, o.LR)
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 8
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Schedule == (Schedule{}) {
		o.Schedule = DefaultSchedule
	}
	up, err := resample.NewResizer(3, o.LR, o.LR, o.HR, o.HR, resample.Bicubic)
	if err != nil {
		return nil, err
	}
	return &Engine{o: o, states: map[int]*state{}, up: up}, nil
}

// Close releases the models the engine opened.
func (e *Engine) Close() error {
	var errs []error
	for _, c := range e.closers {
		errs = append(errs, c())
	}
	e.closers = nil
	return errors.Join(errs...)
}

// Attributes lists the guidance attributes in label order (empty without a
// guidance model).
func (e *Engine) Attributes() []string {
	if e.o.Guidance == nil {
		return nil
	}
	return e.o.Attributes
}

// Sizes returns the HR and LR sizes.
func (e *Engine) Sizes() (hr, lr int) { return e.o.HR, e.o.LR }

// Conditioning writes y, the LR image upsampled to HR with antialiased bicubic
// (SRDG.md section 2), into dst (3 x HR x HR).
func (e *Engine) Conditioning(dst, lr []float32) error {
	return e.up.Resize(dst, lr)
}

// SuperResolve samples one HR face per input face. noise supplies all
// randomness (NewSeededNoise for a reproducible run). It returns ctx's error
// if ctx ends between steps or during a model call.
func (e *Engine) SuperResolve(ctx context.Context, faces []Input, p Params, noise Noise) ([]Result, error) {
	if p.Schedule == (Schedule{}) {
		p.Schedule = e.o.Schedule
	}
	p, info, err := p.Resolve()
	if err != nil {
		return nil, err
	}
	if noise == nil {
		return nil, fmt.Errorf("srdg: nil noise source")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Result, 0, len(faces))
	for lo := 0; lo < len(faces); lo += e.o.MaxBatch {
		hi := min(lo+e.o.MaxBatch, len(faces))
		res, err := e.batch(ctx, faces[lo:hi], p, info, noise)
		if err != nil {
			return nil, err
		}
		out = append(out, res...)
	}
	return out, nil
}

func (e *Engine) batch(ctx context.Context, faces []Input, p Params, info SamplerInfo, noise Noise) ([]Result, error) {
	t0 := time.Now()
	B, D, A := len(faces), 3*e.o.HR*e.o.HR, len(e.o.Attributes)
	st := e.states[B]
	if st == nil {
		st = newState(B, D, A)
		e.states[B] = st
	}
	st.score, st.guide, st.noise = e.o.Score, e.o.Guidance, noise
	st.nScore, st.nGuide, st.anyGuid, st.netTime = 0, 0, false, 0
	st.progress, st.total = p.Progress, p.EvalsPerFace()
	labels := make([][]int, B)
	lrLen := 3 * e.o.LR * e.o.LR
	for b, f := range faces {
		if len(f.LR) != lrLen {
			return nil, fmt.Errorf("srdg: face %d: LR has %d values, want 3x%dx%d = %d", b, len(f.LR), e.o.LR, e.o.LR, lrLen)
		}
		if err := e.up.Resize(st.y[b*D:(b+1)*D], f.LR); err != nil {
			return nil, err
		}
		labels[b] = make([]int, A)
		active, complete := false, true
		for a := 0; a < A; a++ {
			l := -1
			if a < len(f.Labels) {
				l = f.Labels[a]
			}
			if l != 0 && l != 1 {
				l = -1
			}
			labels[b][a] = l
			st.labels[b*A+a] = float32(l)
			active = active || l >= 0
			complete = complete && l >= 0
		}
		st.gw[b] = 0
		if active && (complete || e.o.AbstainLabel) && e.o.Guidance != nil && p.W > 0 {
			st.gw[b] = p.W
			st.anyGuid = true
		}
	}
	if err := info.run(ctx, st, p); err != nil {
		return nil, err
	}
	el := time.Since(t0)
	res := make([]Result, B)
	for b := range res {
		sr := make([]float32, D)
		for i, v := range st.xmean[b*D : (b+1)*D] {
			sr[i] = clip01(v)
		}
		res[b] = Result{
			SR: sr, Labels: labels[b], Guided: st.gw[b] > 0, Weight: st.gw[b],
			Sampler: p.Sampler, Steps: p.Steps, ScoreEvals: st.nScore, Elapsed: el, NetTime: st.netTime,
		}
		if res[b].Guided {
			res[b].GuidanceEvals = st.nGuide
		}
	}
	return res, nil
}

func clip01(v float32) float32 {
	if v != v { // NaN
		return 0
	}
	return float32(math.Min(1, math.Max(0, float64(v))))
}
