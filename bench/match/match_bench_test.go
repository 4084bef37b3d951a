// Package matchbench measures the face embedder on the CelebA aligned subset
// and derives the default thresholds of package match: the verification ROC
// over all genuine and impostor pairs of the train split (selection), the
// same thresholds checked on the val+test images, an open-set 1:N search with
// a threshold and a margin over the runner-up, and a closed-set CMC. It runs
// only with SRDGD_BENCH=1 (see run.sh): it embeds 6,000 faces.
package matchbench

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/srdgd/srdgd/eval"
	"github.com/srdgd/srdgd/internal/celeba"
	"github.com/srdgd/srdgd/internal/faceimg"
	"github.com/srdgd/srdgd/internal/npy"
	"github.com/srdgd/srdgd/internal/ort"
	"github.com/srdgd/srdgd/match"
)

// celebaBox: columns 29..148, rows 56..175 of the 178x218 aligned images.
var celebaBox = celeba.Box

func report(t *testing.T, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf(format, args...)
	t.Log(line)
	if out := os.Getenv("SRDGD_BENCH_OUT"); out != "" {
		f, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fmt.Fprintln(f, line)
	}
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func TestMatchROC(t *testing.T) {
	if os.Getenv("SRDGD_BENCH") != "1" {
		t.Skip("benchmark; run bench/match/run.sh (SRDGD_BENCH=1)")
	}
	dir := celeba.DefaultDir()
	rows, err := celeba.Read(dir)
	if err != nil {
		t.Fatalf("CelebA aligned subset required (%s): %v", celeba.EnvDir, err)
	}
	rt, err := ort.Open("", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	root := repoRoot()
	emb, err := match.NewEmbedder(match.EmbedderOptions{
		Runtime:       rt,
		EmbedderPath:  filepath.Join(root, "models", "dist", "face_embedder.onnx"),
		LandmarksPath: filepath.Join(root, "models", "dist", "face_landmarks68.onnx"),
		Session:       ort.SessionOptions{Providers: []string{ort.CPU}, IntraOpThreads: 2},
		MaxBatch:      16,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()

	// embed everything (cached by model id in the temp directory: the
	// embedding is the slow part and depends only on the models and images)
	cache := filepath.Join(os.TempDir(), "srdgd-matchbench-"+strings.NewReplacer(" ", "_", "@", "_", "+", "_").Replace(emb.ModelID())+".npy")
	vecs := make([][]float32, len(rows))
	if a, err := npy.ReadFile(cache); err == nil && len(a.Shape) == 2 && a.Shape[0] == len(rows) {
		d := a.Shape[1]
		f := a.Float32()
		for i := range vecs {
			vecs[i] = f[i*d : (i+1)*d]
		}
		report(t, "Descriptors of the %d CelebA faces read from the cache %s (model `%s`).", len(rows), cache, emb.ModelID())
	} else {
		start := time.Now()
		const chunk = 64
		for s := 0; s < len(rows); s += chunk {
			var faces []match.EmbedInput
			for _, r := range rows[s:min(s+chunk, len(rows))] {
				img, err := faceimg.Load(celeba.ImagePath(dir, r.Image))
				if err != nil {
					t.Fatal(err)
				}
				faces = append(faces, match.EmbedInput{Image: img, Box: celebaBox})
			}
			es, err := emb.Embed(context.Background(), faces)
			if err != nil {
				t.Fatal(err)
			}
			for i, e := range es {
				vecs[s+i] = e.Vector
			}
		}
		el := time.Since(start)
		report(t, "Embedded %d CelebA faces (landmarks + dlib alignment + embedder, batches of 16, ORT CPU, 2 intra-op threads) in %.1f s: %.1f ms per face wall. Model `%s`.",
			len(rows), el.Seconds(), 1000*el.Seconds()/float64(len(rows)), emb.ModelID())
		var flat []float32
		for _, v := range vecs {
			flat = append(flat, v...)
		}
		if err := npy.WriteFile(cache, []int{len(rows), len(vecs[0])}, flat); err != nil {
			t.Logf("cache not written: %v", err)
		}
	}
	report(t, "")

	var train, held []int
	for i, r := range rows {
		if r.Split == "train" {
			train = append(train, i)
		} else {
			held = append(held, i)
		}
	}
	pairs := func(idx []int) (gen, imp []float64) {
		for a := 0; a < len(idx); a++ {
			for b := a + 1; b < len(idx); b++ {
				s := dot(vecs[idx[a]], vecs[idx[b]])
				if rows[idx[a]].Identity == rows[idx[b]].Identity {
					gen = append(gen, s)
				} else {
					imp = append(imp, s)
				}
			}
		}
		return gen, imp
	}

	// 1. verification ROC on train pairs (selection)
	gen, imp := pairs(train)
	auc, err := eval.AUC(gen, imp)
	if err != nil {
		t.Fatal(err)
	}
	roc, err := eval.ROC(gen, imp)
	if err != nil {
		t.Fatal(err)
	}
	eer := eerOf(roc)
	report(t, "#### Verification ROC, train split (%d images, 200 identities): %d genuine and %d impostor pairs", len(train), len(gen), len(imp))
	report(t, "")
	report(t, "Cosine of L2-normalised descriptors: genuine mean %.4f (sd %.4f), impostor mean %.4f (sd %.4f); AUC %.5f; EER %.4f at threshold %.4f.",
		mean(gen), sd(gen), mean(imp), sd(imp), auc, eer.FMR, eer.Threshold)
	report(t, "")
	report(t, "| target FMR | threshold | FMR reached | TMR (train) | FMR on val+test | TMR on val+test |")
	report(t, "|---|---|---|---|---|---|")
	hgen, himp := pairs(held)
	chosen := map[float64]float64{}
	for _, f := range []float64{1e-2, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5} {
		p := eval.ThresholdAtFMR(roc, f)
		chosen[f] = p.Threshold
		hf, ht := rates(hgen, himp, p.Threshold)
		report(t, "| %.0e | %.4f | %.2e | %.4f | %.2e | %.4f |", f, p.Threshold, p.FMR, p.TMR, hf, ht)
	}
	report(t, "")
	report(t, "val+test check: %d genuine and %d impostor pairs among the %d val and test images (the same 200 identities, other photos).", len(hgen), len(himp), len(held))
	report(t, "")

	// 2. open-set 1:N: even identities enrolled with their first 5 train
	// images; probes are the other train images (selection) or the val+test
	// images (check) of everyone
	ids := map[string][]int{}
	var idList []string
	for i, r := range rows {
		if _, ok := ids[r.Identity]; !ok {
			idList = append(idList, r.Identity)
		}
		ids[r.Identity] = append(ids[r.Identity], i)
	}
	sort.Strings(idList)
	enrolled := map[string]bool{}
	var gal []int
	galID := []string{}
	for k, id := range idList {
		if k%2 != 0 {
			continue
		}
		enrolled[id] = true
		n := 0
		for _, i := range ids[id] {
			if rows[i].Split == "train" && n < 5 {
				gal = append(gal, i)
				galID = append(galID, id)
				n++
			}
		}
	}
	inGal := map[int]bool{}
	for _, i := range gal {
		inGal[i] = true
	}
	type probe struct {
		known    bool
		top, sec float64
		topID    string
		trueID   string
	}
	search := func(sel func(i int) bool) []probe {
		var ps []probe
		for i, r := range rows {
			if inGal[i] || !sel(i) {
				continue
			}
			best := map[string]float64{}
			for k, g := range gal {
				s := dot(vecs[i], vecs[g])
				if v, ok := best[galID[k]]; !ok || s > v {
					best[galID[k]] = s
				}
			}
			p := probe{known: enrolled[r.Identity], trueID: r.Identity, top: math.Inf(-1), sec: math.Inf(-1)}
			for id, s := range best {
				if s > p.top {
					p.sec, p.top, p.topID = p.top, s, id
				} else if s > p.sec {
					p.sec = s
				}
			}
			ps = append(ps, p)
		}
		return ps
	}
	evalOpen := func(ps []probe, th, margin float64) (dir, fpir, wrong float64) {
		var nk, nu, hit, fa, wr int
		for _, p := range ps {
			acc := p.top >= th && p.top-p.sec >= margin
			if p.known {
				nk++
				if acc && p.topID == p.trueID {
					hit++
				}
				if acc && p.topID != p.trueID {
					wr++
				}
			} else {
				nu++
				if acc {
					fa++
				}
			}
		}
		return float64(hit) / float64(nk), float64(fa) / float64(nu), float64(wr) / float64(nk)
	}
	sel := search(func(i int) bool { return rows[i].Split == "train" })
	chk := search(func(i int) bool { return rows[i].Split != "train" })
	report(t, "#### Open-set 1:N search (gallery: 100 identities x 5 train photos, person score = best over their photos)")
	report(t, "")
	report(t, "Selection probes: the other %d train photos (known and unknown people); check probes: the %d val+test photos. DIR = known probes identified correctly and accepted; FPIR = unknown probes accepted as someone; wrong = known probes accepted as someone else.", len(sel), len(chk))
	report(t, "")
	report(t, "| identify threshold | margin | DIR (sel.) | FPIR (sel.) | wrong (sel.) | DIR (check) | FPIR (check) | wrong (check) |")
	report(t, "|---|---|---|---|---|---|---|---|")
	// default: the highest selection DIR with FPIR <= 1 % on this 100-person gallery
	var best struct{ th, m, f, dir float64 }
	for _, f := range []float64{1e-3, 3e-4, 1e-4, 3e-5, 1e-5} {
		for _, m := range []float64{0, 0.005, 0.01, 0.015, 0.02, 0.03} {
			d, fp, w := evalOpen(sel, chosen[f], m)
			d2, fp2, w2 := evalOpen(chk, chosen[f], m)
			report(t, "| %.4f (pair FMR %.0e) | %.3f | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f |", chosen[f], f, m, d, fp, w, d2, fp2, w2)
			if fp <= 0.01 && d > best.dir {
				best.th, best.m, best.f, best.dir = chosen[f], m, f, d
			}
		}
	}
	report(t, "")
	d2, fp2, w2 := evalOpen(chk, best.th, best.m)
	report(t, "Rule: the pair (threshold, margin) with the highest selection DIR whose selection FPIR is at most 1 %%: identify threshold **%.4f** (pair FMR %.0e), margin **%.3f**; on the check probes DIR %.4f, FPIR %.4f, wrong %.4f.",
		best.th, best.f, best.m, d2, fp2, w2)
	report(t, "")

	// 3. closed-set CMC and probe-gallery ROC, the paper's protocol on HR
	// faces: gallery = first train photo per identity, probes = test photos
	var cg []int
	var cgID []string
	for _, id := range idList {
		for _, i := range ids[id] {
			if rows[i].Split == "train" {
				cg, cgID = append(cg, i), append(cgID, id)
				break
			}
		}
	}
	var sim [][]float64
	var pid []string
	var pg, pi []float64
	for i, r := range rows {
		if r.Split != "test" {
			continue
		}
		s := make([]float64, len(cg))
		for k, g := range cg {
			s[k] = dot(vecs[i], vecs[g])
			if cgID[k] == r.Identity {
				pg = append(pg, s[k])
			} else {
				pi = append(pi, s[k])
			}
		}
		sim, pid = append(sim, s), append(pid, r.Identity)
	}
	cmc, err := eval.CMC(sim, pid, cgID, 20)
	if err != nil {
		t.Fatal(err)
	}
	pauc, err := eval.AUC(pg, pi)
	if err != nil {
		t.Fatal(err)
	}
	report(t, "#### Closed-set identification on HR faces (gallery: 1 train photo per identity, 200; probes: %d test photos)", len(sim))
	report(t, "")
	report(t, "Rank-1 %.2f %%, Rank-5 %.2f %%, Rank-10 %.2f %%; probe-gallery verification AUC %.4f (%d genuine, %d impostor pairs). This is the upper bound for the SR evaluation (spec section 6 on HR probes).",
		100*cmc[0], 100*cmc[4], 100*cmc[9], pauc, len(pg), len(pi))
	report(t, "")

	if out := os.Getenv("SRDGD_BENCH_PLOTS"); out != "" {
		proc, _ := eval.ROC(pg, pi)
		rp := eval.Plot{
			Title: "Face embedder ROC on CelebA (HR)", XLabel: "false match rate", YLabel: "true match rate",
			XLog: true, XMin: 1e-6, XMax: 1, YMin: 0.5, YMax: 1,
			Series: []eval.Series{
				eval.ROCSeries(fmt.Sprintf("train pairs, AUC %.4f", auc), thin(roc)),
				eval.ROCSeries(fmt.Sprintf("test probe vs gallery, AUC %.4f", pauc), thin(proc)),
			},
		}
		writePNG(t, filepath.Join(out, "roc.png"), rp)
		cp := eval.Plot{
			Title: "CMC on CelebA (HR, 200 identities)", XLabel: "rank", YLabel: "identification rate",
			XMin: 1, XMax: 20, YMin: 0.8, YMax: 1,
			Series: []eval.Series{eval.CMCSeries("test probes, 1 photo per identity", cmc)},
		}
		writePNG(t, filepath.Join(out, "cmc.png"), cp)
	}
}

func writePNG(t *testing.T, path string, p eval.Plot) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WritePNG(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// thin keeps ROC points that move at least 1/2000 in TMR or 1 % in FMR.
func thin(roc []eval.ROCPoint) []eval.ROCPoint {
	out := []eval.ROCPoint{roc[0]}
	for i, p := range roc[1:] {
		l := out[len(out)-1]
		if i == len(roc)-2 || p.TMR-l.TMR > 5e-4 || p.FMR > l.FMR*1.01 {
			out = append(out, p)
		}
	}
	return out
}

func eerOf(roc []eval.ROCPoint) eval.ROCPoint {
	best := roc[0]
	bd := math.Inf(1)
	for _, p := range roc {
		if d := math.Abs(p.FMR - (1 - p.TMR)); d < bd {
			bd, best = d, p
		}
	}
	return best
}

func rates(gen, imp []float64, th float64) (fmr, tmr float64) {
	var a, b int
	for _, s := range imp {
		if s >= th {
			a++
		}
	}
	for _, s := range gen {
		if s >= th {
			b++
		}
	}
	return float64(a) / float64(len(imp)), float64(b) / float64(len(gen))
}

func dot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func sd(v []float64) float64 {
	m := mean(v)
	var s float64
	for _, x := range v {
		s += (x - m) * (x - m)
	}
	return math.Sqrt(s / float64(len(v)))
}
