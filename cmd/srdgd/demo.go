package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/srdgd/srdgd/config"
	"github.com/srdgd/srdgd/internal/app"
	"github.com/srdgd/srdgd/internal/cliflag"
)

// cmdDemo runs the daemon against a built-in camera: an in-process RTSP server
// streaming a synthetic surveillance scene in which eight real faces walk past
// at 12-40 px, with a demo gallery of the same people, so a fresh box shows the
// whole pipeline with no setup.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cliflag.NewFlagSet("demo", stderr)
	stateDir := fs.String("state-dir", config.DemoStateDir(), "where the demo keeps its state (gallery, key, rendered scene)")
	width := fs.Int("width", 1280, "demo camera width")
	height := fs.Int("height", 720, "demo camera height")
	fps := fs.Int("fps", 15, "demo camera frame rate")
	dur := fs.Duration("duration", 0, "stop after this long (0 = until SIGINT/SIGTERM)")
	listen := fs.String("listen", "127.0.0.1:8080", "address of the web page and API (loopback: no token needed)")
	synthetic := fs.Bool("testsrc", false, "stream ffmpeg's testsrc2 pattern (no faces) instead of the scene")
	models := fs.String("models", "", "folder of the models and the demo's faces (demo/manifest.json) (default: search beside the binary, /usr/share/srdgd/models, models/dist of the source tree)")
	mqttListen := fs.String("mqtt-listen", "", "address of the embedded MQTT broker (default "+config.Default().Publish.MQTT.EmbeddedListen+", or a free port when that one is taken)")
	if pos, err := cliflag.Parse(fs, args); err != nil || !cliflag.NoArgs(stderr, "srdgd demo", pos) {
		return exitUsage
	}
	if *dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *dur)
		defer cancel()
	}
	cfg := config.Default()
	log := cfg.Log.Logger(stderr)
	cfg.Storage.StateDir = *stateDir
	cfg.Storage.ModelsDir = *models
	cfg.Publish.HTTP.Listen = *listen
	demo, err := app.StartDemo(ctx, cfg, app.DemoOptions{Width: *width, Height: *height, FPS: *fps, Synthetic: *synthetic, MQTTListen: *mqttListen, Log: log})
	if ue := (app.UsageError{}); errors.As(err, &ue) {
		log.Error("demo", "err", err)
		return exitUsage
	} else if err != nil {
		log.Error("demo", "err", err)
		return exitFailure
	}
	defer demo.Close()
	printDemo(stdout, cfg, fmt.Sprintf("%s (%dx%d@%d)", demo.URL, *width, *height, *fps), demo.Broker)
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
