package eval

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/match"
)

// CalibrateOptions configure Calibrate.
type CalibrateOptions struct {
	// Source describes the run (data, probes, sampler) in the file.
	Source string
	// Methods selects the rows to calibrate (default: every SR row of a
	// multi-shot run, i.e. with Base starting "sr-", and the LR rows at
	// the direct path's scales, which the daemon reads without SR).
	Methods func(Result) bool
}

// Histogram bins of the calibration: similarities 0..1 in steps of 0.01
// (face-api's pair similarities sit above 0.5, faceres' far lower).
const histLo, histStep, histBins = 0.0, 0.01, 100

// Calibrate turns the open-set scores of a report's rows into decision
// calibrations (match.Calibration): per row, the identify threshold and
// margin chosen by chooseSetting (highest DIR at FPIR <= CalibrationFPIR;
// Chosen says how), the same for random smaller galleries (GallerySizes),
// the top-1 and pair similarity distributions, and logistic fits of
// P(top candidate is the person | top similarity, margin). The fit's
// searches are every probe as a known person (label: its top candidate is
// right) and as an unknown one (label 0), so the prior is one half.
func Calibrate(rep *Report, o CalibrateOptions) (*match.Calibration, error) {
	sel := o.Methods
	if sel == nil {
		sel = func(r Result) bool {
			return r.Shots > 0 && (strings.HasPrefix(r.Base, "sr-") || (face.IsDirectScale(r.Scale) && r.Base == LRBicubic().Name))
		}
	}
	model := rep.SRModel
	if model == "" {
		model = rep.Model
	}
	c := &match.Calibration{Source: o.Source, Embedder: model}
	for _, r := range rep.Results {
		if !sel(r) {
			continue
		}
		if r.Scores == nil {
			return nil, fmt.Errorf("x%d %s: no open-set scores (a report read back from JSON cannot be calibrated)", r.Scale, r.Method)
		}
		e, err := calibrateRow(r)
		if err != nil {
			return nil, fmt.Errorf("x%d %s: %w", r.Scale, r.Method, err)
		}
		c.Entries = append(c.Entries, e)
	}
	if len(c.Entries) == 0 {
		return nil, fmt.Errorf("no rows to calibrate (run with --shots K > 1 and an SR sampler, or at a direct scale)")
	}
	return c, nil
}

// GallerySizes are the smaller galleries Calibrate measures besides the
// full one (those below the full gallery's size), each from
// GalleryTrials random galleries per probe.
var GallerySizes = []int{8, 16, 32, 64, 128}

// GalleryTrials is the number of random galleries per probe and size.
const GalleryTrials = 20

func calibrateRow(r Result) (match.CalibrationEntry, error) {
	e := match.CalibrationEntry{Scale: r.Scale, Shots: max(r.Shots, 1), Samples: max(r.Samples, 1), Fusion: r.Fusion,
		Method: r.Method, Probes: r.Probes, Prior: 0.5, Gallery: r.Scores.Identities()}
	pt, how := chooseSetting(r.OpenSet)
	e.Identify, e.Margin, e.Chosen, e.DIR, e.Wrong, e.FPIR = pt.Threshold, pt.Margin, how, pt.DIR, pt.Wrong, pt.FPIR
	x, y, gen, imp := searches(r.Scores)
	e.Genuine, e.Impostor = histogram(gen), histogram(imp)
	e.PairGenuine, e.PairImpostor = histogram(r.genuine), histogram(r.impostor)
	var err error
	if e.Logistic, err = fitLogistic(x, y); err != nil {
		return e, err
	}
	for _, n := range GallerySizes {
		if n >= e.Gallery {
			break
		}
		sub, pts, err := r.subGallery(n)
		if err != nil {
			return e, err
		}
		pt, how := chooseSetting(pts)
		g := match.GallerySetting{Gallery: n, Trials: GalleryTrials, Identify: pt.Threshold, Margin: pt.Margin, Chosen: how,
			DIR: pt.DIR, Wrong: pt.Wrong, FPIR: pt.FPIR}
		x, y, _, _ := searches(sub)
		if g.Logistic, err = fitLogistic(x, y); err != nil {
			return e, fmt.Errorf("gallery of %d: %w", n, err)
		}
		e.Galleries = append(e.Galleries, g)
	}
	return e, nil
}

// CalibrationFPIR is the FPIR a calibrated setting keeps on the
// calibration split: half the 1 % the daemon aims at, because the estimate
// from a few hundred val probes is noisy. Chosen at 1 %, the FaceRes x8
// settings for 64-200 people let 1.4-4 % of unknown CelebA test probes
// through (bench/RESULTS.md, "Visit calibration by gallery size").
const CalibrationFPIR = 0.005

// chooseSetting picks the calibrated point of an open-set grid: the one
// with the highest DIR at FPIR <= CalibrationFPIR; when nobody is
// identified there, the lowest threshold at margin 0.02 that keeps FPIR
// <= CalibrationFPIR (at any margin when none at 0.02 does); when none
// does, the strictest point. how says which.
func chooseSetting(pts []OpenSetPoint) (pt *OpenSetPoint, how string) {
	if best := bestAt(pts, CalibrationFPIR); best != nil {
		return best, "highest DIR at FPIR <= 0.5 %"
	}
	for _, m02 := range []bool{true, false} {
		for i := range pts {
			p := &pts[i]
			if (!m02 || p.Margin == 0.02) && p.FPIR <= CalibrationFPIR && (pt == nil || p.Threshold < pt.Threshold) {
				pt = p
			}
		}
		if pt != nil {
			return pt, "nobody identified at FPIR <= 0.5 %: lowest threshold with FPIR <= 0.5 % (at margin 0.02 where one is)"
		}
	}
	// the grid's strictest point: the last (highest threshold, margin)
	return &pts[len(pts)-1], "no grid setting keeps FPIR <= 0.5 %: the strictest one"
}

// searches lists every search of the open-set scores (known and unknown)
// as (top, margin) with its label, and the top similarities of right and
// wrong top candidates.
func searches(sc *OpenSetScores) (x [][2]float64, y []bool, gen, imp []float64) {
	for p := range sc.known {
		for _, s := range []struct {
			t  top2
			ok bool
		}{{sc.known[p], sc.correct[p]}, {sc.unknown[p], false}} {
			x = append(x, [2]float64{s.t.top, s.t.top - s.t.second})
			y = append(y, s.ok)
			if s.ok {
				gen = append(gen, s.t.top)
			} else {
				imp = append(imp, s.t.top)
			}
		}
	}
	return x, y, gen, imp
}

func histogram(v []float64) match.Histogram {
	h := match.Histogram{Lo: histLo, Step: histStep, Counts: make([]int, histBins)}
	if len(v) == 0 {
		return h
	}
	var s, ss float64
	for _, x := range v {
		i := min(max(int(math.Floor((x-histLo)/histStep)), 0), histBins-1)
		h.Counts[i]++
		s += x
	}
	h.Mean = s / float64(len(v))
	for _, x := range v {
		ss += (x - h.Mean) * (x - h.Mean)
	}
	h.SD = math.Sqrt(ss / float64(len(v)))
	h.Mean, h.SD = math.Round(h.Mean*1e5)/1e5, math.Round(h.SD*1e5)/1e5
	return h
}

// fitLogistic fits P(y | x) = 1 / (1 + exp(-(b0 + b1 x1 + b2 x2))) by
// Newton's method on the log-likelihood, with the features standardised and
// a small ridge (1e-3) so that separable data still converge.
func fitLogistic(x [][2]float64, y []bool) (match.Logistic, error) {
	n := float64(len(x))
	if len(x) < 4 {
		return match.Logistic{}, fmt.Errorf("logistic fit: %d searches, want at least 4", len(x))
	}
	var mu, sd [2]float64
	for _, v := range x {
		mu[0], mu[1] = mu[0]+v[0]/n, mu[1]+v[1]/n
	}
	for _, v := range x {
		for j := range 2 {
			sd[j] += (v[j] - mu[j]) * (v[j] - mu[j]) / n
		}
	}
	for j := range 2 {
		sd[j] = math.Max(math.Sqrt(sd[j]), 1e-9)
	}
	var b [3]float64
	const ridge = 1e-3
	for range 100 {
		var g [3]float64
		var h [3][3]float64
		for i, v := range x {
			f := [3]float64{1, (v[0] - mu[0]) / sd[0], (v[1] - mu[1]) / sd[1]}
			p := 1 / (1 + math.Exp(-(b[0] + b[1]*f[1] + b[2]*f[2])))
			t := 0.0
			if y[i] {
				t = 1
			}
			for j := range 3 {
				g[j] += (t - p) * f[j]
				for k := range 3 {
					h[j][k] += p * (1 - p) * f[j] * f[k]
				}
			}
		}
		for j := range 3 {
			g[j] -= ridge * n * b[j]
			h[j][j] += ridge * n
		}
		d, ok := solve3(h, g)
		if !ok {
			return match.Logistic{}, fmt.Errorf("logistic fit: singular")
		}
		for j := range 3 {
			b[j] += d[j]
		}
		if math.Abs(d[0])+math.Abs(d[1])+math.Abs(d[2]) < 1e-10 {
			break
		}
	}
	l := match.Logistic{Top: b[1] / sd[0], Margin: b[2] / sd[1]}
	l.Bias = b[0] - l.Top*mu[0] - l.Margin*mu[1]
	return l, nil
}

// solve3 solves h d = g by Gaussian elimination with partial pivoting.
func solve3(h [3][3]float64, g [3]float64) ([3]float64, bool) {
	for c := range 3 {
		p := c
		for r := c + 1; r < 3; r++ {
			if math.Abs(h[r][c]) > math.Abs(h[p][c]) {
				p = r
			}
		}
		if math.Abs(h[p][c]) < 1e-300 {
			return g, false
		}
		h[c], h[p], g[c], g[p] = h[p], h[c], g[p], g[c]
		for r := c + 1; r < 3; r++ {
			f := h[r][c] / h[c][c]
			for k := c; k < 3; k++ {
				h[r][k] -= f * h[c][k]
			}
			g[r] -= f * g[c]
		}
	}
	var d [3]float64
	for r := 2; r >= 0; r-- {
		s := g[r]
		for k := r + 1; k < 3; k++ {
			s -= h[r][k] * d[k]
		}
		d[r] = s / h[r][r]
	}
	return d, true
}

// MergeCalibration adds c's entries to old's, replacing those of the same
// scale, shots, samples and fusion rule (so one file collects the scales of
// several runs); the embedders must agree.
func MergeCalibration(old, c *match.Calibration) (*match.Calibration, error) {
	if old.Embedder != c.Embedder {
		return nil, fmt.Errorf("calibration for embedder %q cannot join one for %q", c.Embedder, old.Embedder)
	}
	key := func(e match.CalibrationEntry) string {
		return fmt.Sprintf("%d|%d|%d|%s", e.Scale, e.Shots, e.Samples, e.Fusion)
	}
	// the source is "; "-separated runs, each "<what>: <data>": a run of
	// the same what (srdgd eval x8) replaces the old one
	var parts []string
	what, _, _ := strings.Cut(c.Source, ":")
	for _, p := range strings.Split(old.Source, "; ") {
		if w, _, _ := strings.Cut(p, ":"); p != "" && w != what {
			parts = append(parts, p)
		}
	}
	out := &match.Calibration{Source: strings.Join(append(parts, c.Source), "; "), Embedder: c.Embedder}
	repl := map[string]bool{}
	for _, e := range c.Entries {
		repl[key(e)] = true
	}
	for _, e := range old.Entries {
		if !repl[key(e)] {
			out.Entries = append(out.Entries, e)
		}
	}
	out.Entries = append(out.Entries, c.Entries...)
	slices.SortStableFunc(out.Entries, func(a, b match.CalibrationEntry) int {
		return cmp.Or(cmp.Compare(a.Scale, b.Scale), cmp.Compare(a.Shots, b.Shots), cmp.Compare(a.Samples, b.Samples), strings.Compare(a.Fusion, b.Fusion))
	})
	return out, nil
}

// ReadCalibration reads a calibration file; a missing one is empty.
func ReadCalibration(path string) (*match.Calibration, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var c match.Calibration
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, false, fmt.Errorf("calibration %s: %w", path, err)
	}
	return &c, true, nil
}

// WriteCalibration writes the calibration as indented JSON.
func WriteCalibration(path string, c *match.Calibration) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// UpdateCalibration calibrates rep (Calibrate, described as source) into
// the file at path, keeping the file's entries of other scales, shots,
// samples and fusion rules: one file for all. It returns the number of
// entries written.
func UpdateCalibration(path string, rep *Report, source string) (int, error) {
	c, err := Calibrate(rep, CalibrateOptions{Source: source})
	if err != nil {
		return 0, fmt.Errorf("calibrate: %w", err)
	}
	if old, ok, err := ReadCalibration(path); err != nil {
		return 0, fmt.Errorf("calibrate: %w", err)
	} else if ok {
		if c, err = MergeCalibration(old, c); err != nil {
			return 0, fmt.Errorf("calibrate %s: %w", path, err)
		}
	}
	if err := WriteCalibration(path, c); err != nil {
		return 0, fmt.Errorf("calibrate: %w", err)
	}
	return len(c.Entries), nil
}
