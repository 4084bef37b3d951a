package match

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/internal/queue"
)

// HitSink takes the match stage's hits. Publish must not block for long:
// the publish fan-out queues each hit per sink and returns.
type HitSink interface {
	Publish(ctx context.Context, h *face.Hit) error
}

// StageOptions configure the match stage of the daemon.
type StageOptions struct {
	// In delivers the SR stage's batches; Out gets one hit per shot. Both
	// required.
	In  *queue.Queue[[]*face.Shot]
	Out HitSink
	// Gallery searched for every shot; nil when there is none yet (no key
	// file): every face is then unknown with face.ReasonNoGallery. It must
	// have been opened with an embedder.
	Gallery *Gallery
	// TopK candidates reported per hit (default 5).
	TopK int
	// Thresholds decide on super-resolved faces (lower than for photos:
	// Config's match.sr.x<scale>).
	Thresholds Thresholds
	// Direct are the thresholds for faces the SR stage passed on without
	// SR (face.DirectSampler), by their scale (face.DirectScale); a direct
	// face at a scale without an entry is decided by Thresholds.
	Direct map[int]Thresholds
	// Cameras are the per-camera threshold overrides (config
	// cameras[].threshold_offset, margin_offset).
	Cameras CameraOffsets
	// Models maps a role to a model id, stamped on every hit.
	Models map[string]string
	// MaxBatch bounds how many shots are embedded in one call (default 16):
	// every SR batch waiting, whole.
	MaxBatch int
	// Visits, when set, gets every shot after its decision (with its
	// descriptor) and every track-end notice, and fuses them into visits.
	// Its Run is the caller's to run.
	Visits *Visits
	Logger *slog.Logger
}

// StageStats are the match stage's counters since it started.
type StageStats struct {
	// Shots taken, Batches embedded (one embedder call each), Known and
	// Unknown decisions, SearchFailed shots whose embedding or search failed
	// (unknown, face.ReasonSearchFailed), Rejected hits the sink refused.
	Shots, Batches, Known, Unknown, SearchFailed, Rejected uint64
}

// Stage identifies super-resolved faces: it takes the SR stage's batches,
// embeds every waiting shot in one batch, searches the gallery per shot and
// hands each decision, as a hit, to the publish fan-out.
//
// The steps are embed, then decide: a visit aggregator (fusing the shots of
// one track into one decision) goes between them, taking observations and
// deciding on the fused descriptor.
type Stage struct {
	o   StageOptions
	log *slog.Logger

	shots, batches, known, unknown, failed, rejected atomic.Uint64

	latMu           sync.Mutex
	srLat, matchLat []float64
}

// NewStage validates the options.
func NewStage(o StageOptions) (*Stage, error) {
	if o.In == nil || o.Out == nil {
		return nil, errors.New("match stage: In and Out are required")
	}
	if err := o.Thresholds.Check(); err != nil {
		return nil, fmt.Errorf("match stage: %w", err)
	}
	for sc, th := range o.Direct {
		if err := th.Check(); err != nil || !face.IsDirectScale(sc) {
			return nil, fmt.Errorf("match stage: direct thresholds at scale %d: %v (scales %d to %d)", sc, err, face.MinDirectScale, face.MaxDirectScale)
		}
	}
	if o.TopK <= 0 {
		o.TopK = 5
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 16
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Stage{o: o, log: o.Logger.With("component", "match")}, nil
}

// observation is one shot after embedding: what a decision (or a visit
// aggregator) works from. err says why there is no embedding.
type observation struct {
	shot  *face.Shot
	emb   *Embedding
	err   error
	start time.Time
}

// Run identifies shots until ctx ends or the input queue is closed and
// drained; it returns nil then.
func (s *Stage) Run(ctx context.Context) error {
	for {
		batch, err := s.o.In.Pop(ctx)
		if err != nil {
			return nil
		}
		// every other batch already waiting joins it, up to MaxBatch shots
		shots := slices.Clone(batch)
		for len(shots) < s.o.MaxBatch {
			more, ok, _ := s.o.In.TryPop()
			if !ok {
				break
			}
			shots = append(shots, more...)
		}
		// track-end notices (no SR) end their visit in order, after the
		// shots before them
		seg := shots[:0:0]
		for _, sh := range shots {
			if !sh.Probe.Ended {
				seg = append(seg, sh)
				continue
			}
			if !s.identify(ctx, seg) {
				return nil
			}
			seg = seg[:0]
			if s.o.Visits != nil {
				s.o.Visits.TrackEnded(sh.Probe.Camera, sh.Probe.TrackID, sh.Probe.FrameTime)
			}
		}
		if !s.identify(ctx, seg) {
			return nil
		}
	}
}

// identify embeds and decides shots; false when ctx ended.
func (s *Stage) identify(ctx context.Context, shots []*face.Shot) bool {
	if len(shots) == 0 {
		return true
	}
	for _, o := range s.embed(ctx, shots) {
		if ctx.Err() != nil {
			return false
		}
		s.decide(ctx, o)
	}
	return true
}

// embed computes the descriptors of the shots in one embedder call, a
// shot's posterior samples (face.Shot.Samples) fused with its SR into its
// descriptor (Fuse, equal weights). When that call fails, each shot is
// tried alone, so that one bad face does not cost the others their
// decision.
func (s *Stage) embed(ctx context.Context, shots []*face.Shot) []observation {
	now := time.Now()
	obs := make([]observation, len(shots))
	for i, sh := range shots {
		obs[i] = observation{shot: sh, start: now}
	}
	s.shots.Add(uint64(len(shots)))
	if s.o.Gallery == nil {
		return obs
	}
	if err := s.embedShots(ctx, obs); err == nil || len(obs) == 1 {
		if err != nil {
			obs[0].err = err
		}
		return obs
	}
	for i := range obs {
		if err := s.embedShots(ctx, obs[i:i+1]); err != nil {
			obs[i].err = err
		}
	}
	return obs
}

// embedShots embeds the faces of obs (each shot's SR and samples) in one
// call and sets each observation's descriptor.
func (s *Stage) embedShots(ctx context.Context, obs []observation) error {
	var faces []EmbedInput
	for _, o := range obs {
		faces = append(faces, EmbedInput{Planar: o.shot.SR, Scale: o.shot.Run.Scale})
		for _, p := range o.shot.Samples {
			faces = append(faces, EmbedInput{Planar: p, Scale: o.shot.Run.Scale})
		}
	}
	s.batches.Add(1)
	embs, err := s.o.Gallery.EmbedFaces(ctx, faces)
	if err != nil {
		return err
	}
	at := 0
	for i, o := range obs {
		n := 1 + len(o.shot.Samples)
		e := embs[at]
		if n > 1 {
			vecs := make([][]float32, n)
			for k := range n {
				vecs[k] = embs[at+k].Vector
			}
			if e.Vector, err = Fuse(vecs, nil); err != nil {
				return err
			}
		}
		obs[i].emb = &e
		at += n
	}
	return nil
}

// decide searches the gallery for one observation, logs the outcome and
// hands the hit to the sink.
func (s *Stage) decide(ctx context.Context, o observation) {
	var r *SearchResult
	reason := ""
	err := o.err
	switch {
	case s.o.Gallery == nil:
		reason = face.ReasonNoGallery
	case err == nil:
		th, _, scope := s.o.Cameras.For(o.shot.Probe.Camera, s.thresholds(o.shot))
		r, err = s.o.Gallery.SearchEmbeddingAt(*o.emb, s.o.TopK, th)
		if err == nil && r.Override == "" && scope != "" {
			r.Override, r.OverrideName = scope, o.shot.Probe.Camera
		}
	}
	sh := o.shot
	attrs := s.logAttrs(sh)
	if err != nil {
		s.failed.Add(1)
		s.log.Warn("match failed", append(attrs, "err", err)...)
		r, reason = nil, face.ReasonSearchFailed
	}
	now := time.Now()
	h := NewHit(sh, r, reason, s.thresholds(sh), s.o.Models, now)
	s.noteLatency(sh.Elapsed, now.Sub(o.start))
	if h.Match.Known {
		s.known.Add(1)
		s.log.Info("face", append(attrs, "hit", h.ID, "match", h.Match.Name, "similarity", fmt.Sprintf("%.4f", h.Match.Similarity))...)
	} else {
		s.unknown.Add(1)
		s.log.Info("face", append(attrs, "hit", h.ID, "match", "unknown", "reason", h.Match.Reason)...)
	}
	if err := s.o.Out.Publish(ctx, h); err != nil {
		s.rejected.Add(1)
		s.log.Warn("hit not accepted", "hit", h.ID, "err", err)
	}
	if s.o.Visits != nil {
		vs := VisitShot{Hit: h, Quality: sh.Probe.Quality.Value, TrackStart: sh.Probe.TrackStart}
		if err == nil {
			vs.Embedding = o.emb
		}
		if err := s.o.Visits.Add(vs); err != nil {
			s.log.Warn("shot not added to its visit", "hit", h.ID, "err", err)
		}
	}
}

// thresholds are the ones that decide a shot: Direct's for a direct face
// at a scale it has, else Thresholds.
func (s *Stage) thresholds(sh *face.Shot) Thresholds {
	if sh.Run.Sampler == face.DirectSampler {
		if th, ok := s.o.Direct[sh.Run.Scale]; ok {
			return th
		}
	}
	return s.o.Thresholds
}

// logAttrs describe a shot in the "face" log line (never the face itself).
func (s *Stage) logAttrs(sh *face.Shot) []any {
	p := sh.Probe
	return []any{"camera", p.Camera, "track", p.TrackID, "face_px", p.FacePx,
		"labels", labelList(sh), "labels_from", sh.LabelSource,
		"sampler", sh.Run.Sampler, "evals", sh.Run.Evals,
		"sr_ms", sh.Elapsed.Milliseconds(), "upscaled", p.Upscaled}
}

// labelList is "male=1,glasses=?,no_beard=1": the labels SR used.
func labelList(sh *face.Shot) string {
	var parts []string
	for i, a := range sh.Attributes {
		if i < len(sh.Labels) {
			l := "?"
			if sh.Labels[i] >= 0 {
				l = strconv.Itoa(sh.Labels[i])
			}
			parts = append(parts, a.Name+"="+l)
		}
	}
	return strings.Join(parts, ",")
}

// maxLatencies bounds the latency samples kept between two TakeLatencies.
const maxLatencies = 10000

func (s *Stage) noteLatency(sr, m time.Duration) {
	s.latMu.Lock()
	defer s.latMu.Unlock()
	if len(s.srLat) < maxLatencies {
		s.srLat = append(s.srLat, float64(sr.Microseconds())/1000)
		s.matchLat = append(s.matchLat, float64(m.Microseconds())/1000)
	}
}

// TakeLatencies returns the SR and match latencies (ms) of the hits since
// the previous call (at most 10,000) and starts over.
func (s *Stage) TakeLatencies() (srMs, matchMs []float64) {
	s.latMu.Lock()
	defer s.latMu.Unlock()
	srMs, matchMs = s.srLat, s.matchLat
	s.srLat, s.matchLat = nil, nil
	return srMs, matchMs
}

// Stats returns the counters; safe to call while Run runs.
func (s *Stage) Stats() StageStats {
	return StageStats{Shots: s.shots.Load(), Batches: s.batches.Load(), Known: s.known.Load(), Unknown: s.unknown.Load(),
		SearchFailed: s.failed.Load(), Rejected: s.rejected.Load()}
}
