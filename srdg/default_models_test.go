package srdg

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/srdgd/srdgd/internal/ort"
)

// TestDefaultModels: with the shipped models (models/dist: our score model
// and guidance classifiers), a short run gives finite output in [0, 1], the same
// for the same seed, and guidance changes it.
func TestDefaultModels(t *testing.T) {
	dist := filepath.Join("..", "models", "dist")
	score, guid := filepath.Join(dist, "score_x8.onnx"), filepath.Join(dist, "guidance.onnx")
	for _, p := range []string{score, guid} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("default model missing (run `make models`): %v", err)
		}
	}
	rt, err := ort.Open("", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	e, err := Open(ModelOptions{Runtime: rt, ScorePath: score, GuidancePath: guid, WantScale: 8,
		Session: ort.SessionOptions{Providers: []string{ort.CPU}}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	hr, lr := e.Sizes()
	if hr != 128 || lr != 16 || len(e.Attributes()) != 3 {
		t.Fatalf("sizes %d/%d attributes %v", hr, lr, e.Attributes())
	}
	face := make([]float32, 3*lr*lr)
	for i := range face {
		face[i] = 0.35 + 0.3*float32(i%lr)/float32(lr)
	}
	run := func(labels []int, seed uint64) []float32 {
		res, err := e.SuperResolve(context.Background(), []Input{{LR: face, Labels: labels}}, Params{Sampler: "ode", Steps: 2}, NewSeededNoise(seed))
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range res[0].SR {
			if math.IsNaN(float64(v)) || v < 0 || v > 1 {
				t.Fatalf("pixel %d = %v", i, v)
			}
		}
		return res[0].SR
	}
	a, b, c := run(nil, 4), run(nil, 4), run(nil, 5)
	g := run([]int{1, 0, 1}, 4)
	var dSeed, dGuide float64
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed differs at %d", i)
		}
		dSeed = math.Max(dSeed, math.Abs(float64(a[i]-c[i])))
		dGuide = math.Max(dGuide, math.Abs(float64(a[i]-g[i])))
	}
	if dSeed == 0 || dGuide == 0 {
		t.Errorf("another seed changed the output by %g, guidance by %g: both must change it", dSeed, dGuide)
	}
}
