package resample

import (
	"math"
	"testing"

	"github.com/srdgd/srdgd/internal/npy"
)

// The vectors in testdata were made by Pillow (Image.resize on mode "F"
// float images), the reference for SRDG.md section 2's degradation.
func TestMatchesPillow(t *testing.T) {
	load := func(name string) []float32 {
		a, err := npy.ReadFile("testdata/" + name + ".npy")
		if err != nil {
			t.Fatal(err)
		}
		return a.F32
	}
	hr := load("hr")
	cases := []struct {
		name     string
		src      []float32
		in, out  int
		f        Filter
		wantFile string
	}{
		{"down 8x bilinear", hr, 128, 16, Bilinear, "lr16"},
		{"down 16x bilinear", hr, 128, 8, Bilinear, "lr8"},
		{"up 8x bicubic", load("lr16"), 16, 128, Bicubic, "y16"},
		{"up 16x bicubic", load("lr8"), 8, 128, Bicubic, "y8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Resize(c.src, 3, c.in, c.in, c.out, c.out, c.f)
			if err != nil {
				t.Fatal(err)
			}
			want := load(c.wantFile)
			var maxd float64
			for i := range want {
				maxd = math.Max(maxd, math.Abs(float64(got[i]-want[i])))
			}
			if maxd > 1e-5 {
				t.Errorf("max |diff| vs Pillow = %g, want <= 1e-5", maxd)
			}
			t.Logf("max |diff| vs Pillow = %.3g", maxd)
		})
	}
}

func TestConstantPreserved(t *testing.T) {
	src := make([]float32, 3*16*16)
	for i := range src {
		src[i] = 0.25
	}
	for _, f := range []Filter{Bilinear, Bicubic} {
		got, _ := Resize(src, 3, 16, 16, 128, 128, f)
		for i, v := range got {
			if math.Abs(float64(v)-0.25) > 1e-6 {
				t.Fatalf("filter %d: pixel %d = %v, a constant image must stay constant", f, i, v)
			}
		}
	}
}

func TestBadGeometry(t *testing.T) {
	if _, err := NewResizer(3, 0, 16, 8, 8, Bilinear); err == nil {
		t.Error("zero height accepted")
	}
	r, _ := NewResizer(1, 4, 4, 2, 2, Bilinear)
	if err := r.Resize(make([]float32, 3), make([]float32, 16)); err == nil {
		t.Error("wrong dst size accepted")
	}
}

func BenchmarkUpsample16to128(b *testing.B) {
	r, _ := NewResizer(3, 16, 16, 128, 128, Bicubic)
	src := make([]float32, 3*16*16)
	dst := make([]float32, 3*128*128)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = r.Resize(dst, src)
	}
}
