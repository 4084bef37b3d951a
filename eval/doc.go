// Package eval is the offline evaluation of super-resolution for
// recognition: datasets (a JSON set, or the CelebA aligned subset through
// internal/celeba), LR probes made from HR faces (SRDG.md section 2), the
// methods that restore them (bicubic, the HR reference, SRDG wired in by
// cmd/srdgd), multi-shot observations of a probe fused with match.Fuse,
// image and recognition metrics, operating points, the decision calibration
// that match embeds (match/calib/fused.json), and the reports and plots
// (gonum.org/v1/plot). The daemon does not link it: `srdgd eval` does.
//
// # Metrics
//
// PSNR over all samples with a stated peak; SSIM as Wang et al. 2004 (11x11
// Gaussian window, sigma 1.5, K1 0.01, K2 0.03, "valid" positions only, mean
// per channel, channels averaged); AUC as the Mann-Whitney statistic with ties
// counted half; ROC points per distinct score; CMC with ties counted against
// the probe; open-set DIR / wrong / FPIR with every probe also searched with
// its own identity removed, as an unknown person (OpenSet).
package eval
