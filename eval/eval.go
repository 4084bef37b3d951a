package eval

import (
	"fmt"
	"io"

	"github.com/srdgd/srdgd/match"
)

// Options configure Evaluate.
type Options struct {
	Set    *Set
	Scales []int
	// Methods returns the methods to run at a scale.
	Methods  func(scale int) ([]Method, error)
	Embedder match.FaceEmbedder
	// Cache is the JSONL file of finished work (one line per gallery image,
	// per probe, scale and method, and per shot and sample of a probe);
	// what it holds for the embedder's model is not recomputed. "" = no
	// cache.
	Cache string
	// Progress receives one line per probe (default discards).
	Progress io.Writer
	// Thresholds returns the identification threshold and margin to report
	// open-set rates at for a method at a scale (Result.Configured);
	// nil or false: not reported.
	Thresholds func(scale int, method string) (match.Thresholds, bool)
	// Calibration returns the visit calibration entry for a scale and a
	// number of fused shots (match.Calibration.Entry), to report the rates
	// of multi-shot rows on smaller galleries at its per-size settings
	// (Result.BySize); nil or false: those rates are not reported.
	Calibration func(scale, shots int) (match.CalibrationEntry, bool)
	// Shots, when enabled, adds multi-shot rows (see Shots and
	// Evaluate) for every method but HRMethod.
	Shots Shots
	// ShotsOnly skips the single-probe rows of every method but HRMethod
	// when the shots are enabled (the "-shots1" rows are then the
	// single-shot figures).
	ShotsOnly bool
	// SRCache is the folder that keeps the outputs of methods with an ID
	// (16-bit PNGs named by a hash of the method, its ID, the scale, the
	// probe and the draw); "" = not kept.
	SRCache string
}

// record is one line of the cache.
type record struct {
	Kind      string    `json:"kind"` // "gallery", "probe" or "shot"
	Scale     int       `json:"scale,omitempty"`
	Method    string    `json:"method,omitempty"`
	Image     string    `json:"image"`
	Model     string    `json:"model"`
	PSNR      float64   `json:"psnr,omitempty"`
	SSIM      float64   `json:"ssim,omitempty"`
	Embedding []float32 `json:"embedding"`
	// Draw and Shots (Shots.Tag) of a "shot" record.
	Draw  string `json:"draw,omitempty"`
	Shots string `json:"shots,omitempty"`
	// Adapter names the SR adapter that mapped the descriptor (Method.AdapterID).
	Adapter string `json:"adapter,omitempty"`
}

func (r record) key() string {
	k := fmt.Sprintf("%s|%d|%s|%s|%s", r.Kind, r.Scale, r.Method, r.Image, r.Model)
	if r.Kind == kindShot {
		k += "|" + r.Draw + "|" + r.Shots
	}
	if r.Adapter != "" {
		k += "|adapter " + r.Adapter
	}
	return k
}

// Kinds of records.
const (
	kindGallery = "gallery"
	kindProbe   = "probe"
	kindShot    = "shot"
)

// Result is one method at one scale.
type Result struct {
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
	// Options.Thresholds for this scale, when given.
	OpenSet     []OpenSetPoint `json:"open_set"`
	OpenSetBest *OpenSetPoint  `json:"open_set_best,omitempty"`
	Configured  *OpenSetPoint  `json:"configured,omitempty"`
	// Multi-shot rows: the method they come from, the shots and posterior
	// samples per decision, and the fusion rule ("descriptor": match.Fuse,
	// "score": mean similarity; "" for a single observation).
	Base    string `json:"base,omitempty"`
	Shots   int    `json:"shots,omitempty"`
	Samples int    `json:"samples,omitempty"`
	Fusion  string `json:"fusion,omitempty"`
	// Scores are the per-probe open-set scores, genuine and impostor the
	// pair similarities (for Calibrate).
	Scores            *OpenSetScores `json:"-"`
	genuine, impostor []float64
	// BySize: multi-shot rows on random smaller galleries (GallerySizes
	// below the gallery's identities) and on the full one.
	BySize []SizePoint `json:"by_gallery_size,omitempty"`
	// subs are the smaller galleries' scores and grids behind BySize,
	// for Calibrate
	subs []subGrid
}

// subGrid is the open-set scores of random galleries of n identities and
// their grid.
type subGrid struct {
	n      int
	scores *OpenSetScores
	pts    []OpenSetPoint
}

// subGallery returns the scores and grid of random galleries of n
// identities: the ones the report measured, else measured now.
func (res *Result) subGallery(n int) (*OpenSetScores, []OpenSetPoint, error) {
	for _, s := range res.subs {
		if s.n == n {
			return s.scores, s.pts, nil
		}
	}
	sub, err := res.Scores.Subsample(n, GalleryTrials, subsampleSeed(res.Scale))
	if err != nil {
		return nil, nil, err
	}
	pts, _ := openSetGrid(sub)
	return sub, pts, nil
}

// SizePoint is open-set identification on random galleries of Gallery
// identities (OpenSetScores.Subsample, GalleryTrials per probe; the full
// gallery itself when Gallery is its size): the grid's best point there
// and the rates at the calibration's setting for that size (Calibrated,
// Options.Calibration; nil without one). On the split the calibration was
// measured on, Best is its setting; on another split Calibrated is the
// honest figure.
type SizePoint struct {
	Gallery    int           `json:"gallery"`
	Best       *OpenSetPoint `json:"best,omitempty"`
	Calibrated *OpenSetPoint `json:"calibrated,omitempty"`
}

// Open-set grid: thresholds from openSetLo to openSetHi in openSetStep, each
// with every margin of openSetMargins; the best point keeps FPIR <= openSetFPIR.
var openSetMargins = []float64{0, 0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2}

const (
	openSetLo, openSetHi, openSetStep = 0.30, 0.97, 0.0025
	openSetFPIR                       = 0.01
)

// Report is what Evaluate measured.
type Report struct {
	Model string `json:"embedder"`
	// SRModel is the model that read the restored faces (Model, or the
	// restored half of a match.PairEmbedder): the calibration's embedder.
	SRModel    string   `json:"sr_embedder,omitempty"`
	Gallery    int      `json:"gallery_images"`
	Identities int      `json:"gallery_identities"`
	Probes     int      `json:"probes"`
	Results    []Result `json:"results"`
	// Computed and Cached count the gallery images and probe x method
	// results computed in this run and read from the cache.
	Computed int `json:"computed"`
	Cached   int `json:"cached"`
}
