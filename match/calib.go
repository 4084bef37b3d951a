package match

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"strings"
	"sync"

	"github.com/srdgd/srdgd/face"
)

// Calibration is what `srdgd eval --calibrate` measured for decisions on
// super-resolved faces, single-shot and fused: per scale and number of
// shots, the identify threshold and margin at an open-set FPIR of 1 %, and a
// logistic map from (top similarity, margin over the runner-up) to the
// probability that the top candidate is the person (bench/RESULTS.md,
// "Multi-shot"; reproduce with bench/srmatch/shots.sh val SCALE, then copy its calibration.json).
type Calibration struct {
	Source   string             `json:"source"`
	Embedder string             `json:"embedder"`
	Entries  []CalibrationEntry `json:"entries"`
}

// CalibrationEntry is one scale, number of shots and fusion rule.
type CalibrationEntry struct {
	Scale   int `json:"scale"`
	Shots   int `json:"shots"`
	Samples int `json:"samples"`
	// Fusion is "descriptor" (Fuse) or "score" (mean similarity); "" for one
	// shot.
	Fusion string `json:"fusion,omitempty"`
	Method string `json:"method"`
	Probes int    `json:"probes"`
	// Identify and Margin: the decision rule's setting, chosen as the highest
	// DIR at FPIR <= 1 % (Chosen says how), with the rates measured there.
	Identify float64 `json:"identify"`
	Margin   float64 `json:"margin"`
	Chosen   string  `json:"chosen"`
	DIR      float64 `json:"dir"`
	Wrong    float64 `json:"wrong"`
	FPIR     float64 `json:"fpir"`
	// Logistic maps a search to P(top candidate is the person), fitted on
	// searches of which Prior were of enrolled people.
	Logistic Logistic `json:"logistic"`
	Prior    float64  `json:"prior"`
	// Top-1 similarity of correct identifications (Genuine) and of searches
	// whose top candidate is someone else (Impostor: unknown people and
	// known people ranked wrong); all probe-gallery pairs (PairGenuine,
	// PairImpostor).
	Genuine      Histogram `json:"top1_genuine"`
	Impostor     Histogram `json:"top1_impostor"`
	PairGenuine  Histogram `json:"pair_genuine"`
	PairImpostor Histogram `json:"pair_impostor"`
	// Gallery is the number of gallery identities the entry was measured
	// with (0 in files from before it was recorded); Galleries are the
	// settings measured on random smaller galleries of the same searches
	// (eval's OpenSetScores.Subsample), smallest first.
	Gallery   int              `json:"gallery,omitempty"`
	Galleries []GallerySetting `json:"galleries,omitempty"`
}

// GallerySetting is the decision setting for galleries of up to Gallery
// identities: fewer enrolled people are fewer impostors to outscore a bar,
// so the same FPIR allows a lower threshold and a smaller margin, and the
// probability that the top candidate is the person is higher at the same
// similarity.
type GallerySetting struct {
	Gallery  int      `json:"gallery"`
	Trials   int      `json:"trials"`
	Identify float64  `json:"identify"`
	Margin   float64  `json:"margin"`
	Chosen   string   `json:"chosen"`
	DIR      float64  `json:"dir"`
	Wrong    float64  `json:"wrong"`
	FPIR     float64  `json:"fpir"`
	Logistic Logistic `json:"logistic"`
}

// ForGallery is the setting for a gallery of n identities: the one
// measured on the smallest gallery of at least n (a larger gallery's
// setting is the stricter one), else the entry's own (measured on its full
// gallery; a gallery larger than that is decided by it too, which
// README "Evaluation" warns about).
func (e CalibrationEntry) ForGallery(n int) GallerySetting {
	for _, g := range e.Galleries {
		if n > 0 && n <= g.Gallery && (e.Gallery == 0 || g.Gallery < e.Gallery) {
			return g
		}
	}
	return GallerySetting{Gallery: e.Gallery, Identify: e.Identify, Margin: e.Margin, Chosen: e.Chosen,
		DIR: e.DIR, Wrong: e.Wrong, FPIR: e.FPIR, Logistic: e.Logistic}
}

// Logistic is P = 1 / (1 + exp(-(Bias + Top*top + Margin*margin))).
type Logistic struct {
	Bias   float64 `json:"bias"`
	Top    float64 `json:"top"`
	Margin float64 `json:"margin"`
}

// P is the probability at a top similarity and margin.
func (l Logistic) P(top, margin float64) float64 {
	return 1 / (1 + math.Exp(-(l.Bias + l.Top*top + l.Margin*margin)))
}

// Histogram counts values in bins of Step from Lo (values below Lo in the
// first bin, above the last bin's end in the last).
type Histogram struct {
	Lo     float64 `json:"lo"`
	Step   float64 `json:"step"`
	Counts []int   `json:"counts"`
	Mean   float64 `json:"mean"`
	SD     float64 `json:"sd"`
}

// The shipped calibrations, one file per embedder that reads SR faces:
// fused.json for face-api, fused-<name>.json for the others.
//
//go:embed calib/fused*.json
var calibFS embed.FS

var loadCalibrations = sync.OnceValues(func() ([]*Calibration, error) {
	names, err := fs.Glob(calibFS, "calib/fused*.json")
	if err != nil {
		return nil, err
	}
	var out []*Calibration
	for _, n := range names {
		b, err := calibFS.ReadFile(n)
		if err != nil {
			return nil, err
		}
		var c Calibration
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, fmt.Errorf("calibration match/%s: %w", n, err)
		}
		if n == "calib/fused.json" {
			out = append([]*Calibration{&c}, out...)
		} else {
			out = append(out, &c)
		}
	}
	return out, nil
})

// DefaultCalibration is the calibration shipped in match/calib/fused.json
// (face-api's).
func DefaultCalibration() (*Calibration, error) {
	cs, err := loadCalibrations()
	if err != nil {
		return nil, err
	}
	if len(cs) == 0 {
		return nil, fmt.Errorf("calibration: none shipped")
	}
	return cs[0], nil
}

// DefaultCalibrationFor is the shipped calibration measured with the model
// (compared by name, ModelID before "@"), ok false when there is none.
func DefaultCalibrationFor(model string) (*Calibration, bool, error) {
	cs, err := loadCalibrations()
	if err != nil {
		return nil, false, err
	}
	name, _, _ := strings.Cut(model, "@")
	for _, c := range cs {
		if n, _, _ := strings.Cut(c.Embedder, "@"); n == name {
			return c, true, nil
		}
	}
	return nil, false, nil
}

// Entry returns the descriptor-fusion entry for a scale and a number of
// shots: the one with the most shots not over shots (the fewest there are
// when shots is below every entry).
func (c *Calibration) Entry(scale, shots int) (CalibrationEntry, error) {
	var le, gt *CalibrationEntry // most shots <= shots; fewest > shots
	for i := range c.Entries {
		e := &c.Entries[i]
		if e.Scale != scale || e.Samples > 1 || e.Fusion == "score" {
			continue
		}
		if e.Shots <= shots {
			if le == nil || e.Shots > le.Shots {
				le = e
			}
		} else if gt == nil || e.Shots < gt.Shots {
			gt = e
		}
	}
	switch {
	case le != nil:
		return *le, nil
	case gt != nil:
		return *gt, nil
	}
	return CalibrationEntry{}, fmt.Errorf("calibration: no entry for x%d", scale)
}

// Confidence is the probability that the top candidate of a search is the
// person, for a decision from shots fused SR faces at scale (8 or 16) with
// that top similarity and margin over the runner-up, from the shipped
// calibration (at its prior: half the searched faces enrolled).
func Confidence(scale, shots int, top, margin float64) (float64, error) {
	c, err := DefaultCalibration()
	if err != nil {
		return 0, err
	}
	e, err := c.Entry(scale, shots)
	if err != nil {
		return 0, err
	}
	return e.Logistic.P(top, margin), nil
}

// DirectThresholds are the one-shot settings of the shipped calibration
// measured with model (DefaultCalibrationFor) for direct faces
// (face.DirectScale), by scale, with base's Verify and Rule: what the match
// stage decides a single direct face by (StageOptions.Direct). The setting
// is the one of the entry's full gallery (the strictest). Empty when
// nothing was calibrated for model at those scales.
func DirectThresholds(model string, base Thresholds) (map[int]Thresholds, error) {
	out := map[int]Thresholds{}
	c, ok, err := DefaultCalibrationFor(model)
	if err != nil || !ok {
		return out, err
	}
	for _, sc := range c.DirectScales() {
		e, _ := c.Entry(sc, 1)
		out[sc] = Thresholds{Identify: e.Identify, Margin: e.Margin, Verify: base.Verify, Rule: base.Rule}
	}
	return out, nil
}

// DirectScales are the direct scales (face.DirectScale) the calibration
// has an entry for.
func (c *Calibration) DirectScales() []int {
	var out []int
	for sc := face.MinDirectScale; sc <= face.MaxDirectScale; sc++ {
		if _, err := c.Entry(sc, 1); err == nil {
			out = append(out, sc)
		}
	}
	return out
}
