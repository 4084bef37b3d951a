package detect

import (
	"fmt"
	"math"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/internal/faceimg"
	"github.com/srdgd/srdgd/internal/resample"
)

// ProbeOptions configures a Prober. Zero values take the defaults.
type ProbeOptions struct {
	// LRSize is the LR probe side: 16 for the 8x models (default), 8 for 16x.
	LRSize int
	// PreviewSize is the side of the HR-framed preview for the UI (default 128).
	PreviewSize int
	// NoRotate keeps crops upright; by default a crop framed by the eyes is
	// rotated so that the eye line is level, as in CelebA's aligned images.
	NoRotate bool
	// MinRotateDeg: faces tilted less than this are not rotated (default 10).
	// On CelebA's aligned (level) faces the fitted angle is landmark noise of a
	// few degrees, and rotating by it costs 1.6 dB of probe PSNR.
	MinRotateDeg float64
}

func (o *ProbeOptions) setDefaults() {
	if o.LRSize == 0 {
		o.LRSize = 16
	}
	if o.PreviewSize == 0 {
		o.PreviewSize = 128
	}
	if o.MinRotateDeg == 0 {
		o.MinRotateDeg = 10
	}
}

func (o *ProbeOptions) validate() error {
	var probs []string
	if o.LRSize != 8 && o.LRSize != 16 {
		probs = append(probs, fmt.Sprintf("lr size %d: want 16 (8x) or 8 (16x)", o.LRSize))
	}
	if o.PreviewSize < 16 || o.PreviewSize > 512 {
		probs = append(probs, fmt.Sprintf("preview size %d: want 16..512", o.PreviewSize))
	}
	if o.MinRotateDeg < 0 || o.MinRotateDeg > 45 {
		probs = append(probs, fmt.Sprintf("min rotate %g degrees: want 0..45", o.MinRotateDeg))
	}
	if len(probs) > 0 {
		return fmt.Errorf("detect: probe: %s", joinProbs(probs))
	}
	return nil
}

// Crop is a face cut out of a frame in the SR framing.
type Crop struct {
	Framing face.Framing
	// Side is the crop's side in whole frame pixels (the framing side rounded).
	Side int
	// LR is the probe (LRSize x LRSize, planar RGB float32 in [0, 1]): the
	// crop downscaled with antialiased bilinear, as SRDG.md section 2 makes LR
	// from HR.
	LR *faceimg.Planar
	// Upscaled is true when the crop had fewer pixels than the probe, so LR
	// holds less detail than a real LR image of that size.
	Upscaled bool
	// Preview is the crop at PreviewSize (antialiased bicubic, like the
	// 120 -> 128 resize of the training crop), for the UI.
	Preview *faceimg.Planar
}

// Prober cuts SR-framed crops and LR probes out of frames. It caches
// resampling taps per crop size; not safe for concurrent use.
type Prober struct {
	o       ProbeOptions
	lr, pre map[int]*resample.Resizer
	buf     []float32
}

// NewProber validates the options.
func NewProber(o ProbeOptions) (*Prober, error) {
	o.setDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	return &Prober{o: o, lr: map[int]*resample.Resizer{}, pre: map[int]*resample.Resizer{}}, nil
}

// LRSize is the probe side.
func (p *Prober) LRSize() int { return p.o.LRSize }

// Cut frames the face with the calibration, samples the square at the
// frame's own resolution (edge pixels replicated past the border) and makes
// the LR probe and the preview.
func (p *Prober) Cut(img *Image, f Detection, cal Calibration) (*Crop, error) {
	if err := img.check(); err != nil {
		return nil, err
	}
	fr := cal.Frame(f, !p.o.NoRotate)
	if math.Abs(fr.Angle) < p.o.MinRotateDeg*math.Pi/180 {
		fr.Angle = 0
	}
	n := int(math.Round(fr.Side))
	if n < 1 || n > 8192 || math.IsNaN(fr.Side) {
		return nil, fmt.Errorf("detect: face at %.0f,%.0f frames a %.1f px crop", f.Box.X0, f.Box.Y0, fr.Side)
	}
	if cap(p.buf) < 3*n*n {
		p.buf = make([]float32, 3*n*n)
	}
	src := p.buf[:3*n*n]
	sampleSquare(src, img, fr, n)
	c := &Crop{Framing: fr, Side: n, Upscaled: n < p.o.LRSize}
	var err error
	if c.LR, err = p.resize(p.lr, src, n, p.o.LRSize, resample.Bilinear); err != nil {
		return nil, err
	}
	if c.Preview, err = p.resize(p.pre, src, n, p.o.PreviewSize, resample.Bicubic); err != nil {
		return nil, err
	}
	return c, nil
}

func (p *Prober) resize(cache map[int]*resample.Resizer, src []float32, n, out int, f resample.Filter) (*faceimg.Planar, error) {
	rz, ok := cache[n]
	if !ok {
		var err error
		if rz, err = resample.NewResizer(3, n, n, out, out, f); err != nil {
			return nil, err
		}
		if len(cache) > 256 { // many sizes over a long run: keep the cache bounded
			clear(cache)
		}
		cache[n] = rz
	}
	pl := faceimg.NewPlanar(out, out)
	if err := rz.Resize(pl.Pix, src); err != nil {
		return nil, err
	}
	return pl, nil
}

// sampleSquare fills dst (planar RGB, n x n) with the framing square. An
// upright framing is cut on the pixel grid (whole pixels, position rounded),
// so the crop holds the camera's own pixel values; a rotated one is sampled
// with bilinear interpolation at one output pixel per frame pixel.
func sampleSquare(dst []float32, img *Image, fr face.Framing, n int) {
	m := n * n
	if fr.Angle == 0 {
		x0 := int(math.Round(fr.Centre.X - float64(n)/2))
		y0 := int(math.Round(fr.Centre.Y - float64(n)/2))
		cropPlanar(dst, img, rectXYWH(x0, y0, n, n))
		return
	}
	s := fr.Side / float64(n)
	cs, sn := math.Cos(fr.Angle)*s, math.Sin(fr.Angle)*s
	h := float64(n) / 2
	for j := 0; j < n; j++ {
		for i := 0; i < n; i++ {
			u, v := float64(i)+0.5-h, float64(j)+0.5-h
			// continuous source point, then to pixel-centre coordinates
			x := fr.Centre.X + cs*u - sn*v - 0.5
			y := fr.Centre.Y + sn*u + cs*v - 0.5
			r, g, b := bilinearBGR(img, x, y)
			k := j*n + i
			dst[k], dst[m+k], dst[2*m+k] = r, g, b
		}
	}
}

func bilinearBGR(img *Image, x, y float64) (r, g, b float32) {
	x0, y0 := math.Floor(x), math.Floor(y)
	fx, fy := float32(x-x0), float32(y-y0)
	ix, iy := int(x0), int(y0)
	px := func(x, y int) []byte {
		x = min(max(x, 0), img.Width-1)
		y = min(max(y, 0), img.Height-1)
		return img.Pix[3*(y*img.Width+x):]
	}
	a, bb, c, d := px(ix, iy), px(ix+1, iy), px(ix, iy+1), px(ix+1, iy+1)
	mix := func(k int) float32 {
		top := float32(a[k])*(1-fx) + float32(bb[k])*fx
		bot := float32(c[k])*(1-fx) + float32(d[k])*fx
		return (top*(1-fy) + bot*fy) / 255
	}
	return mix(2), mix(1), mix(0)
}
