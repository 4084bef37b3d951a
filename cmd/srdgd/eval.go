package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/srdgd/srdgd/config"
	"github.com/srdgd/srdgd/eval"
	"github.com/srdgd/srdgd/internal/app"
	"github.com/srdgd/srdgd/internal/cliflag"
	"github.com/srdgd/srdgd/internal/ort"
	"github.com/srdgd/srdgd/match"
	"github.com/srdgd/srdgd/srdg"
)

// evalFlags are the command line of `srdgd eval`.
type evalFlags struct {
	setPath, celeba, split, cfgPath, out, dir, lib, calibrate, srCache, srEmbedder string
	limit, steps, threads, grid                                                    int
	seed                                                                           uint64
	guided, unguided, hrRef, limitSet, single, adapters                            bool
	shots                                                                          eval.Shots

	scaleList    []int
	samplerNames []string
}

func parseEvalFlags(args []string, stderr io.Writer) (*evalFlags, bool) {
	f := &evalFlags{}
	fs := cliflag.NewFlagSet("eval", stderr)
	fs.StringVar(&f.setPath, "set", "", "dataset description (JSON: gallery and probes, see README \"Evaluation\")")
	fs.StringVar(&f.celeba, "celeba", "", "CelebA aligned folder (labels.csv): gallery = one train image per identity, probes = test images")
	fs.IntVar(&f.limit, "limit", 0, "at most this many probes (0 = all; with --celeba the default is 20)")
	split := cliflag.NewEnum(fs, "split", "test", "with --celeba: the probes' split (val: choose thresholds without the test images)", "test", "val")
	defer func() { f.split = split.V }()
	fs.StringVar(&f.cfgPath, "config", "", "config file whose match thresholds are reported as the \"configured\" operating point (default: $SRDGD_CONFIG, /etc/srdgd/srdgd.yaml, else the defaults)")
	sc := &cliflag.Scales{V: []int{8}, Allowed: evalScales}
	fs.Var(sc, "scale", "scales, comma-separated: 8 (16x16 probes), 16 (8x8) (default 8); 2 to 6 (64 to 21 px) for the direct path's LR rows (srdg.direct_side)")
	samplers := cliflag.NewEnumList(fs, "sampler", []string{"fast"}, "SR samplers, empty: LR only", srdg.SamplerNames()...)
	fs.IntVar(&f.steps, "steps", 0, "predictor steps (0 = sampler default)")
	fs.Uint64Var(&f.seed, "seed", 1, "noise seed (each probe's noise is derived from it and the probe's path)")
	fs.BoolVar(&f.guided, "guided", true, "also run guided SR with the probe's attributes as labels (slow)")
	fs.BoolVar(&f.unguided, "unguided", true, "run unguided SR")
	fs.BoolVar(&f.adapters, "sr-adapters", true, "with an SR adapter sr_adapter_x<scale>.onnx in --models (train-sr-adapter), add <method>+adapter rows: the same SR outputs, descriptors mapped by it")
	fs.BoolVar(&f.hrRef, "hr", true, "add the HR face itself as a reference row (the recognition upper bound)")
	fs.StringVar(&f.out, "out", "eval-results", "results folder (results.json, results.md, roc.png, cmc.png, cache.jsonl, sr/)")
	fs.StringVar(&f.dir, "models", "", modelsHelp)
	fs.StringVar(&f.srEmbedder, "sr-embedder", "face_embedder_faceres.onnx", "embedder file (in --models, or a path) that reads the restored faces, paired with face_embedder.onnx for photos as the daemon's match.sr_embedder_model; \"same\": face_embedder.onnx reads them too")
	fs.StringVar(&f.lib, "ort-library", "", "libonnxruntime path (default: search)")
	fs.IntVar(&f.threads, "threads", 0, "ORT intra-op threads (0 = default)")
	fs.IntVar(&f.grid, "grid", 0, "also write grid_x<scale>.png: the first N probes, one row each: LR | every method | HR")
	fs.IntVar(&f.shots.K, "shots", 1, "LR observations per probe as a walking person gives them (sub-pixel shifts, scale, sensor noise); > 1 adds fused rows (<method>-shotsK)")
	fs.IntVar(&f.shots.Samples, "samples", 1, "posterior SR samples per shot (different noise seeds); > 1 adds <method>-...-samplesM rows")
	fs.Float64Var(&f.shots.Shift, "shot-shift", 0.5, "largest shift of a shot along each axis, LR pixels")
	fs.Float64Var(&f.shots.Zoom, "shot-zoom", 0.04, "largest relative change of scale of a shot")
	fs.Float64Var(&f.shots.Noise, "shot-noise", 0.01, "sensor noise of a shot, standard deviation in [0, 1] units")
	fs.IntVar(&f.shots.CRF, "shot-h264-crf", 0, "> 0: each probe's shots go through libx264 at this CRF and our decoder (0: no H.264)")
	fs.BoolVar(&f.single, "single", true, "with --shots: also the rows of each method on the probe itself (false: only the shot rows; <method>-shots1 is then the single-shot figure)")
	fs.StringVar(&f.srCache, "sr-cache", "", "folder keeping the SR outputs, so a new embedder or fusion rule does not rerun SR (default: <out>/sr)")
	fs.StringVar(&f.calibrate, "calibrate", "", "write the decision calibration of the SR shot rows (threshold and margin at FPIR 1 %, similarity -> probability of genuine) into this JSON file, replacing its entries of the same scale and shots (use --split val)")
	pos, err := cliflag.Parse(fs, args)
	if err != nil || !cliflag.NoArgs(stderr, "srdgd eval", pos) {
		return nil, false
	}
	fs.Visit(func(fl *flag.Flag) { f.limitSet = f.limitSet || fl.Name == "limit" })
	if f.celeba != "" && !f.limitSet {
		f.limit = 20
	}
	if (f.setPath == "") == (f.celeba == "") {
		fmt.Fprintln(stderr, "srdgd eval: exactly one of --set FILE and --celeba DIR is required")
		return nil, false
	}
	f.scaleList, f.samplerNames = sc.V, samplers.V
	return f, f.check(stderr)
}

// check validates the shot settings.
func (f *evalFlags) check(stderr io.Writer) bool {
	f.shots.Seed = f.seed
	if f.shots.K < 1 || f.shots.Samples < 1 {
		fmt.Fprintf(stderr, "srdgd eval: --shots %d --samples %d: want 1 or more of each\n", f.shots.K, f.shots.Samples)
		return false
	}
	if err := f.shots.WithDefaults().Check(); err != nil {
		fmt.Fprintf(stderr, "srdgd eval: %v\n", err)
		return false
	}
	return true
}

// cmdEval is the evaluation harness: LR probes made from HR faces at 8x or
// 16x (SRDG.md section 2), restored by bicubic upsampling and by SRDG
// (unguided and guided, per sampler), scored for image quality against the
// HR face and for recognition against a gallery; with --shots, also on K
// observations of each probe, fused (eval.Job).
func cmdEval(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, ok := parseEvalFlags(args, stderr)
	if !ok {
		return exitUsage
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "srdgd eval:", err)
		return exitFailure
	}
	set, err := eval.LoadSetFrom(f.setPath, f.celeba, f.split, f.limit)
	if err != nil {
		return fail(err)
	}
	cfg, err := config.LoadOrDefault(f.cfgPath)
	if err != nil {
		return fail(err)
	}
	if f.calibrate != "" && f.celeba != "" && f.split != "val" {
		fmt.Fprintln(stderr, "srdgd eval: warning: calibrating on the", f.split, "split; choose thresholds on val and check them on test")
	}
	t0 := time.Now()
	rep, err := eval.Job{MethodSet: eval.MethodSet{Set: set, Models: flagModels(f.dir),
		Session:  ort.SessionOptions{Providers: []string{ort.TensorRT, ort.CUDA, ort.CPU}, IntraOpThreads: f.threads},
		Samplers: f.samplerNames, Unguided: f.unguided, Guided: f.guided, HR: f.hrRef, Steps: f.steps, Seed: f.seed},
		ORTLibrary: f.lib,
		Adapters:   f.adapters, Scales: f.scaleList, Shots: f.shots, ShotsOnly: !f.single,
		SREmbedder: f.pairWith(),
		Thresholds: func(scale int, reader string) (match.Thresholds, error) {
			return app.MatchThresholds(cfg, scale, reader)
		},
		Out: f.out, SRCache: f.srCache, Grid: f.grid, Progress: stderr,
		Calibrate: f.calibrate, CalibrationSource: f.calibrationSource(len(set.Probes), len(set.Gallery))}.Run(ctx)
	if err != nil {
		return fail(err)
	}
	fmt.Fprint(stdout, eval.Markdown(rep))
	fmt.Fprintf(stdout, "\n%d results computed, %d from the cache, in %s; wrote %s\n",
		rep.Computed, rep.Cached, time.Since(t0).Round(time.Second), f.out)
	return exitOK
}

// calibrationSource says where calibration entries of this run come from.
// pairWith is the SR embedder of the job ("" for --sr-embedder same).
func (f *evalFlags) pairWith() string {
	if f.srEmbedder == config.SameEmbedder {
		return ""
	}
	return f.srEmbedder
}

func (f *evalFlags) calibrationSource(probes, identities int) string {
	data := "set " + filepath.Base(f.setPath)
	if f.celeba != "" {
		data = "CelebA aligned " + f.split + " (shares identities with train)"
	}
	sampler := strings.Join(f.samplerNames, ",")
	if sampler == "" {
		sampler = "none (LR rows)"
	}
	return fmt.Sprintf("srdgd eval x%s: %s, %d probes, %d gallery identities, sampler %s, shots %d (%s), samples %d",
		(&cliflag.Scales{V: f.scaleList}).String(), data, probes, identities, sampler, f.shots.K, f.shots.WithDefaults().Tag(), f.shots.Samples)
}
