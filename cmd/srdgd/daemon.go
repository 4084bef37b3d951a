package main

import (
	"context"
	"errors"
	"io"
	"log/slog"

	"github.com/srdgd/srdgd/config"
	"github.com/srdgd/srdgd/internal/app"
	"github.com/srdgd/srdgd/internal/cliflag"
)

func exitCodeFor(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, app.ErrDrainTimeout):
		return exitDrainTimeout
	default:
		return exitFailure
	}
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cliflag.NewFlagSet("run", stderr)
	path := fs.String("config", config.DefaultPath(), "config file (default $SRDGD_CONFIG, else /etc/srdgd/srdgd.yaml)")
	pos, err := cliflag.Parse(fs, args)
	if err != nil || !cliflag.NoArgs(stderr, "srdgd run", pos) {
		return exitUsage
	}
	cfg, err := config.LoadChecked(*path)
	if err != nil {
		printConfigError(stderr, err)
		return exitConfig
	}
	return runDaemon(ctx, cfg, stderr)
}

func runDaemon(ctx context.Context, cfg *config.Config, logw io.Writer) int {
	return runDaemonWith(ctx, cfg, cfg.Log.Logger(logw), nil)
}

// runDaemonWith builds and runs the daemon; tweak, when set, adjusts it before
// it starts (tests use it to shorten intervals or add components).
func runDaemonWith(ctx context.Context, cfg *config.Config, log *slog.Logger, tweak func(*app.App)) int {
	d, err := app.Build(cfg, log, buildVersion())
	if err != nil {
		log.Error("startup failed", "err", err)
		return exitFailure
	}
	if tweak != nil {
		tweak(d)
	}
	if err = d.Run(ctx); err != nil {
		log.Error("srdgd stopped with an error", "err", err)
	}
	return exitCodeFor(err)
}
