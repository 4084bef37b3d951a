package face

import "math"

// The direct path (config srdg.direct_side): a face whose framing square is
// large enough is not super-resolved. Its square, bicubic-upscaled from the
// frame's own pixels to 128x128 (Probe.Preview), is read as it is: on
// CelebA test faces the SR embedder reads a 25 px square that way better
// than SR x8 restores it from the 16x16 probe the square would be shrunk to
// (bench/RESULTS.md, "Direct path").
//
// A direct face is described by the scale it would have as an LR probe,
// 128/side (Shot.Run.Scale, which picks its calibration entry and
// thresholds): DirectScale rounds it down, so a square is decided by the
// setting measured on the nearest larger square (the stricter one: larger
// faces score higher against impostors too).
const (
	// MinDirectScale and MaxDirectScale bound DirectScale: 64 px and
	// larger squares count as 64 px (scale 2); squares under 21 px
	// (scale 6) are left to SR.
	MinDirectScale = 2
	MaxDirectScale = 6
	// DirectSampler is Shot.Run.Sampler of a direct face.
	DirectSampler = "direct"
)

// DirectScale is the scale of a direct face whose framing square has the
// side (frame pixels): floor(128/side), within [MinDirectScale,
// MaxDirectScale]; 0 for a side under 128/(MaxDirectScale+1) px, which
// the direct path does not take, or not a finite number.
func DirectScale(side float64) int {
	if math.IsNaN(side) || math.IsInf(side, 0) || side <= 0 {
		return 0
	}
	s := math.Floor(128 / side)
	switch {
	case s > MaxDirectScale:
		return 0
	case s < MinDirectScale:
		return MinDirectScale
	}
	return int(s)
}

// IsDirectScale is true for the scales a direct face can have.
func IsDirectScale(scale int) bool { return scale >= MinDirectScale && scale <= MaxDirectScale }
