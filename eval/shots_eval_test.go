package eval

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/srdgd/srdgd/match"
)

// noisyBicubic is a stochastic method: the bicubic upsampling plus noise
// seeded by the input's SeedKey, as SR's posterior samples are; with an ID,
// so its outputs go to the SR cache.
func noisyBicubic(calls *atomic.Int64) Method {
	lrb := LRBicubic()
	return Method{Name: "lr-noisy", ID: "noise0.02", Stochastic: true, Restore: func(ctx context.Context, in Input) ([]float32, error) {
		calls.Add(1)
		out, err := lrb.Restore(ctx, in)
		if err != nil {
			return nil, err
		}
		rng := rand.New(rand.NewPCG(ProbeSeed(1, in.SeedKey()), 0))
		for i := range out {
			out[i] = float32(math.Min(math.Max(float64(out[i])+0.02*rng.NormFloat64(), 0), 1))
		}
		return out, nil
	}}
}

func TestEvalShots(t *testing.T) {
	dir := t.TempDir()
	set := synthSet(t, dir)
	var calls atomic.Int64
	opts := Options{Set: set, Scales: []int{8}, Embedder: testEmbedder(t), Cache: filepath.Join(dir, "cache.jsonl"),
		SRCache: filepath.Join(dir, "sr"), Shots: Shots{K: 3, Samples: 2, Shift: 0.5, Zoom: 0.04, Noise: 0.01, Seed: 1},
		Methods: func(int) ([]Method, error) { return []Method{HRReference(set), LRBicubic(), noisyBicubic(&calls)}, nil }}
	rep, err := Evaluate(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	nP := len(set.Probes)
	type row struct {
		probes, shots, samples int
		fusion, base           string
	}
	want := map[string]row{
		"hr":                             {nP, 0, 0, "", ""},
		"lr-bicubic":                     {nP, 0, 0, "", ""},
		"lr-bicubic-shots1":              {3 * nP, 1, 1, "", "lr-bicubic"},
		"lr-bicubic-shots2":              {2 * nP, 2, 1, "descriptor", "lr-bicubic"}, // 2 runs of 2 of the 3 shots
		"lr-bicubic-shots3":              {nP, 3, 1, "descriptor", "lr-bicubic"},
		"lr-bicubic-shots3-score":        {nP, 3, 1, "score", "lr-bicubic"},
		"lr-noisy":                       {nP, 0, 0, "", ""},
		"lr-noisy-shots1":                {3 * nP, 1, 1, "", "lr-noisy"},
		"lr-noisy-shots1-samples2":       {3 * nP, 1, 2, "descriptor", "lr-noisy"},
		"lr-noisy-shots2-samples2":       {2 * nP, 2, 2, "descriptor", "lr-noisy"}, // 2 runs of 2 shots, their 4 samples fused
		"lr-noisy-shots3-samples2":       {nP, 3, 2, "descriptor", "lr-noisy"},
		"lr-noisy-shots3-samples2-score": {nP, 3, 2, "score", "lr-noisy"},
	}
	got := map[string]Result{}
	for _, r := range rep.Results {
		got[r.Method] = r
		w, ok := want[r.Method]
		if !ok {
			t.Errorf("unexpected row %s", r.Method)
			continue
		}
		if g := (row{r.Probes, r.Shots, r.Samples, r.Fusion, r.Base}); g != w {
			t.Errorf("%s: %+v, want %+v", r.Method, g, w)
		}
		if r.AUC < 0 || r.AUC > 1 || len(r.OpenSet) == 0 || r.Scores == nil {
			t.Errorf("%s: AUC %v, %d open-set points", r.Method, r.AUC, len(r.OpenSet))
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d rows, want %d", len(got), len(want))
	}
	// PSNR per shot is measured against the face as the shot saw it: the
	// bicubic shots lose to the still probe only what the noise and the
	// sub-pixel motion cost, not a misalignment of pixels
	if s, p := got["lr-bicubic-shots1"].PSNR, got["lr-bicubic"].PSNR; math.Abs(s-p) > 3 {
		t.Errorf("bicubic PSNR: shots %.2f dB, still probe %.2f dB", s, p)
	}
	if n := calls.Load(); n != int64(nP*(1+3*2)) {
		t.Errorf("%d restores of the stochastic method, want %d (probe + 3 shots x 2 samples per probe)", n, nP*7)
	}

	// A new embedder (here: the descriptors cache gone) reruns no SR.
	if err := os.Remove(opts.Cache); err != nil {
		t.Fatal(err)
	}
	calls.Store(0)
	rep2, err := Evaluate(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 0 {
		t.Errorf("rerun without descriptors: %d restores, want 0 (SR cache)", calls.Load())
	}
	for i, r := range rep2.Results {
		a := rep.Results[i]
		if r.Method != a.Method || r.AUC != a.AUC || fmt.Sprint(r.Rank) != fmt.Sprint(a.Rank) || r.PSNR != a.PSNR {
			t.Errorf("rerun %s differs: AUC %v / %v, CMC %v / %v", r.Method, r.AUC, a.AUC, r.Rank, a.Rank)
		}
	}

	// Shots only: no single-probe rows but the HR reference.
	opts.ShotsOnly = true
	rep3, err := Evaluate(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep3.Computed != 0 || len(rep3.Results) != len(want)-2 {
		t.Errorf("shots only: %d rows, %d computed; want %d rows from the cache", len(rep3.Results), rep3.Computed, len(want)-2)
	}
	for _, r := range rep3.Results {
		if r.Method == "lr-bicubic" || r.Method == "lr-noisy" {
			t.Errorf("shots only: row %s", r.Method)
		}
	}

	// Calibration of the stochastic method's multi-shot rows.
	c, err := Calibrate(rep, CalibrateOptions{Source: "test", Methods: func(r Result) bool { return r.Base == "lr-noisy" }})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Entries) != 5 || c.Embedder != rep.Model { // shots1, shots1-samples2, shots2-samples2, shots3-samples2 and its score row
		t.Fatalf("%d entries, embedder %q", len(c.Entries), c.Embedder)
	}
	for _, e := range c.Entries {
		var n int
		for _, h := range []match.Histogram{e.Genuine, e.Impostor} {
			for _, v := range h.Counts {
				n += v
			}
		}
		if n != 2*e.Probes || e.Identify < openSetLo || e.Identify > openSetHi || e.Chosen == "" ||
			(e.FPIR > CalibrationFPIR) != strings.HasPrefix(e.Chosen, "no grid setting") || e.Prior != 0.5 {
			t.Errorf("%s: %d searches for %d probes, setting %v / %v FPIR %v", e.Method, n, e.Probes, e.Identify, e.Margin, e.FPIR)
		}
		if p := e.Logistic.P(0.9, 0.02); math.IsNaN(p) {
			t.Errorf("%s: logistic %+v", e.Method, e.Logistic)
		}
		if e.Gallery < 2 {
			t.Errorf("%s: gallery of %d identities recorded", e.Method, e.Gallery)
		}
		for _, g := range e.Galleries {
			if g.Gallery >= e.Gallery || g.Trials != GalleryTrials {
				t.Errorf("%s: setting for %d of %d identities, %d trials", e.Method, g.Gallery, e.Gallery, g.Trials)
			}
		}
	}
	if _, err := Calibrate(rep, CalibrateOptions{}); err == nil { // no "sr-" rows here
		t.Error("calibration without SR rows succeeded")
	}
	// at a direct scale the default calibrates the bicubic rows (what the
	// daemon reads there), and nothing else
	direct := *rep
	direct.Results = nil
	for _, r := range rep.Results {
		r.Scale = 4
		direct.Results = append(direct.Results, r)
	}
	c, err = Calibrate(&direct, CalibrateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range c.Entries {
		if e.Scale != 4 || !strings.HasPrefix(e.Method, "lr-bicubic-shots") {
			t.Errorf("direct scale: entry %s at x%d", e.Method, e.Scale)
		}
	}
	if len(c.Entries) == 0 {
		t.Error("direct scale: no entries")
	}
}

// TestFitLogistic recovers known coefficients from samples drawn from them.
func TestFitLogistic(t *testing.T) {
	want := match.Logistic{Bias: -80, Top: 85, Margin: 60}
	rng := rand.New(rand.NewPCG(1, 2))
	var x [][2]float64
	var y []bool
	for range 20000 {
		v := [2]float64{0.85 + 0.12*rng.Float64(), 0.05 * rng.Float64()}
		x = append(x, v)
		y = append(y, rng.Float64() < want.P(v[0], v[1]))
	}
	got, err := fitLogistic(x, y)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range [][2]float64{{0.9, 0.01}, {0.93, 0.02}, {0.95, 0.04}} {
		if d := math.Abs(got.P(p[0], p[1]) - want.P(p[0], p[1])); d > 0.03 {
			t.Errorf("P%v = %.3f, want %.3f (fit %+v)", p, got.P(p[0], p[1]), want.P(p[0], p[1]), got)
		}
	}
	if _, err := fitLogistic(x[:2], y[:2]); err == nil {
		t.Error("2 samples fitted")
	}
}

func TestMergeCalibration(t *testing.T) {
	e := func(scale, shots int, fusion string, dir float64) match.CalibrationEntry {
		return match.CalibrationEntry{Scale: scale, Shots: shots, Fusion: fusion, DIR: dir}
	}
	old := &match.Calibration{Source: "run x16", Embedder: "m", Entries: []match.CalibrationEntry{e(16, 1, "", 0.1), e(8, 4, "descriptor", 0.2)}}
	c := &match.Calibration{Source: "run x8", Embedder: "m", Entries: []match.CalibrationEntry{e(8, 4, "descriptor", 0.3), e(8, 1, "", 0.4)}}
	got, err := MergeCalibration(old, c)
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, x := range got.Entries {
		s = append(s, fmt.Sprintf("x%d/%d/%s/%.1f", x.Scale, x.Shots, x.Fusion, x.DIR))
	}
	if fmt.Sprint(s) != "[x8/1//0.4 x8/4/descriptor/0.3 x16/1//0.1]" || got.Source != "run x16; run x8" {
		t.Errorf("merged %v, source %q", s, got.Source)
	}
	// a rerun of one scale replaces that scale's part of the source
	old.Source, c.Source = "eval x8: 100 probes; eval x16: 150 probes", "eval x8: 300 probes"
	if got, err = MergeCalibration(old, c); err != nil || got.Source != "eval x16: 150 probes; eval x8: 300 probes" {
		t.Errorf("source %q, err %v", got.Source, err)
	}
	c.Embedder = "other"
	if _, err := MergeCalibration(old, c); err == nil {
		t.Error("calibrations of two embedders merged")
	}
	path := filepath.Join(t.TempDir(), "c.json")
	if _, ok, err := ReadCalibration(path); ok || err != nil {
		t.Errorf("missing file: %v %v", ok, err)
	}
	if err := WriteCalibration(path, got); err != nil {
		t.Fatal(err)
	}
	back, ok, err := ReadCalibration(path)
	if !ok || err != nil || len(back.Entries) != 3 {
		t.Errorf("read back: %v %v %+v", ok, err, back)
	}
}

func TestShotRows(t *testing.T) {
	for _, tt := range []struct {
		k, m int
		want string
	}{
		{4, 1, "[sr-shots1  sr-shots4 sr-shots4-score]"},
		{4, 2, "[sr-shots1 sr-shots1-samples2 sr-shots4-samples2 sr-shots4-samples2-score]"},
		{1, 3, "[sr-shots1  sr-shots1-samples3 sr-shots1-samples3-score]"},
	} {
		a, b, c, d := ShotRows("sr", tt.k, tt.m)
		if got := fmt.Sprint([]string{a, b, c, d}); got != tt.want {
			t.Errorf("ShotRows(%d, %d) = %s, want %s", tt.k, tt.m, got, tt.want)
		}
	}
}
