package systemd

import (
	"context"
	"log/slog"
	"time"
)

// Watchdog pings the service manager at half of WatchdogSec= while the daemon
// is healthy. When the health check fails (or blocks), the pings stop, and once
// a whole interval passes without one systemd kills the service and, with
// Restart=on-failure, starts it again: a wedged pipeline is restarted instead of
// sitting there looking alive.
type Watchdog struct {
	n        *Notifier
	interval time.Duration
	log      *slog.Logger
}

// NewWatchdog returns a watchdog that pings through n every interval/2;
// interval is WatchdogSec= (WatchdogInterval). An interval of 0 or a no-op
// notifier gives a watchdog whose Run only waits for ctx.
func NewWatchdog(n *Notifier, interval time.Duration, log *slog.Logger) *Watchdog {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Watchdog{n: n, interval: interval, log: log.With("component", "watchdog")}
}

// Enabled reports whether Run pings at all.
func (w *Watchdog) Enabled() bool { return w.interval > 0 && w.n.Enabled() }

// Period is the time between pings: half the interval, as sd_watchdog_enabled(3)
// recommends, so that one late ping does not get the service killed.
func (w *Watchdog) Period() time.Duration { return w.interval / 2 }

// Run pings at once and then every Period while healthy returns nil, until ctx
// ends; it returns nil then. healthy is called from Run's goroutine before each
// ping: an error withholds that ping and is logged when the state changes (not
// at every tick), and a healthy() that never returns stops the pings too, which
// is the point. A failed send is logged at most once per state change as well;
// it does not end Run (the manager may be re-executing).
func (w *Watchdog) Run(ctx context.Context, healthy func() error) error {
	if !w.Enabled() {
		<-ctx.Done()
		return nil
	}
	if healthy == nil {
		healthy = func() error { return nil }
	}
	w.log.Info("watchdog on", "interval", w.interval, "ping_every", w.Period())
	t := time.NewTicker(w.Period())
	defer t.Stop()
	var withholding, sendFailing bool
	for {
		if err := healthy(); err != nil {
			if !withholding {
				w.log.Error("watchdog: unhealthy, not pinging; systemd restarts the service if this lasts",
					"err", err, "restart_within", w.interval)
				withholding = true
			}
		} else {
			if withholding {
				w.log.Info("watchdog: healthy again, pinging")
				withholding = false
			}
			if err := w.n.Watchdog(); err != nil {
				if !sendFailing {
					w.log.Warn("watchdog: ping failed", "err", err)
					sendFailing = true
				}
			} else {
				sendFailing = false
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
