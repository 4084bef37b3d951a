package match

import (
	"context"
	"encoding/json"
	"image"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/srdgd/srdgd/internal/ort"
	"github.com/srdgd/srdgd/internal/testutil"
)

// adapterFixture writes the fixture adapter (models/fixtures.py sr_adapter:
// the trainer's network and exporter, random weights) with
// srdgd.embedder_model set to model, into a temporary file.
func adapterFixture(t *testing.T, model string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "sr_adapter_x8.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sr_adapter_x8.onnx")
	if err := os.WriteFile(path, testutil.AppendONNXMetadata(b, "srdgd.embedder_model", model), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

type adapterAnswers struct{ In, Out [][]float32 }

func readAdapterAnswers(t *testing.T) adapterAnswers {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "sr_adapter_x8.json"))
	if err != nil {
		t.Fatal(err)
	}
	var a adapterAnswers
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	return a
}

var cpuOnly = ort.SessionOptions{Providers: []string{ort.CPU}}

// TestAdapterFixture runs the trainer's network, exported by its own
// exporter, on ONNX Runtime and compares with the answers torch gave.
func TestAdapterFixture(t *testing.T) {
	testEmbedder(t) // opens the shared runtime
	a, err := OpenAdapter(shared.rt, adapterFixture(t, "test-embedder@0"), cpuOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	want := readAdapterAnswers(t)
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
		{"its embedder", "test-embedder@0", 128, true},
		{"another embedder", "face-api@1", 128, false},
		{"another size", "test-embedder@0", 512, false},
	} {
		if err := a.Fits(c.model, c.dim); (err == nil) != c.ok {
			t.Errorf("%s: Fits(%q, %d) = %v", c.name, c.model, c.dim, err)
		}
	}
	if err := a.Apply(context.Background(), [][]float32{{1, 2, 3}}); err == nil || !strings.Contains(err.Error(), "3 values, want 128") {
		t.Errorf("a 3-value descriptor: %v", err)
	}
}

// TestAdapterRefusesOtherModels: a file of another kind, one without its
// embedder model, or a missing one is named in a clear error, not loaded.
func TestAdapterRefusesOtherModels(t *testing.T) {
	testEmbedder(t)
	for _, c := range []struct{ path, want string }{
		{filepath.Join("..", "srdg", "testdata", "lr_attrs.onnx"), "sr_adapter"},
		{filepath.Join("testdata", "sr_adapter_x8.onnx"), "srdgd.embedder_model"},
		{filepath.Join("testdata", "no_such_adapter.onnx"), "no_such_adapter.onnx"},
	} {
		a, err := OpenAdapter(shared.rt, c.path, cpuOnly)
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

// TestEmbedderUsesAdapter: with an adapter for x8, the descriptor of a face
// restored at x8 is the adapter's image of the plain one; photos and x16
// faces are left alone; an adapter made for another embedder is refused.
func TestEmbedderUsesAdapter(t *testing.T) {
	e := testEmbedder(t)
	other, err := OpenAdapter(shared.rt, adapterFixture(t, "another-embedder@1"), cpuOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := e.UseAdapter(other); err == nil || !strings.Contains(err.Error(), "another-embedder@1") {
		t.Fatalf("an adapter for another embedder: %v", err)
	}
	img := loadCeleba(t, celebaRows(t)[0].Image)
	faces := []EmbedInput{{Image: img, Box: image.Rect(29, 56, 149, 176)}, {Image: img, Box: image.Rect(29, 56, 149, 176), Scale: 8},
		{Image: img, Box: image.Rect(29, 56, 149, 176), Scale: 16}}
	ctx := context.Background()
	plain, err := e.Embed(ctx, faces)
	if err != nil {
		t.Fatal(err)
	}
	a, err := OpenAdapter(shared.rt, adapterFixture(t, e.ModelID()), cpuOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := e.UseAdapter(a); err != nil {
		t.Fatal(err)
	}
	defer func() { e.mu.Lock(); e.adapters = nil; e.mu.Unlock() }() // the embedder is shared by the package's tests
	got, err := e.Embed(ctx, faces)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]float32{append([]float32(nil), plain[1].Vector...)}
	if err := a.Apply(ctx, want); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		got     Embedding
		want    []float32
		adapter string
	}{
		{"photo", got[0], plain[0].Vector, ""},
		{"x8 face", got[1], want[0], a.ID()},
		{"x16 face", got[2], plain[2].Vector, ""},
	} {
		if c.got.Adapter != c.adapter || c.got.Model != e.ModelID() {
			t.Errorf("%s: adapter %q model %q, want %q %q", c.name, c.got.Adapter, c.got.Model, c.adapter, e.ModelID())
		}
		for k := range c.want {
			if math.Abs(float64(c.got.Vector[k]-c.want[k])) > 1e-5 {
				t.Errorf("%s: value %d is %g, want %g", c.name, k, c.got.Vector[k], c.want[k])
				break
			}
		}
	}
	if e.AdapterID(8) != a.ID() || e.AdapterID(16) != "" {
		t.Errorf("AdapterID: x8 %q x16 %q", e.AdapterID(8), e.AdapterID(16))
	}
}
