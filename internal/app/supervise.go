package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/srdgd/srdgd/config"
	"github.com/srdgd/srdgd/ingest"
	"github.com/srdgd/srdgd/systemd"
)

// component is anything the daemon supervises: run blocks until ctx ends
// and returns nil then, or returns early with an error that stops the
// daemon.
type component struct {
	name string
	run  func(ctx context.Context) error
}

// App is the built daemon: every component, the health of its stages and
// what to release after they stopped.
type App struct {
	log     *slog.Logger
	cfg     *config.Config
	version string
	cameras []*ingest.Camera
	comps   []component
	health  *health
	notify  *systemd.Notifier
	// onStop runs after every component has returned (releases C memory),
	// in reverse order of registration.
	onStop []func()
	// StatusEvery is how often camera status is logged (first after a
	// tenth); set before Run.
	StatusEvery time.Duration
}

// ErrDrainTimeout: components did not stop within daemon.shutdown_timeout.
var ErrDrainTimeout = errors.New("components did not stop within daemon.shutdown_timeout")

// Add adds a component (before Run): run blocks until ctx ends.
func (a *App) Add(name string, run func(ctx context.Context) error) {
	a.comps = append(a.comps, component{name: name, run: run})
}

func (a *App) addStop(f func()) { a.onStop = append(a.onStop, f) }

// Health returns an error naming every wedged stage (nil: healthy).
func (a *App) Health() error { return a.health.check() }

// Run starts every component and blocks until ctx ends or one fails, then
// waits for all of them, at most daemon.shutdown_timeout after the stop
// began (ErrDrainTimeout past it: the components keep their C memory until
// the process exits).
func (a *App) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	var (
		mu      sync.Mutex
		running = map[string]bool{}
	)
	// models, gallery and history are loaded (Build) and the components
	// start now: Type=notify units become active
	if err := a.notify.Ready(fmt.Sprintf("running: %d camera(s)", len(a.cameras))); err != nil {
		a.log.Warn("systemd READY notification failed", "err", err)
	}
	for _, c := range a.comps {
		mu.Lock()
		running[c.name] = true
		mu.Unlock()
		g.Go(func() error {
			defer func() { mu.Lock(); delete(running, c.name); mu.Unlock() }()
			if err := c.run(gctx); err != nil {
				a.log.Error("component failed", "component", c.name, "err", err)
				return fmt.Errorf("%s: %w", c.name, err)
			}
			return nil
		})
	}
	a.log.Info("srdgd running", "version", a.version, "cameras", len(a.cameras))
	done := make(chan error, 1)
	go func() { done <- g.Wait() }()
	select {
	case err := <-done:
		a.Close()
		return err
	case <-gctx.Done():
	}
	a.log.Info("shutting down", "timeout", a.cfg.Daemon.ShutdownTimeout)
	_ = a.notify.Stopping()
	t := time.NewTimer(a.cfg.Daemon.ShutdownTimeout)
	defer t.Stop()
	select {
	case err := <-done:
		a.Close()
		a.log.Info("stopped")
		return err
	case <-t.C:
		mu.Lock()
		stuck := slices.Sorted(maps.Keys(running))
		mu.Unlock()
		a.log.Error("components still running at daemon.shutdown_timeout", "components", strings.Join(stuck, ","))
		return ErrDrainTimeout
	}
}

// Close releases what Build opened, last opened first (the pipeline's
// sessions before the runtime). Run calls it once the components stopped;
// call it only for an App that is not run.
func (a *App) Close() {
	for i := len(a.onStop) - 1; i >= 0; i-- {
		a.onStop[i]()
	}
	a.onStop = nil
}

// CameraRun runs one camera as a component that never stops the daemon:
// whatever a camera sends, its failure is its own. Rejected credentials are
// a state the camera retries (auth_failed); a permanent error (a decoder
// that cannot be built, retries exhausted) leaves it failed, shown in its
// status, metrics and health, while the other cameras, MQTT and HTTP go on.
func CameraRun(cam *ingest.Camera, log *slog.Logger) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		if err := cam.Run(ctx); err != nil {
			log.Error("camera stopped; the daemon goes on without it", "camera", cam.Name(), "err", err)
		}
		return nil
	}
}

// reportStatus logs every camera's status once per StatusEvery (and once
// shortly after start), so an installer tailing the journal sees fps and
// errors.
func (a *App) reportStatus(ctx context.Context) error {
	t := time.NewTimer(a.StatusEvery / 10)
	defer t.Stop()
	for _, c := range a.cameras {
		c.Status() // starts the fps/bitrate measurement window
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			for _, c := range a.cameras {
				s := c.Status()
				a.log.Info("camera status", "camera", s.Camera, "state", s.State, "codec", s.Codec,
					"size", fmt.Sprintf("%dx%d", s.Width, s.Height), "fps", round1(s.FPS),
					"kbps", round1(s.BitrateKbps), "frames", s.Frames, "dropped", s.Dropped,
					"decode_errors", s.DecodeErrors, "reconnects", s.Reconnects, "auth_failures", s.AuthFailures,
					"last_error", s.LastError)
			}
			t.Reset(a.StatusEvery)
		}
	}
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }

// addWatchdog pings systemd's watchdog while the stages are healthy.
func (a *App) addWatchdog() {
	n, err := systemd.NewNotifier()
	if err != nil {
		a.log.Warn("systemd notification off", "err", err)
	}
	a.notify = n
	if iv, err := systemd.WatchdogInterval(); err != nil {
		a.log.Warn("systemd watchdog off", "err", err)
	} else if wd := systemd.NewWatchdog(n, iv, a.log); wd.Enabled() {
		a.Add("watchdog", func(ctx context.Context) error { return wd.Run(ctx, a.health.check) })
	}
}
