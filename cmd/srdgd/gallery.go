package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/srdgd/srdgd/config"
	"github.com/srdgd/srdgd/internal/app"
	"github.com/srdgd/srdgd/internal/cliflag"
	"github.com/srdgd/srdgd/internal/faceimg"
	"github.com/srdgd/srdgd/match"
	"github.com/srdgd/srdgd/srdg"
)

// gallerySub is one gallery subcommand: its synopsis and help (in the
// command's usage), how many arguments it takes (max -1: any number),
// whether it prints --json and whether it loads the photo detector and the
// embedder.
type gallerySub struct {
	synopsis, help string
	min, max       int
	json, models   bool
}

// gallerySubs are the subcommands in the order the usage lists them. list
// loads the embedder too, to count the photos search can use (a box
// without the models can still list).
var gallerySubs = []gallerySub{
	{"keygen", "create the gallery key file (match.key_file); an existing key is never overwritten", 0, 0, false, false},
	{"add PHOTO|DIR... --name NAME", "enrol photos (exactly one face each)", 1, -1, false, true},
	{"list [--json]", "enrolled people (photos, searchable photos, watchlist)", 0, 0, true, true},
	{"remove NAME", "delete a person and their photos", 1, 1, false, false},
	{"export DIR|FILE.tar [--json]", "plain JPEGs + manifest (unencrypted biometric data!)", 1, 1, true, false},
	{"import DIR|FILE.tar [--json]", "enrol an export (descriptors are recomputed)", 1, 1, true, true},
	{"search PHOTO [--scale 8|16] [-k N] [--sampler NAME] [--json] [--embeddings] [--save-sr PREFIX]",
		"who is this; --scale first degrades the photo to an LR probe (16x16 for 8, 8x8 for 16) and super-resolves it (the whole chain); exit 1 when nobody is identified", 1, 1, true, true},
	{"verify NAME PHOTO [--json]", "is this NAME; exit 1 when not", 2, 2, true, true},
	{"watchlist NAME on|off", "mark or unmark a person as watchlisted", 2, 2, false, false},
	{"threshold NAME --offset X [--margin-offset Y] | threshold NAME off",
		"a person's threshold override: X (and Y) added to the bar a decision naming them is held to, in [-0.3, 0.3], positive stricter; off clears it", 1, 2, false, false},
	{"feedback HIT_ID confirm NAME|reject [NAME]|not_enrolled",
		"an operator's verdict on a hit in the history: confirm NAME (a template of NAME), reject [NAME] (a negative), not_enrolled", 2, 3, false, true},
	{"check [--json]", "integrity check (SQLite, decryption, descriptors); exit 1 when a problem is found", 0, 0, true, false},
	{"reembed", "recompute the descriptors of photos that have none of the configured embedders' model (after match.embedder_model or match.sr_embedder_model changed); it takes no argument", 0, 0, false, true},
}

// name is the subcommand's name (the synopsis' first word).
func (s gallerySub) name() string { return strings.Fields(s.synopsis)[0] }

// usage is the subcommand's usage line.
func (s gallerySub) usage() string { return "srdgd gallery " + s.synopsis }

// findGallerySub looks a subcommand up by name.
func findGallerySub(name string) (gallerySub, bool) {
	for _, s := range gallerySubs {
		if s.name() == name {
			return s, true
		}
	}
	return gallerySub{}, false
}

// galleryUsage is `srdgd gallery`'s usage, made from gallerySubs.
func galleryUsage() string {
	var b strings.Builder
	b.WriteString("usage: srdgd gallery [--config FILE] COMMAND ...\n\n")
	for _, s := range gallerySubs {
		fmt.Fprintf(&b, "  %s\n      %s\n", s.synopsis, s.help)
	}
	b.WriteString("\nFlags may come before or after the arguments; --config may also follow COMMAND.\n")
	return b.String()
}

func cmdGallery(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfgPath, rest, err := cliflag.TakeValue(args, "config")
	if err != nil {
		fmt.Fprintf(stderr, "srdgd gallery: %v\n\n%s", err, galleryUsage())
		return exitUsage
	}
	if len(rest) == 0 || rest[0] == "-h" || rest[0] == "--help" || rest[0] == "help" {
		fmt.Fprint(stderr, galleryUsage())
		if len(rest) == 0 {
			return exitUsage
		}
		return exitOK
	}
	sub, sargs := rest[0], rest[1:]
	spec, ok := findGallerySub(sub)
	if !ok {
		var names []string
		for _, s := range gallerySubs {
			names = append(names, s.name())
		}
		slices.Sort(names)
		fmt.Fprintf(stderr, "srdgd gallery: unknown command %q (allowed: %s)\n\n%s", sub, strings.Join(names, ", "), galleryUsage())
		return exitUsage
	}
	cfg, err := config.LoadOrDefault(cfgPath)
	if err != nil {
		printConfigError(stderr, err)
		return exitConfig
	}
	// each subcommand's flags and arguments are checked before the gallery opens
	c, code := parseGalleryArgs(sub, sargs, cfg, stderr)
	if c == nil {
		return code
	} else if sub == "keygen" {
		return galleryKeygen(cfg, stdout, stderr)
	}
	withModels := spec.models
	env, err := app.OpenGallery(ctx, cfg, withModels, nil, nil)
	c.searchable = withModels && err == nil
	if modelErr := err; err != nil && sub == "list" {
		if env, err = app.OpenGallery(ctx, cfg, false, nil, nil); err == nil {
			fmt.Fprintln(stderr, "srdgd gallery: warning: the embedder does not load, so searchable photos are not counted:", modelErr)
		}
	}
	if err != nil {
		return galleryFail(stderr, err)
	}
	defer env.Close()
	env.AuditWarn = func(err error) { fmt.Fprintln(stderr, "srdgd gallery: warning: not written to the audit log:", err) }
	return runGallery(ctx, sub, env, c, stdout, stderr)
}

// runGallery runs one parsed subcommand on the opened gallery.
func runGallery(ctx context.Context, sub string, env *app.Gallery, c *galleryArgs, stdout, stderr io.Writer) int {
	switch sub {
	case "add":
		return galleryAdd(ctx, env, c, stdout, stderr)
	case "list":
		return galleryList(ctx, env.Gallery, c.json, c.searchable, stdout, stderr)
	case "remove":
		if err := env.Remove(ctx, c.pos[0]); err != nil {
			return galleryFail(stderr, err)
		}
		fmt.Fprintf(stdout, "removed %s\n", c.pos[0])
		return exitOK
	case "export", "import":
		return galleryTransfer(ctx, env, sub, c.pos[0], c.json, stdout, stderr)
	case "check":
		return galleryCheck(ctx, env.Gallery, c.json, stdout, stderr)
	case "verify":
		return galleryVerify(ctx, env.Gallery, c, stdout, stderr)
	case "reembed":
		return galleryReembed(ctx, env, stdout, stderr)
	case "watchlist":
		return galleryWatchlist(ctx, env, c.pos, stdout, stderr)
	case "feedback":
		return galleryFeedback(ctx, env, c.pos, stdout, stderr)
	case "threshold":
		return galleryThreshold(ctx, env, c, stdout, stderr)
	}
	return gallerySearch(ctx, env, c, stdout, stderr)
}

// galleryArgs are a gallery subcommand's parsed flags and arguments.
type galleryArgs struct {
	pos        []string
	name       string
	json       bool
	embeddings bool
	scale      int
	k          int
	sampler    string
	save       string
	// offset, marginOffset: threshold's flags; offsetGiven: either was given
	offset, marginOffset float64
	offsetGiven          bool
	// searchable: the embedder loaded, so list can count searchable photos
	searchable bool
}

// parseGalleryArgs parses the flags (anywhere among the arguments) and
// checks the number of arguments of sub; nil and the exit code on error.
func parseGalleryArgs(sub string, args []string, cfg *config.Config, stderr io.Writer) (*galleryArgs, int) {
	c := &galleryArgs{}
	spec, _ := findGallerySub(sub)
	fs := cliflag.NewFlagSet("gallery "+sub, stderr)
	fs.Usage = func() { fmt.Fprintf(stderr, "usage: %s\n  %s\n", spec.usage(), spec.help); fs.PrintDefaults() }
	switch sub {
	case "add":
		fs.StringVar(&c.name, "name", "", "the person's name (required)")
	case "threshold":
		fs.Float64Var(&c.offset, "offset", 0, "added to the identification threshold, in [-0.3, 0.3]")
		fs.Float64Var(&c.marginOffset, "margin-offset", 0, "added to the margin, in [-0.3, 0.3]")
	case "search":
		sc := &cliflag.Scale{Allowed: scales}
		fs.Var(sc, "scale", "degrade the photo to an LR probe for this upscaling factor (8: 16x16, 16: 8x8) and super-resolve it first")
		cliflag.Deprecated(fs, stderr, "lr", "--scale", sc.Set)
		fs.IntVar(&c.k, "k", cfg.Match.TopK, "candidates listed, 1 to 100")
		sampler := cliflag.NewEnum(fs, "sampler", cfg.SRDG.Sampler, "sampler for --scale", srdg.SamplerNames()...)
		fs.BoolVar(&c.embeddings, "embeddings", false, "with --json: include the probe's descriptor values (biometric data)")
		fs.StringVar(&c.save, "save-sr", "", "with --scale: write the LR probe and the SR face as PREFIX_lr.png and PREFIX_sr.png")
		defer func() { c.scale, c.sampler = sc.V, sampler.V }()
	}
	if spec.json {
		fs.BoolVar(&c.json, "json", false, "print JSON")
	}
	pos, err := cliflag.Parse(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, exitOK
		}
		return nil, exitUsage
	}
	c.pos = pos
	fs.Visit(func(f *flag.Flag) { c.offsetGiven = c.offsetGiven || strings.HasSuffix(f.Name, "offset") })
	switch {
	case sub == "add" && c.name == "":
		fmt.Fprintf(stderr, "srdgd gallery add: --name is required\nusage: %s\n", spec.usage())
		return nil, exitUsage
	case len(pos) < spec.min || (spec.max >= 0 && len(pos) > spec.max):
		what := "missing argument"
		if len(pos) > spec.min {
			what = fmt.Sprintf("unexpected argument %q", pos[len(pos)-1])
		}
		fmt.Fprintf(stderr, "srdgd gallery %s: %s\nusage: %s\n", sub, what, spec.usage())
		return nil, exitUsage
	case sub == "search" && (c.k < 1 || c.k > 100):
		fmt.Fprintf(stderr, "srdgd gallery search: -k %d is out of range (allowed: 1 to 100)\n", c.k)
		return nil, exitUsage
	}
	return c, exitOK
}

func galleryList(ctx context.Context, g *match.Gallery, asJSON, searchable bool, stdout, stderr io.Writer) int {
	people, err := g.List(ctx)
	if err != nil {
		return galleryFail(stderr, err)
	}
	return answer(stdout, app.NewPeopleDoc(people, searchable), asJSON, exitOK)
}

func galleryFail(stderr io.Writer, err error) int {
	fmt.Fprintln(stderr, "srdgd gallery:", err)
	return exitFailure
}

// galleryKeygen writes the key file (its arguments were checked: --help
// or a stray argument must not create a key).
func galleryKeygen(cfg *config.Config, stdout, stderr io.Writer) int {
	if err := match.GenerateKey(cfg.Match.KeyFile); err != nil {
		return galleryFail(stderr, err)
	}
	fmt.Fprintf(stdout, "wrote a new gallery key to %s (keep it secret and backed up: without it the gallery cannot be read)\n", cfg.Match.KeyFile)
	return exitOK
}

func galleryAdd(ctx context.Context, env *app.Gallery, c *galleryArgs, stdout, stderr io.Writer) int {
	photos, err := match.PhotosFromFiles(c.pos)
	if err != nil {
		return galleryFail(stderr, err)
	}
	res, ok, err := env.Enrol(ctx, c.name, photos)
	if err != nil {
		return galleryFail(stderr, err)
	}
	for i, r := range res {
		status := "enrolled"
		if r.Err != nil {
			status = "rejected: " + r.Err.Error()
		}
		fmt.Fprintf(stdout, "[%d/%d] %s: %s\n", i+1, len(res), r.Source, status)
	}
	fmt.Fprintf(stdout, "%s: %d of %d photos enrolled\n", c.name, ok, len(res))
	if ok == 0 {
		return exitFailure
	}
	return exitOK
}

// galleryCheck is the integrity check; exit 1 when it finds a problem.
func galleryCheck(ctx context.Context, g *match.Gallery, asJSON bool, stdout, stderr io.Writer) int {
	rep, err := g.Check(ctx)
	if err != nil {
		return galleryFail(stderr, err)
	}
	code := exitOK
	if !rep.OK() {
		code = exitFailure
	}
	return answer(stdout, app.NewCheckDoc(rep), asJSON, code)
}

func galleryVerify(ctx context.Context, g *match.Gallery, c *galleryArgs, stdout, stderr io.Writer) int {
	img, err := faceimg.Load(c.pos[1])
	if err != nil {
		return galleryFail(stderr, err)
	}
	r, err := g.Verify(ctx, c.pos[0], img)
	if err != nil {
		return galleryFail(stderr, err)
	}
	code := exitOK
	if !r.Match {
		code = exitFailure // the answer is no (README "Exit codes")
	}
	return answer(stdout, app.NewVerifyDoc(r), c.json, code)
}

func galleryTransfer(ctx context.Context, env *app.Gallery, sub, target string, asJSON bool, stdout, stderr io.Writer) int {
	var (
		exp *match.ExportReport
		imp *match.ImportReport
		err error
	)
	if sub == "export" {
		exp, err = env.Export(ctx, target)
	} else {
		imp, err = env.Import(ctx, target)
	}
	if err != nil {
		return galleryFail(stderr, err)
	}
	if exp != nil {
		fmt.Fprintln(stderr, "warning:", match.ExportWarning)
		if asJSON {
			return writeJSON(stdout, exp)
		}
		fmt.Fprintf(stdout, "exported %d people, %d photos to %s\n", exp.People, exp.Images, target)
		return exitOK
	}
	return answer(stdout, app.NewImportDoc(imp, target), asJSON, exitOK)
}

// galleryReembed gives every photo without a descriptor of the configured
// embedder's model one, from the kept photo (match.Gallery.Reembed), and
// prints the counts; a photo that fails is named and makes the exit status 1.
func galleryReembed(ctx context.Context, env *app.Gallery, stdout, stderr io.Writer) int {
	s, err := env.Reembed(ctx)
	if err != nil {
		return galleryFail(stderr, err)
	}
	for _, e := range s.Failed {
		fmt.Fprintln(stderr, "srdgd gallery: reembed:", e)
	}
	fmt.Fprintf(stdout, "model %s: %s\n%d people, %d of %d photos searchable\n", s.Model, s.Detail, s.People, s.Searchable, s.Photos)
	if len(s.Failed) > 0 {
		return exitFailure
	}
	return exitOK
}

func gallerySearch(ctx context.Context, env *app.Gallery, c *galleryArgs, stdout, stderr io.Writer) int {
	photo := c.pos[0]
	img, err := faceimg.Load(photo)
	if err != nil {
		return galleryFail(stderr, err)
	}
	var r *match.SearchResult
	note := ""
	if c.scale == 0 {
		if r, err = env.Gallery.Search(ctx, img, c.k); err != nil {
			return galleryFail(stderr, err)
		}
	} else {
		sr, n, err := app.SuperResolvePhoto(ctx, env, img, c.scale, c.sampler, c.save)
		if err != nil {
			fmt.Fprintf(stderr, "srdgd gallery: %s: %v\n", photo, err)
			return exitFailure
		}
		note = n
		th, err := app.MatchThresholds(env.Cfg, c.scale, match.ReaderModel(env.Embedder, c.scale))
		if err != nil {
			return galleryFail(stderr, err)
		}
		if r, err = env.Gallery.SearchFaceAt(ctx, match.EmbedInput{Planar: sr, Scale: c.scale}, c.k, th); err != nil {
			return galleryFail(stderr, err)
		}
	}
	code := exitOK
	if r.Match == nil {
		code = exitFailure // nobody identified (README "Exit codes")
	}
	return answer(stdout, app.NewSearchDoc(r, c.scale, note, c.embeddings), c.json, code)
}

// answer prints doc (an internal/app document) as JSON or as text and
// returns code (the answer's exit status), or exitFailure when the JSON
// cannot be written.
func answer(w io.Writer, doc interface{ WriteText(io.Writer) }, asJSON bool, code int) int {
	if !asJSON {
		doc.WriteText(w)
	} else if writeJSON(w, doc) != exitOK {
		return exitFailure
	}
	return code
}

func writeJSON(w io.Writer, v any) int {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return exitFailure
	}
	return exitOK
}
