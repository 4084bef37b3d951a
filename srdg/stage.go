package srdg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/internal/faceimg"
	"github.com/srdgd/srdgd/internal/queue"
)

// StageOptions configure the SR stage of the daemon.
type StageOptions struct {
	// In delivers probes; Out gets the shots of each SR batch together, so
	// that the match stage embeds them in one batch too. When Out is full
	// its oldest batch is dropped and its shots counted.
	In     *queue.Queue[*face.Probe]
	Out    *queue.Queue[[]*face.Shot]
	Engine *Engine
	// Attr predicts labels for policy "predict"; nil disables prediction.
	// Its attributes must be the guidance model's, in the same order (the
	// predictor's probabilities are matched to the guidance labels by
	// position).
	Attr *AttrPredictor
	// Policy: "predict" (operator labels when the camera has them, else the
	// predictor's confident labels), "operator" (only operator labels) or
	// "off" (never guide).
	Policy           string
	AbstainThreshold float64
	// Forced maps camera name -> attribute name -> label (0/1).
	Forced map[string]map[string]int
	Params Params
	// MaxBatch is how many waiting probes are super-resolved together.
	MaxBatch int
	// Samples, in [1, MaxSamples], is how many posterior SR samples each
	// probe gets (in the same batch, other noise): the first is the shot's
	// SR, the rest its Samples. 0 means 1.
	Samples int
	// DirectSide, when > 0, is the framing square side (frame pixels, at
	// least 128/(face.MaxDirectScale+1)) from which a probe is not
	// super-resolved: its shot's face is the probe's Preview (the square
	// bicubic-upscaled from the frame's own pixels), Run.Sampler
	// face.DirectSampler and Run.Scale face.DirectScale(side). Shrinking
	// such a square to the score model's LR size throws away what SR
	// cannot give back (config srdg.direct_side; bench/RESULTS.md "Direct
	// path"). 0: every probe is super-resolved.
	DirectSide float64
	// Seed: 0 draws a random seed per batch (reported with each face).
	Seed   uint64
	Logger *slog.Logger
}

// MaxSamples bounds StageOptions.Samples (config match.visit.samples).
const MaxSamples = 8

// StageStats are the stage's counters since it started.
type StageStats struct {
	// Batches and Faces super-resolved; Failed faces whose batch failed;
	// Direct faces passed on without SR (StageOptions.DirectSide).
	Batches, Faces, Failed, Direct uint64
	// ShotsDropped counts shots the full output queue dropped; TrackEnds
	// the track-end notices passed on.
	ShotsDropped, TrackEnds uint64
}

// Stage super-resolves probes as they arrive, batching the ones waiting.
// Track-end notices (face.Probe.Ended) pass through in order, as Shots
// without SR.
type Stage struct {
	o                      StageOptions
	batches, faces, failed atomic.Uint64
	direct                 atomic.Uint64
	dropped, notices       atomic.Uint64
}

// NewStage validates the options.
func NewStage(o StageOptions) (*Stage, error) {
	if o.In == nil || o.Out == nil || o.Engine == nil {
		return nil, errors.New("srdg stage: In, Out and Engine are required")
	}
	switch o.Policy {
	case "predict", "operator", "off":
	default:
		return nil, fmt.Errorf("srdg stage: attributes policy %q (want predict, operator or off)", o.Policy)
	}
	if o.Attr != nil {
		if g := o.Engine.Attributes(); len(g) > 0 && !slices.Equal(o.Attr.Attributes, g) {
			return nil, fmt.Errorf("srdg stage: the LR attribute model predicts [%s] but the guidance model takes [%s]: the attributes must be the same, in the same order",
				strings.Join(o.Attr.Attributes, ", "), strings.Join(g, ", "))
		}
		if _, lr := o.Engine.Sizes(); o.Attr.LR != lr {
			return nil, fmt.Errorf("srdg stage: the LR attribute model takes %dx%d probes but the score model %dx%d", o.Attr.LR, o.Attr.LR, lr, lr)
		}
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 4
	}
	if o.Samples == 0 {
		o.Samples = 1
	}
	if o.Samples < 1 || o.Samples > MaxSamples {
		return nil, fmt.Errorf("srdg stage: %d samples per probe (want 1 to %d)", o.Samples, MaxSamples)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if _, _, err := o.Params.Resolve(); err != nil {
		return nil, err
	}
	if min := MinDirectSide(); o.DirectSide != 0 && (math.IsNaN(o.DirectSide) || o.DirectSide < min) {
		return nil, fmt.Errorf("srdg stage: direct side %v px: want 0 (off) or at least %v (a smaller square has no direct calibration)", o.DirectSide, min)
	}
	return &Stage{o: o}, nil
}

// MinDirectSide is the smallest StageOptions.DirectSide: the smallest
// square face.DirectScale gives a scale (19 px).
func MinDirectSide() float64 { return math.Ceil(128 / float64(face.MaxDirectScale+1)) }

// Stats returns the counters; safe to call while Run runs.
func (s *Stage) Stats() StageStats {
	return StageStats{Batches: s.batches.Load(), Faces: s.faces.Load(), Failed: s.failed.Load(), Direct: s.direct.Load(),
		ShotsDropped: s.dropped.Load(), TrackEnds: s.notices.Load()}
}

// isDirect is true for a probe the direct path takes (its preview must
// have the SR output's size: detect.Options.PreviewSize 128).
func (s *Stage) isDirect(p *face.Probe) bool {
	if s.o.DirectSide <= 0 || p.Preview == nil || p.Framing.Side < s.o.DirectSide || face.DirectScale(p.Framing.Side) == 0 {
		return false
	}
	hr, _ := s.o.Engine.Sizes()
	return p.Preview.W == hr && p.Preview.H == hr && len(p.Preview.Pix) == 3*hr*hr
}

// labelsFor picks a face's guidance labels and their source.
func (s *Stage) labelsFor(p *face.Probe, probs []float64) ([]int, string) {
	attrs := s.o.Engine.Attributes()
	labels := make([]int, len(attrs))
	for i := range labels {
		labels[i] = -1
	}
	if s.o.Policy == "off" || len(attrs) == 0 {
		return labels, face.LabelsNone
	}
	if forced := s.o.Forced[p.Camera]; len(forced) > 0 {
		for i, a := range attrs {
			if l, ok := forced[a]; ok {
				labels[i] = l
			}
		}
		return labels, face.LabelsOperator
	}
	if s.o.Policy != "predict" || probs == nil {
		return labels, face.LabelsNone
	}
	chosen := ChooseLabels(probs, s.o.AbstainThreshold)
	any := false
	for _, l := range chosen {
		any = any || l >= 0
	}
	if !any {
		return chosen, face.LabelsNone
	}
	return chosen, face.LabelsPredicted
}

// Run super-resolves until ctx ends.
func (s *Stage) Run(ctx context.Context) error {
	log := s.o.Logger.With("component", "srdg")
	batch := make([]*face.Probe, 0, s.o.MaxBatch)
	for {
		p, err := s.o.In.Pop(ctx)
		if err != nil {
			return nil
		}
		if p.Ended {
			s.passOn(p)
			continue
		}
		// a track-end notice stops the batch: it goes out behind the
		// batch's shots, so that it follows its track's last shot
		var notice *face.Probe
		batch = append(batch[:0], p)
		for len(batch) < s.o.MaxBatch {
			q, ok, _ := s.o.In.TryPop()
			if !ok {
				break
			}
			if q.Ended {
				notice = q
				break
			}
			batch = append(batch, q)
		}
		if failed, err := s.process(ctx, batch); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.failed.Add(uint64(failed))
			log.Warn("super-resolution failed", "faces", failed, "err", err)
		}
		if notice != nil {
			s.passOn(notice)
		}
	}
}

// passOn forwards a track-end notice (face.Probe.Ended) as a Shot without
// SR.
func (s *Stage) passOn(p *face.Probe) {
	if old, dropped := s.o.Out.PushEvict([]*face.Shot{{Probe: p}}); dropped {
		s.dropped.Add(uint64(len(old)))
	}
	s.notices.Add(1)
}

// process makes the shots of a batch and pushes them; on an error it
// returns how many faces got no shot (a failed SR run costs its faces, not
// the direct ones beside them).
func (s *Stage) process(ctx context.Context, batch []*face.Probe) (failed int, err error) {
	lrs := make([][]float32, len(batch))
	for i, p := range batch {
		if p.LR == nil {
			return len(batch), fmt.Errorf("camera %q track %d: probe without LR image", p.Camera, p.TrackID)
		}
		lrs[i] = p.LR.Pix
	}
	// the attributes are predicted from every LR probe, direct or not
	var probs [][]float64
	if s.o.Attr != nil && s.o.Policy == "predict" {
		if probs, err = s.o.Attr.Predict(ctx, lrs); err != nil {
			return len(batch), err
		}
	}
	probsOf := func(i int) []float64 {
		if probs == nil {
			return nil
		}
		return probs[i]
	}
	shots := make([]*face.Shot, len(batch))
	var sr []int // the probes to super-resolve, by index in batch
	for i, p := range batch {
		if s.isDirect(p) {
			shots[i] = s.directShot(p, probsOf(i))
		} else {
			sr = append(sr, i)
		}
	}
	if len(sr) > 0 {
		if err = s.superResolve(ctx, batch, sr, lrs, probsOf, shots); err != nil {
			failed = len(sr)
			shots = slices.DeleteFunc(shots, func(sh *face.Shot) bool { return sh == nil })
		}
	}
	if n := len(batch) - len(sr); n > 0 {
		s.direct.Add(uint64(n))
	}
	if len(shots) > 0 {
		if old, dropped := s.o.Out.PushEvict(shots); dropped {
			s.dropped.Add(uint64(len(old)))
		}
	}
	return failed, err
}

// superResolve runs SR on the probes batch[i] for i in idx, M samples each,
// and sets shots[i].
func (s *Stage) superResolve(ctx context.Context, batch []*face.Probe, idx []int, lrs [][]float32, probsOf func(int) []float64, shots []*face.Shot) error {
	// each probe's M samples stand together in the batch: faces[j*M+k]
	m := s.o.Samples
	faces := make([]Input, 0, len(idx)*m)
	sources := make([]string, len(idx))
	for j, i := range idx {
		in := Input{LR: lrs[i]}
		in.Labels, sources[j] = s.labelsFor(batch[i], probsOf(i))
		for range m {
			faces = append(faces, in)
		}
	}
	seed := s.o.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	res, err := s.o.Engine.SuperResolve(ctx, faces, s.o.Params, NewSeededNoise(seed))
	if err != nil {
		return err
	}
	s.batches.Add(1)
	for j, i := range idx {
		sh := s.shot(batch[i], res[j*m], probsOf(i), sources[j], seed)
		for _, r := range res[j*m+1 : (j+1)*m] {
			sh.Samples = append(sh.Samples, &faceimg.Planar{W: sh.SR.W, H: sh.SR.H, Pix: r.SR})
		}
		shots[i] = sh
	}
	s.faces.Add(uint64(len(idx)))
	return nil
}

// directShot is the shot of a probe the direct path takes: its preview as
// the face, no SR run, no guidance.
func (s *Stage) directShot(p *face.Probe, probs []float64) *face.Shot {
	sh := &face.Shot{Probe: p, SR: p.Preview, LabelSource: face.LabelsNone,
		Run: face.SR{Sampler: face.DirectSampler, Scale: face.DirectScale(p.Framing.Side), LRSize: p.LRSize, Upscale: p.Upscaled}}
	sh.Attributes = s.attributes(nil, false, "", probs)
	return sh
}

// shot describes one super-resolved probe as the match stage and the hit
// see it.
func (s *Stage) shot(p *face.Probe, r Result, probs []float64, source string, seed uint64) *face.Shot {
	hr, lr := s.o.Engine.Sizes()
	if !r.Guided {
		source = face.LabelsNone
	}
	sh := &face.Shot{Probe: p, SR: &faceimg.Planar{W: hr, H: hr, Pix: r.SR}, Labels: r.Labels, LabelSource: source, Elapsed: r.Elapsed,
		Run: face.SR{Sampler: r.Sampler, Steps: r.Steps, Evals: r.ScoreEvals + r.GuidanceEvals, Scale: hr / lr, LRSize: p.LRSize,
			Seed: seed, Millis: float64(r.Elapsed.Microseconds()) / 1000, Guided: r.Guided, Weight: r.Weight, Upscale: p.Upscaled}}
	sh.Attributes = s.attributes(r.Labels, r.Guided, source, probs)
	return sh
}

// attributes are a shot's attributes: the label where it guided SR, the
// predictor's probability where it ran.
func (s *Stage) attributes(labels []int, guided bool, source string, probs []float64) []face.Attribute {
	var out []face.Attribute
	for i, name := range s.o.Engine.Attributes() {
		a := face.Attribute{Name: name, Source: face.LabelsNone}
		if i < len(labels) && labels[i] >= 0 && guided {
			l := labels[i]
			a.Label = &l
			a.Source = source
		}
		if i < len(probs) {
			pr := probs[i]
			a.Probability = &pr
		}
		out = append(out, a)
	}
	return out
}
