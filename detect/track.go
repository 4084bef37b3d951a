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
	// heights of the predicted centre and its size is within MaxSizeRatio
	// (defaults 1.0 and 1.6). Small, fast faces rarely overlap between frames
	// taken at a few per second.
	MaxCentreDist, MaxSizeRatio float64
	// Timeout ends a track that has not been seen for this long (default 2 s).
	Timeout time.Duration
	// VelocitySmoothing is the weight of the newest velocity measurement in
	// the running estimate (default 0.5).
	VelocitySmoothing float64
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
		o.Timeout = 2 * time.Second
	}
	if o.VelocitySmoothing == 0 {
		o.VelocitySmoothing = 0.5
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
	Face Face
	// VX, VY: estimated centre velocity in pixels per second.
	VX, VY float64
	// First and Last seen (frame times); Hits counts observations.
	First, Last time.Time
	Hits        int
}

// Predict is the track's box extrapolated to time t at constant velocity.
func (tr *Track) Predict(t time.Time) Rect {
	dt := t.Sub(tr.Last).Seconds()
	return tr.Face.Box.Translate(tr.VX*dt, tr.VY*dt)
}

// Tracker associates detections across the frames of one camera: greedy
// matching on IoU with the constant-velocity prediction, then on centre
// distance for faces that moved further than their size. Not safe for
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

// Update takes the faces of the frame at time now and returns, for each face
// in order, a copy of the track it now belongs to (new tracks for faces that
// continue none), and the tracks that ended: unseen for longer than Timeout.
// Frame times must not go backwards; a frame older than the previous one is
// treated as taken at the previous time.
func (tk *Tracker) Update(now time.Time, faces []Face) (tracks []Track, ended []Track) {
	if now.Before(tk.last) {
		now = tk.last
	}
	tk.last = now
	var pairs []pair
	for ti, tr := range tk.tracks {
		pred := tr.Predict(now)
		pc := pred.Centre()
		for fi, f := range faces {
			if iou := IoU(pred, f.Box); iou >= tk.o.MinIoU {
				// IoU matches rank before any distance match
				pairs = append(pairs, pair{ti, fi, 1 - iou})
				continue
			}
			h := math.Max(pred.H(), f.Box.H())
			ratio := math.Max(pred.H(), f.Box.H()) / math.Max(1e-9, math.Min(pred.H(), f.Box.H()))
			fc := f.Box.Centre()
			if d := math.Hypot(fc.X-pc.X, fc.Y-pc.Y) / h; d <= tk.o.MaxCentreDist && ratio <= tk.o.MaxSizeRatio {
				pairs = append(pairs, pair{ti, fi, 1 + d})
			}
		}
	}
	sort.Slice(pairs, func(i, j int) bool { return pairs[i].cost < pairs[j].cost })
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
		tk.observe(tk.tracks[p.t], now, faces[p.f])
	}
	tracks = make([]Track, len(faces))
	for fi, f := range faces {
		if trackOf[fi] < 0 {
			tr := &Track{ID: tk.next, Face: f, First: now, Last: now, Hits: 1}
			tk.next++
			tk.tracks = append(tk.tracks, tr)
			trackOf[fi] = len(tk.tracks) - 1
		}
		tracks[fi] = *tk.tracks[trackOf[fi]]
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

func (tk *Tracker) observe(tr *Track, now time.Time, f Face) {
	if dt := now.Sub(tr.Last).Seconds(); dt > 0 {
		a, b := tr.Face.Box.Centre(), f.Box.Centre()
		vx, vy := (b.X-a.X)/dt, (b.Y-a.Y)/dt
		if tr.Hits == 1 {
			tr.VX, tr.VY = vx, vy
		} else {
			s := tk.o.VelocitySmoothing
			tr.VX, tr.VY = s*vx+(1-s)*tr.VX, s*vy+(1-s)*tr.VY
		}
	}
	tr.Face, tr.Last = f, now
	tr.Hits++
}

// Active is the number of live tracks.
func (tk *Tracker) Active() int { return len(tk.tracks) }
