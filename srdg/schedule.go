// Package srdg is the guided-diffusion super-resolution engine: it turns LR
// face crops plus attribute labels into 128x128 faces by running a sampler of
// the variance-exploding SDE over a score model and an attribute-guidance model
// (SRDG.md sections 3-5), both executed by ONNX Runtime.
package srdg

import "math"

// Schedule is the VE SDE of SRDG.md section 3.
type Schedule struct {
	SigmaMin float64 // default 0.01
	SigmaMax float64 // default 348
	Eps      float64 // smallest t, default 1e-5
}

// DefaultSchedule is the one the released code and our models use.
var DefaultSchedule = Schedule{SigmaMin: 0.01, SigmaMax: 348, Eps: 1e-5}

// Sigma is sigma(t) = sigma_min * (sigma_max/sigma_min)^t: the continuous noise
// level fed to the networks.
func (s Schedule) Sigma(t float64) float64 {
	return s.SigmaMin * math.Pow(s.SigmaMax/s.SigmaMin, t)
}

// T inverts Sigma.
func (s Schedule) T(sigma float64) float64 {
	return math.Log(sigma/s.SigmaMin) / math.Log(s.SigmaMax/s.SigmaMin)
}

// Discrete returns the grid sigma_k = exp(linspace(ln sigma_min, ln sigma_max, n))[k]
// that the reference sampler uses for its step sizes (sigma_{-1} = 0 is implied).
func (s Schedule) Discrete(n int) []float64 {
	out := make([]float64, n)
	a, b := math.Log(s.SigmaMin), math.Log(s.SigmaMax)
	for k := range out {
		if n == 1 {
			out[k] = s.SigmaMin
			continue
		}
		out[k] = math.Exp(a + (b-a)*float64(k)/float64(n-1))
	}
	return out
}

// Times returns t_i = linspace(1, eps, n)[i].
func (s Schedule) Times(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		if n == 1 {
			out[i] = 1
			continue
		}
		out[i] = 1 + (s.Eps-1)*float64(i)/float64(n-1)
	}
	return out
}
