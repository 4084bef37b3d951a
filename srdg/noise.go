package srdg

import (
	"math/rand/v2"
)

// Noise fills buffers with independent standard normal samples. The sampler
// draws all its randomness through it, so tests can inject known noise and a
// seed reproduces a result on the same machine and provider.
type Noise interface {
	Normal(dst []float32)
}

// SeededNoise is a deterministic Gaussian source (PCG).
type SeededNoise struct{ r *rand.Rand }

// NewSeededNoise returns a source seeded with seed.
func NewSeededNoise(seed uint64) *SeededNoise {
	return &SeededNoise{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Normal fills dst with N(0, 1) samples.
func (n *SeededNoise) Normal(dst []float32) {
	for i := range dst {
		dst[i] = float32(n.r.NormFloat64())
	}
}
