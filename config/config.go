// Package config is the schema of srdgd's one YAML file (`version: 1`): its
// Go types, their defaults, strict decoding, environment overrides, secrets
// and validation.
//
// [Load] builds a [Config] in five steps:
//
//  1. start from [Default], the only place defaults are written down;
//  2. decode the file over it strictly: an unknown key, a wrong type, a bad
//     duration or a duplicate key is a problem naming the file, the line and
//     the full key path (for example cameras[1].detect_fps);
//  3. apply environment overrides (see below);
//  4. resolve secrets: passwords and tokens are never written inline, a
//     `*_env` key names an environment variable and a `*_file` key names a
//     file holding the value; both become a [Secret] that never prints;
//  5. validate every field and the relations between fields.
//
// Every step collects its problems instead of stopping at the first one, so
// an installer sees everything wrong with a file at once. The error is an
// [*Errors] listing one [Problem] per line.
//
// # Environment overrides
//
// Every scalar key outside the lists (cameras, roi, ice_servers) can be
// overridden by an environment variable named SRDGD_ followed by the key path
// upper-cased with dots replaced by underscores:
//
//	log.level                      SRDGD_LOG_LEVEL=debug
//	srdg.scale                     SRDGD_SRDG_SCALE=16
//	publish.mqtt.broker            SRDGD_PUBLISH_MQTT_BROKER=tcp://10.0.0.2:1883
//	publish.http.listen            SRDGD_PUBLISH_HTTP_LISTEN=0.0.0.0:8080
//
// The value is read like a YAML scalar of the key's type (durations as Go
// durations, booleans as true/false). Lists of strings (srdg.providers,
// publish.webrtc.nat_1to1_ips, ice_addresses) take a comma-separated value; an empty value
// means an empty list. [EnvNames] lists every accepted name. [Load] also
// reports any other SRDGD_* variable in the process environment as a problem
// (a misspelt override must not be silently ignored), except SRDGD_CONFIG
// and the variables that the file itself names in a `*_env` key.
package config

import (
	"io"
	"log/slog"
	"path/filepath"
	"time"
)

// Version is the only schema version this package reads.
const Version = 1

// Config is the whole daemon configuration.
type Config struct {
	// Version of the schema. Required; the only supported value is 1.
	// Default: 1 (but the file must still state it).
	Version int `yaml:"version"`
	// Log configures the daemon's logger. Default: see [Log].
	Log Log `yaml:"log"`
	// Daemon configures process lifecycle. Default: see [Daemon].
	Daemon Daemon `yaml:"daemon"`
	// Storage configures where state, models and the spool live. Default: see [Storage].
	Storage Storage `yaml:"storage"`
	// Cameras to pull. An empty list is valid here; `srdgd run` decides
	// whether it may run without cameras. Default: empty.
	Cameras []Camera `yaml:"cameras"`
	// Detect configures face detection and tracking. Default: see [Detect].
	Detect Detect `yaml:"detect"`
	// SRDG configures the super-resolution engine. Default: see [SRDG].
	SRDG SRDG `yaml:"srdg"`
	// Match configures embedding and the gallery. Default: see [Match].
	Match Match `yaml:"match"`
	// Publish configures alerts, the HTTP API and the live view. Default: see [Publish].
	Publish Publish `yaml:"publish"`
}

// Log configures the daemon's logger.
type Log struct {
	// Level is the minimum severity logged: debug, info, warn or error. Default: info.
	Level string `yaml:"level"`
	// Format of log lines: text or json. Default: text.
	Format string `yaml:"format"`
}

// SlogLevel returns Level as a slog level; an unknown level maps to info
// (Load rejects unknown levels, so this only matters for hand-built configs).
func (l Log) SlogLevel() slog.Level {
	switch l.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// Logger is the logger the settings ask for, writing to w.
func (l Log) Logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: l.SlogLevel()}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Daemon configures process lifecycle.
type Daemon struct {
	// ShutdownTimeout bounds how long components may take to drain after
	// SIGTERM before the process exits anyway. Must be > 0. Default: 10s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// Storage configures where the daemon keeps files.
type Storage struct {
	// StateDir holds the gallery, the spool, the TensorRT cache and hit
	// records. Default: /var/lib/srdgd.
	StateDir string `yaml:"state_dir"`
	// ModelsDir holds the ONNX models (and the demo's faces in demo/); model
	// paths left empty are looked up here. Default: "" (search: beside the
	// binary, /usr/share/srdgd/models, models/dist of a source tree around
	// the working directory; internal/locate, README "Where srdgd finds its
	// files").
	ModelsDir string `yaml:"models_dir"`
	// SpoolDir holds alerts waiting for the MQTT broker.
	// Default: "" (meaning <state_dir>/spool).
	SpoolDir string `yaml:"spool_dir"`
	// HitRetention is how long hit records and SR crops are kept; 0 keeps
	// them forever. Default: 720h (30 days).
	HitRetention time.Duration `yaml:"hit_retention"`
	// MinFreeBytes is the free space, in bytes, below which the daemon stops
	// writing hits and spool entries (oldest are dropped first).
	// Default: 1073741824 (1 GiB).
	MinFreeBytes int64 `yaml:"min_free_bytes"`
}

// Camera is one RTSP source.
type Camera struct {
	// Name identifies the camera in logs, metrics and MQTT topics, so it is
	// limited to 1-32 characters from [a-z0-9_-] and must be unique.
	// Required. Default: none.
	Name string `yaml:"name"`
	// URL of the stream, rtsp:// or rtsps://, without credentials.
	// Required. Default: none.
	URL string `yaml:"url"`
	// Username for RTSP authentication. Default: "" (no authentication).
	Username string `yaml:"username"`
	// PasswordEnv names the environment variable holding the RTSP password.
	// Default: "".
	PasswordEnv string `yaml:"password_env"`
	// PasswordFile is a file holding the RTSP password (one trailing newline
	// is trimmed). Default: "".
	PasswordFile string `yaml:"password_file"`
	// Password is resolved from PasswordEnv or PasswordFile by Load.
	Password Secret `yaml:"-"`
	// Transport for RTP: auto (try UDP, fall back to TCP), tcp or udp.
	// Default: auto.
	Transport string `yaml:"transport"`
	// TLSInsecure skips certificate verification for rtsps:// URLs. Prefer
	// TLSFingerprint. Default: false.
	TLSInsecure bool `yaml:"tls_insecure"`
	// TLSFingerprint pins the rtsps:// server certificate by the SHA-256 of
	// its DER bytes, 64 hex digits in either case (hex.DecodeString reads
	// it). Default: "" (verify with system roots).
	TLSFingerprint string `yaml:"tls_fingerprint"`
	// ROI lists regions of interest in normalised frame coordinates; faces
	// outside every region are ignored. Default: empty (the whole frame).
	ROI []Rect `yaml:"roi"`
	// FaceMinPx is the smallest face height, in pixels, handed to SR.
	// Default: 8.
	FaceMinPx int `yaml:"face_min_px"`
	// FaceMaxPx is the largest face height, in pixels, handed to SR; must
	// exceed FaceMinPx. Default: 256.
	FaceMaxPx int `yaml:"face_max_px"`
	// DetectFPS is how many frames per second, at most, go to detection;
	// in (0, 60]. Default: 5.
	DetectFPS float64 `yaml:"detect_fps"`
	// Enabled cameras are pulled; disabled ones are kept in the file only.
	// Default: true.
	Enabled bool `yaml:"enabled"`
	// Reconnect is the backoff between connection attempts. Default: see [Backoff].
	Reconnect Backoff `yaml:"reconnect"`
	// Attributes forces attribute labels for faces from this camera, keys
	// from male, glasses, no_beard, values 0 or 1 (see srdg.attributes.policy).
	// Default: empty (nothing forced).
	Attributes map[string]int `yaml:"attributes"`
	// ThresholdOffset and MarginOffset override the match decision for
	// faces from this camera: added to the identification threshold and
	// the margin they are held to (match.sr.x<scale> for a hit, the
	// calibrated setting for a visit), positive stricter, in [-0.3, 0.3].
	// A person's override (gallery) adds to it. Default: 0 (none).
	ThresholdOffset float64 `yaml:"threshold_offset"`
	// MarginOffset: see ThresholdOffset. Default: 0 (none).
	MarginOffset float64 `yaml:"margin_offset"`
}

// Rect is a rectangle in normalised frame coordinates: (0,0) is the top-left
// corner and (1,1) the bottom-right one.
type Rect struct {
	// X of the left edge, in [0, 1). Default: 0.
	X float64 `yaml:"x"`
	// Y of the top edge, in [0, 1). Default: 0.
	Y float64 `yaml:"y"`
	// W is the width, in (0, 1]; X+W must not exceed 1. Default: 0 (must be set).
	W float64 `yaml:"w"`
	// H is the height, in (0, 1]; Y+H must not exceed 1. Default: 0 (must be set).
	H float64 `yaml:"h"`
}

// Backoff is an exponential backoff with jitter, capped at Max and reset to
// Initial once a connection has stayed healthy for ResetAfter.
type Backoff struct {
	// Initial wait after the first failure. Must be > 0. Default: 1s.
	Initial time.Duration `yaml:"initial"`
	// Max caps the wait; must be >= Initial. Default: 30s.
	Max time.Duration `yaml:"max"`
	// ResetAfter is how long a session must stay up before the wait goes
	// back to Initial. Must be > 0. Default: 60s.
	ResetAfter time.Duration `yaml:"reset_after"`
	// AuthRetry is the wait after the camera rejected the credentials 3
	// times in a row (state auth_failed); it doubles per further rejection up
	// to AuthRetryMax, so that a wrong password does not lock the camera's
	// account. Must be > 0. Default: 5m.
	AuthRetry time.Duration `yaml:"auth_retry"`
	// AuthRetryMax caps that wait; must be >= AuthRetry. Default: 1h.
	AuthRetryMax time.Duration `yaml:"auth_retry_max"`
}

// Detect configures face detection, tracking and quality gates.
type Detect struct {
	// Detector is blazeface (ONNX) or haar (OpenCV cascade). Default: blazeface.
	Detector string `yaml:"detector"`
	// BlazefaceModel is the BlazeFace ONNX file.
	// Default: "" (meaning <models_dir>/blazeface.onnx).
	BlazefaceModel string `yaml:"blazeface_model"`
	// HaarCascade is the OpenCV cascade XML used when detector is haar.
	// Default: /usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml.
	HaarCascade string `yaml:"haar_cascade"`
	// MinScore is the detector confidence, in [0, 1], below which a box is
	// dropped. Default: 0.5.
	MinScore float64 `yaml:"min_score"`
	// Tile runs the detector on overlapping tiles so small faces keep enough
	// pixels. Default: true.
	Tile bool `yaml:"tile"`
	// TileSize is the tile edge in pixels, in [32, 4096]. Default: 320.
	TileSize int `yaml:"tile_size"`
	// Upscale is the factor, in [1, 8], tiles are enlarged by before
	// detection. Default: 2.0.
	Upscale float64 `yaml:"upscale"`
	// FrameBudget is the detection time per frame after which remaining
	// tiles are skipped. Must be > 0. Default: 150ms.
	FrameBudget time.Duration `yaml:"frame_budget"`
	// TrackTimeout is the gap tolerance: a track coasts on its predicted
	// motion while the detector misses the face and ends when it has not been
	// seen for this long. A frame cut short by frame_budget searches only part
	// of the frame, so a face may go unseen for seconds. Must be > 0.
	// Default: 6s.
	TrackTimeout time.Duration `yaml:"track_timeout"`
	// IOUThreshold is the box overlap, in (0, 1], that links a detection to
	// a track. Default: 0.3.
	IOUThreshold float64 `yaml:"iou_threshold"`
	// Track tunes how detections are linked into tracks. Default: see [Track].
	Track Track `yaml:"track"`
	// Quality gates a best shot must pass. Default: see [Quality].
	Quality Quality `yaml:"quality"`
	// QueueSize is the number of face tracks buffered towards SR, >= 1; the
	// oldest is dropped when full. Default: 4.
	QueueSize int `yaml:"queue_size"`
	// QueuePolicy is how that queue shares SR among the tracks when faces
	// arrive faster than SR keeps up: fair (each track's probes in order;
	// SR takes next the track that has had the fewest shots, and a full
	// queue drops from the track with the most waiting, so every person in
	// view gets shots) or fifo (oldest first, the oldest dropped). fair
	// spreads a short SR budget to one shot per person, which names fewer
	// people than fifo's few visits with several shots (README "Visits").
	// Default: fifo.
	QueuePolicy string `yaml:"queue_policy"`
}

// Track tunes the tracker's association beyond box overlap.
type Track struct {
	// MaxSpeed, in face heights per second, in (0, 1000]: how far a face seen
	// only once may have moved per second of gap (a walking person covers
	// about 7). Default: 10.
	MaxSpeed float64 `yaml:"max_speed"`
	// SpeedUncertainty, in face heights per second, in (0, 1000]: how far the
	// constant-velocity prediction of a face seen twice or more may drift per
	// second of gap. Default: 2.
	SpeedUncertainty float64 `yaml:"speed_uncertainty"`
	// Appearance also compares the colours of the face and the body below it
	// (a histogram of a few hundred pixels per face) to link detections.
	// Default: true.
	Appearance bool `yaml:"appearance"`
	// MinAppearance, in (0, 1]: the least colour similarity for linking a
	// detection that does not overlap the track's predicted box. Default: 0.6.
	MinAppearance float64 `yaml:"min_appearance"`
	// Hints: in every analysed frame BlazeFace also looks at each live
	// track's predicted box (a window of 3 face heights centred on it,
	// before the budgeted search of the whole frame), so a tracked face is
	// detected in most frames rather than when the rotation comes round to
	// it. Haar ignores it. On the demo scene it made detections dense but
	// not more people named, and more crossings got no visit (SR, not
	// detection, limits the shots on a small CPU: README "Tracking").
	// Default: false.
	Hints bool `yaml:"hints"`
}

// Quality gates for the best shot of a track.
type Quality struct {
	// MinSharpness, >= 0: detect.Quality.Sharpness (the Laplacian variance of
	// the face divided by its gray variance, size-normalised; see the detect
	// package), below which a crop is too blurred. Sharp CelebA faces pasted at 8-64 px score
	// 0.5-0.65 (median); a 1 px Gaussian blur brings 90 % below 0.2.
	// Default: 0.22.
	MinSharpness float64 `yaml:"min_sharpness"`
	// MinFrontalness in [0, 1]; 1 is a frontal face (from the landmarks;
	// 7 % of CelebA's aligned faces are below 0.3). Default: 0.3.
	MinFrontalness float64 `yaml:"min_frontalness"`
	// MinFacePx is the smallest face height in pixels, >= 1. Default: 8.
	MinFacePx int `yaml:"min_face_px"`
}

// SRDG configures the attribute-guided score-diffusion super-resolution engine.
type SRDG struct {
	// Scale is the upscaling factor: 8 (16x16 -> 128x128) or 16 (8x8 -> 128x128).
	// Default: 8.
	Scale int `yaml:"scale"`
	// ScoreModel is the score network ONNX file.
	// Default: "" (meaning <models_dir>/score_x8.onnx or score_x16.onnx by scale).
	ScoreModel string `yaml:"score_model"`
	// GuidanceModel is the attribute classifier used for guidance.
	// Default: "" (meaning <models_dir>/guidance.onnx).
	GuidanceModel string `yaml:"guidance_model"`
	// AttrModel predicts attributes from the LR crop.
	// Default: "" (meaning <models_dir>/lr_attrs_x8.onnx or lr_attrs_x16.onnx by scale).
	AttrModel string `yaml:"attr_model"`
	// Sampler is one of [Samplers]. Default: fast.
	Sampler string `yaml:"sampler"`
	// Steps is the number of sampler steps, >= 0; 0 uses the sampler's own
	// default. Default: 0.
	Steps int `yaml:"steps"`
	// GuidanceWeight scales the classifier gradient, >= 0; 0 uses the
	// sampler's calibrated default (reference 500 as in the released code,
	// fast 85, ode 29: the short samplers guide harder at equal weight). To
	// turn guidance off set attributes.policy to off. Default: 0.
	GuidanceWeight float64 `yaml:"guidance_weight"`
	// CorrectorSteps is the number of Langevin corrector steps per predictor
	// step, in [-1, 100]: 0 uses the sampler's default (reference 2, fast 1),
	// -1 runs none. Default: 0.
	CorrectorSteps int `yaml:"corrector_steps"`
	// SNR is the corrector's signal-to-noise ratio, > 0. Default: 0.16.
	SNR float64 `yaml:"snr"`
	// Eps is the smallest diffusion time sampled, in (0, 1). Default: 1e-5.
	Eps float64 `yaml:"eps"`
	// Attributes selects where guidance labels come from. Default: see [AttributePolicy].
	Attributes AttributePolicy `yaml:"attributes"`
	// Providers are ONNX Runtime execution providers in order of preference,
	// from tensorrt, cuda, cpu; not empty, no repeats.
	// Default: [tensorrt, cuda, cpu].
	Providers []string `yaml:"providers"`
	// ORTLibrary is the path of libonnxruntime.so.1. Default: "" (search:
	// beside the binary, /usr/lib/srdgd, third_party/onnxruntime/lib of a
	// source tree around the working directory, the system library folders;
	// internal/locate).
	ORTLibrary string `yaml:"ort_library"`
	// TRTCacheDir holds TensorRT engines built from the models.
	// Default: "" (meaning <state_dir>/trt-cache).
	TRTCacheDir string `yaml:"trt_cache_dir"`
	// TRTFP16 lets TensorRT use half precision. Default: true.
	TRTFP16 bool `yaml:"trt_fp16"`
	// IntraThreads for ONNX Runtime, >= 0; 0 lets ONNX Runtime choose. Default: 0.
	IntraThreads int `yaml:"intra_threads"`
	// InterThreads for ONNX Runtime, >= 0; 0 lets ONNX Runtime choose. Default: 0.
	InterThreads int `yaml:"inter_threads"`
	// BatchSize is the most faces super-resolved together, in [1, 64]. Default: 4.
	BatchSize int `yaml:"batch_size"`
	// DirectSide is the crop side in frame pixels (the SR framing square,
	// about 1.25 x the face box height) from which a face is not
	// super-resolved but read as it is: the square bicubic-upscaled from the
	// frame's own pixels, decided by its own calibration. 0 super-resolves
	// every face; else at least 19. On CelebA test faces the SR embedder
	// reads a 25 px square directly better than SR x8 restores it from the
	// 16x16 probe it would be shrunk to (bench/RESULTS.md "Direct path"),
	// at the cost of an embedding instead of an SR run. Default: 24.
	DirectSide int `yaml:"direct_side"`
	// LatencyBudget is how long a face may wait for a batch to fill.
	// Must be > 0. Default: 2s.
	LatencyBudget time.Duration `yaml:"latency_budget"`
	// Seed for the sampler's noise; 0 picks a random seed per run. Default: 0.
	Seed int64 `yaml:"seed"`
}

// AttributePolicy selects where attribute labels for guidance come from.
type AttributePolicy struct {
	// Policy is predict (labels predicted from the LR crop; a camera's
	// attributes override single labels), operator (only the camera's
	// attributes; labels it does not set are not guided) or off (no attribute
	// guidance). Default: predict.
	Policy string `yaml:"policy"`
	// AbstainThreshold is the confidence, in (0.5, 1], a predicted label
	// needs to be used; below it the label is not guided. Default: 0.8.
	AbstainThreshold float64 `yaml:"abstain_threshold"`
}

// Match configures face embeddings and the gallery.
type Match struct {
	// EmbedderModel is the face embedding ONNX file; face_landmarks68.onnx
	// is loaded from the same folder. Any file of kind face_embedder works
	// (its metadata gives input size and alignment), e.g. the ones `make
	// models` builds, <models_dir>/face_embedder_faceres.onnx.
	// Default: "" (meaning <models_dir>/face_embedder.onnx).
	EmbedderModel string `yaml:"embedder_model"`
	// SREmbedderModel is the face embedding ONNX file that reads
	// super-resolved faces (every face the daemon matches) while
	// embedder_model reads photos: the gallery keeps both models'
	// descriptors of every photo (match.PairEmbedder). On CelebA, FaceRes
	// identifies SR faces from 16x16 about 1.7x as often as face-api, which
	// is better on photos (README, "Evaluation"). "same": embedder_model
	// reads both. A gallery made before this key (or with another value)
	// is re-embedded with `srdgd gallery reembed`.
	// Default: "" (meaning <models_dir>/face_embedder_faceres.onnx when it
	// is there, which `make models` builds and the Debian package leaves
	// out; else "same").
	SREmbedderModel string `yaml:"sr_embedder_model"`
	// SRAdapters loads <models_dir>/sr_adapter_x8.onnx and
	// sr_adapter_x16.onnx, when present, to map the descriptors of faces
	// restored at that scale (models/train/sr_adapter.py); an adapter made
	// for another embedder is refused. Off: none measured so far improved
	// identification (models/README.md, "SR adapter"), and the SR
	// thresholds, visit calibration and template maps were measured
	// without one. Default: false.
	SRAdapters bool `yaml:"sr_adapters"`
	// GalleryPath is the gallery database.
	// Default: "" (meaning <state_dir>/gallery.db).
	GalleryPath string `yaml:"gallery_path"`
	// KeyFile holds the key that encrypts the gallery at rest; required when
	// encrypt is true. Default: /etc/srdgd/gallery.key.
	KeyFile string `yaml:"key_file"`
	// Encrypt the gallery at rest. Default: true.
	Encrypt bool `yaml:"encrypt"`
	// Threshold is the cosine similarity, in [-1, 1], a best match needs to
	// count as a hit. The default was measured on CelebA with the packaged
	// face-api embedder (bench/RESULTS.md, Match): about 1e-4 false matches
	// per impostor pair on HR faces. Default: 0.9433.
	Threshold float64 `yaml:"threshold"`
	// Margin is how far, in cosine similarity within [0, 2], the best
	// identity must lead the second. Default: 0.02.
	Margin float64 `yaml:"margin"`
	// TopK is the number of candidates reported per face, in [1, 100]. Default: 5.
	TopK int `yaml:"top_k"`
	// VerifyThreshold is the cosine similarity, in [-1, 1], for 1:1
	// verification (false-match rate 1e-3 on CelebA HR faces). Default: 0.9309.
	VerifyThreshold float64 `yaml:"verify_threshold"`
	// SR holds the identification threshold and margin for super-resolved
	// faces, per scale: every face the daemon matches is one, and their
	// similarities are distributed differently from photos' (at 16x the
	// photo setting accepts 1.5 % of unknown people). Threshold and Margin
	// above apply to photos (gallery search without --scale). Default: see [SRMatch].
	SR SRMatch `yaml:"sr"`
	// Visit fuses the shots of one person's pass in front of a camera into
	// one visit with one decision and its events. Default: see [Visit].
	Visit Visit `yaml:"visit"`
	// Feedback says how operators' verdicts on hits (srdgd gallery feedback,
	// POST /api/v1/hits/{id}/feedback) take part in the search of
	// super-resolved faces. Default: see [Feedback].
	Feedback Feedback `yaml:"feedback"`
}

// Feedback configures the use of confirmed and rejected sightings. They are
// stored either way; these keys say whether search uses them (README,
// "Feedback", for what each measured on CelebA).
type Feedback struct {
	// Templates: a sighting confirmed as a person is one more template of
	// theirs (its SR-vs-SR similarity mapped onto the photo scale by the
	// shipped measured map of the embedder). Default: true.
	Templates bool `yaml:"templates"`
	// Negatives: a face at least as close to a sighting rejected as a
	// person (less NegativeMargin) as to the person is not matched to
	// them. Off by default: on CelebA it did not lower false accepts
	// (README, "Feedback"). Default: false.
	Negatives bool `yaml:"negatives"`
	// NegativeMargin, in [0, 0.2]. Default: 0.
	NegativeMargin float64 `yaml:"negative_margin"`
}

// Visit configures visits: how many shots of a track are super-resolved
// and fused, when a visit ends and how often one person alerts.
type Visit struct {
	// MaxShots, in [1, 64], is K: the most probes the detector sends per
	// track (spread over time) and the most shots a visit fuses (a better
	// shot replaces the worst kept one). Each costs one SR run. Default: 4.
	MaxShots int `yaml:"max_shots"`
	// Samples, in [1, 8], is M: posterior SR samples per shot (other
	// noise, in the same SR batch), their descriptors fused into the
	// shot's. Each costs one SR run, so M = 2 halves the shots the SR stage
	// keeps up with. The visit's decision uses the calibration measured
	// for one sample per shot. Default: 1 (README "Visits").
	Samples int `yaml:"samples"`
	// MinInterval, >= 0, is the least frame time between two probes of a
	// track that are not clearly better shots, and between two fused shots
	// (a closer one replaces the other when better). Default: 1s.
	MinInterval time.Duration `yaml:"min_interval"`
	// Cooldown, >= 0: a visit naming a person already named on the same
	// camera less than this before (someone lingering, or leaving and
	// coming back) is published with "repeat": true and does not alert
	// (no matches/<name> message). Default: 2m.
	Cooldown time.Duration `yaml:"cooldown"`
	// Timeout, > 0, ends a visit no shot or track-end notice has reached for
	// this long (a fallback: a visit normally ends with its track,
	// detect.track_timeout after the face was last seen). Counted from the
	// last arrival at the match stage, which is SR seconds after the
	// frame. Default: 1m.
	Timeout time.Duration `yaml:"timeout"`
	// MaxOpen, in [1, 10000], bounds the visits open at once; one more ends
	// the one idle longest. Default: 64.
	MaxOpen int `yaml:"max_open"`
	// MinConfidenceChange, in (0, 1], makes a change material: an update is
	// published when the decided person or known/unknown changes, or the
	// confidence moves by at least this from the last event. Default: 0.1.
	MinConfidenceChange float64 `yaml:"min_confidence_change"`
	// Duplicate, in (0, 1]: two shots whose descriptors have at least this
	// cosine similarity are one observation; the better one is kept.
	// Default: 0.995.
	Duplicate float64 `yaml:"duplicate"`
}

// SRMatch holds the identification settings for faces super-resolved at 8x
// and at 16x. Left unset (threshold and margin both 0), each is the setting
// measured for the embedder that reads SR faces (match.sr_embedder_model)
// with the shipped score models and the fast sampler on CelebA validation
// probes and checked on the test probes (match.DefaultSRThresholds,
// README "Evaluation"); the daemon refuses to start when that embedder has
// none. Re-derive them (bench/srmatch/run.sh) after changing the score model,
// the sampler or the embedder.
type SRMatch struct {
	// X8 is for faces restored from 16x16: the highest identification rate
	// with at most 1 % of unknown people accepted (200-person gallery).
	// Default: unset (FaceRes: threshold 0.664, margin 0; face-api: 0.94,
	// 0.02).
	X8 SRThreshold `yaml:"x8"`
	// X16 is for faces restored from 8x8. No setting identified anyone at
	// 1 % unknown accepted, so this one only keeps false alarms under 1 %;
	// faces hallucinated from 8x8 resemble someone in the gallery more
	// often than photos do. Default: unset (see match.DefaultSRThresholds;
	// face-api: 0.945, 0.02).
	X16 SRThreshold `yaml:"x16"`
}

// SRThreshold is one scale's identification setting.
type SRThreshold struct {
	// Threshold is the cosine similarity, in [-1, 1], the best match needs.
	// Default: per scale, see [SRMatch].
	Threshold float64 `yaml:"threshold"`
	// Margin is how far, in cosine similarity within [0, 2], the best
	// identity must lead the second. Default: per scale, see [SRMatch].
	Margin float64 `yaml:"margin"`
}

// Unset is true when neither value is given: the measured setting of the
// SR embedder applies.
func (t SRThreshold) Unset() bool { return t.Threshold == 0 && t.Margin == 0 }

// SRThresholds returns the identification threshold and margin for faces
// super-resolved at scale (8 or 16), set false when they are unset (the
// caller takes the SR embedder's measured setting); any other scale gets
// the photo ones.
func (m *Match) SRThresholds(scale int) (threshold, margin float64, set bool) {
	switch scale {
	case 8:
		return m.SR.X8.Threshold, m.SR.X8.Margin, !m.SR.X8.Unset()
	case 16:
		return m.SR.X16.Threshold, m.SR.X16.Margin, !m.SR.X16.Unset()
	}
	return m.Threshold, m.Margin, true
}

// SameEmbedder is the match.sr_embedder_model value that makes
// embedder_model read super-resolved faces too.
const SameEmbedder = "same"

// Publish configures the outputs.
type Publish struct {
	// MQTT alerts. Default: see [MQTT].
	MQTT MQTT `yaml:"mqtt"`
	// HTTP API and web page. Default: see [HTTP].
	HTTP HTTP `yaml:"http"`
	// WebRTC live view. Default: see [WebRTC].
	WebRTC WebRTC `yaml:"webrtc"`
}

// MQTT configures alerts over MQTT.
type MQTT struct {
	// Enabled turns MQTT publishing on. Default: true.
	Enabled bool `yaml:"enabled"`
	// Broker is the external broker URL (tcp://, ssl://, tls://, mqtt://,
	// mqtts://, ws:// or wss://), without credentials.
	// Default: "" (start the embedded broker).
	Broker string `yaml:"broker"`
	// EmbeddedListen is the address of the embedded broker, used when broker
	// is empty; a non-loopback address needs username and a password.
	// Default: 127.0.0.1:1883.
	EmbeddedListen string `yaml:"embedded_listen"`
	// TopicPrefix starts every topic; no wildcards, no leading, trailing or
	// double slash, no leading $. Default: srdgd.
	TopicPrefix string `yaml:"topic_prefix"`
	// ClientID of the MQTT session. Default: "" (srdgd-<hostname>, computed
	// at run time).
	ClientID string `yaml:"client_id"`
	// Username for the broker (and required from clients of the embedded
	// broker when set). Default: "".
	Username string `yaml:"username"`
	// PasswordEnv names the environment variable holding the broker password.
	// Default: "".
	PasswordEnv string `yaml:"password_env"`
	// PasswordFile is a file holding the broker password. Default: "".
	PasswordFile string `yaml:"password_file"`
	// Password is resolved from PasswordEnv or PasswordFile by Load.
	Password Secret `yaml:"-"`
	// TLS for an external TLS broker (ssl://, tls://, mqtts://, wss://).
	// Default: see [ClientTLS].
	TLS ClientTLS `yaml:"tls"`
	// QoS of alert messages: 0, 1 or 2. Default: 1.
	QoS int `yaml:"qos"`
	// Keepalive interval, >= 1s. Default: 30s.
	Keepalive time.Duration `yaml:"keepalive"`
	// SpoolMaxMessages caps alerts kept on disk while the broker is away,
	// >= 1. Default: 10000.
	SpoolMaxMessages int `yaml:"spool_max_messages"`
	// SpoolMaxBytes caps the spool size in bytes, >= 1. Default: 268435456 (256 MiB).
	SpoolMaxBytes int64 `yaml:"spool_max_bytes"`
	// HADiscovery publishes Home Assistant discovery messages.
	// Default: see [HADiscovery].
	HADiscovery HADiscovery `yaml:"ha_discovery"`
	// IncludeImage attaches the SR face crop (JPEG) to alerts. Default: true.
	IncludeImage bool `yaml:"include_image"`
	// Hits also publishes every super-resolved shot on <prefix>/<camera>/hit
	// (the per-shot stream; visits are on <prefix>/<camera>/visit either
	// way, and the history and the API keep every hit). Default: false.
	Hits bool `yaml:"hits"`
}

// ClientTLS configures a TLS client.
type ClientTLS struct {
	// CAFile is a PEM bundle of roots to trust. Default: "" (system roots).
	CAFile string `yaml:"ca_file"`
	// CertFile is a PEM client certificate; set with key_file or not at all.
	// Default: "".
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM key of cert_file. Default: "".
	KeyFile string `yaml:"key_file"`
	// InsecureSkipVerify turns certificate verification off. Default: false.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// HADiscovery configures Home Assistant MQTT discovery.
type HADiscovery struct {
	// Enabled turns discovery messages on. Default: false.
	Enabled bool `yaml:"enabled"`
	// Prefix is Home Assistant's discovery topic prefix, same rules as
	// topic_prefix. Default: homeassistant.
	Prefix string `yaml:"prefix"`
	// People adds per-person entities for everyone a visit names (last
	// camera, last seen, a "seen in the last seen_window" binary sensor),
	// their state retained on <topic_prefix>/people/<person_id>/state.
	// Default: true (with enabled).
	People bool `yaml:"people"`
	// SeenWindow is how long a person's "seen" sensor stays on after a
	// sighting; 1m to 24h. Default: 10m.
	SeenWindow time.Duration `yaml:"seen_window"`
}

// HTTP configures the HTTP API and web page.
type HTTP struct {
	// Enabled turns the HTTP server on. Default: true.
	Enabled bool `yaml:"enabled"`
	// Listen address, host:port. A non-loopback address needs a token.
	// Default: 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// TokenEnv names the environment variable holding the bearer token.
	// Default: "".
	TokenEnv string `yaml:"token_env"`
	// TokenFile is a file holding the bearer token. Default: "".
	TokenFile string `yaml:"token_file"`
	// Token is resolved from TokenEnv or TokenFile by Load.
	Token Secret `yaml:"-"`
	// TLSCertFile is the PEM server certificate; set with tls_key_file or
	// not at all. Default: "" (plain HTTP).
	TLSCertFile string `yaml:"tls_cert_file"`
	// TLSKeyFile is the PEM key of tls_cert_file. Default: "".
	TLSKeyFile string `yaml:"tls_key_file"`
	// MaxBodyBytes caps request bodies, in bytes, >= 1. Default: 8388608 (8 MiB).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
}

// WebRTC configures the live view.
type WebRTC struct {
	// Enabled turns the WebRTC live view on. Default: true.
	Enabled bool `yaml:"enabled"`
	// ICEServers are STUN/TURN servers offered to peers. Default: empty.
	ICEServers []ICEServer `yaml:"ice_servers"`
	// UDPPortMin is the lowest UDP port for ICE; set with udp_port_max or
	// neither. Default: 0 (any port).
	UDPPortMin int `yaml:"udp_port_min"`
	// UDPPortMax is the highest UDP port for ICE, >= udp_port_min.
	// Default: 0 (any port).
	UDPPortMax int `yaml:"udp_port_max"`
	// TCPListen is an address for ICE over TCP, such as ":8189".
	// Default: "" (off).
	TCPListen string `yaml:"tcp_listen"`
	// NAT1To1IPs are public IPs announced as host candidates when the box
	// sits behind a 1:1 NAT. Default: empty.
	NAT1To1IPs []string `yaml:"nat_1to1_ips"`
	// ICEAddresses are the only local IP addresses ICE binds sockets to and
	// announces ("0.0.0.0": every IPv4 address, "::": every IPv6 one).
	// Default: empty (the address of publish.http.listen: loopback when
	// HTTP is on loopback, every interface when it is 0.0.0.0, :: or empty).
	ICEAddresses []string `yaml:"ice_addresses"`
	// MDNS resolves viewers' mDNS (.local) candidates, which binds
	// 0.0.0.0:5353 and [::]:5353; viewers connect without it.
	// Default: false.
	MDNS bool `yaml:"mdns"`
	// ConnectTimeout ends a viewer session whose peer has not connected
	// (ICE and DTLS) this long after the answer, freeing its slot; 1s to 5m.
	// Default: 5s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
}

// ICEServer is one STUN or TURN server.
type ICEServer struct {
	// URLs of the server: stun:, stuns:, turn: or turns:. Required. Default: none.
	URLs []string `yaml:"urls"`
	// Username for TURN. Default: "".
	Username string `yaml:"username"`
	// CredentialEnv names the environment variable holding the TURN
	// credential. Default: "".
	CredentialEnv string `yaml:"credential_env"`
	// CredentialFile is a file holding the TURN credential. Default: "".
	CredentialFile string `yaml:"credential_file"`
	// Credential is resolved from CredentialEnv or CredentialFile by Load.
	Credential Secret `yaml:"-"`
}

// Samplers are the accepted srdg.sampler names. cmd/srdgd may append the
// names the srdg package registers before calling Load, so that this package
// keeps no import of srdg.
var Samplers = []string{"reference", "fast", "ode"}

// Default returns the configuration used for every key the file leaves out.
// It is the only place defaults are written; the doc comment of each field
// repeats its default.
func Default() *Config {
	return &Config{
		Version: Version,
		Log:     Log{Level: "info", Format: "text"},
		Daemon:  Daemon{ShutdownTimeout: 10 * time.Second},
		Storage: Storage{
			StateDir:     "/var/lib/srdgd",
			ModelsDir:    "",
			HitRetention: 720 * time.Hour,
			MinFreeBytes: 1 << 30,
		},
		Detect: Detect{
			Detector:     "blazeface",
			HaarCascade:  "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml",
			MinScore:     0.5,
			Tile:         true,
			TileSize:     320,
			Upscale:      2.0,
			FrameBudget:  150 * time.Millisecond,
			TrackTimeout: 6 * time.Second,
			IOUThreshold: 0.3,
			Track:        Track{MaxSpeed: 10, SpeedUncertainty: 2, Appearance: true, MinAppearance: 0.6, Hints: false},
			Quality:      Quality{MinSharpness: 0.22, MinFrontalness: 0.3, MinFacePx: 8},
			QueueSize:    4,
			QueuePolicy:  "fifo",
		},
		SRDG: SRDG{
			Scale:          8,
			Sampler:        "fast",
			GuidanceWeight: 0,
			CorrectorSteps: 0,
			SNR:            0.16,
			Eps:            1e-5,
			Attributes:     AttributePolicy{Policy: "predict", AbstainThreshold: 0.8},
			Providers:      []string{"tensorrt", "cuda", "cpu"},
			TRTFP16:        true,
			BatchSize:      4,
			DirectSide:     24,
			LatencyBudget:  2 * time.Second,
		},
		Match: Match{
			KeyFile:         "/etc/srdgd/gallery.key",
			Encrypt:         true,
			Threshold:       0.9433,
			Margin:          0.02,
			TopK:            5,
			VerifyThreshold: 0.9309,
			Visit: Visit{MaxShots: 4, Samples: 1, MinInterval: time.Second, Cooldown: 2 * time.Minute, Timeout: time.Minute,
				MaxOpen: 64, MinConfidenceChange: 0.1, Duplicate: 0.995},
			Feedback: Feedback{Templates: true, Negatives: false, NegativeMargin: 0},
		},
		Publish: Publish{
			MQTT: MQTT{
				Enabled:          true,
				EmbeddedListen:   "127.0.0.1:1883",
				TopicPrefix:      "srdgd",
				QoS:              1,
				Keepalive:        30 * time.Second,
				SpoolMaxMessages: 10000,
				SpoolMaxBytes:    256 << 20,
				HADiscovery:      HADiscovery{Prefix: "homeassistant", People: true, SeenWindow: 10 * time.Minute},
				IncludeImage:     true,
			},
			HTTP: HTTP{
				Enabled:      true,
				Listen:       "127.0.0.1:8080",
				MaxBodyBytes: 8 << 20,
			},
			WebRTC: WebRTC{Enabled: true, ConnectTimeout: 5 * time.Second},
		},
	}
}

// DefaultCamera returns the values a camera entry starts from before its
// keys are decoded. It belongs with Default: list entries have defaults too.
func DefaultCamera() Camera {
	return Camera{
		Transport: "auto",
		FaceMinPx: 8,
		FaceMaxPx: 256,
		DetectFPS: 5,
		Enabled:   true,
		Reconnect: Backoff{
			Initial:      time.Second,
			Max:          30 * time.Second,
			ResetAfter:   60 * time.Second,
			AuthRetry:    5 * time.Minute,
			AuthRetryMax: time.Hour,
		},
	}
}

// Paths are the file locations with the "" defaults filled in from
// storage.state_dir. (Model files left "" are searched for by
// internal/app, in storage.models_dir or internal/locate's order.)
type Paths struct {
	Spool    string
	TRTCache string
	Gallery  string
}

// Paths resolves every path whose default is derived from another key.
func (c *Config) Paths() Paths {
	state := c.Storage.StateDir
	or := func(v, dir, name string) string {
		if v != "" {
			return v
		}
		return filepath.Join(dir, name)
	}
	return Paths{
		Spool:    or(c.Storage.SpoolDir, state, "spool"),
		TRTCache: or(c.SRDG.TRTCacheDir, state, "trt-cache"),
		Gallery:  or(c.Match.GalleryPath, state, "gallery.db"),
	}
}
