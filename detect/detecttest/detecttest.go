// Package detecttest builds test scenes for the detectors: a seeded,
// camera-like synthetic background with real CelebA aligned faces pasted at
// known places and sizes, read in place from the shared data folder (CelebA
// is research-only: never copy its images into the repository). The detect
// tests and bench/detect share it.
package detecttest

import (
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/srdgd/srdgd/internal/faceimg"
	"github.com/srdgd/srdgd/internal/resample"
)

// Picture is a packed BGR24 image (the layout of detect.Image).
type Picture struct {
	W, H int
	Pix  []byte
}

// The SR framing on CelebA aligned images: the 120 box centred at (89, 116).
const (
	alignedBoxSide = 120.0
	alignedCentreX = 89.0
	alignedCentreY = 116.0
)

// Background draws a deterministic, camera-like synthetic scene: smooth
// lighting gradients, flat and textured rectangles (walls, doors, signs),
// thin lines and sensor noise. Seeded, so tests are repeatable.
func Background(w, h int, seed uint64) *Picture {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	im := &Picture{W: w, H: h, Pix: make([]byte, 3*w*h)}
	f := make([]float64, 3*w*h)
	base := [3]float64{60 + 120*rng.Float64(), 60 + 120*rng.Float64(), 60 + 120*rng.Float64()}
	gx, gy := rng.Float64()*0.15, rng.Float64()*0.15
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			l := 1 + gx*math.Sin(float64(x)/float64(w)*math.Pi) - gy*float64(y)/float64(h)
			for c := 0; c < 3; c++ {
				f[3*(y*w+x)+c] = base[c] * l
			}
		}
	}
	for i := 0; i < 25; i++ {
		x0, y0 := rng.IntN(w), rng.IntN(h)
		x1, y1 := min(w, x0+8+rng.IntN(w/3)), min(h, y0+8+rng.IntN(h/3))
		col := [3]float64{255 * rng.Float64(), 255 * rng.Float64(), 255 * rng.Float64()}
		stripes := rng.IntN(3) == 0
		period := 3 + rng.IntN(12)
		for y := y0; y < y1; y++ {
			for x := x0; x < x1; x++ {
				a := 0.85
				if stripes && (x/period)%2 == 0 {
					a = 0.35
				}
				for c := 0; c < 3; c++ {
					p := &f[3*(y*w+x)+c]
					*p = (1-a)**p + a*col[c]
				}
			}
		}
	}
	for i := 0; i < 15; i++ {
		x0, y0 := rng.Float64()*float64(w), rng.Float64()*float64(h)
		ang := rng.Float64() * math.Pi
		v := 255 * rng.Float64()
		for s := 0.0; s < float64(w)/2; s++ {
			x, y := int(x0+s*math.Cos(ang)), int(y0+s*math.Sin(ang))
			if x < 0 || y < 0 || x >= w || y >= h {
				break
			}
			for c := 0; c < 3; c++ {
				f[3*(y*w+x)+c] = v
			}
		}
	}
	for i, v := range f {
		v += rng.NormFloat64() * 3
		im.Pix[i] = uint8(math.Max(0, math.Min(255, math.Round(v))))
	}
	return im
}

// PasteFace scales a CelebA aligned picture so that its 120 box becomes side
// pixels and blends the head into dst with a feathered ellipse, the box centre
// at (cx, cy). It returns the box (the SR framing square) in dst coordinates.
func PasteFace(tb testing.TB, dst, src *Picture, cx, cy, side float64) (x0, y0, x1, y1 float64) {
	tb.Helper()
	k := side / alignedBoxSide
	w, h := max(1, int(math.Round(float64(src.W)*k))), max(1, int(math.Round(float64(src.H)*k)))
	n0 := src.W * src.H
	pl := make([]float32, 3*n0)
	for i := 0; i < n0; i++ {
		pl[i] = float32(src.Pix[3*i+2]) / 255
		pl[n0+i] = float32(src.Pix[3*i+1]) / 255
		pl[2*n0+i] = float32(src.Pix[3*i]) / 255
	}
	out, err := resample.Resize(pl, 3, src.H, src.W, h, w, resample.Bilinear)
	if err != nil {
		tb.Fatal(err)
	}
	kx, ky := float64(w)/float64(src.W), float64(h)/float64(src.H)
	ox := math.Round(cx - alignedCentreX*kx)
	oy := math.Round(cy - alignedCentreY*ky)
	n := w * h
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			dx, dy := int(ox)+x, int(oy)+y
			if dx < 0 || dy < 0 || dx >= dst.W || dy >= dst.H {
				continue
			}
			// head ellipse in aligned coordinates, feathered over ~8 aligned px
			u, v := (float64(x)+0.5)/kx, (float64(y)+0.5)/ky
			e := math.Hypot((u-89)/66, (v-118)/88)
			a := math.Max(0, math.Min(1, (1-e)*88/8))
			if a == 0 {
				continue
			}
			i := y*w + x
			p := dst.Pix[3*(dy*dst.W+dx):]
			rgb := [3]float32{out[i], out[n+i], out[2*n+i]}
			for c := 0; c < 3; c++ {
				val := float64(rgb[2-c]) * 255
				p[c] = uint8(math.Max(0, math.Min(255, math.Round((1-a)*float64(p[c])+a*val))))
			}
		}
	}
	fcx, fcy := ox+alignedCentreX*kx, oy+alignedCentreY*ky
	return fcx - side/2, fcy - side/2, fcx + side/2, fcy + side/2
}

// Layout spreads n framing squares of the given sides over a w x h picture,
// one per grid cell with seeded jitter, and returns their centres.
func Layout(w, h int, sides []float64, seed uint64) [][2]float64 {
	n := len(sides)
	cols := int(math.Ceil(math.Sqrt(float64(n) * float64(w) / float64(h))))
	rows := (n + cols - 1) / cols
	cw, ch := float64(w)/float64(cols), float64(h)/float64(rows)
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([][2]float64, n)
	for i, side := range sides {
		jx := math.Max(0, cw-side) * (rng.Float64() - 0.5) * 0.8
		jy := math.Max(0, ch-side) * (rng.Float64() - 0.5) * 0.8
		out[i] = [2]float64{cw*(float64(i%cols)+0.5) + jx, ch*(float64(i/cols)+0.5) + jy}
	}
	return out
}

// GaussianBlur returns a copy of im blurred with a separable Gaussian of the
// given sigma (pixels), edges replicated.
func GaussianBlur(im *Picture, sigma float64) *Picture {
	rad := int(math.Ceil(3 * sigma))
	k := make([]float64, 2*rad+1)
	var s float64
	for i := range k {
		x := float64(i - rad)
		k[i] = math.Exp(-x * x / (2 * sigma * sigma))
		s += k[i]
	}
	for i := range k {
		k[i] /= s
	}
	w, h := im.W, im.H
	tmp := make([]float64, 3*w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			for c := 0; c < 3; c++ {
				var v float64
				for i, kv := range k {
					xx := min(max(x+i-rad, 0), w-1)
					v += kv * float64(im.Pix[3*(y*w+xx)+c])
				}
				tmp[3*(y*w+x)+c] = v
			}
		}
	}
	out := &Picture{W: w, H: h, Pix: make([]byte, 3*w*h)}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			for c := 0; c < 3; c++ {
				var v float64
				for i, kv := range k {
					yy := min(max(y+i-rad, 0), h-1)
					v += kv * tmp[3*(yy*w+x)+c]
				}
				out.Pix[3*(y*w+x)+c] = uint8(math.Max(0, math.Min(255, math.Round(v))))
			}
		}
	}
	return out
}

// CelebADir is the CelebA aligned image folder ($SRDGD_TEST_CELEBA_ALIGNED, else
// ../shared/data/celeba-aligned/img_align_celeba above the repository); the
// test is skipped, loudly, when it is missing.
func CelebADir(tb testing.TB) string {
	tb.Helper()
	d := os.Getenv("SRDGD_TEST_CELEBA_ALIGNED")
	if d == "" {
		// walk up from the package folder to the repository's parent
		wd, _ := os.Getwd()
		for dir := wd; ; dir = filepath.Dir(dir) {
			c := filepath.Join(dir, "..", "shared", "data", "celeba-aligned", "img_align_celeba")
			if st, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil && !st.IsDir() {
				d = c
				break
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	if st, err := os.Stat(d); d == "" || err != nil || !st.IsDir() {
		tb.Skipf("SKIPPING: CelebA aligned images not found at %q (set SRDGD_TEST_CELEBA_ALIGNED): "+
			"the detection tests on real faces did not run", d)
	}
	return d
}

// CelebANames returns n image names in name order, from skip on.
func CelebANames(tb testing.TB, skip, n int) []string {
	tb.Helper()
	d := CelebADir(tb)
	ents, err := os.ReadDir(d)
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if filepath.Ext(e.Name()) == ".jpg" {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	if skip+n > len(names) {
		tb.Fatalf("want images %d..%d, the folder has %d", skip, skip+n, len(names))
	}
	return names[skip : skip+n]
}

// LoadCelebA reads one image as BGR.
func LoadCelebA(tb testing.TB, name string) *Picture {
	tb.Helper()
	img, err := faceimg.Load(filepath.Join(CelebADir(tb), name))
	if err != nil {
		tb.Fatal(err)
	}
	return FromGo(img)
}

// FromGo converts a Go image to BGR.
func FromGo(img image.Image) *Picture {
	b := img.Bounds()
	p := &Picture{W: b.Dx(), H: b.Dy(), Pix: make([]byte, 3*b.Dx()*b.Dy())}
	i := 0
	if m, ok := img.(*image.YCbCr); ok { // JPEG, without per-pixel interface calls
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				yi, ci := m.YOffset(x, y), m.COffset(x, y)
				r, g, bb := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				p.Pix[i], p.Pix[i+1], p.Pix[i+2] = bb, g, r
				i += 3
			}
		}
		return p
	}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			p.Pix[i], p.Pix[i+1], p.Pix[i+2] = c.B, c.G, c.R
			i += 3
		}
	}
	return p
}
