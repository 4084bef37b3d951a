package srdg

import (
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/srdgd/srdgd/internal/npy"
	"github.com/srdgd/srdgd/internal/ort"
)

// The importers of the model toolchain (models issue I) must produce ONNX files
// that, loaded into the engine's own slots through ONNX Runtime, reproduce the
// test vectors made with the authors' original code (../shared/reference).

func runImporter(t *testing.T, args ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("importer parity runs the Python toolchain (slow); skipped with -short")
	}
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Fatalf("Debian's /usr/bin/python3 with python3-torch is required: %v", err)
	}
	cmd := exec.Command("/usr/bin/python3", append([]string{"-m", "models"}, args...)...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("models %v: %v\n%s", args, err, out)
	}
}

func sharedRef(t *testing.T, parts ...string) string {
	p, err := filepath.Abs(filepath.Join(append([]string{"..", "..", "shared", "reference"}, parts...)...))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Skipf("SKIPPING: shared reference vectors not found at %s", p)
	}
	return p
}

func loadNpy(t *testing.T, path string) *npy.Array {
	t.Helper()
	a, err := npy.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestImportedSDESRMatchesReference(t *testing.T) {
	ref := sharedRef(t, "ncsnpp")
	out := filepath.Join(t.TempDir(), "score_nf16.onnx")
	runImporter(t, "import-sdesr", "--checkpoint", filepath.Join(ref, "checkpoint.pth"), "--out", out)
	rt, err := ort.Open("", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	sc, err := OpenScore(rt, out, ort.SessionOptions{Providers: []string{ort.CPU}})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	for _, set := range []string{"b3", "b1"} {
		x := loadNpy(t, filepath.Join(ref, set+"_x_t.npy")).F32
		y := loadNpy(t, filepath.Join(ref, set+"_y.npy")).F32
		sigma := loadNpy(t, filepath.Join(ref, set+"_sigma.npy")).F32
		want := loadNpy(t, filepath.Join(ref, set+"_score.npy")).F64
		got := make([]float32, len(x))
		if err := sc.Score(context.Background(), x, y, sigma, got); err != nil {
			t.Fatal(err)
		}
		D := len(x) / len(sigma)
		for b := range sigma {
			var maxRef, maxDiff float64
			for i := b * D; i < (b+1)*D; i++ {
				maxRef = math.Max(maxRef, math.Abs(want[i]))
				maxDiff = math.Max(maxDiff, math.Abs(float64(got[i])-want[i]))
			}
			rel := maxDiff / maxRef
			t.Logf("%s item %d (sigma %g): max|diff|/max|ref| = %.2e", set, b, sigma[b], rel)
			if rel > 1e-5 {
				t.Errorf("%s item %d: relative error %.2e > 1e-5", set, b, rel)
			}
		}
	}
}

func TestImportedClassifierGuidanceMatchesReference(t *testing.T) {
	ref := sharedRef(t, "classifiers")
	ckpts := sharedRef(t, "srdg-classifiers")
	out := filepath.Join(t.TempDir(), "guidance.onnx")
	runImporter(t, "import-srdg-classifiers", "--dir", ckpts, "--out", out)
	rt, err := ort.Open("", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	g, err := OpenGuidance(rt, out, ort.SessionOptions{Providers: []string{ort.CPU}})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if !g.Info.AbstainLabel || len(g.Info.Attributes) != 3 || g.Info.Attributes[2] != "no_beard" {
		t.Fatalf("metadata: attributes %v abstain %v", g.Info.Attributes, g.Info.AbstainLabel)
	}
	xa := loadNpy(t, filepath.Join(ref, "x.npy")) // (B,128,128,3) NHWC float64
	B, H, W := xa.Shape[0], xa.Shape[1], xa.Shape[2]
	nhwcToNCHW := func(src []float64) []float64 {
		dst := make([]float64, len(src))
		for b := 0; b < B; b++ {
			for yy := 0; yy < H; yy++ {
				for xx := 0; xx < W; xx++ {
					for c := 0; c < 3; c++ {
						dst[((b*3+c)*H+yy)*W+xx] = src[((b*H+yy)*W+xx)*3+c]
					}
				}
			}
		}
		return dst
	}
	x64 := nhwcToNCHW(xa.F64)
	x := make([]float32, len(x64))
	for i, v := range x64 {
		x[i] = float32(v)
	}
	s64 := loadNpy(t, filepath.Join(ref, "sigma.npy")).F64
	sigma := make([]float32, B)
	for i := range sigma {
		sigma[i] = float32(s64[i])
	}
	labels := make([]float32, B*3)
	for a, name := range []string{"gender", "glasses", "beard"} {
		l := loadNpy(t, filepath.Join(ref, "labels_"+name+".npy")).I64
		for b := 0; b < B; b++ {
			labels[b*3+a] = float32(l[b])
		}
	}
	want := nhwcToNCHW(loadNpy(t, filepath.Join(ref, "grad_sum.npy")).F64)
	got := make([]float32, len(x))
	if err := g.Guidance(context.Background(), x, sigma, labels, got); err != nil {
		t.Fatal(err)
	}
	D := 3 * H * W
	for b := 0; b < B; b++ {
		var num, den float64
		for i := b * D; i < (b+1)*D; i++ {
			d := float64(got[i]) - want[i]
			num += d * d
			den += want[i] * want[i]
		}
		rel := math.Sqrt(num / den)
		t.Logf("sample %d (sigma %g): relative L2 error %.2e", b, sigma[b], rel)
		// float32 tolerance from the vectors' README (saturated classifiers make
		// single rows noisy in float32; the sum stays well inside 1e-2)
		if rel > 1e-2 {
			t.Errorf("sample %d: relative L2 error %.2e > 1e-2", b, rel)
		}
	}
}
