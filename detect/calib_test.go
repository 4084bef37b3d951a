package detect

import (
	"context"
	"math"
	"testing"
)

func TestSimilarity(t *testing.T) {
	p := BlazeFaceCalibration.Landmarks[:]
	for _, tc := range []struct{ s, th, tx, ty float64 }{
		{1, 0, 0, 0}, {0.2, 0.3, 400, 120}, {3, -0.5, -10, 5}, {0.05, math.Pi / 2, 1000, 700},
	} {
		q := make([]Point, len(p))
		c, sn := math.Cos(tc.th)*tc.s, math.Sin(tc.th)*tc.s
		for i, v := range p {
			q[i] = Point{X: c*v.X - sn*v.Y + tc.tx, Y: sn*v.X + c*v.Y + tc.ty}
		}
		s, th, tx, ty, ok := similarity(p, q, BlazeFaceCalibration.Weights[:])
		if !ok || math.Abs(s-tc.s) > 1e-9*tc.s || math.Abs(th-tc.th) > 1e-9 || math.Abs(tx-tc.tx) > 1e-6 || math.Abs(ty-tc.ty) > 1e-6 {
			t.Errorf("%+v: fitted s %g th %g t %g,%g ok %v", tc, s, th, tx, ty, ok)
		}
		// the framing of such a face is the aligned box mapped through the transform
		var f Detection
		f.HasLandmarks = true
		copy(f.Landmarks[:], q)
		fr := BlazeFaceCalibration.Frame(f, true)
		wantC := Point{X: c*AlignedCentreX - sn*AlignedCentreY + tc.tx, Y: sn*AlignedCentreX + c*AlignedCentreY + tc.ty}
		if math.Hypot(fr.Centre.X-wantC.X, fr.Centre.Y-wantC.Y) > 1e-6 || math.Abs(fr.Side-120*tc.s) > 1e-6 || math.Abs(fr.Angle-tc.th) > 1e-9 {
			t.Errorf("%+v: framing %+v, want centre %v side %g", tc, fr, wantC, 120*tc.s)
		}
	}
	if _, _, _, _, ok := similarity(p, make([]Point, len(p)), BlazeFaceCalibration.Weights[:]); ok {
		t.Error("all landmarks in one point fitted")
	}
}

// The calibration constants (measured on images 0..399) must hold on other
// CelebA aligned images (400..459): mean eyes and mouth within 1.2 px, mean
// box height within 2 %, for BlazeFace; Haar's converted box within 3 px and
// 4 %.
func TestCalibrationMatchesCelebA(t *testing.T) {
	names := celebaNames(t, 400, 60)
	// aligned faces are ~96 px: skip the small-face levels (the keypoints
	// come from the refinement windows either way)
	b := newBlazeFace(t, BlazeFaceOptions{Search: Search{MinFacePx: 48}})
	h, err := NewHaar(HaarOptions{Search: Search{MinFacePx: 48}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var lm [NumLandmarks]Point
	var bh, hh, hcx, hcy float64
	var n, nh int
	for _, nm := range names {
		img := loadCeleba(t, nm)
		res, err := b.Detect(context.Background(), img)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Faces) > 0 {
			n++
			for k := range lm {
				lm[k].X += res.Faces[0].Landmarks[k].X
				lm[k].Y += res.Faces[0].Landmarks[k].Y
			}
			bh += res.Faces[0].Box.H()
		}
		hr, err := h.Detect(context.Background(), img)
		if err != nil {
			t.Fatal(err)
		}
		if len(hr.Faces) > 0 {
			f := hr.Faces[0]
			for _, g := range hr.Faces {
				if g.Box.H() > f.Box.H() {
					f = g
				}
			}
			nh++
			hh += f.Box.H()
			hcx += f.Box.Centre().X
			hcy += f.Box.Centre().Y
		}
	}
	if n < 59 || nh < 54 {
		t.Fatalf("BlazeFace found %d, Haar %d of %d aligned faces", n, nh, len(names))
	}
	c := BlazeFaceCalibration
	for _, k := range []int{RightEye, LeftEye, Mouth} {
		m := Point{X: lm[k].X / float64(n), Y: lm[k].Y / float64(n)}
		if d := math.Hypot(m.X-c.Landmarks[k].X, m.Y-c.Landmarks[k].Y); d > 1.2 {
			t.Errorf("landmark %d: mean %.2f,%.2f is %.2f px from the calibration %.2f,%.2f", k, m.X, m.Y, d, c.Landmarks[k].X, c.Landmarks[k].Y)
		}
	}
	wantH := AlignedBoxSide / c.BoxSide
	if m := bh / float64(n); math.Abs(m/wantH-1) > 0.02 {
		t.Errorf("BlazeFace box height %.2f, calibration says %.2f", m, wantH)
	}
	// Haar boxes are converted to BlazeFace's convention
	wantCX, wantCY := AlignedCentreX-c.BoxOffX*wantH, AlignedCentreY-c.BoxOffY*wantH
	if m := hh / float64(nh); math.Abs(m/wantH-1) > 0.04 {
		t.Errorf("Haar box height %.2f after conversion, want %.2f", m, wantH)
	}
	if d := math.Hypot(hcx/float64(nh)-wantCX, hcy/float64(nh)-wantCY); d > 3 {
		t.Errorf("Haar box centre %.2f,%.2f after conversion, want %.2f,%.2f", hcx/float64(nh), hcy/float64(nh), wantCX, wantCY)
	}
}
