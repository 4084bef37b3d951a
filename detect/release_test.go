package detect

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/ingest"
	"github.com/srdgd/srdgd/internal/queue"
	"github.com/srdgd/srdgd/internal/rtspserver"
)

// failEvery wraps the real detector and fails every n-th call, so that the
// pipeline's error path sees real frames.
type failEvery struct {
	Detector
	n, calls int
}

func (f *failEvery) Detect(ctx context.Context, img *Image) (Result, error) {
	f.calls++
	if f.calls%f.n == 0 {
		return Result{}, errors.New("injected failure")
	}
	return f.Detector.Detect(ctx, img)
}

// Frames from a real camera (ffmpeg -> in-process RTSP server -> ingest's
// libavcodec decoder) go through the pipeline; once the camera stops and the
// pipeline has drained its queue, every frame buffer is back with ingest:
// analysed frames, frames skipped by the rate limit and frames whose
// detection failed alike. The "holder" case, a consumer that never
// releases, shows that the check can fail.
func TestPipelineReleasesFrames(t *testing.T) {
	if _, err := rtspserver.FFmpegPath(); err != nil {
		if os.Getenv("SRDGD_TEST_REQUIRE_FFMPEG") == "1" {
			t.Fatalf("SRDGD_TEST_REQUIRE_FFMPEG=1 but %v", err)
		}
		t.Skipf("SKIPPING: %v", err)
	}
	cases := []struct {
		name     string
		fps      float64 // pipeline rate limit; the camera sends 25 fps
		failN    int     // fail every n-th detection; 0 never
		noPipe   bool    // a consumer that pops and never releases
		wantHeld bool
	}{
		{name: "rate limited to 5 fps", fps: 5},
		{name: "every frame", fps: -1},
		{name: "every other detection fails", fps: -1, failN: 2},
		{name: "holder that never releases", noPipe: true, wantHeld: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ignore := goleak.IgnoreCurrent()
			defer goleak.VerifyNone(t, ignore)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			srv, err := rtspserver.Start(rtspserver.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			pub, err := rtspserver.PublishFFmpeg(ctx, srv.URL("cam"), rtspserver.FFmpegOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Stop()
			if err := srv.WaitPublisher(ctx, "cam"); err != nil {
				t.Fatalf("%v (ffmpeg: %s)", err, pub.Stderr())
			}
			cam, err := ingest.NewCamera(ingest.CameraOptions{Name: "cam", URL: srv.URL("cam"), Transport: "tcp"})
			if err != nil {
				t.Fatal(err)
			}
			// the daemon's queue depth (cmd/srdgd subscribes with 2)
			in := cam.SubscribeFrames(2)
			camCtx, stopCam := context.WithCancel(ctx)
			camDone := make(chan error, 1)
			go func() { camDone <- cam.Run(camCtx) }()

			const want = 40 // frames taken from the queue before the camera stops
			var taken func() uint64
			runDone := make(chan error, 1)
			if tc.noPipe {
				var n uint64
				var held []*face.Frame
				taken = func() uint64 { return n }
				for n < want {
					f, err := in.Pop(ctx)
					if err != nil {
						t.Fatal(err)
					}
					held = append(held, f)
					n++
				}
				runDone <- nil
				defer func() { _ = held }()
			} else {
				var det Detector = newBlazeFace(t, BlazeFaceOptions{Search: Search{MinFacePx: 24}})
				if tc.failN > 0 {
					det = &failEvery{Detector: det, n: tc.failN}
				}
				p, err := NewPipeline(PipelineOptions{In: in, Out: queue.New[*face.Probe](4), Detector: det, FPS: tc.fps})
				if err != nil {
					t.Fatal(err)
				}
				taken = func() uint64 { s := p.Stats(); return s.Frames + s.RateSkipped }
				go func() { runDone <- p.Run(context.Background()) }()
				for taken() < want {
					select {
					case <-ctx.Done():
						t.Fatalf("only %d frames analysed or skipped", taken())
					case <-time.After(20 * time.Millisecond):
					}
				}
				defer func() {
					s := p.Stats()
					t.Logf("frames %d, rate-skipped %d, errors %d", s.Frames, s.RateSkipped, s.Errors)
					if tc.failN > 0 && s.Errors == 0 {
						t.Error("no detection failed")
					}
					if tc.fps > 0 && s.RateSkipped == 0 {
						t.Error("no frame skipped by the rate limit")
					}
				}()
			}
			stopCam()
			if err := <-camDone; err != nil {
				t.Fatalf("camera Run: %v", err)
			}
			// the camera closed the queue: the pipeline drains it and returns
			if err := <-runDone; err != nil {
				t.Fatalf("pipeline Run: %v", err)
			}
			st := cam.Status()
			t.Logf("frames %d, buffers allocated %d, reused %d, outstanding %d", st.Frames, st.BuffersAllocated, st.BuffersReused, st.BuffersOutstanding)
			if tc.wantHeld {
				if st.BuffersOutstanding < want {
					t.Fatalf("%d buffers outstanding, want the %d frames held", st.BuffersOutstanding, want)
				}
				return
			}
			if st.BuffersOutstanding != 0 {
				t.Errorf("%d frame buffers not returned after the pipeline drained", st.BuffersOutstanding)
			}
			// the pool holds 4 buffers: with every frame released, nearly
			// all frames reuse one
			if st.BuffersReused == 0 || st.BuffersAllocated > 8 {
				t.Errorf("%d of %d frames got a fresh buffer, want at most 8", st.BuffersAllocated, st.Frames)
			}
		})
	}
}
