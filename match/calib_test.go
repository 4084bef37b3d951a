package match

import (
	"math"
	"strings"
	"testing"
)

// TestShippedCalibration checks match/calib/fused.json: one-shot and fused
// entries for both scales, settings inside the evaluated grid, and a
// confidence that grows from a weak search (0.85, no margin) to a strong one
// (0.97, margin 0.03). (Each coefficient alone need not be positive: with
// the margin in the model, the top similarity adds little.)
func TestShippedCalibration(t *testing.T) {
	c, err := DefaultCalibration()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(c.Source, "CelebA") || c.Embedder == "" {
		t.Errorf("source %q, embedder %q", c.Source, c.Embedder)
	}
	for _, scale := range []int{8, 16} {
		one, err := c.Entry(scale, 1)
		if err != nil {
			t.Fatal(err)
		}
		four, err := c.Entry(scale, 4)
		if err != nil {
			t.Fatal(err)
		}
		if one.Shots != 1 || four.Shots != 4 || four.Fusion != "descriptor" {
			t.Errorf("x%d: entries for 1 and 4 shots are %d (%s) and %d (%s)", scale, one.Shots, one.Method, four.Shots, four.Method)
		}
		if e, _ := c.Entry(scale, 10); e.Shots != 4 {
			t.Errorf("x%d: 10 shots use the %d-shot entry, want the 4-shot one", scale, e.Shots)
		}
		for _, e := range []CalibrationEntry{one, four} {
			if e.Identify < 0.8 || e.Identify > 0.97 || e.Margin < 0 || e.Margin > 0.03 || e.Probes < 100 {
				t.Errorf("x%d %s: setting %v / %v from %d probes", scale, e.Method, e.Identify, e.Margin, e.Probes)
			}
			lo, hi := e.Logistic.P(0.85, 0), e.Logistic.P(0.97, 0.03)
			if !(lo < hi) || math.IsNaN(lo) || math.IsNaN(hi) {
				t.Errorf("x%d %s: P(0.85, 0) = %v, P(0.97, 0.03) = %v: want increasing (%+v)", scale, e.Method, lo, hi, e.Logistic)
			}
		}
		p, err := Confidence(scale, 4, 0.95, 0.03)
		if err != nil || p <= 0 || p >= 1 {
			t.Errorf("x%d: Confidence = %v, %v", scale, p, err)
		}
	}
	if _, err := Confidence(4, 1, 0.9, 0.01); err == nil || !strings.Contains(err.Error(), "x4") {
		t.Errorf("scale 4: %v", err)
	}
}

func TestCalibrationEntry(t *testing.T) {
	c := &Calibration{Entries: []CalibrationEntry{
		{Scale: 8, Shots: 1}, {Scale: 8, Shots: 4, Fusion: "descriptor"}, {Scale: 8, Shots: 4, Fusion: "score"},
		{Scale: 8, Shots: 4, Samples: 2, Fusion: "descriptor"}, {Scale: 16, Shots: 4, Fusion: "descriptor"},
	}}
	for _, tt := range []struct{ scale, shots, want int }{{8, 1, 1}, {8, 3, 1}, {8, 4, 4}, {8, 9, 4}, {16, 1, 4}} {
		e, err := c.Entry(tt.scale, tt.shots)
		if err != nil || e.Shots != tt.want || e.Fusion == "score" || e.Samples > 1 {
			t.Errorf("Entry(%d, %d) = %+v, %v; want %d shots", tt.scale, tt.shots, e, err, tt.want)
		}
	}
}

// TestShippedCalibrationFor: each shipped calibration is found by its
// embedder's name; FaceRes' (the default reader of SR faces) has one-shot
// and fused entries at both scales on its own similarity scale, with a
// confidence that grows from a weak search to a strong one.
func TestShippedCalibrationFor(t *testing.T) {
	for _, c := range []struct {
		model  string
		ok     bool
		lo, hi float64 // the range of its settings
		weak   [2]float64
		strong [2]float64
	}{
		{"face-api face_recognition_model@1a0426853fc3247e+17f82ad1", true, 0.8, 0.97, [2]float64{0.85, 0}, [2]float64{0.97, 0.03}},
		// a rebuilt file of the same net: found by name
		{"human-models faceres@0000000000000000+17f82ad1", true, 0.3, 0.97, [2]float64{0.5, 0}, [2]float64{0.85, 0.05}},
		{"some other net@1+2", false, 0, 0, [2]float64{}, [2]float64{}},
	} {
		t.Run(c.model, func(t *testing.T) {
			cal, ok, err := DefaultCalibrationFor(c.model)
			if err != nil || ok != c.ok {
				t.Fatalf("ok %v err %v, want ok %v", ok, err, c.ok)
			}
			if !ok {
				return
			}
			name, _, _ := strings.Cut(c.model, "@")
			if !strings.HasPrefix(cal.Embedder, name+"@") || !strings.Contains(cal.Source, "CelebA") {
				t.Errorf("embedder %q source %q", cal.Embedder, cal.Source)
			}
			for _, scale := range []int{8, 16} {
				for _, shots := range []int{1, 4} {
					e, err := cal.Entry(scale, shots)
					if err != nil || e.Shots != shots {
						t.Fatalf("x%d %d shots: %+v %v", scale, shots, e, err)
					}
					if e.Identify < c.lo || e.Identify > c.hi || e.Margin < 0 || e.Margin > 0.2 || e.Probes < 100 {
						t.Errorf("x%d %s: setting %v / %v from %d probes", scale, e.Method, e.Identify, e.Margin, e.Probes)
					}
					for i, g := range e.Galleries {
						if g.Gallery >= e.Gallery || (i > 0 && g.Gallery <= e.Galleries[i-1].Gallery) ||
							g.Identify < c.lo || g.Identify > c.hi || g.Margin < 0 || g.Margin > 0.2 || g.Logistic.Top <= 0 {
							t.Errorf("x%d %s: gallery setting %d %+v (full gallery %d)", scale, e.Method, i, g, e.Gallery)
						}
					}
					if lo, hi := e.Logistic.P(c.weak[0], c.weak[1]), e.Logistic.P(c.strong[0], c.strong[1]); !(lo < hi) {
						t.Errorf("x%d %s: P weak %v, P strong %v: want increasing (%+v)", scale, e.Method, lo, hi, e.Logistic)
					}
				}
			}
		})
	}
}

func TestCalibrationForGallery(t *testing.T) {
	e := CalibrationEntry{Gallery: 200, Identify: 0.7, Margin: 0.02,
		Galleries: []GallerySetting{{Gallery: 8, Identify: 0.5}, {Gallery: 32, Identify: 0.6}}}
	old := CalibrationEntry{Identify: 0.8} // a file without gallery sizes
	for _, c := range []struct {
		e    CalibrationEntry
		n    int
		want float64
	}{
		{e, 1, 0.5}, {e, 8, 0.5}, {e, 9, 0.6}, {e, 32, 0.6}, {e, 33, 0.7}, {e, 200, 0.7}, {e, 5000, 0.7},
		{e, 0, 0.7}, // unknown size: the full gallery's
		{old, 8, 0.8},
	} {
		if got := c.e.ForGallery(c.n).Identify; got != c.want {
			t.Errorf("gallery %d: identify %v, want %v", c.n, got, c.want)
		}
	}
}
