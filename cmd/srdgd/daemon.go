package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/srdgd/srdgd/config"
	"github.com/srdgd/srdgd/ingest"
	"github.com/srdgd/srdgd/systemd"
)

// component is anything the daemon supervises: Run blocks until ctx ends and
// returns nil then, or returns early with an error that stops the daemon.
type component struct {
	name string
	run  func(ctx context.Context) error
}

// daemon is the composition root: it turns a validated config into components
// built from plain option structs, runs them in one errgroup and drains them on
// shutdown within the configured timeout.
type daemon struct {
	log        *slog.Logger
	cfg        *config.Config
	cameras    []*ingest.Camera
	components []component
	// statusEvery is how often camera status is logged (first after a tenth).
	statusEvery time.Duration
	health      *health
	notifier    *systemd.Notifier
	// onStop runs after every component has returned (releases C memory),
	// in reverse order of registration.
	onStop []func()
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.SlogLevel()}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func newDaemon(cfg *config.Config, log *slog.Logger) (*daemon, error) {
	d := &daemon{log: log, cfg: cfg, statusEvery: time.Minute, health: newHealth()}
	n, err := systemd.NewNotifier()
	if err != nil {
		log.Warn("systemd notification off", "err", err)
	}
	d.notifier = n
	if iv, err := systemd.WatchdogInterval(); err != nil {
		log.Warn("systemd watchdog off", "err", err)
	} else if wd := systemd.NewWatchdog(n, iv, log); wd.Enabled() {
		d.components = append(d.components, component{name: "watchdog", run: func(ctx context.Context) error {
			return wd.Run(ctx, d.health.check)
		}})
	}
	for _, cc := range cfg.Cameras {
		if !cc.Enabled {
			log.Info("camera disabled in config", "camera", cc.Name)
			continue
		}
		cam, err := ingest.NewCamera(ingest.CameraOptions{
			Name:                cc.Name,
			URL:                 cc.URL,
			Username:            cc.Username,
			Password:            cc.Password.Reveal(),
			Transport:           cc.Transport,
			TLSInsecure:         cc.TLSInsecure,
			TLSFingerprint:      cc.TLSFingerprint,
			ReconnectInitial:    cc.Reconnect.Initial,
			ReconnectMax:        cc.Reconnect.Max,
			ReconnectResetAfter: cc.Reconnect.ResetAfter,
			AuthRetryInitial:    cc.Reconnect.AuthRetry,
			AuthRetryMax:        cc.Reconnect.AuthRetryMax,
			Logger:              log, // ingest adds component and camera
		})
		if err != nil {
			return nil, fmt.Errorf("camera %q: %w", cc.Name, err)
		}
		d.cameras = append(d.cameras, cam)
		d.components = append(d.components, component{name: "ingest/" + cc.Name, run: cameraRun(cam, log)})
	}
	sv, err := openServices(d)
	if err != nil {
		return nil, err
	}
	d.onStop = append(d.onStop, sv.close)
	fail := func(err error) (*daemon, error) { d.stopped(); return nil, err }
	var p *pipeline
	if len(d.cameras) == 0 {
		log.Warn("no enabled cameras in the config: nothing to ingest")
	} else if p, err = newPipeline(d, sv); err != nil {
		return fail(err)
	}
	if _, err := newPublish(d, sv, p); err != nil {
		return fail(err)
	}
	d.components = append(d.components, component{name: "status", run: d.reportStatus})
	return d, nil
}

// cameraRun runs one camera as a component that never stops the daemon:
// whatever a camera sends, its failure is its own. Rejected credentials are
// a state the camera retries (auth_failed); a permanent error (a decoder
// that cannot be built, retries exhausted) leaves it failed, shown in its
// status, metrics and health, while the other cameras, MQTT and HTTP go on.
func cameraRun(cam *ingest.Camera, log *slog.Logger) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		if err := cam.Run(ctx); err != nil {
			log.Error("camera stopped; the daemon goes on without it", "camera", cam.Name(), "err", err)
		}
		return nil
	}
}

// reportStatus logs every camera's status once a minute (and once shortly
// after start), so an installer tailing the journal sees fps and errors.
func (d *daemon) reportStatus(ctx context.Context) error {
	t := time.NewTimer(d.statusEvery / 10)
	defer t.Stop()
	for _, c := range d.cameras {
		c.Status() // starts the fps/bitrate measurement window
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			for _, c := range d.cameras {
				s := c.Status()
				d.log.Info("camera status", "camera", s.Camera, "state", s.State, "codec", s.Codec,
					"size", fmt.Sprintf("%dx%d", s.Width, s.Height), "fps", round1(s.FPS),
					"kbps", round1(s.BitrateKbps), "frames", s.Frames, "dropped", s.Dropped,
					"decode_errors", s.DecodeErrors, "reconnects", s.Reconnects, "auth_failures", s.AuthFailures,
					"last_error", s.LastError)
			}
			t.Reset(d.statusEvery)
		}
	}
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }

// run starts every component and blocks until ctx ends or one fails, then
// waits for all of them, at most shutdownTimeout after the stop began.
func (d *daemon) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	// models, gallery and history are loaded (newDaemon) and the components
	// start now: Type=notify units become active
	if err := d.notifier.Ready(fmt.Sprintf("running: %d camera(s)", len(d.cameras))); err != nil {
		d.log.Warn("systemd READY notification failed", "err", err)
	}
	for _, c := range d.components {
		g.Go(func() error {
			err := c.run(gctx)
			if err != nil {
				d.log.Error("component failed", "component", c.name, "err", err)
				return fmt.Errorf("%s: %w", c.name, err)
			}
			return nil
		})
	}
	d.log.Info("srdgd running", "version", buildVersion(), "cameras", len(d.cameras))
	done := make(chan error, 1)
	go func() { done <- g.Wait() }()
	select {
	case err := <-done:
		d.stopped()
		return err
	case <-gctx.Done():
	}
	d.log.Info("shutting down", "timeout", d.cfg.Daemon.ShutdownTimeout)
	_ = d.notifier.Stopping()
	t := time.NewTimer(d.cfg.Daemon.ShutdownTimeout)
	defer t.Stop()
	select {
	case err := <-done:
		d.stopped()
		d.log.Info("stopped")
		return err
	case <-t.C:
		// components still hold their C resources: leave them to the exit
		return errDrainTimeout
	}
}

func (d *daemon) stopped() {
	// last opened, first closed: the pipeline's sessions before the runtime
	for i := len(d.onStop) - 1; i >= 0; i-- {
		d.onStop[i]()
	}
	d.onStop = nil
}

var errDrainTimeout = errors.New("components did not stop within daemon.shutdown_timeout")

func exitCodeFor(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errDrainTimeout):
		return exitDrainTimeout
	default:
		return exitFailure
	}
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("run", stderr)
	path := fs.String("config", defaultConfigPath(), "config file (default $SRDGD_CONFIG, else /etc/srdgd/srdgd.yaml)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	cfg, err := config.LoadChecked(*path)
	if err != nil {
		printConfigError(stderr, err)
		return exitConfig
	}
	return runDaemon(ctx, cfg, stderr)
}

// defaultConfigPath is $SRDGD_CONFIG, else the installed location.
func defaultConfigPath() string {
	if p := os.Getenv("SRDGD_CONFIG"); p != "" {
		return p
	}
	return "/etc/srdgd/srdgd.yaml"
}

func runDaemon(ctx context.Context, cfg *config.Config, logw io.Writer) int {
	return runDaemonWith(ctx, cfg, newLogger(cfg.Log, logw), nil)
}

// runDaemonWith builds and runs the daemon; tweak, when set, adjusts it before
// it starts (tests use it to shorten intervals or add components).
func runDaemonWith(ctx context.Context, cfg *config.Config, log *slog.Logger, tweak func(*daemon)) int {
	d, err := newDaemon(cfg, log)
	if err != nil {
		log.Error("startup failed", "err", err)
		return exitFailure
	}
	if tweak != nil {
		tweak(d)
	}
	err = d.run(ctx)
	if err != nil {
		log.Error("srdgd stopped with an error", "err", err)
	}
	return exitCodeFor(err)
}
