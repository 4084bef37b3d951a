// Package detect finds faces in camera frames, follows them across frames and
// turns the best shot of each track into an LR probe for the SR engine: the
// face framed as the SR models were trained (the CelebA aligned 120x120 box,
// SRDG.md section 2) and downscaled with antialiased bilinear to 16x16 (8x)
// or 8x8 (16x).
//
// Two detectors sit behind the Detector interface: MediaPipe BlazeFace (short
// range) on ONNX Runtime, run over overlapping, upscaled tiles because the
// faces that matter here are 8 to 64 pixels high, and OpenCV's Haar cascade
// (gocv, in haar.go only). Tracker associates detections over time, Gate
// picks the best shot per track and counts every rejection, and Pipeline ties
// it to the ingest frame queue.
package detect

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/internal/faceimg"
)

// Image is a packed BGR24 picture (stride 3*Width), the layout of
// face.Frame.Pix and of a gocv CV_8UC3 Mat. Detectors treat it as read-only.
type Image struct {
	Width, Height int
	Pix           []byte
	// Source names the stream (the camera) for detectors that keep per-stream
	// state, such as the tile rotation when a time budget cuts a frame short.
	Source string
	// Hints are boxes where faces are expected in this frame (the tracker's
	// predictions of its live tracks). BlazeFace looks at each through a
	// window centred on it before its budgeted rotation, so a tracked face
	// is searched for in every analysed frame; Haar ignores them.
	Hints []Rect
}

func (im *Image) check() error {
	if im == nil || im.Width <= 0 || im.Height <= 0 {
		return fmt.Errorf("detect: empty image")
	}
	if len(im.Pix) < 3*im.Width*im.Height {
		return fmt.Errorf("detect: image %dx%d has %d bytes, want %d (BGR24)", im.Width, im.Height, len(im.Pix), 3*im.Width*im.Height)
	}
	return nil
}

// ImageFromGo converts any Go image to BGR24 (JPEG's YCbCr and RGBA
// without the per-pixel interface calls).
func ImageFromGo(img image.Image) *Image {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	out := &Image{Width: w, Height: h, Pix: make([]byte, 3*w*h)}
	i := 0
	switch m := img.(type) {
	case *image.YCbCr:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				yi, ci := m.YOffset(x, y), m.COffset(x, y)
				r, g, bb := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				out.Pix[i], out.Pix[i+1], out.Pix[i+2] = bb, g, r
				i += 3
			}
		}
	case *image.RGBA:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := 0; x < w; x++ {
				out.Pix[i], out.Pix[i+1], out.Pix[i+2] = row[4*x+2], row[4*x+1], row[4*x]
				i += 3
			}
		}
	default:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				r, g, bb, _ := img.At(x, y).RGBA()
				out.Pix[i], out.Pix[i+1], out.Pix[i+2] = uint8(bb>>8), uint8(g>>8), uint8(r>>8)
				i += 3
			}
		}
	}
	return out
}

// DecodeImage decodes a picture file (PNG, JPEG or GIF) of at most
// maxPixels into BGR24; errors wrap faceimg.ErrUnreadable or
// faceimg.ErrTooLarge. Detection takes time in proportion to the pixels:
// about a minute for an 8K frame (faceimg.DefaultMaxPixels) with the
// default face sizes.
func DecodeImage(data []byte, maxPixels int) (*Image, error) {
	src, _, err := faceimg.Decode(data, maxPixels)
	if err != nil {
		return nil, err
	}
	return ImageFromGo(src), nil
}

// RGBA converts the image to a Go image.
func (im *Image) RGBA() *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, im.Width, im.Height))
	for i := 0; i < im.Width*im.Height; i++ {
		out.Pix[4*i], out.Pix[4*i+1], out.Pix[4*i+2], out.Pix[4*i+3] = im.Pix[3*i+2], im.Pix[3*i+1], im.Pix[3*i], 255
	}
	return out
}

// Point and Rect are the frame geometry that travels with probes (package
// face); detect's code names them without the package.
type (
	Point = face.Point
	Rect  = face.Rect
)

// IoU is the intersection over union of two boxes.
func IoU(a, b Rect) float64 {
	in := Rect{X0: math.Max(a.X0, b.X0), Y0: math.Max(a.Y0, b.Y0), X1: math.Min(a.X1, b.X1), Y1: math.Min(a.Y1, b.Y1)}.Area()
	if in == 0 {
		return 0
	}
	return in / (a.Area() + b.Area() - in)
}

// NormRect is a region of interest in normalised frame coordinates, each
// value in [0, 1].
type NormRect struct{ X0, Y0, X1, Y1 float64 }

// Validate checks that the region lies inside the frame and is not empty.
func (n NormRect) Validate() error {
	if !(n.X0 >= 0 && n.Y0 >= 0 && n.X1 <= 1 && n.Y1 <= 1 && n.X0 < n.X1 && n.Y0 < n.Y1) {
		return fmt.Errorf("region %v: want 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1", n)
	}
	return nil
}

// ParseNormRect reads "x0,y0,x1,y1" (normalised, as --roi takes it) and
// validates the region.
func ParseNormRect(v string) (NormRect, error) {
	parts := strings.Split(v, ",")
	if len(parts) != 4 {
		return NormRect{}, fmt.Errorf("want x0,y0,x1,y1 (normalised), got %q", v)
	}
	var f [4]float64
	for i, p := range parts {
		x, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil {
			return NormRect{}, fmt.Errorf("roi %q: %w", v, err)
		}
		f[i] = x
	}
	n := NormRect{X0: f[0], Y0: f[1], X1: f[2], Y1: f[3]}
	return n, n.Validate()
}

func (n NormRect) pixels(w, h int) image.Rectangle {
	return image.Rect(int(math.Floor(n.X0*float64(w))), int(math.Floor(n.Y0*float64(h))),
		int(math.Ceil(n.X1*float64(w))), int(math.Ceil(n.Y1*float64(h)))).Intersect(image.Rect(0, 0, w, h))
}

// Landmark indices into Detection.Landmarks (BlazeFace's keypoints). "Right" and
// "left" are the subject's: in an upright, unmirrored picture the right eye
// is on the image's left.
const (
	RightEye = iota
	LeftEye
	NoseTip
	Mouth
	RightEar
	LeftEar
	NumLandmarks
)

// Detection is one face the detector found, in frame coordinates.
type Detection struct {
	// Box is the detector's face box. BlazeFace's box runs from about the
	// eyebrows to the chin; Haar's is a little larger and higher. Calibration
	// maps each to the SR framing.
	Box Rect
	// Score in [0, 1]; Haar has none and reports 1.
	Score float64
	// Landmarks holds NumLandmarks points when HasLandmarks (BlazeFace).
	Landmarks    [NumLandmarks]Point
	HasLandmarks bool
	// Detector names the detector that produced the face ("blazeface", "haar").
	Detector string
}

// Px is the face size in pixels: the box height.
func (f Detection) Px() float64 { return f.Box.H() }

// Result is the outcome of one Detect call.
type Result struct {
	Faces []Detection
	// Tiles is how many detector windows ran; Skipped how many the time budget
	// left out (they run first on the next frame of the same Source).
	Tiles, Skipped int
	// Hinted is how many of Tiles were centred on Image.Hints.
	Hinted int
	// OverBudget is true when the time budget cut the search short.
	OverBudget bool
}

// Detector finds faces in a picture. Implementations are not safe for
// concurrent use; run one per goroutine.
type Detector interface {
	// Detect searches the configured regions of img and returns faces in frame
	// coordinates, highest score first.
	Detect(ctx context.Context, img *Image) (Result, error)
	// Name is "blazeface" or "haar".
	Name() string
	// Calibration maps this detector's boxes to the SR framing.
	Calibration() Calibration
	// Close releases C memory (ONNX sessions, OpenCV classifiers).
	Close() error
}

// Search configures where and for which face sizes a detector looks; it is
// shared by both detectors. Zero values take the documented defaults.
type Search struct {
	// MinFacePx and MaxFacePx bound the face box height in frame pixels
	// (defaults 12 and 256): the search is laid out for this range, and
	// detections more than 20 % outside it are dropped (a detector's box of a
	// face at the limit scatters around it by about 10 %).
	MinFacePx, MaxFacePx float64
	// ROIs restrict the search to regions (normalised coordinates); empty
	// searches the whole frame.
	ROIs []NormRect
	// MinScore drops weaker detections (default 0.6; BlazeFace applies it to
	// the verified score; on pasted 720p scenes 0.5 finds 12 px faces 18/18
	// instead of 16/18 but lets through 0.83 false positives per frame
	// instead of none. Haar has no score and ignores it).
	MinScore float64
	// NMSIoU merges detections that overlap more than this (default 0.3).
	NMSIoU float64
	// Budget bounds the time of one Detect call; 0 means no bound. When it
	// runs out the remaining windows are skipped and counted (BlazeFace runs
	// at least one batch per call and resumes with the skipped windows on
	// the next frame of the same Source).
	Budget time.Duration
}

func (s *Search) setDefaults() {
	if s.MinFacePx == 0 {
		s.MinFacePx = 12
	}
	if s.MaxFacePx == 0 {
		s.MaxFacePx = 256
	}
	if s.MinScore == 0 {
		s.MinScore = 0.6
	}
	if s.NMSIoU == 0 {
		s.NMSIoU = 0.3
	}
}

func (s *Search) validate() error {
	var probs []string
	if s.MinFacePx < 4 {
		probs = append(probs, fmt.Sprintf("min face %g px: must be at least 4", s.MinFacePx))
	}
	if s.MaxFacePx < s.MinFacePx {
		probs = append(probs, fmt.Sprintf("max face %g px is below min face %g px", s.MaxFacePx, s.MinFacePx))
	}
	if s.MinScore < 0 || s.MinScore >= 1 {
		probs = append(probs, fmt.Sprintf("min score %g: want [0, 1)", s.MinScore))
	}
	if s.NMSIoU <= 0 || s.NMSIoU >= 1 {
		probs = append(probs, fmt.Sprintf("nms iou %g: want (0, 1)", s.NMSIoU))
	}
	if s.Budget < 0 {
		probs = append(probs, fmt.Sprintf("budget %v: must not be negative", s.Budget))
	}
	for _, r := range s.ROIs {
		if err := r.Validate(); err != nil {
			probs = append(probs, err.Error())
		}
	}
	if len(probs) > 0 {
		return fmt.Errorf("detect: %s", joinProbs(probs))
	}
	return nil
}

// regions returns the pixel regions to search.
func (s *Search) regions(w, h int) []image.Rectangle {
	if len(s.ROIs) == 0 {
		return []image.Rectangle{image.Rect(0, 0, w, h)}
	}
	out := make([]image.Rectangle, 0, len(s.ROIs))
	for _, r := range s.ROIs {
		if p := r.pixels(w, h); !p.Empty() {
			out = append(out, p)
		}
	}
	return out
}

// inRegion is whether point c of a w x h frame lies in a search region.
func (s *Search) inRegion(c Point, w, h int) bool {
	for _, r := range s.regions(w, h) {
		if c.X >= float64(r.Min.X) && c.X < float64(r.Max.X) && c.Y >= float64(r.Min.Y) && c.Y < float64(r.Max.Y) {
			return true
		}
	}
	return false
}

func joinProbs(p []string) string { return strings.Join(p, "; ") }

func rectXYWH(x, y, w, h int) image.Rectangle { return image.Rect(x, y, x+w, y+h) }

// sizeFilter keeps faces within 20 % of the search's size range.
func sizeFilter(faces []Detection, s Search) []Detection {
	kept := faces[:0]
	for _, f := range faces {
		if px := f.Px(); px >= s.MinFacePx/1.2 && px <= s.MaxFacePx*1.2 {
			kept = append(kept, f)
		}
	}
	return kept
}
