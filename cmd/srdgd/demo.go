package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/srdgd/srdgd/config"
	"github.com/srdgd/srdgd/internal/app"
	"github.com/srdgd/srdgd/internal/demoscene"
	"github.com/srdgd/srdgd/internal/rtspserver"
)

// cmdDemo runs the daemon against a built-in camera: an in-process RTSP server
// streaming a synthetic surveillance scene in which eight real faces walk past
// at 12-40 px, with a demo gallery of the same people, so a fresh box shows the
// whole pipeline with no setup.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", stderr)
	stateDir := fs.String("state-dir", defaultDemoStateDir(), "where the demo keeps its state (gallery, key, rendered scene)")
	width := fs.Int("width", 1280, "demo camera width")
	height := fs.Int("height", 720, "demo camera height")
	fps := fs.Int("fps", 15, "demo camera frame rate")
	dur := fs.Duration("duration", 0, "stop after this long (0 = until SIGINT/SIGTERM)")
	listen := fs.String("listen", "127.0.0.1:8080", "address of the web page and API (loopback: no token needed)")
	synthetic := fs.Bool("testsrc", false, "stream ffmpeg's testsrc2 pattern (no faces) instead of the scene")
	models := fs.String("models", "", "folder of the models and the demo's faces (demo/manifest.json) (default: search beside the binary, /usr/share/srdgd/models, models/dist of the source tree)")
	mqttListen := fs.String("mqtt-listen", "", "address of the embedded MQTT broker (default "+config.Default().Publish.MQTT.EmbeddedListen+", or a free port when that one is taken)")
	if pos, err := parseArgs(fs, args); err != nil || !noArgs(stderr, "srdgd demo", pos) {
		return exitUsage
	}
	if *dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *dur)
		defer cancel()
	}
	cfg := config.Default()
	log := newLogger(cfg.Log, stderr)
	cfg.Storage.StateDir = *stateDir
	cfg.Storage.ModelsDir = *models
	cfg.Publish.HTTP.Listen = *listen
	broker, moved, err := app.DemoBrokerAddr(*mqttListen, cfg.Publish.MQTT.EmbeddedListen)
	if err != nil {
		log.Error("demo: mqtt broker address", "err", err)
		return exitUsage
	}
	if moved {
		log.Warn("demo: the default mqtt port is taken, the embedded broker uses a free one", "default", cfg.Publish.MQTT.EmbeddedListen, "listen", broker)
	}
	cfg.Publish.MQTT.EmbeddedListen = broker
	cfg.Match.KeyFile = filepath.Join(*stateDir, "gallery.key")
	if err := os.MkdirAll(*stateDir, 0o700); err != nil {
		log.Error("demo: state dir", "err", err)
		return exitFailure
	}

	srv, err := rtspserver.Start(rtspserver.Options{Logger: log})
	if err != nil {
		log.Error("demo: rtsp server", "err", err)
		return exitFailure
	}
	defer srv.Close()
	url := srv.URL("demo")
	fo := rtspserver.FFmpegOptions{Width: *width, Height: *height, FPS: *fps, GOP: 2 * *fps}
	var man *demoscene.Manifest
	if !*synthetic {
		clip, m, err := app.DemoClip(ctx, cfg, *width, *height, *fps, log)
		if err != nil {
			log.Error("demo: scene", "err", err)
			return exitFailure
		}
		fo.Input, man = clip, m
	}
	// the camera's ffmpeg is kept running: restarted when it exits or
	// stalls (the server dropped it), so that the demo camera comes back
	kctx, kcancel := context.WithCancel(ctx)
	keep, err := rtspserver.NewKeeper(kctx, url, fo, log.With("component", "demo-camera"))
	if err != nil {
		kcancel()
		log.Error("demo: camera stream", "err", err)
		return exitFailure
	}
	keep.Present = func() bool { return srv.HasPublisher("demo") }
	kept := make(chan struct{})
	go func() { defer close(kept); _ = keep.Run(kctx) }()
	defer func() { kcancel(); <-kept }()
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	err = srv.WaitPublisher(wctx, "demo")
	cancel()
	if err != nil {
		log.Error("demo: the synthetic camera did not start", "err", err, "ffmpeg", keep.Publisher().Stderr())
		return exitFailure
	}
	if man != nil {
		if err := app.DemoGallery(ctx, cfg, man, log); err != nil {
			log.Error("demo: gallery", "err", err)
			return exitFailure
		}
	}

	cam := config.DefaultCamera()
	cam.Name, cam.URL, cam.Transport = "demo", url, "tcp"
	cfg.Cameras = []config.Camera{cam}
	printDemo(stdout, cfg, fmt.Sprintf("%s (%dx%d@%d)", url, *width, *height, *fps), broker)
	return runDaemon(ctx, cfg, stderr)
}

// printDemo says where the demo's camera, page and alerts are.
func printDemo(w io.Writer, cfg *config.Config, camera, broker string) {
	fmt.Fprintf(w, "srdgd demo: camera %s, state in %s; Ctrl-C to stop\n", camera, cfg.Storage.StateDir)
	if cfg.Publish.HTTP.Enabled {
		fmt.Fprintf(w, "srdgd demo: web page http://%s/ (live view, hits, gallery)\n", cfg.Publish.HTTP.Listen)
	}
	if h, p, err := net.SplitHostPort(broker); err == nil {
		fmt.Fprintf(w, "srdgd demo: alerts on the embedded MQTT broker %s: mosquitto_sub -h %s -p %s -t '%s/#' -v\n",
			broker, h, p, cfg.Publish.MQTT.TopicPrefix)
	}
}

func defaultDemoStateDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "srdgd-demo")
	}
	return filepath.Join(os.TempDir(), "srdgd-demo")
}
