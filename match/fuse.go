package match

import (
	"fmt"
	"math"
)

// Fuse combines descriptors of one person (the shots of a track, or
// posterior SR samples of one shot) into one: the weighted mean of the
// L2-normalised descriptors, normalised again, so its cosine to a gallery
// descriptor is a similarity like any other. weights are the shots'
// qualities (nil: equal); a shot of weight 0 takes no part. On CelebA test
// probes from 16x16 this rule and the mean of the shots' similarities were
// compared in bench/RESULTS.md ("Multi-shot").
func Fuse(descs [][]float32, weights []float64) ([]float32, error) {
	if len(descs) == 0 {
		return nil, fmt.Errorf("fuse: no descriptors")
	}
	if weights != nil && len(weights) != len(descs) {
		return nil, fmt.Errorf("fuse: %d weights for %d descriptors", len(weights), len(descs))
	}
	dim := len(descs[0])
	acc := make([]float64, dim)
	var total float64
	for i, d := range descs {
		if len(d) != dim || dim == 0 {
			return nil, fmt.Errorf("fuse: descriptor %d has %d values, descriptor 0 %d", i, len(d), dim)
		}
		w := 1.0
		if weights != nil {
			w = weights[i]
		}
		if math.IsNaN(w) || math.IsInf(w, 0) || w < 0 {
			return nil, fmt.Errorf("fuse: weight %d is %v, want a finite value >= 0", i, w)
		}
		if w == 0 {
			continue
		}
		var n float64
		for _, v := range d {
			n += float64(v) * float64(v)
		}
		n = math.Sqrt(n)
		if n == 0 || math.IsNaN(n) || math.IsInf(n, 0) {
			return nil, fmt.Errorf("fuse: descriptor %d has norm %v", i, n)
		}
		for j, v := range d {
			acc[j] += w * float64(v) / n
		}
		total += w
	}
	if total == 0 {
		return nil, fmt.Errorf("fuse: every weight is 0")
	}
	var n float64
	for _, v := range acc {
		n += v * v
	}
	n = math.Sqrt(n)
	if n < 1e-9*total { // descriptors that cancel out say nothing
		return nil, fmt.Errorf("fuse: the descriptors cancel out (norm of the mean %v)", n/total)
	}
	out := make([]float32, dim)
	for j, v := range acc {
		out[j] = float32(v / n)
	}
	return out, nil
}
