// Package match turns faces into identity descriptors and matches them against
// an enrolled gallery: alignment and embedding on ONNX Runtime, the encrypted
// SQLite gallery store, 1:N identification and 1:1 verification with
// thresholds, fusion of several shots of one person (Fuse) and the calibrated
// confidence of a fused decision (Confidence). The offline evaluation
// (datasets, PSNR, SSIM, ROC AUC, Rank-k, open-set rates, plots) is package
// eval, which the daemon does not link.
//
// # Descriptors
//
// Embedder runs face-api's pipeline (models/README.md, "Face embedder"): the
// detector's box is clipped, padded to a square with black and resized to
// 112x112 for the 68-point landmark net; the eye centres (points 36-41,
// 42-47) and mouth centre (48-67) give face-api's dlib box (side = floor(mean
// eye-to-mouth distance / 0.45), top-left at c.x - 0.5 side, c.y - 0.43 side
// around the centroid c of the three centres, axis-aligned); that box is
// cropped the same way to 150x150 (Pillow's antialiased bilinear,
// internal/resample) for the embedder, whose 128-d output is L2-normalised.
// Similarity is the cosine. Every descriptor carries its model id,
// "srdgd.name@<sha256 prefix of the embedder file>+<sha256 prefix of the
// landmark file>", and only descriptors of the same id are compared.
//
// PairEmbedder joins two: face-api reads photos and HSE FaceRes the faces SR
// restored (on CelebA each is the better one there). Its gallery templates
// hold both models' descriptors, each unit-length; a probe fills the slot of
// the model that read it, so Similarity (the dot product) is that model's
// cosine, and the thresholds measured for that model apply
// (DefaultSRThresholds, the calibration of that model, DefaultCalibrationFor).
//
// # Gallery
//
// Gallery keeps people (name, watchlist flag, forced attributes), their
// photos (the JPEG as submitted) and descriptors in one SQLite file in WAL
// mode (modernc.org/sqlite, no cgo). Names, photos, photo sources and
// descriptors are encrypted with AES-256-GCM under a key file (LoadKey,
// GenerateKey), with associated data that binds each blob to its row; a key
// check value in the meta table makes a wrong key fail at Open. A person is
// found by a keyed hash (HMAC-SHA256, key derived from the gallery key with
// HKDF) of the case-folded, NFC-normalised name, which is also what must be
// unique; List decrypts and sorts the names. Enrolling one photo is one
// transaction. The schema
// has an explicit migration list (schema_version table); Reembed recomputes
// descriptors after an embedder change. Search works on an in-memory copy of
// the current model's descriptors.
//
// # Thresholds (measured)
//
// bench/match (bench/RESULTS.md, "Match") embeds the 6,000 images of the
// CelebA aligned subset (200 identities; face box columns 29..148, rows
// 56..175) and measures, on the 4,800 train-split images, all 55,200 genuine
// and 11,462,400 impostor pairs: cosine genuine mean 0.947, impostor mean
// 0.841, AUC 0.9912, EER 3.8 % at 0.902. Operating points (train; in brackets
// the 3,000 genuine and 716,400 impostor pairs among the other 1,200 val+test
// images):
//
//	pair FMR 1e-3 at 0.9309: TMR 0.827 (FMR 9.1e-4, TMR 0.835)
//	pair FMR 1e-4 at 0.9433: TMR 0.655 (FMR 7.7e-5, TMR 0.663)
//	pair FMR 1e-5 at 0.9545: TMR 0.418 (FMR 1.4e-6, TMR 0.421)
//
// Defaults: Verify 0.9309 (false match rate 1e-3 per comparison); Identify
// 0.9433 with a margin of 0.02 over the runner-up, the setting with the
// highest detection-and-identification rate whose false positive
// identification rate stays at or under 1 % in an open-set search of a
// 100-person gallery with 5 photos each: DIR 0.813, FPIR 0.83 %, wrong
// identity 0 % on the held-out probes. FPIR grows with the gallery size;
// the margin matters: without it FPIR is 2.7 % at the same threshold. These
// are HR faces. Super-resolved faces get their own setting (SearchFaceAt,
// config match.sr), chosen with the evaluation harness's open-set operating
// points (eval.Result.OpenSet; bench/srmatch): on 400 CelebA validation probes
// from 16x16, 0.94 / 0.02 identifies 3.2 % at FPIR 0.75 %; from 8x8 nothing
// identifies anyone at FPIR <= 1 %, and 0.945 / 0.02 keeps FPIR at 0.75 %.
// CelebA's terms (non-commercial research) apply to these numbers'
// source data, not to the thresholds.
//
// # Fused decisions
//
// Fuse averages the L2-normalised descriptors of a track's shots (weighted
// by their quality) and normalises the mean again. match/calib/fused.json,
// written by `srdgd eval --calibrate` on CelebA validation probes
// (bench/srmatch/shots.sh; bench/RESULTS.md, "Multi-shot"), holds per scale
// and number of shots the threshold and margin at an open-set FPIR of 1 %
// and a logistic map from (top similarity, margin) to the probability that
// the top candidate is the person; Confidence reads it.
package match
