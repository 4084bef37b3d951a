package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/srdgd/srdgd/config"
	"github.com/srdgd/srdgd/internal/rtspserver"
)

// pageDaemon is the real daemon on the camera "plaza" of an in-process
// RTSP server, as the browser tests watch it: its address, its logs and
// the events they announce.
type pageDaemon struct {
	t      *testing.T
	cfg    *config.Config
	base   string // http://host:port of the page and API
	logs   syncBuffer
	events *logEvents
	cancel context.CancelFunc
	exited chan struct{}
	code   int
}

// startPageDaemon runs the daemon with cfg on srv's "plaza", SR made cheap
// for a small shared CPU (ode rather than fast, as at 4 steps fast leaves
// the face under visible noise; batch 1; no guidance; every face through
// SR, srdg.direct_side 0); hook, when set, sees
// every log record too. It returns once the API listens and the camera's
// live view can play (the page lays its grid out once). close must run
// before a goroutine-leak check.
func startPageDaemon(ctx context.Context, t *testing.T, cfg *config.Config, srv *rtspserver.Server, hook func(slog.Record)) *pageDaemon {
	t.Helper()
	cfg.SRDG.Sampler, cfg.SRDG.Steps, cfg.SRDG.BatchSize = "ode", 4, 1
	// the page's SR path: the scene's 30-50 px crops would otherwise be
	// read directly (srdg.direct_side), with no SR run to show
	cfg.SRDG.DirectSide = 0
	cfg.SRDG.Attributes.Policy = "off"
	cfg.Daemon.ShutdownTimeout = 20 * time.Second
	cam := config.DefaultCamera()
	cam.Name, cam.URL, cam.Transport = "plaza", srv.URL("plaza"), "tcp"
	cfg.Cameras = []config.Camera{cam}
	d := &pageDaemon{t: t, cfg: cfg, events: newLogEvents(), exited: make(chan struct{}), code: -1}
	log := slog.New(&hookHandler{inner: slog.NewTextHandler(&d.logs, nil), hook: func(r slog.Record) {
		d.events.record(r)
		if hook != nil {
			hook(r)
		}
	}})
	var dctx context.Context
	dctx, d.cancel = context.WithCancel(ctx)
	go func() {
		defer close(d.exited)
		d.code = runDaemonWith(dctx, cfg, log, nil)
	}()
	select {
	case addr := <-d.events.httpAddr:
		d.base = "http://" + addr
	case <-d.exited:
		d.close()
		t.Fatalf("daemon exited with %d before serving", d.code)
	case <-ctx.Done():
		d.close()
		t.Fatal("the http api never listened")
	}
	waitCameraLive(ctx, t, d.base, "plaza")
	return d
}

// stop stops the daemon as SIGTERM would and checks that it exits with 0
// within its shutdown timeout and logged no error; it returns the logs.
func (d *pageDaemon) stop() string {
	d.t.Helper()
	d.cancel()
	select {
	case <-d.exited:
		if d.code != exitOK {
			d.t.Errorf("daemon exit %d after a clean stop, want %d", d.code, exitOK)
		}
	case <-time.After(d.cfg.Daemon.ShutdownTimeout + 10*time.Second):
		d.t.Fatal("the daemon did not stop")
	}
	out := d.logs.String()
	if strings.Contains(out, "level=ERROR") {
		d.t.Error("the daemon logged an error")
	}
	return out
}

// close (deferred) prints the daemon's log when the test failed, then
// stops the daemon and waits for it (it returns within its shutdown
// timeout, also after a failure).
func (d *pageDaemon) close() {
	if d.t.Failed() {
		d.t.Logf("daemon log:\n%s", d.logs.String())
	}
	d.cancel()
	<-d.exited
}

// pagePoller returns pollIn: wait until the JavaScript expr is true in the
// tab of tctx (chromedp.Poll's own default stops at 30 s: timeout is passed
// on), else fail with the page's text; times are logged from t0.
func pagePoller(t *testing.T, t0 time.Time) func(tctx context.Context, what, expr string, timeout time.Duration) {
	return func(tctx context.Context, what, expr string, timeout time.Duration) {
		t.Helper()
		pctx, cancel := context.WithTimeout(tctx, timeout)
		defer cancel()
		if _, err := chromedp.Run(pctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(100*time.Millisecond),
			chromedp.WithPollingTimeout(timeout))); err != nil {
			text, _ := chromedp.Run(tctx, chromedp.Evaluate[string](`document.body.innerText`))
			t.Fatalf("%s (after %v): %v\npage text:\n%s", what, time.Since(t0).Round(time.Millisecond), err, text)
		}
		t.Logf("%s after %v", what, time.Since(t0).Round(time.Millisecond))
	}
}
