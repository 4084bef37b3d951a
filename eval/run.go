package eval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/srdgd/srdgd/internal/faceimg"
	"github.com/srdgd/srdgd/match"
)

// psnrCap replaces an infinite PSNR (identical images), which JSON cannot
// carry.
const psnrCap = 100

// evaluation is the state of one Evaluate call.
type evaluation struct {
	o        Options
	shots    Shots
	model    string
	rep      *Report
	done     map[string]record
	cache    *os.File
	progress io.Writer
	gal      [][]float32
	galID    []string
	nIDs     int
}

// Evaluate runs every method on every probe at every scale and aggregates:
// mean PSNR and SSIM against the 128x128 HR face, ROC AUC over all
// probe-gallery pairs (cosine of the descriptors), Rank-1..10 and open-set
// operating points.
//
// With Options.Shots enabled, every method but HRMethod also runs on the K
// shots of each probe (and, if stochastic, on Samples posterior samples of
// each), and adds rows named after it (see ShotRows): each shot on its own,
// the fused descriptor (match.Fuse, equal weights: the shots are of equal
// quality by construction) and the score-level rule (mean similarity).
func Evaluate(ctx context.Context, o Options) (*Report, error) {
	if o.Set == nil || o.Embedder == nil || o.Methods == nil || len(o.Scales) == 0 {
		return nil, errors.New("evaluate: set, embedder, methods and scales are required")
	}
	if err := o.Set.Check(); err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	ev := &evaluation{o: o, shots: o.Shots.WithDefaults(), model: o.Embedder.ModelID(), progress: o.Progress, done: map[string]record{}}
	if err := ev.shots.Check(); err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	if ev.progress == nil {
		ev.progress = io.Discard
	}
	ev.rep = &Report{Model: ev.model, SRModel: match.ReaderModel(o.Embedder, 8), Gallery: len(o.Set.Gallery), Probes: len(o.Set.Probes)}
	if err := ev.openCache(); err != nil {
		return nil, err
	}
	defer ev.closeCache()
	if err := ev.gallery(ctx); err != nil {
		return nil, err
	}
	for _, scale := range o.Scales {
		if err := ev.scale(ctx, scale); err != nil {
			return nil, err
		}
	}
	return ev.rep, nil
}

func (ev *evaluation) openCache() error {
	if ev.o.Cache == "" {
		return nil
	}
	var err error
	if ev.done, err = readCache(ev.o.Cache); err != nil {
		return err
	}
	if ev.cache, err = os.OpenFile(ev.o.Cache, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		return fmt.Errorf("evaluate: cache: %w", err)
	}
	return nil
}

func (ev *evaluation) closeCache() {
	if ev.cache != nil {
		ev.cache.Close()
	}
}

// save records finished work (in memory and in the cache file).
func (ev *evaluation) save(r record) error {
	ev.done[r.key()] = r
	ev.rep.Computed++
	if ev.cache == nil {
		return nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("evaluate: cache %s: %w", r.key(), err)
	}
	if _, err := ev.cache.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("evaluate: cache %s: %w", ev.o.Cache, err)
	}
	return nil
}

// cached returns finished work, counting it.
func (ev *evaluation) cached(r record) (record, bool) {
	c, ok := ev.done[r.key()]
	if ok {
		ev.rep.Cached++
	}
	return c, ok
}

// embed makes the descriptor of one face: a probe restored at scale (0: a
// photo, the HR row) or, with template, a gallery photo (what enrolment
// stores: both slots of a match.PairEmbedder).
func (ev *evaluation) embed(ctx context.Context, pix []float32, scale int, template bool) ([]float32, error) {
	in := []match.EmbedInput{{Planar: &faceimg.Planar{W: HR, H: HR, Pix: pix}, Scale: scale}}
	var e []match.Embedding
	var err error
	if t, ok := ev.o.Embedder.(interface {
		EmbedTemplates(context.Context, []match.EmbedInput) ([]match.Embedding, error)
	}); ok && template {
		e, err = t.EmbedTemplates(ctx, in)
	} else {
		e, err = ev.o.Embedder.Embed(ctx, in)
	}
	if err != nil {
		return nil, err
	}
	return e[0].Vector, nil
}

// gallery embeds (or reads from the cache) every gallery image.
func (ev *evaluation) gallery(ctx context.Context) error {
	set := ev.o.Set
	ev.gal = make([][]float32, len(set.Gallery))
	ev.galID = make([]string, len(set.Gallery))
	ids := map[string]bool{}
	for i, im := range set.Gallery {
		ev.galID[i] = im.Identity
		ids[im.Identity] = true
		r := record{Kind: kindGallery, Image: im.Path, Model: ev.model}
		if c, ok := ev.cached(r); ok {
			ev.gal[i] = c.Embedding
			continue
		}
		face, err := set.LoadFace(im)
		if err != nil {
			return fmt.Errorf("evaluate: gallery: %w", err)
		}
		if r.Embedding, err = ev.embed(ctx, face.Pix, 0, true); err != nil {
			return fmt.Errorf("evaluate: gallery %s: %w", im.Path, err)
		}
		ev.gal[i] = r.Embedding
		if err := ev.save(r); err != nil {
			return err
		}
	}
	ev.nIDs = len(ids)
	ev.rep.Identities = len(ids)
	fmt.Fprintf(ev.progress, "eval: gallery of %d images (%d identities) ready, %d probes\n", len(ev.gal), len(ids), len(set.Probes))
	return nil
}

// probeData is one probe at one scale: its HR face, its LR probe and its
// shots, made on first use.
type probeData struct {
	im    Image
	scale int
	hr    *faceimg.Planar
	lr    []float32
	n     int
	shots [][]float32
	seen  [][]float32 // the HR face as each shot saw it
}

func (ev *evaluation) loadProbe(ctx context.Context, pd *probeData, withShots bool) error {
	var err error
	if pd.hr == nil {
		if pd.hr, err = ev.o.Set.LoadFace(pd.im); err != nil {
			return fmt.Errorf("evaluate: probe: %w", err)
		}
		if pd.lr, pd.n, err = MakeLR(pd.hr, pd.scale); err != nil {
			return fmt.Errorf("evaluate: probe %s: %w", pd.im.Path, err)
		}
	}
	if withShots && pd.shots == nil {
		if pd.shots, pd.seen, _, err = ev.shots.Make(ctx, pd.hr, pd.scale, pd.im.Path); err != nil {
			return fmt.Errorf("evaluate: probe %s: %w", pd.im.Path, err)
		}
	}
	return nil
}

// scale runs every method at one scale and appends its rows.
func (ev *evaluation) scale(ctx context.Context, scale int) error {
	methods, err := ev.o.Methods(scale)
	if err != nil {
		return fmt.Errorf("evaluate: x%d: %w", scale, err)
	}
	probes := ev.o.Set.Probes
	recs := make([][]record, len(methods))    // [method][probe]
	shots := make([][][]record, len(methods)) // [method][probe][draw]
	for m := range recs {
		recs[m] = make([]record, len(probes))
		shots[m] = make([][]record, len(probes))
	}
	start := time.Now()
	fresh := 0 // probes that needed computing
	for p, im := range probes {
		before := ev.rep.Computed
		pd := &probeData{im: im, scale: scale}
		for m, meth := range methods {
			if ev.wantSingle(meth) {
				if recs[m][p], err = ev.single(ctx, pd, meth); err != nil {
					return err
				}
			}
			if shots[m][p], err = ev.multi(ctx, pd, meth); err != nil {
				return err
			}
		}
		if ev.rep.Computed > before {
			fresh++
		}
		el := time.Since(start)
		eta := time.Duration(0)
		if fresh > 0 { // the remaining probes cost what the computed ones did
			eta = el / time.Duration(fresh) * time.Duration(len(probes)-p-1)
		}
		fmt.Fprintf(ev.progress, "eval x%d: probe %d/%d %s, elapsed %s, ETA %s\n",
			scale, p+1, len(probes), im.Path, el.Round(time.Second), eta.Round(time.Second))
	}
	for m, meth := range methods {
		if err := ev.rows(scale, meth, recs[m], shots[m]); err != nil {
			return err
		}
	}
	return nil
}

// wantSingle says whether a method gets its single-probe row.
func (ev *evaluation) wantSingle(meth Method) bool {
	return !ev.o.ShotsOnly || !ev.o.Shots.Enabled() || meth.Name == HRMethod
}

// single is a method's result on the probe itself.
func (ev *evaluation) single(ctx context.Context, pd *probeData, meth Method) (record, error) {
	r := record{Kind: kindProbe, Scale: pd.scale, Method: meth.Name, Image: pd.im.Path, Model: ev.model, Adapter: meth.AdapterID}
	if c, ok := ev.cached(r); ok {
		return c, nil
	}
	if err := ev.loadProbe(ctx, pd, false); err != nil {
		return r, err
	}
	return r, ev.compute(ctx, &r, meth, pd, Input{LR: pd.lr, N: pd.n, Probe: pd.im}, pd.hr.Pix)
}

// draws is how many outputs a method gives per probe with the shots: K, or
// K x Samples for a stochastic one; 0 for none (shots off, HRMethod).
func (ev *evaluation) draws(meth Method) (k, m int) {
	if !ev.o.Shots.Enabled() || meth.Name == HRMethod {
		return 0, 0
	}
	if meth.Stochastic {
		return ev.shots.K, ev.shots.Samples
	}
	return ev.shots.K, 1
}

// multi is a method's results on the probe's shots, in Draw order (shot
// major).
func (ev *evaluation) multi(ctx context.Context, pd *probeData, meth Method) ([]record, error) {
	nk, nm := ev.draws(meth)
	out := make([]record, 0, nk*nm)
	for k := range nk {
		for m := range nm {
			r := record{Kind: kindShot, Scale: pd.scale, Method: meth.Name, Image: pd.im.Path, Model: ev.model,
				Draw: Draw(k, m), Shots: ev.shots.Tag(), Adapter: meth.AdapterID}
			if c, ok := ev.cached(r); ok {
				out = append(out, c)
				continue
			}
			if err := ev.loadProbe(ctx, pd, true); err != nil {
				return nil, err
			}
			if err := ev.compute(ctx, &r, meth, pd, Input{LR: pd.shots[k], N: pd.n, Probe: pd.im, Draw: r.Draw}, pd.seen[k]); err != nil {
				return nil, err
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// compute restores one input (or reads it from the SR cache), scores it
// against ref (the HR face as the input saw it), embeds it and saves the
// record.
func (ev *evaluation) compute(ctx context.Context, r *record, meth Method, pd *probeData, in Input, ref []float32) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("evaluate: %w", err)
	}
	what := fmt.Sprintf("evaluate: %s x%d on %s", meth.Name, pd.scale, pd.im.Path)
	if in.Draw != "" {
		what += " " + in.Draw
	}
	out, err := ev.restore(ctx, meth, pd.scale, in)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if len(out) != len(ref) {
		return fmt.Errorf("%s: %d values, want %d", what, len(out), len(ref))
	}
	if r.PSNR, err = PSNR(out, ref, 1); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if math.IsInf(r.PSNR, 1) {
		r.PSNR = psnrCap
	}
	if r.SSIM, err = SSIM(out, ref, 3, HR, HR, 1); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	// the HR row is a photo; every other method's output a restored face
	read := pd.scale
	if meth.Name == HRMethod {
		read = 0
	}
	if r.Embedding, err = ev.embed(ctx, out, read, false); err != nil {
		return fmt.Errorf("%s: embed: %w", what, err)
	}
	if meth.Adapt != nil {
		if r.Embedding, err = meth.Adapt(ctx, r.Embedding); err != nil {
			return fmt.Errorf("%s: adapter: %w", what, err)
		}
	}
	return ev.save(*r)
}

// restore runs the method, through the SR cache when it has an ID.
func (ev *evaluation) restore(ctx context.Context, meth Method, scale int, in Input) ([]float32, error) {
	if meth.ID == "" || ev.o.SRCache == "" {
		return meth.Restore(ctx, in)
	}
	tag := ""
	if in.Draw != "" {
		tag = ev.shots.Tag()
	}
	path := srCachePath(ev.o.SRCache, meth, scale, in, tag)
	if out, err := readSR(path); err == nil {
		return out, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	out, err := meth.Restore(ctx, in)
	if err != nil {
		return nil, err
	}
	if len(out) != 3*HR*HR { // compute reports the size
		return out, nil
	}
	// What a rerun reads back: the 16-bit values, so both runs embed the same.
	return writeSR(path, out)
}
