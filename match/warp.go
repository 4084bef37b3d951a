package match

import (
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"math/cmplx"

	"github.com/srdgd/srdgd/internal/resample"
)

// The alignments an embedder's metadata can ask for (srdgd.align, models/README.md
// "Other face embedders").
const (
	// alignDlib is face-api's axis-aligned dlib box (Landmarks.AlignBox), the
	// default when srdgd.align is absent.
	alignDlib = "dlib"
	// alignSimilarity5 maps five landmarks onto srdgd.align_template with the
	// least-squares similarity transform (InsightFace-style alignment).
	alignSimilarity5 = "similarity5"
)

// Five returns the five alignment points of InsightFace's template order in
// image coordinates: the eye centres on the image's left and right (means of
// 36-41 and 42-47), the nose tip (30) and the mouth corners (48, 54).
func (l *Landmarks) Five() [5][2]float64 {
	a, b := l.EyeCentres()
	return [5][2]float64{a, b, l[30], l[48], l[54]}
}

// similarity is the map w = a (z - zc) + wc of the plane written with complex
// numbers: a = s e^(i theta) holds scale and rotation.
type similarity struct{ a, zc, wc complex128 }

// fitSimilarity is the least-squares similarity transform (no reflection)
// taking src onto dst (Umeyama 1991, section II, for 2-D points): with both
// sets centred, a = sum(conj(z) w) / sum(|z|^2).
func fitSimilarity(src, dst [5][2]float64) (similarity, error) {
	var zc, wc complex128
	for i := range src {
		zc += complex(src[i][0], src[i][1])
		wc += complex(dst[i][0], dst[i][1])
	}
	zc /= complex(float64(len(src)), 0)
	wc /= complex(float64(len(dst)), 0)
	var num complex128
	var den float64
	for i := range src {
		z := complex(src[i][0], src[i][1]) - zc
		w := complex(dst[i][0], dst[i][1]) - wc
		num += cmplx.Conj(z) * w
		den += real(z)*real(z) + imag(z)*imag(z)
	}
	if !(den > 1e-12) || cmplx.IsNaN(num) || cmplx.IsInf(num) {
		return similarity{}, fmt.Errorf("alignment points are degenerate (all at one place or not finite)")
	}
	return similarity{a: num / complex(den, 0), zc: zc, wc: wc}, nil
}

// inverse maps an output point back into the source.
func (s similarity) inverse(x, y float64) (float64, float64) {
	z := (complex(x, y)-s.wc)/s.a + s.zc
	return real(z), imag(z)
}

// parseTemplate reads srdgd.align_template: five [x, y] points inside the
// size x size input (pixel centres at integer coordinates, as OpenCV's
// warpAffine and InsightFace's templates use).
func parseTemplate(s string, size int) ([5][2]float64, error) {
	var pts [][]float64
	var t [5][2]float64
	if err := json.Unmarshal([]byte(s), &pts); err != nil {
		return t, fmt.Errorf("srdgd.align_template %q is not a JSON list of points: %v", s, err)
	}
	if len(pts) != 5 {
		return t, fmt.Errorf("srdgd.align_template has %d points, want 5", len(pts))
	}
	for i, p := range pts {
		if len(p) != 2 || !(p[0] >= 0 && p[0] < float64(size) && p[1] >= 0 && p[1] < float64(size)) {
			return t, fmt.Errorf("srdgd.align_template point %d is %v, want [x, y] inside the %dx%d input", i, p, size, size)
		}
		t[i] = [2]float64{p[0], p[1]}
	}
	return t, nil
}

// regionPlanar copies r (inside the face's image) into planar RGB in [0, 1].
func regionPlanar(f EmbedInput, r image.Rectangle) []float32 {
	w, h := r.Dx(), r.Dy()
	n := w * h
	out := make([]float32, 3*n)
	if f.Planar != nil {
		pw, ph := f.Planar.W, f.Planar.H
		b := image.Rect(0, 0, pw, ph)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				si := (r.Min.Y-b.Min.Y+y)*pw + (r.Min.X - b.Min.X + x)
				for c := 0; c < 3; c++ {
					out[c*n+y*w+x] = f.Planar.Pix[c*pw*ph+si]
				}
			}
		}
		return out
	}
	rgba := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(rgba, rgba.Rect, f.Image, r.Min, draw.Src)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			p := rgba.Pix[y*rgba.Stride+4*x:]
			c := color.NRGBAModel.Convert(color.RGBA{p[0], p[1], p[2], p[3]}).(color.NRGBA)
			out[y*w+x] = float32(c.R) / 255
			out[n+y*w+x] = float32(c.G) / 255
			out[2*n+y*w+x] = float32(c.B) / 255
		}
	}
	return out
}

// warpCrop fills dst (3*size*size, planar RGB) with the face seen through s:
// output pixel (u, v) takes the source at s^-1(u, v), sampled bilinearly,
// black outside the image. Coordinates are pixel-centre (landmarks minus 0.5).
// Where the output is less than half the source's resolution, the source
// region is first shrunk with the antialiased bilinear filter so that the
// sampling does not alias. It returns the source box the output covers.
func warpCrop(f EmbedInput, s similarity, size int, dst []float32) (image.Rectangle, error) {
	b, err := f.bounds()
	if err != nil {
		return image.Rectangle{}, err
	}
	minX, minY, maxX, maxY := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, c := range [][2]float64{{-0.5, -0.5}, {float64(size) - 0.5, -0.5}, {-0.5, float64(size) - 0.5}, {float64(size) - 0.5, float64(size) - 0.5}} {
		x, y := s.inverse(c[0], c[1])
		minX, minY, maxX, maxY = math.Min(minX, x), math.Min(minY, y), math.Max(maxX, x), math.Max(maxY, y)
	}
	covered := image.Rect(int(math.Floor(minX+0.5)), int(math.Floor(minY+0.5)), int(math.Ceil(maxX+0.5)), int(math.Ceil(maxY+0.5)))
	r := covered.Inset(-1).Intersect(b)
	if r.Empty() {
		return covered, fmt.Errorf("aligned square %v does not overlap the image %v", covered, b)
	}
	src := regionPlanar(f, r)
	rw, rh := r.Dx(), r.Dy()
	// sx, sy map region pixel-centre coordinates to the (possibly shrunk) buffer
	sx, sy := 1.0, 1.0
	if k := cmplx.Abs(s.a); k < 0.5 {
		w2, h2 := max(1, int(math.Round(float64(rw)*k*1.5))), max(1, int(math.Round(float64(rh)*k*1.5)))
		small, err := resample.Resize(src, 3, rh, rw, h2, w2, resample.Bilinear)
		if err != nil {
			return covered, err
		}
		sx, sy = float64(w2)/float64(rw), float64(h2)/float64(rh)
		src, rw, rh = small, w2, h2
	}
	n := rw * rh
	on := size * size
	ox, oy := float64(r.Min.X), float64(r.Min.Y)
	for v := 0; v < size; v++ {
		for u := 0; u < size; u++ {
			x, y := s.inverse(float64(u), float64(v))
			x = (x-ox+0.5)*sx - 0.5
			y = (y-oy+0.5)*sy - 0.5
			x0, y0 := math.Floor(x), math.Floor(y)
			fx, fy := float32(x-x0), float32(y-y0)
			ix, iy := int(x0), int(y0)
			var acc [3]float32
			for _, t := range [4]struct {
				dx, dy int
				w      float32
			}{{0, 0, (1 - fx) * (1 - fy)}, {1, 0, fx * (1 - fy)}, {0, 1, (1 - fx) * fy}, {1, 1, fx * fy}} {
				px, py := ix+t.dx, iy+t.dy
				if t.w == 0 || px < 0 || py < 0 || px >= rw || py >= rh {
					continue
				}
				i := py*rw + px
				acc[0] += t.w * src[i]
				acc[1] += t.w * src[n+i]
				acc[2] += t.w * src[2*n+i]
			}
			o := v*size + u
			dst[o], dst[on+o], dst[2*on+o] = acc[0], acc[1], acc[2]
		}
	}
	return covered, nil
}
