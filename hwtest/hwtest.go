// Package hwtest is the pre-flight check an installer runs on a new box
// (`srdgd hwtest`): it loads ONNX Runtime and tries each execution provider,
// loads and times every configured model, super-resolves one face with the
// configured sampler against the latency budget, pulls a frame from every
// camera, connects to the MQTT broker, opens the gallery with its key, and
// looks at disk space and the clock. Each check reports ok, warn, fail or skip
// with a message and the values it measured; a box with no failed check is
// fit to run the daemon.
//
// The package takes plain options; cmd/srdgd turns the config into them.
package hwtest

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/srdgd/srdgd/srdg"
)

// Model kinds, one per model slot of the daemon.
const (
	KindScore     = "score"
	KindGuidance  = "guidance"
	KindLRAttrs   = "lr_attrs"
	KindBlazeFace = "blazeface"
	KindEmbedder  = "embedder"
	KindLandmarks = "landmarks"
)

// Model is one configured model file.
type Model struct {
	// Kind is one of the Kind constants; it picks the slot checked.
	Kind string
	// Key is the config key that sets the path, quoted in messages
	// ("srdg.score_model").
	Key  string
	Path string
	// Missing, when set, is why no file was found for the slot (the paths
	// searched); the check fails with it.
	Missing error
}

// ORTOptions say how the daemon runs ONNX Runtime.
type ORTOptions struct {
	// Library is srdg.ort_library; "" searches the standard places.
	Library string
	// Providers is srdg.providers, in order of preference.
	Providers                  []string
	IntraThreads, InterThreads int
	TRTCacheDir                string
	TRTFP16                    bool
}

// SROptions describe the one-face SRDG run.
type SROptions struct {
	ScorePath    string
	GuidancePath string // "" = guidance off
	// ScoreMissing and GuidanceMissing, when set, say why the model was
	// not found: the run is skipped with it.
	ScoreMissing, GuidanceMissing error
	// Scale is srdg.scale (8 or 16); the score model must match it.
	Scale int
	// Params are the configured sampler's; Schedule is taken from the model.
	Params srdg.Params
	// LatencyBudget is srdg.latency_budget: the run should finish within it.
	LatencyBudget time.Duration
	// FacePath is a face photo to use instead of the built-in one.
	FacePath string
	Seed     uint64
}

// Camera is one enabled camera.
type Camera struct {
	// Key is its config section, quoted in messages ("cameras[0]");
	// default "cameras[name=<Name>]".
	Key                string
	Name, URL          string
	Username, Password string
	// Transport: auto, tcp or udp.
	Transport      string
	TLSInsecure    bool
	TLSFingerprint string
}

// MQTTOptions describe the broker the daemon publishes to.
type MQTTOptions struct {
	Enabled bool
	// Broker is the external broker URL; "" means the daemon starts its
	// embedded broker on EmbeddedListen.
	Broker             string
	EmbeddedListen     string
	Username, Password string
	CAFile             string
	CertFile, KeyFile  string
	InsecureSkipVerify bool
}

// HTTPOptions describe the daemon's HTTP listener (publish.http).
type HTTPOptions struct {
	Enabled bool
	// Listen is publish.http.listen, host:port.
	Listen string
}

// GalleryOptions say where the gallery and its key are.
type GalleryOptions struct {
	Path    string
	KeyFile string
	Encrypt bool
}

// Options configure Run. Zero timeouts take the documented defaults.
type Options struct {
	ORT    ORTOptions
	Models []Model
	// SR, when set, runs the one-face check.
	SR      *SROptions
	Cameras []Camera
	// DisabledCameras counts the configured cameras with enabled: false.
	DisabledCameras int
	MQTT            MQTTOptions
	HTTP            HTTPOptions
	Gallery         GalleryOptions
	// StateDir and SpoolDir must have MinFreeBytes free; StateDir must be
	// writable.
	StateDir, SpoolDir string
	MinFreeBytes       uint64
	// CameraTimeout bounds each camera check (connect, DESCRIBE, first
	// frame). Default 15 s.
	CameraTimeout time.Duration
	// MQTTTimeout bounds the broker connection. Default 10 s.
	MQTTTimeout time.Duration
	// SRMaxRun bounds the one-face run: when the model timings predict a
	// longer run (the reference sampler on a CPU), the prediction is reported
	// instead. Default 3 min.
	SRMaxRun time.Duration
	// Now is the clock checked; default time.Now.
	Now    func() time.Time
	Logger *slog.Logger

	// evalTimes are the model checks' timings, kind+"/"+provider -> one call
	evalTimes map[string]time.Duration
}

func (o *Options) setDefaults() {
	if o.CameraTimeout <= 0 {
		o.CameraTimeout = 15 * time.Second
	}
	if o.MQTTTimeout <= 0 {
		o.MQTTTimeout = 10 * time.Second
	}
	if o.SRMaxRun <= 0 {
		o.SRMaxRun = 3 * time.Minute
	}
	o.evalTimes = map[string]time.Duration{}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if len(o.ORT.Providers) == 0 {
		o.ORT.Providers = []string{"tensorrt", "cuda", "cpu"}
	}
}

// Run performs every check in turn and returns the report; it never returns
// early on a failed check, so the report lists every problem at once. When
// ctx ends, the checks still to run are reported as failed with ctx's error.
func Run(ctx context.Context, o Options) *Report {
	o.setDefaults()
	host, _ := os.Hostname()
	r := &Report{Host: host, Started: o.Now()}
	timed := func(name string, f func() Check) {
		if err := ctx.Err(); err != nil {
			r.add(Check{Name: name, Status: StatusFail, Message: "not run: " + err.Error()})
			return
		}
		t0 := time.Now()
		c := f()
		c.ElapsedMS = round2(ms(time.Since(t0)))
		r.add(c)
	}

	o.runORT(ctx, timed)
	if len(o.Cameras) == 0 {
		timed("cameras", func() Check { return o.checkNoCamera() })
	}
	for _, cam := range o.Cameras {
		timed("camera/"+cam.Name, func() Check { return o.checkCamera(ctx, cam) })
	}
	timed("mqtt", func() Check { return o.checkMQTT(ctx) })
	timed("http", func() Check { return o.checkHTTP(ctx) })
	timed("gallery", func() Check { return o.checkGallery(ctx) })
	timed("disk/state", func() Check { return checkDisk("disk/state", "storage.state_dir", o.StateDir, o.MinFreeBytes) })
	timed("disk/spool", func() Check { return checkDisk("disk/spool", "storage.spool_dir", o.SpoolDir, o.MinFreeBytes) })
	timed("state_dir", func() Check { return checkWritable(o.StateDir) })
	timed("clock", func() Check { return checkClock(o.Now()) })

	r.Fit = len(r.Failed()) == 0
	return r
}
