package eval

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/srdgd/srdgd/internal/ort"
	"github.com/srdgd/srdgd/match"
)

// Job is one `srdgd eval` run end to end: the set, the SR methods and the
// embedder it opens, Evaluate, and the outputs WriteAll writes.
type Job struct {
	// MethodSet holds the set, the session options, the model search and
	// the method settings; Run opens its Runtime.
	MethodSet
	// ORTLibrary is the libonnxruntime path ("": search).
	ORTLibrary string
	// Adapters adds <method>+adapter rows where a scale has an SR adapter.
	Adapters bool
	Scales   []int
	// Thresholds are the configured decision thresholds of a scale (0: the
	// photo thresholds, used for the HR row).
	Thresholds func(scale int) match.Thresholds
	Shots      Shots
	ShotsOnly  bool
	// Out is the results folder (cache.jsonl lives there); SRCache keeps
	// the SR outputs (default Out/sr).
	Out, SRCache string
	Grid         int
	// Calibrate and CalibrationSource: Outputs.
	Calibrate, CalibrationSource string
	// Progress hears of each probe and file.
	Progress io.Writer
}

// Run opens what the job needs, evaluates and writes the outputs.
func (j Job) Run(ctx context.Context) (*Report, error) {
	rt, err := ort.Open(j.ORTLibrary, nil)
	if err != nil {
		return nil, err
	}
	defer rt.Close()
	ms := &j.MethodSet
	ms.Runtime = rt
	defer ms.Close()
	emb, err := ms.OpenEmbedder()
	if err != nil {
		return nil, err
	}
	defer emb.Close()
	if j.Adapters && len(j.Samplers) > 0 {
		if err := ms.OpenAdapters(emb, j.Scales); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(j.Out, 0o755); err != nil {
		return nil, err
	}
	srCache := j.SRCache
	if srCache == "" {
		srCache = filepath.Join(j.Out, "sr")
	}
	rep, err := Evaluate(ctx, Options{Set: j.Set, Scales: j.Scales, Methods: ms.Methods, Embedder: emb,
		Cache: filepath.Join(j.Out, "cache.jsonl"), SRCache: srCache, Progress: j.Progress,
		Thresholds: j.thresholds(), Shots: j.Shots, ShotsOnly: j.ShotsOnly})
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (interrupted: rerun the same command to resume from %s)", err, filepath.Join(j.Out, "cache.jsonl"))
		}
		return nil, err
	}
	return rep, ms.WriteAll(ctx, rep, Outputs{Dir: j.Out, Scales: j.Scales, Grid: j.Grid,
		Calibrate: j.Calibrate, CalibrationSource: j.CalibrationSource, Log: j.Progress})
}

// thresholds judges photos (the HR row) with the photo thresholds and every
// restored probe with the thresholds of its scale, as the daemon does.
func (j Job) thresholds() func(int, string) (match.Thresholds, bool) {
	if j.Thresholds == nil {
		return nil
	}
	return func(scale int, method string) (match.Thresholds, bool) {
		if method == HRMethod {
			return j.Thresholds(0), true
		}
		return j.Thresholds(scale), true
	}
}
