package hwtest

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/srdgd/srdgd/internal/ort"
	"github.com/srdgd/srdgd/srdg"
)

// modelsDir is the repository's built model set.
const modelsDir = "../models/dist"

func requireORT(t *testing.T) {
	t.Helper()
	if _, err := ort.FindLibrary(""); err != nil {
		t.Skipf("SKIPPING %s: %v", t.Name(), err)
	}
}

func requireModel(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(modelsDir, name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("SKIPPING %s: %s missing (make models): %v", t.Name(), p, err)
	}
	return p
}

// baseOptions turns off everything but what a test looks at: no cameras, MQTT
// off, state in a temp dir.
func baseOptions(t *testing.T) Options {
	dir := t.TempDir()
	return Options{
		ORT:          ORTOptions{Providers: []string{ort.TensorRT, ort.CUDA, ort.CPU}, IntraThreads: 1},
		MQTT:         MQTTOptions{Enabled: false},
		Gallery:      GalleryOptions{Path: filepath.Join(dir, "gallery.db"), KeyFile: filepath.Join(dir, "gallery.key"), Encrypt: true},
		StateDir:     dir,
		SpoolDir:     filepath.Join(dir, "spool"),
		MinFreeBytes: 1,
		Logger:       slog.New(slog.DiscardHandler),
	}
}

func mustCheck(t *testing.T, r *Report, name string) *Check {
	t.Helper()
	c := r.Find(name)
	if c == nil {
		var names []string
		for _, c := range r.Checks {
			names = append(names, c.Name)
		}
		t.Fatalf("no check %q in the report (have %s)", name, strings.Join(names, ", "))
	}
	return c
}

func expect(t *testing.T, r *Report, name string, st Status, msgHas ...string) *Check {
	t.Helper()
	c := mustCheck(t, r, name)
	if c.Status != st {
		t.Errorf("%s: status %s (%s), want %s", name, c.Status, c.Message, st)
	}
	for _, s := range msgHas {
		if !strings.Contains(c.Message, s) {
			t.Errorf("%s: message %q does not contain %q", name, c.Message, s)
		}
	}
	return c
}

// TestORTModelsAndSR runs the ONNX Runtime part on the shipped models: the
// library and its version, CPU loading and GPU providers refused with a
// reason (warn, since cpu is configured), each model fitting its slot with a
// CPU time, and a one-face SRDG run against the budget.
func TestORTModelsAndSR(t *testing.T) {
	requireORT(t)
	score := requireModel(t, "score_x8.onnx")
	guid := requireModel(t, "guidance.onnx")
	o := baseOptions(t)
	o.Models = []Model{
		{Kind: KindScore, Key: "srdg.score_model", Path: score},
		{Kind: KindGuidance, Key: "srdg.guidance_model", Path: guid},
		{Kind: KindLRAttrs, Key: "srdg.attr_model", Path: requireModel(t, "lr_attrs_x8.onnx")},
		{Kind: KindBlazeFace, Key: "detect.blazeface_model", Path: requireModel(t, "blazeface.onnx")},
		{Kind: KindEmbedder, Key: "match.embedder_model", Path: requireModel(t, "face_embedder.onnx")},
		{Kind: KindLandmarks, Key: "match.embedder_model", Path: requireModel(t, "face_landmarks68.onnx")},
	}
	o.SR = &SROptions{ScorePath: score, GuidancePath: guid, Scale: 8,
		Params: srdg.Params{Sampler: "ode", Steps: 2}, LatencyBudget: time.Hour}
	r := Run(context.Background(), o)

	lib := expect(t, r, "onnxruntime", StatusOK)
	if v, _ := lib.Values["version"].(string); !strings.HasPrefix(v, "1.") {
		t.Errorf("onnxruntime version %q", v)
	}
	expect(t, r, "provider/cpu", StatusOK, "loads")
	for _, p := range []string{"provider/tensorrt", "provider/cuda"} {
		c := mustCheck(t, r, p)
		switch c.Status {
		case StatusOK: // a GPU box
		case StatusWarn:
			if !strings.HasPrefix(c.Message, "does not load: ") || len(c.Message) < len("does not load: ")+5 {
				t.Errorf("%s: no reason given: %q", p, c.Message)
			}
		default:
			t.Errorf("%s: status %s (%s), want ok or warn", p, c.Status, c.Message)
		}
	}
	expect(t, r, "providers", StatusOK)
	for _, k := range []string{KindScore, KindGuidance, KindLRAttrs, KindBlazeFace, KindEmbedder, KindLandmarks} {
		c := expect(t, r, "model/"+k, StatusOK, "fits its slot", "cpu ")
		if v, ok := c.Values["cpu_ms"].(float64); !ok || v <= 0 {
			t.Errorf("model/%s: cpu_ms %v", k, c.Values["cpu_ms"])
		}
	}
	sr := expect(t, r, "srdg", StatusOK, "16x16 -> 128x128", "sampler ode", "within srdg.latency_budget")
	if sr.Values["evaluations"] != 6 || sr.Values["guided"] != true {
		t.Errorf("srdg values %v: want 6 evaluations (2 Heun steps = 3 score + 3 guidance), guided", sr.Values)
	}
	var b bytes.Buffer
	r.WriteText(&b)
	t.Logf("report:\n%s", b.String())
	if !r.Fit {
		t.Error("box not fit")
	}

	latency := time.Duration(sr.Values["latency_ms"].(float64) * float64(time.Millisecond))

	// over budget: a warning; over ten budgets: unfit
	o.Models = nil
	o.SR.LatencyBudget = latency / 3
	r = Run(context.Background(), o)
	if c := mustCheck(t, r, "srdg"); c.Status != StatusWarn && c.Status != StatusFail {
		t.Errorf("srdg at 3x budget: %s %s", c.Status, c.Message)
	} // the second run may be slower on a busy box: warn or fail, never ok
	o.SR.LatencyBudget = time.Nanosecond
	r = Run(context.Background(), o)
	expect(t, r, "srdg", StatusFail, "more than 10x srdg.latency_budget 1ns")
	if r.Fit {
		t.Error("an SR run 10x over budget left the box fit")
	}

	// a run the model timings predict to take too long is not run
	o.Models = []Model{{Kind: KindScore, Key: "srdg.score_model", Path: score}, {Kind: KindGuidance, Key: "srdg.guidance_model", Path: guid}}
	o.SR.Params = srdg.Params{Sampler: "reference"} // 3000 evaluations
	o.SR.LatencyBudget = time.Hour
	o.SRMaxRun = time.Second
	t0 := time.Now()
	r = Run(context.Background(), o)
	c := expect(t, r, "srdg", StatusWarn, "not run: sampler reference needs 3000 evaluations per face")
	if c.ElapsedMS > 1000 || time.Since(t0) > 5*time.Minute {
		t.Errorf("the predicted run took %v ms", c.ElapsedMS)
	}
	o.SR.LatencyBudget = time.Millisecond
	r = Run(context.Background(), o)
	expect(t, r, "srdg", StatusFail, "not run: sampler reference")
}

func TestORTFailures(t *testing.T) {
	requireORT(t)
	score := requireModel(t, "score_x8.onnx")
	cases := []struct {
		name   string
		edit   func(*Options)
		check  string
		status Status
		msg    []string
	}{
		{"missing library", func(o *Options) { o.ORT.Library = "/nonexistent/libonnxruntime.so.1" },
			"onnxruntime", StatusFail, []string{"the ONNX Runtime library /nonexistent/libonnxruntime.so.1 not found", "/nonexistent/libonnxruntime.so.1", "srdg.ort_library"}},
		{"missing model", func(o *Options) {
			o.Models = []Model{{Kind: KindScore, Key: "srdg.score_model", Path: "/nonexistent/score_x8.onnx"}}
		}, "model/score", StatusFail, []string{"srdg.score_model", "/nonexistent/score_x8.onnx", "no such file", "make models"}},
		{"missing model without ORT", func(o *Options) {
			o.ORT.Library = "/nonexistent/libonnxruntime.so.1"
			o.Models = []Model{{Kind: KindScore, Key: "srdg.score_model", Path: "/nonexistent/score_x8.onnx"}}
		}, "model/score", StatusFail, []string{"srdg.score_model", "no such file"}},
		{"model in the wrong slot", func(o *Options) {
			o.Models = []Model{{Kind: KindGuidance, Key: "srdg.guidance_model", Path: score}}
		}, "model/guidance", StatusFail, []string{"srdg.guidance_model", `is a "score" model, this slot needs "guidance"`}},
		{"gpu only on a cpu box", func(o *Options) { o.ORT.Providers = []string{ort.CUDA} },
			"providers", StatusFail, []string{"none of srdg.providers [cuda] loads"}},
		{"score model of the wrong scale", func(o *Options) {
			o.SR = &SROptions{ScorePath: score, Scale: 16, Params: srdg.Params{Sampler: "ode", Steps: 1}}
		}, "srdg", StatusFail, []string{"is for 8x, the config asks for 16x"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := baseOptions(t)
			tc.edit(&o)
			r := Run(context.Background(), o)
			expect(t, r, tc.check, tc.status, tc.msg...)
			if tc.status == StatusFail && r.Fit {
				t.Error("report says fit")
			}
			if tc.name == "gpu only on a cpu box" {
				if c := mustCheck(t, r, "provider/cuda"); c.Status == StatusOK {
					t.Skip("this box has CUDA")
				}
			}
		})
	}
}

func TestReportOutput(t *testing.T) {
	r := &Report{Host: "box", Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	r.add(Check{Name: "clock", Status: StatusOK, Message: "fine", Values: map[string]any{"b": 2, "a": "x"}})
	r.add(Check{Name: "camera/door", Status: StatusFail, Message: "tcp unreachable"})
	r.add(Check{Name: "provider/cuda", Status: StatusWarn, Message: "does not load"})
	r.Fit = len(r.Failed()) == 0

	var txt bytes.Buffer
	if err := r.WriteText(&txt); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"srdgd hwtest on box at 2026-01-02T03:04:05Z", "OK    clock", "FAIL  camera/door    tcp unreachable",
		"clock: a=x b=2", "result: NOT FIT: 1 check(s) failed: camera/door"} {
		if !strings.Contains(txt.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, txt.String())
		}
	}
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Fit    bool
		Checks []struct {
			Name, Status, Message string
			Values                map[string]any
		}
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("%v\n%s", err, js.String())
	}
	if back.Fit || len(back.Checks) != 3 || back.Checks[1].Status != "fail" || back.Checks[0].Values["a"] != "x" {
		t.Errorf("json round trip: %+v", back)
	}
	r.Checks = r.Checks[:1]
	r.Fit = true
	txt.Reset()
	r.WriteText(&txt)
	if !strings.Contains(txt.String(), "result: FIT (0 warning(s))") {
		t.Errorf("fit verdict:\n%s", txt.String())
	}
}
