package hwtest

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"image"
	_ "image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/srdgd/srdgd/detect"
	"github.com/srdgd/srdgd/internal/faceimg"
	"github.com/srdgd/srdgd/internal/ort"
	"github.com/srdgd/srdgd/internal/resample"
	"github.com/srdgd/srdgd/match"
	"github.com/srdgd/srdgd/srdg"
)

// probeModel is y = x + x on float32 [n, 4]: small enough that a provider that
// loads at all loads it at once, and checkable (made with Python's onnx
// helper, opset 13, no weights).
//
//go:embed probe.onnx
var probeModel []byte

// testFace is a 64x64 face photo for the SRDG run (testface.LICENSE).
//
//go:embed testface.png
var testFace []byte

// allProviders are tried alone, configured or not, so the report says what the
// box could do as well as what the config asks for.
var allProviders = []string{ort.TensorRT, ort.CUDA, ort.CPU}

func (o *Options) sessionOptions(providers ...string) ort.SessionOptions {
	return ort.SessionOptions{Providers: providers, IntraOpThreads: o.ORT.IntraThreads, InterOpThreads: o.ORT.InterThreads,
		TRTCacheDir: o.ORT.TRTCacheDir, TRTFP16: o.ORT.TRTFP16}
}

// timedFunc runs one check, timing it, and adds it to the report.
type timedFunc func(name string, f func() Check)

// runORT checks the library, the providers, every model and the SRDG run.
func (o *Options) runORT(ctx context.Context, timed timedFunc) {
	var (
		rt    *ort.Runtime
		avail []string // configured providers that load, in preference order
	)
	timed("onnxruntime", func() Check {
		c := Check{Name: "onnxruntime", Values: map[string]any{}}
		lib, err := ort.FindLibrary(o.ORT.Library)
		if err != nil {
			c.Status, c.Message = StatusFail, err.Error()
			return c
		}
		c.Values["library"] = lib
		if rt, err = ort.Open(lib, nil); err != nil {
			c.Status, c.Message = StatusFail, fmt.Sprintf("%s does not load: %v", lib, err)
			return c
		}
		c.Values["version"] = rt.Version()
		c.Status, c.Message = StatusOK, fmt.Sprintf("%s at %s", rt.Version(), lib)
		return c
	})
	if rt == nil {
		for _, m := range o.Models {
			timed("model/"+m.Kind, func() Check { return o.modelWithoutORT(m) })
		}
		if o.SR != nil {
			timed("srdg", func() Check {
				return Check{Name: "srdg", Status: StatusSkip, Message: "needs ONNX Runtime"}
			})
		}
		return
	}
	defer rt.Close()

	probe, cleanup, err := writeProbe()
	loaded := map[string]bool{}
	for _, p := range allProviders {
		name := "provider/" + p
		timed(name, func() Check {
			if err != nil {
				return Check{Name: name, Status: StatusFail, Message: err.Error()}
			}
			c := o.checkProvider(ctx, rt, probe, p)
			loaded[p] = c.Status == StatusOK
			return c
		})
	}
	if cleanup != nil {
		cleanup()
	}
	for _, p := range o.ORT.Providers {
		if loaded[p] {
			avail = append(avail, p)
		}
	}
	timed("providers", func() Check {
		c := Check{Name: "providers", Values: map[string]any{"configured": strings.Join(o.ORT.Providers, ","), "usable": strings.Join(avail, ",")}}
		if len(avail) == 0 {
			c.Status = StatusFail
			c.Message = fmt.Sprintf("none of srdg.providers [%s] loads on this box (add cpu to srdg.providers, or fix the driver)", strings.Join(o.ORT.Providers, ", "))
			return c
		}
		c.Status = StatusOK
		c.Message = fmt.Sprintf("models run on %s (srdg.providers: %s)", avail[0], strings.Join(o.ORT.Providers, ", "))
		return c
	})

	for _, m := range o.Models {
		timed("model/"+m.Kind, func() Check { return o.checkModel(ctx, rt, m, avail) })
	}
	if o.SR != nil {
		timed("srdg", func() Check { return o.checkSR(ctx, rt, avail) })
	}
}

func writeProbe() (string, func(), error) {
	dir, err := os.MkdirTemp("", "srdgd-hwtest-")
	if err != nil {
		return "", nil, fmt.Errorf("provider probe: %w", err)
	}
	p := filepath.Join(dir, "probe.onnx")
	if err := os.WriteFile(p, probeModel, 0o600); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("provider probe: %w", err)
	}
	return p, func() { os.RemoveAll(dir) }, nil
}

var probeSlot = ort.Slot{Name: "provider probe", Inputs: []string{"x"}, Outputs: []string{"y"}}

// checkProvider loads the probe model with provider p alone and runs it.
// A configured provider that does not load is a warning (the daemon falls
// back to the next one); the "providers" check fails when none loads.
func (o *Options) checkProvider(ctx context.Context, rt *ort.Runtime, probe, p string) Check {
	c := Check{Name: "provider/" + p}
	configured := slices.Contains(o.ORT.Providers, p)
	err := func() error {
		s, err := rt.NewSession(probe, probeSlot, o.sessionOptions(p))
		if err != nil {
			return err
		}
		defer s.Close()
		x := []float32{1, 2, 3, 4}
		y := make([]float32, 4)
		xt, err := ort.NewTensor(x, 1, 4)
		if err != nil {
			return err
		}
		defer xt.Destroy()
		yt, err := ort.NewTensor(y, 1, 4)
		if err != nil {
			return err
		}
		defer yt.Destroy()
		if err := s.Run(ctx, []ort.Value{xt}, []ort.Value{yt}); err != nil {
			return err
		}
		for i := range x {
			if y[i] != 2*x[i] {
				return fmt.Errorf("computed %v for 2 x %v", y, x)
			}
		}
		return nil
	}()
	switch {
	case err == nil && configured:
		c.Status, c.Message = StatusOK, "loads"
	case err == nil:
		c.Status, c.Message = StatusOK, "loads (not in srdg.providers)"
	case configured:
		c.Status, c.Message = StatusWarn, "does not load: "+providerReason(rt.Library(), p, err)
	default:
		c.Status, c.Message = StatusSkip, "does not load (not in srdg.providers): "+providerReason(rt.Library(), p, err)
	}
	return c
}

// providerReason says plainly when the library is a build without the
// provider (its plug-in libraries are missing next to it); otherwise it is
// ONNX Runtime's own reason (missing CUDA/cuDNN/TensorRT libraries, no GPU).
func providerReason(lib, p string, err error) string {
	var missing []string
	for _, f := range ort.ProviderLibraries[p] {
		if _, serr := os.Stat(filepath.Join(filepath.Dir(lib), f)); serr != nil {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return fmt.Sprintf("this ONNX Runtime build has no %s provider (%s has no %s): install a GPU build of ONNX Runtime %s there",
			p, filepath.Dir(lib), strings.Join(missing, ", "), ortVersionHint(lib))
	}
	return reason(err)
}

func ortVersionHint(lib string) string {
	if b, err := os.ReadFile(filepath.Join(filepath.Dir(lib), "VERSION")); err == nil {
		return strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile(filepath.Join(filepath.Dir(lib), "ONNXRUNTIME_VERSION")); err == nil {
		return strings.TrimSpace(string(b))
	}
	return "of the same version"
}

// reason keeps ORT's message short: the part after the provider prefix
// internal/ort adds and without ORT's C++ source location.
func reason(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "no execution provider could load it ("); i >= 0 {
		msg = strings.TrimSuffix(msg[i+len("no execution provider could load it ("):], ")")
		if _, after, ok := strings.Cut(msg, ": "); ok {
			msg = after
		}
	}
	// "[ONNXRuntimeError] : 1 : FAIL : " says nothing an operator can use
	if i := strings.LastIndex(msg, "FAIL : "); i >= 0 && strings.HasPrefix(msg, "[ONNXRuntimeError]") {
		msg = msg[i+len("FAIL : "):]
	}
	if len(msg) > 400 {
		msg = msg[:400] + "..."
	}
	return msg
}

func (o *Options) modelWithoutORT(m Model) Check {
	c := Check{Name: "model/" + m.Kind, Values: map[string]any{}}
	if m.Path != "" {
		c.Values["path"] = m.Path
	}
	if err := modelFile(m); err != nil {
		c.Status, c.Message = StatusFail, err.Error()
		return c
	}
	c.Status, c.Message = StatusSkip, m.Path+" exists; loading it needs ONNX Runtime"
	return c
}

func modelFile(m Model) error {
	if m.Missing != nil {
		return m.Missing
	}
	st, err := os.Stat(m.Path)
	if err != nil {
		return fmt.Errorf("%s: model file %s: %w (build the default set with `make models`, or set %s)", m.Key, m.Path, unwrapPath(err), m.Key)
	}
	if st.IsDir() {
		return fmt.Errorf("%s: %s is a folder, not a model file", m.Key, m.Path)
	}
	return nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// checkModel: the file exists, its names and metadata fit the slot of its
// kind, and one evaluation per usable provider.
func (o *Options) checkModel(ctx context.Context, rt *ort.Runtime, m Model, avail []string) Check {
	c := Check{Name: "model/" + m.Kind, Values: map[string]any{}}
	if m.Path != "" {
		c.Values["path"] = m.Path
	}
	if err := modelFile(m); err != nil {
		c.Status, c.Message = StatusFail, err.Error()
		return c
	}
	ins, outs, meta, err := rt.ReadInfo(m.Path)
	if err != nil {
		c.Status, c.Message = StatusFail, fmt.Sprintf("%s: %v", m.Key, err)
		return c
	}
	if n := meta["srdgd.name"]; n != "" {
		c.Values["name"] = n
	}
	if err := o.fitsSlot(rt, m, ins, outs, meta); err != nil {
		c.Status, c.Message = StatusFail, fmt.Sprintf("%s: %v", m.Key, err)
		return c
	}
	var times, failed []string
	for _, p := range avail {
		first, d, err := evalOnce(ctx, rt, m.Path, ins, outs, o.sessionOptions(p))
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %s", p, reason(err)))
			continue
		}
		o.evalTimes[m.Kind+"/"+p] = d
		c.Values[p+"_ms"] = round2(ms(d))
		c.Values[p+"_first_ms"] = round2(ms(first))
		times = append(times, fmt.Sprintf("%s %.1f ms", p, ms(d)))
	}
	switch {
	case len(avail) == 0:
		c.Status, c.Message = StatusWarn, "fits its slot; not evaluated: no usable provider"
	case len(times) == 0:
		c.Status, c.Message = StatusFail, "fits its slot but does not run: "+strings.Join(failed, "; ")
	case len(failed) > 0:
		c.Status, c.Message = StatusWarn, fmt.Sprintf("fits its slot; one evaluation: %s; fails on %s", strings.Join(times, ", "), strings.Join(failed, "; "))
	default:
		c.Status, c.Message = StatusOK, "fits its slot; one evaluation: "+strings.Join(times, ", ")
	}
	return c
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }

// fitsSlot checks the model against the slot the daemon loads it into: the
// exported slots directly, the others through the component that owns them
// (it checks its own slot when it loads).
func (o *Options) fitsSlot(rt *ort.Runtime, m Model, ins, outs []ortgo.InputOutputInfo, meta map[string]string) error {
	switch m.Kind {
	case KindScore:
		return ort.CheckSlot(m.Path, srdg.ScoreSlot, ins, outs, meta)
	case KindGuidance:
		return ort.CheckSlot(m.Path, srdg.GuidanceSlot, ins, outs, meta)
	case KindLRAttrs:
		return ort.CheckSlot(m.Path, srdg.AttrSlot, ins, outs, meta)
	case KindBlazeFace:
		d, err := detect.NewBlazeFace(rt, detect.BlazeFaceOptions{Model: m.Path, Threads: 1, Providers: []string{ort.CPU}})
		if err != nil {
			return err
		}
		return d.Close()
	case KindEmbedder:
		e, err := match.NewEmbedder(match.EmbedderOptions{Runtime: rt, EmbedderPath: m.Path, LandmarksPath: o.landmarksFor(m.Path),
			Session: o.sessionOptions(ort.CPU)})
		if err != nil {
			return err
		}
		return e.Close()
	case KindLandmarks:
		// the embedder check loads it into its slot; here the kind suffices
		if k := meta["srdgd.kind"]; k != "face_landmarks" {
			return fmt.Errorf("%s is a %q model, this slot needs \"face_landmarks\"", m.Path, k)
		}
		return nil
	default:
		return fmt.Errorf("unknown model kind %q", m.Kind)
	}
}

// landmarksFor is the configured landmarks model, else the daemon's default:
// face_landmarks68.onnx next to the embedder.
func (o *Options) landmarksFor(embedder string) string {
	for _, m := range o.Models {
		if m.Kind == KindLandmarks {
			return m.Path
		}
	}
	return filepath.Join(filepath.Dir(embedder), "face_landmarks68.onnx")
}

// evalOnce runs the model with constant inputs (dynamic dimensions as 1) on
// one provider: a first call (session warm-up, TensorRT engine build) and a
// timed second one.
func evalOnce(ctx context.Context, rt *ort.Runtime, path string, ins, outs []ortgo.InputOutputInfo, so ort.SessionOptions) (first, d time.Duration, err error) {
	slot := ort.Slot{Name: "model"}
	var inputs []ort.Value
	defer func() {
		for _, v := range inputs {
			v.Destroy()
		}
	}()
	for _, in := range ins {
		if in.OrtValueType != ortgo.ONNXTypeTensor || in.DataType != ortgo.TensorElementDataTypeFloat {
			return 0, 0, fmt.Errorf("input %q is not a float32 tensor; not evaluated", in.Name)
		}
		shape := make([]int64, len(in.Dimensions))
		n := int64(1)
		for i, s := range in.Dimensions {
			if s <= 0 {
				s = 1
			}
			shape[i] = s
			n *= s
		}
		data := make([]float32, n)
		for i := range data {
			data[i] = 0.5
		}
		t, err := ort.NewTensor(data, shape...)
		if err != nil {
			return 0, 0, fmt.Errorf("input %q %v: %w", in.Name, shape, err)
		}
		inputs = append(inputs, t)
		slot.Inputs = append(slot.Inputs, in.Name)
	}
	for _, out := range outs {
		slot.Outputs = append(slot.Outputs, out.Name)
	}
	s, err := rt.NewSession(path, slot, so)
	if err != nil {
		return 0, 0, err
	}
	defer s.Close()
	run := func() (time.Duration, error) {
		outputs := make([]ort.Value, len(slot.Outputs)) // nil: ORT allocates
		t0 := time.Now()
		err := s.Run(ctx, inputs, outputs)
		el := time.Since(t0)
		for _, v := range outputs {
			if v != nil {
				v.Destroy()
			}
		}
		return el, err
	}
	if first, err = run(); err != nil {
		return 0, 0, err
	}
	d, err = run()
	return first, d, err
}

// unfitFactor: a one-face run slower than this many latency budgets makes the
// box unfit (the SR queue would drop most faces); slower than one budget is a
// warning.
const unfitFactor = 10

// checkSR super-resolves one face with the configured sampler and compares
// the time with srdg.latency_budget.
func (o *Options) checkSR(ctx context.Context, rt *ort.Runtime, avail []string) Check {
	sr := o.SR
	c := Check{Name: "srdg", Values: map[string]any{}}
	if len(avail) == 0 {
		c.Status, c.Message = StatusSkip, "no usable execution provider"
		return c
	}
	for _, m := range []Model{{Kind: KindScore, Key: "srdg.score_model", Path: sr.ScorePath, Missing: sr.ScoreMissing},
		{Kind: KindGuidance, Key: "srdg.guidance_model", Path: sr.GuidancePath, Missing: sr.GuidanceMissing}} {
		if m.Path == "" && m.Missing == nil {
			continue
		}
		if err := modelFile(m); err != nil {
			c.Status, c.Message = StatusSkip, "needs the "+m.Kind+" model: "+err.Error()
			return c
		}
	}
	// A run the model timings say would take too long is predicted, not run.
	if o.predictSR(avail[0], &c) {
		return c
	}
	eng, err := srdg.Open(srdg.ModelOptions{Runtime: rt, ScorePath: sr.ScorePath, GuidancePath: sr.GuidancePath,
		WantScale: sr.Scale, Session: o.sessionOptions(avail...), MaxBatch: 1})
	if err != nil {
		c.Status, c.Message = StatusFail, err.Error()
		return c
	}
	defer eng.Close()
	hr, lr := eng.Sizes()
	face, err := o.loadFace(lr)
	if err != nil {
		c.Status, c.Message = StatusFail, err.Error()
		return c
	}
	// Labels only decide whether guidance runs; any complete set costs the
	// same, which is what this check measures.
	labels := make([]int, len(eng.Attributes()))
	for i := range labels {
		labels[i] = 1
	}
	p := sr.Params
	p.Schedule = srdg.Schedule{SigmaMin: eng.ScoreInfo.SigmaMin, SigmaMax: eng.ScoreInfo.SigmaMax, Eps: p.Schedule.Eps}
	if p.Schedule.Eps == 0 {
		p.Schedule.Eps = srdg.DefaultSchedule.Eps
	}
	seed := sr.Seed
	if seed == 0 {
		seed = 1
	}
	t0 := time.Now()
	res, err := eng.SuperResolve(ctx, []srdg.Input{{LR: face, Labels: labels}}, p, srdg.NewSeededNoise(seed))
	el := time.Since(t0)
	if err != nil {
		c.Status, c.Message = StatusFail, fmt.Sprintf("one-face run: %v", err)
		return c
	}
	r := res[0]
	var bad int
	for _, v := range r.SR {
		if v != v || v < 0 || v > 1 { // NaN or out of range
			bad++
		}
	}
	c.Values["provider"] = eng.ScoreInfo.Provider
	c.Values["sampler"] = r.Sampler
	c.Values["steps"] = r.Steps
	c.Values["evaluations"] = r.ScoreEvals + r.GuidanceEvals
	c.Values["guided"] = r.Guided
	c.Values["lr"] = lr
	c.Values["hr"] = hr
	c.Values["latency_ms"] = round2(ms(el))
	c.Values["net_ms"] = round2(ms(r.NetTime))
	c.Values["budget_ms"] = round2(ms(sr.LatencyBudget))
	desc := fmt.Sprintf("%dx%d -> %dx%d with sampler %s (%d steps, %d evaluations, guided %v) on %s in %s",
		lr, lr, hr, hr, r.Sampler, r.Steps, r.ScoreEvals+r.GuidanceEvals, r.Guided, eng.ScoreInfo.Provider, el.Round(time.Millisecond))
	switch {
	case bad > 0:
		c.Status, c.Message = StatusFail, fmt.Sprintf("%s, but %d output values are NaN or outside [0, 1]", desc, bad)
	case sr.LatencyBudget > 0 && el > unfitFactor*sr.LatencyBudget:
		c.Status, c.Message = StatusFail, fmt.Sprintf("%s: more than %dx srdg.latency_budget %s, faces would be dropped (a faster provider, sampler \"ode\" or fewer srdg.steps help)", desc, unfitFactor, sr.LatencyBudget)
	case sr.LatencyBudget > 0 && el > sr.LatencyBudget:
		c.Status, c.Message = StatusWarn, fmt.Sprintf("%s: over srdg.latency_budget %s, faces will queue (a faster provider, sampler \"ode\" or fewer srdg.steps help)", desc, sr.LatencyBudget)
	default:
		c.Status, c.Message = StatusOK, fmt.Sprintf("%s, within srdg.latency_budget %s", desc, sr.LatencyBudget)
	}
	return c
}

// predictSR estimates the one-face run from the model timings on
// provider; when it would take longer than the check allows, it concludes c
// (warn, or fail past unfitFactor budgets) and returns true.
func (o *Options) predictSR(provider string, c *Check) bool {
	sr := o.SR
	if q, _, err := sr.Params.Resolve(); err == nil {
		sc, okS := o.evalTimes[KindScore+"/"+provider]
		g, okG := o.evalTimes[KindGuidance+"/"+provider]
		if okS && (sr.GuidancePath == "" || okG) {
			evals := q.EvalsPerFace()
			per := sc
			if sr.GuidancePath != "" && q.W > 0 {
				per += g
			}
			est := time.Duration(evals) * per
			c.Values["estimated_ms"] = round2(ms(est))
			if est > o.SRMaxRun {
				c.Status = StatusWarn
				if sr.LatencyBudget > 0 && est > unfitFactor*sr.LatencyBudget {
					c.Status = StatusFail
				}
				c.Message = fmt.Sprintf("not run: sampler %s needs %d evaluations per face, about %s on %s from the model timings (over the %s this check allows; srdg.latency_budget %s): use sampler \"fast\" or \"ode\", fewer srdg.steps, or a GPU",
					q.Sampler, evals, est.Round(time.Second), provider, o.SRMaxRun, sr.LatencyBudget)
				return true
			}
		}
	}
	return false
}

// loadFace returns the LR probe (3 x lr x lr in [0, 1]) from FacePath or the
// built-in face, downscaled with antialiased bilinear as in training.
func (o *Options) loadFace(lr int) ([]float32, error) {
	var img image.Image
	var err error
	if o.SR.FacePath != "" {
		img, err = faceimg.Load(o.SR.FacePath)
	} else {
		img, _, err = image.Decode(bytes.NewReader(testFace))
	}
	if err != nil {
		return nil, fmt.Errorf("test face: %w", err)
	}
	p := faceimg.FromImage(img)
	if p.W == lr && p.H == lr {
		return p.Pix, nil
	}
	if p.W < lr || p.H < lr {
		return nil, fmt.Errorf("test face is %dx%d, smaller than the model's %dx%d input", p.W, p.H, lr, lr)
	}
	return resample.Resize(p.Pix, 3, p.H, p.W, lr, lr, resample.Bilinear)
}
