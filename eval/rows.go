package eval

import (
	"fmt"
	"math"

	"github.com/srdgd/srdgd/match"
)

// scored is what a row aggregates: per probe, image quality and the
// similarity to every gallery entry.
type scored struct {
	psnr, ssim []float64
	sim        [][]float64
	id         []string
}

func (sc *scored) add(psnr, ssim float64, sim []float64, id string) {
	sc.psnr, sc.ssim = append(sc.psnr, psnr), append(sc.ssim, ssim)
	sc.sim, sc.id = append(sc.sim, sim), append(sc.id, id)
}

// similarities of one descriptor to every gallery entry.
func (ev *evaluation) similarities(image string, desc []float32) ([]float64, error) {
	out := make([]float64, len(ev.gal))
	for g, v := range ev.gal {
		if len(v) != len(desc) {
			return nil, fmt.Errorf("probe %s: descriptor of %d values, gallery %d", image, len(desc), len(v))
		}
		out[g] = match.Similarity(desc, v)
	}
	return out, nil
}

// ShotRows are the names of the multi-shot rows of a method with k shots
// and m samples per shot: each shot alone ("-shots1": one decision per
// shot, over all k shots of every probe; with samples, "-shots1-samplesM"
// fuses a shot's samples), the fused descriptor ("-shotsK[-samplesM]") and
// the score-level rule ("...-score": the mean of the similarities).
// singleFused is "" without samples or with one shot.
func ShotRows(method string, k, m int) (single, singleFused, fused, score string) {
	single = fmt.Sprintf("%s-shots1", method)
	fused = fmt.Sprintf("%s-shots%d", method, k)
	if m > 1 {
		if k > 1 { // with one shot, fused is this row
			singleFused = fmt.Sprintf("%s-shots1-samples%d", method, m)
		}
		fused += fmt.Sprintf("-samples%d", m)
	}
	return single, singleFused, fused, fused + "-score"
}

// rows aggregates a method's records into its rows: the single probe, and
// with shots the rows of ShotRows.
func (ev *evaluation) rows(scale int, meth Method, recs []record, shots [][]record) error {
	if ev.wantSingle(meth) {
		if err := ev.singleRow(scale, meth, recs); err != nil {
			return err
		}
	}
	nk, nm := ev.draws(meth)
	if nk == 0 {
		return nil
	}
	return ev.shotRowsOf(scale, meth, shots, nk, nm)
}

func (ev *evaluation) singleRow(scale int, meth Method, recs []record) error {
	var one scored
	for p, r := range recs {
		s, err := ev.similarities(r.Image, r.Embedding)
		if err != nil {
			return fmt.Errorf("evaluate: %s x%d: %w", meth.Name, scale, err)
		}
		one.add(r.PSNR, r.SSIM, s, ev.o.Set.Probes[p].Identity)
	}
	return ev.appendRow(scale, rowInfo{name: meth.Name}, one)
}

// shotRowsOf aggregates the multi-shot rows of a method.
func (ev *evaluation) shotRowsOf(scale int, meth Method, shots [][]record, nk, nm int) error {
	single, singleFused, fused, score := ShotRows(meth.Name, nk, nm)
	rows := map[string]*scored{single: {}, fused: {}, score: {}}
	if singleFused != "" {
		rows[singleFused] = &scored{}
	}
	partial := PartialShotRows(meth.Name, nk, nm)
	for _, name := range partial {
		rows[name] = &scored{}
	}
	for p, draws := range shots {
		if err := ev.shotRows(p, draws, nm, rows, single, singleFused, fused, score); err != nil {
			return fmt.Errorf("evaluate: %s x%d: %w", meth.Name, scale, err)
		}
		if err := ev.partialRows(p, draws, nm, rows, partial); err != nil {
			return fmt.Errorf("evaluate: %s x%d: %w", meth.Name, scale, err)
		}
	}
	infos := []rowInfo{{single, meth.Name, 1, 1, ""}, {singleFused, meth.Name, 1, nm, "descriptor"}}
	for j, name := range partial {
		infos = append(infos, rowInfo{name, meth.Name, j + 2, nm, "descriptor"})
	}
	infos = append(infos, rowInfo{fused, meth.Name, nk, nm, "descriptor"}, rowInfo{score, meth.Name, nk, nm, "score"})
	for _, ri := range infos {
		if ri.name == "" {
			continue
		}
		if err := ev.appendRow(scale, ri, *rows[ri.name]); err != nil {
			return err
		}
	}
	return nil
}

// PartialShotRows are the rows of fewer fused shots than K: "-shots2" to
// "-shots(K-1)" (with m samples "-shotsJ-samplesM", every sample of each
// shot fused), each the fused descriptor of every run of that many
// consecutive shots of a probe (K-j+1 decisions per probe). A visit
// decides from however many shots it has so far: the calibration needs
// each count (match.Calibration.Entry); and J shots of M samples cost the
// SR runs of J*M shots, which the rows of one run compare.
func PartialShotRows(method string, k, m int) []string {
	var out []string
	for j := 2; j < k; j++ {
		name := fmt.Sprintf("%s-shots%d", method, j)
		if m > 1 {
			name += fmt.Sprintf("-samples%d", m)
		}
		out = append(out, name)
	}
	return out
}

// partialRows adds one probe's runs of consecutive shots to the
// PartialShotRows (draws: shot major, nm samples per shot).
func (ev *evaluation) partialRows(p int, draws []record, nm int, rows map[string]*scored, partial []string) error {
	id := ev.o.Set.Probes[p].Identity
	for j, name := range partial {
		n := (j + 2) * nm
		for a := 0; a+n <= len(draws); a += nm {
			run := draws[a : a+n]
			descs := make([][]float32, n)
			for i, r := range run {
				descs[i] = r.Embedding
			}
			f, err := ev.fusedSimilarities(run[0].Image, descs)
			if err != nil {
				return err
			}
			rows[name].add(meanOf(run, func(r record) float64 { return r.PSNR }), meanOf(run, func(r record) float64 { return r.SSIM }), f, id)
		}
	}
	return nil
}

// shotRows adds one probe's draws (shot major, nm samples per shot) to the
// multi-shot rows.
func (ev *evaluation) shotRows(p int, draws []record, nm int, rows map[string]*scored, single, singleFused, fused, score string) error {
	id := ev.o.Set.Probes[p].Identity
	sims := make([][]float64, len(draws))
	descs := make([][]float32, len(draws))
	var psnr, ssim float64
	for i, r := range draws {
		s, err := ev.similarities(r.Image, r.Embedding)
		if err != nil {
			return err
		}
		sims[i], descs[i] = s, r.Embedding
		psnr += r.PSNR / float64(len(draws))
		ssim += r.SSIM / float64(len(draws))
		if i%nm == 0 {
			rows[single].add(r.PSNR, r.SSIM, s, id)
		}
	}
	if singleFused != "" {
		for k := 0; k < len(draws); k += nm {
			f, err := ev.fusedSimilarities(draws[k].Image, descs[k:k+nm])
			if err != nil {
				return err
			}
			rows[singleFused].add(meanOf(draws[k:k+nm], func(r record) float64 { return r.PSNR }),
				meanOf(draws[k:k+nm], func(r record) float64 { return r.SSIM }), f, id)
		}
	}
	f, err := ev.fusedSimilarities(draws[0].Image, descs)
	if err != nil {
		return err
	}
	rows[fused].add(psnr, ssim, f, id)
	rows[score].add(psnr, ssim, MeanSimilarity(sims), id)
	return nil
}

func (ev *evaluation) fusedSimilarities(image string, descs [][]float32) ([]float64, error) {
	f, err := match.Fuse(descs, nil)
	if err != nil {
		return nil, fmt.Errorf("probe %s: %w", image, err)
	}
	return ev.similarities(image, f)
}

// MeanSimilarity is the score-level fusion rule: per gallery entry, the
// mean of the shots' similarities.
func MeanSimilarity(sims [][]float64) []float64 {
	out := make([]float64, len(sims[0]))
	for _, s := range sims {
		for g, v := range s {
			out[g] += v / float64(len(sims))
		}
	}
	return out
}

func meanOf(rs []record, f func(record) float64) float64 {
	var s float64
	for _, r := range rs {
		s += f(r)
	}
	return s / float64(len(rs))
}

// rowInfo names a row and says what it fuses.
type rowInfo struct {
	name, base     string
	shots, samples int
	fusion         string
}

func (ev *evaluation) appendRow(scale int, ri rowInfo, sc scored) error {
	res, err := aggregate(scale, ri.name, sc, ev.galID, ev.nIDs, ev.o.Thresholds)
	if err != nil {
		return fmt.Errorf("evaluate: %s x%d: %w", ri.name, scale, err)
	}
	res.Base, res.Shots, res.Samples, res.Fusion = ri.base, ri.shots, ri.samples, ri.fusion
	if ri.shots > 0 {
		if err := res.bySize(ev.o.Calibration); err != nil {
			return fmt.Errorf("evaluate: %s x%d: %w", ri.name, scale, err)
		}
	}
	ev.rep.Results = append(ev.rep.Results, *res)
	return nil
}

// subsampleSeed seeds the random galleries of a scale: the same in the
// report and in Calibrate, so a calibration's setting is the report's best
// point on the split it was measured on.
func subsampleSeed(scale int) uint64 { return uint64(scale) }

// bySize fills BySize: the open-set grid on random galleries of each of
// GallerySizes below the gallery's identities, then on the full gallery,
// with the rates at the calibrated setting for each size.
func (res *Result) bySize(calib func(scale, shots int) (match.CalibrationEntry, bool)) error {
	var entry *match.CalibrationEntry
	if calib != nil {
		if e, ok := calib(res.Scale, res.Shots); ok && e.Fusion == res.Fusion {
			entry = &e
		}
	}
	full := res.Scores.Identities()
	var sizes []int
	for _, n := range GallerySizes {
		if n < full {
			sizes = append(sizes, n)
		}
	}
	for _, n := range append(sizes, full) {
		sc, best := res.Scores, res.OpenSetBest
		if n < full {
			sub, err := res.Scores.Subsample(n, GalleryTrials, subsampleSeed(res.Scale))
			if err != nil {
				return err
			}
			var pts []OpenSetPoint
			pts, best = openSetGrid(sub)
			sc = sub
			res.subs = append(res.subs, subGrid{n: n, scores: sub, pts: pts})
		}
		sp := SizePoint{Gallery: n, Best: best}
		if entry != nil {
			g := entry.ForGallery(n)
			pt := sc.At(g.Identify, g.Margin)
			sp.Calibrated = &pt
		}
		res.BySize = append(res.BySize, sp)
	}
	return nil
}

func aggregate(scale int, method string, sc scored, galID []string, nIDs int,
	th func(int, string) (match.Thresholds, bool)) (*Result, error) {
	res := &Result{Scale: scale, Method: method, Probes: len(sc.sim)}
	var genuine, impostor []float64
	for p, row := range sc.sim {
		res.PSNR += sc.psnr[p] / float64(len(sc.sim))
		res.SSIM += sc.ssim[p] / float64(len(sc.sim))
		for g, s := range row {
			if galID[g] == sc.id[p] {
				genuine = append(genuine, s)
			} else {
				impostor = append(impostor, s)
			}
		}
	}
	res.genuine, res.impostor = genuine, impostor
	var err error
	if res.AUC, err = AUC(genuine, impostor); err != nil {
		return nil, err
	}
	if res.ROC, err = ROC(genuine, impostor); err != nil {
		return nil, err
	}
	cmc, err := CMC(sc.sim, sc.id, galID, min(10, nIDs))
	if err != nil {
		return nil, err
	}
	for len(cmc) < 10 { // fewer than 10 identities: every rank beyond is 1
		cmc = append(cmc, 1)
	}
	res.Rank, res.R1, res.R5, res.R10 = cmc, cmc[0], cmc[4], cmc[9]
	if err := res.openSet(sc.sim, sc.id, galID, th); err != nil {
		return nil, err
	}
	return res, nil
}

// openSet fills Verify, OpenSet, OpenSetBest, Configured and Scores from the
// probe x gallery similarities.
func (res *Result) openSet(sim [][]float64, probeID, galID []string, th func(int, string) (match.Thresholds, bool)) error {
	if v := ThresholdAtFMR(res.ROC, 1e-3); !math.IsInf(v.Threshold, 0) {
		res.Verify = &v
	}
	sc, err := NewOpenSetScores(sim, probeID, galID)
	if err != nil {
		return err
	}
	res.Scores = sc
	res.OpenSet, res.OpenSetBest = openSetGrid(sc)
	if th == nil {
		return nil
	}
	if t, ok := th(res.Scale, res.Method); ok {
		pt := sc.At(t.Identify, t.Margin)
		res.Configured = &pt
	}
	return nil
}

// openSetGrid measures every threshold and margin of the open-set grid and
// returns the points and the best one: the highest DIR at FPIR <= 1 % (nil
// when no point identifies anyone there).
func openSetGrid(sc *OpenSetScores) (pts []OpenSetPoint, best *OpenSetPoint) {
	n := int(math.Round((openSetHi-openSetLo)/openSetStep)) + 1
	for i := 0; i < n; i++ {
		t := math.Round((openSetLo+float64(i)*openSetStep)*1e4) / 1e4
		for _, m := range openSetMargins {
			pts = append(pts, sc.At(t, m))
		}
	}
	return pts, bestAt(pts, openSetFPIR)
}

// bestAt is the point with the highest DIR whose FPIR is at most fpir (the
// first of equals, in grid order); nil when none identifies anyone.
func bestAt(pts []OpenSetPoint, fpir float64) *OpenSetPoint {
	var best *OpenSetPoint
	for i := range pts {
		if p := &pts[i]; p.FPIR <= fpir && p.DIR > 0 && (best == nil || p.DIR > best.DIR) {
			best = p
		}
	}
	if best == nil {
		return nil
	}
	b := *best
	return &b
}
