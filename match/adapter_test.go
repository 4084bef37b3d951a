package match

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/srdgd/srdgd/internal/ort"
)

// TestAdapterFixture runs the trainer's network, exported by its own
// exporter (models/fixtures.py sr_adapter), on ONNX Runtime and compares
// with the answers torch gave.
func TestAdapterFixture(t *testing.T) {
	testEmbedder(t) // opens the shared runtime
	a, err := OpenAdapter(shared.rt, filepath.Join("testdata", "sr_adapter_x8.onnx"), ort.SessionOptions{Providers: []string{ort.CPU}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := os.ReadFile(filepath.Join("testdata", "sr_adapter_x8.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want struct{ In, Out [][]float32 }
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	vecs := make([][]float32, len(want.In))
	for i, v := range want.In {
		vecs[i] = append([]float32(nil), v...)
	}
	if err := a.Apply(context.Background(), vecs); err != nil {
		t.Fatal(err)
	}
	for i := range vecs {
		var n float64
		for k, x := range vecs[i] {
			n += float64(x) * float64(x)
			if d := math.Abs(float64(x - want.Out[i][k])); d > 1e-5 {
				t.Errorf("descriptor %d value %d: %g, torch %g", i, k, x, want.Out[i][k])
			}
		}
		if math.Abs(n-1) > 1e-5 {
			t.Errorf("descriptor %d: squared norm %g, want 1", i, n)
		}
	}
	if a.Scale() != 8 || a.EmbedderModel() != "test-embedder@0" || !strings.HasPrefix(a.ID(), "test-sr-adapter-x8@") {
		t.Errorf("scale %d, embedder %q, id %q", a.Scale(), a.EmbedderModel(), a.ID())
	}
	for _, c := range []struct {
		name  string
		model string
		dim   int
		ok    bool
	}{
		{"its embedder", "test-embedder@0", 4, true},
		{"another embedder", "face-api@1", 4, false},
		{"another size", "test-embedder@0", 128, false},
	} {
		if err := a.Fits(c.model, c.dim); (err == nil) != c.ok {
			t.Errorf("%s: Fits(%q, %d) = %v", c.name, c.model, c.dim, err)
		}
	}
	if err := a.Apply(context.Background(), [][]float32{{1, 2, 3}}); err == nil || !strings.Contains(err.Error(), "3 values, want 4") {
		t.Errorf("a 3-value descriptor: %v", err)
	}
}

// TestAdapterRefusesOtherModels: a file of another kind or a missing one is
// named in a clear error, not loaded.
func TestAdapterRefusesOtherModels(t *testing.T) {
	testEmbedder(t)
	for _, c := range []struct{ path, want string }{
		{filepath.Join("..", "srdg", "testdata", "lr_attrs.onnx"), "sr_adapter"},
		{filepath.Join("testdata", "no_such_adapter.onnx"), "no_such_adapter.onnx"},
	} {
		a, err := OpenAdapter(shared.rt, c.path, ort.SessionOptions{Providers: []string{ort.CPU}})
		if err == nil {
			a.Close()
			t.Errorf("%s: loaded", c.path)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want it to name %q", c.path, err, c.want)
		}
	}
}
