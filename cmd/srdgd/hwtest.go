package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/srdgd/srdgd/config"
	"github.com/srdgd/srdgd/hwtest"
	"github.com/srdgd/srdgd/srdg"
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
	fs := newFlagSet("hwtest", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, hwtestUsage); fs.PrintDefaults() }
	cfgPath := fs.String("config", "", "config file (default $SRDGD_CONFIG, else /etc/srdgd/srdgd.yaml if present, else defaults)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	camTimeout := fs.Duration("camera-timeout", 15*time.Second, "time allowed per camera to connect, answer DESCRIBE and decode a frame")
	face := fs.String("face", "", "face photo for the SRDG run (default: a built-in one)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "srdgd hwtest: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	cfg, err := loadConfigOrDefault(*cfgPath)
	if err != nil {
		printConfigError(stderr, err)
		return exitConfig
	}
	o := hwtestOptions(cfg)
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

// hwtestOptions turns the config into hwtest's options, resolving model paths
// the way the daemon does (modelPath: configured, else the models folder).
func hwtestOptions(cfg *config.Config) hwtest.Options {
	paths := cfg.Paths()
	guid := modelPath(cfg, paths.GuidanceModel)
	models := []hwtest.Model{{Kind: hwtest.KindScore, Key: "srdg.score_model", Path: modelPath(cfg, paths.ScoreModel)}}
	if cfg.SRDG.Attributes.Policy != "off" {
		models = append(models, hwtest.Model{Kind: hwtest.KindGuidance, Key: "srdg.guidance_model", Path: guid})
	} else {
		guid = ""
	}
	if cfg.SRDG.Attributes.Policy == "predict" {
		models = append(models, hwtest.Model{Kind: hwtest.KindLRAttrs, Key: "srdg.attr_model", Path: modelPath(cfg, paths.AttrModel)})
	}
	if cfg.Detect.Detector != "haar" {
		models = append(models, hwtest.Model{Kind: hwtest.KindBlazeFace, Key: "detect.blazeface_model", Path: modelPath(cfg, paths.BlazefaceModel)})
	}
	emb := modelPath(cfg, paths.EmbedderModel)
	models = append(models,
		hwtest.Model{Kind: hwtest.KindEmbedder, Key: "match.embedder_model", Path: emb},
		// the daemon loads the landmarks model next to the embedder
		hwtest.Model{Kind: hwtest.KindLandmarks, Key: "match.embedder_model", Path: filepath.Join(filepath.Dir(emb), "face_landmarks68.onnx")})

	var cams []hwtest.Camera
	for _, c := range cfg.Cameras {
		if !c.Enabled {
			continue
		}
		cams = append(cams, hwtest.Camera{Name: c.Name, URL: c.URL, Username: c.Username, Password: c.Password.Reveal(),
			Transport: c.Transport, TLSInsecure: c.TLSInsecure, TLSFingerprint: c.TLSFingerprint})
	}
	m := cfg.Publish.MQTT
	return hwtest.Options{
		ORT: hwtest.ORTOptions{Library: cfg.SRDG.ORTLibrary, Providers: cfg.SRDG.Providers,
			IntraThreads: cfg.SRDG.IntraThreads, InterThreads: cfg.SRDG.InterThreads,
			TRTCacheDir: paths.TRTCache, TRTFP16: cfg.SRDG.TRTFP16},
		Models: models,
		SR: &hwtest.SROptions{ScorePath: modelPath(cfg, paths.ScoreModel), GuidancePath: guid, Scale: cfg.SRDG.Scale,
			Params: srdg.Params{Sampler: cfg.SRDG.Sampler, Steps: cfg.SRDG.Steps, W: cfg.SRDG.GuidanceWeight,
				CorrectorSteps: cfg.SRDG.CorrectorSteps, SNR: cfg.SRDG.SNR, Schedule: srdg.Schedule{Eps: cfg.SRDG.Eps}},
			LatencyBudget: cfg.SRDG.LatencyBudget, Seed: uint64(cfg.SRDG.Seed)},
		Cameras: cams,
		MQTT: hwtest.MQTTOptions{Enabled: m.Enabled, Broker: m.Broker, EmbeddedListen: m.EmbeddedListen,
			Username: m.Username, Password: m.Password.Reveal(), CAFile: m.TLS.CAFile, CertFile: m.TLS.CertFile,
			KeyFile: m.TLS.KeyFile, InsecureSkipVerify: m.TLS.InsecureSkipVerify},
		Gallery:      hwtest.GalleryOptions{Path: paths.Gallery, KeyFile: cfg.Match.KeyFile, Encrypt: cfg.Match.Encrypt},
		StateDir:     cfg.Storage.StateDir,
		SpoolDir:     paths.Spool,
		MinFreeBytes: uint64(max(cfg.Storage.MinFreeBytes, 0)),
	}
}
