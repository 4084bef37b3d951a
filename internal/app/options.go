package app

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/srdgd/srdgd/config"
	"github.com/srdgd/srdgd/detect"
	"github.com/srdgd/srdgd/hwtest"
	"github.com/srdgd/srdgd/ingest"
	"github.com/srdgd/srdgd/internal/locate"
	"github.com/srdgd/srdgd/internal/ort"
	"github.com/srdgd/srdgd/match"
	"github.com/srdgd/srdgd/publish/history"
	"github.com/srdgd/srdgd/publish/live"
	"github.com/srdgd/srdgd/publish/mqtt"
	"github.com/srdgd/srdgd/srdg"
)

// This file is the only mapping from the configuration to the components'
// option structs: the daemon (Build), the demo, hwtest, eval, sr and gallery
// commands all go through it, so that a config key means the same
// everywhere.

// Models is the model search of the config: storage.models_dir when set,
// else internal/locate's search order.
func Models(cfg *config.Config) locate.Models {
	return locate.Models{Dir: cfg.Storage.ModelsDir, DirKey: "storage.models_dir"}
}

// The model files: each is its key's value when set, else its default name
// searched for by Models; the error names the key to set and the paths
// tried.

// ScoreModel is srdg.score_model for scale (8 or 16; 0 = srdg.scale). An
// explicit srdg.score_model is only taken for srdg.scale.
func ScoreModel(cfg *config.Config, scale int) (string, error) {
	explicit := cfg.SRDG.ScoreModel
	if scale == 0 {
		scale = cfg.SRDG.Scale
	} else if scale != cfg.SRDG.Scale {
		explicit = ""
	}
	return Models(cfg).File("srdg.score_model", explicit, fmt.Sprintf("score_x%d.onnx", scale))
}

// BlazefaceModel is detect.blazeface_model.
func BlazefaceModel(cfg *config.Config) (string, error) {
	return Models(cfg).File("detect.blazeface_model", cfg.Detect.BlazefaceModel, "blazeface.onnx")
}

// EmbedderModel is match.embedder_model.
func EmbedderModel(cfg *config.Config) (string, error) {
	return Models(cfg).File("match.embedder_model", cfg.Match.EmbedderModel, "face_embedder.onnx")
}

// SREmbedderName is the default of match.sr_embedder_model, in the models
// folder.
const SREmbedderName = "face_embedder_faceres.onnx"

// SREmbedderModel is match.sr_embedder_model: the embedder file that reads
// super-resolved faces, "" when match.embedder_model reads them too (the
// value "same", the same file, or by default when the models folder has no
// SREmbedderName: `make models` builds it, the Debian package leaves it
// out).
func SREmbedderModel(cfg *config.Config) (string, error) {
	v := cfg.Match.SREmbedderModel
	if v == config.SameEmbedder {
		return "", nil
	}
	p, err := Models(cfg).File("match.sr_embedder_model", v, SREmbedderName)
	var nf *locate.NotFoundError
	if v == "" && errors.As(err, &nf) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if photo, err := EmbedderModel(cfg); err == nil && sameFile(photo, p) {
		return "", nil
	}
	return p, nil
}

func sameFile(a, b string) bool {
	sa, err := os.Stat(a)
	if err != nil {
		return false
	}
	sb, err := os.Stat(b)
	return err == nil && os.SameFile(sa, sb)
}

// LandmarksName is the landmarks model the embedder needs, in its folder.
const LandmarksName = "face_landmarks68.onnx"

// LandmarksModel is the landmarks model of the embedder at embedder: in its
// folder. The key to change is match.embedder_model when that is set, else
// storage.models_dir.
func LandmarksModel(cfg *config.Config, embedder string) (string, error) {
	p := filepath.Join(filepath.Dir(embedder), LandmarksName)
	if st, err := os.Stat(p); err == nil && !st.IsDir() {
		return p, nil
	}
	key, hint := "storage.models_dir", "the embedder's landmarks model must be in the folder of the embedder "+embedder+"; `make models` builds the default set in models/dist"
	if cfg.Match.EmbedderModel != "" {
		key, hint = "match.embedder_model", "the landmarks model is loaded from the folder of match.embedder_model: put "+LandmarksName+" there"
	}
	return "", &locate.NotFoundError{Key: key, What: LandmarksName, Tried: []string{p}, Hint: hint}
}

// SessionOptions are the ONNX Runtime settings of srdg.*.
func SessionOptions(cfg *config.Config) ort.SessionOptions {
	c := cfg.SRDG
	return ort.SessionOptions{Providers: c.Providers, IntraOpThreads: c.IntraThreads, InterOpThreads: c.InterThreads,
		TRTCacheDir: cfg.Paths().TRTCache, TRTFP16: c.TRTFP16}
}

// PhotoThresholds are the configured identification settings for photos.
func PhotoThresholds(cfg *config.Config) match.Thresholds {
	return match.Thresholds{Identify: cfg.Match.Threshold, Margin: cfg.Match.Margin, Verify: cfg.Match.VerifyThreshold}
}

// MatchThresholds are the identification settings for photos (srScale 0)
// or for faces super-resolved at srScale: match.sr.x<scale>, or where that
// is unset the setting measured for reader, the model that reads those
// faces (match.ReaderModel); an error names the key to set when there is
// none.
func MatchThresholds(cfg *config.Config, srScale int, reader string) (match.Thresholds, error) {
	th := PhotoThresholds(cfg)
	if srScale == 0 {
		return th, nil
	}
	var set bool
	th.Identify, th.Margin, set = cfg.Match.SRThresholds(srScale)
	if !set {
		d, ok := match.DefaultSRThresholds(reader, srScale)
		if !ok {
			return th, fmt.Errorf("match.sr.x%d: no measured setting for the embedder %s that reads super-resolved faces: set match.sr.x%d.threshold and margin (measure them with srdgd eval on validation faces, README \"Evaluation\")", srScale, reader, srScale)
		}
		th.Identify, th.Margin = d.Identify, d.Margin
	}
	fb := cfg.Match.Feedback
	th.Rule = match.TemplateRule{Templates: fb.Templates, Negatives: fb.Negatives, NegMargin: fb.NegativeMargin, Scale: srScale}
	return th, nil
}

// SRParams are the sampler settings of srdg.*. The schedule's sigma range
// comes from the score model (zero here: the engine's own).
func SRParams(cfg *config.Config) srdg.Params {
	c := cfg.SRDG
	return srdg.Params{Sampler: c.Sampler, Steps: c.Steps, W: c.GuidanceWeight, CorrectorSteps: c.CorrectorSteps, SNR: c.SNR,
		Schedule: srdg.Schedule{Eps: c.Eps}}
}

// The guidance-policy rule: which models srdg.attributes.policy needs.

// GuidanceModel is the guidance model's path (srdg.guidance_model), ""
// when the policy is off.
func GuidanceModel(cfg *config.Config) (string, error) {
	if cfg.SRDG.Attributes.Policy == "off" {
		return "", nil
	}
	return Models(cfg).File("srdg.guidance_model", cfg.SRDG.GuidanceModel, "guidance.onnx")
}

// AttrModel is the LR attribute model's path (srdg.attr_model), "" unless
// the policy is predict.
func AttrModel(cfg *config.Config) (string, error) {
	if cfg.SRDG.Attributes.Policy != "predict" {
		return "", nil
	}
	return Models(cfg).File("srdg.attr_model", cfg.SRDG.AttrModel, fmt.Sprintf("lr_attrs_x%d.onnx", cfg.SRDG.Scale))
}

// ForcedLabels maps each enabled camera with operator labels to them.
func ForcedLabels(cfg *config.Config) map[string]map[string]int {
	forced := map[string]map[string]int{}
	for _, cc := range cfg.Cameras {
		if cc.Enabled && len(cc.Attributes) > 0 {
			forced[cc.Name] = cc.Attributes
		}
	}
	return forced
}

// CameraOptions are one camera's ingest options.
func CameraOptions(cc config.Camera, log *slog.Logger) ingest.CameraOptions {
	return ingest.CameraOptions{
		Name: cc.Name, URL: cc.URL, Username: cc.Username, Password: cc.Password.Reveal(), Transport: cc.Transport,
		TLSInsecure: cc.TLSInsecure, TLSFingerprint: cc.TLSFingerprint,
		ReconnectInitial: cc.Reconnect.Initial, ReconnectMax: cc.Reconnect.Max, ReconnectResetAfter: cc.Reconnect.ResetAfter,
		AuthRetryInitial: cc.Reconnect.AuthRetry, AuthRetryMax: cc.Reconnect.AuthRetryMax,
		Logger: log, // ingest adds component and camera
	}
}

// CameraConfig is the named camera's section (defaults when absent).
func CameraConfig(cfg *config.Config, name string) config.Camera {
	for _, c := range cfg.Cameras {
		if c.Name == name {
			return c
		}
	}
	return config.DefaultCamera()
}

// DetectSearch is where and for which face sizes a camera's detector looks.
func DetectSearch(cfg *config.Config, cc config.Camera) detect.Search {
	s := detect.Search{MinFacePx: float64(cc.FaceMinPx), MaxFacePx: float64(cc.FaceMaxPx),
		MinScore: cfg.Detect.MinScore, Budget: cfg.Detect.FrameBudget}
	for _, r := range cc.ROI {
		s.ROIs = append(s.ROIs, detect.NormRect{X0: r.X, Y0: r.Y, X1: r.X + r.W, Y1: r.Y + r.H})
	}
	return s
}

// NewDetector opens a camera's detector (detect.detector).
func NewDetector(cfg *config.Config, cc config.Camera, rt *ort.Runtime) (detect.Detector, error) {
	search := DetectSearch(cfg, cc)
	if cfg.Detect.Detector == "haar" {
		return detect.NewHaar(detect.HaarOptions{Cascade: cfg.Detect.HaarCascade, Search: search})
	}
	m, err := BlazefaceModel(cfg)
	if err != nil {
		return nil, err
	}
	// one thread: on small CPUs a second one made BlazeFace slower (detect/README numbers)
	return detect.NewBlazeFace(rt, detect.BlazeFaceOptions{Model: m, Threads: 1, Search: search})
}

// DetectTuning are a camera's tracker, gate and probe options.
func DetectTuning(cfg *config.Config, cc config.Camera, lrSize int) (detect.TrackerOptions, detect.GateOptions, detect.ProbeOptions) {
	d := cfg.Detect
	return detect.TrackerOptions{MinIoU: d.IOUThreshold, Timeout: d.TrackTimeout,
			MaxSpeed: d.Track.MaxSpeed, SpeedUncertainty: d.Track.SpeedUncertainty,
			NoAppearance: !d.Track.Appearance, MinAppearance: d.Track.MinAppearance},
		detect.GateOptions{MinFacePx: float64(max(d.Quality.MinFacePx, cc.FaceMinPx)), MinSharpness: d.Quality.MinSharpness,
			MinFrontal: d.Quality.MinFrontalness, MinScore: d.MinScore,
			MinInterval: cfg.Match.Visit.MinInterval, MaxProbesPerTrack: cfg.Match.Visit.MaxShots},
		detect.ProbeOptions{LRSize: lrSize}
}

// PhotoDetector opens the detector for enrolment and search photos.
func PhotoDetector(cfg *config.Config, rt *ort.Runtime) (detect.Detector, error) {
	bf, err := BlazefaceModel(cfg)
	if err != nil {
		return nil, err
	}
	// One thread: enrolment is rare and must not take cores from the
	// cameras. Photos come reduced to match.PhotoSide: a portrait's face may
	// fill one, and faces under 24 px make no useful gallery descriptor (the
	// embedder's input is 150 px) while they cost most of the windows.
	return detect.NewBlazeFace(rt, detect.BlazeFaceOptions{Model: bf, Threads: 1,
		Search: detect.Search{MinFacePx: 24, MaxFacePx: match.PhotoSide}})
}

// GalleryOptions are match.* without the models (OpenGallery adds them).
func GalleryOptions(cfg *config.Config, log *slog.Logger) match.Options {
	th := PhotoThresholds(cfg)
	return match.Options{Path: cfg.Paths().Gallery, KeyFile: cfg.Match.KeyFile, Plaintext: !cfg.Match.Encrypt, Thresholds: &th, Log: log}
}

// HistoryPath is the hit history's database.
func HistoryPath(cfg *config.Config) string { return filepath.Join(cfg.Storage.StateDir, "history.db") }

// HistoryOptions open the hit history with the gallery's key (the same
// at-rest encryption; none with match.encrypt off).
func HistoryOptions(cfg *config.Config, log *slog.Logger) (history.Options, error) {
	o := history.Options{Path: HistoryPath(cfg), Retention: cfg.Storage.HitRetention,
		MinFreeBytes: uint64(cfg.Storage.MinFreeBytes), Logger: log}
	if cfg.Match.Encrypt {
		k, err := match.LoadKey(cfg.Match.KeyFile)
		if err != nil {
			return o, err
		}
		o.Key = k
	}
	return o, nil
}

// ICEServers are publish.webrtc.ice_servers with their secrets.
func ICEServers(w config.WebRTC) []live.ICEServer {
	var ice []live.ICEServer
	for _, s := range w.ICEServers {
		ice = append(ice, live.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential.Reveal()})
	}
	return ice
}

// ICEAddresses is where the live view's ICE may bind: publish.webrtc.
// ice_addresses, else the addresses publish.http.listen binds, so that a
// daemon serving HTTP on loopback does not open UDP ports on the LAN (nil:
// every interface, for 0.0.0.0, :: or an empty host).
func ICEAddresses(w config.WebRTC, httpListen string) ([]string, error) {
	if len(w.ICEAddresses) > 0 {
		return w.ICEAddresses, nil
	}
	host, _, err := net.SplitHostPort(httpListen)
	if err != nil {
		return nil, fmt.Errorf("publish.http.listen %q: %w", httpListen, err)
	}
	if host == "" {
		return nil, nil
	}
	if host == "localhost" {
		return []string{"127.0.0.1", "::1"}, nil
	}
	if ip := net.ParseIP(host); ip != nil {
		if ip.IsUnspecified() {
			return nil, nil
		}
		return []string{ip.String()}, nil
	}
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return nil, fmt.Errorf("publish.webrtc: the ICE addresses default to those of publish.http.listen %q, which does not resolve (%v): set publish.webrtc.ice_addresses", httpListen, err)
	}
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out, nil
}

// ClientTLS maps publish.mqtt.tls to the one MQTT client TLS setup
// (mqtt.ClientTLS); nil when nothing is configured (system roots).
func ClientTLS(c config.ClientTLS) (*tls.Config, error) {
	return mqtt.ClientTLS(mqtt.TLSFiles{CAFile: c.CAFile, CertFile: c.CertFile, KeyFile: c.KeyFile,
		InsecureSkipVerify: c.InsecureSkipVerify})
}

// HWTestOptions turn the config into hwtest's options, with the model
// paths, SR parameters and guidance policy the daemon uses.
func HWTestOptions(cfg *config.Config) hwtest.Options {
	paths := cfg.Paths()
	model := func(kind, key string, find func() (string, error)) hwtest.Model {
		p, err := find()
		m := hwtest.Model{Kind: kind, Key: key, Path: p, Missing: err}
		if err != nil {
			// the key that would fix it: the model's own when set, else the folder's
			var nf *locate.NotFoundError
			if errors.As(err, &nf) {
				m.Key = nf.Key
			}
		}
		return m
	}
	score, scoreErr := ScoreModel(cfg, 0)
	guid, guidErr := GuidanceModel(cfg)
	models := []hwtest.Model{model(hwtest.KindScore, "srdg.score_model", func() (string, error) { return score, scoreErr })}
	if guid != "" || guidErr != nil {
		models = append(models, model(hwtest.KindGuidance, "srdg.guidance_model", func() (string, error) { return guid, guidErr }))
	}
	if cfg.SRDG.Attributes.Policy == "predict" {
		models = append(models, model(hwtest.KindLRAttrs, "srdg.attr_model", func() (string, error) { return AttrModel(cfg) }))
	}
	if cfg.Detect.Detector != "haar" {
		models = append(models, model(hwtest.KindBlazeFace, "detect.blazeface_model", func() (string, error) { return BlazefaceModel(cfg) }))
	}
	emb, embErr := EmbedderModel(cfg)
	models = append(models, model(hwtest.KindEmbedder, "match.embedder_model", func() (string, error) { return emb, embErr }))
	if sr, srErr := SREmbedderModel(cfg); sr != "" || srErr != nil {
		models = append(models, model(hwtest.KindEmbedder, "match.sr_embedder_model", func() (string, error) { return sr, srErr }))
	}
	// the daemon loads the landmarks model from the embedder's folder
	lmkKey := "storage.models_dir"
	if cfg.Match.EmbedderModel != "" {
		lmkKey = "match.embedder_model"
	}
	models = append(models, model(hwtest.KindLandmarks, lmkKey, func() (string, error) {
		if embErr != nil {
			return Models(cfg).Find(LandmarksName, "it belongs with the embedder: set storage.models_dir to a folder holding both; `make models` builds the default set in models/dist")
		}
		return LandmarksModel(cfg, emb)
	}))
	var cams []hwtest.Camera
	disabled := 0
	for i, c := range cfg.Cameras {
		if !c.Enabled {
			disabled++
		}
		if c.Enabled {
			cams = append(cams, hwtest.Camera{Key: fmt.Sprintf("cameras[%d]", i), Name: c.Name, URL: c.URL, Username: c.Username, Password: c.Password.Reveal(),
				Transport: c.Transport, TLSInsecure: c.TLSInsecure, TLSFingerprint: c.TLSFingerprint})
		}
	}
	m, so := cfg.Publish.MQTT, SessionOptions(cfg)
	return hwtest.Options{
		ORT: hwtest.ORTOptions{Library: cfg.SRDG.ORTLibrary, Providers: so.Providers, IntraThreads: so.IntraOpThreads,
			InterThreads: so.InterOpThreads, TRTCacheDir: so.TRTCacheDir, TRTFP16: so.TRTFP16},
		Models: models,
		SR: &hwtest.SROptions{ScorePath: score, ScoreMissing: scoreErr, GuidancePath: guid, GuidanceMissing: guidErr, Scale: cfg.SRDG.Scale, Params: SRParams(cfg),
			LatencyBudget: cfg.SRDG.LatencyBudget, Seed: uint64(cfg.SRDG.Seed)},
		Cameras:         cams,
		DisabledCameras: disabled,
		HTTP:            hwtest.HTTPOptions{Enabled: cfg.Publish.HTTP.Enabled, Listen: cfg.Publish.HTTP.Listen},
		MQTT: hwtest.MQTTOptions{Enabled: m.Enabled, Broker: m.Broker, EmbeddedListen: m.EmbeddedListen,
			Username: m.Username, Password: m.Password.Reveal(), CAFile: m.TLS.CAFile, CertFile: m.TLS.CertFile,
			KeyFile: m.TLS.KeyFile, InsecureSkipVerify: m.TLS.InsecureSkipVerify},
		Gallery:      hwtest.GalleryOptions{Path: paths.Gallery, KeyFile: cfg.Match.KeyFile, Encrypt: cfg.Match.Encrypt},
		StateDir:     cfg.Storage.StateDir,
		SpoolDir:     paths.Spool,
		MinFreeBytes: uint64(max(cfg.Storage.MinFreeBytes, 0)),
	}
}
