package match

import (
	"image"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"testing"

	"github.com/srdgd/srdgd/internal/celeba"
	"github.com/srdgd/srdgd/internal/faceimg"
	"github.com/srdgd/srdgd/internal/ort"
)

// celebaBox is the face box of every CelebA aligned image (178x218).
var celebaBox = celeba.Box

func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// celebaDir returns the CelebA aligned subset or skips the test, saying so.
func celebaDir(t testing.TB) string {
	t.Helper()
	d, err := celeba.Find()
	if err != nil {
		t.Skipf("SKIPPING: %v", err)
	}
	return d
}

type celebaRow = celeba.Row

// celebaRows reads labels.csv: image name, split, CelebA identity.
func celebaRows(t testing.TB) []celebaRow {
	t.Helper()
	rows, err := celeba.Read(celebaDir(t))
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// byIdentity groups a split's images by identity (identities sorted).
func byIdentity(rows []celebaRow, split string) (ids []string, imgs map[string][]string) {
	imgs = map[string][]string{}
	for _, r := range rows {
		if split == "" || r.Split == split {
			imgs[r.Identity] = append(imgs[r.Identity], r.Image)
		}
	}
	for id := range imgs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids, imgs
}

func celebaPath(t testing.TB, name string) string {
	return celeba.ImagePath(celebaDir(t), name)
}

func loadCeleba(t testing.TB, name string) image.Image {
	t.Helper()
	img, err := faceimg.Load(celebaPath(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func readCeleba(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(celebaPath(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// One embedder for the whole test binary: loading the two sessions is the
// slow part.
var shared struct {
	once sync.Once
	rt   *ort.Runtime
	emb  *Embedder
	err  error
}

func testEmbedder(t testing.TB) *Embedder {
	t.Helper()
	shared.once.Do(func() {
		shared.rt, shared.err = ort.Open("", slog.New(slog.DiscardHandler))
		if shared.err != nil {
			return
		}
		root := repoRoot(t)
		shared.emb, shared.err = NewEmbedder(EmbedderOptions{
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
	if os.Getenv(crashChildEnv) != "" {
		os.Exit(crashChild())
	}
	code := m.Run()
	if shared.emb != nil {
		shared.emb.Close()
	}
	if shared.rt != nil {
		shared.rt.Close()
	}
	os.Exit(code)
}
