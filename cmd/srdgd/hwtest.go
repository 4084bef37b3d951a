package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/srdgd/srdgd/config"
	"github.com/srdgd/srdgd/hwtest"
	"github.com/srdgd/srdgd/internal/app"
	"github.com/srdgd/srdgd/internal/cliflag"
)

const hwtestUsage = `usage: srdgd hwtest [--config FILE] [--json] [--camera-timeout 15s] [--face PHOTO]

Checks that this box can run the daemon with the config: ONNX Runtime and its
execution providers, every model, a one-face SRDG run against
srdg.latency_budget, each enabled camera, the MQTT broker, the gallery key, free
disk and the clock. Exit status 0 when the box is fit, 1 when a check failed.
`

// cmdHWTest runs the pre-flight check (hwtest package) with options from the
// config.
func cmdHWTest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cliflag.NewFlagSet("hwtest", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, hwtestUsage); fs.PrintDefaults() }
	cfgPath := fs.String("config", "", "config file (default $SRDGD_CONFIG, else /etc/srdgd/srdgd.yaml if present, else defaults)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	camTimeout := fs.Duration("camera-timeout", 15*time.Second, "time allowed per camera to connect, answer DESCRIBE and decode a frame")
	face := fs.String("face", "", "face photo for the SRDG run (default: a built-in one)")
	if pos, err := cliflag.Parse(fs, args); err != nil || !cliflag.NoArgs(stderr, "srdgd hwtest", pos) {
		return exitUsage
	}
	cfg, err := config.LoadOrDefault(*cfgPath)
	if err != nil {
		printConfigError(stderr, err)
		return exitConfig
	}
	o := app.HWTestOptions(cfg)
	o.CameraTimeout = *camTimeout
	o.SR.FacePath = *face
	rep := hwtest.Run(ctx, o)
	if *asJSON {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "srdgd hwtest:", err)
		return exitFailure
	}
	if !rep.Fit {
		return exitFailure
	}
	return exitOK
}
