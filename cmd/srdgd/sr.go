package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/srdgd/srdgd/internal/app"
	"github.com/srdgd/srdgd/internal/cliflag"
	"github.com/srdgd/srdgd/internal/faceimg"
	"github.com/srdgd/srdgd/internal/locate"
	"github.com/srdgd/srdgd/srdg"
)

// flagModels is the model search of a command's --models flag (internal/locate:
// the folder given, else beside the binary, the install prefix, the source tree).
func flagModels(dir string) locate.Models { return locate.Models{Dir: dir, DirKey: "--models"} }

// modelsHelp is the help text of every --models flag.
const modelsHelp = "models folder (default: search beside the binary, /usr/share/srdgd/models, models/dist of the source tree; README \"Where srdgd finds its files\")"

func cmdSR(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cliflag.NewFlagSet("sr", stderr)
	in := fs.String("in", "", "LR face image (PNG/JPEG), a square crop: the model's LR size (16x16 at --scale 8, 8x8 at 16) or larger, then downscaled to it; required")
	out := fs.String("out", "sr.png", "output image (PNG/JPEG)")
	attrs := fs.String("attrs", "", "guidance labels, e.g. male=1,glasses=0,nobeard=1 (names: male, glasses, nobeard; values 0, 1 or ?; empty: unguided)")
	sampler := cliflag.NewEnum(fs, "sampler", "fast", "sampler", srdg.SamplerNames()...)
	steps := fs.Int("steps", 0, "predictor steps (0 = sampler default)")
	weight := fs.Float64("weight", 0, "guidance weight, >= 0 (0 = sampler default)")
	seed := fs.Uint64("seed", 1, "noise seed")
	scale := &cliflag.Scale{V: 8, Allowed: scales}
	fs.Var(scale, "scale", "upscaling factor: 8 (16x16 input) or 16 (8x8 input) (default 8)")
	dir := fs.String("models", "", modelsHelp)
	score := fs.String("score", "", "score model (default: score_x<scale>.onnx in --models)")
	guidance := fs.String("guidance", "", "guidance model (default: guidance.onnx in --models; 'none' = off)")
	lib := fs.String("ort-library", "", "libonnxruntime path (default: search, README \"Where srdgd finds its files\")")
	threads := fs.Int("threads", 0, "ORT intra-op threads (0 = default)")
	pos, err := cliflag.Parse(fs, args)
	if err != nil {
		return exitUsage
	}
	if !cliflag.NoArgs(stderr, "srdgd sr", pos) {
		return exitUsage
	}
	if *in == "" {
		fmt.Fprintln(stderr, "srdgd sr: --in is required")
		return exitUsage
	}
	if *steps < 0 || *weight < 0 {
		fmt.Fprintf(stderr, "srdgd sr: --steps %d --weight %g: want values >= 0 (0 = the sampler's default)\n", *steps, *weight)
		return exitUsage
	}
	eng, err := app.OpenSRTool(app.SRToolOptions{Models: flagModels(*dir), Score: *score, Guidance: *guidance,
		ORTLibrary: *lib, Scale: scale.V, Threads: *threads})
	if err != nil {
		fmt.Fprintln(stderr, "srdgd sr:", err)
		return exitFailure
	}
	defer eng.Close()
	labels, err := srdg.ParseLabels(*attrs, eng.Attributes())
	if err != nil {
		fmt.Fprintln(stderr, "srdgd sr:", err)
		return exitUsage
	}
	img, err := faceimg.Load(*in)
	if err != nil {
		fmt.Fprintln(stderr, "srdgd sr:", err)
		return exitFailure
	}
	hr, lr := eng.Sizes()
	p, note, err := app.SRInput(img, lr)
	if err != nil {
		fmt.Fprintf(stderr, "srdgd sr: %s: %v\n", *in, err)
		return exitFailure
	}
	if note != "" {
		fmt.Fprintln(stdout, note)
	}
	t0 := time.Now()
	// a progress line every 5 s: the reference sampler takes minutes on a CPU
	prog := cliflag.NewProgress(stderr, "srdgd sr", 5*time.Second)
	res, err := eng.SuperResolve(ctx, []srdg.Input{{LR: p.Pix, Labels: labels}},
		srdg.Params{Sampler: sampler.V, Steps: *steps, W: *weight, Progress: prog.Update}, srdg.NewSeededNoise(*seed))
	if err != nil {
		fmt.Fprintln(stderr, "srdgd sr:", err)
		return exitFailure
	}
	r := res[0]
	if err := faceimg.Save(*out, (&faceimg.Planar{W: hr, H: hr, Pix: r.SR}).Image()); err != nil {
		fmt.Fprintln(stderr, "srdgd sr:", err)
		return exitFailure
	}
	var used []string
	for i, n := range eng.Attributes() {
		used = append(used, n+"="+srdg.LabelString(r.Labels[i]))
	}
	fmt.Fprintf(stdout, "wrote %s (%dx%d) in %s: sampler %s, %d steps, %d score + %d guidance evaluations, guided=%v [%s], seed %d\n",
		*out, hr, hr, time.Since(t0).Round(time.Millisecond), r.Sampler, r.Steps, r.ScoreEvals, r.GuidanceEvals, r.Guided, strings.Join(used, ","), *seed)
	return exitOK
}
