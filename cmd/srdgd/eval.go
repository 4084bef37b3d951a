package main

import (
	"context"
	"flag"
	"fmt"
	"github.com/srdgd/srdgd/internal/faceimg"
	"image"
	"image/draw"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/srdgd/srdgd/internal/ort"
	"github.com/srdgd/srdgd/match"
	"github.com/srdgd/srdgd/srdg"
)

// cmdEval is the evaluation harness: LR probes made from HR faces at 8x or
// 16x (SRDG.md section 2), restored by bicubic upsampling and by SRDG
// (unguided and guided, per sampler), scored for image quality against the
// HR face and for recognition against a gallery.
func cmdEval(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("eval", stderr)
	setPath := fs.String("set", "", "dataset description (JSON: gallery and probes, see README \"Evaluation\")")
	celeba := fs.String("celeba", "", "CelebA aligned folder (labels.csv): gallery = one train image per identity, probes = test images")
	limit := fs.Int("limit", 0, "at most this many probes (0 = all; with --celeba the default is 20)")
	split := fs.String("split", "test", "with --celeba: the probes' split, test or val (val: choose thresholds without the test images)")
	cfgPath := fs.String("config", "", "config file whose match thresholds are reported as the \"configured\" operating point (default: $SRDGD_CONFIG, /etc/srdgd/srdgd.yaml, else the defaults)")
	scales := fs.String("scale", "8", "scales, comma-separated: 8 (16x16 probes), 16 (8x8)")
	samplers := fs.String("sampler", "fast", "SR samplers, comma-separated: "+strings.Join(srdg.SamplerNames(), ", ")+" (empty: LR only)")
	steps := fs.Int("steps", 0, "predictor steps (0 = sampler default)")
	seed := fs.Uint64("seed", 1, "noise seed (each probe's noise is derived from it and the probe's path)")
	guided := fs.Bool("guided", true, "also run guided SR with the probe's attributes as labels (slow)")
	unguided := fs.Bool("unguided", true, "run unguided SR")
	hrRef := fs.Bool("hr", true, "add the HR face itself as a reference row (the recognition upper bound)")
	out := fs.String("out", "eval-results", "results folder (results.json, results.md, roc.png, cmc.png, cache.jsonl)")
	dir := fs.String("models", "", "models folder (default: /usr/share/srdgd/models, else ./models/dist)")
	lib := fs.String("ort-library", "", "libonnxruntime path (default: search)")
	threads := fs.Int("threads", 0, "ORT intra-op threads (0 = default)")
	grid := fs.Int("grid", 0, "also write grid_x<scale>.png: the first N probes, one row each: LR | every method | HR")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 || (*setPath == "") == (*celeba == "") {
		fmt.Fprintln(stderr, "srdgd eval: exactly one of --set FILE and --celeba DIR is required")
		return exitUsage
	}
	var scaleList []int
	for _, s := range strings.Split(*scales, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || (n != 8 && n != 16) {
			fmt.Fprintf(stderr, "srdgd eval: --scale %q: want 8, 16 or 8,16\n", *scales)
			return exitUsage
		}
		scaleList = append(scaleList, n)
	}
	var samplerList []string
	for _, s := range strings.Split(*samplers, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if _, ok := srdg.LookupSampler(s); !ok {
			fmt.Fprintf(stderr, "srdgd eval: --sampler %q: want one of %s\n", s, strings.Join(srdg.SamplerNames(), ", "))
			return exitUsage
		}
		samplerList = append(samplerList, s)
	}
	limitSet := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "limit" {
			limitSet = true
		}
	})

	var set *match.EvalSet
	var err error
	if *celeba != "" {
		if !limitSet {
			*limit = 20
		}
		set, err = match.CelebAEvalSet(*celeba, *split, *limit)
	} else {
		set, err = match.LoadEvalSet(*setPath)
		if err == nil && *limit > 0 && len(set.Probes) > *limit {
			set.Probes = set.Probes[:*limit]
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "srdgd eval:", err)
		return exitFailure
	}

	cfg, err := loadConfigOrDefault(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, "srdgd eval:", err)
		return exitFailure
	}
	// Photos (the HR row) are judged with the photo thresholds, every restored
	// probe with the SR thresholds of its scale, as the daemon does.
	thresholds := func(scale int, method string) (match.Thresholds, bool) {
		if method == match.HRMethod {
			return matchThresholds(cfg, 0), true
		}
		return matchThresholds(cfg, scale), true
	}

	md := modelsDir(*dir)
	rt, err := ort.Open(*lib, nil)
	if err != nil {
		fmt.Fprintln(stderr, "srdgd eval:", err)
		return exitFailure
	}
	defer rt.Close()
	sess := ort.SessionOptions{Providers: []string{ort.TensorRT, ort.CUDA, ort.CPU}, IntraOpThreads: *threads}
	emb, err := match.NewEmbedder(match.EmbedderOptions{Runtime: rt, Session: sess,
		EmbedderPath:  filepath.Join(md, "face_embedder.onnx"),
		LandmarksPath: filepath.Join(md, "face_landmarks68.onnx")})
	if err != nil {
		fmt.Fprintln(stderr, "srdgd eval:", err)
		return exitFailure
	}
	defer emb.Close()

	var engines []*srdg.Engine
	defer func() {
		for _, e := range engines {
			e.Close()
		}
	}()
	suffix := ""
	if *steps != 0 {
		suffix += fmt.Sprintf("-n%d", *steps)
	}
	if *seed != 1 {
		suffix += fmt.Sprintf("-seed%d", *seed)
	}
	methods := func(scale int) ([]match.EvalMethod, error) {
		ms := []match.EvalMethod{match.LRBicubic()}
		if *hrRef {
			ms = append([]match.EvalMethod{match.HRReference(set)}, ms...)
		}
		if len(samplerList) == 0 || (!*guided && !*unguided) {
			return ms, nil
		}
		gp := ""
		if *guided {
			gp = filepath.Join(md, "guidance.onnx")
		}
		eng, err := srdg.Open(srdg.ModelOptions{Runtime: rt, Session: sess, WantScale: scale,
			ScorePath: filepath.Join(md, fmt.Sprintf("score_x%d.onnx", scale)), GuidancePath: gp})
		if err != nil {
			return nil, err
		}
		engines = append(engines, eng)
		attrs := eng.Attributes()
		sr := func(sampler string, guide bool) match.EvalMethod {
			kind := "unguided"
			if guide {
				kind = "guided"
			}
			return match.EvalMethod{Name: "sr-" + sampler + suffix + "-" + kind,
				Restore: func(ctx context.Context, lr []float32, _ int, p match.EvalImage) ([]float32, error) {
					var labels []int // nil: all abstain (unguided)
					if guide {
						labels = make([]int, len(attrs))
						for i, a := range attrs {
							labels[i] = -1
							if v, ok := p.Attributes[a]; ok {
								labels[i] = v
							}
						}
					}
					res, err := eng.SuperResolve(ctx, []srdg.Face{{LR: lr, Labels: labels}},
						srdg.Params{Sampler: sampler, Steps: *steps}, srdg.NewSeededNoise(match.ProbeSeed(*seed, p.Path)))
					if err != nil {
						return nil, err
					}
					return res[0].SR, nil
				}}
		}
		for _, s := range samplerList {
			if *unguided {
				ms = append(ms, sr(s, false))
			}
			if *guided {
				ms = append(ms, sr(s, true))
			}
		}
		return ms, nil
	}

	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(stderr, "srdgd eval:", err)
		return exitFailure
	}
	t0 := time.Now()
	rep, err := match.Evaluate(ctx, match.EvalOptions{Set: set, Scales: scaleList, Methods: methods,
		Embedder: emb, Cache: filepath.Join(*out, "cache.jsonl"), Progress: stderr, Thresholds: thresholds})
	if err != nil {
		fmt.Fprintln(stderr, "srdgd eval:", err)
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "srdgd eval: interrupted; rerun the same command to resume from", filepath.Join(*out, "cache.jsonl"))
		}
		return exitFailure
	}
	if err := match.WriteEvalOutputs(*out, rep); err != nil {
		fmt.Fprintln(stderr, "srdgd eval:", err)
		return exitFailure
	}
	if *grid > 0 {
		for _, sc := range scaleList {
			path := filepath.Join(*out, fmt.Sprintf("grid_x%d.png", sc))
			cols, err := writeEvalGrid(ctx, path, set, sc, *grid, methods)
			if err != nil {
				fmt.Fprintln(stderr, "srdgd eval: grid:", err)
				return exitFailure
			}
			fmt.Fprintf(stderr, "srdgd eval: wrote %s (columns: %s)\n", path, strings.Join(cols, " | "))
		}
	}
	fmt.Fprint(stdout, match.EvalMarkdown(rep))
	fmt.Fprintf(stdout, "\n%d results computed, %d from the cache, in %s; wrote %s\n",
		rep.Computed, rep.Cached, time.Since(t0).Round(time.Second), *out)
	return exitOK
}

// writeEvalGrid writes a PNG with one row per probe (the first n): the LR
// probe (nearest-neighbour upscaled), every method's output, the HR face.
func writeEvalGrid(ctx context.Context, path string, set *match.EvalSet, scale, n int,
	methods func(int) ([]match.EvalMethod, error)) ([]string, error) {
	ms, err := methods(scale)
	if err != nil {
		return nil, err
	}
	probes := set.Probes[:min(n, len(set.Probes))]
	const side, gap = match.EvalHR, 4
	cols := []string{"LR"}
	for _, m := range ms {
		if m.Name != "hr" {
			cols = append(cols, m.Name)
		}
	}
	cols = append(cols, "HR")
	img := image.NewRGBA(image.Rect(0, 0, len(cols)*(side+gap)-gap, len(probes)*(side+gap)-gap))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	put := func(row, col int, p *faceimg.Planar) {
		draw.Draw(img, image.Rect(col*(side+gap), row*(side+gap), col*(side+gap)+side, row*(side+gap)+side), p.Image(), image.Point{}, draw.Src)
	}
	for r, pr := range probes {
		hr, err := set.LoadFace(pr)
		if err != nil {
			return nil, err
		}
		lr, ln, err := match.MakeLR(hr, scale)
		if err != nil {
			return nil, err
		}
		up := faceimg.NewPlanar(side, side)
		for c := range 3 {
			for y := range side {
				for x := range side {
					up.Pix[c*side*side+y*side+x] = lr[c*ln*ln+(y*ln/side)*ln+x*ln/side]
				}
			}
		}
		put(r, 0, up)
		col := 1
		for _, m := range ms {
			if m.Name == "hr" {
				continue
			}
			out, err := m.Restore(ctx, lr, ln, pr)
			if err != nil {
				return nil, fmt.Errorf("%s on %s: %w", m.Name, pr.Path, err)
			}
			put(r, col, &faceimg.Planar{W: side, H: side, Pix: out})
			col++
		}
		put(r, col, hr)
	}
	return cols, faceimg.Save(path, img)
}
