package detect

import (
	"math"

	"github.com/srdgd/srdgd/face"
)

// The SR framing (SRDG.md section 2, models/data/crop.py): on a CelebA aligned
// image (178x218) the 120x120 box with columns 29..148 and rows 56..175,
// continuous centre (89, 116), resized to 128x128.
const (
	AlignedBoxSide = 120.0
	AlignedCentreX = 89.0
	AlignedCentreY = 116.0
)

// Calibration maps a detector's output to the square in the frame that
// corresponds to the SR framing (the aligned 120 box), measured by running the
// detector on CelebA aligned images (TestCalibrationMatchesCelebA checks the
// numbers against a fresh measurement on other images).
type Calibration struct {
	// From the box alone: side = BoxSide * box height, centre = box centre +
	// (BoxOffX, BoxOffY) * box height.
	BoxSide, BoxOffX, BoxOffY float64
	// Landmarks are where the detector puts its keypoints on an average
	// aligned image (continuous aligned coordinates), and Weights how much each
	// counts in the fit; all zero when the detector has no landmarks.
	Landmarks [NumLandmarks]Point
	Weights   [NumLandmarks]float64
}

// BlazeFaceCalibration: mean BlazeFace keypoints and box on the first 400
// CelebA aligned images (by name) of /work/shared/data/celeba-aligned, found
// by the default detector (pyramid, then refinement with the mirrored look).
// The eyes vary by 2.6 px RMS around these means, nose 9.0, mouth 5.1, ears
// 14: the fit uses the eyes and the mouth
// (the nose moves with the head's yaw, the ears are often hidden), which
// frames the face closest to CelebA's own alignment (TestProbeMatchesTrainingCrop).
var BlazeFaceCalibration = Calibration{
	BoxSide: 1.254, BoxOffX: -0.009, BoxOffY: -0.186,
	Landmarks: [NumLandmarks]Point{{X: 69.57, Y: 113.44}, {X: 108.64, Y: 113.57}, {X: 88.36, Y: 137.31}, {X: 88.65, Y: 156.33}, {X: 49.60, Y: 120.64}, {X: 130.74, Y: 120.88}},
	Weights:   [NumLandmarks]float64{1, 1, 0, 1, 0, 0},
}

// HaarCalibration: Haar boxes are converted to BlazeFace's box convention
// when detected (haarToFace), so only the box part applies.
var HaarCalibration = Calibration{
	BoxSide: BlazeFaceCalibration.BoxSide, BoxOffX: BlazeFaceCalibration.BoxOffX, BoxOffY: BlazeFaceCalibration.BoxOffY,
}

// haarToFace maps a haarcascade_frontalface_default box to BlazeFace's box
// convention (so Face.Box means the same for both detectors): on 285 of the
// first 300 CelebA aligned images Haar's box is 103.37 px high centred at
// (88.89, 123.78); BlazeFace's (refined) is 95.69 px at (89.88, 133.79).
var haarToFace = struct{ scale, offX, offY float64 }{scale: 0.9257, offX: 0.0096, offY: 0.0968}

// Frame returns the SR framing of a detection. With landmarks it fits a
// similarity transform (scale, rotation, shift; least squares, Umeyama 1991)
// from the calibration's mean landmarks to the detected ones and maps the
// aligned box through it; without, it scales and shifts the box. rotate keeps
// the fitted angle; otherwise the crop stays upright (its centre still comes
// from the full fit).
func (c Calibration) Frame(f Detection, rotate bool) face.Framing {
	if f.HasLandmarks {
		if s, th, tx, ty, ok := similarity(c.Landmarks[:], f.Landmarks[:], c.Weights[:]); ok {
			cs, sn := math.Cos(th)*s, math.Sin(th)*s
			fr := face.Framing{
				Centre:   Point{X: cs*AlignedCentreX - sn*AlignedCentreY + tx, Y: sn*AlignedCentreX + cs*AlignedCentreY + ty},
				Side:     AlignedBoxSide * s,
				Angle:    th,
				FromEyes: true,
			}
			if !rotate {
				fr.Angle = 0
			}
			return fr
		}
	}
	h := f.Box.H()
	cen := f.Box.Centre()
	return face.Framing{Centre: Point{X: cen.X + c.BoxOffX*h, Y: cen.Y + c.BoxOffY*h}, Side: c.BoxSide * h}
}

// similarity finds s, th, (tx, ty) minimising sum w_i |s R(th) p_i + t - q_i|^2.
func similarity(p, q []Point, w []float64) (s, th, tx, ty float64, ok bool) {
	var sw, mpx, mpy, mqx, mqy float64
	for i := range p {
		sw += w[i]
		mpx += w[i] * p[i].X
		mpy += w[i] * p[i].Y
		mqx += w[i] * q[i].X
		mqy += w[i] * q[i].Y
	}
	if sw <= 0 {
		return 0, 0, 0, 0, false
	}
	mpx, mpy, mqx, mqy = mpx/sw, mpy/sw, mqx/sw, mqy/sw
	var a, b, pp float64
	for i := range p {
		px, py := p[i].X-mpx, p[i].Y-mpy
		qx, qy := q[i].X-mqx, q[i].Y-mqy
		a += w[i] * (px*qx + py*qy)
		b += w[i] * (px*qy - py*qx)
		pp += w[i] * (px*px + py*py)
	}
	if pp == 0 || (a == 0 && b == 0) {
		return 0, 0, 0, 0, false
	}
	th = math.Atan2(b, a)
	s = math.Hypot(a, b) / pp
	cs, sn := math.Cos(th)*s, math.Sin(th)*s
	return s, th, mqx - (cs*mpx - sn*mpy), mqy - (sn*mpx + cs*mpy), true
}
