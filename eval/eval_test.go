package eval

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/srdgd/srdgd/internal/celeba"
	"github.com/srdgd/srdgd/internal/faceimg"
	"github.com/srdgd/srdgd/internal/resample"
	"github.com/srdgd/srdgd/match"
)

// synthFace draws a crude face (skin ellipse, eyes, mouth) whose colours and
// geometry depend on the identity, with per-image noise, framed in a w x h
// image with the face in box.
func synthFace(id, variant, w, h int, box image.Rectangle) *image.RGBA {
	rng := rand.New(rand.NewPCG(uint64(id), uint64(variant)))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	bg := color.RGBA{uint8(40 * id), 90, uint8(200 - 30*id), 255}
	skin := color.RGBA{uint8(150 + 20*id), uint8(110 + 10*id), 90, 255}
	cx, cy := float64(box.Min.X+box.Max.X)/2, float64(box.Min.Y+box.Max.Y)/2
	s := float64(box.Dx()) / 128
	eyeDX := (22 + 4*float64(id)) * s
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			dx, dy := (float64(x)-cx)/(44*s), (float64(y)-cy)/(56*s)
			c := bg
			if dx*dx+dy*dy < 1 {
				c = skin
			}
			ex, ey := float64(x)-cx, float64(y)-(cy-14*s)
			if (math.Abs(ex-eyeDX) < 7*s || math.Abs(ex+eyeDX) < 7*s) && math.Abs(ey) < 4*s {
				c = color.RGBA{20, 20, 30, 255}
			}
			if math.Abs(float64(x)-cx) < (14+3*float64(id))*s && math.Abs(float64(y)-(cy+26*s)) < 4*s {
				c = color.RGBA{150, 40, 50, 255}
			}
			n := func(v uint8) uint8 { return uint8(max(0, min(255, int(v)+rng.IntN(21)-10))) }
			img.SetRGBA(x, y, color.RGBA{n(c.R), n(c.G), n(c.B), 255})
		}
	}
	return img
}

// synthSet writes 3 identities into dir: a 178x218 gallery image with the
// CelebA box, and two probes each: the gallery image itself and a 128x128
// whole-image face of another variant.
func synthSet(t *testing.T, dir string) *Set {
	t.Helper()
	s := &Set{Root: dir}
	celebaBox := []int{celeba.Box.Min.X, celeba.Box.Min.Y, celeba.Box.Max.X, celeba.Box.Max.Y}
	for id := 1; id <= 3; id++ {
		g := fmt.Sprintf("g%d.png", id)
		if err := faceimg.Save(filepath.Join(dir, g), synthFace(id, 0, 178, 218, celeba.Box)); err != nil {
			t.Fatal(err)
		}
		p := fmt.Sprintf("p%d.png", id)
		if err := faceimg.Save(filepath.Join(dir, p), synthFace(id, 1, 128, 128, image.Rect(0, 0, 128, 128))); err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("person%d", id)
		s.Gallery = append(s.Gallery, Image{Path: g, Identity: name, Box: celebaBox})
		s.Probes = append(s.Probes,
			Image{Path: g, Identity: name, Box: celebaBox, Attributes: map[string]int{"male": id % 2}},
			Image{Path: p, Identity: name})
	}
	return s
}

// countingEmbedder counts the faces the real embedder is asked for.
type countingEmbedder struct {
	match.FaceEmbedder
	n atomic.Int64
}

func (c *countingEmbedder) Embed(ctx context.Context, faces []match.EmbedInput) ([]match.Embedding, error) {
	c.n.Add(int64(len(faces)))
	return c.FaceEmbedder.Embed(ctx, faces)
}

// oracle is HRReference, counted: PSNR capped, SSIM 1, and since half the
// probes are the gallery images themselves, their descriptors equal the
// gallery's.
func oracle(set *Set, calls *atomic.Int64) Method {
	hr := HRReference(set)
	return Method{Name: "hr-oracle", Restore: func(ctx context.Context, in Input) ([]float32, error) {
		calls.Add(1)
		return hr.Restore(ctx, in)
	}}
}

func TestEvalAggregatesAndResumes(t *testing.T) {
	emb := &countingEmbedder{FaceEmbedder: testEmbedder(t)}
	dir := t.TempDir()
	set := synthSet(t, dir)
	cache := filepath.Join(dir, "out", "cache.jsonl")
	if err := os.MkdirAll(filepath.Dir(cache), 0o755); err != nil {
		t.Fatal(err)
	}
	var restores atomic.Int64
	lrb := LRBicubic()
	counted := Method{Name: lrb.Name, Restore: func(ctx context.Context, in Input) ([]float32, error) {
		restores.Add(1)
		return lrb.Restore(ctx, in)
	}}
	opts := Options{Set: set, Scales: []int{8, 16}, Embedder: emb, Cache: cache, Thresholds: func(scale int, _ string) (match.Thresholds, bool) { return match.DefaultThresholds(), scale == 8 },
		Methods: func(int) ([]Method, error) { return []Method{counted, oracle(set, &restores)}, nil }}
	var progress bytes.Buffer
	opts.Progress = &progress

	rep, err := Evaluate(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	nProbe := len(set.Probes)
	if want := len(set.Gallery) + 2*2*nProbe; rep.Computed != want || rep.Cached != 0 {
		t.Fatalf("first run: computed %d cached %d, want %d and 0", rep.Computed, rep.Cached, want)
	}
	if got := restores.Load(); got != int64(2*2*nProbe) {
		t.Fatalf("first run: %d restores, want %d", got, 2*2*nProbe)
	}
	if !strings.Contains(progress.String(), fmt.Sprintf("eval x16: probe %d/%d", nProbe, nProbe)) {
		t.Errorf("progress lacks the last x16 probe:\n%s", progress.String())
	}
	if len(rep.Results) != 4 {
		t.Fatalf("%d results, want 4 (2 scales x 2 methods)", len(rep.Results))
	}
	byKey := map[string]Result{}
	for _, r := range rep.Results {
		byKey[fmt.Sprintf("%d/%s", r.Scale, r.Method)] = r
	}
	for _, scale := range []int{8, 16} {
		o := byKey[fmt.Sprintf("%d/hr-oracle", scale)]
		if math.Abs(o.PSNR-psnrCap) > 1e-9 || math.Abs(o.SSIM-1) > 1e-9 {
			t.Errorf("x%d oracle: PSNR %v SSIM %v, want %v and 1", scale, o.PSNR, o.SSIM, psnrCap)
		}
		if o.Probes != nProbe || len(o.Rank) != 10 || o.R10 != 1 {
			t.Errorf("x%d oracle: %d probes, CMC %v: want %d probes, 10 ranks, R10 = 1 (3 identities)", scale, o.Probes, o.Rank, nProbe)
		}
		// Independent check of the LR row: mean PSNR and SSIM recomputed here.
		var psnr, ssim float64
		for _, p := range set.Probes {
			hr, err := set.LoadFace(p)
			if err != nil {
				t.Fatal(err)
			}
			lr, err := resample.Resize(hr.Pix, 3, 128, 128, 128/scale, 128/scale, resample.Bilinear)
			if err != nil {
				t.Fatal(err)
			}
			y, err := resample.Resize(lr, 3, 128/scale, 128/scale, 128, 128, resample.Bicubic)
			if err != nil {
				t.Fatal(err)
			}
			v, _ := PSNR(y, hr.Pix, 1)
			s, _ := SSIM(y, hr.Pix, 3, 128, 128, 1)
			psnr += v / float64(nProbe)
			ssim += s / float64(nProbe)
		}
		l := byKey[fmt.Sprintf("%d/lr-bicubic", scale)]
		if math.Abs(l.PSNR-psnr) > 1e-9 || math.Abs(l.SSIM-ssim) > 1e-9 {
			t.Errorf("x%d lr-bicubic: PSNR %v SSIM %v, recomputed %v %v", scale, l.PSNR, l.SSIM, psnr, ssim)
		}
		if l.PSNR >= psnrCap || l.SSIM >= 1 || l.AUC < 0 || l.AUC > 1 {
			t.Errorf("x%d lr-bicubic: implausible %+v", scale, l)
		}
	}
	if a, b := byKey["8/lr-bicubic"], byKey["16/lr-bicubic"]; a.PSNR <= b.PSNR {
		t.Errorf("lr-bicubic PSNR x8 %.2f <= x16 %.2f; 8x keeps more detail", a.PSNR, b.PSNR)
	}

	out := filepath.Join(dir, "out")
	if err := WriteOutputs(out, rep); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(out, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| method | PSNR | SSIM | AUC | R1 | R5 | R10 |", "## 8x (16x16 -> 128x128)",
		"## 16x (8x8 -> 128x128)", "| hr-oracle | inf | 1.000 |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("results.md lacks %q:\n%s", want, md)
		}
	}
	if n := strings.Count(string(md), "\n| lr-bicubic |"); n != 2 {
		t.Errorf("results.md has %d lr-bicubic rows, want 2:\n%s", n, md)
	}
	for _, want := range []string{"## Operating points", "\n| 8x | hr-oracle |", "\n| 16x | lr-bicubic |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("results.md lacks %q:\n%s", want, md)
		}
	}
	// Open set: the whole grid per result; the HR oracle (probe = a gallery
	// image of its identity, similarity 1) is identified at the configured
	// thresholds whenever it leads by the margin; configured only at 8x.
	for _, r := range rep.Results {
		if n := int(math.Round((openSetHi-openSetLo)/openSetStep)) + 1; len(r.OpenSet) != n*len(openSetMargins) {
			t.Errorf("x%d %s: %d open-set points, want %d", r.Scale, r.Method, len(r.OpenSet), n*len(openSetMargins))
		}
		if (r.Configured != nil) != (r.Scale == 8) {
			t.Errorf("x%d %s: configured point %+v", r.Scale, r.Method, r.Configured)
		}
		if r.Method == "hr-oracle" && r.Configured != nil && r.Configured.Wrong != 0 {
			t.Errorf("hr-oracle accepted a wrong identity: %+v", r.Configured)
		}
	}
	var js Report
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &js); err != nil {
		t.Fatal(err)
	}
	if len(js.Results) != 4 || js.Results[0].Method != "lr-bicubic" || js.Results[0].Scale != 8 || js.Probes != nProbe || js.Identities != 3 ||
		js.Results[0].R1 != rep.Results[0].R1 || js.Results[0].R10 != rep.Results[0].R10 || js.Results[0].AUC != rep.Results[0].AUC {
		t.Errorf("results.json: %+v", js)
	}
	for _, name := range []string{"roc.png", "cmc.png"} {
		f, err := os.Open(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, format, err := image.Decode(f); err != nil || format != "png" {
			t.Errorf("%s: %v %q", name, err, format)
		}
		f.Close()
	}

	// An interrupted write leaves half a line: the rerun ignores it.
	f, err := os.OpenFile(cache, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"kind":"probe","scale":8,"meth`); err != nil {
		t.Fatal(err)
	}
	f.Close()

	// Second run: everything comes from the cache.
	emb.n.Store(0)
	restores.Store(0)
	rep2, err := Evaluate(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep2.Computed != 0 || rep2.Cached != rep.Computed || emb.n.Load() != 0 || restores.Load() != 0 {
		t.Fatalf("rerun: computed %d cached %d, %d embeds, %d restores; want 0, %d, 0, 0",
			rep2.Computed, rep2.Cached, emb.n.Load(), restores.Load(), rep.Computed)
	}
	for i := range rep.Results {
		a, b := rep.Results[i], rep2.Results[i]
		if a.PSNR != b.PSNR || a.SSIM != b.SSIM || a.AUC != b.AUC || fmt.Sprint(a.Rank) != fmt.Sprint(b.Rank) {
			t.Errorf("rerun %s x%d differs: %+v vs %+v", a.Method, a.Scale, a, b)
		}
	}

	// A new method on the rerun computes only that method.
	opts.Methods = func(int) ([]Method, error) {
		return []Method{counted, {Name: "lr-bicubic-2", Restore: lrb.Restore}}, nil
	}
	rep3, err := Evaluate(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep3.Computed != 2*nProbe || restores.Load() != 0 {
		t.Errorf("added method: computed %d, %d restores of the cached one; want %d, 0", rep3.Computed, restores.Load(), 2*nProbe)
	}
}

func TestEvalCacheCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.jsonl")
	if err := os.WriteFile(path, []byte("{bad\n{\"kind\":\"gallery\",\"image\":\"a\",\"model\":\"m\",\"embedding\":[1]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readCache(path); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("corrupt cache: err %v, want one naming line 1", err)
	}
}

func TestEvalSetCheck(t *testing.T) {
	g := func(p, id string) Image { return Image{Path: p, Identity: id} }
	tests := []struct {
		name string
		set  Set
		want string
	}{
		{"ok", Set{Gallery: []Image{g("a", "x"), g("b", "y")}, Probes: []Image{g("a", "x")}}, ""},
		{"no probes", Set{Gallery: []Image{g("a", "x")}}, "want both non-empty"},
		{"one identity", Set{Gallery: []Image{g("a", "x")}, Probes: []Image{g("b", "x")}}, "at least 2"},
		{"duplicate", Set{Gallery: []Image{g("a", "x"), g("a", "y")}, Probes: []Image{g("a", "x")}}, "listed twice"},
		{"unknown identity", Set{Gallery: []Image{g("a", "x"), g("b", "y")}, Probes: []Image{g("c", "z")}}, "no gallery image"},
		{"bad attribute", Set{Gallery: []Image{g("a", "x"), g("b", "y")},
			Probes: []Image{{Path: "c", Identity: "x", Attributes: map[string]int{"male": -1}}}}, "want 0 or 1"},
		{"bad box", Set{Box: []int{1, 2}, Gallery: []Image{g("a", "x"), g("b", "y")}, Probes: []Image{g("a", "x")}}, "box"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.set.Check()
			if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Check: %v, want %q", err, tt.want)
			}
		})
	}
}

func TestLoadEvalSet(t *testing.T) {
	dir := t.TempDir()
	set := synthSet(t, dir)
	set.Root = "" // relative to the JSON file
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "set.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := LoadSet(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Root != dir || len(got.Probes) != 6 {
		t.Fatalf("root %q, %d probes", got.Root, len(got.Probes))
	}
	for _, im := range append(got.Gallery, got.Probes...) {
		f, err := got.LoadFace(im)
		if err != nil {
			t.Fatal(err)
		}
		if f.W != 128 || f.H != 128 {
			t.Fatalf("%s: %dx%d", im.Path, f.W, f.H)
		}
	}
	if err := os.WriteFile(path, []byte(`{"gallery":[],"probes":[],"extra":1}`), 0o644); err == nil {
		if _, err := LoadSet(path); err == nil || !strings.Contains(err.Error(), "extra") {
			t.Errorf("unknown field: %v", err)
		}
	}
}

func TestCelebAEvalSet(t *testing.T) {
	dir := t.TempDir()
	csv := "image,split,celeba_identity,Male,Eyeglasses,No_Beard\n" +
		"003.jpg,test,7,1,-1,1\n" +
		"001.jpg,train,7,1,-1,1\n" +
		"002.jpg,train,7,1,-1,1\n" +
		"004.jpg,train,9,-1,1,1\n" +
		"005.jpg,test,9,-1,1,-1\n" +
		"006.jpg,test,11,-1,1,-1\n" + // no train image: not a probe
		"007.jpg,test,9,-1,-1,1\n" +
		"008.jpg,validation,9,-1,-1,1\n"
	if err := os.WriteFile(filepath.Join(dir, "labels.csv"), []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := CelebASet(dir, "test", 2)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(s.Gallery, s.Probes)
	want := "[{001.jpg 7 [] map[]} {004.jpg 9 [] map[]}] [{003.jpg 7 [] map[glasses:0 male:1 no_beard:1]} {005.jpg 9 [] map[glasses:1 male:0 no_beard:0]}]"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if fmt.Sprint(s.Box) != "[29 56 149 176]" || s.Root != filepath.Join(dir, "img_align_celeba") {
		t.Errorf("box %v root %s", s.Box, s.Root)
	}
	v, err := CelebASet(dir, "val", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(v.Probes); got != "[{008.jpg 9 [] map[glasses:0 male:0 no_beard:1]}]" {
		t.Errorf("val probes %s", got)
	}
	if _, err := CelebASet(dir, "train", 0); err == nil || !strings.Contains(err.Error(), `"train"`) {
		t.Errorf("split train: %v", err)
	}
	if _, err := CelebASet(t.TempDir(), "test", 0); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing labels.csv: %v", err)
	}
}
