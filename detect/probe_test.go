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
// 28.7, 25.2, 22.8 dB at 16x16. BlazeFace's keypoints and CelebA's own
// alignment landmarks differ per face by a few pixels, so the thresholds are:
// median PSNR >= 24 dB (16x16) / 27.5 dB (8x8), i.e. about a 3 px framing
// error of 120; median correlation >= 0.96 / 0.98; every image >= 12 dB; and
// a control framing 6 px too low must score at least 3 dB worse. Measured
// (images 2000..2039): 16x16 median 25.0 dB, correlation 0.966; 8x8 median
// 29.0 dB, correlation 0.985.
func TestProbeMatchesTrainingCrop(t *testing.T) {
	names := celebaNames(t, 2000, 40)
	// aligned faces are ~96 px: skip the small-face levels (the keypoints
	// come from the refinement windows either way)
	b := newBlazeFace(t, BlazeFaceOptions{Search: Search{MinFacePx: 48}})
	var imgs []*Image
	var faces []Detection
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
		imgs, faces = append(imgs, img), append(faces, res.Faces[0])
	}
	for _, tc := range []struct {
		lr             int
		minPSNR, minCC float64
	}{{16, 24, 0.96}, {8, 27.5, 0.98}} {
		lr := tc.lr
		pr, err := NewProber(ProbeOptions{LRSize: lr})
		if err != nil {
			t.Fatal(err)
		}
		var ps, cs, shifted []float64
		for i, img := range imgs {
			crop, err := pr.Cut(img, faces[i], b.Calibration())
			if err != nil {
				t.Fatal(err)
			}
			ref := trainingLR(t, img, lr)
			ps = append(ps, psnr(crop.LR.Pix, ref))
			cs = append(cs, correlation(crop.LR.Pix, ref))
			if crop.Upscaled || crop.LR.W != lr || !crop.Framing.FromEyes {
				t.Errorf("image %d: %dx%d probe upscaled=%v from a %d px crop, from eyes %v", i, crop.LR.W, crop.LR.H, crop.Upscaled, crop.Side, crop.Framing.FromEyes)
			}
			// control: the same face framed 6 px (5 % of the box) lower
			f := faces[i]
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
		if ps[len(ps)/2] < tc.minPSNR || cs[len(cs)/2] < tc.minCC || ps[0] < 12 {
			t.Errorf("lr %d: probe does not match the training crop: median PSNR %.1f dB (want >= %g), median correlation %.4f (want >= %g), min PSNR %.1f (want >= 12)",
				lr, ps[len(ps)/2], tc.minPSNR, cs[len(cs)/2], tc.minCC, ps[0])
		}
		if shifted[len(shifted)/2] >= ps[len(ps)/2]-3 {
			t.Errorf("lr %d: the control framing (6 px low) scores %.1f dB, not clearly below %.1f: the test cannot tell framings apart", lr, shifted[len(shifted)/2], ps[len(ps)/2])
		}
	}
}

// rotate returns img rotated by ang radians about its centre (bilinear,
// edges replicated).
func rotate(img *Image, ang float64) *Image {
	out := &Image{Width: img.Width, Height: img.Height, Pix: make([]byte, len(img.Pix))}
	cx, cy := float64(img.Width)/2, float64(img.Height)/2
	cs, sn := math.Cos(ang), math.Sin(ang)
	for y := 0; y < img.Height; y++ {
		for x := 0; x < img.Width; x++ {
			u, v := float64(x)+0.5-cx, float64(y)+0.5-cy
			// inverse rotation: where this output pixel comes from
			sx, sy := cs*u+sn*v+cx-0.5, -sn*u+cs*v+cy-0.5
			r, g, b := bilinearBGR(img, sx, sy)
			p := out.Pix[3*(y*img.Width+x):]
			p[0], p[1], p[2] = uint8(b*255+0.5), uint8(g*255+0.5), uint8(r*255+0.5)
		}
	}
	return out
}

// A face rolled by 20 degrees is cut level again: its probe matches the
// probe of the upright face (>= 22 dB; measured 23.3..31.6 on these six),
// and clearly better than cutting it upright (measured 13.8..18.5 dB).
func TestProbeLevelsRolledFace(t *testing.T) {
	names := celebaNames(t, 3700, 6)
	b := newBlazeFace(t, BlazeFaceOptions{Search: Search{MinFacePx: 40}})
	level, err := NewProber(ProbeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	upright, err := NewProber(ProbeOptions{NoRotate: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, nm := range names {
		img := background(240, 240, 3)
		pasteFace(t, img, loadCeleba(t, nm), 120, 120, 100)
		rolled := rotate(img, 20*math.Pi/180)
		face := func(im *Image) Detection {
			res, err := b.Detect(context.Background(), im)
			if err != nil || len(res.Faces) == 0 {
				t.Fatalf("%s: no face (%v)", nm, err)
			}
			return res.Faces[0]
		}
		cut := func(im *Image, f Detection, pr *Prober) *Crop {
			c, err := pr.Cut(im, f, b.Calibration())
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		f0, f1 := face(img), face(rolled)
		ref, lv, up := cut(img, f0, level), cut(rolled, f1, level), cut(rolled, f1, upright)
		// the face itself may be a little tilted: compare the two fits
		a0, a1 := b.Calibration().Frame(f0, true).Angle, b.Calibration().Frame(f1, true).Angle
		if deg := (a1 - a0) * 180 / math.Pi; math.Abs(deg-20) > 3 {
			t.Errorf("%s: the fitted roll changed by %.1f degrees, want about 20", nm, deg)
		}
		pl, pu := psnr(lv.LR.Pix, ref.LR.Pix), psnr(up.LR.Pix, ref.LR.Pix)
		t.Logf("%s: levelled probe %.1f dB, upright cut %.1f dB vs the upright face's probe", nm, pl, pu)
		if pl < 22 || pl < pu+3 {
			t.Errorf("%s: levelled probe %.1f dB (want >= 22 and 3 dB above the unrotated cut's %.1f)", nm, pl, pu)
		}
	}
}

// A face smaller than the probe is cut anyway, and the probe says so.
func TestProbeUpscaledFlag(t *testing.T) {
	img := background(64, 64, 4)
	f := Detection{Box: Rect{X0: 30, Y0: 30, X1: 40, Y1: 40}, Score: 0.9}
	for _, tc := range []struct {
		lr   int
		want bool
	}{{16, true}, {8, false}} {
		pr, err := NewProber(ProbeOptions{LRSize: tc.lr})
		if err != nil {
			t.Fatal(err)
		}
		c, err := pr.Cut(img, f, BlazeFaceCalibration)
		if err != nil {
			t.Fatal(err)
		}
		// a 10 px box frames a 12.5 px square: fewer pixels than 16, more than 8
		if c.Side != 13 || c.Upscaled != tc.want || c.LR.W != tc.lr || c.Framing.FromEyes {
			t.Errorf("lr %d: side %d upscaled %v lr %d from eyes %v", tc.lr, c.Side, c.Upscaled, c.LR.W, c.Framing.FromEyes)
		}
	}
	// a face at the frame's corner is cut with replicated edges, not refused
	pr, _ := NewProber(ProbeOptions{})
	if _, err := pr.Cut(img, Detection{Box: Rect{X0: -5, Y0: -5, X1: 15, Y1: 15}}, BlazeFaceCalibration); err != nil {
		t.Errorf("corner face: %v", err)
	}
}
