package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/srdgd/srdgd/config"
	"github.com/srdgd/srdgd/internal/demoscene"
	"github.com/srdgd/srdgd/internal/rtspserver"
	"github.com/srdgd/srdgd/match"
	"github.com/srdgd/srdgd/publish/history"
)

// DemoClip renders the scene once per size and face set, cached in the state
// dir, and returns the clip's path.
func DemoClip(ctx context.Context, cfg *config.Config, w, h, fps int, log *slog.Logger) (string, *demoscene.Manifest, error) {
	mf, err := Models(cfg).Find(filepath.Join("demo", "manifest.json"),
		"the demo's faces are in models/dist/demo of the source tree and <prefix>/share/srdgd/models/demo when installed; set storage.models_dir (srdgd demo --models) to the folder holding demo/")
	if err != nil {
		return "", nil, err
	}
	man, err := demoscene.LoadManifest(filepath.Dir(mf))
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

// DemoGallery creates the demo's key and enrols the demo people the first
// time; an existing gallery keeps its people, and its photos without a
// descriptor of the current embedders get one (as srdgd gallery reembed).
func DemoGallery(ctx context.Context, cfg *config.Config, man *demoscene.Manifest, log *slog.Logger) error {
	if _, err := os.Stat(cfg.Match.KeyFile); errors.Is(err, os.ErrNotExist) {
		if err := match.GenerateKey(cfg.Match.KeyFile); err != nil {
			return err
		}
	}
	env, err := OpenGallery(ctx, cfg, true, nil, nil)
	if err != nil {
		return err
	}
	defer env.Close()
	people, err := env.Gallery.List(ctx)
	if err != nil {
		return err
	}
	if len(people) > 0 {
		rep, err := env.Gallery.Reembed(ctx, env.Embedder)
		if err == nil && rep.Stale > 0 {
			log.Info("demo: gallery re-embedded for the current embedders", "model", rep.Model, "photos", rep.Reembedded, "failed", len(rep.Failed))
		}
		return err
	}
	for _, p := range man.People {
		photos, err := match.PhotosFromFiles([]string{man.GalleryPath(p)})
		if err != nil {
			return err
		}
		res, err := env.Gallery.Add(ctx, p.Name, photos)
		if err != nil {
			return err
		}
		for _, r := range res {
			if r.Err != nil {
				log.Warn("demo: enrolment photo rejected", "person", p.Name, "err", r.Err)
			}
		}
		// the change is made: an audit entry that cannot be written is no reason to stop
		_ = AuditCLI(ctx, cfg, "gallery.add", p.Name, "demo gallery")
	}
	log.Info("demo: gallery enrolled", "people", len(man.People), "source", man.License)
	return nil
}

// DemoBrokerAddr is where the demo's embedded broker listens: flag when
// given, else def; and when def is taken (another broker, another demo), a
// free port on the same host instead of failing (moved is then true). Port 0
// is also resolved to a free port, so that the printed address is usable.
// The port is probed and released, so something else could take it before
// the broker listens: good enough for a demo, which then fails clearly.
func DemoBrokerAddr(flag, def string) (addr string, moved bool, err error) {
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

// AuditCLI appends a change made from the command line (by the user
// running it) to the daemon's audit log in the hit history.
func AuditCLI(ctx context.Context, cfg *config.Config, action, target, detail string) error {
	o, err := HistoryOptions(cfg, nil)
	if err != nil {
		return err
	}
	h, err := history.Open(ctx, history.Options{Path: o.Path, Key: o.Key})
	if err != nil {
		return err
	}
	defer h.Close()
	return h.Audit(ctx, history.AuditEntry{Actor: "cli:" + cliUser(), Action: action, Target: target, Detail: detail})
}

func cliUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return strconv.Itoa(os.Getuid())
}

// DemoOptions configure StartDemo.
type DemoOptions struct {
	// Width, Height and FPS of the demo camera.
	Width, Height, FPS int
	// Synthetic streams ffmpeg's testsrc2 pattern (no faces, no gallery).
	Synthetic bool
	// MQTTListen is the embedded broker's address ("": the default, or a
	// free port when that one is taken).
	MQTTListen string
	Log        *slog.Logger
}

// Demo is the demo's camera: an in-process RTSP server streaming the
// rendered scene from an ffmpeg that is restarted when it exits or stalls.
type Demo struct {
	// URL is the camera's RTSP URL, Broker the embedded broker's address.
	URL, Broker string
	srv         *rtspserver.Server
	cancel      context.CancelFunc
	kept        chan struct{}
}

// StartDemo starts the demo camera and enrols the demo gallery, and points
// cfg at them: cfg.Cameras is the demo camera, the embedded broker listens
// on Demo.Broker, the gallery key is in the state dir. A broker address
// that cannot work is a UsageError. Close stops the camera.
func StartDemo(ctx context.Context, cfg *config.Config, o DemoOptions) (*Demo, error) {
	log := o.Log
	broker, moved, err := DemoBrokerAddr(o.MQTTListen, cfg.Publish.MQTT.EmbeddedListen)
	if err != nil {
		return nil, UsageError{fmt.Errorf("mqtt broker address: %w", err)}
	}
	if moved {
		log.Warn("demo: the default mqtt port is taken, the embedded broker uses a free one", "default", cfg.Publish.MQTT.EmbeddedListen, "listen", broker)
	}
	cfg.Publish.MQTT.EmbeddedListen = broker
	cfg.Match.KeyFile = filepath.Join(cfg.Storage.StateDir, "gallery.key")
	if err := os.MkdirAll(cfg.Storage.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	srv, err := rtspserver.Start(rtspserver.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("rtsp server: %w", err)
	}
	d := &Demo{URL: srv.URL("demo"), Broker: broker, srv: srv, kept: make(chan struct{})}
	fo := rtspserver.FFmpegOptions{Width: o.Width, Height: o.Height, FPS: o.FPS, GOP: 2 * o.FPS}
	var man *demoscene.Manifest
	if !o.Synthetic {
		clip, m, err := DemoClip(ctx, cfg, o.Width, o.Height, o.FPS, log)
		if err != nil {
			srv.Close()
			return nil, fmt.Errorf("scene: %w", err)
		}
		fo.Input, man = clip, m
	}
	kctx, cancel := context.WithCancel(ctx)
	d.cancel = cancel
	keep, err := rtspserver.NewKeeper(kctx, d.URL, fo, log.With("component", "demo-camera"))
	if err != nil {
		cancel()
		srv.Close()
		return nil, fmt.Errorf("camera stream: %w", err)
	}
	keep.Present = func() bool { return srv.HasPublisher("demo") }
	go func() { defer close(d.kept); _ = keep.Run(kctx) }()
	wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
	err = srv.WaitPublisher(wctx, "demo")
	wcancel()
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("the synthetic camera did not start: %w (ffmpeg: %s)", err, keep.Publisher().Stderr())
	}
	if man != nil {
		if err := DemoGallery(ctx, cfg, man, log); err != nil {
			d.Close()
			return nil, fmt.Errorf("gallery: %w", err)
		}
	}
	cam := config.DefaultCamera()
	cam.Name, cam.URL, cam.Transport = "demo", d.URL, "tcp"
	cfg.Cameras = []config.Camera{cam}
	return d, nil
}

// Close stops the camera's ffmpeg and the RTSP server.
func (d *Demo) Close() {
	d.cancel()
	<-d.kept
	d.srv.Close()
}
