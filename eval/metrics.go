package eval

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
)

// PSNR is the peak signal-to-noise ratio in dB between two images of the same
// size with values in [0, peak] (peak = 1 for the planar [0, 1] images of the
// pipeline): 10 log10(peak^2 / MSE) over all samples of all channels. Equal
// images give +Inf.
func PSNR(a, b []float32, peak float64) (float64, error) {
	if len(a) != len(b) || len(a) == 0 {
		return 0, fmt.Errorf("psnr: images have %d and %d samples, want the same non-zero size", len(a), len(b))
	}
	if peak <= 0 {
		return 0, fmt.Errorf("psnr: peak %v, want > 0", peak)
	}
	var se float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		se += d * d
	}
	mse := se / float64(len(a))
	if mse == 0 {
		return math.Inf(1), nil
	}
	return 10 * math.Log10(peak*peak/mse), nil
}

// SSIM constants of Wang, Bovik, Sheikh and Simoncelli, "Image quality
// assessment: from error visibility to structural similarity", IEEE TIP 2004,
// section III-C: an 11x11 circular-symmetric Gaussian window with standard
// deviation 1.5 (normalised to unit sum), K1 = 0.01, K2 = 0.03.
const (
	ssimWindow = 11
	ssimSigma  = 1.5
	ssimK1     = 0.01
	ssimK2     = 0.03
)

// SSIM is the mean structural similarity of two planar images (c channels of
// h x w, channel-major as faceimg.Planar) with dynamic range L (1 for [0, 1]).
//
// Convention (that of the authors' reference ssim.m): the local statistics are
// Gaussian-weighted over every position where the whole 11x11 window fits
// ("valid", no padding), so the SSIM map is (h-10) x (w-10); the mean of the
// map is taken per channel and the channel means are averaged with equal
// weight. Variances and covariance are the biased weighted moments
// E[x^2] - E[x]^2. Images smaller than 11x11 are an error.
func SSIM(a, b []float32, c, h, w int, L float64) (float64, error) {
	if c <= 0 || h < ssimWindow || w < ssimWindow {
		return 0, fmt.Errorf("ssim: image %dx%dx%d, want at least 1 channel and %dx%d pixels", c, h, w, ssimWindow, ssimWindow)
	}
	if len(a) != c*h*w || len(b) != c*h*w {
		return 0, fmt.Errorf("ssim: images have %d and %d samples, want %d (%dx%dx%d)", len(a), len(b), c*h*w, c, h, w)
	}
	if L <= 0 {
		return 0, fmt.Errorf("ssim: dynamic range %v, want > 0", L)
	}
	g := gaussianWindow(ssimWindow, ssimSigma)
	c1 := (ssimK1 * L) * (ssimK1 * L)
	c2 := (ssimK2 * L) * (ssimK2 * L)
	oh, ow := h-ssimWindow+1, w-ssimWindow+1
	n := h * w
	// Separable filtering: the 2-D window is the outer product of g with
	// itself. tmp holds the horizontal pass of the five moment images.
	tmp := make([]float64, 5*h*ow)
	var total float64
	for ch := 0; ch < c; ch++ {
		x, y := a[ch*n:(ch+1)*n], b[ch*n:(ch+1)*n]
		for r := 0; r < h; r++ {
			for o := 0; o < ow; o++ {
				var mx, my, xx, yy, xy float64
				for k, gk := range g {
					xv, yv := float64(x[r*w+o+k]), float64(y[r*w+o+k])
					mx += gk * xv
					my += gk * yv
					xx += gk * xv * xv
					yy += gk * yv * yv
					xy += gk * xv * yv
				}
				i := 5 * (r*ow + o)
				tmp[i], tmp[i+1], tmp[i+2], tmp[i+3], tmp[i+4] = mx, my, xx, yy, xy
			}
		}
		var sum float64
		for r := 0; r < oh; r++ {
			for o := 0; o < ow; o++ {
				var mx, my, xx, yy, xy float64
				for k, gk := range g {
					i := 5 * ((r+k)*ow + o)
					mx += gk * tmp[i]
					my += gk * tmp[i+1]
					xx += gk * tmp[i+2]
					yy += gk * tmp[i+3]
					xy += gk * tmp[i+4]
				}
				vx, vy, cxy := xx-mx*mx, yy-my*my, xy-mx*my
				sum += ((2*mx*my + c1) * (2*cxy + c2)) / ((mx*mx + my*my + c1) * (vx + vy + c2))
			}
		}
		total += sum / float64(oh*ow)
	}
	return total / float64(c), nil
}

// gaussianWindow is a 1-D Gaussian of the given size, normalised so that its
// outer product with itself (the 2-D window) sums to one.
func gaussianWindow(size int, sigma float64) []float64 {
	g := make([]float64, size)
	var s float64
	for i := range g {
		d := float64(i - size/2)
		g[i] = math.Exp(-d * d / (2 * sigma * sigma))
		s += g[i]
	}
	for i := range g {
		g[i] /= s
	}
	return g
}

// AUC is the area under the ROC curve of genuine (same identity, should score
// high) against impostor scores: the probability that a random genuine score
// exceeds a random impostor score, ties counted as one half (the
// Mann-Whitney U statistic divided by the number of pairs).
func AUC(genuine, impostor []float64) (float64, error) {
	if len(genuine) == 0 || len(impostor) == 0 {
		return 0, fmt.Errorf("auc: %d genuine and %d impostor scores, want both non-empty", len(genuine), len(impostor))
	}
	if err := checkFinite(genuine, "genuine"); err != nil {
		return 0, err
	}
	if err := checkFinite(impostor, "impostor"); err != nil {
		return 0, err
	}
	imp := slices.Clone(impostor)
	slices.Sort(imp)
	var u float64
	for _, s := range genuine {
		lo := sort.SearchFloat64s(imp, s)                                   // impostors < s
		hi := sort.Search(len(imp), func(i int) bool { return imp[i] > s }) // impostors <= s
		u += float64(lo) + 0.5*float64(hi-lo)
	}
	return u / (float64(len(genuine)) * float64(len(impostor))), nil
}

func checkFinite(v []float64, what string) error {
	for i, s := range v {
		if math.IsNaN(s) || math.IsInf(s, 0) {
			return fmt.Errorf("%s score %d is %v", what, i, s)
		}
	}
	return nil
}

// ROCPoint is one operating point: accepting scores >= Threshold gives the
// false match rate FMR (impostors accepted) and the true match rate TMR
// (genuine accepted).
type ROCPoint struct {
	Threshold float64
	FMR, TMR  float64
}

// ROC returns the curve's operating points, one per distinct score, in order
// of decreasing threshold, preceded by the (0, 0) point at threshold +Inf.
// The last point (lowest threshold) is (1, 1).
func ROC(genuine, impostor []float64) ([]ROCPoint, error) {
	if len(genuine) == 0 || len(impostor) == 0 {
		return nil, fmt.Errorf("roc: %d genuine and %d impostor scores, want both non-empty", len(genuine), len(impostor))
	}
	if err := checkFinite(genuine, "genuine"); err != nil {
		return nil, err
	}
	if err := checkFinite(impostor, "impostor"); err != nil {
		return nil, err
	}
	type sc struct {
		v   float64
		gen bool
	}
	all := make([]sc, 0, len(genuine)+len(impostor))
	for _, v := range genuine {
		all = append(all, sc{v, true})
	}
	for _, v := range impostor {
		all = append(all, sc{v, false})
	}
	slices.SortFunc(all, func(a, b sc) int {
		switch {
		case a.v > b.v:
			return -1
		case a.v < b.v:
			return 1
		}
		return 0
	})
	ng, ni := float64(len(genuine)), float64(len(impostor))
	pts := []ROCPoint{{Threshold: math.Inf(1)}}
	var tg, ti int
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].v == all[i].v {
			if all[j].gen {
				tg++
			} else {
				ti++
			}
			j++
		}
		pts = append(pts, ROCPoint{Threshold: all[i].v, FMR: float64(ti) / ni, TMR: float64(tg) / ng})
		i = j
	}
	return pts, nil
}

// ThresholdAtFMR is the lowest threshold whose false match rate (fraction of
// impostor scores >= threshold) does not exceed fmr, with the FMR and TMR
// reached there. The threshold is one of the scores (or +Inf if even the
// highest impostor score must be refused).
func ThresholdAtFMR(roc []ROCPoint, fmr float64) ROCPoint {
	best := ROCPoint{Threshold: math.Inf(1)}
	for _, p := range roc {
		if p.FMR <= fmr {
			best = p
		} else {
			break
		}
	}
	return best
}

// CMC computes the cumulative match characteristic of a closed-set
// identification: sim is the probe x gallery similarity matrix (sim[p][g]),
// probeID and galleryID the identities of its rows and columns (a gallery
// identity may have several columns: its score is the maximum over them). For
// k = 1..maxRank the result holds the fraction of probes whose true identity is
// among the k best-scoring gallery identities (Rank-k). Ties are counted
// against the probe: rank = 1 + the number of other identities scoring >= the
// true one. Every probe identity must be in the gallery.
func CMC(sim [][]float64, probeID, galleryID []string, maxRank int) ([]float64, error) {
	if len(sim) != len(probeID) {
		return nil, fmt.Errorf("cmc: %d similarity rows for %d probes", len(sim), len(probeID))
	}
	if len(sim) == 0 || len(galleryID) == 0 {
		return nil, fmt.Errorf("cmc: %d probes and %d gallery entries, want both non-empty", len(sim), len(galleryID))
	}
	if maxRank <= 0 {
		return nil, fmt.Errorf("cmc: max rank %d, want > 0", maxRank)
	}
	idx, col := identityColumns(galleryID)
	hits := make([]int, maxRank+1)
	best := make([]float64, len(idx))
	for p, row := range sim {
		t, err := probeBest(row, probeID[p], idx, col, best)
		if err != nil {
			return nil, fmt.Errorf("cmc: probe %d: %w", p, err)
		}
		rank := 1
		for i, s := range best {
			if i != t && s >= best[t] {
				rank++
			}
		}
		if rank <= maxRank {
			hits[rank]++
		}
	}
	out := make([]float64, maxRank)
	cum := 0
	for k := 1; k <= maxRank; k++ {
		cum += hits[k]
		out[k-1] = float64(cum) / float64(len(sim))
	}
	return out, nil
}

// OpenSetPoint is open-set identification at one threshold and margin.
type OpenSetPoint struct {
	Threshold float64 `json:"threshold"`
	Margin    float64 `json:"margin"`
	// DIR: probes identified as their own identity and accepted (the
	// detection and identification rate); Wrong: probes accepted as another
	// identity; FPIR: probes of an unknown person accepted as someone.
	DIR   float64 `json:"dir"`
	Wrong float64 `json:"wrong"`
	FPIR  float64 `json:"fpir"`
}

// OpenSet measures open-set identification the way match.SearchEmbedding decides
// (best identity accepted when its score reaches threshold and leads the
// runner-up by margin; an identity's score is its best column). Every probe
// is used twice: as a known person with the full gallery (DIR, Wrong), and as
// an unknown person with its own identity's columns removed (FPIR), so one
// closed-set score matrix gives both rates. Every probe identity must be in
// the gallery and the gallery needs at least two identities.
func OpenSet(sim [][]float64, probeID, galleryID []string, threshold, margin float64) (OpenSetPoint, error) {
	sc, err := NewOpenSetScores(sim, probeID, galleryID)
	if err != nil {
		return OpenSetPoint{Threshold: threshold, Margin: margin}, err
	}
	return sc.At(threshold, margin), nil
}

// OpenSetScores holds what open-set decisions need from a score matrix, so
// that many thresholds and margins cost one pass over it: per probe, the
// best and second-best identity scores with the full gallery (and whether
// the best is the probe's own identity) and with its own identity removed.
type OpenSetScores struct {
	known, unknown []top2
	correct        []bool
	// best: per probe, the best score of each gallery identity; own: the
	// number of the probe's identity (for Subsample)
	best [][]float64
	own  []int
}

type top2 struct{ top, second float64 }

// accepts is the decision of SearchEmbedding: the best score reaches the
// threshold and leads the runner-up (-Inf when there is none) by the margin.
// Ties for the best give a lead of 0: ambiguous at any margin > 0.
func (t top2) accepts(threshold, margin float64) bool {
	return t.top >= threshold && t.top-t.second >= margin
}

// NewOpenSetScores reduces a probe x gallery similarity matrix (see OpenSet).
func NewOpenSetScores(sim [][]float64, probeID, galleryID []string) (*OpenSetScores, error) {
	if len(sim) != len(probeID) || len(sim) == 0 {
		return nil, fmt.Errorf("open set: %d similarity rows for %d probes, want equal and non-zero", len(sim), len(probeID))
	}
	idx, col := identityColumns(galleryID)
	if len(idx) < 2 {
		return nil, fmt.Errorf("open set: %d gallery identities, want at least 2", len(idx))
	}
	sc := &OpenSetScores{known: make([]top2, len(sim)), unknown: make([]top2, len(sim)), correct: make([]bool, len(sim)),
		best: make([][]float64, len(sim)), own: make([]int, len(sim))}
	for p, row := range sim {
		best := make([]float64, len(idx))
		sc.best[p] = best
		t, err := probeBest(row, probeID[p], idx, col, best)
		if err != nil {
			return nil, fmt.Errorf("open set: probe %d: %w", p, err)
		}
		var who int
		sc.known[p], who = topTwo(best, -1)
		sc.correct[p] = who == t
		sc.unknown[p], _ = topTwo(best, t)
		sc.own[p] = t
	}
	return sc, nil
}

// Identities is the number of gallery identities the scores were made with.
func (sc *OpenSetScores) Identities() int { return len(sc.best[0]) }

// Subsample is the open-set scores of smaller galleries: random galleries
// of n identities (2 <= n < Identities()), trials per probe. Each trial
// draws n-1 identities other than the probe's; the probe is searched as a
// known person among its own identity and those (DIR, Wrong) and as an
// unknown one among those and one more other identity (FPIR), so every
// search has n candidates. The draws depend only on seed, so reruns agree.
// A smaller gallery holds fewer impostors to outscore a threshold: its
// decisions can be held to a lower bar at the same FPIR
// (match.CalibrationEntry.Galleries).
func (sc *OpenSetScores) Subsample(n, trials int, seed uint64) (*OpenSetScores, error) {
	ids := sc.Identities()
	if n < 2 || n >= ids || trials < 1 {
		return nil, fmt.Errorf("open set: subsample %d of %d identities, %d trials: want 2 <= n < identities and trials >= 1", n, ids, trials)
	}
	m := len(sc.known) * trials
	out := &OpenSetScores{known: make([]top2, 0, m), unknown: make([]top2, 0, m), correct: make([]bool, 0, m)}
	rng := rand.New(rand.NewPCG(seed, uint64(n)))
	perm := make([]int, ids)
	pick := make([]float64, 0, n)
	for p, best := range sc.best {
		own := sc.own[p]
		for range trials {
			// a partial Fisher-Yates shuffle of the identities: the first
			// n others drawn (skipping the probe's own)
			for i := range perm {
				perm[i] = i
			}
			pick = pick[:0]
			for i := 0; len(pick) < n; i++ {
				j := i + rng.IntN(ids-i)
				perm[i], perm[j] = perm[j], perm[i]
				if perm[i] != own {
					pick = append(pick, best[perm[i]])
				}
			}
			// known: own + the first n-1 others; unknown: all n others
			known := append(pick[:n-1:n-1], best[own])
			t, who := topTwo(known, -1)
			out.known = append(out.known, t)
			out.correct = append(out.correct, who == n-1)
			u, _ := topTwo(pick[:n], -1)
			out.unknown = append(out.unknown, u)
		}
	}
	return out, nil
}

// At returns the rates at a threshold and margin.
func (sc *OpenSetScores) At(threshold, margin float64) OpenSetPoint {
	pt := OpenSetPoint{Threshold: threshold, Margin: margin}
	var dir, wrong, fp int
	for p := range sc.known {
		if sc.known[p].accepts(threshold, margin) {
			if sc.correct[p] {
				dir++
			} else {
				wrong++
			}
		}
		if sc.unknown[p].accepts(threshold, margin) {
			fp++
		}
	}
	n := float64(len(sc.known))
	pt.DIR, pt.Wrong, pt.FPIR = float64(dir)/n, float64(wrong)/n, float64(fp)/n
	return pt
}

// topTwo returns the best and second-best scores, skipping identity skip
// (-1: none), and the best one's index (the lower index among ties, as the
// sort in SearchEmbedding).
func topTwo(best []float64, skip int) (top2, int) {
	who, t := -1, top2{math.Inf(-1), math.Inf(-1)}
	for i, s := range best {
		if i == skip {
			continue
		}
		if who < 0 || s > t.top {
			if who >= 0 {
				t.second = t.top
			}
			who, t.top = i, s
		} else if s > t.second {
			t.second = s
		}
	}
	return t, who
}

// identityColumns numbers the gallery identities in order of first
// appearance: idx maps an identity to its number, col a column to its
// identity's number.
func identityColumns(galleryID []string) (idx map[string]int, col []int) {
	idx = map[string]int{}
	col = make([]int, len(galleryID))
	for g, id := range galleryID {
		i, ok := idx[id]
		if !ok {
			i = len(idx)
			idx[id] = i
		}
		col[g] = i
	}
	return idx, col
}

// probeBest fills best (one entry per identity) with the highest similarity
// of each identity's columns in a probe's row, and returns the number of the
// probe's own identity.
func probeBest(row []float64, id string, idx map[string]int, col []int, best []float64) (int, error) {
	if len(row) != len(col) {
		return 0, fmt.Errorf("%d similarities for %d gallery entries", len(row), len(col))
	}
	t, ok := idx[id]
	if !ok {
		return 0, fmt.Errorf("identity %q is not in the gallery", id)
	}
	for i := range best {
		best[i] = math.Inf(-1)
	}
	for g, s := range row {
		if math.IsNaN(s) {
			return 0, fmt.Errorf("similarity [%d] is NaN", g)
		}
		best[col[g]] = max(best[col[g]], s)
	}
	return t, nil
}
