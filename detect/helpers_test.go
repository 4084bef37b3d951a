package detect

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/srdgd/srdgd/internal/faceimg"
	"github.com/srdgd/srdgd/internal/ort"
)

// CelebA aligned images are read in place from the shared data folder (they
// are research-only and never copied into the repository).
func celebaDir(tb testing.TB) string {
	tb.Helper()
	d := os.Getenv("SRDGD_CELEBA_ALIGNED")
	if d == "" {
		d = filepath.Join("..", "..", "shared", "data", "celeba-aligned", "img_align_celeba")
	}
	if st, err := os.Stat(d); err != nil || !st.IsDir() {
		tb.Skipf("SKIPPING: CelebA aligned images not found at %s (set SRDGD_CELEBA_ALIGNED): "+
			"the detection tests on real faces did not run", d)
	}
	return d
}

// celebaNames returns the first n image names, sorted, from skip on.
func celebaNames(tb testing.TB, skip, n int) []string {
	tb.Helper()
	d := celebaDir(tb)
	ents, err := os.ReadDir(d)
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if filepath.Ext(e.Name()) == ".jpg" {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	if skip+n > len(names) {
		tb.Fatalf("want images %d..%d, the folder has %d", skip, skip+n, len(names))
	}
	return names[skip : skip+n]
}

func loadCeleba(tb testing.TB, name string) *Image {
	tb.Helper()
	img, err := faceimg.Load(filepath.Join(celebaDir(tb), name))
	if err != nil {
		tb.Fatal(err)
	}
	return ImageFromGo(img)
}

const modelPath = "../models/dist/blazeface.onnx"

func openRuntime(tb testing.TB) *ort.Runtime {
	tb.Helper()
	rt, err := ort.Open("", nil)
	if err != nil {
		tb.Fatalf("onnxruntime: %v (run scripts/fetch-ort.sh)", err)
	}
	tb.Cleanup(func() { rt.Close() })
	return rt
}

func newBlazeFace(tb testing.TB, o BlazeFaceOptions) *BlazeFace {
	tb.Helper()
	rt := openRuntime(tb)
	if o.Model == "" {
		o.Model = modelPath
	}
	if o.Threads == 0 {
		o.Threads = 1
	}
	b, err := NewBlazeFace(rt, o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { b.Close() })
	return b
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
