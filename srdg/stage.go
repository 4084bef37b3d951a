package srdg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"

	"github.com/srdgd/srdgd/detect"
	"github.com/srdgd/srdgd/internal/queue"
)

// Label sources reported with every SR face.
const (
	LabelsOperator  = "operator"  // forced by the installer/operator for the camera
	LabelsPredicted = "predicted" // from the LR attribute predictor, above the abstain threshold
	LabelsNone      = "none"      // guidance off (policy off, or nothing confident)
)

// SRFace is one probe after super-resolution.
type SRFace struct {
	Probe  *detect.Probe
	Result Result
	// AttrProbs are the predictor's probabilities (nil when not run), in
	// Engine.Attributes order; LabelSource says where Result.Labels came from.
	AttrProbs   []float64
	LabelSource string
	Seed        uint64
}

// StageOptions configure the SR stage of the daemon.
type StageOptions struct {
	In     *queue.Queue[*detect.Probe]
	Out    *queue.Queue[*SRFace]
	Engine *Engine
	// Attr predicts labels for policy "predict"; nil disables prediction.
	Attr *detect.AttrPredictor
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
	// Seed: 0 draws a random seed per batch (reported with each face).
	Seed   uint64
	Logger *slog.Logger
}

// Stage super-resolves probes as they arrive, batching the ones waiting.
type Stage struct {
	o StageOptions
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
	if o.MaxBatch <= 0 {
		o.MaxBatch = 4
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if _, _, err := o.Params.Resolve(); err != nil {
		return nil, err
	}
	return &Stage{o: o}, nil
}

// labelsFor picks a face's guidance labels and their source.
func (s *Stage) labelsFor(p *detect.Probe, probs []float64) ([]int, string) {
	attrs := s.o.Engine.Attributes()
	labels := make([]int, len(attrs))
	for i := range labels {
		labels[i] = -1
	}
	if s.o.Policy == "off" || len(attrs) == 0 {
		return labels, LabelsNone
	}
	if forced := s.o.Forced[p.Camera]; len(forced) > 0 {
		for i, a := range attrs {
			if l, ok := forced[a]; ok {
				labels[i] = l
			}
		}
		return labels, LabelsOperator
	}
	if s.o.Policy != "predict" || probs == nil {
		return labels, LabelsNone
	}
	chosen := detect.ChooseLabels(probs, s.o.AbstainThreshold)
	any := false
	for _, l := range chosen {
		any = any || l >= 0
	}
	if !any {
		return chosen, LabelsNone
	}
	return chosen, LabelsPredicted
}

// Run super-resolves until ctx ends.
func (s *Stage) Run(ctx context.Context) error {
	log := s.o.Logger.With("component", "srdg")
	batch := make([]*detect.Probe, 0, s.o.MaxBatch)
	for {
		p, err := s.o.In.Pop(ctx)
		if err != nil {
			return nil
		}
		batch = append(batch[:0], p)
		for len(batch) < s.o.MaxBatch {
			q, ok, _ := s.o.In.TryPop()
			if !ok {
				break
			}
			batch = append(batch, q)
		}
		if err := s.process(ctx, batch); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			log.Warn("super-resolution failed", "faces", len(batch), "err", err)
		}
	}
}

func (s *Stage) process(ctx context.Context, batch []*detect.Probe) error {
	lrs := make([][]float32, len(batch))
	for i, p := range batch {
		if p.LR == nil {
			return fmt.Errorf("camera %q track %d: probe without LR image", p.Camera, p.TrackID)
		}
		lrs[i] = p.LR.Pix
	}
	var probs [][]float64
	if s.o.Attr != nil && s.o.Policy == "predict" {
		var err error
		if probs, err = s.o.Attr.Predict(ctx, lrs); err != nil {
			return err
		}
	}
	faces := make([]Face, len(batch))
	sources := make([]string, len(batch))
	for i, p := range batch {
		var pr []float64
		if probs != nil {
			pr = probs[i]
		}
		faces[i] = Face{LR: lrs[i]}
		faces[i].Labels, sources[i] = s.labelsFor(p, pr)
	}
	seed := s.o.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	res, err := s.o.Engine.SuperResolve(ctx, faces, s.o.Params, NewSeededNoise(seed))
	if err != nil {
		return err
	}
	for i, p := range batch {
		out := &SRFace{Probe: p, Result: res[i], LabelSource: sources[i], Seed: seed}
		if probs != nil {
			out.AttrProbs = probs[i]
		}
		if !res[i].Guided {
			out.LabelSource = LabelsNone
		}
		s.o.Out.Push(out)
	}
	return nil
}
