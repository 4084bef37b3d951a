package srdg

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/internal/faceimg"
	"github.com/srdgd/srdgd/internal/ort"
	"github.com/srdgd/srdgd/internal/queue"
)

func TestStageLabelsAndStops(t *testing.T) {
	e := fixtureEngine(t)
	in := queue.New[*face.Probe](8)
	out := queue.New[[]*face.Shot](8)
	st, err := NewStage(StageOptions{In: in, Out: out, Engine: e, Policy: "predict", AbstainThreshold: 0.8,
		Forced: map[string]map[string]int{"door": {"male": 1, "glasses": 0, "no_beard": 1}},
		Params: Params{Sampler: "ode"}, MaxBatch: 4, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	lr := &faceimg.Planar{W: 1, H: 1, Pix: []float32{0.4, 0.5, 0.6}}
	in.Push(&face.Probe{Camera: "door", TrackID: 1, LR: lr})
	in.Push(&face.Probe{Camera: "yard", TrackID: 2, LR: lr})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx) }()
	got := map[string]*face.Shot{}
	for len(got) < 2 {
		b, err := out.Pop(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range b {
			got[f.Probe.Camera] = f
		}
	}
	if f := got["door"]; f.LabelSource != face.LabelsOperator || !f.Run.Guided || f.Labels[0] != 1 || f.Labels[1] != 0 {
		t.Errorf("door: source %s guided %v labels %v", f.LabelSource, f.Run.Guided, f.Labels)
	}
	// no predictor loaded: nothing to guide with
	if f := got["yard"]; f.LabelSource != face.LabelsNone || f.Run.Guided {
		t.Errorf("yard: source %s guided %v", f.LabelSource, f.Run.Guided)
	}
	if len(got["door"].SR.Pix) != 3*fixHW*fixHW {
		t.Errorf("SR size %d", len(got["door"].SR.Pix))
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
	if _, err := NewStage(StageOptions{In: in, Out: out, Engine: e, Policy: "sometimes"}); err == nil {
		t.Error("bad policy accepted")
	}
}

// TestStagePredictsLabels: with a real LR attribute model whose attributes
// are the guidance model's, the stage guides by the confident predictions
// and abstains on the others; the shot reports both.
func TestStagePredictsLabels(t *testing.T) {
	e := fixtureEngine(t)
	ap := openFixtureAttrs(t, "testdata/lr_attrs.onnx")
	in, out := queue.New[*face.Probe](4), queue.New[[]*face.Shot](4)
	st, err := NewStage(StageOptions{In: in, Out: out, Engine: e, Attr: ap, Policy: "predict", AbstainThreshold: 0.8,
		Params: Params{Sampler: "ode"}, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	in.Push(&face.Probe{Camera: "yard", TrackID: 3, LR: &faceimg.Planar{W: 1, H: 1, Pix: []float32{0.4, 0.5, 0.6}}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx) }()
	b, err := out.Pop(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if len(b) != 1 {
		t.Fatalf("batch of %d shots, want 1", len(b))
	}
	sh := b[0]
	if err := <-done; err != nil {
		t.Errorf("Run returned %v after cancel", err)
	}
	if sh.LabelSource != face.LabelsPredicted || !sh.Run.Guided || !slices.Equal(sh.Labels, []int{1, 0, -1}) {
		t.Fatalf("source %s guided %v labels %v, want predicted, guided, [1 0 -1]", sh.LabelSource, sh.Run.Guided, sh.Labels)
	}
	want := []struct {
		name   string
		label  int // -1: not guided
		source string
	}{{"male", 1, face.LabelsPredicted}, {"glasses", 0, face.LabelsPredicted}, {"no_beard", -1, face.LabelsNone}}
	for i, w := range want {
		a := sh.Attributes[i]
		if a.Name != w.name || a.Source != w.source || a.Probability == nil || (w.label < 0) != (a.Label == nil) || (a.Label != nil && *a.Label != w.label) {
			t.Errorf("attribute %d: %+v, want %s label %d from %s", i, a, w.name, w.label, w.source)
		}
	}
	if s := st.Stats(); s.Faces != 1 || s.Batches != 1 {
		t.Errorf("stats %+v", s)
	}
}

// TestStageRefusesAttributeOrder: a predictor whose attributes are the
// guidance model's in another order would guide "glasses" by the male
// probability: the stage refuses it and names both orders.
func TestStageRefusesAttributeOrder(t *testing.T) {
	e := fixtureEngine(t)
	ap := openFixtureAttrs(t, "testdata/lr_attrs_swapped.onnx")
	in, out := queue.New[*face.Probe](1), queue.New[[]*face.Shot](1)
	_, err := NewStage(StageOptions{In: in, Out: out, Engine: e, Attr: ap, Policy: "predict", AbstainThreshold: 0.8})
	if err == nil || !strings.Contains(err.Error(), "[glasses, male, no_beard]") || !strings.Contains(err.Error(), "[male, glasses, no_beard]") {
		t.Fatalf("err %v, want one naming both attribute orders", err)
	}
}

func openFixtureAttrs(t *testing.T, path string) *AttrPredictor {
	t.Helper()
	rt, err := ort.Open("", nil)
	if err != nil {
		t.Fatalf("onnxruntime is required (scripts/fetch-ort.sh): %v", err)
	}
	t.Cleanup(func() { rt.Close() })
	ap, err := OpenAttrPredictor(rt, path, ort.SessionOptions{Providers: []string{ort.CPU}, IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ap.Close() })
	return ap
}

// A track-end notice passes through as a shot without SR, behind the shots
// that were queued before it.
func TestStagePassesTrackEnds(t *testing.T) {
	e := fixtureEngine(t)
	in := queue.New[*face.Probe](8)
	out := queue.New[[]*face.Shot](8)
	st, err := NewStage(StageOptions{In: in, Out: out, Engine: e, Policy: "off", Params: Params{Sampler: "ode"}, MaxBatch: 4, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	lr := &faceimg.Planar{W: 1, H: 1, Pix: []float32{0.4, 0.5, 0.6}}
	last := time.Unix(100, 0)
	in.Push(&face.Probe{Camera: "door", TrackID: 1, LR: lr})
	in.Push(face.TrackEnd("door", 1, last.Add(-time.Second), last))
	in.Push(&face.Probe{Camera: "door", TrackID: 2, LR: lr})
	in.Push(face.TrackEnd("door", 2, last, last))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx) }()
	var got []string
	for len(got) < 4 {
		batch, err := out.Pop(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(batch) != 1 {
			t.Fatalf("batch of %d: want each shot alone (the notice stops the batch)", len(batch))
		}
		s := batch[0]
		kind := "shot"
		if s.Probe.Ended {
			kind = "end"
			if s.SR != nil || !s.Probe.FrameTime.Equal(last) {
				t.Errorf("notice of track %d: SR %v, last seen %v", s.Probe.TrackID, s.SR != nil, s.Probe.FrameTime)
			}
		}
		got = append(got, fmt.Sprintf("%s %d", kind, s.Probe.TrackID))
	}
	if want := []string{"shot 1", "end 1", "shot 2", "end 2"}; !slices.Equal(got, want) {
		t.Errorf("out %v, want %v", got, want)
	}
	if s := st.Stats(); s.TrackEnds != 2 || s.Faces != 2 {
		t.Errorf("stats %+v: want 2 track ends, 2 faces", s)
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
}

// The hit reports the guidance weight that was applied: the sampler's
// default when the config says 0 (it used to report the 0), the configured
// one otherwise, and 0 for a face that was not guided.
func TestStageReportsWeightUsed(t *testing.T) {
	e := fixtureEngine(t)
	cases := []struct {
		name   string
		params Params
		want   float64
	}{
		{"fast default", Params{Sampler: "fast"}, 85},
		{"ode default", Params{Sampler: "ode"}, 29},
		{"configured", Params{Sampler: "ode", W: 7.5}, 7.5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := queue.New[*face.Probe](8)
			out := queue.New[[]*face.Shot](8)
			st, err := NewStage(StageOptions{In: in, Out: out, Engine: e, Policy: "predict", AbstainThreshold: 0.8,
				Forced: map[string]map[string]int{"door": {"male": 1, "glasses": 0, "no_beard": 1}},
				Params: tc.params, MaxBatch: 4, Seed: 5})
			if err != nil {
				t.Fatal(err)
			}
			lr := &faceimg.Planar{W: 1, H: 1, Pix: []float32{0.4, 0.5, 0.6}}
			in.Push(&face.Probe{Camera: "door", TrackID: 1, LR: lr})
			in.Push(&face.Probe{Camera: "yard", TrackID: 2, LR: lr})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- st.Run(ctx) }()
			got := map[string]*face.Shot{}
			for len(got) < 2 {
				b, err := out.Pop(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range b {
					got[f.Probe.Camera] = f
				}
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if d := got["door"].Run; !d.Guided || d.Weight != tc.want {
				t.Errorf("guided face: guided %v, guidance_weight %v, want %v", d.Guided, d.Weight, tc.want)
			}
			if y := got["yard"].Run; y.Guided || y.Weight != 0 {
				t.Errorf("unguided face: guided %v, guidance_weight %v, want 0", y.Guided, y.Weight)
			}
		})
	}
}

// TestStageSamples: with Samples M each probe's shot carries M-1 more SR
// samples of the same size, all different (other noise in the same
// batch), the shot's SR the first; out-of-range M is refused.
func TestStageSamples(t *testing.T) {
	e := fixtureEngine(t)
	lr := &faceimg.Planar{W: 1, H: 1, Pix: []float32{0.4, 0.5, 0.6}}
	for _, c := range []struct {
		samples, want int // want: Samples per shot; -1: refused
	}{{0, 0}, {1, 0}, {3, 2}, {MaxSamples + 1, -1}, {-1, -1}} {
		in, out := queue.New[*face.Probe](4), queue.New[[]*face.Shot](4)
		st, err := NewStage(StageOptions{In: in, Out: out, Engine: e, Policy: "off", Params: Params{Sampler: "ode"}, MaxBatch: 2, Samples: c.samples, Seed: 9})
		if c.want < 0 {
			if err == nil {
				t.Errorf("samples %d accepted", c.samples)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		in.Push(&face.Probe{Camera: "door", TrackID: 1, LR: lr})
		in.Push(&face.Probe{Camera: "door", TrackID: 2, LR: lr})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- st.Run(ctx) }()
		var shots []*face.Shot
		for len(shots) < 2 {
			b, err := out.Pop(ctx)
			if err != nil {
				t.Fatal(err)
			}
			shots = append(shots, b...)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		seen := map[string]bool{}
		for _, sh := range shots {
			if len(sh.Samples) != c.want {
				t.Errorf("samples %d: track %d has %d more samples, want %d", c.samples, sh.Probe.TrackID, len(sh.Samples), c.want)
			}
			for _, p := range append([]*faceimg.Planar{sh.SR}, sh.Samples...) {
				if len(p.Pix) != len(sh.SR.Pix) || p.W != sh.SR.W {
					t.Fatalf("samples %d: a sample of %dx%d (%d values), SR %dx%d", c.samples, p.W, p.H, len(p.Pix), sh.SR.W, sh.SR.H)
				}
				k := fmt.Sprint(p.Pix[:8])
				if seen[k] {
					t.Errorf("samples %d: two SR samples are the same (same noise)", c.samples)
				}
				seen[k] = true
			}
		}
		if s := st.Stats(); s.Faces != 2 {
			t.Errorf("samples %d: %d faces counted, want 2 (the probes, not the samples)", c.samples, s.Faces)
		}
	}
}

// TestStageDirect: probes whose framing square reaches DirectSide skip SR
// (their preview is the shot's face, scale floor(128/side)); the others,
// and a preview of another size than the SR output, are super-resolved;
// sides the direct path has no scale for are refused as the option.
func TestStageDirect(t *testing.T) {
	e := fixtureEngine(t)
	lr := &faceimg.Planar{W: 1, H: 1, Pix: []float32{0.4, 0.5, 0.6}}
	preview := func(n int) *faceimg.Planar {
		p := &faceimg.Planar{W: n, H: n, Pix: make([]float32, 3*n*n)}
		for i := range p.Pix {
			p.Pix[i] = 0.25
		}
		return p
	}
	for _, side := range []float64{10, 18, math.NaN(), -1} {
		if _, err := NewStage(StageOptions{In: queue.New[*face.Probe](1), Out: queue.New[[]*face.Shot](1), Engine: e, Policy: "off",
			Params: Params{Sampler: "ode"}, DirectSide: side}); err == nil {
			t.Errorf("direct side %v accepted", side)
		}
	}
	cases := []struct {
		side      float64
		preview   *faceimg.Planar
		wantScale int // 0: super-resolved
	}{
		{0, preview(fixHW), 0},
		{20, preview(fixHW), 0},
		{24, preview(fixHW), 5},
		{33, preview(fixHW), 3},
		{42.7, preview(fixHW), 2},
		{300, preview(fixHW), 2},
		{40, preview(fixHW + 1), 0},
		{40, nil, 0},
	}
	in, out := queue.New[*face.Probe](len(cases)), queue.New[[]*face.Shot](len(cases))
	st, err := NewStage(StageOptions{In: in, Out: out, Engine: e, Policy: "off", Params: Params{Sampler: "ode"}, MaxBatch: 3, DirectSide: 24, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		in.Push(&face.Probe{Camera: "door", TrackID: uint64(i), LR: lr, Preview: c.preview, Framing: face.Framing{Side: c.side}})
	}
	ctx, stop := startStage(t, st)
	got := map[uint64]*face.Shot{}
	var order []uint64
	for len(got) < len(cases) {
		b, err := out.Pop(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, sh := range b {
			got[sh.Probe.TrackID] = sh
			order = append(order, sh.Probe.TrackID)
		}
	}
	stop()
	if !slices.IsSorted(order) {
		t.Errorf("shots out of the probes' order: %v", order)
	}
	direct := 0
	for i, c := range cases {
		sh := got[uint64(i)]
		if c.wantScale == 0 {
			if sh.Run.Sampler != "ode" || sh.Run.Scale != fixHW || sh.SR == c.preview {
				t.Errorf("side %v: sampler %q scale %d, want super-resolved", c.side, sh.Run.Sampler, sh.Run.Scale)
			}
			continue
		}
		direct++
		if sh.Run.Sampler != face.DirectSampler || sh.Run.Scale != c.wantScale || sh.SR != c.preview || sh.Run.Evals != 0 || sh.Run.Guided {
			t.Errorf("side %v: sampler %q scale %d evals %d, want direct at scale %d with the preview", c.side, sh.Run.Sampler, sh.Run.Scale, sh.Run.Evals, c.wantScale)
		}
	}
	if s := st.Stats(); s.Direct != uint64(direct) || s.Faces != uint64(len(cases)-direct) {
		t.Errorf("stats: %d direct, %d super-resolved; want %d and %d", s.Direct, s.Faces, direct, len(cases)-direct)
	}
}

// TestStageDirectSurvivesFailedSR: when a batch's SR run fails, the direct
// faces beside it still get their shots; only the SR faces count as failed.
func TestStageDirectSurvivesFailedSR(t *testing.T) {
	e := fixtureEngine(t)
	good := &faceimg.Planar{W: 1, H: 1, Pix: []float32{0.4, 0.5, 0.6}}
	bad := &faceimg.Planar{W: 2, H: 2, Pix: make([]float32, 12)} // not the score model's LR size
	pre := &faceimg.Planar{W: fixHW, H: fixHW, Pix: make([]float32, 3*fixHW*fixHW)}
	in, out := queue.New[*face.Probe](4), queue.New[[]*face.Shot](4)
	st, err := NewStage(StageOptions{In: in, Out: out, Engine: e, Policy: "off", Params: Params{Sampler: "ode"}, MaxBatch: 2, DirectSide: 24, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	// both waiting before Run starts: one batch
	in.Push(&face.Probe{Camera: "door", TrackID: 1, LR: bad, Framing: face.Framing{Side: 20}})
	in.Push(&face.Probe{Camera: "door", TrackID: 2, LR: good, Preview: pre, Framing: face.Framing{Side: 30}})
	ctx, stop := startStage(t, st)
	b, err := out.Pop(ctx)
	stop()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 1 || b[0].Probe.TrackID != 2 || b[0].Run.Sampler != face.DirectSampler {
		t.Fatalf("batch %v: want only the direct shot of track 2", b)
	}
	if s := st.Stats(); s.Failed != 1 || s.Direct != 1 || s.Faces != 0 {
		t.Errorf("stats %+v: want 1 failed, 1 direct, 0 super-resolved", s)
	}
}

// startStage runs st until the returned stop is called; stop waits for Run
// to return and fails the test when it returned an error.
func startStage(t *testing.T, st *Stage) (context.Context, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx) }()
	return ctx, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}
