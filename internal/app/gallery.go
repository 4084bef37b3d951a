package app

import (
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"

	"github.com/srdgd/srdgd/config"
	"github.com/srdgd/srdgd/detect"
	"github.com/srdgd/srdgd/internal/ort"
	"github.com/srdgd/srdgd/match"
)

// FaceFinder adapts a detector to match.FaceFinder (enrolment and search
// photos). Safe for concurrent use.
type FaceFinder struct {
	mu sync.Mutex
	d  detect.Detector
}

var _ match.FaceFinder = (*FaceFinder)(nil)

// NewFaceFinder adapts d; the caller closes d.
func NewFaceFinder(d detect.Detector) *FaceFinder { return &FaceFinder{d: d} }

// Find implements match.FaceFinder.
func (f *FaceFinder) Find(ctx context.Context, img image.Image) ([]image.Rectangle, error) {
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

// Gallery is an opened gallery with what it was opened with.
type Gallery struct {
	Cfg *config.Config
	// RT, Detector and Embedder are nil unless opened with models.
	RT       *ort.Runtime
	Detector detect.Detector
	// Embedder reads photos and super-resolved faces: a *match.Embedder,
	// or a *match.PairEmbedder when match.sr_embedder_model names another
	// model for SR faces.
	Embedder match.GalleryEmbedder
	Gallery  *match.Gallery
	// AuditWarn, when set, hears of a change that could not be written to
	// the audit log (galleryops.go).
	AuditWarn func(error)
	keep      []func()
}

// Close releases everything OpenGallery opened, last first.
func (g *Gallery) Close() {
	for i := len(g.keep) - 1; i >= 0; i-- {
		g.keep[i]()
	}
	g.keep = nil
}

// OpenGallery opens the gallery of match.*; withModels also loads the
// photo detector and the embedder (needed to add, import, search and
// verify), on rt (nil: its own runtime). log may be nil (silent).
func OpenGallery(ctx context.Context, cfg *config.Config, withModels bool, rt *ort.Runtime, log *slog.Logger) (*Gallery, error) {
	e := &Gallery{Cfg: cfg}
	fail := func(err error) (*Gallery, error) { e.Close(); return nil, err }
	o := GalleryOptions(cfg, log)
	if withModels {
		if rt == nil {
			var err error
			if rt, err = ort.Open(cfg.SRDG.ORTLibrary, nil); err != nil {
				return nil, err
			}
			e.keep = append(e.keep, func() { rt.Close() })
		}
		e.RT = rt
		det, err := PhotoDetector(cfg, rt)
		if err != nil {
			return fail(err)
		}
		e.Detector = det
		e.keep = append(e.keep, func() { det.Close() })
		embPath, err := EmbedderModel(cfg)
		if err != nil {
			return fail(err)
		}
		lmkPath, err := LandmarksModel(cfg, embPath)
		if err != nil {
			return fail(err)
		}
		emb, err := e.openEmbedder(rt, embPath, lmkPath, log)
		if err != nil {
			return fail(err)
		}
		e.Embedder = emb
		if err := e.useAdapters(rt, log); err != nil {
			return fail(err)
		}
		o.Embedder, o.Finder = emb, NewFaceFinder(det)
	}
	if err := os.MkdirAll(filepath.Dir(o.Path), 0o750); err != nil {
		return fail(err)
	}
	g, err := match.Open(ctx, o)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && o.KeyFile != "" {
			err = fmt.Errorf("%w (create the key with: srdgd gallery keygen)", err)
		}
		return fail(err)
	}
	e.Gallery = g
	e.keep = append(e.keep, func() { g.Close() })
	return e, nil
}

// openEmbedder loads match.embedder_model and, when match.sr_embedder_model
// names another model, that one too, paired (both with the one landmarks
// model).
func (g *Gallery) openEmbedder(rt *ort.Runtime, embPath, lmkPath string, log *slog.Logger) (match.GalleryEmbedder, error) {
	srPath, err := SREmbedderModel(g.Cfg)
	if err != nil {
		return nil, err
	}
	emb, err := match.NewEmbedder(match.EmbedderOptions{Runtime: rt, EmbedderPath: embPath, LandmarksPath: lmkPath, Log: log})
	if err != nil {
		return nil, fmt.Errorf("match.embedder_model: %w", err)
	}
	g.keep = append(g.keep, func() { emb.Close() })
	if srPath == "" {
		if g.Cfg.Match.SREmbedderModel == "" && log != nil {
			log.Info("super-resolved faces are read by match.embedder_model: no "+SREmbedderName+" in the models folder (make models builds it; it reads SR faces better, README \"Evaluation\")",
				"model", emb.ModelID())
		}
		return emb, nil
	}
	sr, err := match.NewEmbedder(match.EmbedderOptions{Runtime: rt, EmbedderPath: srPath, LandmarksPath: lmkPath, Log: log})
	if err != nil {
		return nil, fmt.Errorf("match.sr_embedder_model: %w", err)
	}
	g.keep = append(g.keep, func() { sr.Close() })
	pair, err := match.NewPairEmbedder(emb, sr)
	if err != nil {
		return nil, fmt.Errorf("match.sr_embedder_model: %w", err)
	}
	return pair, nil
}

// useAdapters loads the SR adapters of match.sr_adapters that are present
// and makes the embedder use them (closed with the gallery).
func (g *Gallery) useAdapters(rt *ort.Runtime, log *slog.Logger) error {
	if !g.Cfg.Match.SRAdapters {
		return nil
	}
	for _, sc := range []int{8, 16} {
		path, err := Models(g.Cfg).File("storage.models_dir", "", match.AdapterFile(sc))
		if err != nil {
			continue // optional: a scale without one is matched as it is
		}
		a, err := match.OpenAdapterFor(rt, path, sc, SessionOptions(g.Cfg), match.SRReader(g.Embedder))
		if err != nil {
			return fmt.Errorf("match.sr_adapters: %w", err)
		}
		g.keep = append(g.keep, func() { a.Close() })
		if err := g.Embedder.UseAdapter(a); err != nil {
			return fmt.Errorf("match.sr_adapters: %w", err)
		}
		if log != nil {
			log.Info("SR adapter loaded", "scale", sc, "adapter", a.ID())
		}
	}
	return nil
}
