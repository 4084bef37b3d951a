package app

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/srdgd/srdgd/config"
	"github.com/srdgd/srdgd/detect"
	"github.com/srdgd/srdgd/hwtest"
	"github.com/srdgd/srdgd/ingest"
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

// ModelsDir picks the default models folder: the configured one, else the
// installed one, else the repository's built set (models/dist, from the
// working directory upwards).
func ModelsDir(configured string) string {
	cands := []string{configured, "/usr/share/srdgd/models"}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			cands = append(cands, filepath.Join(d, "models", "dist"))
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	for _, d := range cands {
		if d == "" {
			continue
		}
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d
		}
	}
	return filepath.Join("models", "dist")
}

// ModelPath returns the configured model file, or the same file name in the
// models folder found by ModelsDir.
func ModelPath(cfg *config.Config, configured string) string {
	if _, err := os.Stat(configured); err == nil {
		return configured
	}
	return filepath.Join(ModelsDir(cfg.Storage.ModelsDir), filepath.Base(configured))
}

// RequireFile names the config key when a model file is missing.
func RequireFile(key, path string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("%s: model file %s: %w (build the default set with `make models`, or set %s)", key, path, err, key)
	}
	return nil
}

// LandmarksPath is the landmarks model the embedder needs: next to it.
func LandmarksPath(embedder string) string {
	return filepath.Join(filepath.Dir(embedder), "face_landmarks68.onnx")
}

// SessionOptions are the ONNX Runtime settings of srdg.*.
func SessionOptions(cfg *config.Config) ort.SessionOptions {
	c := cfg.SRDG
	return ort.SessionOptions{Providers: c.Providers, IntraOpThreads: c.IntraThreads, InterOpThreads: c.InterThreads,
		TRTCacheDir: cfg.Paths().TRTCache, TRTFP16: c.TRTFP16}
}

// MatchThresholds are the configured identification settings for photos
// (srScale 0) or for faces super-resolved at srScale (match.sr.x<scale>).
func MatchThresholds(cfg *config.Config, srScale int) match.Thresholds {
	th := match.Thresholds{Identify: cfg.Match.Threshold, Margin: cfg.Match.Margin, Verify: cfg.Match.VerifyThreshold}
	if srScale != 0 {
		th.Identify, th.Margin = cfg.Match.SRThresholds(srScale)
		fb := cfg.Match.Feedback
		th.Rule = match.TemplateRule{Templates: fb.Templates, Negatives: fb.Negatives, NegMargin: fb.NegativeMargin, Scale: srScale}
	}
	return th
}

// SRParams are the sampler settings of srdg.*. The schedule's sigma range
// comes from the score model (zero here: the engine's own).
func SRParams(cfg *config.Config) srdg.Params {
	c := cfg.SRDG
	return srdg.Params{Sampler: c.Sampler, Steps: c.Steps, W: c.GuidanceWeight, CorrectorSteps: c.CorrectorSteps, SNR: c.SNR,
		Schedule: srdg.Schedule{Eps: c.Eps}}
}

// The guidance-policy rule: which models srdg.attributes.policy needs.

// GuidanceModel is the guidance model's path, "" when the policy is off.
func GuidanceModel(cfg *config.Config) string {
	if cfg.SRDG.Attributes.Policy == "off" {
		return ""
	}
	return ModelPath(cfg, cfg.Paths().GuidanceModel)
}

// AttrModel is the LR attribute model's path, "" unless the policy is
// predict.
func AttrModel(cfg *config.Config) string {
	if cfg.SRDG.Attributes.Policy != "predict" {
		return ""
	}
	return ModelPath(cfg, cfg.Paths().AttrModel)
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
	m := ModelPath(cfg, cfg.Paths().BlazefaceModel)
	if err := RequireFile("detect.blazeface_model", m); err != nil {
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
	bf := ModelPath(cfg, cfg.Paths().BlazefaceModel)
	if err := RequireFile("detect.blazeface_model", bf); err != nil {
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
	th := MatchThresholds(cfg, 0)
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
	score, guid := ModelPath(cfg, paths.ScoreModel), GuidanceModel(cfg)
	models := []hwtest.Model{{Kind: hwtest.KindScore, Key: "srdg.score_model", Path: score}}
	if guid != "" {
		models = append(models, hwtest.Model{Kind: hwtest.KindGuidance, Key: "srdg.guidance_model", Path: guid})
	}
	if am := AttrModel(cfg); am != "" {
		models = append(models, hwtest.Model{Kind: hwtest.KindLRAttrs, Key: "srdg.attr_model", Path: am})
	}
	if cfg.Detect.Detector != "haar" {
		models = append(models, hwtest.Model{Kind: hwtest.KindBlazeFace, Key: "detect.blazeface_model", Path: ModelPath(cfg, paths.BlazefaceModel)})
	}
	emb := ModelPath(cfg, paths.EmbedderModel)
	models = append(models,
		hwtest.Model{Kind: hwtest.KindEmbedder, Key: "match.embedder_model", Path: emb},
		// the daemon loads the landmarks model next to the embedder
		hwtest.Model{Kind: hwtest.KindLandmarks, Key: "match.embedder_model", Path: LandmarksPath(emb)})
	var cams []hwtest.Camera
	for _, c := range cfg.Cameras {
		if c.Enabled {
			cams = append(cams, hwtest.Camera{Name: c.Name, URL: c.URL, Username: c.Username, Password: c.Password.Reveal(),
				Transport: c.Transport, TLSInsecure: c.TLSInsecure, TLSFingerprint: c.TLSFingerprint})
		}
	}
	m, so := cfg.Publish.MQTT, SessionOptions(cfg)
	return hwtest.Options{
		ORT: hwtest.ORTOptions{Library: cfg.SRDG.ORTLibrary, Providers: so.Providers, IntraThreads: so.IntraOpThreads,
			InterThreads: so.InterOpThreads, TRTCacheDir: so.TRTCacheDir, TRTFP16: so.TRTFP16},
		Models: models,
		SR: &hwtest.SROptions{ScorePath: score, GuidancePath: guid, Scale: cfg.SRDG.Scale, Params: SRParams(cfg),
			LatencyBudget: cfg.SRDG.LatencyBudget, Seed: uint64(cfg.SRDG.Seed)},
		Cameras: cams,
		MQTT: hwtest.MQTTOptions{Enabled: m.Enabled, Broker: m.Broker, EmbeddedListen: m.EmbeddedListen,
			Username: m.Username, Password: m.Password.Reveal(), CAFile: m.TLS.CAFile, CertFile: m.TLS.CertFile,
			KeyFile: m.TLS.KeyFile, InsecureSkipVerify: m.TLS.InsecureSkipVerify},
		Gallery:      hwtest.GalleryOptions{Path: paths.Gallery, KeyFile: cfg.Match.KeyFile, Encrypt: cfg.Match.Encrypt},
		StateDir:     cfg.Storage.StateDir,
		SpoolDir:     paths.Spool,
		MinFreeBytes: uint64(max(cfg.Storage.MinFreeBytes, 0)),
	}
}
