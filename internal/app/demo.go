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
// time (an existing gallery is left as it is).
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
	if err != nil || len(people) > 0 {
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
