package detect

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

func TestBlazeFaceOptionErrors(t *testing.T) {
	rt := openRuntime(t)
	cases := []struct {
		name string
		o    BlazeFaceOptions
		want []string
	}{
		{"no model", BlazeFaceOptions{Model: ""}, []string{"model: required"}},
		{"missing file", BlazeFaceOptions{Model: "testdata/nope.onnx"}, []string{"nope.onnx"}},
		{"wrong kind", BlazeFaceOptions{Model: "../internal/ort/testdata/affine_score.onnx"}, []string{"face detector"}},
		{"all bad at once", BlazeFaceOptions{Model: modelPath, MaxBatch: -1, MaxUpscale: 100, Search: Search{MinFacePx: 2, MinScore: 2, ROIs: []NormRect{{0.5, 0, 0.2, 1}}}},
			[]string{"max batch -1", "min face 2 px", "min score 2", "region", "max upscale 100"}},
		{"net range", BlazeFaceOptions{Model: modelPath, NetMinFacePx: 50, NetMaxFacePx: 40}, []string{"network face range 50..40"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := NewBlazeFace(rt, tc.o)
			if err == nil {
				b.Close()
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestWeightedNMS(t *testing.T) {
	face := func(x, y, s, score float64) Detection {
		f := Detection{Box: Rect{X0: x, Y0: y, X1: x + s, Y1: y + s}, Score: score, HasLandmarks: true}
		for k := range f.Landmarks {
			f.Landmarks[k] = Point{X: x + float64(k), Y: y}
		}
		return f
	}
	cases := []struct {
		name  string
		in    []Detection
		boxes []Rect
		score []float64
	}{
		{"empty", nil, nil, nil},
		{"disjoint kept, sorted", []Detection{face(0, 0, 10, 0.6), face(50, 50, 10, 0.9)},
			[]Rect{{X0: 50, Y0: 50, X1: 60, Y1: 60}, {X0: 0, Y0: 0, X1: 10, Y1: 10}}, []float64{0.9, 0.6}},
		{"overlapping merged by score", []Detection{face(0, 0, 10, 0.75), face(2, 0, 10, 0.25)},
			[]Rect{{X0: 0.5, Y0: 0, X1: 10.5, Y1: 10}}, []float64{0.75}},
		{"below iou kept", []Detection{face(0, 0, 10, 0.8), face(7, 0, 10, 0.7)},
			[]Rect{{X0: 0, Y0: 0, X1: 10, Y1: 10}, {X0: 7, Y0: 0, X1: 17, Y1: 10}}, []float64{0.8, 0.7}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := weightedNMS(tc.in, 0.3)
			if len(out) != len(tc.boxes) {
				t.Fatalf("%d faces, want %d", len(out), len(tc.boxes))
			}
			for i, f := range out {
				if f.Box != tc.boxes[i] || f.Score != tc.score[i] {
					t.Errorf("face %d: box %v score %g, want %v %g", i, f.Box, f.Score, tc.boxes[i], tc.score[i])
				}
				if f.Landmarks[0].X != f.Box.X0 {
					t.Errorf("face %d: landmarks not merged with the box: %v", i, f.Landmarks[0])
				}
			}
		})
	}
}

// Every interval of length ov inside the region lies whole in some window.
func TestSpansCover(t *testing.T) {
	for _, tc := range []struct{ start, n, t, ov int }{
		{0, 1280, 51, 18}, {0, 720, 102, 36}, {100, 300, 128, 45}, {0, 50, 128, 40}, {7, 129, 128, 10}, {0, 1000, 128, 127},
	} {
		t.Run(fmt.Sprint(tc), func(t *testing.T) {
			xs := spans(tc.start, tc.n, tc.t, tc.ov)
			if tc.n <= tc.t {
				if len(xs) != 1 || xs[0] > tc.start || xs[0]+tc.t < tc.start+tc.n {
					t.Fatalf("windows %v do not cover the small region", xs)
				}
				return
			}
			if xs[0] != tc.start || xs[len(xs)-1]+tc.t != tc.start+tc.n {
				t.Errorf("windows %v do not span [%d, %d)", xs, tc.start, tc.start+tc.n)
			}
			for a := tc.start; a+tc.ov <= tc.start+tc.n; a++ {
				ok := false
				for _, x := range xs {
					if x <= a && a+tc.ov <= x+tc.t {
						ok = true
						break
					}
				}
				if !ok {
					t.Fatalf("interval [%d, %d) is in no window of %v", a, a+tc.ov, xs)
				}
			}
		})
	}
}

// The packaged model has a dynamic batch: windows run together give the same
// faces as windows run one by one.
func TestBatchMatchesSingle(t *testing.T) {
	img, _ := scene(t, 320, 180, []float64{14, 28, 56}, 3, celebaNames(t, 3000, 3))
	var got [2][]Detection
	for i, mb := range []int{1, 16} {
		b := newBlazeFace(t, BlazeFaceOptions{MaxBatch: mb})
		res, err := b.Detect(context.Background(), img)
		if err != nil {
			t.Fatal(err)
		}
		got[i] = res.Faces
	}
	if len(got[0]) != len(got[1]) || len(got[0]) < 3 {
		t.Fatalf("batch 1 found %d faces, batch 16 %d (want the same, >= 3)", len(got[0]), len(got[1]))
	}
	for i := range got[0] {
		a, b := got[0][i], got[1][i]
		if math.Abs(a.Box.X0-b.Box.X0) > 1e-3 || math.Abs(a.Score-b.Score) > 1e-4 {
			t.Errorf("face %d: %+v vs %+v", i, a.Box, b.Box)
		}
	}
}

// Recall floors per face size (box height) for the window pyramid on pasted
// CelebA faces with the default options (MinFacePx 12, score 0.6, verified
// by the refinement looks): 12 px at least 3 of 5 (measured 4), 16 px 4 of 5
// (measured 5), larger all, at most one false positive per frame (measured
// none). bench/detect has the larger sweep, 8 px faces included.
func TestRecallBySize(t *testing.T) {
	sizes := []float64{12, 16, 24, 32, 48, 64}
	floors := map[float64]float64{12: 0.6, 16: 0.8, 24: 1, 32: 1, 48: 1, 64: 1}
	const frames = 5
	names := celebaNames(t, 3000, frames*len(sizes))
	b := newBlazeFace(t, BlazeFaceOptions{})
	hits := map[float64]int{}
	fp := 0
	for fr := 0; fr < frames; fr++ {
		img, ts := scene(t, 400, 225, sizes, uint64(fr+10), names[fr*len(sizes):])
		res, err := b.Detect(context.Background(), img)
		if err != nil {
			t.Fatal(err)
		}
		idx, f := match(res.Faces, ts, 0.3)
		fp += f
		for i, j := range idx {
			if j >= 0 {
				hits[sizes[i]]++
			}
		}
	}
	for _, s := range sizes {
		r := float64(hits[s]) / frames
		t.Logf("face %2.0f px: recall %.2f (floor %.2f)", s, r, floors[s])
		if r < floors[s]-1e-9 {
			t.Errorf("face %.0f px: recall %.2f below the floor %.2f", s, r, floors[s])
		}
	}
	t.Logf("false positives: %d in %d frames", fp, frames)
	if fp > frames {
		t.Errorf("%d false positives in %d frames, want at most one per frame", fp, frames)
	}
}

// A time budget cuts a frame short, counts the skipped windows, and the next
// frames of the same source continue where it stopped, so a face anywhere is
// found within a few frames.
func TestBudgetRotation(t *testing.T) {
	img, ts := scene(t, 320, 180, []float64{20}, 5, celebaNames(t, 3100, 1))
	b := newBlazeFace(t, BlazeFaceOptions{MaxBatch: 4, NoRefine: true, Search: Search{MinFacePx: 10, Budget: time.Nanosecond}})
	p, err := b.plan(img.Width, img.Height)
	if err != nil {
		t.Fatal(err)
	}
	total := len(p.wins)
	img.Source = "cam1"
	ran, found := 0, false
	for call := 0; ran < total; call++ {
		res, err := b.Detect(context.Background(), img)
		if err != nil {
			t.Fatal(err)
		}
		if !res.OverBudget || res.Tiles != 4 || res.Skipped != total-4 {
			t.Fatalf("call %d: over budget %v, %d windows run, %d skipped; want true, 4, %d", call, res.OverBudget, res.Tiles, res.Skipped, total-4)
		}
		ran += res.Tiles
		if idx, _ := match(res.Faces, ts, 0.3); idx[0] >= 0 {
			found = true
		}
	}
	if !found {
		t.Errorf("the face was not found in %d budget-cut calls covering all %d windows", (total+3)/4, total)
	}
	// another source starts from the beginning
	other := *img
	other.Source = "cam2"
	if _, err := b.Detect(context.Background(), &other); err != nil {
		t.Fatal(err)
	}
	if c := b.cursors["cam2"]; c != 4 {
		t.Errorf("cam2 cursor %d after one call, want 4", c)
	}
}

func TestROI(t *testing.T) {
	img, ts := scene(t, 320, 180, []float64{24, 24}, 6, celebaNames(t, 3200, 2))
	// the grid puts face 0 in the left half, face 1 in the right half
	cases := []struct {
		name string
		rois []NormRect
		want []bool
	}{
		{"whole frame", nil, []bool{true, true}},
		{"left half", []NormRect{{0, 0, 0.5, 1}}, []bool{true, false}},
		{"right half", []NormRect{{0.5, 0, 1, 1}}, []bool{false, true}},
		{"both", []NormRect{{0, 0, 0.5, 1}, {0.5, 0, 1, 1}}, []bool{true, true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBlazeFace(t, BlazeFaceOptions{Search: Search{MinFacePx: 16, MaxFacePx: 64, ROIs: tc.rois}})
			res, err := b.Detect(context.Background(), img)
			if err != nil {
				t.Fatal(err)
			}
			idx, fp := match(res.Faces, ts, 0.3)
			for i, w := range tc.want {
				if (idx[i] >= 0) != w {
					t.Errorf("face %d found %v, want %v", i, idx[i] >= 0, w)
				}
			}
			if fp > 0 {
				t.Errorf("%d false positives", fp)
			}
		})
	}
}

// The refinement looks confirm real faces (scores stay high, keypoints on
// both eyes) and the verified score never exceeds what the looks saw; with
// KeepUnverified the pyramid's detections are kept as found.
func TestRefineVerifies(t *testing.T) {
	img, ts := scene(t, 320, 180, []float64{16, 32}, 9, celebaNames(t, 3900, 2))
	for _, keep := range []bool{false, true} {
		b := newBlazeFace(t, BlazeFaceOptions{KeepUnverified: keep})
		res, err := b.Detect(context.Background(), img)
		if err != nil {
			t.Fatal(err)
		}
		idx, fp := match(res.Faces, ts, 0.3)
		if idx[0] < 0 || idx[1] < 0 || fp > 0 {
			t.Fatalf("keep unverified %v: matched %v, %d false positives", keep, idx, fp)
		}
		for _, i := range idx {
			f := res.Faces[i]
			if f.Score < 0.6 || f.Landmarks[RightEye].X >= f.Landmarks[LeftEye].X {
				t.Errorf("keep unverified %v: face %+v", keep, f)
			}
		}
	}
	// no face: a flat picture yields nothing, verified or not
	b := newBlazeFace(t, BlazeFaceOptions{})
	res, err := b.Detect(context.Background(), background(160, 90, 77))
	if err != nil || len(res.Faces) != 0 {
		t.Errorf("background only: %d faces, %v", len(res.Faces), err)
	}
}
