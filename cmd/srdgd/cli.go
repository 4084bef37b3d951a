package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/srdgd/srdgd/config"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes, documented in the README.
const (
	exitOK           = 0 // success, or a clean shutdown after SIGINT/SIGTERM
	exitFailure      = 1 // a component failed at run time; or the answer is no: gallery verify not a match, gallery search nobody identified, gallery check found problems, hwtest unfit
	exitUsage        = 2 // bad command line
	exitConfig       = 3 // the configuration file is invalid or missing
	exitDrainTimeout = 4 // components did not stop within daemon.shutdown_timeout
)

const usage = `usage: srdgd COMMAND [FLAGS]

commands:
  run            run the daemon with a config file (--config FILE)
  demo           run the daemon on a built-in demo camera with an embedded broker
  config check   check a config file and print every problem (config check FILE)
  config example print the commented example config
  detect         find faces in an image (--in IMAGE [--json] [--probes DIR] [--scale 8|16])
  gallery        manage the gallery: keygen, add, list, remove, export, import, search, verify, check
  eval           evaluation harness: PSNR/SSIM, ROC AUC, Rank-k for LR, unguided and guided SR
  hwtest         check this box before it goes live (--config FILE [--json]); exit 1 when unfit
  sr             super-resolve one LR face image (--in lr.png [--scale 8|16] --attrs male=1,glasses=0,nobeard=1)
  version        print the version

Flags may come before or after a command's arguments. A scale is always
--scale 8|16 (the upscaling factor: 8 restores 16x16 faces, 16 restores 8x8).

exit codes: 0 ok; 1 run-time failure, or the answer is no (gallery verify: not a
match, gallery search: nobody identified, gallery check: problems, hwtest:
unfit); 2 usage; 3 invalid config; 4 shutdown drain timeout
`

// Main runs the command line and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	// SIGINT/SIGTERM cancel ctx; a second signal exits at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // restore default handling: a second signal kills the process
	}()
	return dispatch(ctx, args, stdout, stderr)
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], stdout, stderr)
	case "demo":
		return cmdDemo(ctx, args[1:], stdout, stderr)
	case "gallery":
		return cmdGallery(ctx, args[1:], stdout, stderr)
	case "detect":
		return cmdDetect(ctx, args[1:], stdout, stderr)
	case "eval":
		return cmdEval(ctx, args[1:], stdout, stderr)
	case "sr":
		return cmdSR(ctx, args[1:], stdout, stderr)
	case "hwtest":
		return cmdHWTest(ctx, args[1:], stdout, stderr)
	case "config":
		return cmdConfig(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "srdgd %s %s %s/%s\n", buildVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "srdgd: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
}

func buildVersion() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return version
}

func cmdConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, "usage: srdgd config check FILE | srdgd config example\n")
		return exitUsage
	}
	switch args[0] {
	case "example":
		stdout.Write(config.Example)
		return exitOK
	case "check":
		if len(args) != 2 {
			fmt.Fprint(stderr, "usage: srdgd config check FILE\n")
			return exitUsage
		}
		cfg, err := config.LoadChecked(args[1])
		if err != nil {
			printConfigError(stderr, err)
			return exitConfig
		}
		fmt.Fprintf(stdout, "%s: ok (%d cameras)\n", args[1], len(cfg.Cameras))
		return exitOK
	default:
		fmt.Fprintf(stderr, "srdgd config: unknown subcommand %q (check, example)\n", args[0])
		return exitUsage
	}
}

func printConfigError(w io.Writer, err error) {
	var ce *config.Errors
	if errors.As(err, &ce) {
		fmt.Fprintf(w, "config: %d problem(s):\n%s\n", len(ce.Problems), ce.Error())
		return
	}
	fmt.Fprintf(w, "config: %v\n", err)
}

// scales are the upscaling factors the models exist for (--scale).
var scales = []int{8, 16}

// evalScales are those and the direct path's (face.DirectScale), at which
// `srdgd eval` makes LR rows only.
var evalScales = []int{2, 3, 4, 5, 6, 8, 16}
