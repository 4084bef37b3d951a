// Package recyclebench measures frame-buffer recycling through the daemon's
// path: the demo scene (1280x720@15, H.264) streamed by ffmpeg to the
// in-process RTSP server, one ingest.Camera per camera (libavcodec decode to
// BGR24), the daemon's 2-frame queue, and a detect.Pipeline with BlazeFace at
// 5 fps. Two arms run alternately in one process: "release" hands frames to
// detect as the daemon does (detect releases each one), "no release" hands
// detect a copy of the frame header without the pool, so the buffer never
// returns and every frame gets a fresh one (detect before issue 14 item 6).
// It runs only with SRDGD_BENCH=1 (see run.sh).
package recyclebench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/srdgd/srdgd/detect"
	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/ingest"
	"github.com/srdgd/srdgd/internal/demoscene"
	"github.com/srdgd/srdgd/internal/ort"
	"github.com/srdgd/srdgd/internal/queue"
	"github.com/srdgd/srdgd/internal/rtspserver"
)

func report(t *testing.T, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf(format, args...)
	t.Log(line)
	if out := os.Getenv("SRDGD_BENCH_OUT"); out != "" {
		f, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fmt.Fprintln(f, line)
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// demoClip renders and encodes the demo scene once (cached in the temp dir
// by the scene's key).
func demoClip(t *testing.T) string {
	ff, err := rtspserver.FFmpegPath()
	if err != nil {
		t.Fatal(err)
	}
	m, err := demoscene.LoadManifest("../../models/dist/demo")
	if err != nil {
		t.Fatal(err)
	}
	s, err := demoscene.New(m, demoscene.Options{Width: 1280, Height: 720, FPS: 15})
	if err != nil {
		t.Fatal(err)
	}
	clip := filepath.Join(os.TempDir(), "srdgd-demo-scene-"+s.Key()+".mp4")
	if _, err := os.Stat(clip); err == nil {
		return clip
	}
	if err := s.Encode(context.Background(), ff, clip); err != nil {
		t.Fatal(err)
	}
	return clip
}

type result struct {
	cpu, wall                  time.Duration
	decoded, analysed, skipped uint64
	fresh                      uint64
}

// forward moves frames from the camera's queue to detect's. Without release
// detect gets a copy of the header that ingest's pool does not know, so the
// buffer is never recycled.
func forward(ctx context.Context, from, to *queue.Queue[*face.Frame], release bool) {
	for {
		f, err := from.Pop(ctx)
		if err != nil {
			to.Close()
			return
		}
		g := f
		if !release {
			g = &face.Frame{Camera: f.Camera, Seq: f.Seq, PTS: f.PTS, RTPTime: f.RTPTime, Wall: f.Wall,
				Decoded: f.Decoded, Width: f.Width, Height: f.Height, Pix: f.Pix}
		}
		if old, dropped := to.PushEvict(g); dropped {
			old.Release()
		}
	}
}

func run(t *testing.T, rt *ort.Runtime, clip string, cameras int, budget time.Duration, release bool, warmup, measure time.Duration) result {
	ctx, cancel := context.WithTimeout(context.Background(), warmup+measure+60*time.Second)
	defer cancel()
	srv, err := rtspserver.Start(rtspserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var dets []detect.Detector
	// the detectors close after every goroutine that uses them has returned
	defer func() {
		stop()
		wg.Wait()
		for _, d := range dets {
			d.Close()
		}
	}()
	var cams []*ingest.Camera
	var pipes []*detect.Pipeline
	for i := range cameras {
		path := fmt.Sprintf("cam%d", i)
		pub, err := rtspserver.PublishFFmpeg(ctx, srv.URL(path), rtspserver.FFmpegOptions{Input: clip})
		if err != nil {
			t.Fatal(err)
		}
		defer pub.Stop()
		if err := srv.WaitPublisher(ctx, path); err != nil {
			t.Fatalf("%v: %s", err, pub.Stderr())
		}
		cam, err := ingest.NewCamera(ingest.CameraOptions{Name: path, URL: srv.URL(path), Transport: "tcp"})
		if err != nil {
			t.Fatal(err)
		}
		// the daemon's settings (cmd/srdgd newDetector and the default camera)
		det, err := detect.NewBlazeFace(rt, detect.BlazeFaceOptions{Model: "../../models/dist/blazeface.onnx", Threads: 1,
			Search: detect.Search{MinFacePx: 8, MaxFacePx: 256, MinScore: 0.5, Budget: budget}})
		if err != nil {
			t.Fatal(err)
		}
		dets = append(dets, det)
		sub := cam.SubscribeFrames(2)
		in, out := queue.New[*face.Frame](2), queue.New[*face.Probe](4)
		p, err := detect.NewPipeline(detect.PipelineOptions{In: in, Out: out, Detector: det, FPS: 5,
			Gate:  detect.GateOptions{MinFacePx: 8, MinSharpness: 0.22, MinFrontal: 0.3, MinScore: 0.5},
			Probe: detect.ProbeOptions{LRSize: 16}})
		if err != nil {
			t.Fatal(err)
		}
		cams, pipes = append(cams, cam), append(pipes, p)
		wg.Add(4)
		go func() { defer wg.Done(); _ = cam.Run(runCtx) }()
		go func() { defer wg.Done(); forward(runCtx, sub, in, release) }()
		go func() { defer wg.Done(); _ = p.Run(runCtx) }()
		go func() { // SR's place: take the probes
			defer wg.Done()
			for {
				if _, err := out.Pop(runCtx); err != nil {
					return
				}
			}
		}()
	}
	snap := func() (r result) {
		for i, c := range cams {
			st := c.Status()
			ps := pipes[i].Stats()
			r.decoded += st.Frames
			r.fresh += st.BuffersAllocated
			r.analysed += ps.Frames
			r.skipped += ps.RateSkipped
		}
		r.cpu, r.wall = cpuTime(), time.Duration(time.Now().UnixNano())
		return r
	}
	time.Sleep(warmup)
	runtime.GC()
	a := snap()
	time.Sleep(measure)
	b := snap()
	return result{cpu: b.cpu - a.cpu, wall: b.wall - a.wall, decoded: b.decoded - a.decoded, analysed: b.analysed - a.analysed,
		skipped: b.skipped - a.skipped, fresh: b.fresh - a.fresh}
}

func TestRecycleDaemonPath(t *testing.T) {
	if os.Getenv("SRDGD_BENCH") != "1" {
		t.Skip("benchmark; run bench/recycle/run.sh (SRDGD_BENCH=1)")
	}
	clip := demoClip(t)
	rt, err := ort.Open("", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	reps := 2
	warmup, measure := 4*time.Second, 15*time.Second
	report(t, "| detection budget | cameras | arm | decoded fps per camera | analysed fps per camera | fresh buffers per 100 decoded | CPU per camera (%% of one core) | ms CPU per decoded frame |")
	report(t, "|---|---:|---|---:|---:|---:|---:|---:|")
	for _, budget := range []time.Duration{150 * time.Millisecond, 20 * time.Millisecond} {
		for _, cams := range []int{1, 4} {
			sum := map[bool]result{}
			for range reps {
				for _, rel := range []bool{false, true} {
					r := run(t, rt, clip, cams, budget, rel, warmup, measure)
					s := sum[rel]
					s.cpu += r.cpu
					s.wall += r.wall
					s.decoded += r.decoded
					s.analysed += r.analysed
					s.skipped += r.skipped
					s.fresh += r.fresh
					sum[rel] = s
				}
			}
			for _, rel := range []bool{false, true} {
				s := sum[rel]
				arm := "no release (before)"
				if rel {
					arm = "release (after)"
				}
				sec := s.wall.Seconds()
				report(t, "| %v | %d | %s | %.1f | %.2f | %.0f | %.1f | %.2f |", budget, cams, arm,
					float64(s.decoded)/sec/float64(cams), float64(s.analysed)/sec/float64(cams),
					100*float64(s.fresh)/float64(max(s.decoded, 1)), 100*s.cpu.Seconds()/sec/float64(cams),
					1000*s.cpu.Seconds()/float64(max(s.decoded, 1)))
			}
			n, r := sum[false], sum[true]
			report(t, "| %v | %d | release ÷ no release | | | | %.3f | %.3f |", budget, cams,
				(r.cpu.Seconds()/r.wall.Seconds())/(n.cpu.Seconds()/n.wall.Seconds()),
				(r.cpu.Seconds()/float64(r.decoded))/(n.cpu.Seconds()/float64(n.decoded)))
		}
	}
}
