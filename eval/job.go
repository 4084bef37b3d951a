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
	// SREmbedder is the embedder file (a name in Models or a path) that
	// reads restored faces, paired with face_embedder.onnx for the HR row
	// and the gallery as the daemon does (match.PairEmbedder); "": the one
	// embedder reads everything.
	SREmbedder string
	// Adapters adds <method>+adapter rows where a scale has an SR adapter
	// (not with SREmbedder).
	Adapters bool
	Scales   []int
	// Thresholds are the configured decision thresholds of a scale (0: the
	// photo thresholds, used for the HR row) for faces read by the model
	// reader; an error leaves the configured point out.
	Thresholds func(scale int, reader string) (match.Thresholds, error)
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
	var reader match.FaceEmbedder = emb
	if j.SREmbedder != "" {
		sr, err := ms.OpenEmbedderFile(j.SREmbedder)
		if err != nil {
			return nil, err
		}
		defer sr.Close()
		pair, err := match.NewPairEmbedder(emb, sr)
		if err != nil {
			return nil, err
		}
		reader = pair
		if j.Adapters {
			fmt.Fprintln(j.Progress, "srdgd eval: SR adapters are not applied with a second embedder for SR faces")
		}
	} else if j.Adapters && len(j.Samplers) > 0 {
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
	rep, err := Evaluate(ctx, Options{Set: j.Set, Scales: j.Scales, Methods: ms.Methods, Embedder: reader,
		Cache: filepath.Join(j.Out, "cache.jsonl"), SRCache: srCache, Progress: j.Progress,
		Thresholds: j.thresholds(reader), Calibration: shippedCalibration(reader), Shots: j.Shots, ShotsOnly: j.ShotsOnly})
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
// restored probe with the thresholds of its scale, as the daemon does, each
// for the model of e that reads it. A scale without a setting has no
// configured point (said once on Progress).
func (j Job) thresholds(e match.FaceEmbedder) func(int, string) (match.Thresholds, bool) {
	if j.Thresholds == nil {
		return nil
	}
	said := map[int]bool{}
	return func(scale int, method string) (match.Thresholds, bool) {
		if method == HRMethod {
			scale = 0
		}
		th, err := j.Thresholds(scale, match.ReaderModel(e, scale))
		if err != nil {
			if !said[scale] && j.Progress != nil {
				fmt.Fprintf(j.Progress, "srdgd eval: no configured operating point at x%d: %v\n", scale, err)
			}
			said[scale] = true
			return th, false
		}
		return th, true
	}
}

// shippedCalibration is the visit calibration the daemon would use for the
// faces e reads at a scale (match.DefaultCalibrationFor its reader model),
// for the multi-shot rows' rates by gallery size.
func shippedCalibration(e match.FaceEmbedder) func(scale, shots int) (match.CalibrationEntry, bool) {
	return func(scale, shots int) (match.CalibrationEntry, bool) {
		c, ok, err := match.DefaultCalibrationFor(match.ReaderModel(e, scale))
		if err != nil || !ok {
			return match.CalibrationEntry{}, false
		}
		en, err := c.Entry(scale, shots)
		return en, err == nil && en.Shots == shots
	}
}
