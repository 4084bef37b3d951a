package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/srdgd/srdgd/detect"
	"github.com/srdgd/srdgd/internal/app"
	"github.com/srdgd/srdgd/internal/cliflag"
	"github.com/srdgd/srdgd/internal/faceimg"
)

// detectArgs are the flags of `srdgd detect`.
type detectArgs struct {
	in, probes, det, model, models, lib, attrModel string
	asJSON                                         bool
	threads, lr                                    int
	abstain                                        float64
	search                                         detect.Search
}

func parseDetectArgs(args []string, stderr io.Writer) (*detectArgs, int) {
	fs := cliflag.NewFlagSet("detect", stderr)
	a := &detectArgs{}
	fs.StringVar(&a.in, "in", "", "image file (PNG, JPEG or GIF); required")
	fs.BoolVar(&a.asJSON, "json", false, "print one JSON document instead of text")
	fs.StringVar(&a.probes, "probes", "", "write each face's LR probe and 128x128 preview as PNG into this folder")
	det := cliflag.NewEnum(fs, "detector", "blazeface", "face detector", "blazeface", "haar")
	fs.StringVar(&a.model, "model", "", "BlazeFace ONNX file (default: blazeface.onnx in --models)")
	fs.StringVar(&a.models, "models", "", modelsHelp)
	fs.StringVar(&a.lib, "ort-library", "", "libonnxruntime path (default: search, README \"Where srdgd finds its files\")")
	cliflag.Deprecated(fs, stderr, "ort", "--ort-library", func(v string) error { a.lib = v; return nil })
	fs.IntVar(&a.threads, "threads", 0, "ONNX Runtime threads (0 = ORT default)")
	fs.Float64Var(&a.search.MinFacePx, "min-face", 0, "smallest face height to search for, px (default 12)")
	fs.Float64Var(&a.search.MaxFacePx, "max-face", 0, "largest face height, px (default 256)")
	fs.Float64Var(&a.search.MinScore, "min-score", 0, "minimum detector score (default 0.6)")
	scale := &cliflag.Scale{V: 8, Allowed: scales}
	fs.Var(scale, "scale", "the upscaling factor the probes are cut for: 8 (16x16 probes) or 16 (8x8) (default 8)")
	cliflag.Deprecated(fs, stderr, "lr", "--scale (--lr 16 is --scale 8, --lr 8 is --scale 16)", func(v string) error {
		switch strings.TrimSpace(v) {
		case "16":
			scale.V = 8
		case "8":
			scale.V = 16
		default:
			return fmt.Errorf("%q is not a probe size (allowed: 16 or 8)", v)
		}
		return nil
	})
	fs.StringVar(&a.attrModel, "attr-model", "", "LR attribute model (default: lr_attrs_x<scale>.onnx in --models, if present; 'none' = off)")
	fs.Float64Var(&a.abstain, "abstain", 0.8, "confidence a predicted label needs, else abstain")
	fs.Func("roi", "search only x0,y0,x1,y1 (normalised 0..1); repeat for several", func(v string) error {
		n, err := detect.ParseNormRect(v)
		a.search.ROIs = append(a.search.ROIs, n)
		return err // a bad rectangle ends the parse, so the one appended is never used
	})
	pos, err := cliflag.Parse(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, exitOK
		}
		return nil, exitUsage
	}
	const usage = "usage: srdgd detect --in IMAGE [--json] [--probes DIR] [--detector blazeface|haar] [--scale 8|16] [--min-face PX] [--roi x0,y0,x1,y1]"
	switch {
	case len(pos) > 0:
		fmt.Fprintf(stderr, "srdgd detect: unexpected argument %q (give the image with --in)\n%s\n", pos[0], usage)
		return nil, exitUsage
	case a.in == "":
		fmt.Fprintf(stderr, "srdgd detect: --in is required\n%s\n", usage)
		return nil, exitUsage
	}
	a.det, a.lr = det.V, 128/scale.V
	return a, exitOK
}

// cmdDetect implements `srdgd detect --in IMAGE [--json] [--probes DIR] ...`:
// it prints every face found in a picture (box, score, landmarks, quality
// and the gate's verdict) and writes each face's LR probe and preview as
// PNG.
func cmdDetect(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a, code := parseDetectArgs(args, stderr)
	if a == nil {
		return code
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "detect:", err)
		if ue := (app.UsageError{}); errors.As(err, &ue) {
			return exitUsage
		}
		return exitFailure
	}
	data, err := faceimg.ReadFile(a.in)
	if err != nil {
		return fail(err)
	}
	img, err := detect.DecodeImage(data, faceimg.DefaultMaxPixels)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", a.in, err))
	}
	tools, err := app.OpenPhotoTools(app.PhotoToolsOptions{Detector: a.det, Model: a.model, ORTLibrary: a.lib, Threads: a.threads,
		Search: a.search, AttrModel: a.attrModel, LRSize: a.lr, Models: flagModels(a.models)})
	if err != nil {
		return fail(err)
	}
	defer tools.Close()
	rep, err := tools.Report(ctx, img, app.ReportOptions{Name: a.in, LRSize: a.lr, Abstain: a.abstain, Probes: a.probes})
	if err != nil {
		return fail(err)
	}
	return answer(stdout, rep, a.asJSON, exitOK)
}
