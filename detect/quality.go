package detect

import (
	"fmt"
	"math"
	"time"

	"github.com/srdgd/srdgd/face"
)

// Measure computes the quality of a detection in img.
func (g *Gate) Measure(img *Image, f Detection) face.Quality {
	q := face.Quality{FacePx: f.Px(), Score: f.Score, Frontal: -1}
	q.Sharpness = sharpness(img, f.Box)
	if f.HasLandmarks {
		q.Frontal = frontalness(f)
	}
	size := math.Min(1, q.FacePx/g.o.RefFacePx)
	sharp := math.Min(1, q.Sharpness/g.o.RefSharpness)
	fr := 1.0
	if q.Frontal >= 0 {
		fr = q.Frontal
	}
	q.Value = size * sharp * fr * q.Score
	return q
}

// frontalness projects the nose tip onto the line between the eyes: 0.5 of
// the way is a frontal face; at either eye the head is turned ~45 degrees or
// more.
func frontalness(f Detection) float64 {
	r, l, n := f.Landmarks[RightEye], f.Landmarks[LeftEye], f.Landmarks[NoseTip]
	dx, dy := l.X-r.X, l.Y-r.Y
	d2 := dx*dx + dy*dy
	if d2 == 0 {
		return 0
	}
	t := ((n.X-r.X)*dx + (n.Y-r.Y)*dy) / d2
	return math.Max(0, 1-math.Abs(t-0.5)/0.5)
}

// sharpness is var(Laplacian) / var(gray) over the face box (clipped to the
// frame), gray = (R+G+B)/3 in 0..255, on the box binned by k = floor(h/32)
// (k x k pixel means, so 32..63 px high), times the binned height / 32. Below
// 32 px the ratio halves each time a face doubles in size, which the factor
// undoes; binning larger faces ignores blur finer than the probe can show,
// which the ratio of large, smooth faces would otherwise be dominated by.
func sharpness(img *Image, box Rect) float64 {
	r := box.Int().Intersect(rectXYWH(0, 0, img.Width, img.Height))
	k := max(1, int(box.H())/sharpRef)
	w, h := r.Dx()/k, r.Dy()/k
	if w < 3 || h < 3 {
		return 0
	}
	g := make([]float64, w*h)
	for y := 0; y < h*k; y++ {
		row := img.Pix[3*((r.Min.Y+y)*img.Width+r.Min.X):]
		for x := 0; x < w*k; x++ {
			g[(y/k)*w+x/k] += float64(row[3*x]) + float64(row[3*x+1]) + float64(row[3*x+2])
		}
	}
	var s, s2 float64
	for i := range g {
		g[i] /= float64(3 * k * k)
		s += g[i]
		s2 += g[i] * g[i]
	}
	n := float64(w * h)
	gv := s2/n - (s/n)*(s/n)
	if gv < 1 {
		return 0 // flat patch: no face detail to judge
	}
	var l, l2 float64
	for y := 1; y < h-1; y++ {
		for x := 1; x < w-1; x++ {
			i := y*w + x
			v := g[i-1] + g[i+1] + g[i-w] + g[i+w] - 4*g[i]
			l += v
			l2 += v * v
		}
	}
	m := float64((w - 2) * (h - 2))
	return (l2/m - (l/m)*(l/m)) / gv * (box.H() / float64(k)) / sharpRef
}

// sharpRef is the face height sharpness is normalised to.
const sharpRef = 32

// Rejection reasons, the keys of Stats.Rejected.
const (
	RejectSmall      = "small"
	RejectBlurry     = "blurry"
	RejectNotFrontal = "not_frontal"
	RejectLowScore   = "low_score"
	RejectNotBetter  = "not_better"
	RejectProbeLimit = "probe_limit"
	RejectTooSoon    = "too_soon"
)

// GateOptions configures the quality gates and the best-shot choice. Zero
// values take the defaults.
type GateOptions struct {
	// MinFacePx rejects smaller faces (default 8).
	MinFacePx float64
	// MinSharpness rejects blurrier faces (default 0.22; see Quality.Sharpness).
	MinSharpness float64
	// MinFrontal rejects faces turned further away (default 0.3; 7 % of
	// CelebA's aligned faces are below); faces without landmarks are not judged.
	MinFrontal float64
	// MinScore rejects weaker detections (default 0.6).
	MinScore float64
	// Margin: after a track's first probe, another one is sent when its
	// Value beats the best sent so far by this fraction (default 0.25).
	Margin float64
	// MinInterval, when > 0, also sends a track's later shots that are not
	// clearly better, once at least this long (frame time) has passed since
	// its last probe: up to MaxProbesPerTrack probes spread over the track,
	// for the match stage to fuse into one visit decision (CheckAt). 0: only
	// clearly better shots follow the first (the single best-shot rule).
	MinInterval time.Duration
	// MaxProbesPerTrack caps the probes per track (default 4; -1 = no cap).
	MaxProbesPerTrack int
	// RefFacePx and RefSharpness saturate the size and sharpness terms of
	// Quality.Value (defaults 48 px and 0.5).
	RefFacePx, RefSharpness float64
}

func (o *GateOptions) setDefaults() {
	if o.MinFacePx == 0 {
		o.MinFacePx = 8
	}
	if o.MinSharpness == 0 {
		o.MinSharpness = 0.22
	}
	if o.MinFrontal == 0 {
		o.MinFrontal = 0.3
	}
	if o.MinScore == 0 {
		o.MinScore = 0.6
	}
	if o.Margin == 0 {
		o.Margin = 0.25
	}
	if o.MaxProbesPerTrack == 0 {
		o.MaxProbesPerTrack = 4
	}
	if o.RefFacePx == 0 {
		o.RefFacePx = 48
	}
	if o.RefSharpness == 0 {
		o.RefSharpness = 0.5
	}
}

func (o *GateOptions) validate() error {
	var probs []string
	if o.MinFacePx < 0 || o.MinSharpness < 0 || o.MinScore < 0 || o.Margin < 0 || o.MinInterval < 0 {
		probs = append(probs, "min face, min sharpness, min score, margin and min interval must not be negative")
	}
	if o.MinFrontal < 0 || o.MinFrontal > 1 {
		probs = append(probs, fmt.Sprintf("min frontal %g: want 0..1", o.MinFrontal))
	}
	if o.MinScore >= 1 {
		probs = append(probs, fmt.Sprintf("min score %g: want below 1", o.MinScore))
	}
	if o.MaxProbesPerTrack < -1 {
		probs = append(probs, fmt.Sprintf("max probes per track %d: want -1 (no cap) or more", o.MaxProbesPerTrack))
	}
	if o.RefFacePx <= 0 || o.RefSharpness <= 0 {
		probs = append(probs, "reference face size and sharpness must be positive")
	}
	if len(probs) > 0 {
		return fmt.Errorf("detect: gate: %s", joinProbs(probs))
	}
	return nil
}

// Gate applies the quality gates and keeps the best shot per track. Not safe
// for concurrent use.
type Gate struct {
	o      GateOptions
	best   map[uint64]float64
	probes map[uint64]int
	last   map[uint64]time.Time // frame time of the track's last probe
	stats  GateStats
}

// GateStats counts the gate's decisions.
type GateStats struct {
	// Checked observations; Accepted ones became probes (First of them the
	// first of their track, the rest clearly better shots).
	Checked, Accepted, First uint64
	// Rejected by reason (RejectSmall, RejectBlurry, ...).
	Rejected map[string]uint64
}

// NewGate validates the options.
func NewGate(o GateOptions) (*Gate, error) {
	o.setDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	return &Gate{o: o, best: map[uint64]float64{}, probes: map[uint64]int{}, last: map[uint64]time.Time{},
		stats: GateStats{Rejected: map[string]uint64{}}}, nil
}

// Check decides whether an observation of track id becomes a probe; reason
// is empty when it does, else one of the Reject* constants (counted). It
// applies the best-shot rule only (no MinInterval): CheckAt with the zero
// time.
func (g *Gate) Check(id uint64, q face.Quality) (ok bool, reason string) {
	return g.CheckAt(id, q, time.Time{})
}

// CheckAt is Check for an observation at frame time t: with MinInterval
// set, a shot that passes the quality gates but is not clearly better is
// still sent once MinInterval has passed since the track's last probe
// (RejectTooSoon before that).
func (g *Gate) CheckAt(id uint64, q face.Quality, t time.Time) (ok bool, reason string) {
	g.stats.Checked++
	switch {
	case q.FacePx < g.o.MinFacePx:
		reason = RejectSmall
	case q.Score < g.o.MinScore:
		reason = RejectLowScore
	case q.Sharpness < g.o.MinSharpness:
		reason = RejectBlurry
	case q.Frontal >= 0 && q.Frontal < g.o.MinFrontal:
		reason = RejectNotFrontal
	}
	if reason == "" {
		best, seen := g.best[id]
		switch {
		case seen && g.o.MaxProbesPerTrack >= 0 && g.probes[id] >= g.o.MaxProbesPerTrack:
			reason = RejectProbeLimit
		case seen && q.Value <= best*(1+g.o.Margin):
			reason = RejectNotBetter
			if g.o.MinInterval > 0 && !t.IsZero() {
				if t.Sub(g.last[id]) >= g.o.MinInterval {
					reason = ""
				} else {
					reason = RejectTooSoon
				}
			}
		}
		if reason == "" {
			if !seen {
				g.stats.First++
			}
			g.best[id] = max(g.best[id], q.Value)
			g.probes[id]++
			if !t.IsZero() {
				g.last[id] = t
			}
			g.stats.Accepted++
			return true, ""
		}
	}
	g.stats.Rejected[reason]++
	return false, reason
}

// Forget drops an ended track's best-shot state.
func (g *Gate) Forget(id uint64) {
	delete(g.best, id)
	delete(g.probes, id)
	delete(g.last, id)
}

// Stats returns a copy of the counters.
func (g *Gate) Stats() GateStats {
	s := g.stats
	s.Rejected = make(map[string]uint64, len(g.stats.Rejected))
	for k, v := range g.stats.Rejected {
		s.Rejected[k] = v
	}
	return s
}
