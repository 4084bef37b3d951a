package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/srdgd/srdgd/config"
	"github.com/srdgd/srdgd/internal/app"
	"github.com/srdgd/srdgd/internal/faceimg"
	"github.com/srdgd/srdgd/match"
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
  watchlist NAME on|off           mark or unmark a person as watchlisted
  feedback HIT_ID VERDICT [NAME]  an operator's verdict on a hit in the history: confirm NAME
                                  (a template of NAME), reject [NAME] (a negative), not_enrolled
  check                           integrity check (SQLite, decryption, descriptors)
  reembed                         recompute the descriptors of photos that have none of the
                                  configured embedder's model (after match.embedder_model changed)
`

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
// (srScale 0) or for faces super-resolved at srScale (app.MatchThresholds).
func matchThresholds(cfg *config.Config, srScale int) match.Thresholds {
	return app.MatchThresholds(cfg, srScale)
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
	sub, sargs := rest[0], rest[1:]
	if sub == "keygen" {
		return galleryKeygen(cfg, sargs, stdout, stderr)
	}
	needModels := map[string]bool{"add": true, "import": true, "search": true, "verify": true, "reembed": true, "feedback": true}[sub]
	known := map[string]bool{"add": true, "list": true, "remove": true, "export": true, "import": true, "search": true, "verify": true, "check": true, "reembed": true,
		"watchlist": true, "feedback": true}
	if !known[sub] {
		fmt.Fprintf(stderr, "srdgd gallery: unknown command %q\n\n%s", sub, galleryUsage)
		return exitUsage
	}
	env, err := app.OpenGallery(ctx, cfg, needModels, nil, nil)
	if err != nil {
		return galleryFail(stderr, err)
	}
	defer env.Close()
	g := env.Gallery
	switch sub {
	case "add":
		return galleryAdd(ctx, env, sargs, stdout, stderr)
	case "list":
		return galleryList(ctx, g, sargs, stdout, stderr)
	case "remove":
		if len(sargs) != 1 {
			fmt.Fprintln(stderr, "usage: srdgd gallery remove NAME")
			return exitUsage
		}
		if err := g.Remove(ctx, sargs[0]); err != nil {
			return galleryFail(stderr, err)
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
			return galleryFail(stderr, err)
		}
		return writeJSON(stdout, rep)
	case "verify":
		return galleryVerify(ctx, g, sargs, stdout, stderr)
	case "watchlist":
		return galleryWatchlist(ctx, cfg, env, sargs, stdout, stderr)
	case "feedback":
		return galleryFeedback(ctx, cfg, env, sargs, stdout, stderr)
	case "reembed":
		if len(sargs) != 0 {
			fmt.Fprintln(stderr, "usage: srdgd gallery reembed (it takes no argument: the embedder is match.embedder_model)")
			return exitUsage
		}
		return galleryReembed(ctx, env, stdout, stderr)
	}
	return gallerySearch(ctx, env, sargs, stdout, stderr)
}

func galleryList(ctx context.Context, g *match.Gallery, args []string, stdout, stderr io.Writer) int {
	people, err := g.List(ctx)
	if err != nil {
		return galleryFail(stderr, err)
	}
	if len(args) > 0 && args[0] == "--json" {
		return writeJSON(stdout, people)
	}
	for _, p := range people {
		fmt.Fprintf(stdout, "%-24s photos %d  watchlist %v\n", p.Name, p.Images, p.Watchlist)
	}
	fmt.Fprintf(stdout, "%d people\n", len(people))
	return exitOK
}

func galleryFail(stderr io.Writer, err error) int {
	fmt.Fprintln(stderr, "srdgd gallery:", err)
	return exitFailure
}

// galleryKeygen writes the key file: --help or a stray argument must not
// create a key.
func galleryKeygen(cfg *config.Config, args []string, stdout, stderr io.Writer) int {
	kfs := newFlagSet("gallery keygen", stderr)
	kfs.Usage = func() {
		fmt.Fprint(stderr, "usage: srdgd gallery [--config FILE] keygen\n\ncreates the gallery key file named by match.key_file; an existing key is never overwritten\n")
	}
	if err := kfs.Parse(args); err != nil {
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
		return galleryFail(stderr, err)
	}
	if err := match.GenerateKey(cfg.Match.KeyFile); err != nil {
		return galleryFail(stderr, err)
	}
	fmt.Fprintf(stdout, "wrote a new gallery key to %s (keep it secret and backed up: without it the gallery cannot be read)\n", cfg.Match.KeyFile)
	return exitOK
}

func galleryAdd(ctx context.Context, env *app.Gallery, args []string, stdout, stderr io.Writer) int {
	afs := newFlagSet("gallery add", stderr)
	name := afs.String("name", "", "person's name")
	if err := afs.Parse(args); err != nil {
		return exitUsage
	}
	if *name == "" || afs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: srdgd gallery add --name NAME PHOTO|DIR...")
		return exitUsage
	}
	files, err := expandPhotos(afs.Args())
	if err != nil {
		return galleryFail(stderr, err)
	}
	photos, err := match.PhotosFromFiles(files)
	if err != nil {
		return galleryFail(stderr, err)
	}
	res, err := env.Gallery.Add(ctx, *name, photos)
	if err != nil {
		return galleryFail(stderr, err)
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
	auditCLI(ctx, env.Cfg, stderr, "gallery.add", *name, fmt.Sprintf("%d of %d photos enrolled", ok, len(res)))
	if ok == 0 {
		return exitFailure
	}
	return exitOK
}

func galleryVerify(ctx context.Context, g *match.Gallery, args []string, stdout, stderr io.Writer) int {
	if len(args) != 2 {
		fmt.Fprintln(stderr, "usage: srdgd gallery verify NAME PHOTO")
		return exitUsage
	}
	img, err := faceimg.Load(args[1])
	if err != nil {
		return galleryFail(stderr, err)
	}
	r, err := g.Verify(ctx, args[0], img)
	if err != nil {
		return galleryFail(stderr, err)
	}
	return writeJSON(stdout, r)
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
func galleryReembed(ctx context.Context, env *app.Gallery, stdout, stderr io.Writer) int {
	rep, err := env.Gallery.Reembed(ctx, env.Embedder)
	if err != nil {
		fmt.Fprintln(stderr, "srdgd gallery:", err)
		return exitFailure
	}
	for _, e := range rep.Failed {
		fmt.Fprintln(stderr, "srdgd gallery: reembed:", e)
	}
	people, err := env.Gallery.List(ctx)
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
		auditCLI(ctx, env.Cfg, stderr, "gallery.reembed", rep.Model, detail)
	}
	if len(rep.Failed) > 0 {
		return exitFailure
	}
	return exitOK
}

func gallerySearch(ctx context.Context, env *app.Gallery, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("gallery search", stderr)
	lr := fs.Int("lr", 0, "degrade to an LR probe of this factor (8 or 16) and super-resolve it first")
	k := fs.Int("k", env.Cfg.Match.TopK, "top-k candidates")
	sampler := fs.String("sampler", env.Cfg.SRDG.Sampler, "sampler for --lr")
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
		return galleryFail(stderr, err)
	}
	if *lr == 0 {
		r, err := env.Gallery.Search(ctx, img, *k)
		if err != nil {
			return galleryFail(stderr, err)
		}
		return printSearch(stdout, r, *asJSON)
	}
	sr, note, err := app.SuperResolvePhoto(ctx, env, img, *lr, *sampler, *save)
	if err != nil {
		fmt.Fprintf(stderr, "srdgd gallery: %s: %v\n", fs.Arg(0), err)
		return exitFailure
	}
	r, err := env.Gallery.SearchFaceAt(ctx, match.Face{Planar: sr}, *k, app.MatchThresholds(env.Cfg, *lr))
	if err != nil {
		return galleryFail(stderr, err)
	}
	if !*asJSON {
		fmt.Fprintln(stdout, note)
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
	if err := app.AuditCLI(ctx, cfg, action, target, detail); err != nil {
		fmt.Fprintln(stderr, "srdgd gallery: warning: not written to the audit log:", err)
	}
}
