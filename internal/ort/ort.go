// Package ort wraps ONNX Runtime (through github.com/yalue/onnxruntime_go) for
// the daemon's networks: it finds the shared library, owns the process-wide ORT
// environment, chooses an execution provider (TensorRT -> CUDA -> CPU, in the
// configured order) with a log line saying why the others were not taken,
// checks a model's inputs, outputs and srdgd metadata against the slot it is
// loaded into, and runs it with context cancellation.
package ort

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/srdgd/srdgd/internal/locate"
)

// Execution provider names, as used in the config.
const (
	TensorRT = "tensorrt"
	CUDA     = "cuda"
	CPU      = "cpu"
)

// ErrLibraryNotFound is what FindLibrary's error is (errors.Is) when no
// libonnxruntime shared library is found.
var ErrLibraryNotFound = locate.ErrNotFound

// The ORT C environment is one per process; onnxruntime_go keeps it in package
// state. Runtime values share it through this reference count.
var (
	envMu   sync.Mutex
	envRefs int
	envLib  string
)

// Runtime is a handle on the process-wide ONNX Runtime environment.
type Runtime struct {
	lib    string
	log    *slog.Logger
	closed bool
	// lacks are the providers this library build has no plug-in for
	lacks map[string]bool
}

// ProviderLibraries are the plug-in libraries ONNX Runtime loads, from its
// own folder, for a GPU provider: a build without them (the CPU build) has
// no such provider.
var ProviderLibraries = map[string][]string{
	CUDA:     {"libonnxruntime_providers_shared.so", "libonnxruntime_providers_cuda.so"},
	TensorRT: {"libonnxruntime_providers_shared.so", "libonnxruntime_providers_tensorrt.so"},
}

// BuildProviders lists the execution providers the library at lib has
// (cpu, and each GPU provider whose plug-in libraries are beside it) and
// those it lacks, in the order tensorrt, cuda, cpu.
func BuildProviders(lib string) (have, lacks []string) {
	for _, p := range []string{TensorRT, CUDA} {
		ok := true
		for _, f := range ProviderLibraries[p] {
			if _, err := os.Stat(filepath.Join(filepath.Dir(lib), f)); err != nil {
				ok = false
			}
		}
		if ok {
			have = append(have, p)
		} else {
			lacks = append(lacks, p)
		}
	}
	return append(have, CPU), lacks
}

func newRuntime(lib string, log *slog.Logger) *Runtime {
	_, lacks := BuildProviders(lib)
	r := &Runtime{lib: lib, log: log, lacks: map[string]bool{}}
	for _, p := range lacks {
		r.lacks[p] = true
	}
	return r
}

// FindLibrary returns libonnxruntime: configured (srdg.ort_library) when
// set, else the first found in locate's search order (internal/locate).
func FindLibrary(configured string) (string, error) {
	return locate.ORTLibrary(locate.Places{}, "srdg.ort_library", configured)
}

// Open loads the library (found with FindLibrary) and initialises the
// environment, or shares it if another Runtime already did. A second Open with a
// different library path fails: one process holds one ORT.
func Open(libPath string, log *slog.Logger) (*Runtime, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lib, err := FindLibrary(libPath)
	if err != nil {
		return nil, err
	}
	envMu.Lock()
	defer envMu.Unlock()
	if envRefs > 0 {
		if lib != envLib {
			return nil, fmt.Errorf("onnxruntime already loaded from %s, cannot load %s too", envLib, lib)
		}
		envRefs++
		return newRuntime(lib, log), nil
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return nil, fmt.Errorf("onnxruntime %s: %w", lib, err)
	}
	envRefs, envLib = 1, lib
	// One line says what this build can run on; the sessions then say
	// nothing more about providers the build lacks (DEBUG only).
	have, lacks := BuildProviders(lib)
	log.Info("onnxruntime loaded", "library", lib, "version", ort.GetVersion(),
		"providers", strings.Join(have, ","), "not_in_this_build", strings.Join(lacks, ","))
	return newRuntime(lib, log), nil
}

// Library is the path of the loaded shared library.
func (r *Runtime) Library() string { return r.lib }

// Version is the ONNX Runtime version string.
func (r *Runtime) Version() string { return ort.GetVersion() }

// Close releases this handle; the environment is destroyed with the last one.
func (r *Runtime) Close() error {
	envMu.Lock()
	defer envMu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	envRefs--
	if envRefs == 0 {
		envLib = ""
		return ort.DestroyEnvironment()
	}
	return nil
}

// SessionOptions choose providers and threads for one model.
type SessionOptions struct {
	// Providers in order of preference; default [tensorrt, cuda, cpu].
	Providers []string
	// IntraOpThreads and InterOpThreads: 0 leaves ORT's default.
	IntraOpThreads, InterOpThreads int
	// TRTCacheDir holds TensorRT engines between runs (first build is slow).
	TRTCacheDir string
	// TRTFP16 lets TensorRT build fp16 engines.
	TRTFP16 bool
	// DeviceID selects the GPU.
	DeviceID int
}

// Slot describes what a consumer expects of a model file.
type Slot struct {
	Name    string   // e.g. "score model", for messages
	Kind    string   // required srdgd.kind
	Inputs  []string // required input names, in the order Run takes them
	Outputs []string // required output names
	// Meta lists metadata keys that must be present; consumers check values.
	Meta []string
}

// Session is one long-lived ORT session for one model.
type Session struct {
	Path     string
	Provider string
	Meta     map[string]string
	Inputs   []ort.InputOutputInfo
	Outputs  []ort.InputOutputInfo
	sess     *ort.DynamicAdvancedSession
	log      *slog.Logger
}

// ReadInfo returns a model's inputs, outputs and metadata without creating a
// session with providers (a CPU inspection session).
func (r *Runtime) ReadInfo(path string) (ins, outs []ort.InputOutputInfo, meta map[string]string, err error) {
	if _, err := os.Stat(path); err != nil {
		return nil, nil, nil, fmt.Errorf("model %s: %w", path, err)
	}
	ins, outs, err = ort.GetInputOutputInfo(path)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("model %s: not a loadable ONNX file: %w", path, err)
	}
	md, err := ort.GetModelMetadata(path)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("model %s: metadata: %w", path, err)
	}
	defer md.Destroy()
	keys, err := md.GetCustomMetadataMapKeys()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("model %s: metadata keys: %w", path, err)
	}
	meta = make(map[string]string, len(keys))
	for _, k := range keys {
		v, _, err := md.LookupCustomMetadataMap(k)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("model %s: metadata %s: %w", path, k, err)
		}
		meta[k] = v
	}
	return ins, outs, meta, nil
}

// CheckSlot verifies a model's names and metadata against a slot, returning one
// error that lists every mismatch.
func CheckSlot(path string, s Slot, ins, outs []ort.InputOutputInfo, meta map[string]string) error {
	var probs []string
	has := func(list []ort.InputOutputInfo, name string) bool {
		for _, io := range list {
			if io.Name == name {
				return true
			}
		}
		return false
	}
	names := func(list []ort.InputOutputInfo) string {
		n := make([]string, len(list))
		for i, io := range list {
			n[i] = io.Name
		}
		return strings.Join(n, ", ")
	}
	for _, in := range s.Inputs {
		if !has(ins, in) {
			probs = append(probs, fmt.Sprintf("has no input %q (inputs: %s)", in, names(ins)))
		}
	}
	for _, out := range s.Outputs {
		if !has(outs, out) {
			probs = append(probs, fmt.Sprintf("has no output %q (outputs: %s)", out, names(outs)))
		}
	}
	if s.Kind != "" {
		switch k, ok := meta["srdgd.kind"]; {
		case !ok:
			probs = append(probs, fmt.Sprintf("has no srdgd.kind metadata (want %q): was it exported by the srdgd model toolchain?", s.Kind))
		case k != s.Kind:
			probs = append(probs, fmt.Sprintf("is a %q model, this slot needs %q", k, s.Kind))
		}
	}
	for _, k := range s.Meta {
		if _, ok := meta[k]; !ok {
			probs = append(probs, fmt.Sprintf("has no %s metadata", k))
		}
	}
	if len(probs) > 0 {
		return fmt.Errorf("%s %s: %s", s.Name, path, strings.Join(probs, "; "))
	}
	return nil
}

// NewSession loads a model into the first provider that accepts it and checks
// it against the slot.
func (r *Runtime) NewSession(path string, slot Slot, o SessionOptions) (*Session, error) {
	ins, outs, meta, err := r.ReadInfo(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", slot.Name, err)
	}
	if err := CheckSlot(path, slot, ins, outs, meta); err != nil {
		return nil, err
	}
	provs := o.Providers
	if len(provs) == 0 {
		provs = []string{TensorRT, CUDA, CPU}
	}
	rejected := map[string]string{}
	for _, p := range provs {
		sess, err := r.trySession(path, slot, p, o)
		if err != nil {
			rejected[p] = shortReason(err)
			continue
		}
		attrs := []any{"model", path, "slot", slot.Name, "provider", p}
		for _, rp := range provs {
			why, ok := rejected[rp]
			switch {
			case !ok:
			case r.lacks[rp]:
				// expected: said once by "onnxruntime loaded"
				r.log.Debug("execution provider not in this onnxruntime build", "model", path, "provider", rp, "err", why)
			default:
				// the build has it, yet it failed (driver, GPU, libraries)
				attrs = append(attrs, "not_"+rp, why)
			}
		}
		r.log.Info("execution provider chosen", attrs...)
		return &Session{Path: path, Provider: p, Meta: meta, Inputs: ins, Outputs: outs, sess: sess, log: r.log}, nil
	}
	var why []string
	for _, p := range provs {
		why = append(why, fmt.Sprintf("%s: %s", p, rejected[p]))
	}
	return nil, fmt.Errorf("%s %s: no execution provider could load it (%s)", slot.Name, path, strings.Join(why, "; "))
}

// shortReason drops the C++ source location and signature ORT puts in front
// of its messages, so the log line says why in a few words.
func shortReason(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "[ONNXRuntimeError]"); i >= 0 {
		msg = msg[i:]
	}
	if len(msg) > 240 {
		msg = msg[:240] + "..."
	}
	return msg
}

func (r *Runtime) trySession(path string, slot Slot, provider string, o SessionOptions) (*ort.DynamicAdvancedSession, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	if o.IntraOpThreads > 0 {
		if err := so.SetIntraOpNumThreads(o.IntraOpThreads); err != nil {
			return nil, err
		}
	}
	if o.InterOpThreads > 0 {
		if err := so.SetInterOpNumThreads(o.InterOpThreads); err != nil {
			return nil, err
		}
	}
	switch provider {
	case TensorRT:
		trt, err := ort.NewTensorRTProviderOptions()
		if err != nil {
			return nil, fmt.Errorf("not in this onnxruntime build: %w", err)
		}
		defer trt.Destroy()
		opts := map[string]string{"device_id": fmt.Sprint(o.DeviceID)}
		if o.TRTFP16 {
			opts["trt_fp16_enable"] = "1"
		}
		if o.TRTCacheDir != "" {
			if err := os.MkdirAll(o.TRTCacheDir, 0o750); err != nil {
				return nil, fmt.Errorf("engine cache dir: %w", err)
			}
			opts["trt_engine_cache_enable"] = "1"
			opts["trt_engine_cache_path"] = o.TRTCacheDir
		}
		if err := trt.Update(opts); err != nil {
			return nil, err
		}
		if err := so.AppendExecutionProviderTensorRT(trt); err != nil {
			return nil, fmt.Errorf("not available: %w", err)
		}
	case CUDA:
		cu, err := ort.NewCUDAProviderOptions()
		if err != nil {
			return nil, fmt.Errorf("not in this onnxruntime build: %w", err)
		}
		defer cu.Destroy()
		if err := cu.Update(map[string]string{"device_id": fmt.Sprint(o.DeviceID)}); err != nil {
			return nil, err
		}
		if err := so.AppendExecutionProviderCUDA(cu); err != nil {
			return nil, fmt.Errorf("not available: %w", err)
		}
	case CPU:
	default:
		return nil, fmt.Errorf("unknown execution provider %q (known: tensorrt, cuda, cpu)", provider)
	}
	return ort.NewDynamicAdvancedSession(path, slot.Inputs, slot.Outputs, so)
}

// Run evaluates the model; inputs and outputs follow the slot's name order. The
// tensors are the caller's and may be reused across calls. When ctx ends during
// the call, ORT is asked to terminate it and Run returns ctx's error.
func (s *Session) Run(ctx context.Context, inputs, outputs []ort.Value) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ro, err := ort.NewRunOptions()
	if err != nil {
		return err
	}
	defer ro.Destroy()
	terminated := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { _ = ro.Terminate(); close(terminated) })
	err = s.sess.RunWithOptions(inputs, outputs, ro)
	if !stop() {
		// Terminate already runs: let it finish before ro is destroyed
		<-terminated
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if err != nil {
		return fmt.Errorf("model %s: run: %w", s.Path, err)
	}
	return nil
}

// Close releases the session's C memory.
func (s *Session) Close() error {
	if s.sess == nil {
		return nil
	}
	err := s.sess.Destroy()
	s.sess = nil
	return err
}

// Value is any ORT input or output.
type Value = ort.Value

// NewTensor wraps a caller-owned slice as an input/output tensor; the slice is
// shared with ORT (no copy), so refilling it and calling Run again reuses it.
func NewTensor(data []float32, shape ...int64) (*ort.Tensor[float32], error) {
	return ort.NewTensor(ort.NewShape(shape...), data)
}
