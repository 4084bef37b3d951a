package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/srdgd/srdgd/config"
	"github.com/srdgd/srdgd/internal/ort"
	"github.com/srdgd/srdgd/match"
	"github.com/srdgd/srdgd/publish"
	"github.com/srdgd/srdgd/publish/history"
)

// services are the parts of the daemon that exist with or without cameras:
// ONNX Runtime, the gallery (for matching and the HTTP API) and the hit
// history with its audit log.
type services struct {
	rt       *ort.Runtime
	gallery  *match.Gallery // nil: no key file yet
	embedder *match.Embedder
	history  *history.Store // nil: no key file yet
	// sinks receive every hit (history first; publish adds MQTT, live, metrics).
	sinks   []publish.NamedSink
	closers []func()
}

func (s *services) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

// openServices opens what every configuration needs. Without a gallery key
// file (and encryption on) the daemon still runs: faces are reported as
// unknown and no history is kept, and the log says how to create the key.
func openServices(d *daemon) (*services, error) {
	cfg, log := d.cfg, d.log
	s := &services{}
	fail := func(err error) (*services, error) { s.close(); return nil, err }
	rt, err := ort.Open(cfg.SRDG.ORTLibrary, log.With("component", "ort"))
	if err != nil {
		return fail(err)
	}
	s.rt = rt
	s.closers = append(s.closers, func() { rt.Close() })
	if cfg.Match.Encrypt {
		if _, err := os.Stat(cfg.Match.KeyFile); errors.Is(err, os.ErrNotExist) {
			log.Warn("no gallery key file: faces will not be matched and no hit history is kept (create one with: srdgd gallery keygen)",
				"key_file", cfg.Match.KeyFile)
			return s, nil
		}
	}
	if err := os.MkdirAll(cfg.Storage.StateDir, 0o750); err != nil {
		return fail(err)
	}
	env, err := openGalleryWith(context.Background(), cfg, true, rt, log)
	if err != nil {
		return fail(err)
	}
	s.closers = append(s.closers, env.close)
	s.gallery, s.embedder = env.gal, env.emb
	h, err := openHistory(cfg, log)
	if err != nil {
		return fail(err)
	}
	s.history = h
	s.closers = append(s.closers, func() { h.Close() })
	s.sinks = append(s.sinks, publish.NamedSink{Name: "history", Sink: h})
	d.components = append(d.components, component{name: "history", run: h.Run})
	return s, nil
}

// openHistory opens the hit history with the gallery's key (the same at-rest
// encryption).
func openHistory(cfg *config.Config, log *slog.Logger) (*history.Store, error) {
	var key []byte
	if cfg.Match.Encrypt {
		k, err := match.LoadKey(cfg.Match.KeyFile)
		if err != nil {
			return nil, err
		}
		key = k
	}
	return history.Open(context.Background(), history.Options{Path: historyPath(cfg), Key: key,
		Retention: cfg.Storage.HitRetention, MinFreeBytes: uint64(cfg.Storage.MinFreeBytes), Logger: log.With("component", "history")})
}

func historyPath(cfg *config.Config) string { return filepath.Join(cfg.Storage.StateDir, "history.db") }
