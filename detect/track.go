package detect

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// TrackerOptions configures a Tracker. Zero values take the defaults.
type TrackerOptions struct {
	// MinIoU: a detection continues a track when its box overlaps the track's
	// predicted box by at least this much (default 0.3).
	MinIoU float64
	// MaxCentreDist: failing that, when its centre lies within this many face
	// heights of the predicted centre, plus the distance the prediction may
	// have drifted since the track was last seen (see MaxSpeed and
	// SpeedUncertainty), and its size is within MaxSizeRatio (defaults 1.0
	// and 1.6). Small, fast faces rarely overlap between frames taken at a
	// few per second.
	MaxCentreDist, MaxSizeRatio float64
	// Timeout is the gap tolerance: a track coasts on its constant-velocity
	// prediction while no detection continues it, and ends once it has not
	// been seen for longer than this (default 6 s; the daemon's
	// detect.track_timeout). A detector cut short by its time budget sees a
	// face only every few frames, so gaps of several seconds are normal
	// there: on the demo scene at the default 150 ms budget the longest gap
	// within one crossing was 3 s, at 50 ms 8.6 s (bench/RESULTS.md).
	Timeout time.Duration
	// VelocitySmoothing is the weight of the newest velocity measurement in
	// the running estimate (default 0.5).
	VelocitySmoothing float64
	// MaxSpeed, in face heights per second, is how far a face whose velocity
	// is not known yet (a track seen once) may have moved per second of gap
	// (default 10: a walking person covers about 7 face heights per second).
	MaxSpeed float64
	// SpeedUncertainty, in face heights per second, is how far the
	// constant-velocity prediction of a track seen at least twice may drift
	// per second of gap (default 2).
	SpeedUncertainty float64
	// NoAppearance associates on motion alone: UpdateWith ignores the
	// descriptors (and Pipeline computes none).
	NoAppearance bool
	// AppearanceWeight scales the appearance term in the association cost:
	// cost = distance / allowed distance + AppearanceWeight * (1 - similarity)
	// (default 1).
	AppearanceWeight float64
	// MinAppearance is the least similarity (Bhattacharyya coefficient of
	// the colour histograms, in (0, 1]) between a track and a detection for
	// a match that does not rest on box overlap (default 0.6). On the demo
	// scene one person's descriptors had a similarity of 0.98 or more (5th
	// percentile), two people's at most 0.46. Used only when both have a
	// descriptor.
	MinAppearance float64
	// AppearanceSmoothing is the weight of the newest descriptor in a
	// track's running appearance (default 0.3).
	AppearanceSmoothing float64
}

func (o *TrackerOptions) setDefaults() {
	if o.MinIoU == 0 {
		o.MinIoU = 0.3
	}
	if o.MaxCentreDist == 0 {
		o.MaxCentreDist = 1
	}
	if o.MaxSizeRatio == 0 {
		o.MaxSizeRatio = 1.6
	}
	if o.Timeout == 0 {
		o.Timeout = 6 * time.Second
	}
	if o.VelocitySmoothing == 0 {
		o.VelocitySmoothing = 0.5
	}
	if o.MaxSpeed == 0 {
		o.MaxSpeed = 10
	}
	if o.SpeedUncertainty == 0 {
		o.SpeedUncertainty = 2
	}
	if o.AppearanceWeight == 0 {
		o.AppearanceWeight = 1
	}
	if o.MinAppearance == 0 {
		o.MinAppearance = 0.6
	}
	if o.AppearanceSmoothing == 0 {
		o.AppearanceSmoothing = 0.3
	}
}

func (o *TrackerOptions) validate() error {
	var probs []string
	if o.MinIoU <= 0 || o.MinIoU >= 1 {
		probs = append(probs, fmt.Sprintf("min iou %g: want (0, 1)", o.MinIoU))
	}
	if o.MaxCentreDist < 0 {
		probs = append(probs, fmt.Sprintf("max centre distance %g: must not be negative", o.MaxCentreDist))
	}
	if o.MaxSizeRatio < 1 {
		probs = append(probs, fmt.Sprintf("max size ratio %g: want >= 1", o.MaxSizeRatio))
	}
	if o.Timeout <= 0 {
		probs = append(probs, fmt.Sprintf("timeout %v: must be positive", o.Timeout))
	}
	if o.VelocitySmoothing <= 0 || o.VelocitySmoothing > 1 {
		probs = append(probs, fmt.Sprintf("velocity smoothing %g: want (0, 1]", o.VelocitySmoothing))
	}
	if o.MaxSpeed < 0 || o.MaxSpeed > 1000 {
		probs = append(probs, fmt.Sprintf("max speed %g face heights/s: want 0..1000", o.MaxSpeed))
	}
	if o.SpeedUncertainty < 0 || o.SpeedUncertainty > 1000 {
		probs = append(probs, fmt.Sprintf("speed uncertainty %g face heights/s: want 0..1000", o.SpeedUncertainty))
	}
	if o.AppearanceWeight < 0 || o.AppearanceWeight > 100 {
		probs = append(probs, fmt.Sprintf("appearance weight %g: want 0..100", o.AppearanceWeight))
	}
	if o.MinAppearance < 0 || o.MinAppearance > 1 {
		probs = append(probs, fmt.Sprintf("min appearance %g: want (0, 1]", o.MinAppearance))
	}
	if o.AppearanceSmoothing <= 0 || o.AppearanceSmoothing > 1 {
		probs = append(probs, fmt.Sprintf("appearance smoothing %g: want (0, 1]", o.AppearanceSmoothing))
	}
	if len(probs) > 0 {
		return fmt.Errorf("detect: tracker: %s", joinProbs(probs))
	}
	return nil
}

// Track is a face followed over frames.
type Track struct {
	// ID is unique within its Tracker, counting from 1.
	ID uint64
	// Face is the latest observation.
	Face Detection
	// VX, VY: estimated centre velocity in pixels per second (0 until the
	// track has been seen twice).
	VX, VY float64
	// First and Last seen (frame times); Hits counts observations.
	First, Last time.Time
	Hits        int
	// Appearance is the running appearance descriptor (see Appearance); nil
	// when the detections came without one.
	Appearance []float32
}

// Predict is the track's box extrapolated to time t at constant velocity.
func (tr *Track) Predict(t time.Time) Rect {
	dt := t.Sub(tr.Last).Seconds()
	return tr.Face.Box.Translate(tr.VX*dt, tr.VY*dt)
}

// Tracker associates detections across the frames of one camera. Each live
// track predicts its box at constant velocity; a detection continues the
// track whose prediction it overlaps (IoU), else the one whose predicted
// centre is near enough, the allowed distance growing with the time since
// the track was last seen (a coasting track's prediction grows uncertain),
// ranked by distance and appearance (colour histograms of the face and the
// body below it). Pairs are taken greedily, cheapest first. Not safe for
// concurrent use.
type Tracker struct {
	o      TrackerOptions
	next   uint64
	tracks []*Track
	last   time.Time
}

// NewTracker validates the options.
func NewTracker(o TrackerOptions) (*Tracker, error) {
	o.setDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	return &Tracker{o: o, next: 1}, nil
}

type pair struct {
	t, f int
	cost float64
}

// Update is UpdateWith without appearance descriptors.
func (tk *Tracker) Update(now time.Time, faces []Detection) (tracks []Track, ended []Track) {
	return tk.UpdateWith(now, faces, nil)
}

// UpdateWith takes the faces of the frame at time now, and optionally their
// appearance descriptors (descs[i] for faces[i], from Appearance; nil or
// shorter slices mean none), and returns, for each face in order, a copy of
// the track it now belongs to (new tracks for faces that continue none),
// and the tracks that ended: unseen for longer than Timeout. Frame times
// must not go backwards; a frame older than the previous one is treated as
// taken at the previous time.
func (tk *Tracker) UpdateWith(now time.Time, faces []Detection, descs [][]float32) (tracks []Track, ended []Track) {
	if now.Before(tk.last) {
		now = tk.last
	}
	tk.last = now
	desc := func(i int) []float32 {
		if !tk.o.NoAppearance && i < len(descs) && len(descs[i]) == AppearanceLen {
			return descs[i]
		}
		return nil
	}
	var pairs []pair
	for ti, tr := range tk.tracks {
		if now.Sub(tr.Last) > tk.o.Timeout {
			continue // ends below
		}
		for fi, f := range faces {
			if c, ok := tk.cost(tr, now, f, desc(fi)); ok {
				pairs = append(pairs, pair{ti, fi, c})
			}
		}
	}
	sort.SliceStable(pairs, func(i, j int) bool { return pairs[i].cost < pairs[j].cost })
	trackOf := make([]int, len(faces))
	for i := range trackOf {
		trackOf[i] = -1
	}
	usedT := make([]bool, len(tk.tracks))
	for _, p := range pairs {
		if usedT[p.t] || trackOf[p.f] >= 0 {
			continue
		}
		usedT[p.t], trackOf[p.f] = true, p.t
		tk.observe(tk.tracks[p.t], now, faces[p.f], desc(p.f))
	}
	tracks = make([]Track, len(faces))
	for fi, f := range faces {
		if trackOf[fi] < 0 {
			tr := &Track{ID: tk.next, Face: f, First: now, Last: now, Hits: 1}
			if d := desc(fi); d != nil {
				tr.Appearance = append([]float32(nil), d...)
			}
			tk.next++
			tk.tracks = append(tk.tracks, tr)
			trackOf[fi] = len(tk.tracks) - 1
		}
		tracks[fi] = *tk.tracks[trackOf[fi]]
		tracks[fi].Appearance = nil // the copy does not share the running descriptor
	}
	alive := tk.tracks[:0]
	for _, tr := range tk.tracks {
		if now.Sub(tr.Last) > tk.o.Timeout {
			ended = append(ended, *tr)
			continue
		}
		alive = append(alive, tr)
	}
	clear(tk.tracks[len(alive):])
	tk.tracks = alive
	return tracks, ended
}

// cost scores the detection f as the continuation of tr; ok is false when it
// is outside the track's gates.
func (tk *Tracker) cost(tr *Track, now time.Time, f Detection, d []float32) (float64, bool) {
	pred := tr.Predict(now)
	if iou := IoU(pred, f.Box); iou >= tk.o.MinIoU {
		// overlap ranks before any distance match
		return 1 - iou, true
	}
	lo, hi := math.Min(pred.H(), f.Box.H()), math.Max(pred.H(), f.Box.H())
	if hi/math.Max(lo, 1e-9) > tk.o.MaxSizeRatio {
		return 0, false
	}
	// the allowed distance in face heights: the detector's jitter plus how
	// far the prediction may be off after dt seconds
	dt := now.Sub(tr.Last).Seconds()
	drift := tk.o.SpeedUncertainty
	if tr.Hits < 2 {
		drift = tk.o.MaxSpeed
	}
	allowed := tk.o.MaxCentreDist + drift*dt
	pc, fc := pred.Centre(), f.Box.Centre()
	dist := math.Hypot(fc.X-pc.X, fc.Y-pc.Y) / hi
	if dist > allowed || allowed == 0 {
		return 0, false
	}
	c := 1 + dist/allowed
	if tr.Appearance != nil && d != nil {
		sim := Similarity(tr.Appearance, d)
		if sim < tk.o.MinAppearance {
			return 0, false
		}
		c += tk.o.AppearanceWeight * (1 - sim)
	}
	return c, true
}

func (tk *Tracker) observe(tr *Track, now time.Time, f Detection, d []float32) {
	if dt := now.Sub(tr.Last).Seconds(); dt > 0 {
		a, b := tr.Face.Box.Centre(), f.Box.Centre()
		vx, vy := (b.X-a.X)/dt, (b.Y-a.Y)/dt
		if tr.Hits == 1 {
			tr.VX, tr.VY = vx, vy
		} else {
			// a measurement over a long gap averages out the detector's
			// jitter: weigh it more
			s := math.Min(1, tk.o.VelocitySmoothing*math.Max(1, dt/0.4))
			tr.VX, tr.VY = s*vx+(1-s)*tr.VX, s*vy+(1-s)*tr.VY
		}
	}
	switch {
	case d == nil:
	case tr.Appearance == nil:
		tr.Appearance = append(tr.Appearance[:0], d...)
	default:
		s := float32(tk.o.AppearanceSmoothing)
		for i, v := range d {
			tr.Appearance[i] = s*v + (1-s)*tr.Appearance[i]
		}
	}
	tr.Face, tr.Last = f, now
	tr.Hits++
}

// Active is the number of live tracks.
func (tk *Tracker) Active() int { return len(tk.tracks) }

// Predictions are the boxes the live tracks predict at time t (frame
// time), leaving out those the next update at t ends (unseen for longer
// than Timeout): where the detector should look (Image.Hints).
func (tk *Tracker) Predictions(t time.Time) []Rect {
	var out []Rect
	for _, tr := range tk.tracks {
		if t.Sub(tr.Last) <= tk.o.Timeout {
			out = append(out, tr.Predict(t))
		}
	}
	return out
}

// Live returns copies of the tracks alive after the last update, in the
// order they started: those seen in that frame (Last is its time) and those
// coasting (not seen then, not ended yet).
func (tk *Tracker) Live() []Track {
	out := make([]Track, len(tk.tracks))
	for i, tr := range tk.tracks {
		out[i] = *tr
		out[i].Appearance = nil
	}
	return out
}

// Appearance descriptor layout: a joint RGB histogram, appBins levels per
// channel, for each of two regions: the face (its box widened by a quarter,
// to take in hair) and the body below it (two face heights wide, from half a
// face height to 2.5 face heights under the chin). Colour histograms survive
// the few pixels of a small face and a change of pose; clothing tells people
// apart where their faces at 12-20 px do not.
const (
	appBins    = 4
	appRegion  = appBins * appBins * appBins
	appSamples = 12 // per side: at most 144 pixels read per region
	// AppearanceLen is the length of an Appearance descriptor.
	AppearanceLen = 2 * appRegion
)

// Appearance computes the appearance descriptor of face f in img: two
// L1-normalised colour histograms (face, body below it), a region outside
// the frame left all zero. It reads at most 288 pixels.
func Appearance(img *Image, f Detection) []float32 {
	d := make([]float32, AppearanceLen)
	if img.check() != nil {
		return d
	}
	b := f.Box
	h := b.H()
	c := b.Centre()
	face := Rect{X0: c.X - 0.625*b.W(), Y0: b.Y0 - 0.25*h, X1: c.X + 0.625*b.W(), Y1: b.Y1}
	body := Rect{X0: c.X - h, Y0: b.Y1 + 0.5*h, X1: c.X + h, Y1: b.Y1 + 2.5*h}
	histogram(d[:appRegion], img, face)
	histogram(d[appRegion:], img, body)
	return d
}

// histogram fills dst with the normalised colour histogram of the part of r
// inside img, sampled on a grid; all zero when too little of r is inside.
func histogram(dst []float32, img *Image, r Rect) {
	x0, y0 := math.Max(r.X0, 0), math.Max(r.Y0, 0)
	x1, y1 := math.Min(r.X1, float64(img.Width)), math.Min(r.Y1, float64(img.Height))
	if x1-x0 < 2 || y1-y0 < 2 || (x1-x0)*(y1-y0) < 0.5*r.Area() {
		return
	}
	nx, ny := min(appSamples, int(x1-x0)), min(appSamples, int(y1-y0))
	var n float32
	for j := range ny {
		y := int(y0 + (float64(j)+0.5)*(y1-y0)/float64(ny))
		for i := range nx {
			x := int(x0 + (float64(i)+0.5)*(x1-x0)/float64(nx))
			p := img.Pix[3*(y*img.Width+x):]
			bb, g, rr := int(p[0])*appBins/256, int(p[1])*appBins/256, int(p[2])*appBins/256
			dst[(rr*appBins+g)*appBins+bb]++
			n++
		}
	}
	for i := range dst {
		dst[i] /= n
	}
}

// Similarity compares two Appearance descriptors: the Bhattacharyya
// coefficient of the histograms, averaged over the regions present in both,
// in [0, 1] (1: the same colours). With no region in common it is 1 (no
// evidence against a match).
func Similarity(a, b []float32) float64 {
	if len(a) != AppearanceLen || len(b) != AppearanceLen {
		return 1
	}
	var sum float64
	var parts int
	for r := 0; r < AppearanceLen; r += appRegion {
		var bc, sa, sb float64
		for i := r; i < r+appRegion; i++ {
			bc += math.Sqrt(float64(a[i]) * float64(b[i]))
			sa += float64(a[i])
			sb += float64(b[i])
		}
		if sa > 0.5 && sb > 0.5 {
			// a running mean of normalised histograms stays normalised
			sum += bc / math.Sqrt(sa*sb)
			parts++
		}
	}
	if parts == 0 {
		return 1
	}
	return sum / float64(parts)
}
