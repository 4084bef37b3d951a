package detect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/internal/queue"
	"github.com/srdgd/srdgd/internal/ratelog"
)

// PipelineOptions configures NewPipeline.
type PipelineOptions struct {
	// In delivers frames (any number of cameras); Out receives probes. Both
	// required. Out drops its oldest probe when full, and the drop is counted.
	In  *queue.Queue[*face.Frame]
	Out *queue.Queue[*face.Probe]
	// Detector is used by Run's goroutine only; the caller closes it.
	Detector Detector
	// FPS is the most frames per second analysed per camera (default 5);
	// frames arriving faster are skipped and counted. Negative: no limit.
	FPS     float64
	Tracker TrackerOptions
	Gate    GateOptions
	Probe   ProbeOptions
	// TrackEnds sends a track-end notice (face.TrackEnd, a Probe with Ended
	// set) to Out for every ended track that had a probe, behind its
	// probes, so that the match stage can close the track's visit.
	TrackEnds bool
	// OnTracks, when set, receives the tracker's boxes of every analysed
	// frame at frame time (face.TrackBoxes: the frame's sequence number,
	// time and PTS, every live track, also when there are none), on Run's
	// goroutine right after tracking, before the frame's probes are cut.
	// It must not block: queue and drop (the live view does).
	OnTracks func(face.TrackBoxes)
	// CoastBoxes is how long after a track was last seen OnTracks still
	// reports its predicted box, marked Coasting (default 1 s; negative:
	// never). A track coasts for up to Tracker.Timeout, but a prediction
	// seconds old is not where the face is.
	CoastBoxes time.Duration
	// NoTrackHints stops handing the detector each live track's predicted
	// box (Image.Hints). Unset, BlazeFace looks there in every analysed
	// frame, so a tracked face's detections are dense although the time
	// budget lets the full search cover the frame only every few frames.
	// The daemon sets it from detect.track.hints (off by default: dense
	// detections did not name more people where SR is the limit).
	NoTrackHints bool
	// WarnInterval aggregates recurring warnings (default 10 s).
	WarnInterval time.Duration
	// Logger gets component=detect. Default: discard.
	Logger *slog.Logger
}

// Stats are the pipeline's counters since it started.
type Stats struct {
	// Frames analysed; RateSkipped frames skipped to hold FPS.
	Frames, RateSkipped uint64
	// Faces detected, windows run and skipped by the time budget, frames whose
	// budget ran out.
	Faces, Windows, WindowsSkipped, OverBudget uint64
	// HintWindows: of Windows, those centred on tracks' predictions.
	HintWindows                uint64
	TracksStarted, TracksEnded uint64
	// Probes emitted; ProbesDropped by the full output queue; TrackEnds the
	// track-end notices sent (TrackEnds option).
	Probes, ProbesDropped, TrackEnds uint64
	// Errors: failed detections and crops.
	Errors uint64
	// DetectTime is the total time spent in Detect.
	DetectTime time.Duration
	// Gate sums the quality-gate counters over the cameras.
	Gate GateStats
}

type camState struct {
	tracker *Tracker
	gate    *Gate
	last    time.Time
}

// Pipeline runs detection, tracking, quality gates and probe cropping over
// the frames of any number of cameras.
type Pipeline struct {
	o      PipelineOptions
	log    *slog.Logger
	prober *Prober
	cams   map[string]*camState

	mu    sync.Mutex
	stats Stats

	warnFail *ratelog.Limiter
}

// NewPipeline validates the options.
func NewPipeline(o PipelineOptions) (*Pipeline, error) {
	var probs []string
	if o.In == nil || o.Out == nil {
		probs = append(probs, "input and output queues are required")
	}
	if o.Detector == nil {
		probs = append(probs, "a detector is required")
	}
	if o.FPS == 0 {
		o.FPS = 5
	}
	if o.WarnInterval == 0 {
		o.WarnInterval = 10 * time.Second
	}
	if o.CoastBoxes == 0 {
		o.CoastBoxes = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	// check the per-camera options once, up front
	if _, err := NewTracker(o.Tracker); err != nil {
		probs = append(probs, err.Error())
	}
	if _, err := NewGate(o.Gate); err != nil {
		probs = append(probs, err.Error())
	}
	pr, err := NewProber(o.Probe)
	if err != nil {
		probs = append(probs, err.Error())
	}
	if len(probs) > 0 {
		return nil, fmt.Errorf("detect: pipeline: %s", joinProbs(probs))
	}
	log := o.Logger.With("component", "detect")
	return &Pipeline{o: o, log: log, prober: pr, cams: map[string]*camState{},
		warnFail: ratelog.New(log, "detection failed", o.WarnInterval)}, nil
}

// Run analyses frames until ctx ends or the input queue is closed and
// drained; it returns nil then. Every frame it takes from the input queue is
// released (face.Frame.Release) once it is done with it, skipped and failed
// frames included, so that ingest recycles the pixel buffer: nothing that
// leaves the pipeline refers to the frame's pixels (probes carry copies).
func (p *Pipeline) Run(ctx context.Context) error {
	for {
		f, err := p.o.In.Pop(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, queue.ErrClosed) {
				return nil
			}
			return fmt.Errorf("detect: input queue: %w", err)
		}
		err = p.process(ctx, f)
		f.Release()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			p.warn(err)
		}
	}
}

func (p *Pipeline) cam(name string) *camState {
	c, ok := p.cams[name]
	if !ok {
		// options were validated in NewPipeline
		tr, _ := NewTracker(p.o.Tracker)
		g, _ := NewGate(p.o.Gate)
		c = &camState{tracker: tr, gate: g}
		p.cams[name] = c
	}
	return c
}

func (p *Pipeline) process(ctx context.Context, f *face.Frame) error {
	c := p.cam(f.Camera)
	t := f.Wall
	if t.IsZero() {
		t = time.Now()
	}
	if p.o.FPS > 0 && !c.last.IsZero() && t.Sub(c.last) < time.Duration(float64(time.Second)/p.o.FPS) && !t.Before(c.last) {
		p.count(func(s *Stats) { s.RateSkipped++ })
		return nil
	}
	c.last = t
	img, res, err := p.detect(ctx, c, f, t)
	if err != nil {
		return err
	}
	var descs [][]float32
	if !p.o.Tracker.NoAppearance {
		descs = make([][]float32, len(res.Faces))
		for i, face := range res.Faces {
			descs[i] = Appearance(img, face)
		}
	}
	tracks, ended := c.tracker.UpdateWith(t, res.Faces, descs)
	if p.o.OnTracks != nil {
		p.o.OnTracks(p.trackBoxes(f, t, c.tracker))
	}
	var started int
	for _, tr := range tracks {
		if tr.Hits == 1 {
			started++
		}
	}
	var notices uint64
	for _, tr := range ended {
		if p.o.TrackEnds && c.gate.probes[tr.ID] > 0 {
			p.o.Out.Push(face.TrackEnd(f.Camera, tr.ID, tr.First, tr.Last))
			notices++
		}
		c.gate.Forget(tr.ID)
	}
	p.count(func(s *Stats) {
		s.Faces += uint64(len(res.Faces))
		s.TracksStarted += uint64(started)
		s.TracksEnded += uint64(len(ended))
		s.TrackEnds += notices
	})
	var firstErr error
	for i, det := range res.Faces {
		q := c.gate.Measure(img, det)
		before := c.gate.stats.First
		ok, _ := c.gate.CheckAt(tracks[i].ID, q, t)
		if !ok {
			continue
		}
		crop, err := p.prober.Cut(img, det, p.o.Detector.Calibration())
		if err != nil {
			p.count(func(s *Stats) { s.Errors++ })
			if firstErr == nil {
				firstErr = fmt.Errorf("camera %q frame %d: %w", f.Camera, f.Seq, err)
			}
			continue
		}
		pr := &face.Probe{
			Camera: f.Camera, TrackID: tracks[i].ID, Seq: f.Seq, FrameTime: t, FrameW: f.Width, FrameH: f.Height, Detector: det.Detector,
			Box: det.Box, FacePx: int(det.Px() + 0.5), Score: det.Score, Quality: q,
			Framing: crop.Framing, LR: crop.LR, LRSize: p.prober.LRSize(), Upscaled: crop.Upscaled,
			Preview: crop.Preview, First: c.gate.stats.First > before, TrackStart: tracks[i].First,
		}
		if det.HasLandmarks {
			pr.Landmarks = append([]Point(nil), det.Landmarks[:]...)
		}
		dropped := p.o.Out.Push(pr)
		p.count(func(s *Stats) {
			s.Probes++
			if dropped {
				s.ProbesDropped++
			}
		})
	}
	p.mu.Lock()
	p.stats.Gate = sumGates(p.cams)
	p.mu.Unlock()
	return firstErr
}

// detect runs the detector on frame f (at time t), with the camera's live
// tracks' predicted boxes as hints unless NoTrackHints, and counts it.
func (p *Pipeline) detect(ctx context.Context, c *camState, f *face.Frame, t time.Time) (*Image, Result, error) {
	img := &Image{Width: f.Width, Height: f.Height, Pix: f.Pix, Source: f.Camera}
	if !p.o.NoTrackHints {
		img.Hints = c.tracker.Predictions(t)
	}
	start := time.Now()
	res, err := p.o.Detector.Detect(ctx, img)
	el := time.Since(start)
	p.count(func(s *Stats) {
		s.Frames++
		s.DetectTime += el
		s.Windows += uint64(res.Tiles)
		s.HintWindows += uint64(res.Hinted)
		s.WindowsSkipped += uint64(res.Skipped)
		if res.OverBudget {
			s.OverBudget++
		}
		if err != nil {
			s.Errors++
		}
	})
	if err != nil {
		return nil, res, fmt.Errorf("camera %q frame %d: detect: %w", f.Camera, f.Seq, err)
	}
	return img, res, nil
}

// trackBoxes are the tracker's boxes for frame f at time t: the box of
// each track seen in the frame, the predicted box of each coasting one last
// seen at most CoastBoxes before.
func (p *Pipeline) trackBoxes(f *face.Frame, t time.Time, tk *Tracker) face.TrackBoxes {
	tb := face.TrackBoxes{Camera: f.Camera, Seq: f.Seq, FrameTime: t, PTS: f.PTS, FrameW: f.Width, FrameH: f.Height,
		Tracks: []face.TrackBox{}}
	for _, tr := range tk.Live() {
		switch {
		case !tr.Last.Before(t):
			tb.Tracks = append(tb.Tracks, face.TrackBox{TrackID: tr.ID, Box: tr.Face.Box.Box()})
		case p.o.CoastBoxes > 0 && t.Sub(tr.Last) <= p.o.CoastBoxes:
			tb.Tracks = append(tb.Tracks, face.TrackBox{TrackID: tr.ID, Box: tr.Predict(t).Box(), Coasting: true})
		}
	}
	return tb
}

func sumGates(cams map[string]*camState) GateStats {
	g := GateStats{Rejected: map[string]uint64{}}
	for _, c := range cams {
		s := c.gate.stats
		g.Checked += s.Checked
		g.Accepted += s.Accepted
		g.First += s.First
		for k, v := range s.Rejected {
			g.Rejected[k] += v
		}
	}
	return g
}

func (p *Pipeline) count(f func(*Stats)) {
	p.mu.Lock()
	f(&p.stats)
	p.mu.Unlock()
}

// warn logs recurring errors at most once per WarnInterval, with the count.
func (p *Pipeline) warn(err error) { p.warnFail.Warn("last_error", err.Error()) }

// Stats returns a snapshot of the counters; safe to call while Run runs.
func (p *Pipeline) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Gate.Rejected = make(map[string]uint64, len(p.stats.Gate.Rejected))
	for k, v := range p.stats.Gate.Rejected {
		s.Gate.Rejected[k] = v
	}
	return s
}
