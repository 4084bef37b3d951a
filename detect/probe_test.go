package detect

import (
	"context"
	"image"
	"math"
	"sort"
	"testing"

	"github.com/srdgd/srdgd/internal/resample"
)

// trainingLR makes the LR image the SR models were trained on from a CelebA
// aligned image: the 120 box (columns 29..148, rows 56..175) resized to 128
// with bicubic, then antialiased bilinear down to lr (SRDG.md section 2).
func trainingLR(tb testing.TB, img *Image, lr int) []float32 {
	tb.Helper()
	box := make([]float32, 3*120*120)
	cropPlanar(box, img, image.Rect(29, 56, 149, 176))
	hr, err := resample.Resize(box, 3, 120, 120, 128, 128, resample.Bicubic)
	if err != nil {
		tb.Fatal(err)
	}
	for i, v := range hr { // the training crop is 8-bit: clip as the PNG would
		hr[i] = float32(math.Max(0, math.Min(1, float64(v))))
	}
	out, err := resample.Resize(hr, 3, 128, 128, lr, lr, resample.Bilinear)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func psnr(a, b []float32) float64 {
	var se float64
	for i := range a {
		d := float64(a[i] - b[i])
		se += d * d
	}
	mse := se / float64(len(a))
	return 10 * math.Log10(1/math.Max(mse, 1e-12))
}

func correlation(a, b []float32) float64 {
	var ma, mb float64
	for i := range a {
		ma += float64(a[i])
		mb += float64(b[i])
	}
	n := float64(len(a))
	ma, mb = ma/n, mb/n
	var sab, saa, sbb float64
	for i := range a {
		x, y := float64(a[i])-ma, float64(b[i])-mb
		sab += x * y
		saa += x * x
		sbb += y * y
	}
	return sab / math.Sqrt(saa*sbb)
}

// The probe cut around a detected CelebA aligned face must be the LR image
// the SR models were trained on: same framing, same downscale. The exact box
// gives > 40 dB; shifting it by 1, 2, 3, 4 px (of 120) gives median 34.7,
// 28.7, 25.2, 22.8 dB at 16x16. BlazeFace's landmarks scatter by ~4 px around
// CelebA's own alignment, so the thresholds are: median PSNR >= 25 dB (16x16)
// / 28 dB (8x8), median correlation >= 0.97 / 0.985, every image >= 15 dB,
// and a control framing 6 px too low must score at least 3 dB worse.
// Measured (images 2000..2039): 16x16 median 26.3 dB, correlation 0.981;
// 8x8 median 29.3 dB, correlation 0.990.
func TestProbeMatchesTrainingCrop(t *testing.T) {
	names := celebaNames(t, 2000, 40)
	b := newBlazeFace(t, BlazeFaceOptions{})
	for _, tc := range []struct {
		lr             int
		minPSNR, minCC float64
	}{{16, 25, 0.97}, {8, 28, 0.985}} {
		lr := tc.lr
		pr, err := NewProber(ProbeOptions{LRSize: lr, })
		if err != nil {
			t.Fatal(err)
		}
		var ps, cs, shifted []float64
		for _, nm := range names {
			img := loadCeleba(t, nm)
			res, err := b.Detect(context.Background(), img)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Faces) == 0 {
				t.Errorf("%s: no face found on an aligned CelebA image", nm)
				continue
			}
			crop, err := pr.Cut(img, res.Faces[0], b.Calibration())
			if err != nil {
				t.Fatal(err)
			}
			ref := trainingLR(t, img, lr)
			ps = append(ps, psnr(crop.LR.Pix, ref))
			cs = append(cs, correlation(crop.LR.Pix, ref))
			if crop.Upscaled || crop.LR.W != lr {
				t.Errorf("%s: %dx%d probe upscaled=%v from a %d px crop", nm, crop.LR.W, crop.LR.H, crop.Upscaled, crop.Side)
			}
			// control: the same face framed 6 px (5 % of the box) lower
			f := res.Faces[0]
			for k := range f.Landmarks {
				f.Landmarks[k].Y += 6
			}
			sc, err := pr.Cut(img, f, b.Calibration())
			if err != nil {
				t.Fatal(err)
			}
			shifted = append(shifted, psnr(sc.LR.Pix, ref))
		}
		sort.Float64s(ps)
		sort.Float64s(cs)
		sort.Float64s(shifted)
		t.Logf("lr %d: PSNR vs training LR min %.1f median %.1f dB, correlation min %.3f median %.4f; framed 6 px low: median %.1f dB",
			lr, ps[0], ps[len(ps)/2], cs[0], cs[len(cs)/2], shifted[len(shifted)/2])
		if ps[len(ps)/2] < tc.minPSNR || cs[len(cs)/2] < tc.minCC || ps[0] < 15 {
			t.Errorf("lr %d: probe does not match the training crop: median PSNR %.1f dB (want >= %g), median correlation %.4f (want >= %g), min PSNR %.1f (want >= 15)",
				lr, ps[len(ps)/2], tc.minPSNR, cs[len(cs)/2], tc.minCC, ps[0])
		}
		if shifted[len(shifted)/2] >= ps[len(ps)/2]-3 {
			t.Errorf("lr %d: the control framing (6 px low) scores %.1f dB, not clearly below %.1f: the test cannot tell framings apart", lr, shifted[len(shifted)/2], ps[len(ps)/2])
		}
	}
}
