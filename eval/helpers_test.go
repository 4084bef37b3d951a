package eval

import (
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/srdgd/srdgd/internal/ort"
	"github.com/srdgd/srdgd/match"
)

func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// One embedder for the whole test binary: loading the two sessions is the
// slow part.
var shared struct {
	once sync.Once
	rt   *ort.Runtime
	emb  *match.Embedder
	err  error
}

func testEmbedder(t testing.TB) *match.Embedder {
	t.Helper()
	shared.once.Do(func() {
		shared.rt, shared.err = ort.Open("", slog.New(slog.DiscardHandler))
		if shared.err != nil {
			return
		}
		root := repoRoot(t)
		shared.emb, shared.err = match.NewEmbedder(match.EmbedderOptions{
			Runtime:       shared.rt,
			EmbedderPath:  filepath.Join(root, "models", "dist", "face_embedder.onnx"),
			LandmarksPath: filepath.Join(root, "models", "dist", "face_landmarks68.onnx"),
			Session:       ort.SessionOptions{Providers: []string{ort.CPU}, IntraOpThreads: 1},
			MaxBatch:      8,
		})
	})
	if shared.err != nil {
		t.Fatalf("onnxruntime and the face models are required (CI fetches ORT with scripts/fetch-ort.sh): %v", shared.err)
	}
	return shared.emb
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.emb != nil {
		shared.emb.Close()
	}
	if shared.rt != nil {
		shared.rt.Close()
	}
	os.Exit(code)
}
