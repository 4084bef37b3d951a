package srdg

import (
	"context"
	"testing"
	"time"

	"github.com/srdgd/srdgd/detect"
	"github.com/srdgd/srdgd/internal/faceimg"
	"github.com/srdgd/srdgd/internal/queue"
)

func TestStageLabelsAndStops(t *testing.T) {
	e := fixtureEngine(t)
	in := queue.New[*detect.Probe](8)
	out := queue.New[*SRFace](8)
	st, err := NewStage(StageOptions{In: in, Out: out, Engine: e, Policy: "predict", AbstainThreshold: 0.8,
		Forced: map[string]map[string]int{"door": {"male": 1, "glasses": 0, "no_beard": 1}},
		Params: Params{Sampler: "ode"}, MaxBatch: 4, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	lr := &faceimg.Planar{W: 1, H: 1, Pix: []float32{0.4, 0.5, 0.6}}
	in.Push(&detect.Probe{Camera: "door", TrackID: 1, LR: lr})
	in.Push(&detect.Probe{Camera: "yard", TrackID: 2, LR: lr})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx) }()
	got := map[string]*SRFace{}
	for len(got) < 2 {
		f, err := out.Pop(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got[f.Probe.Camera] = f
	}
	if f := got["door"]; f.LabelSource != LabelsOperator || !f.Result.Guided || f.Result.Labels[0] != 1 || f.Result.Labels[1] != 0 {
		t.Errorf("door: source %s guided %v labels %v", f.LabelSource, f.Result.Guided, f.Result.Labels)
	}
	// no predictor loaded: nothing to guide with
	if f := got["yard"]; f.LabelSource != LabelsNone || f.Result.Guided {
		t.Errorf("yard: source %s guided %v", f.LabelSource, f.Result.Guided)
	}
	if len(got["door"].Result.SR) != 3*fixHW*fixHW {
		t.Errorf("SR size %d", len(got["door"].Result.SR))
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
