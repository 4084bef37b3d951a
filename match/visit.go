package match

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/srdgd/srdgd/face"
)

// VisitSearcher is what the visit aggregator needs of the gallery: a 1:N
// search of a descriptor at given thresholds, one person's similarity
// (for each shot's similarity to the visit's top candidate) and the number
// of searchable people (the calibrated setting depends on it). *Gallery
// implements it.
type VisitSearcher interface {
	SearchEmbeddingAt(e Embedding, k int, th Thresholds) (*SearchResult, error)
	PersonSimilarity(e Embedding, personID int64) (float64, bool)
	Searchable() int
}

var _ VisitSearcher = (*Gallery)(nil)

// Searchable is the number of people with at least one descriptor of the
// gallery's embedder: the candidates a search can rank.
func (g *Gallery) Searchable() int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	n := 0
	for _, ix := range g.index {
		if len(ix.vecs) > 0 {
			n++
		}
	}
	return n
}

// PersonSimilarity is the best cosine between e and the person's gallery
// descriptors; ok is false when the person has none (or the model differs).
func (g *Gallery) PersonSimilarity(e Embedding, personID int64) (float64, bool) {
	if g.emb == nil || e.Model != g.emb.ModelID() {
		return 0, false
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	ix := g.index[personID]
	if ix == nil || len(ix.vecs) == 0 {
		return 0, false
	}
	best := math.Inf(-1)
	for _, v := range ix.vecs {
		best = max(best, Similarity(e.Vector, v))
	}
	return best, true
}

// FusionDescriptor names the fusion rule in face.Decision.Fusion: the
// quality-weighted mean of the shots' normalised descriptors (Fuse).
const FusionDescriptor = "descriptor"

// Reasons a visit is unknown, besides the search's (face.Reason*).
const (
	ReasonNoShots = "no_descriptor" // no shot of the visit could be embedded
)

// VisitOptions configure NewVisits. Zero values take the documented
// defaults.
type VisitOptions struct {
	// Searcher is the gallery; nil decides every visit unknown
	// (face.ReasonNoGallery).
	Searcher VisitSearcher
	// Cameras are the per-camera threshold overrides, applied on top of
	// the calibrated setting (see Offset).
	Cameras CameraOffsets
	// Emit receives every visit event (new, update, end), in order per
	// visit, each a fresh copy. It is called with the aggregator's lock
	// held, so it must not block for long (the sinks' contract) and must
	// not call back into the aggregator. Required.
	Emit func(*face.Visit)
	// Scale is the SR scale of the shots (8 for 16x16 probes, 16 for 8x8):
	// it picks the calibration entry. Default 8.
	Scale int
	// Calibration maps fused decisions to thresholds and a confidence
	// (default: DefaultCalibration). When it has no entry for Scale the
	// Fallback thresholds decide and Confidence is the uncalibrated
	// placeholder of FallbackLogistic; NewVisits logs which it is.
	Calibration *Calibration
	// Model is the model that reads the shots (ReaderModel of the
	// gallery's embedder at Scale): without a Calibration, the shipped one
	// measured with it is used (DefaultCalibrationFor); "" takes
	// DefaultCalibration. A model without a shipped one is decided by the
	// Fallback thresholds.
	Model string
	// Fallback are the thresholds used without a calibration entry
	// (match.sr.x8 / x16 in the daemon's config); required then. Their
	// Verify and Rule apply to every decision.
	Fallback Thresholds
	// Floor makes Fallback's threshold and margin a floor under the
	// calibrated ones (the daemon sets it when match.sr.x<scale> is set in
	// the config): a calibration may then raise the bar, never lower it.
	// Without it the calibrated setting for the gallery's size decides
	// (an entry without per-size settings is always floored).
	Floor bool
	// TopK candidates are kept per decision (default 5).
	TopK int
	// MaxShots (K) is the most shots a visit fuses (default 8); a better
	// shot replaces the worst kept one beyond it.
	MaxShots int
	// MinInterval keeps kept shots apart in frame time (default 400 ms):
	// a shot closer than that to a kept one replaces it when better, else
	// is dropped. Consecutive frames of a walking person carry little new
	// evidence.
	MinInterval time.Duration
	// MinQuality drops shots whose probe Quality.Value is below it
	// (default 0: the detect gate already judged them).
	MinQuality float64
	// Duplicate is the cosine between two shots' descriptors at or above
	// which they count as the same observation (default 0.995): the better
	// one is kept.
	Duplicate float64
	// MinConfidenceChange is what makes a change of confidence material:
	// an update is published when the decision's person or known flag
	// changes, or its confidence moves by at least this much from the
	// last published event (default 0.1).
	MinConfidenceChange float64
	// Timeout ends a visit no shot or notice has reached for this long
	// (default 60 s): the fallback for a lost track-end notice. Shots
	// reach match only after SR, seconds after their frame, so this
	// counts from the last arrival, not from frame time.
	Timeout time.Duration
	// Cooldown: a visit that names a person who was named on the same
	// camera less than Cooldown before (by another visit) is published
	// with Repeat set, which sinks do not alert on (default 2 min).
	Cooldown time.Duration
	// MaxOpen bounds the open visits (default 64); opening one more ends
	// the one idle longest.
	MaxOpen int
	// TickInterval is how often Run checks the timeouts (default 1 s).
	TickInterval time.Duration
	// Now is the clock (default time.Now); tests set it.
	Now func() time.Time
	// Logger gets component=visits.
	Logger *slog.Logger
}

func (o *VisitOptions) setDefaults() {
	if o.Scale == 0 {
		o.Scale = 8
	}
	if o.TopK == 0 {
		o.TopK = 5
	}
	if o.MaxShots == 0 {
		o.MaxShots = 8
	}
	if o.MinInterval == 0 {
		o.MinInterval = 400 * time.Millisecond
	}
	if o.Duplicate == 0 {
		o.Duplicate = 0.995
	}
	if o.MinConfidenceChange == 0 {
		o.MinConfidenceChange = 0.1
	}
	if o.Timeout == 0 {
		o.Timeout = time.Minute
	}
	if o.Cooldown == 0 {
		o.Cooldown = 2 * time.Minute
	}
	if o.MaxOpen == 0 {
		o.MaxOpen = 64
	}
	if o.TickInterval == 0 {
		o.TickInterval = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

func (o *VisitOptions) validate() error {
	var probs []string
	if o.Emit == nil {
		probs = append(probs, "Emit is required")
	}
	if o.Scale != 8 && o.Scale != 16 {
		probs = append(probs, fmt.Sprintf("scale %d: want 8 or 16", o.Scale))
	}
	if o.TopK < 1 {
		probs = append(probs, fmt.Sprintf("top k %d: want at least 1", o.TopK))
	}
	if o.MaxShots < 1 || o.MaxShots > 64 {
		probs = append(probs, fmt.Sprintf("max shots %d: want 1..64", o.MaxShots))
	}
	if o.MinInterval < 0 || o.Timeout < 0 || o.Cooldown < 0 || o.TickInterval < 0 {
		probs = append(probs, "min interval, timeout, cooldown and tick interval must not be negative")
	}
	if math.IsNaN(o.MinQuality) || o.MinQuality < 0 || o.MinQuality > 1 {
		probs = append(probs, fmt.Sprintf("min quality %v: want 0..1", o.MinQuality))
	}
	if math.IsNaN(o.Duplicate) || o.Duplicate <= 0 || o.Duplicate > 1 {
		probs = append(probs, fmt.Sprintf("duplicate similarity %v: want (0, 1]", o.Duplicate))
	}
	if math.IsNaN(o.MinConfidenceChange) || o.MinConfidenceChange <= 0 || o.MinConfidenceChange > 1 {
		probs = append(probs, fmt.Sprintf("min confidence change %v: want (0, 1]", o.MinConfidenceChange))
	}
	if o.MaxOpen < 1 {
		probs = append(probs, fmt.Sprintf("max open visits %d: want at least 1", o.MaxOpen))
	}
	if len(probs) > 0 {
		return fmt.Errorf("match: visits: %s", joinProblems(probs))
	}
	return nil
}

func joinProblems(p []string) string {
	out := p[0]
	for _, s := range p[1:] {
		out += "; " + s
	}
	return out
}

// FallbackLogistic is the confidence used while the shipped calibration
// has no entry for the scale: 0.5 at the fallback threshold and margin,
// rising by a factor e^2 per 0.01 of similarity or margin above them. It is
// a placeholder of the right shape, not a measured probability.
func FallbackLogistic(th Thresholds) Logistic {
	const slope = 200
	return Logistic{Bias: -slope * (th.Identify + th.Margin), Top: slope, Margin: slope}
}

// VisitShot is one super-resolved shot of a track as the match stage
// offers it to the aggregator.
type VisitShot struct {
	// Hit is the shot as published (ID, Camera, TrackID, FrameTime, FacePx,
	// Attributes); required.
	Hit *face.Hit
	// Quality is the probe's Quality.Value; TrackStart the frame time its
	// track was first seen (zero: the shot's frame time).
	Quality    float64
	TrackStart time.Time
	// Embedding is the shot's descriptor; nil when it was not embedded (no
	// gallery, or the embedder failed): listed, not fused.
	Embedding *Embedding
	// BestJPEG is the SR face as JPEG (the hit's SRJPEG by default).
	JPEG []byte
}

// Shot rejection reasons (VisitStats.Rejected keys).
const (
	RejectLowQuality = "low_quality"
	RejectDuplicate  = "duplicate"
	RejectTooClose   = "too_close"
	RejectWorse      = "worse_than_kept" // K shots kept, all better
	RejectEnded      = "ended"           // the track's visit has already ended
)

// VisitStats are the aggregator's counters since it started.
type VisitStats struct {
	Open                   int
	Started, Ended         uint64
	New, Updates           uint64
	Evicted, TimedOut      uint64
	Shots, Kept, Replaced  uint64
	Rejected               map[string]uint64
	SearchFailed, Repeated uint64
}

type visitKey struct {
	camera string
	track  uint64
}

type keptShot struct {
	ref     face.ShotRef
	emb     *Embedding
	scale   int // Hit.SR.Scale: the SR scale, or a direct scale
	quality float64
	attrs   []face.Attribute
	jpeg    []byte
}

type openVisit struct {
	v         face.Visit
	shots     []keptShot // frame order
	published bool
	last      face.Decision // as last published
	active    time.Time     // last arrival (Now)
	repeat    bool
}

type personKey struct {
	camera string
	person int64
}

// named is when a person was last seen named on a camera, and by which
// visit.
type named struct {
	seen  time.Time
	visit string
}

// Visits aggregates the shots of each (camera, track) into a visit: keeps
// up to MaxShots of them (quality-gated, spread in time, no
// near-duplicates), fuses their descriptors (Fuse, weighted by quality),
// searches the gallery with the fused descriptor and decides open-set with
// the fused calibration's threshold, margin and confidence. It emits a
// visit's events: VisitNew when a decision first names someone (or when the
// visit ends undecided), VisitUpdate when the decision changes materially
// (another person, known/unknown, or confidence by MinConfidenceChange),
// VisitEnd once with the final decision and all kept shots. Safe for
// concurrent use: the match stage calls Add and TrackEnded, Run ticks the
// timeouts.
type Visits struct {
	o     VisitOptions
	log   *slog.Logger
	calib *Calibration
	// entries per number of shots; nil: fallback
	hasCalib bool

	mu     sync.Mutex
	open   map[visitKey]*openVisit
	ended  map[visitKey]time.Time // recently ended tracks, so late shots do not reopen them
	named  map[personKey]named
	stats  VisitStats
	closed bool
}

// NewVisits validates the options and logs how decisions are calibrated.
func NewVisits(o VisitOptions) (*Visits, error) {
	o.setDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	v := &Visits{o: o, log: o.Logger.With("component", "visits"), calib: o.Calibration,
		open: map[visitKey]*openVisit{}, ended: map[visitKey]time.Time{}, named: map[personKey]named{},
		stats: VisitStats{Rejected: map[string]uint64{}}}
	if v.calib == nil && o.Model == "" {
		c, err := DefaultCalibration()
		if err != nil {
			return nil, err
		}
		v.calib = c
	} else if v.calib == nil {
		c, ok, err := DefaultCalibrationFor(o.Model)
		if err != nil {
			return nil, err
		}
		if !ok {
			c = &Calibration{Source: "none shipped for " + o.Model}
		}
		v.calib = c
	}
	if e, err := v.calib.Entry(o.Scale, 1); err == nil {
		v.hasCalib = true
		// direct faces at scales without an entry are decided by Fallback
		v.log.Info("visit decisions calibrated", "scale", o.Scale, "source", v.calib.Source,
			"identify_1shot", e.Identify, "margin_1shot", e.Margin, "direct_scales", v.calib.DirectScales())
	} else {
		if err := o.Fallback.Check(); err != nil || o.Fallback == (Thresholds{}) {
			return nil, fmt.Errorf("match: visits: no calibration entry for x%d and no fallback thresholds: %v", o.Scale, err)
		}
		v.log.Warn("no fused calibration for this scale: visit decisions use the match thresholds, confidence is an uncalibrated placeholder",
			"scale", o.Scale, "calibration", v.calib.Source, "identify", o.Fallback.Identify, "margin", o.Fallback.Margin)
	}
	return v, nil
}

// Stats returns a snapshot of the counters.
func (vs *Visits) Stats() VisitStats {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	s := vs.stats
	s.Open = len(vs.open)
	s.Rejected = make(map[string]uint64, len(vs.stats.Rejected))
	for k, n := range vs.stats.Rejected {
		s.Rejected[k] = n
	}
	return s
}

// Run ends timed-out visits every TickInterval until ctx ends; then it
// ends every open visit (their VisitEnd events are emitted) and returns
// nil. Add and TrackEnded after that are ignored.
func (vs *Visits) Run(ctx context.Context) error {
	t := time.NewTicker(vs.o.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			vs.mu.Lock()
			for k, ov := range vs.open {
				vs.finish(k, ov, ov.v.LastSeen)
			}
			vs.closed = true
			vs.mu.Unlock()
			return nil
		case <-t.C:
			vs.Tick()
		}
	}
}

// Tick ends the visits nothing has reached for Timeout, and forgets the
// cooldown and ended-track records that no longer matter.
func (vs *Visits) Tick() {
	now := vs.o.Now()
	vs.mu.Lock()
	defer vs.mu.Unlock()
	for k, ov := range vs.open {
		if now.Sub(ov.active) >= vs.o.Timeout {
			vs.stats.TimedOut++
			vs.finish(k, ov, ov.v.LastSeen)
		}
	}
	vs.prune(now)
}

// prune forgets ended tracks after Timeout and cooldown records after
// Cooldown (both measured on Now), so both maps stay bounded.
func (vs *Visits) prune(now time.Time) {
	for k, t := range vs.ended {
		if now.Sub(t) >= vs.o.Timeout {
			delete(vs.ended, k)
		}
	}
	for k, n := range vs.named {
		if now.Sub(n.seen) >= vs.o.Cooldown {
			delete(vs.named, k)
		}
	}
}

// TrackEnded ends the track's visit (the detect stage's track-end notice):
// lastSeen is the frame time the face was last seen. A track without a
// visit (no shot reached match) is ignored.
func (vs *Visits) TrackEnded(camera string, track uint64, lastSeen time.Time) {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	if vs.closed {
		return
	}
	k := visitKey{camera, track}
	ov := vs.open[k]
	if ov == nil {
		return
	}
	if lastSeen.After(ov.v.LastSeen) {
		ov.v.LastSeen = lastSeen
	}
	vs.finish(k, ov, ov.v.LastSeen)
}

// Add offers one shot to its track's visit, opening the visit on the
// track's first shot, and publishes the events the new decision calls for.
func (vs *Visits) Add(s VisitShot) error {
	h := s.Hit
	if h == nil {
		return errors.New("match: visits: shot without hit")
	}
	if math.IsNaN(s.Quality) || s.Quality < 0 {
		return fmt.Errorf("match: visits: hit %s: quality %v: want >= 0", h.ID, s.Quality)
	}
	now := vs.o.Now()
	vs.mu.Lock()
	defer vs.mu.Unlock()
	if vs.closed {
		return nil
	}
	vs.stats.Shots++
	k := visitKey{h.Camera, h.TrackID}
	if _, ended := vs.ended[k]; ended {
		vs.stats.Rejected[RejectEnded]++
		return nil
	}
	if s.Quality < vs.o.MinQuality {
		vs.stats.Rejected[RejectLowQuality]++
		return nil
	}
	ov := vs.open[k]
	if ov == nil {
		ov = vs.openVisit(k, s, now)
	}
	ov.active = now
	if h.FrameTime.After(ov.v.LastSeen) {
		ov.v.LastSeen = h.FrameTime
	}
	ov.v.FacePx = max(ov.v.FacePx, h.FacePx)
	jpeg := s.JPEG
	if jpeg == nil {
		jpeg = h.SRJPEG
	}
	direct := h.SR.Sampler == face.DirectSampler && face.IsDirectScale(h.SR.Scale)
	scale := vs.o.Scale
	if direct {
		scale = h.SR.Scale
	}
	ks := keptShot{ref: face.ShotRef{HitID: h.ID, FrameTime: h.FrameTime, FacePx: h.FacePx, Quality: s.Quality, Direct: direct},
		emb: s.Embedding, scale: scale, quality: s.Quality, attrs: h.Attributes, jpeg: jpeg}
	if !vs.keep(ov, ks) {
		return nil
	}
	vs.stats.Kept++
	d := vs.decide(ov)
	vs.announce(k, ov, d)
	return nil
}

// idler reports whether a has been idle longer than b: last active
// earlier, then (a tie, as when shots arrive in one batch) started earlier,
// then by camera and track, so that the choice does not depend on map order.
func idler(a, b *openVisit) bool {
	if !a.active.Equal(b.active) {
		return a.active.Before(b.active)
	}
	if !a.v.Start.Equal(b.v.Start) {
		return a.v.Start.Before(b.v.Start)
	}
	if a.v.Camera != b.v.Camera {
		return a.v.Camera < b.v.Camera
	}
	return a.v.TrackID < b.v.TrackID
}

func (vs *Visits) openVisit(k visitKey, s VisitShot, now time.Time) *openVisit {
	if len(vs.open) >= vs.o.MaxOpen {
		var oldK visitKey
		var old *openVisit
		for kk, o := range vs.open {
			if old == nil || idler(o, old) {
				oldK, old = kk, o
			}
		}
		vs.stats.Evicted++
		vs.log.Warn("too many open visits: ending the one idle longest", "max_open", vs.o.MaxOpen, "camera", old.v.Camera, "visit", old.v.ID)
		vs.finish(oldK, old, old.v.LastSeen)
	}
	start := s.TrackStart
	if start.IsZero() || start.After(s.Hit.FrameTime) {
		start = s.Hit.FrameTime
	}
	ov := &openVisit{active: now, v: face.Visit{ID: face.NewID(start), Camera: k.camera, TrackID: k.track,
		Start: start, LastSeen: s.Hit.FrameTime}}
	ov.v.Decision = face.Decision{Reason: face.ReasonNoGallery, TopK: []face.Candidate{}}
	vs.open[k] = ov
	vs.stats.Started++
	return ov
}

// keep decides whether the shot joins the visit's kept shots: never a
// near-duplicate of a kept one nor closer than MinInterval to one (the
// better of the two stays), at most MaxShots (the worst goes).
func (vs *Visits) keep(ov *openVisit, s keptShot) bool {
	clash := -1
	reason := ""
	for i, o := range ov.shots {
		if d := s.ref.FrameTime.Sub(o.ref.FrameTime); d < vs.o.MinInterval && d > -vs.o.MinInterval {
			clash, reason = i, RejectTooClose
			break
		}
		if s.emb != nil && o.emb != nil && s.emb.Model == o.emb.Model && Cosine(s.emb.Vector, o.emb.Vector) >= vs.o.Duplicate {
			clash, reason = i, RejectDuplicate
			break
		}
	}
	if clash < 0 && len(ov.shots) >= vs.o.MaxShots {
		clash, reason = 0, RejectWorse
		for i, o := range ov.shots {
			if better(ov.shots[clash], o) {
				clash = i
			}
		}
	}
	if clash >= 0 {
		if !better(s, ov.shots[clash]) {
			vs.stats.Rejected[reason]++
			return false
		}
		vs.stats.Replaced++
		ov.shots = slices.Delete(ov.shots, clash, clash+1)
	}
	i, _ := slices.BinarySearchFunc(ov.shots, s, func(a, b keptShot) int { return a.ref.FrameTime.Compare(b.ref.FrameTime) })
	ov.shots = slices.Insert(ov.shots, i, s)
	return true
}

// better ranks shots: an embedded one before one without a descriptor,
// then by quality.
func better(a, b keptShot) bool {
	if (a.emb != nil) != (b.emb != nil) {
		return a.emb != nil
	}
	return a.quality > b.quality
}

// decide fuses the kept shots' descriptors and searches the gallery. When
// the visit has direct faces (srdg.direct_side) only they are fused (one
// read as it is carries more than SR shots of the same person from 16x16,
// bench/RESULTS.md "Direct path"), and decided by the calibration of the
// smallest scale among them: the largest square's, the strictest setting
// (larger faces score higher against impostors too, face.DirectScale).
func (vs *Visits) decide(ov *openVisit) face.Decision {
	d := face.Decision{Fusion: FusionDescriptor, TopK: []face.Candidate{}}
	var descs [][]float32
	var weights []float64
	model := ""
	direct := slices.ContainsFunc(ov.shots, func(s keptShot) bool { return s.emb != nil && s.ref.Direct })
	scale := vs.o.Scale
	if direct {
		scale = face.MaxDirectScale
	}
	for _, s := range ov.shots {
		if s.emb == nil || (model != "" && s.emb.Model != model) || s.ref.Direct != direct {
			continue
		}
		if direct {
			scale = min(scale, s.scale)
		}
		model = s.emb.Model
		descs = append(descs, s.emb.Vector)
		// a shot of quality 0 still says something: the gate passed it
		weights = append(weights, max(s.quality, 0.01))
	}
	d.Shots = len(descs)
	people := 0
	if vs.o.Searcher != nil {
		people = vs.o.Searcher.Searchable()
	}
	th, lg := vs.setting(scale, len(descs), people)
	th, off, scope := vs.o.Cameras.For(ov.v.Camera, th)
	override, overrideName := scope, ""
	if scope != "" {
		overrideName = ov.v.Camera
	}
	d.Threshold, d.MinMargin = th.Identify, th.Margin
	switch {
	case vs.o.Searcher == nil:
		d.Reason = face.ReasonNoGallery
		return explained(d, th)
	case len(descs) == 0:
		d.Reason = ReasonNoShots
		return explained(d, th)
	}
	fused, err := Fuse(descs, weights)
	if err != nil {
		vs.stats.SearchFailed++
		d.Reason = face.ReasonSearchFailed
		return explained(d, th)
	}
	e := Embedding{Vector: fused, Model: model}
	r, err := vs.o.Searcher.SearchEmbeddingAt(e, vs.o.TopK, th)
	if err != nil {
		vs.stats.SearchFailed++
		vs.log.Warn("visit search failed", "visit", ov.v.ID, "err", err)
		d.Reason = face.ReasonSearchFailed
		return explained(d, th)
	}
	if r.Override != "" {
		th, override, overrideName = r.Thresholds, r.Override, r.OverrideName
		d.Threshold, d.MinMargin = th.Identify, th.Margin
		off = off.Add(r.PersonOffset)
	}
	d.Reason = r.Reason
	for _, c := range r.Candidates {
		d.TopK = append(d.TopK, face.Candidate{PersonID: c.PersonID, Name: c.Name, Similarity: c.Similarity, Watchlist: c.Watchlist})
	}
	if len(r.Candidates) > 0 {
		d.Similarity = r.Candidates[0].Similarity
		d.Margin = d.Similarity
		if len(r.Candidates) > 1 {
			d.Margin -= r.Candidates[1].Similarity
		}
		// the confidence map was fitted at the calibrated bar: an override
		// moves the bar, so the map moves with it
		d.Confidence = lg.P(d.Similarity-off.Threshold, d.Margin-off.Margin)
	}
	if r.Match != nil {
		d.Known, d.PersonID, d.Name, d.Watchlist, d.Reason = true, r.Match.PersonID, r.Match.Name, r.Match.Watchlist, ""
	}
	if override != "" && len(r.Candidates) > 0 {
		// the map weighs similarity against lead; an override's bar is
		// the operator's policy, and its decision wins: the confidence
		// stays on the decision's side of one half
		if d.Known {
			d.Confidence = max(d.Confidence, 0.5)
		} else {
			d.Confidence = min(d.Confidence, 0.499)
		}
	}
	// each shot's own similarity to the top candidate
	for i := range ov.shots {
		ov.shots[i].ref.Similarity = 0
		if len(r.Candidates) > 0 && ov.shots[i].emb != nil {
			if s, ok := vs.o.Searcher.PersonSimilarity(*ov.shots[i].emb, r.Candidates[0].PersonID); ok {
				ov.shots[i].ref.Similarity = s
			}
		}
	}
	return explainedBy(d, th, override, overrideName)
}

// cloneExplanation copies e's candidates, so that no two events share them.
func cloneExplanation(e face.Explanation) face.Explanation {
	if e.Closest != nil {
		c := *e.Closest
		e.Closest = &c
	}
	if e.RunnerUp != nil {
		c := *e.RunnerUp
		e.RunnerUp = &c
	}
	return e
}

// explained sets the decision's explanation.
func explained(d face.Decision, th Thresholds) face.Decision {
	return explainedBy(d, th, "", "")
}

// explainedBy sets the decision's explanation, naming the threshold
// override that set th (scope face.OverridePerson or face.OverrideCamera).
func explainedBy(d face.Decision, th Thresholds, override, name string) face.Decision {
	outcome := d.Reason
	if d.Known {
		outcome = face.OutcomeNamed
	}
	d.Explanation = Explain(outcome, d.TopK, th, d.Shots, override, name)
	return d
}

// setting is the threshold, margin and confidence map for a decision fused
// from n shots at scale (Scale, or a direct one) against a gallery of
// people searchable people.
func (vs *Visits) setting(scale, n, people int) (Thresholds, Logistic) {
	if vs.hasCalib {
		if e, err := vs.calib.Entry(scale, max(n, 1)); err == nil {
			g := e.ForGallery(people)
			th := Thresholds{Identify: g.Identify, Margin: g.Margin, Verify: vs.o.Fallback.Verify, Rule: vs.o.Fallback.Rule}
			// Fallback is match.sr.x<Scale>: it floors SR decisions only
			if scale == vs.o.Scale && (vs.o.Floor || len(e.Galleries) == 0) {
				// the installer's match.sr.x<scale>, or an entry measured
				// without smaller galleries (face-api's fused.json, from
				// 100-150 val probes: its x8 4-shot 0.80 / 0.015 let 3.8 %
				// of unknown test probes through, bench/RESULTS.md
				// "Multi-shot"): the calibration may raise the bar, never
				// lower it
				th.Identify, th.Margin = max(th.Identify, vs.o.Fallback.Identify), max(th.Margin, vs.o.Fallback.Margin)
			}
			lg := g.Logistic
			if lg.Top <= 0 {
				// a fit whose probability falls as similarity rises (too few
				// genuine searches to fit): not a probability to show
				lg = FallbackLogistic(th)
			}
			return th, lg
		}
	}
	return vs.o.Fallback, FallbackLogistic(vs.o.Fallback)
}

// material is true when d differs from the last published decision enough
// to publish an update.
func (vs *Visits) material(last, d face.Decision) bool {
	return last.Known != d.Known || last.PersonID != d.PersonID ||
		math.Abs(last.Confidence-d.Confidence) >= vs.o.MinConfidenceChange-1e-12
}

// announce stores the decision and publishes new/update as it calls for.
func (vs *Visits) announce(k visitKey, ov *openVisit, d face.Decision) {
	ov.v.Decision = d
	switch {
	case !ov.published && d.Known:
		vs.checkRepeat(ov, d)
		vs.emit(ov, face.VisitNew)
	case ov.published && vs.material(ov.last, d):
		if d.Known && d.PersonID != ov.last.PersonID {
			vs.checkRepeat(ov, d)
		}
		vs.emit(ov, face.VisitUpdate)
	}
}

// checkRepeat sets Repeat when the decided person was named on this camera
// within the cooldown by another visit.
func (vs *Visits) checkRepeat(ov *openVisit, d face.Decision) {
	pk := personKey{ov.v.Camera, d.PersonID}
	if n, ok := vs.named[pk]; ok && n.visit != ov.v.ID && ov.v.Start.Sub(n.seen) < vs.o.Cooldown {
		if !ov.repeat {
			vs.stats.Repeated++
		}
		ov.repeat = true
	} else {
		ov.repeat = false
	}
}

// finish ends a visit: VisitNew first when it was never published, then
// VisitEnd.
func (vs *Visits) finish(k visitKey, ov *openVisit, end time.Time) {
	delete(vs.open, k)
	vs.ended[k] = vs.o.Now()
	vs.stats.Ended++
	ov.v.End = end
	if !ov.published {
		vs.emit(ov, face.VisitNew)
	}
	vs.emit(ov, face.VisitEnd)
}

// emit publishes a copy of the visit in its current state.
func (vs *Visits) emit(ov *openVisit, state string) {
	ov.v.Rev++
	ov.v.State = state
	if state == face.VisitNew {
		vs.stats.New++
	} else if state == face.VisitUpdate {
		vs.stats.Updates++
	}
	ov.published = true
	ov.last = ov.v.Decision
	if ov.v.Decision.Known {
		// remembered until Cooldown after the person was last seen named
		vs.named[personKey{ov.v.Camera, ov.v.Decision.PersonID}] = named{ov.v.LastSeen, ov.v.ID}
	}
	out := ov.v
	if state != face.VisitEnd {
		out.End = time.Time{}
	}
	out.Repeat = ov.repeat && out.Decision.Known
	out.Decision.TopK = slices.Clone(ov.v.Decision.TopK)
	out.Decision.Explanation = cloneExplanation(ov.v.Decision.Explanation)
	out.Shots = make([]face.ShotRef, len(ov.shots))
	best := -1
	for i, s := range ov.shots {
		out.Shots[i] = s.ref
		switch {
		case best < 0:
			best = i
		case out.Decision.Known && s.emb != nil && (ov.shots[best].emb == nil || s.ref.Similarity > ov.shots[best].ref.Similarity):
			best = i
		case !out.Decision.Known && better(s, ov.shots[best]):
			best = i
		}
	}
	if best >= 0 {
		out.BestShot = ov.shots[best].ref.HitID
		out.BestJPEG = ov.shots[best].jpeg
	}
	out.Attributes = fuseAttributes(ov.shots)
	vs.o.Emit(&out)
}

// fuseAttributes averages the shots' attribute probabilities; a label is
// kept where every shot that had one agrees.
func fuseAttributes(shots []keptShot) []face.Attribute {
	out := []face.Attribute{}
	idx := map[string]int{}
	type acc struct {
		sum   float64
		n     int
		label *int
		src   string
		mixed bool
	}
	var accs []acc
	for _, s := range shots {
		for _, a := range s.attrs {
			i, ok := idx[a.Name]
			if !ok {
				i = len(out)
				idx[a.Name] = i
				out = append(out, face.Attribute{Name: a.Name, Source: face.LabelsNone})
				accs = append(accs, acc{})
			}
			c := &accs[i]
			if a.Probability != nil {
				c.sum += *a.Probability
				c.n++
			}
			if a.Label != nil {
				switch {
				case c.label == nil && !c.mixed:
					l := *a.Label
					c.label, c.src = &l, a.Source
				case c.label != nil && *c.label != *a.Label:
					c.label, c.mixed = nil, true
				}
			}
		}
	}
	for i := range out {
		if c := accs[i]; c.n > 0 {
			p := c.sum / float64(c.n)
			out[i].Probability = &p
		}
		if c := accs[i]; c.label != nil {
			out[i].Label, out[i].Source = c.label, c.src
		}
	}
	return out
}
