package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/srdgd/srdgd/config"
	"github.com/srdgd/srdgd/detect"
	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/ingest"
	"github.com/srdgd/srdgd/internal/ort"
	"github.com/srdgd/srdgd/internal/queue"
	"github.com/srdgd/srdgd/match"
	"github.com/srdgd/srdgd/publish"
	"github.com/srdgd/srdgd/publish/history"
	"github.com/srdgd/srdgd/publish/httpapi"
	"github.com/srdgd/srdgd/publish/live"
	"github.com/srdgd/srdgd/publish/metrics"
	"github.com/srdgd/srdgd/publish/mqtt"
	"github.com/srdgd/srdgd/srdg"
)

// builder holds what the stages share while Build wires them.
type builder struct {
	*App
	rt       *ort.Runtime
	gallery  *match.Gallery // nil: no key file yet
	embedder match.GalleryEmbedder
	history  *history.Store // nil: no key file yet
	eng      *srdg.Engine
	attrs    *srdg.AttrPredictor
	probes   *queue.Queue[*face.Probe]
	shots    *queue.Queue[[]*face.Shot]
	fan      *publish.Fanout
	stats    *collector
	reg      *metrics.Registry
	live     *live.Server
	models   map[string]string
	// visits is the fan-out of the visit aggregator's events (nil without
	// cameras): the history, the live view and MQTT join it in addPublish,
	// each with its own queue, so none runs on the aggregator's goroutine.
	visits *publish.VisitFanout
}

// Build turns a validated config into the daemon's components, in pipeline
// order: ingest -> detect -> srdg -> match -> publish. version is reported
// by the API, MQTT and metrics.
func Build(cfg *config.Config, log *slog.Logger, version string) (*App, error) {
	b := &builder{App: &App{log: log, cfg: cfg, version: version, health: newHealth(), StatusEvery: time.Minute},
		stats: &collector{every: 2 * time.Second}, models: map[string]string{}}
	fail := func(err error) (*App, error) { b.Close(); return nil, err }
	b.addWatchdog()
	// the SR models load before detect: the probes are cut at their size
	steps := []func() error{b.openServices, b.openSR, b.addIngest, b.addDetect, b.addSR, b.addMatch, b.addPublish}
	for _, step := range steps {
		if err := step(); err != nil {
			return fail(err)
		}
	}
	b.Add("status", b.reportStatus)
	return b.App, nil
}

// openServices opens what every configuration needs: ONNX Runtime, the
// gallery and the hit history. Without a gallery key file (and encryption
// on) the daemon still runs: faces are reported as unknown and no history
// is kept, and the log says how to create the key.
func (b *builder) openServices() error {
	cfg := b.cfg
	rt, err := ort.Open(cfg.SRDG.ORTLibrary, b.log.With("component", "ort"))
	if err != nil {
		return err
	}
	b.rt = rt
	b.addStop(func() { rt.Close() })
	if cfg.Match.Encrypt {
		if _, err := os.Stat(cfg.Match.KeyFile); errors.Is(err, os.ErrNotExist) {
			b.log.Warn("no gallery key file: faces will not be matched and no hit history is kept (create one with: srdgd gallery keygen)",
				"key_file", cfg.Match.KeyFile)
			return nil
		}
	}
	if err := os.MkdirAll(cfg.Storage.StateDir, 0o750); err != nil {
		return err
	}
	g, err := OpenGallery(context.Background(), cfg, true, rt, b.log)
	if err != nil {
		return err
	}
	b.addStop(g.Close)
	b.gallery, b.embedder = g.Gallery, g.Embedder
	ho, err := HistoryOptions(cfg, b.log.With("component", "history"))
	if err != nil {
		return err
	}
	h, err := history.Open(context.Background(), ho)
	if err != nil {
		return err
	}
	b.history = h
	b.addStop(func() { h.Close() })
	b.Add("history", h.Run)
	return nil
}

// addIngest builds one camera per enabled camera section.
func (b *builder) addIngest() error {
	for _, cc := range b.cfg.Cameras {
		if !cc.Enabled {
			b.log.Info("camera disabled in config", "camera", cc.Name)
			continue
		}
		cam, err := ingest.NewCamera(CameraOptions(cc, b.log))
		if err != nil {
			return fmt.Errorf("camera %q: %w", cc.Name, err)
		}
		b.cameras = append(b.cameras, cam)
		b.Add("ingest/"+cc.Name, CameraRun(cam, b.log))
	}
	b.stats.cams = b.cameras
	if len(b.cameras) == 0 {
		b.log.Warn("no enabled cameras in the config: nothing to ingest")
	}
	return nil
}

// addDetect builds a detect pipeline with its own detector per camera; the
// probes of every camera go to one queue, cut at the score model's LR size.
func (b *builder) addDetect() error {
	if len(b.cameras) == 0 {
		return nil
	}
	cfg := b.cfg
	_, lr := b.eng.Sizes()
	b.probes = queue.New[*face.Probe](max(cfg.Detect.QueueSize, 1))
	if cfg.Detect.QueuePolicy == "fair" {
		b.probes.Fair(probeShare)
	}
	for _, cam := range b.cameras {
		cc := CameraConfig(cfg, cam.Name())
		det, err := NewDetector(cfg, cc, b.rt)
		if err != nil {
			return fmt.Errorf("camera %q: %w", cc.Name, err)
		}
		b.addStop(func() { det.Close() })
		frames := cam.SubscribeFrames(2)
		tr, gate, probe := DetectTuning(cfg, cc, lr)
		dp, err := detect.NewPipeline(detect.PipelineOptions{In: frames, Out: b.probes, Detector: det, FPS: cc.DetectFPS,
			Tracker: tr, Gate: gate, Probe: probe, NoTrackHints: !cfg.Detect.Track.Hints, TrackEnds: true, OnTracks: b.publishTracks, Logger: b.log.With("camera", cc.Name)})
		if err != nil {
			return fmt.Errorf("camera %q: %w", cc.Name, err)
		}
		b.Add("detect/"+cc.Name, dp.Run)
		b.stats.dets = append(b.stats.dets, dp)
		b.health.watch("detect/"+cc.Name, 2*time.Minute, frames.Len, func() uint64 { s := dp.Stats(); return s.Frames + s.RateSkipped })
	}
	return nil
}

// publishTracks hands an analysed frame's track boxes to the live view
// (built after detect; none when publish.webrtc is off). It runs on the
// detect goroutine: the live view only queues them.
func (b *builder) publishTracks(tb face.TrackBoxes) {
	if ls := b.live; ls != nil {
		ls.PublishTracks(tb)
	}
}

// openSR loads the SR models (score, guidance and LR attribute model as the
// attribute policy needs them) when there are cameras to serve.
func (b *builder) openSR() error {
	if !slicesContainsEnabled(b.cfg.Cameras) {
		return nil
	}
	cfg := b.cfg
	so := SessionOptions(cfg)
	score, err := ScoreModel(cfg, 0)
	if err != nil {
		return err
	}
	guid, err := GuidanceModel(cfg)
	if err != nil {
		return err
	}
	eng, err := srdg.Open(srdg.ModelOptions{Runtime: b.rt, ScorePath: score, GuidancePath: guid, WantScale: cfg.SRDG.Scale,
		Session: so, MaxBatch: cfg.SRDG.BatchSize, Logger: b.log})
	if err != nil {
		return err
	}
	b.eng = eng
	b.addStop(func() { eng.Close() })
	am, err := AttrModel(cfg)
	if err != nil {
		return err
	}
	if am != "" {
		if b.attrs, err = srdg.OpenAttrPredictor(b.rt, am, so); err != nil {
			return err
		}
		b.addStop(func() { b.attrs.Close() })
	}
	b.models["score"] = modelID(eng.ScoreInfo.Meta, score)
	if eng.GuidanceInfo != nil {
		b.models["guidance"] = modelID(eng.GuidanceInfo.Meta, guid)
	}
	return nil
}

func slicesContainsEnabled(cams []config.Camera) bool {
	for _, c := range cams {
		if c.Enabled {
			return true
		}
	}
	return false
}

// addSR builds the SR stage (one for every camera).
func (b *builder) addSR() error {
	if len(b.cameras) == 0 {
		return nil
	}
	cfg, eng := b.cfg, b.eng
	p := SRParams(cfg)
	p.Schedule.SigmaMin, p.Schedule.SigmaMax = eng.ScoreInfo.SigmaMin, eng.ScoreInfo.SigmaMax
	b.shots = queue.New[[]*face.Shot](16)
	st, err := srdg.NewStage(srdg.StageOptions{In: b.probes, Out: b.shots, Engine: eng, Attr: b.attrs,
		Policy: cfg.SRDG.Attributes.Policy, AbstainThreshold: cfg.SRDG.Attributes.AbstainThreshold, Forced: ForcedLabels(cfg),
		Params: p, MaxBatch: cfg.SRDG.BatchSize, Samples: cfg.Match.Visit.Samples, DirectSide: float64(cfg.SRDG.DirectSide),
		Seed: uint64(cfg.SRDG.Seed), Logger: b.log})
	if err != nil {
		return err
	}
	b.Add("srdg", st.Run)
	b.stats.sr, b.stats.provider = st, eng.ScoreInfo.Provider
	// SR may take minutes per batch on a small CPU: its limit is generous
	b.health.watch("srdg", max(15*time.Minute, 20*cfg.SRDG.LatencyBudget), b.probes.Len,
		func() uint64 { s := st.Stats(); return s.Faces + s.Failed })
	_, lr := eng.Sizes()
	b.log.Info("face pipeline ready", "score_model", eng.ScoreInfo.Path, "provider", eng.ScoreInfo.Provider, "guidance", eng.GuidanceInfo != nil,
		"attributes", strings.Join(eng.Attributes(), ","), "sampler", cfg.SRDG.Sampler, "lr", lr, "gallery", b.gallery != nil)
	return nil
}

// addMatch builds the match stage: its hits go to the publish fan-out,
// which the publish sinks join in addPublish.
func (b *builder) addMatch() error {
	fan, err := publish.NewFanout(publish.FanoutOptions{Logger: b.log})
	if err != nil {
		return err
	}
	b.fan, b.stats.fan = fan, fan
	if b.embedder != nil {
		b.models["embedder"] = b.embedder.ModelID()
	}
	if b.shots == nil {
		return nil
	}
	cfg, log := b.cfg, b.log
	// the SR setting for the engine's scale (direct faces: below)
	th, err := MatchThresholds(cfg, cfg.SRDG.Scale, b.srReader())
	if err != nil && b.embedder != nil {
		return err
	} else if err != nil {
		// no gallery: nobody is matched, the setting decides nothing
		th = PhotoThresholds(cfg)
	}
	vfan, err := publish.NewVisitFanout(publish.VisitFanoutOptions{Logger: log})
	if err != nil {
		return err
	}
	b.visits, b.stats.visits = vfan, vfan
	vs, err := b.newVisits(th)
	if err != nil {
		return err
	}
	// the aggregator ends its open visits as it stops: the fan-out delivers
	// those end events too, until Close
	b.Add("visits", func(ctx context.Context) error { defer vfan.Close(); return vs.Run(ctx) })
	b.Add("publish-visits", vfan.Run)
	// faces the SR stage reads directly (srdg.direct_side): the shipped
	// one-shot settings for their scales
	direct, err := match.DirectThresholds(b.srReader(), th)
	if err != nil {
		return err
	}
	st, err := match.NewStage(match.StageOptions{In: b.shots, Out: fan, Gallery: b.gallery, TopK: cfg.Match.TopK,
		Thresholds: th, Direct: direct, Cameras: cameraOffsets(cfg), Models: b.models, Visits: vs, Logger: log})
	if err != nil {
		return err
	}
	b.Add("match", st.Run)
	b.stats.match, b.stats.gallery = st, b.gallery
	b.health.watch("match", 5*time.Minute, b.shots.Len, func() uint64 { return st.Stats().Shots })
	return nil
}

// srReader is the model that reads the super-resolved faces (the gallery
// embedder's match.ReaderModel); "" without a gallery.
func (b *builder) srReader() string {
	if b.embedder != nil {
		return match.ReaderModel(b.embedder, b.cfg.SRDG.Scale)
	}
	return ""
}

// cameraOffsets are the cameras' threshold overrides (config
// cameras[].threshold_offset, margin_offset); nil when none has one.
func cameraOffsets(cfg *config.Config) match.CameraOffsets {
	var out match.CameraOffsets
	for _, c := range cfg.Cameras {
		if o := (match.Offset{Threshold: c.ThresholdOffset, Margin: c.MarginOffset}); !o.IsZero() {
			if out == nil {
				out = match.CameraOffsets{}
			}
			out[c.Name] = o
		}
	}
	return out
}

// newVisits builds the visit aggregator (match.visit): its events go to
// the visit fan-out.
func (b *builder) newVisits(th match.Thresholds) (*match.Visits, error) {
	cfg, log := b.cfg, b.log
	vc := cfg.Match.Visit
	var searcher match.VisitSearcher // nil (every visit unknown) without a gallery
	if b.gallery != nil {
		searcher = b.gallery
	}
	// match.sr.x<scale> set by the installer is a floor under the
	// calibrated per-gallery-size setting; unset, the calibration decides
	_, _, floor := cfg.Match.SRThresholds(cfg.SRDG.Scale)
	return match.NewVisits(match.VisitOptions{Searcher: searcher, Scale: cfg.SRDG.Scale, Fallback: th, Floor: floor, Model: b.srReader(), Cameras: cameraOffsets(cfg), TopK: cfg.Match.TopK,
		MaxShots: vc.MaxShots, MinInterval: vc.MinInterval, Cooldown: vc.Cooldown, Timeout: vc.Timeout, MaxOpen: vc.MaxOpen,
		MinConfidenceChange: vc.MinConfidenceChange, Duplicate: vc.Duplicate, Logger: log,
		Emit: func(v *face.Visit) {
			log.Info("visit", "camera", v.Camera, "visit", v.ID, "state", v.State, "rev", v.Rev, "track", v.TrackID,
				"known", v.Decision.Known, "confidence", fmt.Sprintf("%.3f", v.Decision.Confidence),
				"shots", v.Decision.Shots, "repeat", v.Repeat, "reason", v.Decision.Reason)
			if err := b.visits.PublishVisit(context.Background(), v); err != nil {
				log.Warn("visit not accepted", "visit", v.ID, "err", err)
			}
		}})
}

// modelID names a model by its metadata name, else its file name.
func modelID(meta map[string]string, path string) string {
	if n := meta["srdgd.name"]; n != "" {
		return n
	}
	return filepath.Base(path)
}

// addPublish builds everything that leaves the box, each sink joining the
// fan-out in the order hits reach them (history first): metrics, the live
// view, MQTT and the HTTP API.
func (b *builder) addPublish() error {
	b.Add("publish", b.fan.Run)
	if b.history != nil {
		if err := b.fan.Add(publish.NamedSink{Name: "history", Sink: b.history}); err != nil {
			return err
		}
		if err := b.addVisitSink("history", b.history); err != nil {
			return err
		}
	}
	statuses := CameraStatuses(b.cameras)
	reg, err := metrics.New(metrics.Options{Cameras: statuses, Version: b.version})
	if err != nil {
		return err
	}
	b.reg = reg
	if err := b.fan.Add(publish.NamedSink{Name: "metrics", Sink: reg}); err != nil {
		return err
	}
	if len(b.cameras) > 0 {
		b.Add("metrics", b.stats.feed(reg))
	}
	for _, step := range []func() error{b.addLive, b.addMQTT, b.addHTTP} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// addVisitSink joins s to the visit fan-out, when there are visits.
func (b *builder) addVisitSink(name string, s publish.VisitSink) error {
	if b.visits == nil {
		return nil
	}
	return b.visits.Add(publish.NamedVisitSink{Name: name, Sink: s})
}

// addLive builds the WebRTC live view (publish.webrtc).
func (b *builder) addLive() error {
	w, cfg := b.cfg.Publish.WebRTC, b.cfg
	if !w.Enabled || len(b.cameras) == 0 {
		return nil
	}
	srcs := map[string]live.Source{}
	for _, c := range b.cameras {
		srcs[c.Name()] = c
	}
	addrs, err := ICEAddresses(w, cfg.Publish.HTTP.Listen)
	if err != nil {
		return err
	}
	ls, err := live.New(live.Options{Cameras: srcs, ICEServers: ICEServers(w), UDPPortMin: w.UDPPortMin, UDPPortMax: w.UDPPortMax,
		TCPListen: w.TCPListen, NAT1To1IPs: w.NAT1To1IPs, ICEAddresses: addrs, MulticastDNS: w.MDNS, ConnectTimeout: w.ConnectTimeout,
		// a viewer on the box itself (the demo) has only loopback to reach us
		IncludeLoopback: config.IsLoopbackListen(cfg.Publish.HTTP.Listen), Logger: b.log})
	if err != nil {
		return fmt.Errorf("publish.webrtc: %w", err)
	}
	b.live = ls
	b.Add("live", ls.Run)
	// the boxes' labels: each track's visit decision
	if err := b.addVisitSink("live", ls); err != nil {
		return err
	}
	b.reg.SetViewers(func() map[string]int {
		out := map[string]int{}
		for _, s := range ls.Stats() {
			out[s.Camera] = s.Viewers
		}
		return out
	})
	return b.fan.Add(publish.NamedSink{Name: "live", Sink: ls})
}

// addMQTT starts the embedded broker when no external one is configured and
// builds the alert publisher with its on-disk spool (publish.mqtt).
func (b *builder) addMQTT() error {
	cfg, m := b.cfg, b.cfg.Publish.MQTT
	if !m.Enabled {
		return nil
	}
	broker := m.Broker
	if broker == "" {
		br, err := mqtt.NewBroker(mqtt.BrokerOptions{Listen: m.EmbeddedListen, Username: m.Username, Password: m.Password.Reveal(), Logger: b.log})
		if err != nil {
			return fmt.Errorf("publish.mqtt.embedded_listen: %w", err)
		}
		b.Add("mqtt-broker", br.Run)
		broker = "tcp://" + br.Addr()
		b.log.Info("embedded MQTT broker", "addr", br.Addr(), "auth", m.Username != "")
	}
	tc, err := ClientTLS(m.TLS)
	if err != nil {
		return fmt.Errorf("publish.mqtt.tls: %w", err)
	}
	var names []string
	for _, c := range b.cameras {
		names = append(names, c.Name())
	}
	// The spool holds faces: sealed with the gallery key like the history,
	// kept no longer than the hit retention. Without a key (none created
	// yet, or match.encrypt off) the publisher seals with a key that dies
	// with the process and says so.
	var key []byte
	if cfg.Match.Encrypt && b.gallery != nil {
		if key, err = match.LoadKey(cfg.Match.KeyFile); err != nil {
			return fmt.Errorf("publish.mqtt: spool key: %w", err)
		}
	}
	o := mqtt.Options{Broker: broker, ClientID: m.ClientID, Username: m.Username, Password: m.Password.Reveal(),
		TLS: tc, QoS: byte(m.QoS), QoSSet: true, Keepalive: m.Keepalive, TopicPrefix: m.TopicPrefix,
		SpoolDir: cfg.Paths().Spool, SpoolMaxMessages: m.SpoolMaxMessages, SpoolMaxBytes: m.SpoolMaxBytes,
		SpoolKey: key, SpoolRetention: cfg.Storage.HitRetention,
		IncludeImage: m.IncludeImage, Hits: m.Hits, HADiscovery: m.HADiscovery.Enabled, HAPrefix: m.HADiscovery.Prefix,
		HAPeople: m.HADiscovery.People, HASeenWindow: m.HADiscovery.SeenWindow,
		Cameras: names, Status: CameraStatuses(b.cameras), Version: b.version, Logger: b.log}
	if len(b.cameras) > 0 {
		o.Stats = b.stats.mqttStats
	}
	pub, err := mqtt.New(o)
	if err != nil {
		return fmt.Errorf("publish.mqtt: %w", err)
	}
	b.Add("mqtt", pub.Run)
	b.addStop(func() { pub.Close() })
	if err := b.addVisitSink("mqtt", pub); err != nil {
		return err
	}
	b.reg.SetMQTT(func() metrics.MQTTStatus {
		n, size := pub.SpoolDepth()
		return metrics.MQTTStatus{Connected: pub.Connected(), SpoolMessages: n, SpoolBytes: size, Dropped: pub.Dropped()}
	})
	return b.fan.Add(publish.NamedSink{Name: "mqtt", Sink: pub})
}

// addHTTP builds the HTTP API and web page (publish.http).
func (b *builder) addHTTP() error {
	h := b.cfg.Publish.HTTP
	if !h.Enabled {
		return nil
	}
	o := httpapi.Options{Listen: h.Listen, Token: h.Token.Reveal(), TLSCertFile: h.TLSCertFile, TLSKeyFile: h.TLSKeyFile,
		MaxBodyBytes: h.MaxBodyBytes, Cameras: CameraStatuses(b.cameras), Metrics: b.reg.Handler(), Logger: b.log,
		Version: httpapi.VersionInfo{Version: b.version}, Health: func(context.Context) error { return b.health.check() },
		Schemas: mqtt.Schemas()}
	if len(b.cameras) > 0 {
		o.Version.Models = b.models
	}
	if b.history != nil {
		ha := HistoryAPI{S: b.history}
		o.Hits, o.Visits, o.Auditor = ha, ha, ha
	}
	if b.gallery != nil {
		if o.Auditor == nil {
			return errors.New("publish.http: the gallery API needs the audit log (history), which could not be opened")
		}
		o.Gallery = NewGalleryAPI(b.gallery)
	}
	if ls := b.live; ls != nil {
		o.Live = ls.Handler()
		o.Viewable = func() []string {
			var out []string
			for _, c := range ls.Cameras() {
				if c.Viewable {
					out = append(out, c.Name)
				}
			}
			return out
		}
	}
	hs, err := httpapi.New(o)
	if err != nil {
		return fmt.Errorf("publish.http: %w", err)
	}
	b.Add("http", hs.Run)
	return nil
}

// probeShare is a probe's share of the SR queue (detect.queue_policy fair):
// its camera's track; a track-end notice is pinned (never dropped while a
// probe waits, and it resets the track's count).
func probeShare(p *face.Probe) (string, bool) {
	return p.Camera + "\x00" + strconv.FormatUint(p.TrackID, 10), p.Ended
}
