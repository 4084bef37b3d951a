package rtspserver

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// TestKeeperRecovers: the demo camera's stream comes back, readers get
// packets again, after ffmpeg died (killed) and after it stalled (stopped:
// the server drops it after its read timeout while the process lives on);
// Run stops ffmpeg and returns when its context ends.
func TestKeeperRecovers(t *testing.T) {
	requireFFmpeg(t)
	leakCheck(t)
	cases := []struct {
		name   string
		signal syscall.Signal
	}{
		{"ffmpeg killed", syscall.SIGKILL},
		{"ffmpeg stalled", syscall.SIGSTOP},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			s := startServer(t, Options{ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second})
			k, err := NewKeeper(ctx, s.URL("demo"), FFmpegOptions{Width: 320, Height: 240, FPS: 10, GOP: 10}, nil)
			if err != nil {
				t.Fatal(err)
			}
			k.Present = func() bool { return s.HasPublisher("demo") }
			k.StallAfter, k.MinBackoff = 2*time.Second, 100*time.Millisecond
			rctx, rcancel := context.WithCancel(ctx)
			ran := make(chan error, 1)
			go func() { ran <- k.Run(rctx) }()
			if err := s.WaitPublisher(ctx, "demo"); err != nil {
				t.Fatalf("%v (ffmpeg: %s)", err, k.Publisher().Stderr())
			}
			if _, err := readPackets(ctx, s.URL("demo"), nil, nil, 5); err != nil {
				t.Fatalf("before: %v", err)
			}
			first := k.Publisher()
			if err := first.cmd.Process.Signal(c.signal); err != nil {
				t.Fatal(err)
			}
			for k.Restarts() == 0 {
				select {
				case <-ctx.Done():
					t.Fatalf("ffmpeg not restarted after %s (server has a publisher: %v)", c.name, s.HasPublisher("demo"))
				case <-time.After(50 * time.Millisecond):
				}
			}
			if k.Publisher() == first {
				t.Fatal("the restart kept the old process")
			}
			if err := s.WaitPublisher(ctx, "demo"); err != nil {
				t.Fatal(err)
			}
			if _, err := readPackets(ctx, s.URL("demo"), nil, nil, 5); err != nil {
				t.Fatalf("after the restart: %v", err)
			}
			rcancel()
			if err := <-ran; err != nil {
				t.Fatalf("Run: %v", err)
			}
			select {
			case <-k.Publisher().Done():
			default:
				t.Fatal("Run returned with ffmpeg still running")
			}
		})
	}
}
