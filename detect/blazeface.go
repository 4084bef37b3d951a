package detect

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"log/slog"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/srdgd/srdgd/internal/ort"
	"github.com/srdgd/srdgd/internal/resample"
)

// BlazeFaceSlot is what the detector requires of its ONNX file (written by
// `models package-blazeface`; models/README.md documents the keys).
var blazeFaceSlot = ort.Slot{
	Name:    "face detector",
	Kind:    "face_detector",
	Inputs:  []string{"input"},
	Outputs: []string{"scores", "boxes"},
	Meta: []string{"srdgd.detector", "srdgd.input_size", "srdgd.input_layout", "srdgd.input_range",
		"srdgd.anchors", "srdgd.decoding", "srdgd.keypoints"},
}

// BlazeFaceOptions configures NewBlazeFace. Zero values take the defaults.
type BlazeFaceOptions struct {
	// Model is the ONNX file (models/dist/blazeface.onnx). Required.
	Model string
	// Threads for ONNX Runtime's intra-op pool; 0 leaves ORT's default (all
	// cores), which competes with the rest of the daemon: set it on small boxes.
	Threads int
	// Providers in order of preference; default [cpu]. BlazeFace is small
	// enough that a GPU round trip rarely pays.
	Providers []string
	// MaxBatch is how many windows go through the network in one Run (default
	// 1). The input and output buffers are allocated once for this many. On
	// the CPU provider batching does not pay: one window takes 1.4 ms, a batch
	// of 16 3.5 ms per window (the activations no longer fit the cache);
	// raise it for GPU providers.
	MaxBatch int

	Search

	// NetMinFacePx and NetMaxFacePx are the face box heights, in network
	// input pixels (of 128), that one pyramid level is responsible for
	// (defaults 24 and 48). The model finds 98 % of sharp CelebA faces from 16
	// to 112 px, but small faces enlarged to 20 px are found only half the
	// time (bench/RESULTS.md); a ratio of 2 between levels keeps the window
	// overlap, and so the number of windows, low. The window pyramid is built so that
	// every face between Search.MinFacePx and Search.MaxFacePx lands in this
	// range at some level.
	NetMinFacePx, NetMaxFacePx float64
	// MaxUpscale caps how much a window is enlarged (default 4): faces below
	// NetMinFacePx/MaxUpscale frame pixels are not searched for.
	MaxUpscale float64
	// Overlap is the overlap of neighbouring windows as a multiple of the
	// level's largest face (default 1.1), so that each face lies whole in at
	// least one window.
	Overlap float64
	// TilePx, when set, replaces the computed pyramid: one level per entry,
	// each the side of a window in frame pixels (scaled to the 128 input).
	TilePx []int
	// NoRefine skips the second look at each face (one more window per
	// face, centred on it, for steadier keypoints and so a better SR framing).
	NoRefine bool
	// RefineScale is the refinement window's side in face heights (default 2).
	RefineScale float64
	// HintScale is the side, in face heights, of the window centred on each
	// of Image.Hints (default 3: the face at 43 of the 128 input pixels, in
	// the reliable range, with a face height of room on each side for the
	// prediction's error).
	HintScale float64
	// KeepUnverified keeps the pyramid's score for faces the refinement looks
	// do not confirm. By default a face's score becomes the mean score of the
	// two looks (0 for a look that misses it) and faces below MinScore are
	// dropped: on pasted scenes this costs 12 px faces 11 % of recall and
	// removes all false positives (0.67 per 720p frame before); on real
	// photos it removes most detections on hair, skin and fabric.
	KeepUnverified bool

	// Logger: default discard.
	Logger *slog.Logger
}

func (o *BlazeFaceOptions) setDefaults() {
	if len(o.Providers) == 0 {
		o.Providers = []string{ort.CPU}
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = 1
	}
	o.Search.setDefaults()
	if o.NetMinFacePx == 0 {
		o.NetMinFacePx = 24
	}
	if o.NetMaxFacePx == 0 {
		o.NetMaxFacePx = 48
	}
	if o.MaxUpscale == 0 {
		o.MaxUpscale = 4
	}
	if o.Overlap == 0 {
		o.Overlap = 1.1
	}
	if o.RefineScale == 0 {
		o.RefineScale = 2
	}
	if o.HintScale == 0 {
		o.HintScale = 3
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

func (o *BlazeFaceOptions) validate() error {
	var probs []string
	if o.Model == "" {
		probs = append(probs, "model: required (models/dist/blazeface.onnx)")
	}
	if o.MaxBatch < 1 || o.MaxBatch > 256 {
		probs = append(probs, fmt.Sprintf("max batch %d: want 1..256", o.MaxBatch))
	}
	if err := o.Search.validate(); err != nil {
		probs = append(probs, strings.TrimPrefix(err.Error(), "detect: "))
	}
	if o.NetMinFacePx < 4 || o.NetMaxFacePx <= o.NetMinFacePx || o.NetMaxFacePx > 128 {
		probs = append(probs, fmt.Sprintf("network face range %g..%g px: want 4 <= min < max <= 128", o.NetMinFacePx, o.NetMaxFacePx))
	}
	if o.MaxUpscale < 1 || o.MaxUpscale > 16 {
		probs = append(probs, fmt.Sprintf("max upscale %g: want 1..16", o.MaxUpscale))
	}
	if o.Overlap < 0 || o.Overlap > 4 {
		probs = append(probs, fmt.Sprintf("overlap %g: want 0..4 (multiples of the largest face per level)", o.Overlap))
	}
	if o.RefineScale < 1.2 || o.RefineScale > 8 {
		probs = append(probs, fmt.Sprintf("refine scale %g: want 1.2..8 face heights", o.RefineScale))
	}
	if o.HintScale < 1.2 || o.HintScale > 8 {
		probs = append(probs, fmt.Sprintf("hint scale %g: want 1.2..8 face heights", o.HintScale))
	}
	for _, t := range o.TilePx {
		if t < 8 {
			probs = append(probs, fmt.Sprintf("tile %d px: want at least 8", t))
		}
	}
	if len(probs) > 0 {
		return fmt.Errorf("blazeface: %s", joinProbs(probs))
	}
	return nil
}

// anchor is a BlazeFace anchor centre, normalised to the network input.
type anchor struct{ x, y float32 }

// BlazeFace is MediaPipe's short-range face detector (BlazeFace, Bazarevsky et
// al. 2019) over a pyramid of overlapping windows. Not safe for concurrent
// use.
type BlazeFace struct {
	o       BlazeFaceOptions
	log     *slog.Logger
	sess    *ort.Session
	size    int     // network input side
	scale   float32 // regressor scale (input size)
	anchors []anchor
	minLog  float32 // score logit threshold

	in, scores, boxes []float32
	tensors           []batchTensors // by batch size, created on first use

	planar  []float32                 // one window or search region, planar RGB
	netPl   []float32                 // one window resized, planar 128x128
	resize  map[int]*resample.Resizer // by window side
	plans   map[planKey]*plan         // window layout by frame size
	cursors map[string]int            // per Source: first window of the next call
	cands   []Detection
	seq     uint64 // Detect calls, to refill level images once per call
}

type batchTensors struct {
	in, scores, boxes ort.Value
}

// NewBlazeFace loads the model into rt and prepares buffers for MaxBatch windows.
func NewBlazeFace(rt *ort.Runtime, o BlazeFaceOptions) (*BlazeFace, error) {
	o.setDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	o.TilePx = append([]int(nil), o.TilePx...)
	o.ROIs = append([]NormRect(nil), o.ROIs...)
	sess, err := rt.NewSession(o.Model, blazeFaceSlot, ort.SessionOptions{Providers: o.Providers, IntraOpThreads: o.Threads})
	if err != nil {
		return nil, err
	}
	b := &BlazeFace{o: o, log: o.Logger.With("component", "detect", "detector", "blazeface"), sess: sess,
		resize: map[int]*resample.Resizer{}, plans: map[planKey]*plan{}, cursors: map[string]int{}}
	if err := b.readMeta(sess.Meta); err != nil {
		sess.Close()
		return nil, fmt.Errorf("face detector %s: %w", o.Model, err)
	}
	p := float64(o.MinScore)
	b.minLog = float32(math.Log(p / (1 - p)))
	n := b.size * b.size * 3
	b.in = make([]float32, o.MaxBatch*n)
	b.scores = make([]float32, o.MaxBatch*len(b.anchors))
	b.boxes = make([]float32, o.MaxBatch*len(b.anchors)*16)
	b.tensors = make([]batchTensors, o.MaxBatch+1)
	b.netPl = make([]float32, n)
	return b, nil
}

// readMeta takes the input geometry and the anchor layout from the model's
// metadata, refusing what this decoder does not implement.
func (b *BlazeFace) readMeta(meta map[string]string) error {
	var probs []string
	size, err := strconv.Atoi(meta["srdgd.input_size"])
	if err != nil || size < 32 {
		probs = append(probs, fmt.Sprintf("srdgd.input_size %q: want an integer >= 32", meta["srdgd.input_size"]))
	}
	if l := meta["srdgd.input_layout"]; l != "NHWC" {
		probs = append(probs, fmt.Sprintf("srdgd.input_layout %q: this decoder needs NHWC", l))
	}
	if r := strings.Trim(strings.ReplaceAll(meta["srdgd.input_range"], " ", ""), "[]"); r != "-1,1" {
		probs = append(probs, fmt.Sprintf("srdgd.input_range %q: this decoder feeds [-1, 1]", meta["srdgd.input_range"]))
	}
	var anc struct {
		// each layer: {"stride": .., "grid": .., "per_cell": ..}
		Layers []map[string]int `json:"layers"`
		Count  int              `json:"count"`
	}
	if err := json.Unmarshal([]byte(meta["srdgd.anchors"]), &anc); err != nil {
		probs = append(probs, fmt.Sprintf("srdgd.anchors: not JSON: %v", err))
	}
	var dec struct {
		Scale float64 `json:"scale"`
	}
	if err := json.Unmarshal([]byte(meta["srdgd.decoding"]), &dec); err != nil {
		probs = append(probs, fmt.Sprintf("srdgd.decoding: not JSON: %v", err))
	}
	if len(probs) > 0 {
		return fmt.Errorf("%s", joinProbs(probs))
	}
	b.size, b.scale = size, float32(dec.Scale)
	for _, l := range anc.Layers {
		g, k := l["grid"], l["per_cell"]
		if g <= 0 || k <= 0 {
			return fmt.Errorf("srdgd.anchors: layer %v needs grid and per_cell", l)
		}
		for y := 0; y < g; y++ {
			for x := 0; x < g; x++ {
				for i := 0; i < k; i++ {
					b.anchors = append(b.anchors, anchor{(float32(x) + 0.5) / float32(g), (float32(y) + 0.5) / float32(g)})
				}
			}
		}
	}
	if len(b.anchors) != anc.Count || anc.Count == 0 {
		return fmt.Errorf("srdgd.anchors: layers give %d anchors, metadata says %d", len(b.anchors), anc.Count)
	}
	for _, o := range b.sess.Outputs {
		if d := o.Dimensions; len(d) == 3 && d[1] != int64(len(b.anchors)) {
			return fmt.Errorf("output %s has %d anchors, metadata says %d", o.Name, d[1], len(b.anchors))
		}
	}
	return nil
}

// Name implements Detector.
func (b *BlazeFace) Name() string { return "blazeface" }

// Calibration implements Detector.
func (b *BlazeFace) Calibration() Calibration { return BlazeFaceCalibration }

// Close releases the session and tensors.
func (b *BlazeFace) Close() error {
	for i := range b.tensors {
		for _, v := range []ort.Value{b.tensors[i].in, b.tensors[i].scores, b.tensors[i].boxes} {
			if v != nil {
				v.Destroy()
			}
		}
		b.tensors[i] = batchTensors{}
	}
	if b.sess == nil {
		return nil
	}
	err := b.sess.Close()
	b.sess = nil
	return err
}

func (b *BlazeFace) batch(n int) (batchTensors, error) {
	if t := b.tensors[n]; t.in != nil {
		return t, nil
	}
	s, a := int64(b.size), int64(len(b.anchors))
	in, err := ort.NewTensor(b.in[:n*b.size*b.size*3], int64(n), s, s, 3)
	if err != nil {
		return batchTensors{}, fmt.Errorf("blazeface: input tensor: %w", err)
	}
	sc, err := ort.NewTensor(b.scores[:n*int(a)], int64(n), a, 1)
	if err != nil {
		in.Destroy()
		return batchTensors{}, fmt.Errorf("blazeface: scores tensor: %w", err)
	}
	bx, err := ort.NewTensor(b.boxes[:n*int(a)*16], int64(n), a, 16)
	if err != nil {
		in.Destroy()
		sc.Destroy()
		return batchTensors{}, fmt.Errorf("blazeface: boxes tensor: %w", err)
	}
	b.tensors[n] = batchTensors{in, sc, bx}
	return b.tensors[n], nil
}

// level is one scale of the window pyramid.
type level struct {
	tile             int     // window side in frame pixels
	minFace, maxFace float64 // face box heights this level is responsible for
}

// window is one network input. Upscaling levels (tile <= input size) cut
// their square straight from the frame and resize it; downscaling levels cut
// an input-sized square from a level image, the search region resized once
// per frame, which avoids resampling big overlapping tiles one by one. The
// square may reach past the picture; the missing pixels are edge-replicated.
type window struct {
	level int
	// src is the level image index, or -1 to cut r from the frame.
	src int
	// r is the square in frame pixels (src -1) or in level-image pixels.
	r image.Rectangle
	// frame is where the window lies in frame coordinates.
	frame Rect
	// minFace, maxFace: the face heights (frame px) this window reports.
	minFace, maxFace float64
	// mirror: the input is flipped left-right (refinement's second look).
	mirror bool
}

// levelImg is a search region resized by a level's scale.
type levelImg struct {
	reg  image.Rectangle // in the frame
	w, h int
	rz   *resample.Resizer
	pix  []float32 // planar RGB, filled once per Detect call when needed
	seq  uint64    // Detect call that filled pix
}

type plan struct {
	wins []window
	imgs []*levelImg
}

type planKey struct{ w, h int }

// maxPlans bounds the window layouts a detector keeps.
const maxPlans = 8

// Levels returns the pyramid for the options: window side in frame pixels and
// the face heights each level covers, smallest faces first.
func (b *BlazeFace) levels() []level {
	o := &b.o
	net := float64(b.size)
	if len(o.TilePx) > 0 {
		ls := make([]level, len(o.TilePx))
		for i, t := range o.TilePx {
			s := net / float64(t)
			ls[i] = level{tile: t, minFace: o.NetMinFacePx / s, maxFace: o.NetMaxFacePx / s}
		}
		sort.Slice(ls, func(i, j int) bool { return ls[i].tile < ls[j].tile })
		return ls
	}
	// scale (network px per frame px) that puts the smallest face at the
	// bottom of the reliable range, capped by MaxUpscale
	s := math.Min(o.NetMinFacePx/o.MinFacePx, o.MaxUpscale)
	ratio := o.NetMaxFacePx / o.NetMinFacePx
	var ls []level
	for {
		t := int(math.Round(net / s))
		l := level{tile: t, minFace: o.NetMinFacePx / s, maxFace: o.NetMaxFacePx / s}
		if len(ls) == 0 {
			l.minFace = math.Min(l.minFace, o.MinFacePx)
		}
		ls = append(ls, l)
		if l.maxFace >= o.MaxFacePx || len(ls) == 12 {
			break
		}
		s /= ratio
	}
	return ls
}

// plan lays the windows over the search regions of a w x h frame, smallest
// faces (most windows) last, so a time budget cuts the expensive levels.
func (b *BlazeFace) plan(w, h int) (*plan, error) {
	key := planKey{w, h}
	if p, ok := b.plans[key]; ok {
		return p, nil
	}
	ls := b.levels()
	p := &plan{}
	for li := len(ls) - 1; li >= 0; li-- {
		l := ls[li]
		for _, reg := range b.o.Search.regions(w, h) {
			if l.tile <= b.size {
				ov := min(int(math.Ceil(b.o.Overlap*l.maxFace)), l.tile-1)
				for _, y := range spans(reg.Min.Y, reg.Dy(), l.tile, ov) {
					for _, x := range spans(reg.Min.X, reg.Dx(), l.tile, ov) {
						r := image.Rect(x, y, x+l.tile, y+l.tile)
						p.wins = append(p.wins, window{level: li, src: -1, r: r,
							frame:   Rect{X0: float64(x), Y0: float64(y), X1: float64(x + l.tile), Y1: float64(y + l.tile)},
							minFace: l.minFace * 0.7, maxFace: l.maxFace * 1.5})
					}
				}
				continue
			}
			s := float64(b.size) / float64(l.tile)
			lw, lh := max(1, int(math.Round(float64(reg.Dx())*s))), max(1, int(math.Round(float64(reg.Dy())*s)))
			rz, err := resample.NewResizer(3, reg.Dy(), reg.Dx(), lh, lw, resample.Bilinear)
			if err != nil {
				return nil, fmt.Errorf("blazeface: level %d: %w", li, err)
			}
			p.imgs = append(p.imgs, &levelImg{reg: reg, w: lw, h: lh, rz: rz})
			sx, sy := float64(lw)/float64(reg.Dx()), float64(lh)/float64(reg.Dy())
			ov := min(int(math.Ceil(b.o.Overlap*l.maxFace*s)), b.size-1)
			for _, y := range spans(0, lh, b.size, ov) {
				for _, x := range spans(0, lw, b.size, ov) {
					r := image.Rect(x, y, x+b.size, y+b.size)
					p.wins = append(p.wins, window{level: li, src: len(p.imgs) - 1, r: r, frame: Rect{
						X0: float64(reg.Min.X) + float64(x)/sx, Y0: float64(reg.Min.Y) + float64(y)/sy,
						X1: float64(reg.Min.X) + float64(x+b.size)/sx, Y1: float64(reg.Min.Y) + float64(y+b.size)/sy},
						minFace: l.minFace * 0.7, maxFace: l.maxFace * 1.5})
				}
			}
		}
	}
	// a camera has one frame size, but photos come in many: keep a few
	// plans, not one (with its level images) per size ever seen
	if len(b.plans) >= maxPlans {
		clear(b.plans)
	}
	b.plans[key] = p
	tiles := make([]int, len(ls))
	for i, l := range ls {
		tiles[i] = l.tile
	}
	b.log.Debug("window pyramid", "width", w, "height", h, "windows", len(p.wins), "tiles_px", tiles,
		"min_face_px", ls[0].minFace, "max_face_px", ls[len(ls)-1].maxFace)
	return p, nil
}

// spans places windows of side t over [start, start+n) overlapping by at
// least ov, evenly spread; a region smaller than a window gets one window
// centred on it.
func spans(start, n, t, ov int) []int {
	if n <= t {
		return []int{start + (n-t)/2}
	}
	stride := t - ov
	k := int(math.Ceil(float64(n-t)/float64(stride))) + 1
	out := make([]int, k)
	for i := range out {
		out[i] = start + int(math.Round(float64(i)*float64(n-t)/float64(k-1)))
	}
	return out
}

// Detect implements Detector.
func (b *BlazeFace) Detect(ctx context.Context, img *Image) (Result, error) {
	if err := img.check(); err != nil {
		return Result{}, err
	}
	start := time.Now()
	p, err := b.plan(img.Width, img.Height)
	if err != nil {
		return Result{}, err
	}
	b.seq++
	wins := p.wins
	var res Result
	b.cands = b.cands[:0]
	hints := b.hintWindows(img)
	for j := 0; j < len(hints); j += b.o.MaxBatch {
		if _, err := b.run(ctx, img, p, hints[j:min(len(hints), j+b.o.MaxBatch)]); err != nil {
			return res, err
		}
	}
	res.Tiles, res.Hinted = len(hints), len(hints)
	// A budget-cut frame resumes where the last one of the same source
	// stopped, so over a few frames every window runs.
	first := b.cursors[img.Source] % max(len(wins), 1)
	batch := make([]window, 0, b.o.MaxBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if _, err := b.run(ctx, img, p, batch); err != nil {
			return err
		}
		res.Tiles += len(batch)
		batch = batch[:0]
		return nil
	}
	done := 0
	for done < len(wins) {
		// at least one batch of the rotation runs per call (after the
		// hints), so a tight budget still progresses
		if b.o.Budget > 0 && done > 0 && len(batch) == 0 && time.Since(start) > b.o.Budget {
			res.OverBudget = true
			break
		}
		batch = append(batch, wins[(first+done)%len(wins)])
		done++
		if len(batch) == b.o.MaxBatch {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
	if err := flush(); err != nil {
		return res, err
	}
	res.Skipped = len(wins) - done
	if res.OverBudget {
		b.cursors[img.Source] = (first + done) % len(wins)
	} else {
		delete(b.cursors, img.Source)
	}
	res.Faces = weightedNMS(b.cands, b.o.NMSIoU)
	if !b.o.NoRefine {
		if err := b.refine(ctx, img, res.Faces); err != nil {
			return res, err
		}
		res.Tiles += 2 * len(res.Faces)
	}
	kept := res.Faces[:0]
	for _, f := range res.Faces {
		if f.Score >= b.o.MinScore {
			kept = append(kept, f)
		}
	}
	res.Faces = sizeFilter(kept, b.o.Search)
	return res, nil
}

// hintWindows are the windows centred on img.Hints that lie in a search
// region, HintScale face heights a side, reporting faces of half to twice
// the hint's height within the searched size range.
func (b *BlazeFace) hintWindows(img *Image) []window {
	var out []window
	for _, h := range img.Hints {
		px := h.Y1 - h.Y0
		c := h.Centre()
		if !(px > 0) || px > 4*b.o.MaxFacePx || !b.o.Search.inRegion(c, img.Width, img.Height) {
			continue
		}
		out = append(out, centredWindow(c, b.o.HintScale*px, math.Max(px/2, b.o.MinFacePx*0.7), math.Min(px*2, b.o.MaxFacePx*1.5)))
	}
	return out
}

// centredWindow is a square window cut from the frame around c, side
// frame pixels (at least 8), reporting faces of minFace to maxFace px: the
// refinement's look at a face and a hint's look at a track's prediction.
func centredWindow(c Point, side, minFace, maxFace float64) window {
	n := max(8, int(math.Ceil(side)))
	x, y := int(math.Round(c.X-float64(n)/2)), int(math.Round(c.Y-float64(n)/2))
	return window{src: -1, r: rectXYWH(x, y, n, n),
		frame:   Rect{X0: float64(x), Y0: float64(y), X1: float64(x + n), Y1: float64(y + n)},
		minFace: minFace, maxFace: maxFace}
}

// run fills the input with the windows, runs the network once and decodes
// into b.cands; got[i] is the range of b.cands that window i added.
func (b *BlazeFace) run(ctx context.Context, img *Image, p *plan, wins []window) (got [][2]int, err error) {
	n := b.size * b.size * 3
	for i, w := range wins {
		dst := b.in[i*n : (i+1)*n]
		if w.src < 0 {
			if err := b.fill(dst, img, w.r); err != nil {
				return nil, err
			}
			if w.mirror {
				mirrorNHWC(dst, b.size)
			}
			continue
		}
		li := p.imgs[w.src]
		if li.seq != b.seq {
			if err := b.fillLevel(li, img); err != nil {
				return nil, err
			}
			li.seq = b.seq
		}
		cutNHWC(dst, li.pix, li.w, li.h, w.r)
	}
	t, err := b.batch(len(wins))
	if err != nil {
		return nil, err
	}
	if err := b.sess.Run(ctx, []ort.Value{t.in}, []ort.Value{t.scores, t.boxes}); err != nil {
		return nil, fmt.Errorf("blazeface: %w", err)
	}
	na := len(b.anchors)
	got = make([][2]int, len(wins))
	for i, w := range wins {
		got[i][0] = len(b.cands)
		b.decode(b.scores[i*na:(i+1)*na], b.boxes[i*na*16:(i+1)*na*16], w, img)
		got[i][1] = len(b.cands)
	}
	return got, nil
}

// refine looks at each face once more through a window centred on it, the
// face filling 1/RefineScale of the input, where BlazeFace places its
// keypoints most consistently and scores real faces highest (the pyramid
// window that found a face may have seen it at the edge of its size range),
// and once through the same window mirrored. The mean of the two looks
// replaces the first box and keypoints, and their mean score (a missed look
// counting 0) the first score, unless KeepUnverified.
func (b *BlazeFace) refine(ctx context.Context, img *Image, faces []Detection) error {
	per := max(1, b.o.MaxBatch/2) // faces per round, two windows each
	for start := 0; start < len(faces); start += per {
		chunk := faces[start:min(len(faces), start+per)]
		wins := make([]window, 0, 2*len(chunk))
		for _, f := range chunk {
			w := centredWindow(f.Box.Centre(), b.o.RefineScale*f.Px(), f.Px()/2, f.Px()*2)
			wins = append(wins, w)
			w.mirror = true
			wins = append(wins, w)
		}
		mark := len(b.cands)
		var got [][2]int
		for j := 0; j < len(wins); j += b.o.MaxBatch {
			g, err := b.run(ctx, img, nil, wins[j:min(len(wins), j+b.o.MaxBatch)])
			if err != nil {
				return err
			}
			got = append(got, g...)
		}
		k := 0
		for i := range chunk {
			f := &chunk[i]
			var looks []Detection
			for n := 0; n < 2; n++ {
				near := b.cands[got[k][0]:got[k][1]:got[k][1]]
				k++
				var best Detection
				bestIoU := 0.3
				for _, g := range weightedNMS(near, b.o.NMSIoU) {
					if v := IoU(f.Box, g.Box); v > bestIoU {
						best, bestIoU = g, v
					}
				}
				if bestIoU > 0.3 {
					looks = append(looks, best)
				}
			}
			if len(looks) == 0 {
				if !b.o.KeepUnverified {
					f.Score = 0
				}
				continue
			}
			// the mean of the plain and the mirrored look cancels the
			// model's left-right bias in the keypoints
			var m Detection
			var sum float64
			for _, g := range looks {
				w := 1 / float64(len(looks))
				m.Box = Rect{X0: m.Box.X0 + w*g.Box.X0, Y0: m.Box.Y0 + w*g.Box.Y0, X1: m.Box.X1 + w*g.Box.X1, Y1: m.Box.Y1 + w*g.Box.Y1}
				for j := range m.Landmarks {
					m.Landmarks[j].X += w * g.Landmarks[j].X
					m.Landmarks[j].Y += w * g.Landmarks[j].Y
				}
				sum += g.Score
			}
			if !b.o.KeepUnverified {
				f.Score = sum / 2
			} else {
				for _, g := range looks {
					f.Score = math.Max(f.Score, g.Score)
				}
			}
			f.Box, f.Landmarks = m.Box, m.Landmarks
		}
		b.cands = b.cands[:mark]
	}
	return nil
}

// mirrorNHWC flips a size x size NHWC image left-right in place.
func mirrorNHWC(p []float32, size int) {
	for y := 0; y < size; y++ {
		row := p[3*size*y : 3*size*(y+1)]
		for a, z := 0, size-1; a < z; a, z = a+1, z-1 {
			row[3*a], row[3*z] = row[3*z], row[3*a]
			row[3*a+1], row[3*z+1] = row[3*z+1], row[3*a+1]
			row[3*a+2], row[3*z+2] = row[3*z+2], row[3*a+2]
		}
	}
}

// fillLevel resizes a search region of the frame into its level image.
func (b *BlazeFace) fillLevel(li *levelImg, img *Image) error {
	n := 3 * li.reg.Dx() * li.reg.Dy()
	if cap(b.planar) < n {
		b.planar = make([]float32, n)
	}
	cropPlanar(b.planar[:n], img, li.reg)
	if li.pix == nil {
		li.pix = make([]float32, 3*li.w*li.h)
	}
	if err := li.rz.Resize(li.pix, b.planar[:n]); err != nil {
		return fmt.Errorf("blazeface: %w", err)
	}
	return nil
}

// cutNHWC copies the square r of a planar w x h image into dst as NHWC in
// [-1, 1], replicating edge pixels past the border.
func cutNHWC(dst, pl []float32, w, h int, r image.Rectangle) {
	m := w * h
	i := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		row := min(max(y, 0), h-1) * w
		for x := r.Min.X; x < r.Max.X; x++ {
			k := row + min(max(x, 0), w-1)
			dst[i] = pl[k]*2 - 1
			dst[i+1] = pl[m+k]*2 - 1
			dst[i+2] = pl[2*m+k]*2 - 1
			i += 3
		}
	}
}

// fill writes one window as NHWC RGB in [-1, 1]: crop (edge-replicated past
// the frame) and resize to the network size with Pillow-style antialiased
// bilinear.
func (b *BlazeFace) fill(dst []float32, img *Image, r image.Rectangle) error {
	side := r.Dx()
	rz, ok := b.resize[side]
	if !ok {
		var err error
		if rz, err = resample.NewResizer(3, side, side, b.size, b.size, resample.Bilinear); err != nil {
			return fmt.Errorf("blazeface: %w", err)
		}
		if len(b.resize) >= 128 { // refinement windows come in many sizes
			clear(b.resize)
		}
		b.resize[side] = rz
	}
	if cap(b.planar) < 3*side*side {
		b.planar = make([]float32, 3*side*side)
	}
	pl := b.planar[:3*side*side]
	cropPlanar(pl, img, r)
	if err := rz.Resize(b.netPl, pl); err != nil {
		return err
	}
	cutNHWC(dst, b.netPl, b.size, b.size, image.Rect(0, 0, b.size, b.size))
	return nil
}

// decode turns one window's raw outputs into candidate faces in frame
// coordinates (MediaPipe's TensorsToDetections with fixed-size anchors).
func (b *BlazeFace) decode(scores, boxes []float32, w window, img *Image) {
	sideX, sideY := w.frame.W(), w.frame.H()
	ox, oy := w.frame.X0, w.frame.Y0
	inv := 1 / b.scale
	for a, logit := range scores {
		if logit < b.minLog {
			continue
		}
		r := boxes[a*16 : a*16+16]
		an := b.anchors[a]
		cx, cy := float64(an.x+r[0]*inv), float64(an.y+r[1]*inv)
		if w.mirror {
			cx = 1 - cx
		}
		bw, bh := float64(r[2]*inv), float64(r[3]*inv)
		// a face centred in the replicated border is an echo of one inside
		fx, fy := ox+cx*sideX, oy+cy*sideY
		if fx < 0 || fy < 0 || fx >= float64(img.Width) || fy >= float64(img.Height) {
			continue
		}
		// leave faces outside this level's size range to the other levels; a
		// window also cannot judge a face it does not contain whole
		px := bh * sideY
		if px < w.minFace || px > w.maxFace {
			continue
		}
		box := Rect{X0: fx - bw*sideX/2, Y0: fy - px/2, X1: fx + bw*sideX/2, Y1: fy + px/2}
		if cut(box, w.frame, img) {
			continue
		}
		f := Detection{
			Box:          box,
			Score:        1 / (1 + math.Exp(-float64(clamp32(logit, -100, 100)))),
			HasLandmarks: true,
			Detector:     "blazeface",
		}
		for k := 0; k < NumLandmarks; k++ {
			x := float64(an.x + r[4+2*k]*inv)
			to := k
			if w.mirror {
				// in the mirror the subject's right eye is its left one
				x, to = 1-x, mirrorLandmark[k]
			}
			f.Landmarks[to] = Point{X: ox + x*sideX, Y: oy + float64(an.y+r[5+2*k]*inv)*sideY}
		}
		b.cands = append(b.cands, f)
	}
}

// mirrorLandmark maps a keypoint index to its mirror image's.
var mirrorLandmark = [NumLandmarks]int{LeftEye, RightEye, NoseTip, Mouth, LeftEar, RightEar}

// cut reports a face box that reaches more than a quarter of its size past
// an inner edge of its window: the neighbouring window, which overlaps by more
// than a face, sees it whole and judges it better.
func cut(box Rect, r Rect, img *Image) bool {
	m := 0.25 * box.H()
	return (box.X0 < r.X0-m && r.X0 > 0) ||
		(box.Y0 < r.Y0-m && r.Y0 > 0) ||
		(box.X1 > r.X1+m && r.X1 < float64(img.Width)) ||
		(box.Y1 > r.Y1+m && r.Y1 < float64(img.Height))
}

func clamp32(v, lo, hi float32) float32 {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

// cropPlanar copies the square r of img into dst as planar RGB in [0, 1],
// replicating the edge pixels where r reaches past the frame.
func cropPlanar(dst []float32, img *Image, r image.Rectangle) {
	w, h := r.Dx(), r.Dy()
	n := w * h
	for y := 0; y < h; y++ {
		sy := min(max(r.Min.Y+y, 0), img.Height-1)
		row := img.Pix[sy*3*img.Width:]
		for x := 0; x < w; x++ {
			sx := min(max(r.Min.X+x, 0), img.Width-1)
			i := y*w + x
			p := row[3*sx:]
			dst[i] = float32(p[2]) / 255
			dst[n+i] = float32(p[1]) / 255
			dst[2*n+i] = float32(p[0]) / 255
		}
	}
}

// weightedNMS merges overlapping detections the way MediaPipe's
// NonMaxSuppressionCalculator does with overlap_type WEIGHTED: the strongest
// remaining detection collects every other one whose IoU with it exceeds iou;
// box and landmarks become the score-weighted mean and the score the maximum.
// The result is sorted by score, highest first.
func weightedNMS(c []Detection, iou float64) []Detection {
	sort.SliceStable(c, func(i, j int) bool { return c[i].Score > c[j].Score })
	used := make([]bool, len(c))
	var out []Detection
	for i := range c {
		if used[i] {
			continue
		}
		used[i] = true
		top := c[i]
		var acc Detection
		var sw float64
		add := func(f Detection) {
			s := f.Score
			acc.Box = Rect{X0: acc.Box.X0 + s*f.Box.X0, Y0: acc.Box.Y0 + s*f.Box.Y0, X1: acc.Box.X1 + s*f.Box.X1, Y1: acc.Box.Y1 + s*f.Box.Y1}
			for k := range acc.Landmarks {
				acc.Landmarks[k].X += s * f.Landmarks[k].X
				acc.Landmarks[k].Y += s * f.Landmarks[k].Y
			}
			sw += s
		}
		add(top)
		for j := i + 1; j < len(c); j++ {
			if !used[j] && IoU(top.Box, c[j].Box) > iou {
				used[j] = true
				add(c[j])
			}
		}
		if sw > 0 {
			m := top
			m.Box = Rect{X0: acc.Box.X0 / sw, Y0: acc.Box.Y0 / sw, X1: acc.Box.X1 / sw, Y1: acc.Box.Y1 / sw}
			if top.HasLandmarks {
				for k := range acc.Landmarks {
					m.Landmarks[k] = Point{X: acc.Landmarks[k].X / sw, Y: acc.Landmarks[k].Y / sw}
				}
			}
			out = append(out, m)
		}
	}
	return out
}

var _ Detector = (*BlazeFace)(nil)
