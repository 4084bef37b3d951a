package detect

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/internal/queue"
)

func frameOf(img *Image, cam string, seq uint64, wall time.Time) *face.Frame {
	return &face.Frame{Camera: cam, Seq: seq, Wall: wall, Width: img.Width, Height: img.Height, Pix: img.Pix}
}

// Frames of a walking face go in; probes come out for one track, the first
// marked First, each with a 16x16 LR and a 128x128 preview; frames faster
// than FPS are skipped and counted; Run returns nil once the closed input is
// drained.
func TestPipeline(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	defer goleak.VerifyNone(t, ignore)
	name := celebaNames(t, 3500, 1)[0]
	b := newBlazeFace(t, BlazeFaceOptions{Search: Search{MinFacePx: 14, MaxFacePx: 96}})
	in, out := queue.New[*face.Frame](16), queue.New[*face.Probe](16)
	p, err := NewPipeline(PipelineOptions{In: in, Out: out, Detector: b, FPS: 5})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(5000, 0)
	src := loadCeleba(t, name)
	for i := 0; i < 4; i++ {
		img := background(320, 180, 31)
		// the face walks closer: later shots are bigger, some clearly better
		pasteFace(t, img, src, 100+12*float64(i), 90, []float64{20, 25, 30, 36}[i]*BlazeFaceCalibration.BoxSide)
		in.Push(frameOf(img, "door", uint64(2*i+1), t0.Add(time.Duration(i)*250*time.Millisecond)))
		// 50 ms later: above 5 fps, skipped
		in.Push(frameOf(img, "door", uint64(2*i+2), t0.Add(time.Duration(i)*250*time.Millisecond+50*time.Millisecond)))
	}
	in.Close()
	if err := p.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v, want nil after the input closed", err)
	}
	var probes []*face.Probe
	for {
		pr, ok, _ := out.TryPop()
		if !ok {
			break
		}
		probes = append(probes, pr)
	}
	if len(probes) < 2 {
		t.Fatalf("%d probes, want the first and at least one better shot", len(probes))
	}
	first := probes[0]
	if !first.First || first.Camera != "door" || first.Seq != 1 || first.LRSize != 16 || first.LR.W != 16 || first.Preview.W != 128 ||
		len(first.Landmarks) != NumLandmarks || first.FacePx < 17 || first.FacePx > 23 || first.Upscaled || !first.Framing.FromEyes {
		t.Errorf("first probe: %+v", first)
	}
	for _, pr := range probes[1:] {
		if pr.First || pr.TrackID != first.TrackID || pr.Quality.Value <= first.Quality.Value*1.25 {
			t.Errorf("later probe (seq %d) first=%v track %d value %.3f; want a better shot of track %d (value > %.3f)",
				pr.Seq, pr.First, pr.TrackID, pr.Quality.Value, first.TrackID, first.Quality.Value*1.25)
		}
	}
	st := p.Stats()
	if st.Frames != 4 || st.RateSkipped != 4 || st.TracksStarted != 1 || st.Probes != uint64(len(probes)) || st.Gate.First != 1 || st.Errors != 0 {
		t.Errorf("stats %+v: want 4 frames, 4 rate-skipped, 1 track, %d probes, no errors", st, len(probes))
	}
}

// Cancelling the context ends Run with nil while it waits for frames.
func TestPipelineStopsOnCancel(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	defer goleak.VerifyNone(t, ignore)
	b := newBlazeFace(t, BlazeFaceOptions{Search: Search{MinFacePx: 32}})
	in, out := queue.New[*face.Frame](4), queue.New[*face.Probe](4)
	p, err := NewPipeline(PipelineOptions{In: in, Out: out, Detector: b})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	in.Push(frameOf(background(64, 48, 1), "c", 1, time.Time{}))
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v, want nil", err)
	}
}

func TestPipelineStopsWhenInputCloses(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	defer goleak.VerifyNone(t, ignore)
	b := newBlazeFace(t, BlazeFaceOptions{Search: Search{MinFacePx: 32}})
	in, out := queue.New[*face.Frame](4), queue.New[*face.Probe](4)
	p, err := NewPipeline(PipelineOptions{In: in, Out: out, Detector: b})
	if err != nil {
		t.Fatal(err)
	}
	in.Push(frameOf(background(64, 48, 1), "c", 1, time.Time{}))
	in.Close()
	if err := p.Run(context.Background()); err != nil {
		t.Errorf("Run: %v, want nil", err)
	}
	if st := p.Stats(); st.Frames != 1 {
		t.Errorf("frames %d, want 1", st.Frames)
	}
}

func TestPipelineOptionErrors(t *testing.T) {
	_, err := NewPipeline(PipelineOptions{Tracker: TrackerOptions{MinIoU: 3}, Probe: ProbeOptions{LRSize: 12}})
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{"queues are required", "detector is required", "min iou 3", "lr size 12"} {
		if !contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

// With a min interval the pipeline sends several probes of one track
// spread over time, and with TrackEnds a track-end notice behind them once
// the track times out.
func TestPipelineSpreadAndTrackEnd(t *testing.T) {
	name := celebaNames(t, 3500, 1)[0]
	b := newBlazeFace(t, BlazeFaceOptions{Search: Search{MinFacePx: 14, MaxFacePx: 96}})
	in, out := queue.New[*face.Frame](32), queue.New[*face.Probe](32)
	p, err := NewPipeline(PipelineOptions{In: in, Out: out, Detector: b, FPS: -1, TrackEnds: true,
		Tracker: TrackerOptions{Timeout: 2 * time.Second},
		Gate:    GateOptions{MinInterval: 500 * time.Millisecond, MaxProbesPerTrack: 3}})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(5000, 0)
	src := loadCeleba(t, name)
	// the same face, the same size, every 250 ms for 2.5 s: no shot is
	// clearly better, so the interval spaces them
	for i := range 10 {
		img := background(320, 180, 31)
		pasteFace(t, img, src, 100+4*float64(i), 90, 30*BlazeFaceCalibration.BoxSide)
		in.Push(frameOf(img, "door", uint64(i+1), t0.Add(time.Duration(i)*250*time.Millisecond)))
	}
	// an empty frame 5 s later ends the track
	in.Push(frameOf(background(320, 180, 31), "door", 11, t0.Add(5*time.Second)))
	in.Close()
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	var probes []*face.Probe
	for {
		pr, ok, _ := out.TryPop()
		if !ok {
			break
		}
		probes = append(probes, pr)
	}
	if len(probes) != 4 {
		t.Fatalf("%d probes, want 3 shots and the track-end notice", len(probes))
	}
	for i, pr := range probes[:3] {
		if pr.Ended || pr.TrackID != probes[0].TrackID || !pr.TrackStart.Equal(t0) || pr.First != (i == 0) {
			t.Errorf("probe %d: ended %v track %d start %v first %v", i, pr.Ended, pr.TrackID, pr.TrackStart, pr.First)
		}
		if i > 0 && pr.FrameTime.Sub(probes[i-1].FrameTime) < 500*time.Millisecond {
			t.Errorf("probe %d at %v, %v after the previous one: want >= 500ms", i, pr.FrameTime, pr.FrameTime.Sub(probes[i-1].FrameTime))
		}
	}
	end := probes[3]
	if !end.Ended || end.Camera != "door" || end.TrackID != probes[0].TrackID || end.LR != nil || !end.TrackStart.Equal(t0) ||
		end.FrameTime.Before(probes[2].FrameTime) {
		t.Errorf("notice %+v: want the end of track %d, last seen after its last probe", end, probes[0].TrackID)
	}
	if st := p.Stats(); st.TrackEnds != 1 || st.Probes != 3 {
		t.Errorf("stats: %d track ends, %d probes; want 1 and 3", st.TrackEnds, st.Probes)
	}
}

// OnTracks gets one face.TrackBoxes per analysed frame (none for frames
// skipped to hold FPS), at frame time: the frame's sequence number, time and
// PTS, the box where the face is in that frame; while the face is missing,
// the track's predicted box marked coasting for CoastBoxes, then nothing;
// and a message with no tracks for a frame without faces, so the live view
// clears its boxes.
func TestPipelineTrackBoxes(t *testing.T) {
	name := celebaNames(t, 3500, 1)[0]
	b := newBlazeFace(t, BlazeFaceOptions{Search: Search{MinFacePx: 14, MaxFacePx: 96}})
	in, out := queue.New[*face.Frame](32), queue.New[*face.Probe](32)
	var got []face.TrackBoxes
	p, err := NewPipeline(PipelineOptions{In: in, Out: out, Detector: b, FPS: 5, CoastBoxes: 600 * time.Millisecond,
		OnTracks: func(tb face.TrackBoxes) { got = append(got, tb) }})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(5000, 0)
	src := loadCeleba(t, name)
	var truths []truth
	type frameSpec struct {
		at   time.Duration
		face bool
	}
	frames := []frameSpec{{0, true}, {50 * time.Millisecond, true}, {250 * time.Millisecond, true}, {500 * time.Millisecond, true},
		{750 * time.Millisecond, false}, {1000 * time.Millisecond, false}, {1500 * time.Millisecond, false}}
	for i, fs := range frames {
		img := background(320, 180, 31)
		if fs.face {
			truths = append(truths, pasteFace(t, img, src, 80+40*fs.at.Seconds(), 90, 30*BlazeFaceCalibration.BoxSide))
		}
		f := frameOf(img, "door", uint64(i+1), t0.Add(fs.at))
		f.PTS = fs.at + 3*time.Second
		in.Push(f)
	}
	in.Close()
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	// frame 2 (50 ms after frame 1) is skipped for the 5 fps limit
	wantSeq := []uint64{1, 3, 4, 5, 6, 7}
	if len(got) != len(wantSeq) {
		t.Fatalf("%d track messages, want one per analysed frame (%d): %+v", len(got), len(wantSeq), got)
	}
	var id uint64
	for i, tb := range got {
		fs := frames[wantSeq[i]-1]
		if tb.Seq != wantSeq[i] || tb.Camera != "door" || !tb.FrameTime.Equal(t0.Add(fs.at)) || tb.PTS != fs.at+3*time.Second ||
			tb.FrameW != 320 || tb.FrameH != 180 || tb.Tracks == nil {
			t.Fatalf("message %d: %+v, want frame %d at %v", i, tb, wantSeq[i], fs.at)
		}
		switch {
		case fs.face:
			if len(tb.Tracks) != 1 || tb.Tracks[0].Coasting {
				t.Fatalf("frame %d with a face: %+v, want its one track, seen", tb.Seq, tb.Tracks)
			}
			tr := truths[wantSeq[i]-1]
			bx := tb.Tracks[0].Box
			if iou := IoU(Rect{X0: bx.X, Y0: bx.Y, X1: bx.X + bx.W, Y1: bx.Y + bx.H}, tr.Box); iou < 0.5 {
				t.Errorf("frame %d: box %+v, where the face is %+v: IoU %.2f", tb.Seq, bx, tr.Box, iou)
			}
			if id == 0 {
				id = tb.Tracks[0].TrackID
			} else if tb.Tracks[0].TrackID != id {
				t.Errorf("frame %d: track %d, want %d", tb.Seq, tb.Tracks[0].TrackID, id)
			}
		case fs.at-500*time.Millisecond <= 600*time.Millisecond:
			if len(tb.Tracks) != 1 || !tb.Tracks[0].Coasting || tb.Tracks[0].TrackID != id {
				t.Fatalf("frame %d, %v after the face was last seen: %+v, want track %d coasting", tb.Seq, fs.at-500*time.Millisecond, tb.Tracks, id)
			}
			// the prediction goes on moving right, as the face did
			if prev := got[i-1].Tracks[0].Box; tb.Tracks[0].Box.X <= prev.X {
				t.Errorf("coasting box %+v did not move on from %+v", tb.Tracks[0].Box, prev)
			}
		default:
			if len(tb.Tracks) != 0 {
				t.Errorf("frame %d, 1 s after the face was last seen: %+v, want no box", tb.Seq, tb.Tracks)
			}
		}
	}
}
