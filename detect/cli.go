package detect

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/srdgd/srdgd/internal/faceimg"
	"github.com/srdgd/srdgd/internal/ort"
)

// DefaultModel is where the repository keeps the packaged BlazeFace.
const DefaultModel = "models/dist/blazeface.onnx"

// CLIFace is one face in the output of CLI (the --json schema).
type CLIFace struct {
	Box       [4]float64            `json:"box"` // x0, y0, x1, y1 in pixels
	FacePx    float64               `json:"face_px"`
	Score     float64               `json:"score"`
	Landmarks map[string][2]float64 `json:"landmarks,omitempty"`
	Quality   Quality               `json:"quality"`
	// Gate is "ok" or the reason the quality gate would reject this face.
	Gate     string  `json:"gate"`
	Framing  Framing `json:"framing"`
	Upscaled bool    `json:"upscaled"`
	// Attributes are the LR attribute predictor's probabilities that each
	// attribute has label 1, Labels the guidance labels chosen from them
	// (-1 = abstain); absent without an attribute model.
	Attributes map[string]float64 `json:"attributes,omitempty"`
	Labels     map[string]int     `json:"labels,omitempty"`
	// LR and Preview name the PNG files written with --probes.
	LR      string `json:"lr,omitempty"`
	Preview string `json:"preview,omitempty"`
}

// CLIResult is the --json document.
type CLIResult struct {
	Image     string    `json:"image"`
	Width     int       `json:"width"`
	Height    int       `json:"height"`
	Detector  string    `json:"detector"`
	ElapsedMS float64   `json:"elapsed_ms"`
	Windows   int       `json:"windows"`
	Faces     []CLIFace `json:"faces"`
}

var landmarkNames = [NumLandmarks]string{"right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear"}

type roiFlag []NormRect

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
	n := NormRect{f[0], f[1], f[2], f[3]}
	if err := n.validate(); err != nil {
		return err
	}
	*r = append(*r, n)
	return nil
}

// CLI implements `srdgd detect --in IMAGE [--json] [--probes DIR] ...`: it
// prints every face found in a picture (box, score, landmarks, quality and
// the gate's verdict) and writes each face's LR probe and preview as PNG. It
// returns the exit status: 0 done, 1 failed, 2 bad usage.
func CLI(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("detect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "", "image file (PNG, JPEG or GIF); required")
	asJSON := fs.Bool("json", false, "print one JSON document instead of text")
	probes := fs.String("probes", "", "write each face's LR probe and 128x128 preview as PNG into this folder")
	det := fs.String("detector", "blazeface", "blazeface or haar")
	model := fs.String("model", DefaultModel, "BlazeFace ONNX file")
	lib := fs.String("ort", "", "libonnxruntime path (default: search)")
	threads := fs.Int("threads", 0, "ONNX Runtime threads (0 = ORT default)")
	minFace := fs.Float64("min-face", 0, "smallest face height to search for, px (default 12)")
	maxFace := fs.Float64("max-face", 0, "largest face height, px (default 256)")
	minScore := fs.Float64("min-score", 0, "minimum detector score (default 0.6)")
	lr := fs.Int("lr", 16, "LR probe size: 16 (8x) or 8 (16x)")
	attrModel := fs.String("attr-model", "", "LR attribute model (default models/dist/lr_attrs_x8.onnx or _x16 by --lr, if present; 'none' = off)")
	abstain := fs.Float64("abstain", 0.8, "confidence a predicted label needs, else abstain")
	var rois roiFlag
	fs.Var(&rois, "roi", "search only x0,y0,x1,y1 (normalised 0..1); repeat for several")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *in == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: srdgd detect --in IMAGE [--json] [--probes DIR] [--detector blazeface|haar] [--min-face PX] [--roi x0,y0,x1,y1]")
		return 2
	}
	data, err := faceimg.ReadFile(*in)
	if err != nil {
		fmt.Fprintln(stderr, "detect:", err)
		return 1
	}
	img, err := decodeInput(data, faceimg.DefaultMaxPixels)
	if err != nil {
		fmt.Fprintf(stderr, "detect: %s: %v\n", *in, err)
		return 1
	}
	search := Search{MinFacePx: *minFace, MaxFacePx: *maxFace, MinScore: *minScore, ROIs: rois}
	var d Detector
	switch *det {
	case "blazeface":
		rt, err := ort.Open(*lib, nil)
		if err != nil {
			fmt.Fprintln(stderr, "detect:", err)
			return 1
		}
		defer rt.Close()
		b, err := NewBlazeFace(rt, BlazeFaceOptions{Model: *model, Threads: *threads, Search: search})
		if err != nil {
			fmt.Fprintln(stderr, "detect:", err)
			return 1
		}
		d = b
	case "haar":
		h, err := NewHaar(HaarOptions{Search: search})
		if err != nil {
			fmt.Fprintln(stderr, "detect:", err)
			return 1
		}
		d = h
	default:
		fmt.Fprintf(stderr, "detect: --detector %q: want blazeface or haar\n", *det)
		return 2
	}
	defer d.Close()
	var attrs *AttrPredictor
	if *attrModel != "none" {
		explicit := *attrModel != ""
		if !explicit {
			*attrModel = fmt.Sprintf("models/dist/lr_attrs_x%d.onnx", 128 / *lr)
		}
		if _, serr := os.Stat(*attrModel); serr == nil || explicit {
			rt, err := ort.Open(*lib, nil)
			if err != nil {
				fmt.Fprintln(stderr, "detect:", err)
				return 1
			}
			defer rt.Close()
			if attrs, err = OpenAttrPredictor(rt, *attrModel, ort.SessionOptions{Providers: []string{ort.CPU}, IntraOpThreads: 1}); err != nil {
				fmt.Fprintln(stderr, "detect:", err)
				return 1
			}
			defer attrs.Close()
			if attrs.LR != *lr {
				fmt.Fprintf(stderr, "detect: %s takes %dx%d probes, --lr is %d\n", *attrModel, attrs.LR, attrs.LR, *lr)
				return 2
			}
		}
	}
	prober, err := NewProber(ProbeOptions{LRSize: *lr})
	if err != nil {
		fmt.Fprintln(stderr, "detect:", err)
		return 2
	}
	start := time.Now()
	res, err := d.Detect(context.Background(), img)
	if err != nil {
		fmt.Fprintln(stderr, "detect:", err)
		return 1
	}
	out := CLIResult{Image: *in, Width: img.Width, Height: img.Height, Detector: d.Name(),
		ElapsedMS: float64(time.Since(start).Microseconds()) / 1000, Windows: res.Tiles, Faces: []CLIFace{}}
	if *probes != "" {
		if err := os.MkdirAll(*probes, 0o755); err != nil {
			fmt.Fprintln(stderr, "detect:", err)
			return 1
		}
	}
	for i, f := range res.Faces {
		// a fresh gate per face: every face is its own track's first shot
		g, _ := NewGate(GateOptions{})
		q := g.Measure(img, f)
		verdict := "ok"
		if ok, why := g.Check(1, q); !ok {
			verdict = why
		}
		cf := CLIFace{Box: [4]float64{f.Box.X0, f.Box.Y0, f.Box.X1, f.Box.Y1}, FacePx: f.Px(), Score: f.Score, Quality: q, Gate: verdict}
		if f.HasLandmarks {
			cf.Landmarks = map[string][2]float64{}
			for k, p := range f.Landmarks {
				cf.Landmarks[landmarkNames[k]] = [2]float64{p.X, p.Y}
			}
		}
		crop, err := prober.Cut(img, f, d.Calibration())
		if err != nil {
			fmt.Fprintln(stderr, "detect:", err)
			return 1
		}
		cf.Framing, cf.Upscaled = crop.Framing, crop.Upscaled
		if attrs != nil {
			probs, err := attrs.Predict(context.Background(), [][]float32{crop.LR.Pix})
			if err != nil {
				fmt.Fprintln(stderr, "detect:", err)
				return 1
			}
			labels := ChooseLabels(probs[0], *abstain)
			cf.Attributes, cf.Labels = map[string]float64{}, map[string]int{}
			for a, name := range attrs.Attributes {
				cf.Attributes[name], cf.Labels[name] = probs[0][a], labels[a]
			}
		}
		if *probes != "" {
			base := strings.TrimSuffix(filepath.Base(*in), filepath.Ext(*in))
			cf.LR = filepath.Join(*probes, fmt.Sprintf("%s_face%02d_lr%d.png", base, i+1, *lr))
			cf.Preview = filepath.Join(*probes, fmt.Sprintf("%s_face%02d_hr128.png", base, i+1))
			if err := faceimg.Save(cf.LR, crop.LR.Image()); err != nil {
				fmt.Fprintln(stderr, "detect:", err)
				return 1
			}
			if err := faceimg.Save(cf.Preview, crop.Preview.Image()); err != nil {
				fmt.Fprintln(stderr, "detect:", err)
				return 1
			}
		}
		out.Faces = append(out.Faces, cf)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			fmt.Fprintln(stderr, "detect:", err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(stdout, "%s: %dx%d, %s, %d faces in %.1f ms (%d windows)\n", out.Image, out.Width, out.Height,
		out.Detector, len(out.Faces), out.ElapsedMS, out.Windows)
	for i, f := range out.Faces {
		fmt.Fprintf(stdout, "face %d: box %.1f,%.1f,%.1f,%.1f (%.0f px) score %.3f sharpness %.2f frontal %.2f value %.3f gate %s",
			i+1, f.Box[0], f.Box[1], f.Box[2], f.Box[3], f.FacePx, f.Score, f.Quality.Sharpness, f.Quality.Frontal, f.Quality.Value, f.Gate)
		if f.Upscaled {
			fmt.Fprint(stdout, " (probe upscaled)")
		}
		fmt.Fprintln(stdout)
		if f.Landmarks != nil {
			var parts []string
			for _, n := range landmarkNames {
				p := f.Landmarks[n]
				parts = append(parts, fmt.Sprintf("%s %.1f,%.1f", n, p[0], p[1]))
			}
			fmt.Fprintf(stdout, "  landmarks: %s\n", strings.Join(parts, "; "))
		}
		if f.Attributes != nil {
			var parts []string
			for _, n := range []string{"male", "glasses", "no_beard"} {
				if p, ok := f.Attributes[n]; ok {
					l := "?"
					if f.Labels[n] >= 0 {
						l = fmt.Sprint(f.Labels[n])
					}
					parts = append(parts, fmt.Sprintf("%s=%s (p=%.2f)", n, l, p))
				}
			}
			fmt.Fprintf(stdout, "  attributes: %s\n", strings.Join(parts, " "))
		}
		if f.LR != "" {
			fmt.Fprintf(stdout, "  probe: %s  preview: %s\n", f.LR, f.Preview)
		}
	}
	return 0
}

// decodeInput decodes a `detect --in` image within maxPixels (the command
// uses faceimg.DefaultMaxPixels: a frame of up to 8K; detection then takes
// time in proportion to the pixels, about a minute at the limit with the
// default face sizes).
func decodeInput(data []byte, maxPixels int) (*Image, error) {
	src, _, err := faceimg.Decode(data, maxPixels)
	if err != nil {
		return nil, err
	}
	return ImageFromGo(src), nil
}
