package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"io"
	"log/slog"
	"math"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/srdgd/srdgd/publish/history"

	"github.com/srdgd/srdgd/config"
	"github.com/srdgd/srdgd/detect"
	"github.com/srdgd/srdgd/internal/faceimg"
	"github.com/srdgd/srdgd/internal/ort"
	"github.com/srdgd/srdgd/match"
	"github.com/srdgd/srdgd/srdg"
)

const galleryUsage = `usage: srdgd gallery [--config FILE] COMMAND ...

  keygen                          create the gallery key file (match.key_file)
  add --name NAME PHOTO|DIR...    enrol photos (exactly one face each)
  list [--json]                   enrolled people
  remove NAME                     delete a person and their photos
  export DIR|FILE.tar             plain JPEGs + manifest (unencrypted biometric data!)
  import DIR|FILE.tar             enrol an export (descriptors are recomputed)
  search PHOTO [--lr 8|16] [-k N] [--json]
                                  who is this; --lr first degrades the photo to an LR
                                  probe and super-resolves it (the whole chain)
  verify NAME PHOTO               is this NAME
  check                           integrity check (SQLite, decryption, descriptors)
  reembed                         recompute the descriptors of photos that have none of the
                                  configured embedder's model (after match.embedder_model changed)
`

// detectFinder adapts the BlazeFace detector to match.FaceFinder.
type detectFinder struct {
	mu sync.Mutex
	d  detect.Detector
}

func (f *detectFinder) Find(ctx context.Context, img image.Image) ([]image.Rectangle, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	res, err := f.d.Detect(ctx, detect.ImageFromGo(img))
	if err != nil {
		return nil, err
	}
	// Enrolment and search photos are portraits: faces much smaller than the
	// largest one (people in the background, false positives in hair or
	// texture) do not make a photo "several faces".
	var maxPx float64
	for _, fc := range res.Faces {
		maxPx = math.Max(maxPx, fc.Px())
	}
	var out []image.Rectangle
	for _, fc := range res.Faces {
		if fc.Px() < 0.5*maxPx {
			continue
		}
		b := img.Bounds()
		out = append(out, image.Rect(b.Min.X+int(math.Floor(fc.Box.X0)), b.Min.Y+int(math.Floor(fc.Box.Y0)),
			b.Min.X+int(math.Ceil(fc.Box.X1)), b.Min.Y+int(math.Ceil(fc.Box.Y1))))
	}
	return out, nil
}

// loadConfigOrDefault loads the given (or $SRDGD_CONFIG / default) config file;
// with no file at the default location it returns the defaults.
func loadConfigOrDefault(path string) (*config.Config, error) {
	explicit := path != "" || os.Getenv("SRDGD_CONFIG") != ""
	if path == "" {
		path = defaultConfigPath()
	}
	if _, err := os.Stat(path); err != nil && !explicit {
		return config.Default(), nil
	}
	return config.Load(path)
}

// matchThresholds are the configured identification settings for photos
// (srScale 0) or for faces super-resolved at srScale (match.sr.x<scale>).
func matchThresholds(cfg *config.Config, srScale int) match.Thresholds {
	th := match.Thresholds{Identify: cfg.Match.Threshold, Margin: cfg.Match.Margin, Verify: cfg.Match.VerifyThreshold}
	if srScale != 0 {
		th.Identify, th.Margin = cfg.Match.SRThresholds(srScale)
	}
	return th
}

func ptr[T any](v T) *T { return &v }

// modelPath returns the configured model file, or the same file name in the
// models folder found by modelsDir (installed, else ./models/dist).
func modelPath(cfg *config.Config, configured string) string {
	if _, err := os.Stat(configured); err == nil {
		return configured
	}
	return filepath.Join(modelsDir(cfg.Storage.ModelsDir), filepath.Base(configured))
}

type galleryEnv struct {
	cfg  *config.Config
	rt   *ort.Runtime
	det  detect.Detector
	emb  *match.Embedder
	gal  *match.Gallery
	keep []func()
}

func (e *galleryEnv) close() {
	for i := len(e.keep) - 1; i >= 0; i-- {
		e.keep[i]()
	}
}

// openGallery opens the gallery; withModels also loads the detector and the
// embedder (needed to add, import, search and verify).
func openGallery(ctx context.Context, cfg *config.Config, withModels bool) (*galleryEnv, error) {
	return openGalleryWith(ctx, cfg, withModels, nil, nil)
}

// openGalleryWith is openGallery on an ONNX Runtime the caller already has
// (nil: its own) and with a logger (nil: silent).
func openGalleryWith(ctx context.Context, cfg *config.Config, withModels bool, rt *ort.Runtime, log *slog.Logger) (*galleryEnv, error) {
	e := &galleryEnv{cfg: cfg}
	paths := cfg.Paths()
	o := match.Options{Path: paths.Gallery, KeyFile: cfg.Match.KeyFile, Plaintext: !cfg.Match.Encrypt,
		Thresholds: ptr(matchThresholds(cfg, 0))}
	o.Log = log
	if withModels {
		if rt == nil {
			var err error
			if rt, err = ort.Open(cfg.SRDG.ORTLibrary, nil); err != nil {
				return nil, err
			}
			e.keep = append(e.keep, func() { rt.Close() })
		}
		e.rt = rt
		bf := modelPath(cfg, paths.BlazefaceModel)
		if err := requireFile("detect.blazeface_model", bf); err != nil {
			e.close()
			return nil, err
		}
		// One thread: enrolment is rare and must not take cores from the
		// cameras. Photos come reduced to match.PhotoSide: a portrait's face
		// may fill one, and faces under 24 px make no useful gallery
		// descriptor (the embedder's input is 150 px) while they cost most
		// of the windows.
		det, err := detect.NewBlazeFace(rt, detect.BlazeFaceOptions{Model: bf, Threads: 1,
			Search: detect.Search{MinFacePx: 24, MaxFacePx: match.PhotoSide}})
		if err != nil {
			e.close()
			return nil, err
		}
		e.det = det
		e.keep = append(e.keep, func() { det.Close() })
		embPath := modelPath(cfg, paths.EmbedderModel)
		if err := requireFile("match.embedder_model", embPath); err != nil {
			e.close()
			return nil, err
		}
		emb, err := match.NewEmbedder(match.EmbedderOptions{Runtime: rt, EmbedderPath: embPath,
			LandmarksPath: filepath.Join(filepath.Dir(embPath), "face_landmarks68.onnx"), Log: log})
		if err != nil {
			e.close()
			return nil, err
		}
		e.emb = emb
		e.keep = append(e.keep, func() { emb.Close() })
		o.Embedder, o.Finder = emb, &detectFinder{d: det}
	}
	if err := os.MkdirAll(filepath.Dir(paths.Gallery), 0o750); err != nil {
		e.close()
		return nil, err
	}
	g, err := match.Open(ctx, o)
	if err != nil {
		e.close()
		if errors.Is(err, os.ErrNotExist) && o.KeyFile != "" {
			return nil, fmt.Errorf("%w (create the key with: srdgd gallery keygen)", err)
		}
		return nil, err
	}
	e.gal = g
	e.keep = append(e.keep, func() { g.Close() })
	return e, nil
}

func cmdGallery(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("gallery", stderr)
	cfgPath := fs.String("config", "", "config file (default $SRDGD_CONFIG, else /etc/srdgd/srdgd.yaml if present, else defaults)")
	fs.Usage = func() { fmt.Fprint(stderr, galleryUsage) }
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fmt.Fprint(stderr, galleryUsage)
		return exitUsage
	}
	cfg, err := loadConfigOrDefault(*cfgPath)
	if err != nil {
		printConfigError(stderr, err)
		return exitConfig
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "srdgd gallery:", err)
		return exitFailure
	}
	sub, sargs := rest[0], rest[1:]
	if sub == "keygen" {
		// keygen writes a file: --help or a stray argument must not create a key
		kfs := newFlagSet("gallery keygen", stderr)
		kfs.Usage = func() {
			fmt.Fprint(stderr, "usage: srdgd gallery [--config FILE] keygen\n\ncreates the gallery key file named by match.key_file; an existing key is never overwritten\n")
		}
		if err := kfs.Parse(sargs); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return exitOK
			}
			return exitUsage
		}
		if kfs.NArg() > 0 {
			fmt.Fprintf(stderr, "srdgd gallery keygen: unexpected argument %q (keygen takes none; the key file is match.key_file)\n", kfs.Arg(0))
			return exitUsage
		}
		if err := os.MkdirAll(filepath.Dir(cfg.Match.KeyFile), 0o750); err != nil {
			return fail(err)
		}
		if err := match.GenerateKey(cfg.Match.KeyFile); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "wrote a new gallery key to %s (keep it secret and backed up: without it the gallery cannot be read)\n", cfg.Match.KeyFile)
		return exitOK
	}
	needModels := map[string]bool{"add": true, "import": true, "search": true, "verify": true, "reembed": true}[sub]
	known := map[string]bool{"add": true, "list": true, "remove": true, "export": true, "import": true, "search": true, "verify": true, "check": true, "reembed": true}
	if !known[sub] {
		fmt.Fprintf(stderr, "srdgd gallery: unknown command %q\n\n%s", sub, galleryUsage)
		return exitUsage
	}
	env, err := openGallery(ctx, cfg, needModels)
	if err != nil {
		return fail(err)
	}
	defer env.close()
	g := env.gal
	switch sub {
	case "add":
		afs := newFlagSet("gallery add", stderr)
		name := afs.String("name", "", "person's name")
		if err := afs.Parse(sargs); err != nil {
			return exitUsage
		}
		if *name == "" || afs.NArg() == 0 {
			fmt.Fprintln(stderr, "usage: srdgd gallery add --name NAME PHOTO|DIR...")
			return exitUsage
		}
		files, err := expandPhotos(afs.Args())
		if err != nil {
			return fail(err)
		}
		photos, err := match.PhotosFromFiles(files)
		if err != nil {
			return fail(err)
		}
		res, err := g.Add(ctx, *name, photos)
		if err != nil {
			return fail(err)
		}
		ok := 0
		for i, r := range res {
			status := "enrolled"
			if r.Err != nil {
				status = "rejected: " + r.Err.Error()
			} else {
				ok++
			}
			fmt.Fprintf(stdout, "[%d/%d] %s: %s\n", i+1, len(res), r.Source, status)
		}
		fmt.Fprintf(stdout, "%s: %d of %d photos enrolled\n", *name, ok, len(res))
		auditCLI(ctx, cfg, stderr, "gallery.add", *name, fmt.Sprintf("%d of %d photos enrolled", ok, len(res)))
		if ok == 0 {
			return exitFailure
		}
		return exitOK
	case "list":
		people, err := g.List(ctx)
		if err != nil {
			return fail(err)
		}
		if len(sargs) > 0 && sargs[0] == "--json" {
			return writeJSON(stdout, people)
		}
		for _, p := range people {
			fmt.Fprintf(stdout, "%-24s photos %d  watchlist %v\n", p.Name, p.Images, p.Watchlist)
		}
		fmt.Fprintf(stdout, "%d people\n", len(people))
		return exitOK
	case "remove":
		if len(sargs) != 1 {
			fmt.Fprintln(stderr, "usage: srdgd gallery remove NAME")
			return exitUsage
		}
		if err := g.Remove(ctx, sargs[0]); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "removed %s\n", sargs[0])
		auditCLI(ctx, cfg, stderr, "gallery.remove", sargs[0], "")
		return exitOK
	case "export", "import":
		if len(sargs) != 1 {
			fmt.Fprintf(stderr, "usage: srdgd gallery %s DIR|FILE.tar\n", sub)
			return exitUsage
		}
		code := galleryTransfer(ctx, g, sub, sargs[0], stdout, stderr)
		if code == exitOK {
			auditCLI(ctx, cfg, stderr, "gallery."+sub, sargs[0], "")
		}
		return code
	case "check":
		rep, err := g.Check(ctx)
		if err != nil {
			return fail(err)
		}
		return writeJSON(stdout, rep)
	case "verify":
		if len(sargs) != 2 {
			fmt.Fprintln(stderr, "usage: srdgd gallery verify NAME PHOTO")
			return exitUsage
		}
		img, err := faceimg.Load(sargs[1])
		if err != nil {
			return fail(err)
		}
		r, err := g.Verify(ctx, sargs[0], img)
		if err != nil {
			return fail(err)
		}
		return writeJSON(stdout, r)
	case "search":
		return gallerySearch(ctx, env, sargs, stdout, stderr)
	case "reembed":
		if len(sargs) != 0 {
			fmt.Fprintln(stderr, "usage: srdgd gallery reembed (it takes no argument: the embedder is match.embedder_model)")
			return exitUsage
		}
		return galleryReembed(ctx, env, stdout, stderr)
	}
	return exitUsage
}

func galleryTransfer(ctx context.Context, g *match.Gallery, sub, target string, stdout, stderr io.Writer) int {
	tarFile := strings.HasSuffix(target, ".tar")
	var rep any
	var err error
	switch {
	case sub == "export" && tarFile:
		f, ferr := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if ferr != nil {
			err = ferr
			break
		}
		rep, err = g.ExportTar(ctx, f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	case sub == "export":
		rep, err = g.ExportDir(ctx, target)
	case tarFile:
		f, ferr := os.Open(target)
		if ferr != nil {
			err = ferr
			break
		}
		rep, err = g.ImportTar(ctx, f)
		f.Close()
	default:
		rep, err = g.ImportDir(ctx, target)
	}
	if err != nil {
		fmt.Fprintln(stderr, "srdgd gallery:", err)
		return exitFailure
	}
	if sub == "export" {
		fmt.Fprintln(stderr, "warning:", match.ExportWarning)
	}
	return writeJSON(stdout, rep)
}

// galleryReembed gives every photo without a descriptor of the configured
// embedder's model one, from the kept photo (match.Gallery.Reembed), and
// prints the counts; a photo that fails is named and makes the exit status 1.
func galleryReembed(ctx context.Context, env *galleryEnv, stdout, stderr io.Writer) int {
	rep, err := env.gal.Reembed(ctx, env.emb)
	if err != nil {
		fmt.Fprintln(stderr, "srdgd gallery:", err)
		return exitFailure
	}
	for _, e := range rep.Failed {
		fmt.Fprintln(stderr, "srdgd gallery: reembed:", e)
	}
	people, err := env.gal.List(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "srdgd gallery:", err)
		return exitFailure
	}
	var photos, searchable int
	for _, p := range people {
		photos, searchable = photos+p.Images, searchable+p.Searchable
	}
	detail := fmt.Sprintf("%d photos needed a descriptor, %d re-embedded, %d failed", rep.Stale, rep.Reembedded, len(rep.Failed))
	fmt.Fprintf(stdout, "model %s: %s\n%d people, %d of %d photos searchable\n", rep.Model, detail, len(people), searchable, photos)
	if rep.Stale > 0 {
		auditCLI(ctx, env.cfg, stderr, "gallery.reembed", rep.Model, detail)
	}
	if len(rep.Failed) > 0 {
		return exitFailure
	}
	return exitOK
}

func gallerySearch(ctx context.Context, env *galleryEnv, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("gallery search", stderr)
	lr := fs.Int("lr", 0, "degrade to an LR probe of this factor (8 or 16) and super-resolve it first")
	k := fs.Int("k", env.cfg.Match.TopK, "top-k candidates")
	sampler := fs.String("sampler", env.cfg.SRDG.Sampler, "sampler for --lr")
	asJSON := fs.Bool("json", false, "JSON output")
	save := fs.String("save-sr", "", "with --lr: write the LR probe and SR face next to this path prefix")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 1 || (*lr != 0 && *lr != 8 && *lr != 16) {
		fmt.Fprintln(stderr, "usage: srdgd gallery search PHOTO [--lr 8|16] [-k N] [--json]")
		return exitUsage
	}
	img, err := faceimg.Load(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "srdgd gallery:", err)
		return exitFailure
	}
	if *lr == 0 {
		r, err := env.gal.Search(ctx, img, *k)
		if err != nil {
			fmt.Fprintln(stderr, "srdgd gallery:", err)
			return exitFailure
		}
		return printSearch(stdout, r, *asJSON)
	}
	// the whole chain: detect -> LR probe (SRDG.md section 2) -> SR -> search,
	// on the photo reduced as Search reduces it
	img = faceimg.Shrink(img, match.PhotoSide)
	paths := env.cfg.Paths()
	lrSize := 128 / *lr
	prober, err := detect.NewProber(detect.ProbeOptions{LRSize: lrSize})
	if err != nil {
		fmt.Fprintln(stderr, "srdgd gallery:", err)
		return exitFailure
	}
	dimg := detect.ImageFromGo(img)
	res, err := env.det.Detect(ctx, dimg)
	if err != nil || len(res.Faces) != 1 {
		fmt.Fprintf(stderr, "srdgd gallery: %s: need exactly one face, found %d (%v)\n", fs.Arg(0), len(res.Faces), err)
		return exitFailure
	}
	crop, err := prober.Cut(dimg, res.Faces[0], env.det.Calibration())
	if err != nil {
		fmt.Fprintln(stderr, "srdgd gallery:", err)
		return exitFailure
	}
	scorePath := modelPath(env.cfg, strings.Replace(paths.ScoreModel, "_x8", fmt.Sprintf("_x%d", *lr), 1))
	eng, err := srdg.Open(srdg.ModelOptions{Runtime: env.rt, ScorePath: scorePath, WantScale: *lr,
		GuidancePath: modelPath(env.cfg, paths.GuidanceModel)})
	if err != nil {
		fmt.Fprintln(stderr, "srdgd gallery:", err)
		return exitFailure
	}
	defer eng.Close()
	out, err := eng.SuperResolve(ctx, []srdg.Face{{LR: crop.LR.Pix}}, srdg.Params{Sampler: *sampler}, srdg.NewSeededNoise(1))
	if err != nil {
		fmt.Fprintln(stderr, "srdgd gallery:", err)
		return exitFailure
	}
	hr, _ := eng.Sizes()
	sr := &faceimg.Planar{W: hr, H: hr, Pix: out[0].SR}
	if *save != "" {
		_ = faceimg.Save(*save+"_lr.png", crop.LR.Image())
		_ = faceimg.Save(*save+"_sr.png", sr.Image())
	}
	r, err := env.gal.SearchFaceAt(ctx, match.Face{Planar: sr}, *k, matchThresholds(env.cfg, *lr))
	if err != nil {
		fmt.Fprintln(stderr, "srdgd gallery:", err)
		return exitFailure
	}
	if !*asJSON {
		fmt.Fprintf(stdout, "LR probe %dx%d -> SR %dx%d with sampler %s (%d evaluations)\n", lrSize, lrSize, hr, hr, out[0].Sampler, out[0].ScoreEvals+out[0].GuidanceEvals)
	}
	return printSearch(stdout, r, *asJSON)
}

func printSearch(w io.Writer, r *match.SearchResult, asJSON bool) int {
	if asJSON {
		return writeJSON(w, r)
	}
	if r.Match != nil {
		fmt.Fprintf(w, "match: %s (similarity %.4f)\n", r.Match.Name, r.Match.Similarity)
	} else {
		fmt.Fprintf(w, "unknown: %s\n", r.Detail)
	}
	for i, c := range r.Candidates {
		fmt.Fprintf(w, "%2d. %-24s %.4f\n", i+1, c.Name, c.Similarity)
	}
	return exitOK
}

func writeJSON(w io.Writer, v any) int {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return exitFailure
	}
	return exitOK
}

// expandPhotos replaces folders by the image files in them, sorted.
func expandPhotos(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, a)
			continue
		}
		ents, err := os.ReadDir(a)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			switch strings.ToLower(filepath.Ext(e.Name())) {
			case ".jpg", ".jpeg", ".png", ".gif":
				out = append(out, filepath.Join(a, e.Name()))
			}
		}
	}
	return out, nil
}

// auditCLI appends a gallery change made from the command line to the
// daemon's audit log (in the hit history). A failure is reported, not fatal:
// the change itself has already happened.
func auditCLI(ctx context.Context, cfg *config.Config, stderr io.Writer, action, target, detail string) {
	var key []byte
	if cfg.Match.Encrypt {
		k, err := match.LoadKey(cfg.Match.KeyFile)
		if err != nil {
			fmt.Fprintln(stderr, "srdgd gallery: warning: not written to the audit log:", err)
			return
		}
		key = k
	}
	h, err := history.Open(ctx, history.Options{Path: historyPath(cfg), Key: key})
	if err == nil {
		err = h.Audit(ctx, history.AuditEntry{Actor: "cli:" + cliUser(), Action: action, Target: target, Detail: detail})
		h.Close()
	}
	if err != nil {
		fmt.Fprintln(stderr, "srdgd gallery: warning: not written to the audit log:", err)
	}
}

func cliUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return strconv.Itoa(os.Getuid())
}
