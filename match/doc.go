// Package match turns faces into identity descriptors and matches them against
// an enrolled gallery: alignment and embedding on ONNX Runtime, the encrypted
// SQLite gallery store, 1:N identification and 1:1 verification with
// thresholds, and the evaluation metrics (PSNR, SSIM, ROC AUC, Rank-k).
package match
