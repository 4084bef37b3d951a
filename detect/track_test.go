package detect

import (
	"context"
	"testing"
	"time"
)

func box(cx, cy, s float64) Face {
	return Face{Box: Rect{X0: cx - s/2, Y0: cy - s/2, X1: cx + s/2, Y1: cy + s/2}, Score: 0.9}
}

func TestTrackerCases(t *testing.T) {
	t0 := time.Unix(1000, 0)
	step := 200 * time.Millisecond
	type frame struct {
		faces []Face
		want  []uint64 // track id per face
		ended []uint64
	}
	cases := []struct {
		name   string
		frames []frame
	}{
		{"slow walk keeps its id", []frame{
			{[]Face{box(100, 100, 20)}, []uint64{1}, nil},
			{[]Face{box(105, 100, 20)}, []uint64{1}, nil},
			{[]Face{box(110, 101, 21)}, []uint64{1}, nil},
		}},
		{"fast face: centre distance first, then the velocity prediction", []frame{
			// 18 px per frame on a 20 px face: IoU with the last box is < 0.3
			{[]Face{box(100, 100, 20)}, []uint64{1}, nil},
			{[]Face{box(118, 100, 20)}, []uint64{1}, nil},
			{[]Face{box(136, 100, 20)}, []uint64{1}, nil},
			// 36 px from the last box, 0 from the prediction
			{[]Face{box(154, 100, 20)}, []uint64{1}, nil},
		}},
		{"two faces swap order in the list", []frame{
			{[]Face{box(100, 100, 20), box(300, 100, 20)}, []uint64{1, 2}, nil},
			{[]Face{box(302, 100, 20), box(102, 100, 20)}, []uint64{2, 1}, nil},
		}},
		{"a jump too far starts a new track", []frame{
			{[]Face{box(100, 100, 20)}, []uint64{1}, nil},
			{[]Face{box(160, 100, 20)}, []uint64{2}, nil},
		}},
		{"a size jump starts a new track", []frame{
			{[]Face{box(100, 100, 20)}, []uint64{1}, nil},
			{[]Face{box(104, 100, 40)}, []uint64{2}, nil},
		}},
		{"timeout ends a track; the same place later is a new one", []frame{
			{[]Face{box(100, 100, 20)}, []uint64{1}, nil},
			{nil, nil, nil}, {nil, nil, nil}, {nil, nil, nil}, {nil, nil, nil}, {nil, nil, nil},
			{nil, nil, nil}, {nil, nil, nil}, {nil, nil, nil}, {nil, nil, nil},
			{nil, nil, nil}, // 2.0 s: not longer than the timeout yet
			{nil, nil, []uint64{1}},
			{[]Face{box(100, 100, 20)}, []uint64{2}, nil},
		}},
		{"gap shorter than the timeout keeps the id", []frame{
			{[]Face{box(100, 100, 20)}, []uint64{1}, nil},
			{nil, nil, nil}, {nil, nil, nil},
			{[]Face{box(101, 100, 20)}, []uint64{1}, nil},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tk, err := NewTracker(TrackerOptions{})
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
