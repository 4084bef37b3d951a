package detect

import (
	"context"
	"fmt"
	"image"
	"os"
	"testing"
	"time"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/internal/demoscene"
	"github.com/srdgd/srdgd/internal/queue"
)

// wholeFaces are the scene's faces of frame k wholly inside the frame, as
// detector boxes (the face is about 80 % of the sprite's height).
func wholeFaces(s *demoscene.Scene, k int) []demoscene.Face {
	var out []demoscene.Face
	for _, f := range s.Faces(k) {
		if f.Box.In(image.Rect(0, 0, 1280, 720)) {
			out = append(out, f)
		}
	}
	return out
}

func spriteRect(f demoscene.Face) Rect {
	return Rect{X0: float64(f.Box.Min.X), Y0: float64(f.Box.Min.Y), X1: float64(f.Box.Max.X), Y1: float64(f.Box.Max.Y)}
}

// TestHintsFindTrackedFaces: with a budget so tight that the rotation runs
// one window a frame, a face is found where a hint (a track's prediction,
// here its true box moved by a third of its height) says, and not without
// the hint; hints outside the search regions or of absurd size run no
// window.
func TestHintsFindTrackedFaces(t *testing.T) {
	s := demoScene(t)
	b := newBlazeFace(t, BlazeFaceOptions{Search: Search{MinFacePx: 8, MaxFacePx: 256, MinScore: 0.5, Budget: time.Nanosecond}})
	rgba := image.NewRGBA(image.Rect(0, 0, 1280, 720))
	found := func(res Result, want Rect) bool {
		for _, f := range res.Faces {
			if IoU(f.Box, want) > 0.3 {
				return true
			}
		}
		return false
	}
	tried, withHint, without := 0, 0, 0
	for k := 0; k < 600 && tried < 12; k += 45 {
		faces := wholeFaces(s, k)
		if len(faces) == 0 {
			continue
		}
		s.Render(k, rgba)
		img := ImageFromGo(rgba)
		img.Source = fmt.Sprint("k", k) // a fresh rotation: its first window only
		for _, f := range faces {
			if f.Box.Dy() < 20 { // faces the detector finds when it looks (12-16 px ones are often missed)
				continue
			}
			tried++
			truth := spriteRect(f)
			px := truth.Y1 - truth.Y0
			hint := truth.Translate(px/3, -px/4)
			img.Hints = []Rect{hint}
			res, err := b.Detect(context.Background(), img)
			if err != nil {
				t.Fatal(err)
			}
			if res.Hinted != 1 {
				t.Fatalf("frame %d: %d hint windows for one hint", k, res.Hinted)
			}
			if found(res, truth) {
				withHint++
			}
			img.Hints = nil
			img.Source += "-plain"
			res, err = b.Detect(context.Background(), img)
			if err != nil {
				t.Fatal(err)
			}
			if found(res, truth) {
				without++
			}
		}
	}
	if tried < 6 || withHint < tried*3/4 || without > tried/4 {
		t.Errorf("%d faces: found with a hint %d, without %d (want most with, few without)", tried, withHint, without)
	}
	t.Logf("%d faces >= 20 px: found with a hint %d, without %d (one rotation window)", tried, withHint, without)

	img := &Image{Width: 64, Height: 64, Pix: make([]byte, 3*64*64), Source: "bad hints",
		Hints: []Rect{{X0: 100, Y0: 100, X1: 120, Y1: 120}, {X0: 10, Y0: 10, X1: 10, Y1: 10}, {X0: 0, Y0: 0, X1: 5000, Y1: 5000}}}
	if res, err := b.Detect(context.Background(), img); err != nil || res.Hinted != 0 {
		t.Errorf("hints outside the frame, empty and huge: %d hint windows, err %v", res.Hinted, err)
	}
}

// TestHintsDensity measures what the hints do to detection on the demo
// scene, live (the budget is wall-clock time): one loop at the daemon's 5
// fps, two detectors and trackers fed the same frames in turn, one given
// its tracker's predictions as hints, one not. Opt-in (about two minutes
// per budget); bench/RESULTS.md, "Track hints".
//
//	SRDGD_BENCH_HINTS=1 go test -run TestHintsDensity -v ./detect
func TestHintsDensity(t *testing.T) {
	if os.Getenv("SRDGD_BENCH_HINTS") != "1" {
		t.Skip("a wall-clock measurement; set SRDGD_BENCH_HINTS=1")
	}
	s := demoScene(t)
	rgba := image.NewRGBA(image.Rect(0, 0, 1280, 720))
	for _, budget := range []time.Duration{150 * time.Millisecond, 50 * time.Millisecond} {
		type arm struct {
			name  string
			hints bool
			b     *BlazeFace
			tk    *Tracker
			// per crossing: track ids; per track: crossings
			tracksOf    map[int]map[uint64]bool
			crossingsOf map[uint64]map[int]bool
			lastSeen    map[int]int
			matched     int
			whole       int // detections of faces wholly in view
			unmatched   int
			maxGap      int
			windows     int
			hinted      int
			elapsed     time.Duration
		}
		var arms []*arm
		for _, h := range []bool{false, true} {
			tk, err := NewTracker(TrackerOptions{})
			if err != nil {
				t.Fatal(err)
			}
			name := "no hints (before)"
			if h {
				name = "hints (after)"
			}
			arms = append(arms, &arm{name: name, hints: h, b: newBlazeFace(t, BlazeFaceOptions{Search: daemonSearch(budget)}), tk: tk,
				tracksOf: map[int]map[uint64]bool{}, crossingsOf: map[uint64]map[int]bool{}, lastSeen: map[int]int{}})
		}
		t0 := time.Unix(1_000_000, 0)
		inView := 0
		for i := range crossingFrames {
			k := 3 * i
			s.Render(k, rgba)
			truth, whole := s.Faces(k), wholeFaces(s, k)
			inView += len(whole)
			now := t0.Add(time.Duration(k) * time.Second / 15)
			for _, a := range arms {
				img := ImageFromGo(rgba)
				img.Source = "demo"
				if a.hints {
					img.Hints = a.tk.Predictions(now)
				}
				start := time.Now()
				res, err := a.b.Detect(context.Background(), img)
				a.elapsed += time.Since(start)
				if err != nil {
					t.Fatal(err)
				}
				a.windows += res.Tiles
				a.hinted += res.Hinted
				descs := make([][]float32, len(res.Faces))
				for j, f := range res.Faces {
					descs[j] = Appearance(img, f)
				}
				tracks, _ := a.tk.UpdateWith(now, res.Faces, descs)
				for j, f := range res.Faces {
					c := crossingOf(f.Box, truth)
					if c < 0 {
						a.unmatched++
						continue
					}
					a.matched++
					if crossingOf(f.Box, whole) >= 0 {
						a.whole++
					}
					id := tracks[j].ID
					if a.tracksOf[c] == nil {
						a.tracksOf[c] = map[uint64]bool{}
					}
					a.tracksOf[c][id] = true
					if a.crossingsOf[id] == nil {
						a.crossingsOf[id] = map[int]bool{}
					}
					a.crossingsOf[id][c] = true
					if last, ok := a.lastSeen[c]; ok {
						a.maxGap = max(a.maxGap, i-last-1)
					}
					a.lastSeen[c] = i
				}
			}
		}
		for _, a := range arms {
			tracks, switches := 0, 0
			for _, ts := range a.tracksOf {
				tracks += len(ts)
			}
			for _, cs := range a.crossingsOf {
				if len(cs) > 1 {
					switches++
				}
			}
			t.Logf("| %v | %s | %.1f %% (%d / %d) | %d | %.2f (%d / %d) | %d | %d | %.1f | %.1f | %.0f |", budget, a.name,
				100*float64(a.whole)/float64(inView), a.whole, inView, a.unmatched,
				float64(tracks)/float64(max(len(a.tracksOf), 1)), tracks, len(a.tracksOf), switches, a.maxGap,
				float64(a.windows)/crossingFrames, float64(a.hinted)/crossingFrames, float64(a.elapsed.Milliseconds())/crossingFrames)
		}
	}
}

// hintSpy is the real detector, recording the hints of each call.
type hintSpy struct {
	Detector
	hints [][]Rect
}

func (s *hintSpy) Detect(ctx context.Context, img *Image) (Result, error) {
	s.hints = append(s.hints, append([]Rect(nil), img.Hints...))
	return s.Detector.Detect(ctx, img)
}

// TestPipelineHandsTrackHints: the pipeline gives the detector each live
// track's predicted box (none before the first detection, one per track
// after it, none once the track ended), counts the hint windows, and gives
// none with NoTrackHints.
func TestPipelineHandsTrackHints(t *testing.T) {
	name := celebaNames(t, 3500, 1)[0]
	src := loadCeleba(t, name)
	for _, off := range []bool{false, true} {
		spy := &hintSpy{Detector: newBlazeFace(t, BlazeFaceOptions{Search: Search{MinFacePx: 14, MaxFacePx: 96}})}
		in, out := queue.New[*face.Frame](32), queue.New[*face.Probe](32)
		p, err := NewPipeline(PipelineOptions{In: in, Out: out, Detector: spy, FPS: -1, NoTrackHints: off,
			Tracker: TrackerOptions{Timeout: 2 * time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Unix(5000, 0)
		for i := range 4 {
			img := background(320, 180, 31)
			pasteFace(t, img, src, 100+6*float64(i), 90, 30*BlazeFaceCalibration.BoxSide)
			in.Push(frameOf(img, "door", uint64(i+1), t0.Add(time.Duration(i)*250*time.Millisecond)))
		}
		in.Push(frameOf(background(320, 180, 31), "door", 5, t0.Add(5*time.Second)))
		in.Close()
		if err := p.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		var counts []int
		for _, h := range spy.hints {
			counts = append(counts, len(h))
		}
		want := "[0 1 1 1 0]"
		if off {
			want = "[0 0 0 0 0]"
		}
		if fmt.Sprint(counts) != want {
			t.Errorf("NoTrackHints %v: hints per frame %v, want %s", off, counts, want)
		}
		if !off {
			// the hint is the track's prediction: near the face of the frame before
			if h := spy.hints[2][0]; h.Centre().X < 100 || h.Centre().X > 130 {
				t.Errorf("hint %+v: not where the face was", h)
			}
			if st := p.Stats(); st.HintWindows != 3 {
				t.Errorf("%d hint windows counted, want 3", st.HintWindows)
			}
		}
	}
}
