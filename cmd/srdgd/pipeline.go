package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/srdgd/srdgd/config"
	"github.com/srdgd/srdgd/detect"
	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/ingest"
	"github.com/srdgd/srdgd/internal/ort"
	"github.com/srdgd/srdgd/internal/queue"
	"github.com/srdgd/srdgd/match"
	"github.com/srdgd/srdgd/publish/history"
	"github.com/srdgd/srdgd/publish/mqtt"
	"github.com/srdgd/srdgd/srdg"
)

// pipeline is the face path of the daemon: per camera a detect pipeline with
// its own detector, one shared SR stage, and the match step.
type pipeline struct {
	rt       *ort.Runtime
	engine   *srdg.Engine
	attrs    *srdg.AttrPredictor
	gallery  *match.Gallery
	embedder *match.Embedder
	closers  []func() error
	probes   *queue.Queue[*face.Probe]
	shots    *queue.Queue[[]*face.Shot]
	sr       *srdg.Stage
	match    *match.Stage
	// models maps a role to the model id stamped on every hit
	models   map[string]string
	history  *history.Store
	dets     []*detect.Pipeline
	cams     []*ingest.Camera
	provider string
}

func (p *pipeline) close() {
	for i := len(p.closers) - 1; i >= 0; i-- {
		_ = p.closers[i]()
	}
}

func sessionOptions(c config.SRDG, cacheDir string) ort.SessionOptions {
	return ort.SessionOptions{Providers: c.Providers, IntraOpThreads: c.IntraThreads, InterOpThreads: c.InterThreads,
		TRTCacheDir: cacheDir, TRTFP16: c.TRTFP16}
}

// requireFile names the config key when a model file is missing.
func requireFile(key, path string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("%s: model file %s: %w (build the default set with `make models`, or set %s)", key, path, err, key)
	}
	return nil
}

// newPipeline loads the models and wires the stages; it adds its components
// to d. Cameras are already in d.cameras.
func newPipeline(d *daemon, sv *services) (*pipeline, error) {
	cfg, log := d.cfg, d.log
	paths := cfg.Paths()
	p := &pipeline{
		probes: queue.New[*face.Probe](max(cfg.Detect.QueueSize, 1)),
		shots:  queue.New[[]*face.Shot](16),
		rt:     sv.rt, gallery: sv.gallery, embedder: sv.embedder, history: sv.history,
	}
	fail := func(err error) (*pipeline, error) { p.close(); return nil, err }
	rt := sv.rt
	so := sessionOptions(cfg.SRDG, paths.TRTCache)

	// SR engine
	score := modelPath(cfg, paths.ScoreModel)
	guid := modelPath(cfg, paths.GuidanceModel)
	if err := requireFile("srdg.score_model", score); err != nil {
		return fail(err)
	}
	if cfg.SRDG.Attributes.Policy == "off" {
		guid = ""
	} else if err := requireFile("srdg.guidance_model", guid); err != nil {
		return fail(err)
	}
	eng, err := srdg.Open(srdg.ModelOptions{Runtime: rt, ScorePath: score, GuidancePath: guid, WantScale: cfg.SRDG.Scale,
		Session: so, MaxBatch: cfg.SRDG.BatchSize, Logger: log})
	if err != nil {
		return fail(err)
	}
	p.engine = eng
	p.closers = append(p.closers, eng.Close)
	if cfg.SRDG.Attributes.Policy == "predict" {
		ap := modelPath(cfg, paths.AttrModel)
		if err := requireFile("srdg.attr_model", ap); err != nil {
			return fail(err)
		}
		attrs, err := srdg.OpenAttrPredictor(rt, ap, so)
		if err != nil {
			return fail(err)
		}
		p.attrs = attrs
		p.closers = append(p.closers, attrs.Close)
	}
	_, lr := eng.Sizes()

	// detect, one pipeline per camera
	forced := map[string]map[string]int{}
	for _, cc := range cfg.Cameras {
		if !cc.Enabled {
			continue
		}
		if len(cc.Attributes) > 0 {
			forced[cc.Name] = cc.Attributes
		}
	}
	for _, cam := range d.cameras {
		cc := cameraConfig(cfg, cam.Name())
		det, err := newDetector(cfg, paths, cc, rt)
		if err != nil {
			return fail(fmt.Errorf("camera %q: %w", cc.Name, err))
		}
		p.closers = append(p.closers, det.Close)
		frames := cam.SubscribeFrames(2)
		dp, err := detect.NewPipeline(detect.PipelineOptions{
			In: frames, Out: p.probes, Detector: det, FPS: cc.DetectFPS,
			Tracker: detect.TrackerOptions{MinIoU: cfg.Detect.IOUThreshold, Timeout: cfg.Detect.TrackTimeout,
				MaxSpeed: cfg.Detect.Track.MaxSpeed, SpeedUncertainty: cfg.Detect.Track.SpeedUncertainty,
				NoAppearance: !cfg.Detect.Track.Appearance, MinAppearance: cfg.Detect.Track.MinAppearance},
			Gate: detect.GateOptions{MinFacePx: float64(max(cfg.Detect.Quality.MinFacePx, cc.FaceMinPx)),
				MinSharpness: cfg.Detect.Quality.MinSharpness, MinFrontal: cfg.Detect.Quality.MinFrontalness,
				MinScore: cfg.Detect.MinScore, MinInterval: cfg.Match.Visit.MinInterval, MaxProbesPerTrack: cfg.Match.Visit.MaxShots},
			Probe:     detect.ProbeOptions{LRSize: lr},
			TrackEnds: true,
			Logger:    log.With("camera", cc.Name),
		})
		if err != nil {
			return fail(fmt.Errorf("camera %q: %w", cc.Name, err))
		}
		d.components = append(d.components, component{name: "detect/" + cc.Name, run: dp.Run})
		p.dets = append(p.dets, dp)
		p.cams = append(p.cams, cam)
		d.health.watch("detect/"+cc.Name, 2*time.Minute, frames.Len, func() uint64 { s := dp.Stats(); return s.Frames + s.RateSkipped })
	}

	p.provider = eng.ScoreInfo.Provider
	p.models = map[string]string{"score": modelID(eng.ScoreInfo.Meta, score)}
	if eng.GuidanceInfo != nil {
		p.models["guidance"] = modelID(eng.GuidanceInfo.Meta, guid)
	}
	if p.embedder != nil {
		p.models["embedder"] = p.embedder.ModelID()
	}

	stage, err := srdg.NewStage(srdg.StageOptions{In: p.probes, Out: p.shots, Engine: eng, Attr: p.attrs,
		Policy: cfg.SRDG.Attributes.Policy, AbstainThreshold: cfg.SRDG.Attributes.AbstainThreshold, Forced: forced,
		Params: srdg.Params{Sampler: cfg.SRDG.Sampler, Steps: cfg.SRDG.Steps, W: cfg.SRDG.GuidanceWeight,
			CorrectorSteps: cfg.SRDG.CorrectorSteps, SNR: cfg.SRDG.SNR,
			Schedule: srdg.Schedule{SigmaMin: eng.ScoreInfo.SigmaMin, SigmaMax: eng.ScoreInfo.SigmaMax, Eps: cfg.SRDG.Eps}},
		MaxBatch: cfg.SRDG.BatchSize, Seed: uint64(cfg.SRDG.Seed), Logger: log})
	if err != nil {
		return fail(err)
	}
	p.sr = stage
	d.components = append(d.components, component{name: "srdg", run: stage.Run})
	// SR may take minutes per batch on a small CPU: its limit is generous
	d.health.watch("srdg", max(15*time.Minute, 20*cfg.SRDG.LatencyBudget), p.probes.Len,
		func() uint64 { s := stage.Stats(); return s.Faces + s.Failed })
	d.onStop = append(d.onStop, func() { p.close() })
	log.Info("face pipeline ready", "score_model", score, "provider", eng.ScoreInfo.Provider, "guidance", guid != "",
		"attributes", strings.Join(eng.Attributes(), ","), "sampler", cfg.SRDG.Sampler, "lr", lr, "gallery", p.gallery != nil)
	return p, nil
}

// modelID names a model by its metadata name, else its file name.
func modelID(meta map[string]string, path string) string {
	if n := meta["srdgd.name"]; n != "" {
		return n
	}
	return filepath.Base(path)
}

func cameraConfig(cfg *config.Config, name string) config.Camera {
	for _, c := range cfg.Cameras {
		if c.Name == name {
			return c
		}
	}
	return config.DefaultCamera()
}

func newDetector(cfg *config.Config, paths config.Paths, cc config.Camera, rt *ort.Runtime) (detect.Detector, error) {
	search := detect.Search{MinFacePx: float64(cc.FaceMinPx), MaxFacePx: float64(cc.FaceMaxPx),
		MinScore: cfg.Detect.MinScore, Budget: cfg.Detect.FrameBudget}
	for _, r := range cc.ROI {
		search.ROIs = append(search.ROIs, detect.NormRect{X0: r.X, Y0: r.Y, X1: r.X + r.W, Y1: r.Y + r.H})
	}
	switch cfg.Detect.Detector {
	case "haar":
		return detect.NewHaar(detect.HaarOptions{Cascade: cfg.Detect.HaarCascade, Search: search})
	default:
		m := modelPath(cfg, paths.BlazefaceModel)
		if err := requireFile("detect.blazeface_model", m); err != nil {
			return nil, err
		}
		// one thread: on small CPUs a second one made BlazeFace slower (detect/README numbers)
		return detect.NewBlazeFace(rt, detect.BlazeFaceOptions{Model: m, Threads: 1, Search: search})
	}
}

// visitSink takes visit events (the MQTT publisher).
type visitSink interface {
	PublishVisit(ctx context.Context, v *face.Visit) error
}

// addMatch builds the match stage once the sinks are known: its hits go
// to out (the publish fan-out), its visits to visits (called in order on
// the match stage's goroutine: each must only spool or queue).
func (p *pipeline) addMatch(d *daemon, out match.HitSink, visits []visitSink) error {
	cfg, log := d.cfg, d.log
	// every face here is super-resolved: the SR setting for the engine's scale
	th := matchThresholds(cfg, cfg.SRDG.Scale)
	vc := cfg.Match.Visit
	vs, err := match.NewVisits(match.VisitOptions{Searcher: p.visitSearcher(), Scale: cfg.SRDG.Scale, Fallback: th, TopK: cfg.Match.TopK,
		MaxShots: vc.MaxShots, MinInterval: vc.MinInterval, Cooldown: vc.Cooldown, Timeout: vc.Timeout, MaxOpen: vc.MaxOpen,
		MinConfidenceChange: vc.MinConfidenceChange, Duplicate: vc.Duplicate, Logger: log,
		Emit: func(v *face.Visit) {
			log.Info("visit", "camera", v.Camera, "visit", v.ID, "state", v.State, "rev", v.Rev, "track", v.TrackID,
				"known", v.Decision.Known, "name", v.Decision.Name, "confidence", fmt.Sprintf("%.3f", v.Decision.Confidence),
				"shots", v.Decision.Shots, "repeat", v.Repeat, "reason", v.Decision.Reason)
			for _, s := range visits {
				if err := s.PublishVisit(context.Background(), v); err != nil {
					log.Warn("visit not accepted", "visit", v.ID, "err", err)
				}
			}
		}})
	if err != nil {
		return err
	}
	d.components = append(d.components, component{name: "visits", run: vs.Run})
	st, err := match.NewStage(match.StageOptions{In: p.shots, Out: out, Gallery: p.gallery, TopK: cfg.Match.TopK,
		Thresholds: th, Models: p.models, Visits: vs, Logger: log})
	if err != nil {
		return err
	}
	p.match = st
	d.components = append(d.components, component{name: "match", run: st.Run})
	d.health.watch("match", 5*time.Minute, p.shots.Len, func() uint64 { return st.Stats().Shots })
	return nil
}

// visitSearcher is the gallery as the visit aggregator searches it; nil
// (every visit unknown) without one.
func (p *pipeline) visitSearcher() match.VisitSearcher {
	if p.gallery == nil {
		return nil
	}
	return p.gallery
}

func summarise(v []float64) mqtt.Latency {
	if len(v) == 0 {
		return mqtt.Latency{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	var sum float64
	for _, x := range s {
		sum += x
	}
	return mqtt.Latency{Mean: sum / float64(len(s)), P95: s[min(len(s)-1, int(0.95*float64(len(s))))]}
}

// stats are the pipeline's counters for the MQTT stats topic; latencies
// cover the time since the previous call.
func (p *pipeline) stats() mqtt.Stats {
	ms := p.match.Stats()
	st := mqtt.Stats{SRRuns: ms.Shots, Hits: ms.Shots, Known: ms.Known, Provider: p.provider,
		Dropped: map[string]uint64{}}
	st.Unknowns = st.Hits - st.Known
	for _, c := range p.cams {
		cs := c.Status()
		st.Frames += cs.Frames
		st.Dropped["frames"] += cs.Dropped
	}
	for _, dp := range p.dets {
		ds := dp.Stats()
		st.Faces += ds.Faces
		st.Tracks += ds.TracksStarted
		st.Dropped["probes"] += ds.ProbesDropped
	}
	st.Dropped["sr_faces"] = p.sr.Stats().ShotsDropped
	srLat, matchLat := p.match.TakeLatencies()
	st.SRLatencyMs, st.MatchLatencyMs = summarise(srLat), summarise(matchLat)
	if p.gallery != nil {
		if people, err := p.gallery.List(context.Background()); err == nil {
			st.Gallery = len(people)
		}
	}
	return st
}
