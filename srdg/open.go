package srdg

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/srdgd/srdgd/internal/ort"
)

// ModelOptions say where the ONNX models are and how to run them.
type ModelOptions struct {
	Runtime      *ort.Runtime
	ScorePath    string
	GuidancePath string // "" = no guidance
	Session      ort.SessionOptions
	// WantScale, when non-zero, must equal the score model's srdgd.scale.
	WantScale int
	MaxBatch  int
	Logger    *slog.Logger
}

// Open loads the score (and guidance) model into ORT sessions and returns an
// engine over them; Close releases the sessions.
func Open(o ModelOptions) (*Engine, error) {
	if o.Runtime == nil {
		return nil, errors.New("srdg: no onnxruntime")
	}
	sc, err := OpenScore(o.Runtime, o.ScorePath, o.Session)
	if err != nil {
		return nil, err
	}
	var probs []string
	if o.WantScale != 0 && sc.Info.Scale != o.WantScale {
		probs = append(probs, fmt.Sprintf("score model %s is for %dx, the config asks for %dx (srdg.scale)", o.ScorePath, sc.Info.Scale, o.WantScale))
	}
	if sc.Info.LR*sc.Info.Scale != sc.Info.HR {
		probs = append(probs, fmt.Sprintf("score model %s: lr_size %d x scale %d != hr_size %d", o.ScorePath, sc.Info.LR, sc.Info.Scale, sc.Info.HR))
	}
	var g *ORTGuidance
	if o.GuidancePath != "" && len(probs) == 0 {
		g, err = OpenGuidance(o.Runtime, o.GuidancePath, o.Session)
		if err != nil {
			sc.Close()
			return nil, err
		}
		if g.Info.HR != sc.Info.HR {
			probs = append(probs, fmt.Sprintf("guidance model %s works at %d px, the score model at %d px", o.GuidancePath, g.Info.HR, sc.Info.HR))
		}
		if g.Info.SigmaMin != sc.Info.SigmaMin || g.Info.SigmaMax != sc.Info.SigmaMax {
			probs = append(probs, fmt.Sprintf("guidance model sigma range [%g, %g] differs from the score model's [%g, %g]",
				g.Info.SigmaMin, g.Info.SigmaMax, sc.Info.SigmaMin, sc.Info.SigmaMax))
		}
	}
	if len(probs) > 0 {
		sc.Close()
		if g != nil {
			g.Close()
		}
		return nil, fmt.Errorf("srdg: %s", joinProblems(probs))
	}
	eo := Options{
		Score: sc, HR: sc.Info.HR, LR: sc.Info.LR, MaxBatch: o.MaxBatch, Logger: o.Logger,
		Schedule: Schedule{SigmaMin: sc.Info.SigmaMin, SigmaMax: sc.Info.SigmaMax, Eps: DefaultSchedule.Eps},
	}
	if g != nil {
		eo.Guidance, eo.Attributes, eo.AbstainLabel = g, g.Info.Attributes, g.Info.AbstainLabel
	}
	e, err := NewEngine(eo)
	if err != nil {
		sc.Close()
		if g != nil {
			g.Close()
		}
		return nil, err
	}
	e.ScoreInfo = sc.Info
	e.closers = append(e.closers, sc.Close)
	if g != nil {
		e.GuidanceInfo = &g.Info
		e.closers = append(e.closers, g.Close)
	}
	return e, nil
}

func joinProblems(p []string) string {
	s := ""
	for i, v := range p {
		if i > 0 {
			s += "; "
		}
		s += v
	}
	return s
}
