package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/srdgd/srdgd/config"
	"github.com/srdgd/srdgd/internal/demoscene"
	"github.com/srdgd/srdgd/internal/rtspserver"
	"github.com/srdgd/srdgd/match"
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
	mqttListen := fs.String("mqtt-listen", "", "address of the embedded MQTT broker (default "+config.Default().Publish.MQTT.EmbeddedListen+", or a free port when that one is taken)")
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
	cfg.Storage.StateDir = *stateDir
	cfg.Publish.HTTP.Listen = *listen
	broker, moved, err := demoBrokerAddr(*mqttListen, cfg.Publish.MQTT.EmbeddedListen)
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
		clip, m, err := demoClip(ctx, cfg, *width, *height, *fps, log)
		if err != nil {
			log.Error("demo: scene", "err", err)
			return exitFailure
		}
		fo.Input, man = clip, m
	}
	pub, err := rtspserver.PublishFFmpeg(ctx, url, fo)
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
	if man != nil {
		if err := demoGallery(ctx, cfg, man, log); err != nil {
			log.Error("demo: gallery", "err", err)
			return exitFailure
		}
	}

	cam := config.DefaultCamera()
	cam.Name = "demo"
	cam.URL = url
	cam.Transport = "tcp"
	cfg.Cameras = []config.Camera{cam}
	fmt.Fprintf(stdout, "srdgd demo: camera %s (%dx%d@%d), state in %s; Ctrl-C to stop\n", url, *width, *height, *fps, *stateDir)
	if cfg.Publish.HTTP.Enabled {
		fmt.Fprintf(stdout, "srdgd demo: web page http://%s/ (live view, hits, gallery)\n", cfg.Publish.HTTP.Listen)
	}
	if h, p, err := net.SplitHostPort(broker); err == nil {
		fmt.Fprintf(stdout, "srdgd demo: alerts on the embedded MQTT broker %s: mosquitto_sub -h %s -p %s -t '%s/#' -v\n",
			broker, h, p, cfg.Publish.MQTT.TopicPrefix)
	}
	return runDaemon(ctx, cfg, stderr)
}

// demoClip renders the scene once per size and face set, cached in the state
// dir, and returns the clip's path.
func demoClip(ctx context.Context, cfg *config.Config, w, h, fps int, log *slog.Logger) (string, *demoscene.Manifest, error) {
	man, err := demoscene.LoadManifest(filepath.Join(modelsDir(cfg.Storage.ModelsDir), "demo"))
	if err != nil {
		return "", nil, err
	}
	sc, err := demoscene.New(man, demoscene.Options{Width: w, Height: h, FPS: fps})
	if err != nil {
		return "", nil, err
	}
	clip := filepath.Join(cfg.Storage.StateDir, "demo-scene-"+sc.Key()+".mp4")
	if _, err := os.Stat(clip); err == nil {
		return clip, man, nil
	}
	ff, err := rtspserver.FFmpegPath()
	if err != nil {
		return "", nil, err
	}
	t0 := time.Now()
	log.Info("demo: rendering the scene (once)", "frames", sc.Frames(), "people", len(man.People))
	if err := sc.Encode(ctx, ff, clip); err != nil {
		return "", nil, err
	}
	log.Info("demo: scene ready", "file", clip, "elapsed", time.Since(t0).Round(time.Millisecond).String())
	return clip, man, nil
}

// demoGallery creates the demo's key and enrols the demo people the first
// time (an existing gallery is left as it is).
func demoGallery(ctx context.Context, cfg *config.Config, man *demoscene.Manifest, log *slog.Logger) error {
	if _, err := os.Stat(cfg.Match.KeyFile); errors.Is(err, os.ErrNotExist) {
		if err := match.GenerateKey(cfg.Match.KeyFile); err != nil {
			return err
		}
	}
	env, err := openGallery(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer env.close()
	people, err := env.gal.List(ctx)
	if err != nil || len(people) > 0 {
		return err
	}
	for _, p := range man.People {
		photos, err := match.PhotosFromFiles([]string{man.GalleryPath(p)})
		if err != nil {
			return err
		}
		res, err := env.gal.Add(ctx, p.Name, photos)
		if err != nil {
			return err
		}
		for _, r := range res {
			if r.Err != nil {
				log.Warn("demo: enrolment photo rejected", "person", p.Name, "err", r.Err)
			}
		}
		auditCLI(ctx, cfg, io.Discard, "gallery.add", p.Name, "demo gallery")
	}
	log.Info("demo: gallery enrolled", "people", len(man.People), "source", man.License)
	return nil
}

// demoBrokerAddr is where the demo's embedded broker listens: flag when
// given, else def; and when def is taken (another broker, another demo), a
// free port on the same host instead of failing (moved is then true). Port 0
// is also resolved to a free port, so that the printed address is usable.
// The port is probed and released, so something else could take it before
// the broker listens: good enough for a demo, which then fails clearly.
func demoBrokerAddr(flag, def string) (addr string, moved bool, err error) {
	addr = def
	if flag != "" {
		addr = flag
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", false, fmt.Errorf("--mqtt-listen %q: %w", addr, err)
	}
	if flag != "" && port != "0" {
		return addr, false, nil
	}
	if port != "0" {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			return addr, false, ln.Close()
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return addr, false, nil // the broker reports it
		}
		moved = true
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", false, fmt.Errorf("mqtt broker: no free port on %s: %w", host, err)
	}
	free := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", false, err
	}
	return free, moved, nil
}

func defaultDemoStateDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "srdgd-demo")
	}
	return filepath.Join(os.TempDir(), "srdgd-demo")
}
