// Package resample implements the separable, antialiased resampling that
// defines the LR probes and the conditioning image of SRDG.md section 2:
// bilinear (triangle) to make LR from HR and bicubic (Keys, a = -0.5) to
// upsample LR back to the HR size. The semantics follow Pillow's convolution
// resize (support widened by the downscale factor, weights normalised, pixel
// centres at +0.5), so the daemon produces the same numbers as the model
// toolchain (models/data/resample.py) that trained the networks.
package resample

import (
	"fmt"
	"math"
)

// Filter is a resampling kernel.
type Filter int

const (
	// Bilinear is the triangle filter (support 1).
	Bilinear Filter = iota
	// Bicubic is Keys' cubic convolution with a = -0.5 (support 2).
	Bicubic
)

func (f Filter) support() float64 {
	if f == Bicubic {
		return 2
	}
	return 1
}

func (f Filter) eval(x float64) float64 {
	x = math.Abs(x)
	switch f {
	case Bicubic:
		const a = -0.5
		if x < 1 {
			return ((a+2)*x-(a+3))*x*x + 1
		}
		if x < 2 {
			return (((x-5)*x+8)*x - 4) * a
		}
		return 0
	default:
		if x < 1 {
			return 1 - x
		}
		return 0
	}
}

// coeffs are the taps of a 1-D resize from in to out samples.
type coeffs struct {
	start []int       // first input index per output sample
	w     [][]float64 // normalised weights per output sample
}

func makeCoeffs(in, out int, f Filter) coeffs {
	scale := float64(in) / float64(out)
	fscale := math.Max(scale, 1)
	support := f.support() * fscale
	c := coeffs{start: make([]int, out), w: make([][]float64, out)}
	for o := 0; o < out; o++ {
		center := (float64(o) + 0.5) * scale
		lo := int(center - support + 0.5) // truncation, as in Pillow
		if lo < 0 {
			lo = 0
		}
		hi := int(center + support + 0.5)
		if hi > in {
			hi = in
		}
		w := make([]float64, hi-lo)
		var sum float64
		for j := range w {
			w[j] = f.eval((float64(j+lo) - center + 0.5) / fscale)
			sum += w[j]
		}
		if sum != 0 {
			for j := range w {
				w[j] /= sum
			}
		}
		c.start[o], c.w[o] = lo, w
	}
	return c
}

// Resizer resizes planar float32 images of a fixed geometry; it keeps its taps
// and scratch buffer, so repeated use does not allocate. Not safe for
// concurrent use.
type Resizer struct {
	c, inH, inW, outH, outW int
	h, v                    coeffs
	tmp                     []float64
}

// NewResizer prepares a C-channel inH x inW -> outH x outW resize.
func NewResizer(c, inH, inW, outH, outW int, f Filter) (*Resizer, error) {
	if c <= 0 || inH <= 0 || inW <= 0 || outH <= 0 || outW <= 0 {
		return nil, fmt.Errorf("resample: bad geometry %dx%dx%d -> %dx%d", c, inH, inW, outH, outW)
	}
	return &Resizer{
		c: c, inH: inH, inW: inW, outH: outH, outW: outW,
		h: makeCoeffs(inW, outW, f), v: makeCoeffs(inH, outH, f),
		tmp: make([]float64, inH*outW),
	}, nil
}

// Resize writes the resized planar image (C x outH x outW) into dst. Horizontal
// pass first, then vertical, accumulating in float64.
func (r *Resizer) Resize(dst, src []float32) error {
	if len(src) != r.c*r.inH*r.inW || len(dst) != r.c*r.outH*r.outW {
		return fmt.Errorf("resample: buffer sizes %d -> %d do not fit %dx%dx%d -> %dx%d",
			len(src), len(dst), r.c, r.inH, r.inW, r.outH, r.outW)
	}
	for ch := 0; ch < r.c; ch++ {
		s := src[ch*r.inH*r.inW : (ch+1)*r.inH*r.inW]
		for y := 0; y < r.inH; y++ {
			row := s[y*r.inW : (y+1)*r.inW]
			for o := 0; o < r.outW; o++ {
				var acc float64
				st := r.h.start[o]
				for j, w := range r.h.w[o] {
					acc += w * float64(row[st+j])
				}
				// Pillow stores the intermediate image in float32
				r.tmp[y*r.outW+o] = float64(float32(acc))
			}
		}
		d := dst[ch*r.outH*r.outW : (ch+1)*r.outH*r.outW]
		for o := 0; o < r.outH; o++ {
			st := r.v.start[o]
			ws := r.v.w[o]
			for x := 0; x < r.outW; x++ {
				var acc float64
				for j, w := range ws {
					acc += w * r.tmp[(st+j)*r.outW+x]
				}
				d[o*r.outW+x] = float32(acc)
			}
		}
	}
	return nil
}

// Resize is a one-shot convenience wrapper around Resizer.
func Resize(src []float32, c, inH, inW, outH, outW int, f Filter) ([]float32, error) {
	r, err := NewResizer(c, inH, inW, outH, outW, f)
	if err != nil {
		return nil, err
	}
	dst := make([]float32, c*outH*outW)
	return dst, r.Resize(dst, src)
}
