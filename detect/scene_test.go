package detect

import (
	"testing"

	"github.com/srdgd/srdgd/detect/detecttest"
)

func pic(im *Image) *detecttest.Picture {
	return &detecttest.Picture{W: im.Width, H: im.Height, Pix: im.Pix}
}

func toImage(p *detecttest.Picture) *Image { return &Image{Width: p.W, Height: p.H, Pix: p.Pix} }

func background(w, h int, seed uint64) *Image { return toImage(detecttest.Background(w, h, seed)) }

func gaussianBlur(im *Image, sigma float64) *Image {
	out := toImage(detecttest.GaussianBlur(pic(im), sigma))
	out.Source = im.Source
	return out
}

// Ground truth for a pasted face.
type truth struct {
	// Box is where BlazeFace puts its box on the pasted face (its calibration
	// inverted); Frame is the SR framing square (the aligned 120 box).
	Box   Rect
	Frame Rect
}

// truthOf computes the expected face box from the framing square.
func truthOf(x0, y0, x1, y1 float64) truth {
	c := BlazeFaceCalibration
	side := x1 - x0
	bh := side / c.BoxSide
	fcx, fcy := (x0+x1)/2, (y0+y1)/2
	bcx, bcy := fcx-c.BoxOffX*bh, fcy-c.BoxOffY*bh
	return truth{
		Box:   Rect{X0: bcx - bh/2, Y0: bcy - bh/2, X1: bcx + bh/2, Y1: bcy + bh/2},
		Frame: Rect{X0: x0, Y0: y0, X1: x1, Y1: y1},
	}
}

// pasteFace pastes a CelebA aligned face, its 120 box side pixels wide and
// centred at (cx, cy), into dst.
func pasteFace(tb testing.TB, dst, src *Image, cx, cy, side float64) truth {
	tb.Helper()
	return truthOf(detecttest.PasteFace(tb, pic(dst), pic(src), cx, cy, side))
}

// scene pastes one CelebA face per entry of sizes (face box heights) into a
// synthetic w x h background, spread over a grid, identities taken from
// names in order.
func scene(tb testing.TB, w, h int, sizes []float64, seed uint64, names []string) (*Image, []truth) {
	tb.Helper()
	bg := background(w, h, seed)
	sides := make([]float64, len(sizes))
	for i, s := range sizes {
		sides[i] = s * BlazeFaceCalibration.BoxSide
	}
	var ts []truth
	for i, c := range detecttest.Layout(w, h, sides, seed) {
		ts = append(ts, pasteFace(tb, bg, loadCeleba(tb, names[i%len(names)]), c[0], c[1], sides[i]))
	}
	return bg, ts
}

// match pairs detections with truths greedily by IoU >= minIoU; it returns
// per-truth the matched face index (-1 if none) and the number of
// unmatched detections (false positives).
func match(faces []Detection, ts []truth, minIoU float64) (idx []int, fp int) {
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
