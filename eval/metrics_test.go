package eval

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/srdgd/srdgd/internal/npy"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestPSNR(t *testing.T) {
	cases := []struct {
		name string
		a, b []float32
		peak float64
		want float64
	}{
		// MSE = 0.25/4 = 0.0625, PSNR = 10 log10(1/0.0625) = 10 log10(16)
		{"one pixel off by 0.5", []float32{0, 0, 0, 0}, []float32{0.5, 0, 0, 0}, 1, 12.041199826559248},
		// MSE = 1, peak 255: 20 log10(255)
		{"peak 255", []float32{10, 20}, []float32{11, 19}, 255, 48.13080360867910},
		{"equal", []float32{0.5, 0.25}, []float32{0.5, 0.25}, 1, math.Inf(1)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := PSNR(c.a, c.b, c.peak)
			if err != nil {
				t.Fatal(err)
			}
			if !(got == c.want || near(got, c.want, 1e-9)) {
				t.Fatalf("PSNR = %v, want %v", got, c.want)
			}
		})
	}
	for _, bad := range [][2][]float32{{{1}, {1, 2}}, {{}, {}}} {
		if _, err := PSNR(bad[0], bad[1], 1); err == nil {
			t.Errorf("PSNR(%v, %v) gave no error", bad[0], bad[1])
		}
	}
}

// TestSSIMReference compares with values computed by an independent NumPy
// implementation (testdata/metrics/make_reference.py: direct 2-D window, float64).
func TestSSIMReference(t *testing.T) {
	dir := filepath.Join("testdata", "metrics")
	a, err := npy.ReadFile(filepath.Join(dir, "a.npy"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := npy.ReadFile(filepath.Join(dir, "b.npy"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want struct {
		Shape      []int     `json:"shape"`
		PSNR       float64   `json:"psnr"`
		SSIM       float64   `json:"ssim"`
		PerChannel []float64 `json:"ssim_per_channel"`
	}
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	c, h, w := want.Shape[0], want.Shape[1], want.Shape[2]
	got, err := SSIM(a.Float32(), b.Float32(), c, h, w, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !near(got, want.SSIM, 1e-12) {
		t.Errorf("SSIM = %.15f, NumPy reference %.15f", got, want.SSIM)
	}
	for ch := 0; ch < c; ch++ {
		n := h * w
		g, err := SSIM(a.Float32()[ch*n:(ch+1)*n], b.Float32()[ch*n:(ch+1)*n], 1, h, w, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !near(g, want.PerChannel[ch], 1e-12) {
			t.Errorf("channel %d SSIM = %.15f, NumPy reference %.15f", ch, g, want.PerChannel[ch])
		}
	}
	p, err := PSNR(a.Float32(), b.Float32(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if !near(p, want.PSNR, 1e-9) {
		t.Errorf("PSNR = %.12f, NumPy reference %.12f", p, want.PSNR)
	}
	self, err := SSIM(a.Float32(), a.Float32(), c, h, w, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !near(self, 1, 1e-12) {
		t.Errorf("SSIM(a, a) = %v, want 1", self)
	}
}

func TestSSIMHandComputed(t *testing.T) {
	// Two constant 11x11 images: one window position, variances and covariance 0,
	// so SSIM = (2 mx my + C1) / (mx^2 + my^2 + C1) with C1 = 1e-4.
	const n = 11 * 11
	a, b := make([]float32, n), make([]float32, n)
	for i := range a {
		a[i], b[i] = 0.5, 0.25
	}
	got, err := SSIM(a, b, 1, 11, 11, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := (2*0.5*0.25 + 1e-4) / (0.25 + 0.0625 + 1e-4)
	if !near(got, want, 1e-12) {
		t.Fatalf("SSIM = %.15f, want %.15f", got, want)
	}
	if _, err := SSIM(a[:100], b[:100], 1, 10, 10, 1); err == nil {
		t.Error("10x10 image accepted")
	}
	if _, err := SSIM(a, b[:120], 1, 11, 11, 1); err == nil {
		t.Error("size mismatch accepted")
	}
}

func TestAUCAndROC(t *testing.T) {
	gen := []float64{0.9, 0.8, 0.5}
	imp := []float64{0.1, 0.5, 0.85}
	// 0.9 beats 3, 0.8 beats 2, 0.5 beats 1 and ties 1: (3 + 2 + 1.5) / 9
	auc, err := AUC(gen, imp)
	if err != nil {
		t.Fatal(err)
	}
	if !near(auc, 6.5/9, 1e-15) {
		t.Fatalf("AUC = %v, want %v", auc, 6.5/9)
	}
	roc, err := ROC(gen, imp)
	if err != nil {
		t.Fatal(err)
	}
	want := []ROCPoint{
		{math.Inf(1), 0, 0}, {0.9, 0, 1. / 3}, {0.85, 1. / 3, 1. / 3}, {0.8, 1. / 3, 2. / 3},
		{0.5, 2. / 3, 1}, {0.1, 1, 1},
	}
	if len(roc) != len(want) {
		t.Fatalf("ROC = %v, want %v", roc, want)
	}
	for i := range want {
		if roc[i].Threshold != want[i].Threshold || !near(roc[i].FMR, want[i].FMR, 1e-15) || !near(roc[i].TMR, want[i].TMR, 1e-15) {
			t.Errorf("ROC[%d] = %+v, want %+v", i, roc[i], want[i])
		}
	}
	if got := trapezoid(roc); !near(got, auc, 1e-15) {
		t.Errorf("area under the ROC points %v, AUC %v", got, auc)
	}
	for _, c := range []struct {
		fmr  float64
		want ROCPoint
	}{
		{0, ROCPoint{0.9, 0, 1. / 3}},
		{0.34, ROCPoint{0.8, 1. / 3, 2. / 3}},
		{1, ROCPoint{0.1, 1, 1}},
	} {
		if got := ThresholdAtFMR(roc, c.fmr); got.Threshold != c.want.Threshold {
			t.Errorf("ThresholdAtFMR(%v) = %+v, want %+v", c.fmr, got, c.want)
		}
	}
	// all impostors above all genuine: the only FMR-0 point is +Inf
	roc2, _ := ROC([]float64{0.1}, []float64{0.2})
	if got := ThresholdAtFMR(roc2, 0); !math.IsInf(got.Threshold, 1) {
		t.Errorf("ThresholdAtFMR with no separable point = %+v, want +Inf", got)
	}
	for _, bad := range [][2][]float64{{{}, {1}}, {{1}, {}}, {{math.NaN()}, {1}}} {
		if _, err := AUC(bad[0], bad[1]); err == nil {
			t.Errorf("AUC(%v, %v) gave no error", bad[0], bad[1])
		}
	}
}

// TestAUCEqualsROCArea checks the rank formula against the curve's area on
// random scores with many ties (rounded to 0.05).
func TestAUCEqualsROCArea(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 20; trial++ {
		gen := make([]float64, 1+r.IntN(60))
		imp := make([]float64, 1+r.IntN(60))
		for i := range gen {
			gen[i] = math.Round((r.NormFloat64()*0.2+0.6)*20) / 20
		}
		for i := range imp {
			imp[i] = math.Round((r.NormFloat64()*0.2+0.4)*20) / 20
		}
		auc, err := AUC(gen, imp)
		if err != nil {
			t.Fatal(err)
		}
		roc, err := ROC(gen, imp)
		if err != nil {
			t.Fatal(err)
		}
		if a := trapezoid(roc); !near(a, auc, 1e-12) {
			t.Fatalf("trial %d: ROC area %v, AUC %v", trial, a, auc)
		}
	}
}

func trapezoid(roc []ROCPoint) float64 {
	var a float64
	for i := 1; i < len(roc); i++ {
		a += (roc[i].FMR - roc[i-1].FMR) * (roc[i].TMR + roc[i-1].TMR) / 2
	}
	return a
}

func TestCMC(t *testing.T) {
	gallery := []string{"A", "B", "C", "A"}
	sim := [][]float64{
		{0.9, 0.5, 0.2, 0.1},  // A: rank 1
		{0.7, 0.6, 0.65, 0.8}, // B: A (max 0.8) and C beat it: rank 3
		{0.3, 0.5, 0.5, 0.1},  // C: tie with B counts against it: rank 2
	}
	got, err := CMC(sim, []string{"A", "B", "C"}, gallery, 4)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{1. / 3, 2. / 3, 1, 1}
	for i := range want {
		if !near(got[i], want[i], 1e-15) {
			t.Fatalf("CMC = %v, want %v", got, want)
		}
	}
	bad := []struct {
		name  string
		sim   [][]float64
		probe []string
	}{
		{"unknown probe identity", [][]float64{{1, 1, 1, 1}}, []string{"D"}},
		{"short row", [][]float64{{1, 1}}, []string{"A"}},
		{"rows vs probes", [][]float64{{1, 1, 1, 1}}, []string{"A", "B"}},
	}
	for _, c := range bad {
		if _, err := CMC(c.sim, c.probe, gallery, 2); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
}

func TestOpenSet(t *testing.T) {
	gal := []string{"A", "B", "C", "C"}
	probes := []string{"A", "B", "C"}
	sim := [][]float64{
		{0.90, 0.80, 0.85, 0.10},
		{0.70, 0.75, 0.74, 0.00},
		{0.95, 0.60, 0.90, 0.92},
	}
	for _, tc := range []struct {
		th, margin       float64
		dir, wrong, fpir float64
	}{
		// p0: A accepted (lead 0.05); without A, C 0.85 leads B by 0.05: false positive.
		// p1: below threshold either way. p2: A 0.95 leads C (best column 0.92) by 0.03:
		// wrong identity; without C, A leads B by 0.35: false positive.
		{0.80, 0.02, 1.0 / 3, 1.0 / 3, 2.0 / 3},
		{0.80, 0.04, 1.0 / 3, 0, 2.0 / 3},
		{0.96, 0, 0, 0, 0},
		{0.70, 0, 2.0 / 3, 1.0 / 3, 1},
	} {
		got, err := OpenSet(sim, probes, gal, tc.th, tc.margin)
		if err != nil {
			t.Fatal(err)
		}
		want := OpenSetPoint{Threshold: tc.th, Margin: tc.margin, DIR: tc.dir, Wrong: tc.wrong, FPIR: tc.fpir}
		if math.Abs(got.DIR-want.DIR) > 1e-12 || math.Abs(got.Wrong-want.Wrong) > 1e-12 || math.Abs(got.FPIR-want.FPIR) > 1e-12 {
			t.Errorf("th %.2f margin %.2f: got %+v, want %+v", tc.th, tc.margin, got, want)
		}
	}
	if _, err := OpenSet(sim, []string{"A", "B", "Z"}, gal, 0.8, 0); err == nil || !strings.Contains(err.Error(), `"Z"`) {
		t.Errorf("unknown probe identity: err %v", err)
	}
	if _, err := OpenSet([][]float64{{0.9}}, []string{"A"}, []string{"A"}, 0.8, 0); err == nil {
		t.Error("one gallery identity: no error")
	}
}

// TestOpenSetSubsample: random smaller galleries drawn from one score
// matrix. With every other identity in the gallery the unknown searches
// are the full gallery's; fewer impostors make the top impostor score
// lower (so a smaller gallery tolerates a lower bar); a probe whose own
// score beats every other stays right in every gallery.
func TestOpenSetSubsample(t *testing.T) {
	const ids, probes = 40, 30
	rng := rand.New(rand.NewPCG(3, 4))
	var gal, pid []string
	for i := range ids {
		gal = append(gal, fmt.Sprint("id", i))
	}
	sim := make([][]float64, probes)
	for p := range sim {
		pid = append(pid, gal[p%ids])
		sim[p] = make([]float64, ids)
		for g := range sim[p] {
			sim[p][g] = rng.Float64() * 0.8
		}
		if p%2 == 0 {
			sim[p][p%ids] = 0.95 // above every impostor
		}
	}
	sc, err := NewOpenSetScores(sim, pid, gal)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][2]int{{1, 5}, {ids, 5}, {8, 0}} {
		if _, err := sc.Subsample(bad[0], bad[1], 1); err == nil {
			t.Errorf("subsample %d, %d trials: no error", bad[0], bad[1])
		}
	}
	full, err := sc.Subsample(ids-1, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(full.known) != 3*probes || len(full.unknown) != 3*probes {
		t.Fatalf("%d known and %d unknown searches, want %d", len(full.known), len(full.unknown), 3*probes)
	}
	for i, u := range full.unknown {
		if u != sc.unknown[i/3] {
			t.Fatalf("search %d: unknown top two %+v with every other identity, want the full gallery's %+v", i, u, sc.unknown[i/3])
		}
	}
	meanTop := func(n int) float64 {
		s, err := sc.Subsample(n, 20, 1)
		if err != nil {
			t.Fatal(err)
		}
		var sum float64
		for i, u := range s.unknown {
			sum += u.top
			if p := i / 20; p%2 == 0 && !s.correct[i] {
				t.Errorf("gallery of %d: probe %d (own score above all) not ranked first", n, p)
			}
		}
		return sum / float64(len(s.unknown))
	}
	if m4, m32 := meanTop(4), meanTop(32); m4 >= m32 {
		t.Errorf("mean top impostor %.3f with 4 identities, %.3f with 32: want lower with fewer", m4, m32)
	}
	a, _ := sc.Subsample(8, 5, 7)
	b, _ := sc.Subsample(8, 5, 7)
	if fmt.Sprint(a.known) != fmt.Sprint(b.known) {
		t.Error("same seed, different draws")
	}
}
