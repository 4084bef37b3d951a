package detect

import (
	"context"
	"image"
	"strings"
	"testing"
	"time"
)

func box(cx, cy, s float64) Detection {
	return Detection{Box: Rect{X0: cx - s/2, Y0: cy - s/2, X1: cx + s/2, Y1: cy + s/2}, Score: 0.9}
}

func TestTrackerCases(t *testing.T) {
	t0 := time.Unix(1000, 0)
	step := 200 * time.Millisecond
	type frame struct {
		faces []Detection
		want  []uint64 // track id per face
		ended []uint64
	}
	cases := []struct {
		name   string
		o      TrackerOptions
		frames []frame
	}{
		{"slow walk keeps its id", TrackerOptions{}, []frame{
			{[]Detection{box(100, 100, 20)}, []uint64{1}, nil},
			{[]Detection{box(105, 100, 20)}, []uint64{1}, nil},
			{[]Detection{box(110, 101, 21)}, []uint64{1}, nil},
		}},
		{"fast face: centre distance first, then the velocity prediction", TrackerOptions{}, []frame{
			// 18 px per frame on a 20 px face: IoU with the last box is < 0.3
			{[]Detection{box(100, 100, 20)}, []uint64{1}, nil},
			{[]Detection{box(118, 100, 20)}, []uint64{1}, nil},
			{[]Detection{box(136, 100, 20)}, []uint64{1}, nil},
			// 36 px from the last box, 0 from the prediction
			{[]Detection{box(154, 100, 20)}, []uint64{1}, nil},
		}},
		{"two faces swap order in the list", TrackerOptions{}, []frame{
			{[]Detection{box(100, 100, 20), box(300, 100, 20)}, []uint64{1, 2}, nil},
			{[]Detection{box(302, 100, 20), box(102, 100, 20)}, []uint64{2, 1}, nil},
		}},
		{"a jump too far starts a new track", TrackerOptions{}, []frame{
			// 4 face heights in 200 ms: faster than MaxSpeed (10 per second)
			// allows a face seen once, plus MaxCentreDist
			{[]Detection{box(100, 100, 20)}, []uint64{1}, nil},
			{[]Detection{box(180, 100, 20)}, []uint64{2}, nil},
		}},
		{"a size jump starts a new track", TrackerOptions{}, []frame{
			{[]Detection{box(100, 100, 20)}, []uint64{1}, nil},
			{[]Detection{box(104, 100, 40)}, []uint64{2}, nil},
		}},
		{"timeout ends a track; the same place later is a new one", TrackerOptions{Timeout: 2 * time.Second}, []frame{
			{[]Detection{box(100, 100, 20)}, []uint64{1}, nil},
			{nil, nil, nil}, {nil, nil, nil}, {nil, nil, nil}, {nil, nil, nil}, {nil, nil, nil},
			{nil, nil, nil}, {nil, nil, nil}, {nil, nil, nil}, {nil, nil, nil},
			{nil, nil, nil}, // 2.0 s: not longer than the timeout yet
			{nil, nil, []uint64{1}},
			{[]Detection{box(100, 100, 20)}, []uint64{2}, nil},
		}},
		{"gap shorter than the timeout keeps the id", TrackerOptions{}, []frame{
			{[]Detection{box(100, 100, 20)}, []uint64{1}, nil},
			{nil, nil, nil}, {nil, nil, nil},
			{[]Detection{box(101, 100, 20)}, []uint64{1}, nil},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tk, err := NewTracker(tc.o)
			if err != nil {
				t.Fatal(err)
			}
			for i, fr := range tc.frames {
				tracks, ended := tk.Update(t0.Add(time.Duration(i)*step), fr.faces)
				for j, tr := range tracks {
					if tr.ID != fr.want[j] {
						t.Errorf("frame %d face %d: track %d, want %d", i, j, tr.ID, fr.want[j])
					}
				}
				var ids []uint64
				for _, e := range ended {
					ids = append(ids, e.ID)
				}
				if len(ids) != len(fr.ended) || (len(ids) > 0 && ids[0] != fr.ended[0]) {
					t.Errorf("frame %d: ended %v, want %v", i, ids, fr.ended)
				}
			}
		})
	}
}

func TestTrackerOptionErrors(t *testing.T) {
	_, err := NewTracker(TrackerOptions{MinIoU: 2, Timeout: -1, MaxSizeRatio: 0.5})
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{"min iou 2", "timeout -1ns", "max size ratio 0.5"} {
		if !contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

// Two real faces walk across a scene; BlazeFace finds them in every frame
// and the tracker keeps both ids.
func TestTrackRealFaces(t *testing.T) {
	names := celebaNames(t, 3300, 2)
	b := newBlazeFace(t, BlazeFaceOptions{Search: Search{MinFacePx: 14, MaxFacePx: 64}})
	tk, err := NewTracker(TrackerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(0, 0)
	ids := map[int]uint64{}
	for fr := 0; fr < 5; fr++ {
		img := background(320, 180, 21)
		// face 0 walks right 14 px per frame, face 1 walks left and grows
		tr0 := pasteFace(t, img, loadCeleba(t, names[0]), 60+14*float64(fr), 70, 22*BlazeFaceCalibration.BoxSide)
		tr1 := pasteFace(t, img, loadCeleba(t, names[1]), 260-10*float64(fr), 110, (26+2*float64(fr))*BlazeFaceCalibration.BoxSide)
		res, err := b.Detect(context.Background(), img)
		if err != nil {
			t.Fatal(err)
		}
		idx, fp := match(res.Faces, []truth{tr0, tr1}, 0.3)
		if idx[0] < 0 || idx[1] < 0 || fp > 0 {
			t.Fatalf("frame %d: faces matched %v, %d false positives", fr, idx, fp)
		}
		tracks, _ := tk.Update(t0.Add(time.Duration(fr)*250*time.Millisecond), res.Faces)
		for k := 0; k < 2; k++ {
			id := tracks[idx[k]].ID
			if fr == 0 {
				ids[k] = id
			} else if id != ids[k] {
				t.Errorf("frame %d: face %d is track %d, was %d", fr, k, id, ids[k])
			}
		}
	}
	if ids[0] == ids[1] {
		t.Errorf("both faces on track %d", ids[0])
	}
}

// colour is an appearance descriptor whose face and body histograms each
// put all their mass in one bin.
func colour(faceBin, bodyBin int) []float32 {
	d := make([]float32, AppearanceLen)
	d[faceBin] = 1
	d[appRegion+bodyBin] = 1
	return d
}

func TestTrackerCoastingAndAppearance(t *testing.T) {
	t0 := time.Unix(1000, 0)
	step := 200 * time.Millisecond
	red, blue := colour(1, 2), colour(1, 40)
	type frame struct {
		faces []Detection
		descs [][]float32
		want  []uint64
	}
	gap := func(n int) []frame { return make([]frame, n) }
	cases := []struct {
		name   string
		o      TrackerOptions
		frames []frame
	}{
		{"a face seen once may have moved far over a gap", TrackerOptions{}, append(append([]frame{
			{[]Detection{box(100, 100, 20)}, nil, []uint64{1}}}, gap(4)...),
			// 1 s later, 8 face heights on: within MaxSpeed (10 per second)
			frame{[]Detection{box(260, 100, 20)}, nil, []uint64{1}})},
		{"a walking face coasts 4 s on its prediction", TrackerOptions{}, append(append([]frame{
			{[]Detection{box(100, 100, 20)}, nil, []uint64{1}},
			{[]Detection{box(118, 100, 20)}, nil, []uint64{1}},
			{[]Detection{box(136, 100, 20)}, nil, []uint64{1}}}, gap(19)...),
			// 4 s later where 90 px/s put it, 30 px off
			frame{[]Detection{box(136+18*20+30, 110, 20)}, nil, []uint64{1}})},
		{"a coasting prediction does not reach a face going the other way", TrackerOptions{}, append(append([]frame{
			{[]Detection{box(300, 100, 20)}, nil, []uint64{1}},
			{[]Detection{box(318, 100, 20)}, nil, []uint64{1}}}, gap(9)...),
			frame{[]Detection{box(200, 100, 20)}, nil, []uint64{2}})},
		{"other colours after a gap start a new track", TrackerOptions{}, []frame{
			{[]Detection{box(100, 100, 20)}, [][]float32{red}, []uint64{1}},
			{}, {},
			{[]Detection{box(140, 100, 20)}, [][]float32{blue}, []uint64{2}}}},
		{"the same colours after a gap continue", TrackerOptions{}, []frame{
			{[]Detection{box(100, 100, 20)}, [][]float32{red}, []uint64{1}},
			{}, {},
			{[]Detection{box(140, 100, 20)}, [][]float32{red}, []uint64{1}}}},
		{"NoAppearance ignores the colours", TrackerOptions{NoAppearance: true}, []frame{
			{[]Detection{box(100, 100, 20)}, [][]float32{red}, []uint64{1}},
			{}, {},
			{[]Detection{box(140, 100, 20)}, [][]float32{blue}, []uint64{1}}}},
		{"appearance sorts out two people seen once each", TrackerOptions{}, []frame{
			{[]Detection{box(100, 100, 20), box(200, 100, 20)}, [][]float32{red, blue}, []uint64{1, 2}},
			{}, {}, {},
			// both moved; by position alone the nearer pairing would swap them
			{[]Detection{box(180, 100, 20), box(150, 100, 20)}, [][]float32{red, blue}, []uint64{1, 2}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tk, err := NewTracker(tc.o)
			if err != nil {
				t.Fatal(err)
			}
			for i, fr := range tc.frames {
				tracks, _ := tk.UpdateWith(t0.Add(time.Duration(i)*step), fr.faces, fr.descs)
				for j, tr := range tracks {
					if tr.ID != fr.want[j] {
						t.Errorf("frame %d face %d: track %d, want %d", i, j, tr.ID, fr.want[j])
					}
				}
			}
		})
	}
}

// The descriptor of a rendered demo person is stable from frame to frame and
// tells two people apart; a face at the frame edge loses its body part, and
// the similarity then rests on the face alone.
func TestAppearance(t *testing.T) {
	s := demoScene(t)
	rgba := image.NewRGBA(image.Rect(0, 0, 1280, 720))
	descOf := func(k, crossing int) []float32 {
		s.Render(k, rgba)
		img := ImageFromGo(rgba)
		for _, f := range s.Faces(k) {
			if f.Crossing == crossing {
				b := f.Box
				return Appearance(img, Detection{Box: Rect{X0: float64(b.Min.X), Y0: float64(b.Min.Y) + 0.1*float64(b.Dy()), X1: float64(b.Max.X), Y1: float64(b.Max.Y) - 0.1*float64(b.Dy())}})
			}
		}
		t.Fatalf("crossing %d not in frame %d", crossing, k)
		return nil
	}
	fs := s.Faces(300)
	if len(fs) < 2 {
		t.Fatalf("%d faces in frame 300", len(fs))
	}
	a0, a1, b0 := descOf(300, fs[0].Crossing), descOf(306, fs[0].Crossing), descOf(300, fs[1].Crossing)
	if sim := Similarity(a0, a1); sim < 0.9 {
		t.Errorf("one person 6 frames apart: similarity %.3f, want >= 0.9", sim)
	}
	if sim := Similarity(a0, b0); sim > 0.6 {
		t.Errorf("two people: similarity %.3f, want < 0.6", sim)
	}
	img := &Image{Width: 64, Height: 64, Pix: make([]byte, 3*64*64)}
	edge := Appearance(img, Detection{Box: Rect{X0: 10, Y0: 40, X1: 30, Y1: 60}}) // the body would be below the frame
	var body float32
	for _, v := range edge[appRegion:] {
		body += v
	}
	if body != 0 {
		t.Errorf("body histogram outside the frame sums to %g, want 0", body)
	}
	if sim := Similarity(edge, Appearance(img, Detection{Box: Rect{X0: 10, Y0: 10, X1: 30, Y1: 30}})); sim < 0.999 {
		t.Errorf("same face colours, one without body: similarity %.3f, want 1", sim)
	}
	if Similarity(nil, edge) != 1 {
		t.Error("a missing descriptor is evidence against a match")
	}
}

func BenchmarkAppearance(b *testing.B) {
	img := background(1280, 720, 3)
	f := Detection{Box: Rect{X0: 600, Y0: 300, X1: 630, Y1: 330}}
	for b.Loop() {
		Appearance(img, f)
	}
}

// The tracker's work per frame with three faces and appearance, the demo's
// usual load.
func BenchmarkTrackerUpdate(b *testing.B) {
	tk, _ := NewTracker(TrackerOptions{})
	descs := [][]float32{colour(1, 2), colour(3, 4), colour(5, 6)}
	t0 := time.Unix(0, 0)
	i := 0
	for b.Loop() {
		x := float64(i%100) * 5
		tk.UpdateWith(t0.Add(time.Duration(i)*200*time.Millisecond), []Detection{box(100+x, 100, 20), box(900-x, 300, 30), box(400+x, 500, 40)}, descs)
		i++
	}
}

func TestParseNormRect(t *testing.T) {
	for _, c := range []struct {
		in   string
		want NormRect
		err  string
	}{
		{"0,0,1,1", NormRect{0, 0, 1, 1}, ""},
		{" 0.1, 0.2 ,0.5,0.9", NormRect{0.1, 0.2, 0.5, 0.9}, ""},
		{"0.5,0,0.2,1", NormRect{}, "region"},
		{"0,0,1", NormRect{}, "want x0,y0,x1,y1"},
		{"0,0,x,1", NormRect{}, "invalid syntax"},
		{"NaN,0,1,1", NormRect{}, "region"},
	} {
		got, err := ParseNormRect(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: err %v, want one containing %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}
