// Package metrics is the daemon's Prometheus metrics on a private registry:
// counters and histograms the pipeline updates as it works (faces, probes,
// SR latency, queue drops, matches) and values read when Prometheus scrapes
// (camera status, the MQTT spool, WebRTC viewers), so that nothing is
// copied on the hot path that the owner already counts.
package metrics

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/publish"
)

// MQTTStatus is the MQTT publisher's state at scrape time.
type MQTTStatus struct {
	Connected bool
	// SpoolMessages and SpoolBytes are the alerts waiting on disk for the
	// broker; Dropped counts alerts the full spool had to drop (since start).
	SpoolMessages int
	SpoolBytes    int64
	Dropped       uint64
}

// Options configure New. The funcs are called at scrape time, concurrently
// with the pipeline; nil ones export nothing.
type Options struct {
	// Cameras gives the per-camera series (frames, decode errors,
	// reconnects, auth failures, dropped frames, fps, bitrate, connected,
	// state).
	Cameras publish.StatusFunc
	// MQTT gives the srdgd_mqtt_* series.
	MQTT func() MQTTStatus
	// Viewers gives the WebRTC viewers per camera.
	Viewers func() map[string]int
	// Version is exported as srdgd_build_info{version=...}.
	Version string
	// SRBuckets are the SR latency histogram's upper bounds in seconds.
	// Default: 0.025 s to 80 s, about doubling.
	SRBuckets []float64
}

// DefaultSRBuckets span a GPU's tens of milliseconds to a small CPU's
// minute per face.
var DefaultSRBuckets = []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80}

// Registry holds the daemon's metrics. Its methods are safe for concurrent
// use and never block on a scrape.
type Registry struct {
	reg     *prometheus.Registry
	faces   *prometheus.CounterVec
	probes  *prometheus.CounterVec
	sr      *prometheus.HistogramVec
	srDrops *prometheus.CounterVec
	matches *prometheus.CounterVec
	pulled  *pulled
}

// New builds the registry with the Go runtime and process collectors.
func New(o Options) (*Registry, error) {
	if o.SRBuckets == nil {
		o.SRBuckets = DefaultSRBuckets
	}
	r := &Registry{
		reg: prometheus.NewRegistry(),
		faces: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "srdgd_faces_detected_total", Help: "Faces the detector found, per camera.",
		}, []string{"camera"}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "srdgd_probes_total", Help: "LR probes (best shots that passed the quality gates) sent to super-resolution, per camera.",
		}, []string{"camera"}),
		sr: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "srdgd_sr_duration_seconds", Help: "Time to super-resolve one face, per sampler.", Buckets: o.SRBuckets,
		}, []string{"sampler"}),
		srDrops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "srdgd_sr_queue_dropped_total", Help: "Probes dropped because the SR queue was full, per camera.",
		}, []string{"camera"}),
		matches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "srdgd_matches_total", Help: "Super-resolved faces matched against the gallery, per camera and result (known, unknown).",
		}, []string{"camera", "result"}),
		pulled: &pulled{o: o},
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "srdgd_build_info", Help: "Always 1; the labels say which build runs.",
	}, []string{"version", "goversion"})
	g, err := build.GetMetricWithLabelValues(o.Version, runtime.Version())
	if err != nil {
		return nil, fmt.Errorf("metrics: version %q: %w", o.Version, err)
	}
	g.Set(1)
	for _, c := range []prometheus.Collector{
		r.faces, r.probes, r.sr, r.srDrops, r.matches, build, r.pulled,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := r.reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return r, nil
}

// FacesDetected counts n faces found in one frame of camera.
func (r *Registry) FacesDetected(camera string, n int) {
	if n > 0 {
		if c, err := r.faces.GetMetricWithLabelValues(camera); err == nil {
			c.Add(float64(n))
		}
	}
}

// Probe counts one probe of camera sent to SR.
func (r *Registry) Probe(camera string) {
	if c, err := r.probes.GetMetricWithLabelValues(camera); err == nil {
		c.Inc()
	}
}

// ObserveSR records the time one face took with sampler.
func (r *Registry) ObserveSR(sampler string, d time.Duration) {
	if h, err := r.sr.GetMetricWithLabelValues(sampler); err == nil {
		h.Observe(d.Seconds())
	}
}

// SRDropped counts n probes of camera dropped by the full SR queue.
func (r *Registry) SRDropped(camera string, n int) {
	if n > 0 {
		if c, err := r.srDrops.GetMetricWithLabelValues(camera); err == nil {
			c.Add(float64(n))
		}
	}
}

// Hit counts one matched face of camera.
func (r *Registry) Hit(camera string, known bool) {
	res := "unknown"
	if known {
		res = "known"
	}
	if c, err := r.matches.GetMetricWithLabelValues(camera, res); err == nil {
		c.Inc()
	}
}

// Publish implements publish.Sink: it counts the hit (per camera, known or
// not) and observes its SR latency.
func (r *Registry) Publish(_ context.Context, h *face.Hit) error {
	r.Hit(h.Camera, h.Match.Known)
	r.ObserveSR(h.SR.Sampler, time.Duration(h.SR.Millis*float64(time.Millisecond)))
	return nil
}

var _ publish.Sink = (*Registry)(nil)

// SetCameras, SetMQTT and SetViewers replace the scrape-time sources, for
// components built after the registry.
func (r *Registry) SetCameras(f publish.StatusFunc) { r.pulled.set(func(o *Options) { o.Cameras = f }) }

// SetMQTT: see SetCameras.
func (r *Registry) SetMQTT(f func() MQTTStatus) { r.pulled.set(func(o *Options) { o.MQTT = f }) }

// SetViewers: see SetCameras.
func (r *Registry) SetViewers(f func() map[string]int) {
	r.pulled.set(func(o *Options) { o.Viewers = f })
}

// Gatherer is the registry, for tests and other exporters.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// Handler serves the exposition (text or protobuf, as negotiated).
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{Registry: r.reg, ErrorHandling: promhttp.ContinueOnError})
}

// pulled collects the scrape-time values.
type pulled struct {
	mu sync.Mutex
	o  Options
}

func (p *pulled) set(f func(*Options)) {
	p.mu.Lock()
	f(&p.o)
	p.mu.Unlock()
}

var (
	descFrames       = prometheus.NewDesc("srdgd_camera_frames_total", "Frames decoded, per camera.", []string{"camera"}, nil)
	descDecodeErrors = prometheus.NewDesc("srdgd_camera_decode_errors_total", "Frames the decoder rejected, per camera.", []string{"camera"}, nil)
	descReconnects   = prometheus.NewDesc("srdgd_camera_reconnects_total", "RTSP reconnections, per camera.", []string{"camera"}, nil)
	descDropped      = prometheus.NewDesc("srdgd_camera_dropped_frames_total", "Frames dropped by a full detection queue, per camera.", []string{"camera"}, nil)
	descFPS          = prometheus.NewDesc("srdgd_camera_fps", "Decoded frames per second, per camera.", []string{"camera"}, nil)
	descBitrate      = prometheus.NewDesc("srdgd_camera_bitrate_kbps", "Received video bitrate in kbit/s, per camera.", []string{"camera"}, nil)
	descConnected    = prometheus.NewDesc("srdgd_camera_connected", "1 while the camera's stream is up, per camera.", []string{"camera"}, nil)
	descState        = prometheus.NewDesc("srdgd_camera_state", "1 for the camera's current state, 0 for the others (connecting, connected, backoff, auth_failed, failed, stopped), per camera.", []string{"camera", "state"}, nil)
	descAuthFailures = prometheus.NewDesc("srdgd_camera_auth_failures_total", "Connection attempts the camera answered with rejected credentials, per camera.", []string{"camera"}, nil)
	descMQTTUp       = prometheus.NewDesc("srdgd_mqtt_connected", "1 while the MQTT broker is connected.", nil, nil)
	descSpoolMsgs    = prometheus.NewDesc("srdgd_mqtt_spool_messages", "Alerts spooled on disk while the broker is away.", nil, nil)
	descSpoolBytes   = prometheus.NewDesc("srdgd_mqtt_spool_bytes", "Bytes of spooled alerts.", nil, nil)
	descSpoolDrops   = prometheus.NewDesc("srdgd_mqtt_spool_dropped_total", "Alerts dropped because the spool was full.", nil, nil)
	descViewers      = prometheus.NewDesc("srdgd_webrtc_viewers", "WebRTC live view sessions, per camera.", []string{"camera"}, nil)
)

// Describe implements prometheus.Collector.
func (p *pulled) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descFrames, descDecodeErrors, descReconnects, descDropped, descFPS, descBitrate,
		descConnected, descState, descAuthFailures, descMQTTUp, descSpoolMsgs, descSpoolBytes, descSpoolDrops, descViewers} {
		ch <- d
	}
}

// constMetric is prometheus.MustNewConstMetric without the panic: a label
// value that is not valid UTF-8 becomes an error the scrape reports.
func constMetric(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) prometheus.Metric {
	m, err := prometheus.NewConstMetric(d, t, v, labels...)
	if err != nil {
		return prometheus.NewInvalidMetric(d, err)
	}
	return m
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Collect implements prometheus.Collector.
func (p *pulled) Collect(ch chan<- prometheus.Metric) {
	p.mu.Lock()
	o := p.o
	p.mu.Unlock()
	if o.Cameras != nil {
		seen := map[string]bool{}
		for _, c := range o.Cameras() {
			if seen[c.Camera] {
				continue // a duplicate series would fail the whole scrape
			}
			seen[c.Camera] = true
			ch <- constMetric(descFrames, prometheus.CounterValue, float64(c.Frames), c.Camera)
			ch <- constMetric(descDecodeErrors, prometheus.CounterValue, float64(c.DecodeErrors), c.Camera)
			ch <- constMetric(descReconnects, prometheus.CounterValue, float64(c.Reconnects), c.Camera)
			ch <- constMetric(descDropped, prometheus.CounterValue, float64(c.Dropped), c.Camera)
			ch <- constMetric(descFPS, prometheus.GaugeValue, c.FPS, c.Camera)
			ch <- constMetric(descBitrate, prometheus.GaugeValue, c.BitrateKbps, c.Camera)
			ch <- constMetric(descConnected, prometheus.GaugeValue, b2f(c.Connected), c.Camera)
			ch <- constMetric(descAuthFailures, prometheus.CounterValue, float64(c.AuthFailures), c.Camera)
			for _, st := range publish.CameraStates {
				ch <- constMetric(descState, prometheus.GaugeValue, b2f(c.State == st), c.Camera, st)
			}
			if c.State != "" && !slices.Contains(publish.CameraStates, c.State) {
				ch <- constMetric(descState, prometheus.GaugeValue, 1, c.Camera, c.State)
			}
		}
	}
	if o.MQTT != nil {
		m := o.MQTT()
		ch <- constMetric(descMQTTUp, prometheus.GaugeValue, b2f(m.Connected))
		ch <- constMetric(descSpoolMsgs, prometheus.GaugeValue, float64(m.SpoolMessages))
		ch <- constMetric(descSpoolBytes, prometheus.GaugeValue, float64(m.SpoolBytes))
		ch <- constMetric(descSpoolDrops, prometheus.CounterValue, float64(m.Dropped))
	}
	if o.Viewers != nil {
		for cam, n := range o.Viewers() {
			ch <- constMetric(descViewers, prometheus.GaugeValue, float64(n), cam)
		}
	}
}
