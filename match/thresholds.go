package match

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
