package match

import "strings"

// Default thresholds, measured by bench/match (bench/RESULTS.md, "Match") on
// HR CelebA faces with face-api's alignment; see the package documentation.
// Faces super-resolved from 16x16 or 8x8 need their own setting, measured
// with the evaluation harness (bench/srmatch, config match.sr): 0.94 / 0.02
// at 8x (close to these) and 0.945 / 0.02 at 16x (stricter: these accept
// 1.5 % of unknown people there).
const (
	// pair FMR 1e-3 on the 11.5 M train impostor pairs (9.1e-4 on val+test),
	// TMR 0.827 (0.835)
	defaultVerify = 0.9309
	// pair FMR 1e-4 (7.7e-5 on val+test), TMR 0.655 (0.663)
	defaultIdentify = 0.9433
	// with the identify threshold: the highest DIR with FPIR <= 1 % on a
	// 100-person gallery (5 photos each): DIR 0.813, FPIR 0.0083 on val+test
	defaultMargin = 0.02
)

// Measured identification settings for restored faces, per embedder and
// scale: what match.sr.x8 and x16 default to (config: unset). Keyed by the
// model's name (ModelID before "@"), measured with the files named beside
// each; a file of the same name built elsewhere is assumed to be the same
// net (`make models` builds it reproducibly from the npm package).
var srDefaults = map[string]map[int]Thresholds{
	// face_recognition_model@1a0426853fc3247e+17f82ad1: bench/srmatch on
	// CelebA val, checked on test (bench/RESULTS.md, "SR match")
	"face-api face_recognition_model": {8: {Identify: 0.94, Margin: 0.02}, 16: {Identify: 0.945, Margin: 0.02}},
	// faceres@6df2fcc38b0e9ac0+17f82ad1: srdgd eval on CelebA val, checked
	// on test (models/README.md, "Bake-off"; README "Evaluation")
	"human-models faceres": {8: {Identify: faceresX8, Margin: faceresX8Margin}, 16: {Identify: faceresX16, Margin: faceresX16Margin}},
}

// DefaultSRThresholds is the measured identification setting (Identify and
// Margin) for faces restored at scale and read by the model; ok false when
// none was measured for it.
func DefaultSRThresholds(model string, scale int) (th Thresholds, ok bool) {
	name, _, _ := strings.Cut(model, "@")
	th, ok = srDefaults[name][scale]
	return th, ok
}

// FaceRes' settings for restored faces (see srDefaults), chosen on CelebA
// val (shares identities with train and test): x8 the highest DIR at FPIR
// <= 1 % on 600 probes (margin 0 did best); x16 the one-shot setting of
// match/calib/fused-faceres.json (highest DIR at FPIR <= 0.5 % on 1,200
// shots of 300 val probes: a lead of 0.10 over the runner-up at any
// similarity; nobody is really identified from 8x8, DIR 0.2 %). The
// earlier 0.645 / 0.02, from 150 val probes, let 3.8 % of unknown test
// probes through; this one 0.3 % (600 test probes).
const (
	faceresX8, faceresX8Margin   = 0.664, 0.0
	faceresX16, faceresX16Margin = 0.30, 0.10
)
