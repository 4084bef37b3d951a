package detect

import (
	"fmt"
	"testing"
	"time"

	"github.com/srdgd/srdgd/face"
)

// A sharp face passes the gate; a Gaussian-blurred copy of the same frame
// (sigma 1.5 px) is rejected as blurry, at every size, and counted.
func TestGateRejectsBlur(t *testing.T) {
	names := celebaNames(t, 3400, 8)
	for _, px := range []float64{10, 16, 32, 56} {
		t.Run(fmt.Sprintf("%.0fpx", px), func(t *testing.T) {
			g, err := NewGate(GateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			sharpOK := 0
			for i, nm := range names {
				img := background(160, 160, uint64(i))
				tr := pasteFace(t, img, loadCeleba(t, nm), 80, 80, px*BlazeFaceCalibration.BoxSide)
				f := Detection{Box: tr.Box, Score: 0.9}
				q := g.Measure(img, f)
				if ok, why := g.Check(uint64(2*i+1), q); ok {
					sharpOK++
				} else {
					t.Logf("%s sharp: rejected %s (sharpness %.2f)", nm, why, q.Sharpness)
				}
				bq := g.Measure(gaussianBlur(img, 1.5), f)
				if ok, why := g.Check(uint64(2*i+2), bq); ok || why != RejectBlurry {
					t.Errorf("%s blurred: accepted %v reason %q (sharpness %.2f, sharp copy %.2f)", nm, ok, why, bq.Sharpness, q.Sharpness)
				}
			}
			st := g.Stats()
			if st.Rejected[RejectBlurry] < uint64(len(names)) || st.Checked != uint64(2*len(names)) {
				t.Errorf("stats %+v: want %d blurry rejections of %d checks", st, len(names), 2*len(names))
			}
			// allow one sharp face below the threshold (90 % of sharp faces are above)
			if sharpOK < len(names)-1 {
				t.Errorf("only %d of %d sharp faces passed", sharpOK, len(names))
			}
		})
	}
}

func TestGateBestShot(t *testing.T) {
	good := face.Quality{FacePx: 30, Sharpness: 0.5, Frontal: 0.9, Score: 0.9, Value: 0.4}
	with := func(f func(*face.Quality)) face.Quality { q := good; f(&q); return q }
	steps := []struct {
		id     uint64
		q      face.Quality
		ok     bool
		reason string
	}{
		{1, with(func(q *face.Quality) { q.FacePx = 6 }), false, RejectSmall},
		{1, with(func(q *face.Quality) { q.Score = 0.5 }), false, RejectLowScore},
		{1, with(func(q *face.Quality) { q.Sharpness = 0.1 }), false, RejectBlurry},
		{1, with(func(q *face.Quality) { q.Frontal = 0.1 }), false, RejectNotFrontal},
		{1, with(func(q *face.Quality) { q.Frontal = -1 }), true, ""}, // unknown frontalness is not judged
		{1, with(func(q *face.Quality) { q.Value = 0.45 }), false, RejectNotBetter},
		{1, with(func(q *face.Quality) { q.Value = 0.6 }), true, ""},
		{2, with(func(q *face.Quality) { q.Value = 0.1 }), true, ""}, // another track's first shot
		{1, with(func(q *face.Quality) { q.Value = 0.8 }), true, ""},
		{1, with(func(q *face.Quality) { q.Value = 1.2 }), true, ""},
		{1, with(func(q *face.Quality) { q.Value = 2.0 }), false, RejectProbeLimit},
	}
	g, err := NewGate(GateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range steps {
		ok, why := g.Check(s.id, s.q)
		if ok != s.ok || why != s.reason {
			t.Errorf("step %d: ok %v reason %q, want %v %q", i, ok, why, s.ok, s.reason)
		}
	}
	st := g.Stats()
	want := GateStats{Checked: 11, Accepted: 5, First: 2}
	if st.Checked != want.Checked || st.Accepted != want.Accepted || st.First != want.First {
		t.Errorf("stats %+v, want %+v", st, want)
	}
	for _, r := range []string{RejectSmall, RejectLowScore, RejectBlurry, RejectNotFrontal, RejectNotBetter, RejectProbeLimit} {
		if st.Rejected[r] != 1 {
			t.Errorf("rejected[%s] = %d, want 1", r, st.Rejected[r])
		}
	}
	g.Forget(1)
	if ok, _ := g.Check(1, good); !ok {
		t.Error("a forgotten track's next shot is not accepted as a first one")
	}
}

func TestFrontalness(t *testing.T) {
	mk := func(noseX float64) Detection {
		var f Detection
		f.HasLandmarks = true
		f.Landmarks[RightEye], f.Landmarks[LeftEye], f.Landmarks[NoseTip] = Point{X: 0, Y: 0}, Point{X: 10, Y: 0}, Point{X: noseX, Y: 6}
		return f
	}
	for _, tc := range []struct{ nose, want float64 }{{5, 1}, {2.5, 0.5}, {7.5, 0.5}, {0, 0}, {-3, 0}, {12, 0}} {
		if got := frontalness(mk(tc.nose)); got < tc.want-1e-9 || got > tc.want+1e-9 {
			t.Errorf("nose at %g: frontalness %g, want %g", tc.nose, got, tc.want)
		}
	}
}

// With MinInterval the gate sends up to MaxProbesPerTrack shots spread over
// the track: a clearly better shot at any time, any other that passes the
// quality gates once MinInterval has passed since the track's last probe.
func TestGateSpread(t *testing.T) {
	good := face.Quality{FacePx: 30, Sharpness: 0.5, Frontal: 0.9, Score: 0.9, Value: 0.4}
	with := func(v float64) face.Quality { q := good; q.Value = v; return q }
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	steps := []struct {
		id     uint64
		q      face.Quality
		t      time.Time
		ok     bool
		reason string
	}{
		{1, with(0.4), ms(0), true, ""},
		{1, with(0.4), ms(500), false, RejectTooSoon}, // not better, too soon
		{1, with(0.6), ms(600), true, ""},             // clearly better: at once
		{1, with(0.3), ms(1200), false, RejectTooSoon},
		{1, with(0.3), ms(1600), true, ""}, // a worse but passing shot, 1 s after the last
		{2, with(0.1), ms(1600), true, ""}, // another track
		{1, func() face.Quality { q := with(0.9); q.Sharpness = 0.1; return q }(), ms(3000), false, RejectBlurry},
		{1, with(0.5), ms(3000), true, ""},
		{1, with(0.5), ms(5000), false, RejectProbeLimit},
	}
	g, err := NewGate(GateOptions{MinInterval: time.Second, MaxProbesPerTrack: 4})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range steps {
		ok, why := g.CheckAt(s.id, s.q, s.t)
		if ok != s.ok || why != s.reason {
			t.Errorf("step %d: ok %v reason %q, want %v %q", i, ok, why, s.ok, s.reason)
		}
	}
	if st := g.Stats(); st.Accepted != 5 || st.Rejected[RejectTooSoon] != 2 {
		t.Errorf("stats %+v: want 5 accepted, 2 too soon", st)
	}
	if _, err := NewGate(GateOptions{MinInterval: -time.Second}); err == nil {
		t.Error("negative min interval accepted")
	}
}
