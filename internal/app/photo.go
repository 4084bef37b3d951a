package app

import (
	"context"
	"fmt"
	"image"

	"github.com/srdgd/srdgd/detect"
	"github.com/srdgd/srdgd/internal/faceimg"
	"github.com/srdgd/srdgd/internal/locate"
	"github.com/srdgd/srdgd/internal/ort"
	"github.com/srdgd/srdgd/internal/resample"
	"github.com/srdgd/srdgd/match"
	"github.com/srdgd/srdgd/srdg"
)

// SuperResolvePhoto runs the whole chain on a photo: detect -> LR probe (SRDG.md
// section 2) -> SR, on the photo reduced as Search reduces it; note
// describes the run.
func SuperResolvePhoto(ctx context.Context, env *Gallery, img image.Image, lr int, sampler, save string) (*faceimg.Planar, string, error) {
	img = faceimg.Shrink(img, match.PhotoSide)
	lrSize := 128 / lr
	prober, err := detect.NewProber(detect.ProbeOptions{LRSize: lrSize})
	if err != nil {
		return nil, "", err
	}
	dimg := detect.ImageFromGo(img)
	res, err := env.Detector.Detect(ctx, dimg)
	if err != nil || len(res.Faces) != 1 {
		return nil, "", fmt.Errorf("need exactly one face, found %d (%v)", len(res.Faces), err)
	}
	crop, err := prober.Cut(dimg, res.Faces[0], env.Detector.Calibration())
	if err != nil {
		return nil, "", err
	}
	scorePath, err := ScoreModel(env.Cfg, lr)
	if err != nil {
		return nil, "", err
	}
	guidPath, err := Models(env.Cfg).File("srdg.guidance_model", env.Cfg.SRDG.GuidanceModel, "guidance.onnx")
	if err != nil {
		return nil, "", err
	}
	eng, err := srdg.Open(srdg.ModelOptions{Runtime: env.RT, ScorePath: scorePath, WantScale: lr, GuidancePath: guidPath})
	if err != nil {
		return nil, "", err
	}
	defer eng.Close()
	out, err := eng.SuperResolve(ctx, []srdg.Input{{LR: crop.LR.Pix}}, srdg.Params{Sampler: sampler}, srdg.NewSeededNoise(1))
	if err != nil {
		return nil, "", err
	}
	hr, _ := eng.Sizes()
	sr := &faceimg.Planar{W: hr, H: hr, Pix: out[0].SR}
	if save != "" {
		_ = faceimg.Save(save+"_lr.png", crop.LR.Image())
		_ = faceimg.Save(save+"_sr.png", sr.Image())
	}
	return sr, fmt.Sprintf("LR probe %dx%d -> SR %dx%d with sampler %s (%d evaluations)", lrSize, lrSize, hr, hr,
		out[0].Sampler, out[0].ScoreEvals+out[0].GuidanceEvals), nil
}

// SRInputSide is the largest crop srInput converts as it is: a bigger one is
// first reduced to it by a box filter (faceimg.Shrink), so that a 40
// megapixel input costs no 480 MB float copy.
const SRInputSide = 1024

// SRInput turns a decoded `srdgd sr --in` image into the model's lr x lr
// input: a square face crop, downscaled with the antialiased bilinear filter
// of training when larger. note says what was done to it.
func SRInput(img image.Image, lr int) (p *faceimg.Planar, note string, err error) {
	b := img.Bounds()
	if b.Dx() != b.Dy() {
		return nil, "", fmt.Errorf("%dx%d; a square face crop is needed", b.Dx(), b.Dy())
	}
	if b.Dx() < lr {
		return nil, "", fmt.Errorf("%dx%d, smaller than the model's %dx%d input", b.Dx(), b.Dy(), lr, lr)
	}
	if b.Dx() == lr {
		return faceimg.FromImage(img), "", nil
	}
	p = faceimg.FromImage(faceimg.Shrink(img, SRInputSide))
	small, err := resample.Resize(p.Pix, 3, p.H, p.W, lr, lr, resample.Bilinear)
	if err != nil {
		return nil, "", err
	}
	return &faceimg.Planar{W: lr, H: lr, Pix: small}, fmt.Sprintf("input %dx%d downscaled to %dx%d (antialiased bilinear, as in training)", b.Dx(), b.Dy(), lr, lr), nil
}

// UsageError marks PhotoToolsOptions that cannot work together (a bad
// detector name, an attribute model for another probe size).
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// PhotoToolsOptions choose the tools for still pictures (srdgd detect).
type PhotoToolsOptions struct {
	// Detector is "blazeface" (Model, on ONNX Runtime from ORTLibrary with
	// Threads) or "haar".
	Detector, Model, ORTLibrary string
	Threads                     int
	Search                      detect.Search
	// AttrModel is the LR attribute model, "none" for none; it must take
	// LRSize probes.
	AttrModel string
	LRSize    int
	// Models finds what Model and AttrModel leave empty: blazeface.onnx
	// (required for blazeface) and lr_attrs_x<scale>.onnx (optional).
	Models locate.Models
}

// PhotoTools are a detector and, optionally, an LR attribute model.
type PhotoTools struct {
	Detector detect.Detector
	Attrs    *srdg.AttrPredictor // nil: none
	keep     []func()
}

// Close releases the models, last opened first.
func (t *PhotoTools) Close() {
	for i := len(t.keep) - 1; i >= 0; i-- {
		t.keep[i]()
	}
	t.keep = nil
}

// OpenPhotoTools opens the detector and the attribute model; a UsageError
// is the options' fault.
func OpenPhotoTools(o PhotoToolsOptions) (*PhotoTools, error) {
	t := &PhotoTools{}
	fail := func(err error) (*PhotoTools, error) { t.Close(); return nil, err }
	if o.AttrModel == "" {
		var err error
		if o.AttrModel, err = o.Models.File("--attr-model", "", fmt.Sprintf("lr_attrs_x%d.onnx", 128/o.LRSize)); err != nil {
			o.AttrModel = "none" // the default is optional
		}
	}
	var rt *ort.Runtime
	runtime := func() error {
		if rt != nil {
			return nil
		}
		var err error
		if rt, err = ort.Open(o.ORTLibrary, nil); err == nil {
			t.keep = append(t.keep, func() { rt.Close() })
		}
		return err
	}
	switch o.Detector {
	case "blazeface":
		var err error
		if o.Model, err = o.Models.File("--model", o.Model, "blazeface.onnx"); err != nil {
			return fail(err)
		}
		if err := runtime(); err != nil {
			return fail(err)
		}
		b, err := detect.NewBlazeFace(rt, detect.BlazeFaceOptions{Model: o.Model, Threads: o.Threads, Search: o.Search})
		if err != nil {
			return fail(err)
		}
		t.Detector = b
	case "haar":
		h, err := detect.NewHaar(detect.HaarOptions{Search: o.Search})
		if err != nil {
			return fail(err)
		}
		t.Detector = h
	default:
		return fail(UsageError{fmt.Errorf("--detector %q is not allowed (allowed: blazeface, haar)", o.Detector)})
	}
	d := t.Detector
	t.keep = append(t.keep, func() { d.Close() })
	if o.AttrModel == "none" || o.AttrModel == "" {
		return t, nil
	}
	if err := runtime(); err != nil {
		return fail(err)
	}
	attrs, err := srdg.OpenAttrPredictor(rt, o.AttrModel, ort.SessionOptions{Providers: []string{ort.CPU}, IntraOpThreads: 1})
	if err != nil {
		return fail(err)
	}
	t.Attrs = attrs
	t.keep = append(t.keep, func() { attrs.Close() })
	if attrs.LR != o.LRSize {
		return fail(UsageError{fmt.Errorf("%s takes %dx%d probes, --scale %d cuts %dx%d (allowed: --scale %d with this model)", o.AttrModel, attrs.LR, attrs.LR, 128/o.LRSize, o.LRSize, o.LRSize, 128/attrs.LR)})
	}
	return t, nil
}

// SRToolOptions choose the models of a one-off SR run (srdgd sr): Score
// (default score_x<Scale>.onnx found by Models) and Guidance (default
// guidance.onnx; "none": unguided only), on ONNX Runtime from ORTLibrary
// with Threads.
type SRToolOptions struct {
	Models          locate.Models
	Score, Guidance string
	ORTLibrary      string
	Scale, Threads  int
}

// SRTool is an SR engine on its own ONNX Runtime.
type SRTool struct {
	*srdg.Engine
	rt *ort.Runtime
}

// Close releases the engine, then the runtime.
func (t *SRTool) Close() {
	t.Engine.Close()
	t.rt.Close()
}

// OpenSRTool resolves the model files and opens the engine.
func OpenSRTool(o SRToolOptions) (*SRTool, error) {
	score, err := o.Models.File("--score", o.Score, fmt.Sprintf("score_x%d.onnx", o.Scale))
	if err != nil {
		return nil, err
	}
	guidance := ""
	if o.Guidance != "none" {
		if guidance, err = o.Models.File("--guidance", o.Guidance, "guidance.onnx"); err != nil {
			return nil, err
		}
	}
	rt, err := ort.Open(o.ORTLibrary, nil)
	if err != nil {
		return nil, err
	}
	eng, err := srdg.Open(srdg.ModelOptions{Runtime: rt, ScorePath: score, GuidancePath: guidance, WantScale: o.Scale,
		Session: ort.SessionOptions{Providers: []string{ort.TensorRT, ort.CUDA, ort.CPU}, IntraOpThreads: o.Threads}})
	if err != nil {
		rt.Close()
		return nil, err
	}
	return &SRTool{Engine: eng, rt: rt}, nil
}
