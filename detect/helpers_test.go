package detect

import (
	"image"
	"path/filepath"
	"strings"
	"testing"

	"github.com/srdgd/srdgd/detect/detecttest"
	"github.com/srdgd/srdgd/internal/faceimg"
	"github.com/srdgd/srdgd/internal/ort"
)

func celebaDir(tb testing.TB) string { return detecttest.CelebADir(tb) }

func celebaNames(tb testing.TB, skip, n int) []string { return detecttest.CelebANames(tb, skip, n) }

func loadCeleba(tb testing.TB, name string) *Image { return toImage(detecttest.LoadCelebA(tb, name)) }

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

func TestImageFromGo(t *testing.T) {
	src := loadCeleba(t, celebaNames(t, 0, 1)[0])
	rgba := src.RGBA()
	back := ImageFromGo(rgba)
	if string(back.Pix) != string(src.Pix) {
		t.Error("RGBA round trip differs")
	}
	// the generic path agrees with the YCbCr fast path
	img, err := faceimg.Load(filepath.Join(celebaDir(t), celebaNames(t, 0, 1)[0]))
	if err != nil {
		t.Fatal(err)
	}
	slow := ImageFromGo(struct{ image.Image }{img})
	if string(slow.Pix) != string(src.Pix) {
		t.Error("YCbCr fast path differs from image.At")
	}
}
