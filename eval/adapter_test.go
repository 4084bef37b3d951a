package eval

import (
	"bufio"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/srdgd/srdgd/internal/ort"
	"github.com/srdgd/srdgd/internal/testutil"
	"github.com/srdgd/srdgd/match"
)

// TestAdaptedRows: an adapted twin of a cached method reads the method's
// outputs from the SR cache (no second restore), and its descriptors are
// the adapter's image of the method's.
func TestAdaptedRows(t *testing.T) {
	emb := testEmbedder(t)
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "match", "testdata", "sr_adapter_x8.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "sr_adapter_x8.onnx")
	if err := os.WriteFile(path, testutil.AppendONNXMetadata(b, "srdgd.embedder_model", emb.ModelID()), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := match.OpenAdapter(shared.rt, path, ort.SessionOptions{Providers: []string{ort.CPU}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	set := synthSet(t, dir)
	var restores atomic.Int64
	lrb := LRBicubic()
	counted := Method{Name: "sr-test", ID: "test-models", Stochastic: true, Restore: func(ctx context.Context, in Input) ([]float32, error) {
		restores.Add(1)
		return lrb.Restore(ctx, in)
	}}
	twin := adapted(counted, a)
	if twin.Name != "sr-test+adapter" || twin.srName() != "sr-test" || twin.AdapterID != a.ID() {
		t.Fatalf("twin: name %q, SR name %q, adapter %q", twin.Name, twin.srName(), twin.AdapterID)
	}
	cache := filepath.Join(dir, "out", "cache.jsonl")
	if err := os.MkdirAll(filepath.Dir(cache), 0o755); err != nil {
		t.Fatal(err)
	}
	opts := Options{Set: set, Scales: []int{8}, Embedder: emb, Cache: cache, SRCache: filepath.Join(dir, "sr"),
		Thresholds: func(int, string) (match.Thresholds, bool) { return match.DefaultThresholds(), true },
		Methods:    func(int) ([]Method, error) { return []Method{counted, twin}, nil }}
	rep, err := Evaluate(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := restores.Load(); got != int64(len(set.Probes)) {
		t.Errorf("%d restores for %d probes and two rows: the twin restored again", got, len(set.Probes))
	}
	names := map[string]bool{}
	for _, r := range rep.Results {
		names[r.Method] = true
	}
	if !names["sr-test"] || !names["sr-test+adapter"] {
		t.Fatalf("rows %v", names)
	}
	f, err := os.Open(cache)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	plain, adaptedDesc := map[string][]float32{}, map[string]record{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		switch r.Method {
		case "sr-test":
			plain[r.Image] = r.Embedding
		case "sr-test+adapter":
			adaptedDesc[r.Image] = r
		}
	}
	if len(plain) == 0 || len(plain) != len(adaptedDesc) {
		t.Fatalf("%d plain and %d adapted records", len(plain), len(adaptedDesc))
	}
	for img, r := range adaptedDesc {
		if r.Adapter != a.ID() {
			t.Errorf("%s: adapter %q, want %q", img, r.Adapter, a.ID())
		}
		want := [][]float32{append([]float32(nil), plain[img]...)}
		if err := a.Apply(context.Background(), want); err != nil {
			t.Fatal(err)
		}
		for k := range want[0] {
			if math.Abs(float64(want[0][k]-r.Embedding[k])) > 1e-5 {
				t.Errorf("%s: value %d is %g, adapter of the plain row %g", img, k, r.Embedding[k], want[0][k])
				break
			}
		}
	}
}
