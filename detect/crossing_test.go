package detect

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/srdgd/srdgd/internal/demoscene"
)

// The demo scene (internal/demoscene, the scene of `srdgd demo`: eight people
// crossing a 1280x720 plaza at 12-40 px) analysed at the daemon's 5 fps,
// every third frame of 15. BlazeFace runs with the daemon's settings,
// including its per-frame time budget, which is what makes detections of a
// face sparse: a budget-cut frame searches only part of the window pyramid
// and the next frame resumes where it stopped (bench/RESULTS.md,
// "Tracks per crossing"). Because the budget is wall-clock time, the
// detections are recorded once per budget into testdata and replayed; the
// frames are rendered again for the appearance descriptors.
//
//	SRDGD_RECORD_CROSSINGS=1 go test -run TestRecordDemoCrossings ./detect   # rewrite the recordings

var crossingRecordings = []struct {
	file   string
	budget time.Duration
}{
	// the daemon's default detect.frame_budget on this 2-core VM
	{"demo_crossings_budget150ms.json.gz", 150 * time.Millisecond},
	// a third of it: a daemon whose detector competes with SR for the CPU
	{"demo_crossings_budget50ms.json.gz", 50 * time.Millisecond},
}

const crossingFrames = 200 // one 40 s loop at 5 fps

type recordedFace struct {
	Box   [4]float64 `json:"box"`
	Score float64    `json:"score"`
}

type recordedFrame struct {
	K     int            `json:"k"`
	Faces []recordedFace `json:"faces"`
	Tiles int            `json:"tiles"`
}

type recording struct {
	Scene    string          `json:"scene"` // demoscene.Scene.Key
	Detector string          `json:"detector"`
	Frames   []recordedFrame `json:"frames"`
}

func demoScene(tb testing.TB) *demoscene.Scene {
	tb.Helper()
	m, err := demoscene.LoadManifest("../models/dist/demo")
	if err != nil {
		tb.Fatal(err)
	}
	s, err := demoscene.New(m, demoscene.Options{Width: 1280, Height: 720, FPS: 15})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// daemonSearch is what cmd/srdgd's newDetector builds from the default
// config and camera (face_min_px 8, face_max_px 256, min_score 0.5).
func daemonSearch(budget time.Duration) Search {
	return Search{MinFacePx: 8, MaxFacePx: 256, MinScore: 0.5, Budget: budget}
}

func TestRecordDemoCrossings(t *testing.T) {
	if os.Getenv("SRDGD_RECORD_CROSSINGS") != "1" {
		t.Skip("rewrites testdata; set SRDGD_RECORD_CROSSINGS=1")
	}
	s := demoScene(t)
	rgba := image.NewRGBA(image.Rect(0, 0, 1280, 720))
	for _, rc := range crossingRecordings {
		b := newBlazeFace(t, BlazeFaceOptions{Search: daemonSearch(rc.budget)})
		rec := recording{Scene: s.Key(), Detector: fmt.Sprintf("blazeface %+v", daemonSearch(rc.budget))}
		for i := range crossingFrames {
			k := 3 * i
			s.Render(k, rgba)
			img := ImageFromGo(rgba)
			img.Source = "demo"
			res, err := b.Detect(context.Background(), img)
			if err != nil {
				t.Fatal(err)
			}
			fr := recordedFrame{K: k, Tiles: res.Tiles}
			for _, f := range res.Faces {
				fr.Faces = append(fr.Faces, recordedFace{[4]float64{f.Box.X0, f.Box.Y0, f.Box.X1, f.Box.Y1}, f.Score})
			}
			rec.Frames = append(rec.Frames, fr)
		}
		f, err := os.Create(filepath.Join("testdata", rc.file))
		if err != nil {
			t.Fatal(err)
		}
		zw := gzip.NewWriter(f)
		if err := json.NewEncoder(zw).Encode(rec); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func loadRecording(tb testing.TB, file string) recording {
	tb.Helper()
	f, err := os.Open(filepath.Join("testdata", file))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	var rec recording
	if err := json.NewDecoder(zr).Decode(&rec); err != nil {
		tb.Fatalf("%s: %v", file, err)
	}
	return rec
}

// fragmentation is what the tracker made of the scene's crossings.
type fragmentation struct {
	// Crossings seen by the detector at least once; Tracks the distinct
	// track ids on their detections.
	Crossings, Tracks int
	// Switches: tracks whose detections belong to more than one crossing.
	Switches int
	// Detections matched to a crossing, and the rest (false positives).
	Matched, Unmatched int
	// MaxGap is the longest run of analysed frames without a detection
	// within one crossing.
	MaxGap int
}

func (f fragmentation) perCrossing() float64 { return float64(f.Tracks) / float64(max(f.Crossings, 1)) }

// truthOfFace is the crossing whose sprite box overlaps the detection most
// (IoU >= 0.3: BlazeFace's box covers about the face's 80 % of the sprite),
// or -1.
func crossingOf(d Rect, truth []demoscene.Face) int {
	best, c := 0.3, -1
	for _, tr := range truth {
		tb := Rect{X0: float64(tr.Box.Min.X), Y0: float64(tr.Box.Min.Y), X1: float64(tr.Box.Max.X), Y1: float64(tr.Box.Max.Y)}
		if v := IoU(d, tb); v >= best {
			best, c = v, tr.Crossing
		}
	}
	return c
}

// replay runs a tracker over a recording; with appearance the frames are
// rendered for the descriptors.
func replay(tb testing.TB, s *demoscene.Scene, rec recording, o TrackerOptions, appearance bool) fragmentation {
	tb.Helper()
	tk, err := NewTracker(o)
	if err != nil {
		tb.Fatal(err)
	}
	rgba := image.NewRGBA(image.Rect(0, 0, 1280, 720))
	t0 := time.Unix(1_000_000, 0)
	tracksOf := map[int]map[uint64]bool{}
	crossingsOf := map[uint64]map[int]bool{}
	lastSeen := map[int]int{}
	var fr fragmentation
	for i, rf := range rec.Frames {
		faces := make([]Detection, len(rf.Faces))
		for j, f := range rf.Faces {
			faces[j] = Detection{Box: Rect{X0: f.Box[0], Y0: f.Box[1], X1: f.Box[2], Y1: f.Box[3]}, Score: f.Score, Detector: "blazeface"}
		}
		var descs [][]float32
		if appearance && len(faces) > 0 {
			s.Render(rf.K, rgba)
			img := ImageFromGo(rgba)
			for _, f := range faces {
				descs = append(descs, Appearance(img, f))
			}
		}
		tracks, _ := tk.UpdateWith(t0.Add(time.Duration(rf.K)*time.Second/15), faces, descs)
		truth := s.Faces(rf.K)
		for j, f := range faces {
			c := crossingOf(f.Box, truth)
			if c < 0 {
				fr.Unmatched++
				continue
			}
			fr.Matched++
			id := tracks[j].ID
			if tracksOf[c] == nil {
				tracksOf[c] = map[uint64]bool{}
			}
			tracksOf[c][id] = true
			if crossingsOf[id] == nil {
				crossingsOf[id] = map[int]bool{}
			}
			crossingsOf[id][c] = true
			if last, ok := lastSeen[c]; ok {
				fr.MaxGap = max(fr.MaxGap, i-last-1)
			}
			lastSeen[c] = i
		}
	}
	fr.Crossings = len(tracksOf)
	for _, ts := range tracksOf {
		fr.Tracks += len(ts)
	}
	for _, cs := range crossingsOf {
		if len(cs) > 1 {
			fr.Switches++
		}
	}
	return fr
}

// The tracks per crossing of the demo scene, before (the tracker as it was:
// the allowed distance does not grow with the gap, no appearance, 2 s
// timeout), two steps in between and after (the defaults). Every case must
// keep the people apart (no track covering two crossings); the defaults must
// give at most 1.2 tracks per crossing (measured: 1.00 at the 150 ms budget,
// 1.11 at 50 ms) and "before" at least 2 (measured 6.8 and 3.2), so the
// recordings keep showing the problem.
func TestTrackerDemoCrossings(t *testing.T) {
	s := demoScene(t)
	before := TrackerOptions{MaxSpeed: 1e-9, SpeedUncertainty: 1e-9, NoAppearance: true, Timeout: 2 * time.Second}
	cases := []struct {
		name       string
		o          TrackerOptions
		appearance bool
		// bounds, from the measured values (see bench/RESULTS.md)
		maxPerCrossing float64
		minPerCrossing float64
	}{
		{"before: fixed gate, no appearance, 2 s", before, false, 99, 1.5},
		{"growing gate, no appearance, 2 s", TrackerOptions{NoAppearance: true, Timeout: 2 * time.Second}, false, 99, 0},
		{"growing gate, appearance, 4 s", TrackerOptions{Timeout: 4 * time.Second}, true, 99, 0},
		{"after: defaults (growing gate, appearance, 6 s)", TrackerOptions{}, true, 1.2, 0},
	}
	for _, rc := range crossingRecordings {
		rec := loadRecording(t, rc.file)
		if rec.Scene != s.Key() {
			t.Fatalf("%s was recorded on scene %s, the scene is now %s: rerun TestRecordDemoCrossings", rc.file, rec.Scene, s.Key())
		}
		if len(rec.Frames) != crossingFrames {
			t.Fatalf("%s: %d frames, want %d", rc.file, len(rec.Frames), crossingFrames)
		}
		for _, tc := range cases {
			t.Run(rc.budget.String()+"/"+tc.name, func(t *testing.T) {
				fr := replay(t, s, rec, tc.o, tc.appearance)
				t.Logf("%d crossings, %d tracks (%.2f per crossing), %d switches, %d matched and %d unmatched detections, longest gap %d frames",
					fr.Crossings, fr.Tracks, fr.perCrossing(), fr.Switches, fr.Matched, fr.Unmatched, fr.MaxGap)
				if fr.Crossings < 6 {
					t.Fatalf("the detector saw only %d crossings", fr.Crossings)
				}
				if pc := fr.perCrossing(); pc > tc.maxPerCrossing || pc < tc.minPerCrossing {
					t.Errorf("%.2f tracks per crossing, want %.2f..%.2f", pc, tc.minPerCrossing, tc.maxPerCrossing)
				}
				// without the appearance cue a track may jump to another
				// person (measured: 2 switches at 150 ms on the scene with
				// bench/visits' walk order); with it, never
				if tc.appearance && fr.Switches > 0 {
					t.Errorf("%d tracks cover two crossings", fr.Switches)
				}
			})
		}
	}
}
