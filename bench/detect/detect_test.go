// Package detectbench measures the face detectors on pasted scenes: recall
// and false positives per frame against face height, and time per 1280x720
// frame, for BlazeFace's window pyramid at several smallest-face settings
// and for the Haar cascade. CelebA aligned faces are read in place from the
// shared data folder.
//
//	SRDGD_BENCH_SWEEP=1 go test -run TestSweep -v -timeout 60m ./bench/detect   # the table in bench/RESULTS.md
//	go test -run '^$' -bench . -benchtime 3x ./bench/detect                       # time per 720p frame
//
// SRDGD_BENCH_FRAMES sets the number of scenes (default 4), SRDGD_BENCH_ONLY
// keeps the settings whose name contains it, SRDGD_BENCH_OUT writes the table.
package detectbench

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/srdgd/srdgd/detect"
	"github.com/srdgd/srdgd/detect/detecttest"
	"github.com/srdgd/srdgd/internal/ort"
)

var sizes = []float64{8, 12, 16, 24, 32, 48, 64}

type setting struct {
	name string
	make func(tb testing.TB, rt *ort.Runtime) detect.Detector
}

func blaze(name string, o detect.BlazeFaceOptions) setting {
	return setting{name, func(tb testing.TB, rt *ort.Runtime) detect.Detector {
		o.Model = "../../models/dist/blazeface.onnx"
		if o.Threads == 0 {
			o.Threads = 1
		}
		b, err := detect.NewBlazeFace(rt, o)
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}}
}

func haar(name string, o detect.HaarOptions) setting {
	return setting{name, func(tb testing.TB, rt *ort.Runtime) detect.Detector {
		h, err := detect.NewHaar(o)
		if err != nil {
			tb.Fatal(err)
		}
		return h
	}}
}

func settings() []setting {
	return []setting{
		blaze("blazeface min 8 px", detect.BlazeFaceOptions{Search: detect.Search{MinFacePx: 8}}),
		blaze("blazeface min 12 px (default)", detect.BlazeFaceOptions{}),
		blaze("blazeface min 12 px, 2 threads", detect.BlazeFaceOptions{Threads: 2}),
		blaze("blazeface min 12 px, batch 16", detect.BlazeFaceOptions{MaxBatch: 16}),
		blaze("blazeface min 16 px", detect.BlazeFaceOptions{Search: detect.Search{MinFacePx: 16}}),
		blaze("blazeface min 24 px", detect.BlazeFaceOptions{Search: detect.Search{MinFacePx: 24}}),
		blaze("blazeface min 12 px, score 0.5", detect.BlazeFaceOptions{Search: detect.Search{MinScore: 0.5}}),
		haar("haar min 8 px (upscale 3)", detect.HaarOptions{Search: detect.Search{MinFacePx: 8}}),
		haar("haar min 12 px (upscale 2)", detect.HaarOptions{Search: detect.Search{MinFacePx: 12}}),
		haar("haar min 24 px (no upscale)", detect.HaarOptions{Search: detect.Search{MinFacePx: 24}}),
	}
}

type truth struct{ box detect.Rect }

// scene lays 3 faces of each size over a 1280x720 synthetic background.
func scene(tb testing.TB, seed uint64, names []string) (*detect.Image, []truth, []float64) {
	bg := detecttest.Background(1280, 720, seed)
	var all, sides []float64
	for r := 0; r < 3; r++ {
		for _, s := range sizes {
			all = append(all, s)
			sides = append(sides, s*detect.BlazeFaceCalibration.BoxSide)
		}
	}
	c := detect.BlazeFaceCalibration
	var ts []truth
	for i, p := range detecttest.Layout(bg.W, bg.H, sides, seed) {
		src := detecttest.LoadCelebA(tb, names[i%len(names)])
		x0, y0, x1, y1 := detecttest.PasteFace(tb, bg, src, p[0], p[1], sides[i])
		bh := (x1 - x0) / c.BoxSide
		cx, cy := (x0+x1)/2-c.BoxOffX*bh, (y0+y1)/2-c.BoxOffY*bh
		ts = append(ts, truth{detect.Rect{X0: cx - bh/2, Y0: cy - bh/2, X1: cx + bh/2, Y1: cy + bh/2}})
	}
	return &detect.Image{Width: bg.W, Height: bg.H, Pix: bg.Pix, Source: "bench"}, ts, all
}

func match(faces []detect.Detection, ts []truth) (hit []bool, fp int) {
	hit = make([]bool, len(ts))
	used := make([]bool, len(faces))
	for i, t := range ts {
		best, bj := 0.3, -1
		for j, f := range faces {
			if !used[j] {
				if v := detect.IoU(f.Box, t.box); v >= best {
					best, bj = v, j
				}
			}
		}
		if bj >= 0 {
			used[bj], hit[i] = true, true
		}
	}
	for _, u := range used {
		if !u {
			fp++
		}
	}
	return hit, fp
}

func TestSweep(t *testing.T) {
	if os.Getenv("SRDGD_BENCH_SWEEP") == "" {
		t.Skip("set SRDGD_BENCH_SWEEP=1 to run the detection sweep (minutes)")
	}
	frames := 4
	if v := os.Getenv("SRDGD_BENCH_FRAMES"); v != "" {
		fmt.Sscan(v, &frames)
	}
	rt, err := ort.Open("", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	names := detecttest.CelebANames(t, 4000, frames*3*len(sizes))
	type sc struct {
		img *detect.Image
		ts  []truth
		sz  []float64
	}
	var scenes []sc
	for f := 0; f < frames; f++ {
		img, ts, sz := scene(t, uint64(100+f), names[f*3*len(sizes):])
		scenes = append(scenes, sc{img, ts, sz})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| setting | windows/frame | ms/frame (median) |")
	for _, s := range sizes {
		fmt.Fprintf(&b, " %g px |", s)
	}
	fmt.Fprintf(&b, " FP/frame |\n|---|---:|---:|")
	for range sizes {
		fmt.Fprintf(&b, "---:|")
	}
	fmt.Fprintf(&b, "---:|\n")
	only := os.Getenv("SRDGD_BENCH_ONLY")
	for _, st := range settings() {
		if only != "" && !strings.Contains(st.name, only) {
			continue
		}
		d := st.make(t, rt)
		hits, tot := map[float64]int{}, map[float64]int{}
		fp, windows := 0, 0
		var times []float64
		for _, s := range scenes {
			start := time.Now()
			res, err := d.Detect(context.Background(), s.img)
			times = append(times, float64(time.Since(start).Microseconds())/1000)
			if err != nil {
				t.Fatal(err)
			}
			windows += res.Tiles
			h, f := match(res.Faces, s.ts)
			fp += f
			for i, ok := range h {
				tot[s.sz[i]]++
				if ok {
					hits[s.sz[i]]++
				}
			}
		}
		d.Close()
		sort.Float64s(times)
		fmt.Fprintf(&b, "| %s | %d | %.0f |", st.name, windows/len(scenes), times[len(times)/2])
		for _, s := range sizes {
			fmt.Fprintf(&b, " %.2f |", float64(hits[s])/math.Max(1, float64(tot[s])))
		}
		fmt.Fprintf(&b, " %.2f |\n", float64(fp)/float64(len(scenes)))
		t.Logf("%s done", st.name)
	}
	fmt.Fprintf(&b, "\n%d frames of 1280x720, %d faces per size class, GOMAXPROCS %d, %s\n",
		frames, 3*frames, runtime.GOMAXPROCS(0), time.Now().UTC().Format("2006-01-02"))
	t.Log("\n" + b.String())
	if out := os.Getenv("SRDGD_BENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkDetect720p times one 1280x720 frame with 21 pasted faces.
func BenchmarkDetect720p(b *testing.B) {
	rt, err := ort.Open("", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close()
	img, _, _ := scene(b, 100, detecttest.CelebANames(b, 4000, 21))
	for _, st := range settings() {
		b.Run(strings.ReplaceAll(st.name, " ", "_"), func(b *testing.B) {
			d := st.make(b, rt)
			defer d.Close()
			var windows int
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res, err := d.Detect(context.Background(), img)
				if err != nil {
					b.Fatal(err)
				}
				windows = res.Tiles
			}
			b.ReportMetric(float64(windows), "windows/frame")
		})
	}
}
