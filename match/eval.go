package match

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"image"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/srdgd/srdgd/internal/faceimg"
	"github.com/srdgd/srdgd/internal/resample"
)

// EvalHR is the size of the HR face every method is scored at.
const EvalHR = 128

// CelebABox is the face box of a CelebA aligned image (178x218): columns
// 29..148, rows 56..175 (SRDG.md section 2, models/data/crop.py).
var CelebABox = image.Rect(29, 56, 149, 176)

// EvalSet describes an evaluation dataset (JSON): gallery images with their
// identity, probe images with their identity and optionally the attributes an
// operator would supply for guided SR (name -> 0 or 1, e.g. "male": 1).
// Every probe identity must be in the gallery (closed-set identification).
// Paths are relative to Root (default: the folder of the JSON file). Box is
// the face [x0, y0, x1, y1] (exclusive max); an image's own box overrides the
// set's, and no box means the whole (square) image is the face. The face is
// cropped from the 8-bit image and resized to 128x128 with bicubic
// (Keys, a = -0.5) and rounded to 8 bits, as models/data/crop.py does.
type EvalSet struct {
	Root    string      `json:"root,omitempty"`
	Box     []int       `json:"box,omitempty"`
	Gallery []EvalImage `json:"gallery"`
	Probes  []EvalImage `json:"probes"`
}

// EvalImage is one image of an EvalSet. Path identifies the image (and a
// probe's cached results): it must be unique within its list.
type EvalImage struct {
	Path       string         `json:"path"`
	Identity   string         `json:"identity"`
	Box        []int          `json:"box,omitempty"`
	Attributes map[string]int `json:"attributes,omitempty"`
}

// LoadEvalSet reads and checks a dataset description.
func LoadEvalSet(path string) (*EvalSet, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("eval set: %w", err)
	}
	var s EvalSet
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("eval set %s: %w", path, err)
	}
	if s.Root == "" {
		s.Root = filepath.Dir(path)
	} else if !filepath.IsAbs(s.Root) {
		s.Root = filepath.Join(filepath.Dir(path), s.Root)
	}
	if err := s.Check(); err != nil {
		return nil, fmt.Errorf("eval set %s: %w", path, err)
	}
	return &s, nil
}

// Check validates the set: non-empty lists, unique paths, identities given,
// boxes of four values, attributes 0 or 1, every probe identity in the
// gallery.
func (s *EvalSet) Check() error {
	if len(s.Gallery) == 0 || len(s.Probes) == 0 {
		return fmt.Errorf("%d gallery images and %d probes, want both non-empty", len(s.Gallery), len(s.Probes))
	}
	if s.Box != nil && len(s.Box) != 4 {
		return fmt.Errorf("box %v: want [x0, y0, x1, y1]", s.Box)
	}
	ids := map[string]bool{}
	for _, list := range []struct {
		name string
		imgs []EvalImage
	}{{"gallery", s.Gallery}, {"probes", s.Probes}} {
		seen := map[string]bool{}
		for i, im := range list.imgs {
			switch {
			case im.Path == "":
				return fmt.Errorf("%s[%d]: empty path", list.name, i)
			case seen[im.Path]:
				return fmt.Errorf("%s[%d]: path %q listed twice", list.name, i, im.Path)
			case im.Identity == "":
				return fmt.Errorf("%s[%d] %q: empty identity", list.name, i, im.Path)
			case im.Box != nil && len(im.Box) != 4:
				return fmt.Errorf("%s[%d] %q: box %v: want [x0, y0, x1, y1]", list.name, i, im.Path, im.Box)
			}
			for k, v := range im.Attributes {
				if v != 0 && v != 1 {
					return fmt.Errorf("%s[%d] %q: attribute %s=%d, want 0 or 1", list.name, i, im.Path, k, v)
				}
			}
			seen[im.Path] = true
			if list.name == "gallery" {
				ids[im.Identity] = true
			} else if !ids[im.Identity] {
				return fmt.Errorf("probes[%d] %q: identity %q has no gallery image", i, im.Path, im.Identity)
			}
		}
	}
	if len(ids) < 2 {
		return fmt.Errorf("%d gallery identities, want at least 2 (impostor pairs)", len(ids))
	}
	return nil
}

// CelebAEvalSet builds a set from the CelebA aligned subset at dir
// (labels.csv, img_align_celeba/): gallery = the first train image (by name)
// of each identity, probes = the images of split ("test", or "val" to select
// thresholds without looking at the test images; by name) whose identity is
// in the gallery, at most limit of them (0 = all), with the attributes male,
// glasses and no_beard from Male, Eyeglasses and No_Beard (-1/1 -> 0/1).
func CelebAEvalSet(dir, split string, limit int) (*EvalSet, error) {
	splits := map[string][]string{"test": {"test"}, "val": {"val", "valid", "validation"}}
	want, ok := splits[split]
	if !ok {
		return nil, fmt.Errorf("celeba eval set: split %q, want test or val", split)
	}
	f, err := os.Open(filepath.Join(dir, "labels.csv"))
	if err != nil {
		return nil, fmt.Errorf("celeba eval set: %w", err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("celeba eval set %s: %w", f.Name(), err)
	}
	if len(recs) < 2 {
		return nil, fmt.Errorf("celeba eval set %s: no rows", f.Name())
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	need := []string{"image", "split", "celeba_identity", "Male", "Eyeglasses", "No_Beard"}
	for _, h := range need {
		if _, ok := col[h]; !ok {
			return nil, fmt.Errorf("celeba eval set %s: no column %q", f.Name(), h)
		}
	}
	rows := recs[1:]
	sort.Slice(rows, func(i, j int) bool { return rows[i][col["image"]] < rows[j][col["image"]] })
	s := &EvalSet{Root: filepath.Join(dir, "img_align_celeba"),
		Box: []int{CelebABox.Min.X, CelebABox.Min.Y, CelebABox.Max.X, CelebABox.Max.Y}}
	inGallery := map[string]bool{}
	for _, r := range rows {
		if id := r[col["celeba_identity"]]; r[col["split"]] == "train" && !inGallery[id] {
			inGallery[id] = true
			s.Gallery = append(s.Gallery, EvalImage{Path: r[col["image"]], Identity: id})
		}
	}
	for _, r := range rows {
		if limit > 0 && len(s.Probes) >= limit {
			break
		}
		id := r[col["celeba_identity"]]
		if !slices.Contains(want, r[col["split"]]) || !inGallery[id] {
			continue
		}
		attrs := map[string]int{}
		for name, h := range map[string]string{"male": "Male", "glasses": "Eyeglasses", "no_beard": "No_Beard"} {
			switch v := r[col[h]]; v {
			case "1":
				attrs[name] = 1
			case "-1", "0":
				attrs[name] = 0
			default:
				return nil, fmt.Errorf("celeba eval set: %s: %s=%q, want -1 or 1", r[col["image"]], h, v)
			}
		}
		s.Probes = append(s.Probes, EvalImage{Path: r[col["image"]], Identity: id, Attributes: attrs})
	}
	if err := s.Check(); err != nil {
		return nil, fmt.Errorf("celeba eval set %s: %w", dir, err)
	}
	return s, nil
}

// LoadFace reads an image of the set and returns its 128x128 face.
func (s *EvalSet) LoadFace(im EvalImage) (*faceimg.Planar, error) {
	img, err := faceimg.Load(filepath.Join(s.Root, im.Path))
	if err != nil {
		return nil, err
	}
	box := im.Box
	if box == nil {
		box = s.Box
	}
	r := img.Bounds()
	if box != nil {
		r = image.Rect(box[0], box[1], box[2], box[3]).Add(img.Bounds().Min)
		if !r.In(img.Bounds()) || r.Empty() {
			return nil, fmt.Errorf("%s: box %v outside the %dx%d image", im.Path, box, img.Bounds().Dx(), img.Bounds().Dy())
		}
	}
	if r.Dx() != r.Dy() {
		return nil, fmt.Errorf("%s: face %dx%d is not square", im.Path, r.Dx(), r.Dy())
	}
	sub, ok := img.(interface {
		SubImage(image.Rectangle) image.Image
	})
	if !ok {
		return nil, fmt.Errorf("%s: %T images cannot be cropped", im.Path, img)
	}
	p := faceimg.FromImage(sub.SubImage(r))
	if p.W == EvalHR {
		return p, nil
	}
	pix, err := resample.Resize(p.Pix, 3, p.H, p.W, EvalHR, EvalHR, resample.Bicubic)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", im.Path, err)
	}
	for i, v := range pix { // Pillow's 8-bit path rounds the result
		pix[i] = float32(math.Round(math.Min(math.Max(float64(v), 0), 1)*255) / 255)
	}
	return &faceimg.Planar{W: EvalHR, H: EvalHR, Pix: pix}, nil
}

// MakeLR makes the LR probe of a 128x128 face at scale 8 (16x16) or 16
// (8x8): antialiased bilinear, kept as float (SRDG.md section 2).
func MakeLR(hr *faceimg.Planar, scale int) ([]float32, int, error) {
	if scale != 8 && scale != 16 {
		return nil, 0, fmt.Errorf("scale %d: want 8 or 16", scale)
	}
	n := hr.W / scale
	lr, err := resample.Resize(hr.Pix, 3, hr.H, hr.W, n, n, resample.Bilinear)
	return lr, n, err
}

// EvalMethod is one way to get a 128x128 face back from an LR probe.
type EvalMethod struct {
	Name string
	// Restore returns planar RGB 3 x 128 x 128 in [0, 1] from the LR probe
	// (3 x n x n) and the probe's description (attributes, path).
	Restore func(ctx context.Context, lr []float32, n int, probe EvalImage) ([]float32, error)
}

// LRBicubic is the "LR" baseline: the probe upsampled with antialiased
// bicubic, i.e. the conditioning image y of SRDG.md section 2.
func LRBicubic() EvalMethod {
	return EvalMethod{Name: "lr-bicubic", Restore: func(_ context.Context, lr []float32, n int, _ EvalImage) ([]float32, error) {
		return resample.Resize(lr, 3, n, n, EvalHR, EvalHR, resample.Bicubic)
	}}
}

// HRMethod is the name of the HRReference method.
const HRMethod = "hr"

// HRReference is the upper bound of recognition: the HR face itself (PSNR
// infinite, recorded as 100 dB; SSIM 1).
func HRReference(set *EvalSet) EvalMethod {
	return EvalMethod{Name: HRMethod, Restore: func(_ context.Context, _ []float32, _ int, p EvalImage) ([]float32, error) {
		f, err := set.LoadFace(p)
		if err != nil {
			return nil, err
		}
		return f.Pix, nil
	}}
}

// ProbeSeed is a per-probe noise seed: the same for a probe whatever the
// order of the run, so a resumed run matches an uninterrupted one.
func ProbeSeed(seed uint64, probe string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(probe))
	return seed ^ h.Sum64()
}

// EvalOptions configure Evaluate.
type EvalOptions struct {
	Set    *EvalSet
	Scales []int
	// Methods returns the methods to run at a scale.
	Methods  func(scale int) ([]EvalMethod, error)
	Embedder FaceEmbedder
	// Cache is the JSONL file of finished work (one line per gallery image
	// and per probe, scale and method); what it holds for the embedder's
	// model is not recomputed. "" = no cache.
	Cache string
	// Progress receives one line per probe (default discards).
	Progress io.Writer
	// Thresholds returns the identification threshold and margin to report
	// open-set rates at for a method at a scale (EvalResult.Configured);
	// nil or false: not reported.
	Thresholds func(scale int, method string) (Thresholds, bool)
}

// evalRecord is one line of the cache.
type evalRecord struct {
	Kind      string    `json:"kind"` // "gallery" or "probe"
	Scale     int       `json:"scale,omitempty"`
	Method    string    `json:"method,omitempty"`
	Image     string    `json:"image"`
	Model     string    `json:"model"`
	PSNR      float64   `json:"psnr,omitempty"`
	SSIM      float64   `json:"ssim,omitempty"`
	Embedding []float32 `json:"embedding"`
}

func (r evalRecord) key() string {
	return fmt.Sprintf("%s|%d|%s|%s|%s", r.Kind, r.Scale, r.Method, r.Image, r.Model)
}

// EvalResult is one method at one scale.
type EvalResult struct {
	Scale  int     `json:"scale"`
	Method string  `json:"method"`
	Probes int     `json:"probes"`
	PSNR   float64 `json:"psnr"`
	SSIM   float64 `json:"ssim"`
	AUC    float64 `json:"auc"`
	// Rank holds Rank-1..Rank-10 (fractions); R1, R5, R10 repeat three.
	Rank []float64 `json:"cmc"`
	R1   float64   `json:"r1"`
	R5   float64   `json:"r5"`
	R10  float64   `json:"r10"`
	// ROC is the curve (for roc.png; not in results.json).
	ROC []ROCPoint `json:"-"`
	// Verify is the 1:1 operating point at a pair false match rate of 1e-3
	// (nil when even the highest impostor score is over it: too few pairs).
	Verify *ROCPoint `json:"verify_fmr_1e-3,omitempty"`
	// OpenSet holds open-set identification (see OpenSet: every probe also
	// serves as an unknown person) over a grid of thresholds and margins;
	// OpenSetBest is the grid point with the highest DIR whose FPIR is at
	// most 1 % (nil if none identifies anyone); Configured is the point at
	// EvalOptions.Thresholds for this scale, when given.
	OpenSet     []OpenSetPoint `json:"open_set"`
	OpenSetBest *OpenSetPoint  `json:"open_set_best,omitempty"`
	Configured  *OpenSetPoint  `json:"configured,omitempty"`
}

// Open-set grid: thresholds from openSetLo to openSetHi in openSetStep, each
// with every margin of openSetMargins; the best point keeps FPIR <= openSetFPIR.
var openSetMargins = []float64{0, 0.005, 0.01, 0.015, 0.02, 0.03}

const (
	openSetLo, openSetHi, openSetStep = 0.80, 0.97, 0.0025
	openSetFPIR                       = 0.01
)

// EvalReport is what Evaluate measured.
type EvalReport struct {
	Model      string       `json:"embedder"`
	Gallery    int          `json:"gallery_images"`
	Identities int          `json:"gallery_identities"`
	Probes     int          `json:"probes"`
	Results    []EvalResult `json:"results"`
	// Computed and Cached count the gallery images and probe x method
	// results computed in this run and read from the cache.
	Computed int `json:"computed"`
	Cached   int `json:"cached"`
}

// psnrCap replaces an infinite PSNR (identical images), which JSON cannot
// carry.
const psnrCap = 100

// Evaluate runs every method on every probe at every scale and aggregates:
// mean PSNR and SSIM against the 128x128 HR face, ROC AUC over all
// probe-gallery pairs (cosine of the descriptors), and Rank-1..10.
func Evaluate(ctx context.Context, o EvalOptions) (*EvalReport, error) {
	if o.Set == nil || o.Embedder == nil || o.Methods == nil || len(o.Scales) == 0 {
		return nil, errors.New("evaluate: set, embedder, methods and scales are required")
	}
	if err := o.Set.Check(); err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	model := o.Embedder.ModelID()
	rep := &EvalReport{Model: model, Gallery: len(o.Set.Gallery), Probes: len(o.Set.Probes)}
	done := map[string]evalRecord{}
	var cache *os.File
	if o.Cache != "" {
		var err error
		if done, err = readEvalCache(o.Cache); err != nil {
			return nil, err
		}
		if cache, err = os.OpenFile(o.Cache, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			return nil, fmt.Errorf("evaluate: cache: %w", err)
		}
		defer cache.Close()
	}
	save := func(r evalRecord) error {
		done[r.key()] = r
		rep.Computed++
		if cache == nil {
			return nil
		}
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("evaluate: cache %s: %w", r.key(), err)
		}
		if _, err := cache.Write(append(b, '\n')); err != nil {
			return fmt.Errorf("evaluate: cache %s: %w", o.Cache, err)
		}
		return nil
	}
	embed := func(pix []float32) ([]float32, error) {
		e, err := o.Embedder.Embed(ctx, []Face{{Planar: &faceimg.Planar{W: EvalHR, H: EvalHR, Pix: pix}}})
		if err != nil {
			return nil, err
		}
		return e[0].Vector, nil
	}

	// gallery
	gal := make([][]float32, len(o.Set.Gallery))
	galID := make([]string, len(o.Set.Gallery))
	ids := map[string]bool{}
	for i, im := range o.Set.Gallery {
		galID[i] = im.Identity
		ids[im.Identity] = true
		r := evalRecord{Kind: "gallery", Image: im.Path, Model: model}
		if c, ok := done[r.key()]; ok {
			gal[i] = c.Embedding
			rep.Cached++
			continue
		}
		face, err := o.Set.LoadFace(im)
		if err != nil {
			return nil, fmt.Errorf("evaluate: gallery: %w", err)
		}
		if r.Embedding, err = embed(face.Pix); err != nil {
			return nil, fmt.Errorf("evaluate: gallery %s: %w", im.Path, err)
		}
		gal[i] = r.Embedding
		if err := save(r); err != nil {
			return nil, err
		}
	}
	rep.Identities = len(ids)
	fmt.Fprintf(progress, "eval: gallery of %d images (%d identities) ready, %d probes\n", len(gal), len(ids), len(o.Set.Probes))

	for _, scale := range o.Scales {
		methods, err := o.Methods(scale)
		if err != nil {
			return nil, fmt.Errorf("evaluate: x%d: %w", scale, err)
		}
		recs := make([][]evalRecord, len(methods)) // [method][probe]
		for m := range recs {
			recs[m] = make([]evalRecord, len(o.Set.Probes))
		}
		start := time.Now()
		fresh := 0 // probes that needed computing
		for p, im := range o.Set.Probes {
			computedBefore := rep.Computed
			var hr *faceimg.Planar
			var lr []float32
			var n int
			for m, meth := range methods {
				r := evalRecord{Kind: "probe", Scale: scale, Method: meth.Name, Image: im.Path, Model: model}
				if c, ok := done[r.key()]; ok {
					recs[m][p] = c
					rep.Cached++
					continue
				}
				if err := ctx.Err(); err != nil {
					return nil, fmt.Errorf("evaluate: %w", err)
				}
				if hr == nil {
					if hr, err = o.Set.LoadFace(im); err != nil {
						return nil, fmt.Errorf("evaluate: probe: %w", err)
					}
					if lr, n, err = MakeLR(hr, scale); err != nil {
						return nil, fmt.Errorf("evaluate: probe %s: %w", im.Path, err)
					}
				}
				out, err := meth.Restore(ctx, lr, n, im)
				if err != nil {
					return nil, fmt.Errorf("evaluate: %s x%d on %s: %w", meth.Name, scale, im.Path, err)
				}
				if len(out) != len(hr.Pix) {
					return nil, fmt.Errorf("evaluate: %s x%d on %s: %d values, want %d", meth.Name, scale, im.Path, len(out), len(hr.Pix))
				}
				if r.PSNR, err = PSNR(out, hr.Pix, 1); err != nil {
					return nil, fmt.Errorf("evaluate: %s x%d on %s: %w", meth.Name, scale, im.Path, err)
				}
				if math.IsInf(r.PSNR, 1) {
					r.PSNR = psnrCap
				}
				if r.SSIM, err = SSIM(out, hr.Pix, 3, EvalHR, EvalHR, 1); err != nil {
					return nil, fmt.Errorf("evaluate: %s x%d on %s: %w", meth.Name, scale, im.Path, err)
				}
				if r.Embedding, err = embed(out); err != nil {
					return nil, fmt.Errorf("evaluate: %s x%d on %s: embed: %w", meth.Name, scale, im.Path, err)
				}
				if err := save(r); err != nil {
					return nil, err
				}
				recs[m][p] = r
			}
			if rep.Computed > computedBefore {
				fresh++
			}
			el := time.Since(start)
			eta := time.Duration(0)
			if fresh > 0 { // the remaining probes cost what the computed ones did
				eta = el / time.Duration(fresh) * time.Duration(len(o.Set.Probes)-p-1)
			}
			fmt.Fprintf(progress, "eval x%d: probe %d/%d %s, elapsed %s, ETA %s\n",
				scale, p+1, len(o.Set.Probes), im.Path, el.Round(time.Second), eta.Round(time.Second))
		}
		for m, meth := range methods {
			res, err := aggregate(scale, meth.Name, recs[m], o.Set.Probes, gal, galID, len(ids), o.Thresholds)
			if err != nil {
				return nil, fmt.Errorf("evaluate: %s x%d: %w", meth.Name, scale, err)
			}
			rep.Results = append(rep.Results, *res)
		}
	}
	return rep, nil
}

func aggregate(scale int, method string, recs []evalRecord, probes []EvalImage, gal [][]float32, galID []string, nIDs int,
	th func(int, string) (Thresholds, bool)) (*EvalResult, error) {
	res := &EvalResult{Scale: scale, Method: method, Probes: len(recs)}
	sim := make([][]float64, len(recs))
	probeID := make([]string, len(recs))
	var genuine, impostor []float64
	for p, r := range recs {
		res.PSNR += r.PSNR / float64(len(recs))
		res.SSIM += r.SSIM / float64(len(recs))
		probeID[p] = probes[p].Identity
		sim[p] = make([]float64, len(gal))
		for g, v := range gal {
			if len(v) != len(r.Embedding) {
				return nil, fmt.Errorf("probe %s: descriptor of %d values, gallery %d", r.Image, len(r.Embedding), len(v))
			}
			s := Cosine(r.Embedding, v)
			sim[p][g] = s
			if galID[g] == probeID[p] {
				genuine = append(genuine, s)
			} else {
				impostor = append(impostor, s)
			}
		}
	}
	var err error
	if res.AUC, err = AUC(genuine, impostor); err != nil {
		return nil, err
	}
	if res.ROC, err = ROC(genuine, impostor); err != nil {
		return nil, err
	}
	cmc, err := CMC(sim, probeID, galID, min(10, nIDs))
	if err != nil {
		return nil, err
	}
	for len(cmc) < 10 { // fewer than 10 identities: every rank beyond is 1
		cmc = append(cmc, 1)
	}
	res.Rank, res.R1, res.R5, res.R10 = cmc, cmc[0], cmc[4], cmc[9]
	if err := res.openSet(sim, probeID, galID, th); err != nil {
		return nil, err
	}
	return res, nil
}

// openSet fills Verify, OpenSet, OpenSetBest and Configured from the
// probe x gallery similarities.
func (res *EvalResult) openSet(sim [][]float64, probeID, galID []string, th func(int, string) (Thresholds, bool)) error {
	if v := ThresholdAtFMR(res.ROC, 1e-3); !math.IsInf(v.Threshold, 0) {
		res.Verify = &v
	}
	sc, err := NewOpenSetScores(sim, probeID, galID)
	if err != nil {
		return err
	}
	n := int(math.Round((openSetHi-openSetLo)/openSetStep)) + 1
	for i := 0; i < n; i++ {
		t := math.Round((openSetLo+float64(i)*openSetStep)*1e4) / 1e4
		for _, m := range openSetMargins {
			pt := sc.At(t, m)
			res.OpenSet = append(res.OpenSet, pt)
			if pt.FPIR <= openSetFPIR && pt.DIR > 0 && (res.OpenSetBest == nil || pt.DIR > res.OpenSetBest.DIR) {
				b := pt
				res.OpenSetBest = &b
			}
		}
	}
	if th == nil {
		return nil
	}
	if t, ok := th(res.Scale, res.Method); ok {
		pt := sc.At(t.Identify, t.Margin)
		res.Configured = &pt
	}
	return nil
}

// readEvalCache reads a cache; a missing file is an empty cache, and a
// truncated last line (an interrupted write) is ignored.
func readEvalCache(path string) (map[string]evalRecord, error) {
	done := map[string]evalRecord{}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return done, nil
	}
	if err != nil {
		return nil, fmt.Errorf("evaluate: cache: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	line := 0
	var bad error
	for sc.Scan() {
		line++
		if bad != nil { // a bad line followed by more lines is corruption
			return nil, bad
		}
		var r evalRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			bad = fmt.Errorf("evaluate: cache %s line %d: %w", path, line, err)
			continue
		}
		done[r.key()] = r
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("evaluate: cache %s: %w", path, err)
	}
	return done, nil
}

// WriteEvalOutputs writes results.json, results.md, roc.png and cmc.png into
// dir.
func WriteEvalOutputs(dir string, rep *EvalReport) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("eval outputs: %w", err)
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("eval outputs: results.json: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("eval outputs: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(EvalMarkdown(rep)), 0o644); err != nil {
		return fmt.Errorf("eval outputs: %w", err)
	}
	roc := Plot{Title: "ROC (1:1 verification)", XLabel: "false match rate", YLabel: "true match rate",
		XLog: true, XMin: 1e-3, XMax: 1, YMin: 0, YMax: 1}
	cmc := Plot{Title: "CMC (1:N identification)", XLabel: "rank", YLabel: "identification rate",
		XMin: 1, XMax: 10, YMin: 0, YMax: 1}
	for _, r := range rep.Results {
		name := fmt.Sprintf("x%d %s", r.Scale, r.Method)
		if len(r.ROC) > 0 {
			roc.Series = append(roc.Series, ROCSeries(name, r.ROC))
		}
		cmc.Series = append(cmc.Series, CMCSeries(name, r.Rank))
	}
	for name, p := range map[string]Plot{"roc.png": roc, "cmc.png": cmc} {
		if len(p.Series) == 0 {
			continue
		}
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("eval outputs: %w", err)
		}
		err = p.WritePNG(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("eval outputs: %s: %w", name, err)
		}
	}
	return nil
}

// EvalMarkdown renders the report as one table per scale (Rank-k in percent).
func EvalMarkdown(rep *EvalReport) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Evaluation\n\nGallery: %d images of %d identities. Probes: %d. Embedder: %s.\n",
		rep.Gallery, rep.Identities, rep.Probes, rep.Model)
	scale := 0
	for _, r := range rep.Results {
		if r.Scale != scale {
			scale = r.Scale
			fmt.Fprintf(&b, "\n## %dx (%dx%d -> %dx%d)\n\n", scale, EvalHR/scale, EvalHR/scale, EvalHR, EvalHR)
			b.WriteString("| method | PSNR | SSIM | AUC | R1 | R5 | R10 |\n|---|---|---|---|---|---|---|\n")
		}
		psnr := fmt.Sprintf("%.2f", r.PSNR)
		if r.PSNR >= psnrCap-1e-6 {
			psnr = "inf"
		}
		fmt.Fprintf(&b, "| %s | %s | %.3f | %.3f | %.2f | %.2f | %.2f |\n", r.Method, psnr, r.SSIM,
			r.AUC, 100*r.R1, 100*r.R5, 100*r.R10)
	}
	b.WriteString("\n## Operating points\n\n" +
		"Verification: the threshold at a pair false match rate of 1e-3 and the true match rate there. " +
		"Open set (a match needs the threshold and the margin over the runner-up; every probe is also " +
		"searched with its own identity removed, as an unknown person): the threshold and margin with " +
		"the highest DIR (identified and accepted) at FPIR (unknown accepted) <= 1 %, and the rates at " +
		"the configured thresholds. Rates in percent.\n\n" +
		"| scale | method | verify thr @FMR 1e-3 | TMR | open-set thr / margin | DIR | wrong | FPIR | configured thr / margin | DIR | wrong | FPIR |\n" +
		"|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rep.Results {
		if r.Verify != nil {
			fmt.Fprintf(&b, "| %dx | %s | %.4f | %.1f | ", r.Scale, r.Method, r.Verify.Threshold, 100*r.Verify.TMR)
		} else {
			fmt.Fprintf(&b, "| %dx | %s | - | - | ", r.Scale, r.Method)
		}
		for _, p := range []*OpenSetPoint{r.OpenSetBest, r.Configured} {
			if p == nil {
				b.WriteString("- | - | - | - | ")
				continue
			}
			fmt.Fprintf(&b, "%.4f / %.3f | %.1f | %.1f | %.1f | ", p.Threshold, p.Margin, 100*p.DIR, 100*p.Wrong, 100*p.FPIR)
		}
		b.WriteString("\n")
	}
	return b.String()
}
