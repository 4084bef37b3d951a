package match

import (
	"context"
	"image"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/srdgd/srdgd/internal/faceimg"
	"github.com/srdgd/srdgd/internal/ort"
)

func TestAlignBoxHandComputed(t *testing.T) {
	var l Landmarks
	// eyes at (40, 50) and (80, 50), mouth at (60, 90)
	for i := 36; i <= 41; i++ {
		l[i] = [2]float64{40, 50}
	}
	for i := 42; i <= 47; i++ {
		l[i] = [2]float64{80, 50}
	}
	for i := 48; i <= 67; i++ {
		l[i] = [2]float64{60, 90}
	}
	// eye-mouth distance sqrt(20^2 + 40^2) = 44.72; side floor(44.72/0.45) = 99;
	// centroid (60, 63.33): x = floor(60 - 49.5) = 10, y = floor(63.33 - 42.57) = 20
	want := image.Rect(10, 20, 109, 119)
	if got := l.AlignBox(); got != want {
		t.Fatalf("AlignBox = %v, want %v", got, want)
	}
	// near the top-left corner the box is pushed to 0 (face-api's max(0, ...))
	for i := range l {
		l[i][0] -= 30
		l[i][1] -= 40
	}
	if got := l.AlignBox(); got.Min != (image.Point{}) || got.Dx() != 99 {
		t.Fatalf("AlignBox near the corner = %v, want 99x99 at (0, 0)", got)
	}
}

func TestSquareCrop(t *testing.T) {
	// a 6x4 planar image whose R value encodes the pixel position
	p := faceimg.NewPlanar(6, 4)
	for y := 0; y < 4; y++ {
		for x := 0; x < 6; x++ {
			p.Pix[y*6+x] = float32(1 + y*6 + x)
		}
	}
	cases := []struct {
		name   string
		box    image.Rectangle
		origin image.Point
		side   int
		rows   [][]float32 // R channel of the square
	}{
		// wide 4x2 box: diff 2, one row after (round(1)) and one before
		{"wide", image.Rect(1, 1, 5, 3), image.Pt(1, 0), 4, [][]float32{
			{0, 0, 0, 0}, {8, 9, 10, 11}, {14, 15, 16, 17}, {0, 0, 0, 0}}},
		// tall 1x3 box: diff 2, one column before and one after
		{"tall", image.Rect(2, 0, 3, 3), image.Pt(1, 0), 3, [][]float32{
			{0, 3, 0}, {0, 9, 0}, {0, 15, 0}}},
		// box sticking out at the left and bottom is clipped first (3x2 left),
		// then padded: diff 1, round(0.5) = 1 row after, 0 before
		{"clipped", image.Rect(-2, 2, 3, 6), image.Pt(0, 2), 3, [][]float32{
			{13, 14, 15}, {19, 20, 21}, {0, 0, 0}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dst := make([]float32, 3*c.side*c.side)
			o, side, err := squareCrop(EmbedInput{Planar: p}, c.box, c.side, dst)
			if err != nil {
				t.Fatal(err)
			}
			if o != c.origin || side != c.side {
				t.Fatalf("origin %v side %d, want %v %d", o, side, c.origin, c.side)
			}
			for y, row := range c.rows {
				for x, v := range row {
					if got := dst[y*side+x]; got != v {
						t.Fatalf("square[%d][%d] = %v, want %v (%v)", y, x, got, v, dst[:side*side])
					}
				}
			}
		})
	}
	if _, _, err := squareCrop(EmbedInput{Planar: p}, image.Rect(10, 10, 20, 20), 4, make([]float32, 48)); err == nil {
		t.Error("box outside the image accepted")
	}
	// image.Image and planar paths agree
	for i := range p.Pix {
		p.Pix[i] = float32(i%7) / 6
	}
	img := p.Image()
	a, b := make([]float32, 3*16), make([]float32, 3*16)
	squareCrop(EmbedInput{Planar: faceimg.FromImage(img)}, image.Rect(0, 0, 6, 3), 4, a)
	squareCrop(EmbedInput{Image: img}, image.Rect(0, 0, 6, 3), 4, b)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("image and planar crops differ at %d: %v vs %v", i, a[i], b[i])
		}
	}
}

func TestEmbedderRejectsWrongModel(t *testing.T) {
	testEmbedder(t) // ORT open
	root := repoRoot(t)
	dist := filepath.Join(root, "models", "dist")
	_, err := NewEmbedder(EmbedderOptions{
		Runtime:       shared.rt,
		EmbedderPath:  filepath.Join(dist, "face_landmarks68.onnx"),
		LandmarksPath: filepath.Join(dist, "face_landmarks68.onnx"),
		Session:       ort.SessionOptions{Providers: []string{ort.CPU}, IntraOpThreads: 1},
	})
	if err == nil || !strings.Contains(err.Error(), `is a "face_landmarks" model, this slot needs "face_embedder"`) {
		t.Fatalf("landmarks file as embedder: %v", err)
	}
	_, err = NewEmbedder(EmbedderOptions{
		Runtime:       shared.rt,
		EmbedderPath:  filepath.Join(dist, "no-such.onnx"),
		LandmarksPath: filepath.Join(dist, "face_landmarks68.onnx"),
	})
	if err == nil || !strings.Contains(err.Error(), "no-such.onnx") {
		t.Fatalf("missing file: %v", err)
	}
}

// TestEmbedCelebA runs the real networks on CelebA faces: landmarks land on
// the aligned eyes, descriptors are unit vectors, batching does not change
// them, and the same person scores higher than different people.
func TestEmbedCelebA(t *testing.T) {
	e := testEmbedder(t)
	rows := celebaRows(t)
	ids, imgs := byIdentity(rows, "test")
	// 6 identities x 3 test images
	var faces []EmbedInput
	var who []string
	for _, id := range ids[:6] {
		for _, name := range imgs[id] {
			faces = append(faces, EmbedInput{Image: loadCeleba(t, name), Box: celebaBox})
			who = append(who, id)
		}
	}
	ctx := context.Background()
	embs, err := e.Embed(ctx, faces)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(e.ModelID(), "face-api face_recognition_model@") {
		t.Errorf("model id %q", e.ModelID())
	}
	var el, er [2]float64
	for i, em := range embs {
		if em.Model != e.ModelID() || len(em.Vector) != 128 {
			t.Fatalf("embedding %d: model %q dim %d", i, em.Model, len(em.Vector))
		}
		var n float64
		for _, v := range em.Vector {
			n += float64(v) * float64(v)
		}
		if math.Abs(n-1) > 1e-5 {
			t.Fatalf("embedding %d has squared norm %v", i, n)
		}
		l, r := em.Landmarks.EyeCentres()
		for k := 0; k < 2; k++ {
			el[k] += l[k] / float64(len(embs))
			er[k] += r[k] / float64(len(embs))
		}
	}
	// models/README.md: on CelebA's aligned images the eye centres average
	// (67.7, 110.5) and (108.6, 111.5)
	t.Logf("mean eye centres (%.1f, %.1f) (%.1f, %.1f)", el[0], el[1], er[0], er[1])
	if math.Hypot(el[0]-67.7, el[1]-110.5) > 4 || math.Hypot(er[0]-108.6, er[1]-111.5) > 4 {
		t.Errorf("eye centres (%.1f, %.1f) (%.1f, %.1f) are more than 4 px from the aligned positions", el[0], el[1], er[0], er[1])
	}
	// one face alone gives the same descriptor as inside the batch
	one, err := e.Embed(ctx, faces[5:6])
	if err != nil {
		t.Fatal(err)
	}
	if c := Cosine(one[0].Vector, embs[5].Vector); c < 1-1e-5 {
		t.Errorf("batch of 1 vs batch of 8: cosine %v", c)
	}
	var same, diff []float64
	for i := range embs {
		for j := i + 1; j < len(embs); j++ {
			c := Cosine(embs[i].Vector, embs[j].Vector)
			if who[i] == who[j] {
				same = append(same, c)
			} else {
				diff = append(diff, c)
			}
		}
	}
	ms, md := mean(same), mean(diff)
	t.Logf("cosine same %.4f (%d pairs) different %.4f (%d pairs), margin %.4f", ms, len(same), md, len(diff), ms-md)
	if ms-md < 0.05 {
		t.Errorf("same-person pairs average %.4f, different %.4f: margin below 0.05", ms, md)
	}
	if _, err := e.Embed(ctx, []EmbedInput{{Image: faces[0].Image, Box: image.Rect(500, 500, 600, 600)}}); err == nil {
		t.Error("a box outside the image was accepted")
	}
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}
