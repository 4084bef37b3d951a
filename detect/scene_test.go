package detect

import (
	"image"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/srdgd/srdgd/internal/resample"
)

// background draws a deterministic, camera-like synthetic scene: smooth
// lighting gradients, flat and textured rectangles (walls, doors, signs),
// thin lines and sensor noise. Seeded, so tests are repeatable.
func background(w, h int, seed uint64) *Image {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	im := &Image{Width: w, Height: h, Pix: make([]byte, 3*w*h)}
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

// Ground truth for a pasted face.
type truth struct {
	// Box is where BlazeFace puts its box on the pasted face (its calibration
	// inverted); Frame is the SR framing square (the aligned 120 box).
	Box   Rect
	Frame Rect
}

// pasteFace scales a CelebA aligned image so that its 120 box becomes side
// pixels, and blends the head into dst with a feathered ellipse, the aligned
// box centre at (cx, cy).
func pasteFace(tb testing.TB, dst, src *Image, cx, cy, side float64) truth {
	tb.Helper()
	k := side / AlignedBoxSide
	w, h := max(1, int(math.Round(float64(src.Width)*k))), max(1, int(math.Round(float64(src.Height)*k)))
	pl := make([]float32, 3*src.Width*src.Height)
	cropPlanar(pl, src, image.Rect(0, 0, src.Width, src.Height))
	out, err := resample.Resize(pl, 3, src.Height, src.Width, h, w, resample.Bilinear)
	if err != nil {
		tb.Fatal(err)
	}
	kx, ky := float64(w)/float64(src.Width), float64(h)/float64(src.Height)
	// top-left of the scaled image in dst
	ox := math.Round(cx - AlignedCentreX*kx)
	oy := math.Round(cy - AlignedCentreY*ky)
	n := w * h
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			dx, dy := int(ox)+x, int(oy)+y
			if dx < 0 || dy < 0 || dx >= dst.Width || dy >= dst.Height {
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
			p := dst.Pix[3*(dy*dst.Width+dx):]
			rgb := [3]float32{out[i], out[n+i], out[2*n+i]}
			for c := 0; c < 3; c++ {
				val := float64(rgb[2-c]) * 255
				p[c] = uint8(math.Max(0, math.Min(255, math.Round((1-a)*float64(p[c])+a*val))))
			}
		}
	}
	c := BlazeFaceCalibration
	bh := side / c.BoxSide
	fcx := ox + AlignedCentreX*kx
	fcy := oy + AlignedCentreY*ky
	bcx, bcy := fcx-c.BoxOffX*bh, fcy-c.BoxOffY*bh
	return truth{
		Box:   Rect{bcx - bh/2, bcy - bh/2, bcx + bh/2, bcy + bh/2},
		Frame: Rect{fcx - side/2, fcy - side/2, fcx + side/2, fcy + side/2},
	}
}

// match pairs detections with truths greedily by IoU >= minIoU; it returns
// per-truth the matched face index (-1 if none) and the number of
// unmatched detections (false positives).
func match(faces []Face, ts []truth, minIoU float64) (idx []int, fp int) {
	idx = make([]int, len(ts))
	used := make([]bool, len(faces))
	for i, t := range ts {
		idx[i] = -1
		best := minIoU
		for j, f := range faces {
			if used[j] {
				continue
			}
			if v := IoU(f.Box, t.Box); v >= best {
				best, idx[i] = v, j
			}
		}
		if idx[i] >= 0 {
			used[idx[i]] = true
		}
	}
	for _, u := range used {
		if !u {
			fp++
		}
	}
	return idx, fp
}

// gaussianBlur returns a copy of im blurred with a separable Gaussian of the
// given sigma (pixels), edges replicated.
func gaussianBlur(im *Image, sigma float64) *Image {
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
	w, h := im.Width, im.Height
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
	out := &Image{Width: w, Height: h, Pix: make([]byte, 3*w*h), Source: im.Source}
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

// scene pastes one CelebA face per entry of sizes (face box heights) into a
// synthetic w x h background, spread over a grid, identities taken from
// names in order.
func scene(tb testing.TB, w, h int, sizes []float64, seed uint64, names []string) (*Image, []truth) {
	tb.Helper()
	bg := background(w, h, seed)
	cols := int(math.Ceil(math.Sqrt(float64(len(sizes)) * float64(w) / float64(h))))
	rows := (len(sizes) + cols - 1) / cols
	cw, ch := float64(w)/float64(cols), float64(h)/float64(rows)
	rng := rand.New(rand.NewPCG(seed, 7))
	var ts []truth
	for i, s := range sizes {
		side := s * BlazeFaceCalibration.BoxSide
		// jitter inside the cell, keeping the framing square inside it
		jx := (cw - side) * (rng.Float64() - 0.5) * 0.8
		jy := (ch - side) * (rng.Float64() - 0.5) * 0.8
		cx := cw*(float64(i%cols)+0.5) + math.Max(0, jx)*sign(jx)
		cy := ch*(float64(i/cols)+0.5) + math.Max(0, jy)*sign(jy)
		ts = append(ts, pasteFace(tb, bg, loadCeleba(tb, names[i%len(names)]), cx, cy, side))
	}
	return bg, ts
}

func sign(v float64) float64 {
	if v < 0 {
		return -1
	}
	return 1
}
