package systemd_test

import (
	"context"
	"log/slog"
	"os"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/srdgd/srdgd/systemd"
)

// The daemon's side of Type=notify and WatchdogSec=: READY=1 once its parts
// are built and started, a watchdog that pings while the health check passes, and
// STOPPING=1 on shutdown. With NOTIFY_SOCKET unset (started by hand) all of it
// is a no-op.
func Example() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	n, err := systemd.NewNotifier()
	if err != nil {
		log.Warn("systemd notifications off", "err", err)
	}
	interval, err := systemd.WatchdogInterval()
	if err != nil {
		log.Warn("systemd watchdog off", "err", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()

	// The watchdog pings while the daemon's health check passes; if it fails
	// or blocks (a deadlock, a stage stuck in a C call) the pings stop and
	// systemd restarts us.
	healthy := func() error { return nil } // the daemon's components and stages
	wd := systemd.NewWatchdog(n, interval, log)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return wd.Run(gctx, healthy) })
	// ... cameras, models and gallery are up:
	_ = n.Ready("2 cameras, models on cpu, gallery 12 people")

	<-ctx.Done()
	_ = n.Stopping()
	_ = g.Wait()
}
