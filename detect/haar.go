//go:build cgo

package detect

// All OpenCV (gocv) use of the package is in this file: Mats are closed
// explicitly, nothing relies on finalizers.

import (
	"context"
	"fmt"
	"image"
	"math"
	"os"
	"time"

	"gocv.io/x/gocv"
)

// Haar is OpenCV's Viola-Jones cascade (haarcascade_frontalface_default by
// default) behind the Detector interface. Each search region is converted to
// gray, histogram-equalised and enlarged so that Search.MinFacePx reaches the
// cascade's 24 px window. Not safe for concurrent use.
type Haar struct {
	o       HaarOptions
	cascade gocv.CascadeClassifier
	buf     []byte
}

var _ Detector = (*Haar)(nil)

// NewHaar loads the cascade.
func NewHaar(o HaarOptions) (*Haar, error) {
	o.setDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	o.ROIs = append([]NormRect(nil), o.ROIs...)
	if _, err := os.Stat(o.Cascade); err != nil {
		return nil, fmt.Errorf("haar: cascade: %w (apt-get install opencv-data)", err)
	}
	c := gocv.NewCascadeClassifier()
	if !c.Load(o.Cascade) {
		c.Close()
		return nil, fmt.Errorf("haar: cascade %s: cannot load (apt-get install opencv-data)", o.Cascade)
	}
	return &Haar{o: o, cascade: c}, nil
}

// Name implements Detector.
func (h *Haar) Name() string { return "haar" }

// Calibration implements Detector.
func (h *Haar) Calibration() Calibration { return HaarCalibration }

// Close releases the classifier.
func (h *Haar) Close() error { return h.cascade.Close() }

// Detect implements Detector. The cascade cannot be interrupted, so the
// budget is checked between regions.
func (h *Haar) Detect(ctx context.Context, img *Image) (Result, error) {
	if err := img.check(); err != nil {
		return Result{}, err
	}
	start := time.Now()
	var res Result
	var cands []Detection
	regs := h.o.Search.regions(img.Width, img.Height)
	// the upscale that brings MinFacePx to the cascade's window, capped
	up := math.Min(math.Max(1, h.o.WindowPx/h.o.MinFacePx), h.o.MaxUpscale)
	for i, r := range regs {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if h.o.Budget > 0 && time.Since(start) > h.o.Budget {
			res.OverBudget, res.Skipped = true, len(regs)-i
			break
		}
		faces, err := h.region(img, r, up)
		if err != nil {
			return res, err
		}
		cands = append(cands, faces...)
		res.Tiles++
	}
	res.Faces = weightedNMS(cands, h.o.NMSIoU)
	res.Faces = sizeFilter(res.Faces, h.o.Search)
	return res, nil
}

func (h *Haar) region(img *Image, r image.Rectangle, up float64) ([]Detection, error) {
	w, ht := r.Dx(), r.Dy()
	if cap(h.buf) < 3*w*ht {
		h.buf = make([]byte, 3*w*ht)
	}
	buf := h.buf[:3*w*ht]
	for y := 0; y < ht; y++ {
		copy(buf[3*w*y:3*w*(y+1)], img.Pix[3*((r.Min.Y+y)*img.Width+r.Min.X):])
	}
	bgr, err := gocv.NewMatFromBytes(ht, w, gocv.MatTypeCV8UC3, buf)
	if err != nil {
		return nil, fmt.Errorf("haar: region %v: %w", r, err)
	}
	defer bgr.Close()
	gray := gocv.NewMat()
	defer gray.Close()
	gocv.CvtColor(bgr, &gray, gocv.ColorBGRToGray)
	gocv.EqualizeHist(gray, &gray)
	src := gray
	if up > 1 {
		big := gocv.NewMat()
		defer big.Close()
		gocv.Resize(gray, &big, image.Point{X: int(math.Round(float64(w) * up)), Y: int(math.Round(float64(ht) * up))}, 0, 0, gocv.InterpolationLinear)
		src = big
	}
	sx := float64(src.Cols()) / float64(w)
	sy := float64(src.Rows()) / float64(ht)
	// bound the search with the cascade box sizes of the face range
	minSz := int(math.Max(h.o.WindowPx, math.Floor(h.o.MinFacePx*up/haarToFace.scale)))
	maxSz := int(math.Ceil(h.o.MaxFacePx * up / haarToFace.scale))
	rects := h.cascade.DetectMultiScaleWithParams(src, h.o.ScaleFactor, h.o.MinNeighbors, 0,
		image.Point{X: minSz, Y: minSz}, image.Point{X: maxSz, Y: maxSz})
	out := make([]Detection, 0, len(rects))
	for _, q := range rects {
		raw := Rect{X0: float64(r.Min.X) + float64(q.Min.X)/sx, Y0: float64(r.Min.Y) + float64(q.Min.Y)/sy,
			X1: float64(r.Min.X) + float64(q.Max.X)/sx, Y1: float64(r.Min.Y) + float64(q.Max.Y)/sy}
		c, rh := raw.Centre(), raw.H()
		cx, cy, fh := c.X+haarToFace.offX*rh, c.Y+haarToFace.offY*rh, haarToFace.scale*rh
		out = append(out, Detection{Box: Rect{X0: cx - fh/2, Y0: cy - fh/2, X1: cx + fh/2, Y1: cy + fh/2}, Score: 1, Detector: "haar"})
	}
	return out, nil
}
