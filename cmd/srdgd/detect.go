package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/srdgd/srdgd/detect"
	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/internal/app"
	"github.com/srdgd/srdgd/internal/cliflag"
	"github.com/srdgd/srdgd/internal/faceimg"
	"github.com/srdgd/srdgd/srdg"
)

// detectFace is one face in the output of `srdgd detect` (the --json schema).
type detectFace struct {
	Box       [4]float64            `json:"box"` // x0, y0, x1, y1 in pixels
	FacePx    float64               `json:"face_px"`
	Score     float64               `json:"score"`
	Landmarks map[string][2]float64 `json:"landmarks,omitempty"`
	Quality   face.Quality          `json:"quality"`
	// Gate is "ok" or the reason the quality gate would reject this face.
	Gate     string       `json:"gate"`
	Framing  face.Framing `json:"framing"`
	Upscaled bool         `json:"upscaled"`
	// Attributes are the LR attribute predictor's probabilities that each
	// attribute has label 1, Labels the guidance labels chosen from them
	// (-1 = abstain); absent without an attribute model.
	Attributes map[string]float64 `json:"attributes,omitempty"`
	Labels     map[string]int     `json:"labels,omitempty"`
	// LR and Preview name the PNG files written with --probes.
	LR      string `json:"lr,omitempty"`
	Preview string `json:"preview,omitempty"`
}

// detectResult is the --json document.
type detectResult struct {
	Image     string       `json:"image"`
	Width     int          `json:"width"`
	Height    int          `json:"height"`
	Detector  string       `json:"detector"`
	ElapsedMS float64      `json:"elapsed_ms"`
	Windows   int          `json:"windows"`
	Faces     []detectFace `json:"faces"`
}

var landmarkNames = [detect.NumLandmarks]string{"right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear"}

type roiFlag []detect.NormRect

func (r *roiFlag) String() string { return fmt.Sprint(*r) }
func (r *roiFlag) Set(v string) error {
	parts := strings.Split(v, ",")
	if len(parts) != 4 {
		return fmt.Errorf("want x0,y0,x1,y1 (normalised), got %q", v)
	}
	var f [4]float64
	for i, p := range parts {
		x, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil {
			return fmt.Errorf("roi %q: %w", v, err)
		}
		f[i] = x
	}
	n := detect.NormRect{X0: f[0], Y0: f[1], X1: f[2], Y1: f[3]}
	if err := n.Validate(); err != nil {
		return err
	}
	*r = append(*r, n)
	return nil
}

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
	var rois roiFlag
	fs.Var(&rois, "roi", "search only x0,y0,x1,y1 (normalised 0..1); repeat for several")
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
	a.search.ROIs = rois
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
	fail := func(code int, err error) int { fmt.Fprintln(stderr, "detect:", err); return code }
	data, err := faceimg.ReadFile(a.in)
	if err != nil {
		return fail(exitFailure, err)
	}
	img, err := detect.DecodeImage(data, faceimg.DefaultMaxPixels)
	if err != nil {
		return fail(exitFailure, fmt.Errorf("%s: %w", a.in, err))
	}
	models := flagModels(a.models)
	attrModel := a.attrModel
	if attrModel == "" {
		if attrModel, err = models.File("--attr-model", "", fmt.Sprintf("lr_attrs_x%d.onnx", 128/a.lr)); err != nil {
			attrModel = "none" // the default is optional
		}
	}
	model := a.model
	if a.det == "blazeface" {
		if model, err = models.File("--model", a.model, "blazeface.onnx"); err != nil {
			return fail(exitFailure, err)
		}
	}
	tools, err := app.OpenPhotoTools(app.PhotoToolsOptions{Detector: a.det, Model: model, ORTLibrary: a.lib, Threads: a.threads,
		Search: a.search, AttrModel: attrModel, LRSize: a.lr})
	if ue := (app.UsageError{}); errors.As(err, &ue) {
		return fail(exitUsage, err)
	} else if err != nil {
		return fail(exitFailure, err)
	}
	defer tools.Close()
	d := tools.Detector
	prober, err := detect.NewProber(detect.ProbeOptions{LRSize: a.lr})
	if err != nil {
		return fail(exitUsage, err)
	}
	start := time.Now()
	res, err := d.Detect(ctx, img)
	if err != nil {
		return fail(exitFailure, err)
	}
	out := detectResult{Image: a.in, Width: img.Width, Height: img.Height, Detector: d.Name(),
		ElapsedMS: float64(time.Since(start).Microseconds()) / 1000, Windows: res.Tiles, Faces: []detectFace{}}
	if a.probes != "" {
		if err := os.MkdirAll(a.probes, 0o755); err != nil {
			return fail(exitFailure, err)
		}
	}
	for i, f := range res.Faces {
		df, err := a.describe(ctx, tools, img, f, i, prober)
		if err != nil {
			return fail(exitFailure, err)
		}
		out.Faces = append(out.Faces, df)
	}
	if a.asJSON {
		return writeJSON(stdout, out)
	}
	printDetect(stdout, out)
	return exitOK
}

// describe measures one face, cuts its probe and, with --probes, writes it.
func (a *detectArgs) describe(ctx context.Context, tools *app.PhotoTools, img *detect.Image, f detect.Detection, i int, prober *detect.Prober) (detectFace, error) {
	pf, err := tools.Describe(ctx, img, f, prober, a.abstain)
	if err != nil {
		return detectFace{}, err
	}
	df := detectFace{Box: [4]float64{f.Box.X0, f.Box.Y0, f.Box.X1, f.Box.Y1}, FacePx: f.Px(), Score: f.Score, Quality: pf.Quality,
		Gate: pf.Gate, Framing: pf.Crop.Framing, Upscaled: pf.Crop.Upscaled}
	if f.HasLandmarks {
		df.Landmarks = map[string][2]float64{}
		for k, p := range f.Landmarks {
			df.Landmarks[landmarkNames[k]] = [2]float64{p.X, p.Y}
		}
	}
	if pf.Probs != nil {
		df.Attributes, df.Labels = map[string]float64{}, map[string]int{}
		for k, name := range tools.Attrs.Attributes {
			df.Attributes[name], df.Labels[name] = pf.Probs[k], pf.Labels[k]
		}
	}
	if a.probes == "" {
		return df, nil
	}
	base := strings.TrimSuffix(filepath.Base(a.in), filepath.Ext(a.in))
	df.LR = filepath.Join(a.probes, fmt.Sprintf("%s_face%02d_lr%d.png", base, i+1, a.lr))
	df.Preview = filepath.Join(a.probes, fmt.Sprintf("%s_face%02d_hr128.png", base, i+1))
	if err := faceimg.Save(df.LR, pf.Crop.LR.Image()); err != nil {
		return df, err
	}
	return df, faceimg.Save(df.Preview, pf.Crop.Preview.Image())
}

func printDetect(w io.Writer, out detectResult) {
	fmt.Fprintf(w, "%s: %dx%d, %s, %d faces in %.1f ms (%d windows)\n", out.Image, out.Width, out.Height,
		out.Detector, len(out.Faces), out.ElapsedMS, out.Windows)
	for i, f := range out.Faces {
		fmt.Fprintf(w, "face %d: box %.1f,%.1f,%.1f,%.1f (%.0f px) score %.3f sharpness %.2f frontal %.2f value %.3f gate %s",
			i+1, f.Box[0], f.Box[1], f.Box[2], f.Box[3], f.FacePx, f.Score, f.Quality.Sharpness, f.Quality.Frontal, f.Quality.Value, f.Gate)
		if f.Upscaled {
			fmt.Fprint(w, " (probe upscaled)")
		}
		fmt.Fprintln(w)
		if f.Landmarks != nil {
			var parts []string
			for _, n := range landmarkNames {
				p := f.Landmarks[n]
				parts = append(parts, fmt.Sprintf("%s %.1f,%.1f", n, p[0], p[1]))
			}
			fmt.Fprintf(w, "  landmarks: %s\n", strings.Join(parts, "; "))
		}
		if f.Attributes != nil {
			var parts []string
			for _, n := range []string{"male", "glasses", "no_beard"} {
				if p, ok := f.Attributes[n]; ok {
					parts = append(parts, fmt.Sprintf("%s=%s (p=%.2f)", n, srdg.LabelString(f.Labels[n]), p))
				}
			}
			fmt.Fprintf(w, "  attributes: %s\n", strings.Join(parts, " "))
		}
		if f.LR != "" {
			fmt.Fprintf(w, "  probe: %s  preview: %s\n", f.LR, f.Preview)
		}
	}
}
