package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/srdgd/srdgd/config"
	"github.com/srdgd/srdgd/internal/rtspserver"
)

// cmdDemo runs the daemon against a built-in camera: an in-process RTSP server
// fed by a synthetic stream, so a fresh box shows the pipeline with no setup.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", stderr)
	stateDir := fs.String("state-dir", defaultDemoStateDir(), "where the demo keeps its state")
	width := fs.Int("width", 1280, "demo camera width")
	height := fs.Int("height", 720, "demo camera height")
	fps := fs.Int("fps", 15, "demo camera frame rate")
	dur := fs.Duration("duration", 0, "stop after this long (0 = until SIGINT/SIGTERM)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *dur)
		defer cancel()
	}
	cfg := config.Default()
	log := newLogger(cfg.Log, stderr)

	srv, err := rtspserver.Start(rtspserver.Options{Logger: log})
	if err != nil {
		log.Error("demo: rtsp server", "err", err)
		return exitFailure
	}
	defer srv.Close()
	url := srv.URL("demo")
	pub, err := rtspserver.PublishFFmpeg(ctx, url, rtspserver.FFmpegOptions{Width: *width, Height: *height, FPS: *fps, GOP: 2 * *fps})
	if err != nil {
		log.Error("demo: camera stream", "err", err)
		return exitFailure
	}
	defer pub.Stop()
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	err = srv.WaitPublisher(wctx, "demo")
	cancel()
	if err != nil {
		log.Error("demo: the synthetic camera did not start", "err", err, "ffmpeg", pub.Stderr())
		return exitFailure
	}

	cfg.Storage.StateDir = *stateDir
	cam := config.DefaultCamera()
	cam.Name = "demo"
	cam.URL = url
	cam.Transport = "tcp"
	cfg.Cameras = []config.Camera{cam}
	fmt.Fprintf(stdout, "srdgd demo: camera %s (%dx%d@%d), state in %s; Ctrl-C to stop\n", url, *width, *height, *fps, *stateDir)
	return runDaemon(ctx, cfg, stderr)
}

func defaultDemoStateDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "srdgd-demo")
	}
	return filepath.Join(os.TempDir(), "srdgd-demo")
}
