package ort

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var scoreSlot = Slot{
	Name:    "score model",
	Kind:    "score",
	Inputs:  []string{"x_t", "y", "sigma"},
	Outputs: []string{"score"},
	Meta:    []string{"srdgd.scale", "srdgd.sigma_min"},
}

func openRuntime(t *testing.T, log *slog.Logger) *Runtime {
	t.Helper()
	r, err := Open("", log)
	if err != nil {
		t.Fatalf("onnxruntime is required for this test (CI fetches it with scripts/fetch-ort.sh): %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestRunAffine(t *testing.T) {
	var logs bytes.Buffer
	r := openRuntime(t, slog.New(slog.NewTextHandler(&logs, nil)))
	s, err := r.NewSession("testdata/affine_score.onnx", scoreSlot, SessionOptions{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Provider != CPU {
		t.Errorf("provider %q, want cpu on a machine without GPU", s.Provider)
	}
	// one line says what the build has; a CPU build's missing GPU plug-ins
	// are not repeated per model at INFO (only at DEBUG)
	if have, lacks := BuildProviders(r.Library()); len(lacks) == 2 && len(have) == 1 {
		if !strings.Contains(logs.String(), "providers=cpu not_in_this_build=tensorrt,cuda") ||
			!strings.Contains(logs.String(), "execution provider chosen") || strings.Contains(logs.String(), "not_tensorrt") {
			t.Errorf("log should say once which providers the build has, and which one the model got:\n%s", logs.String())
		}
	} else if !strings.Contains(logs.String(), "execution provider chosen") {
		t.Errorf("log should say which provider was chosen:\n%s", logs.String())
	}
	const B, C, H, W = 2, 3, 4, 4
	x := make([]float32, B*C*H*W)
	y := make([]float32, B*C*H*W)
	sig := []float32{0.5, 3}
	out := make([]float32, B*C*H*W)
	xt, _ := NewTensor(x, B, C, H, W)
	yt, _ := NewTensor(y, B, C, H, W)
	st, _ := NewTensor(sig, B)
	ot, _ := NewTensor(out, B, C, H, W)
	defer xt.Destroy()
	defer yt.Destroy()
	defer st.Destroy()
	defer ot.Destroy()
	// reuse the same tensors across runs: refill the Go slices only
	for round := 0; round < 3; round++ {
		for i := range x {
			x[i] = float32(i%7) + float32(round)
			y[i] = float32(i % 3)
		}
		if err := s.Run(context.Background(), []Value{xt, yt, st}, []Value{ot}); err != nil {
			t.Fatal(err)
		}
		for i := range out {
			b := i / (C * H * W)
			want := -(float64(x[i]) - float64(y[i])) / (1 + float64(sig[b])*float64(sig[b]))
			if math.Abs(float64(out[i])-want) > 1e-6 {
				t.Fatalf("round %d element %d: got %v want %v", round, i, out[i], want)
			}
		}
	}
	if got := s.Meta["srdgd.kind"]; got != "score" {
		t.Errorf("metadata kind %q", got)
	}
}

func TestSlotMismatch(t *testing.T) {
	r := openRuntime(t, nil)
	cases := []struct {
		name string
		slot Slot
		want []string
	}{
		{"wrong kind", Slot{Name: "guidance model", Kind: "guidance", Inputs: []string{"x_t"}, Outputs: []string{"score"}}, []string{`is a "score" model, this slot needs "guidance"`}},
		{"missing input", Slot{Name: "guidance model", Kind: "score", Inputs: []string{"x_t", "labels"}, Outputs: []string{"grad"}}, []string{`no input "labels"`, `no output "grad"`}},
		{"missing meta", Slot{Name: "score model", Kind: "score", Inputs: []string{"x_t"}, Outputs: []string{"score"}, Meta: []string{"srdgd.attributes"}}, []string{"no srdgd.attributes metadata"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := r.NewSession("testdata/affine_score.onnx", c.slot, SessionOptions{Providers: []string{CPU}})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestBadModelFiles(t *testing.T) {
	r := openRuntime(t, nil)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.onnx")
	os.WriteFile(garbage, []byte("this is not a protobuf"), 0o644)
	good, _ := os.ReadFile("testdata/affine_score.onnx")
	trunc := filepath.Join(dir, "truncated.onnx")
	os.WriteFile(trunc, good[:len(good)/2], 0o644)
	for _, p := range []string{filepath.Join(dir, "missing.onnx"), garbage, trunc} {
		_, err := r.NewSession(p, scoreSlot, SessionOptions{Providers: []string{CPU}})
		if err == nil {
			t.Errorf("%s: no error", p)
			continue
		}
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error does not name the file: %v", err)
		}
	}
}

func TestUnknownProviderAndMissingLibrary(t *testing.T) {
	r := openRuntime(t, nil)
	_, err := r.NewSession("testdata/affine_score.onnx", scoreSlot, SessionOptions{Providers: []string{"vulkan"}})
	if err == nil || !strings.Contains(err.Error(), `unknown execution provider "vulkan"`) {
		t.Errorf("got %v", err)
	}
	_, err = FindLibrary("/nonexistent/libonnxruntime.so.1")
	if !errors.Is(err, ErrLibraryNotFound) || !strings.Contains(err.Error(), "/nonexistent/libonnxruntime.so.1") {
		t.Errorf("got %v", err)
	}
}

func TestRunCancelled(t *testing.T) {
	r := openRuntime(t, nil)
	s, err := r.NewSession("testdata/affine_score.onnx", scoreSlot, SessionOptions{Providers: []string{CPU}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	x := make([]float32, 48)
	xt, _ := NewTensor(x, 1, 3, 4, 4)
	defer xt.Destroy()
	st, _ := NewTensor([]float32{1}, 1)
	defer st.Destroy()
	if err := s.Run(ctx, []Value{xt, xt, st}, []Value{xt}); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}
