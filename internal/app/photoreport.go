package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/srdgd/srdgd/detect"
	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/internal/faceimg"
	"github.com/srdgd/srdgd/srdg"
)

// PhotoReport is what the daemon would see of one still picture: every
// face with its quality, the gate's verdict, its LR probe and attributes
// (the `srdgd detect --json` document).
type PhotoReport struct {
	Image     string      `json:"image"`
	Width     int         `json:"width"`
	Height    int         `json:"height"`
	Detector  string      `json:"detector"`
	ElapsedMS float64     `json:"elapsed_ms"`
	Windows   int         `json:"windows"`
	Faces     []PhotoFace `json:"faces"`
}

// PhotoFace is one face of a PhotoReport.
type PhotoFace struct {
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
	// LR and Preview name the PNG files written with ReportOptions.Probes.
	LR      string `json:"lr,omitempty"`
	Preview string `json:"preview,omitempty"`
}

// LandmarkNames name the detector's landmarks in PhotoFace.Landmarks.
var LandmarkNames = [detect.NumLandmarks]string{"right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear"}

// ReportOptions say how Report cuts and keeps the probes.
type ReportOptions struct {
	// Name is the picture's name in the report and in the probe files.
	Name string
	// LRSize is the probe side (16 or 8); Abstain the confidence a
	// predicted label needs.
	LRSize  int
	Abstain float64
	// Probes, when set, is a folder that receives each face's LR probe and
	// 128x128 preview as PNG.
	Probes string
}

// Report detects every face of img and describes each as the daemon's
// pipeline would: a fresh quality gate (every face is its own track's
// first shot), the LR probe and the attributes predicted from it.
func (t *PhotoTools) Report(ctx context.Context, img *detect.Image, o ReportOptions) (*PhotoReport, error) {
	prober, err := detect.NewProber(detect.ProbeOptions{LRSize: o.LRSize})
	if err != nil {
		return nil, UsageError{err}
	}
	start := time.Now()
	res, err := t.Detector.Detect(ctx, img)
	if err != nil {
		return nil, err
	}
	rep := &PhotoReport{Image: o.Name, Width: img.Width, Height: img.Height, Detector: t.Detector.Name(),
		ElapsedMS: float64(time.Since(start).Microseconds()) / 1000, Windows: res.Tiles, Faces: []PhotoFace{}}
	if o.Probes != "" {
		if err := os.MkdirAll(o.Probes, 0o755); err != nil {
			return nil, err
		}
	}
	for i, f := range res.Faces {
		pf, err := t.describe(ctx, img, f, prober, o, i)
		if err != nil {
			return nil, err
		}
		rep.Faces = append(rep.Faces, pf)
	}
	return rep, nil
}

// describe measures the i-th face, cuts its probe and, with o.Probes,
// writes it.
func (t *PhotoTools) describe(ctx context.Context, img *detect.Image, f detect.Detection, prober *detect.Prober, o ReportOptions, i int) (PhotoFace, error) {
	g, _ := detect.NewGate(detect.GateOptions{})
	pf := PhotoFace{Box: [4]float64{f.Box.X0, f.Box.Y0, f.Box.X1, f.Box.Y1}, FacePx: f.Px(), Score: f.Score, Quality: g.Measure(img, f), Gate: "ok"}
	if ok, why := g.Check(1, pf.Quality); !ok {
		pf.Gate = why
	}
	crop, err := prober.Cut(img, f, t.Detector.Calibration())
	if err != nil {
		return pf, err
	}
	pf.Framing, pf.Upscaled = crop.Framing, crop.Upscaled
	if f.HasLandmarks {
		pf.Landmarks = map[string][2]float64{}
		for k, p := range f.Landmarks {
			pf.Landmarks[LandmarkNames[k]] = [2]float64{p.X, p.Y}
		}
	}
	if t.Attrs != nil {
		probs, err := t.Attrs.Predict(ctx, [][]float32{crop.LR.Pix})
		if err != nil {
			return pf, err
		}
		labels := srdg.ChooseLabels(probs[0], o.Abstain)
		pf.Attributes, pf.Labels = map[string]float64{}, map[string]int{}
		for k, name := range t.Attrs.Attributes {
			pf.Attributes[name], pf.Labels[name] = probs[0][k], labels[k]
		}
	}
	if o.Probes == "" {
		return pf, nil
	}
	base := strings.TrimSuffix(filepath.Base(o.Name), filepath.Ext(o.Name))
	pf.LR = filepath.Join(o.Probes, fmt.Sprintf("%s_face%02d_lr%d.png", base, i+1, o.LRSize))
	pf.Preview = filepath.Join(o.Probes, fmt.Sprintf("%s_face%02d_hr128.png", base, i+1))
	if err := faceimg.Save(pf.LR, crop.LR.Image()); err != nil {
		return pf, err
	}
	return pf, faceimg.Save(pf.Preview, crop.Preview.Image())
}
