package metrics_test

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/srdgd/srdgd/publish"
	"github.com/srdgd/srdgd/publish/metrics"
)

// scrape fetches the text exposition over HTTP and parses it.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("scrape: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("the exposition does not parse: %v", err)
	}
	return fams
}

// value returns the value of the series of family name with the labels
// (k=v pairs), or NaN when absent.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := fams[name]
	if f == nil {
		return math.NaN()
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for _, kv := range labels {
			k, v, _ := strings.Cut(kv, "=")
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return math.NaN()
}

func TestExposition(t *testing.T) {
	cams := func() []publish.CameraStatus {
		return []publish.CameraStatus{
			{Camera: "door", State: "connected", Connected: true, FPS: 24.5, BitrateKbps: 2048, Frames: 1000, DecodeErrors: 3, Reconnects: 2, Dropped: 5},
			{Camera: "yard", State: "auth_failed", Frames: 10, AuthFailures: 4},
			{Camera: "yard"}, // a duplicate must not break the scrape
		}
	}
	reg, err := metrics.New(metrics.Options{
		Cameras: cams, Version: "1.2.3",
		MQTT: func() metrics.MQTTStatus {
			return metrics.MQTTStatus{Connected: true, SpoolMessages: 7, SpoolBytes: 7000, Dropped: 1}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	reg.SetViewers(func() map[string]int { return map[string]int{"door": 2} })
	reg.FacesDetected("door", 3)
	reg.FacesDetected("door", 0)
	reg.Probe("door")
	reg.Probe("door")
	reg.ObserveSR("pc", 800*time.Millisecond)
	reg.ObserveSR("pc", 1200*time.Millisecond)
	reg.ObserveSR("ddim", 90*time.Millisecond)
	reg.SRDropped("yard", 4)
	reg.Hit("door", true)
	reg.Hit("door", false)
	reg.Hit("door", false)
	srv := httptest.NewServer(reg.Handler())
	defer srv.Close()
	fams := scrape(t, srv.URL)

	cases := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"srdgd_camera_frames_total", []string{"camera=door"}, 1000},
		{"srdgd_camera_frames_total", []string{"camera=yard"}, 10},
		{"srdgd_camera_decode_errors_total", []string{"camera=door"}, 3},
		{"srdgd_camera_reconnects_total", []string{"camera=door"}, 2},
		{"srdgd_camera_dropped_frames_total", []string{"camera=door"}, 5},
		{"srdgd_camera_fps", []string{"camera=door"}, 24.5},
		{"srdgd_camera_bitrate_kbps", []string{"camera=door"}, 2048},
		{"srdgd_camera_connected", []string{"camera=door"}, 1},
		{"srdgd_camera_connected", []string{"camera=yard"}, 0},
		{"srdgd_camera_auth_failures_total", []string{"camera=door"}, 0},
		{"srdgd_camera_auth_failures_total", []string{"camera=yard"}, 4},
		{"srdgd_camera_state", []string{"camera=door", "state=connected"}, 1},
		{"srdgd_camera_state", []string{"camera=door", "state=auth_failed"}, 0},
		{"srdgd_camera_state", []string{"camera=yard", "state=auth_failed"}, 1},
		{"srdgd_camera_state", []string{"camera=yard", "state=connected"}, 0},
		{"srdgd_camera_state", []string{"camera=yard", "state=failed"}, 0},
		{"srdgd_faces_detected_total", []string{"camera=door"}, 3},
		{"srdgd_probes_total", []string{"camera=door"}, 2},
		{"srdgd_sr_duration_seconds", []string{"sampler=pc"}, 2},
		{"srdgd_sr_duration_seconds", []string{"sampler=ddim"}, 1},
		{"srdgd_sr_queue_dropped_total", []string{"camera=yard"}, 4},
		{"srdgd_matches_total", []string{"camera=door", "result=known"}, 1},
		{"srdgd_matches_total", []string{"camera=door", "result=unknown"}, 2},
		{"srdgd_mqtt_connected", nil, 1},
		{"srdgd_mqtt_spool_messages", nil, 7},
		{"srdgd_mqtt_spool_bytes", nil, 7000},
		{"srdgd_mqtt_spool_dropped_total", nil, 1},
		{"srdgd_webrtc_viewers", []string{"camera=door"}, 2},
		{"srdgd_build_info", []string{"version=1.2.3"}, 1},
		{"go_goroutines", nil, -1},
		{"process_open_fds", nil, -1},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.name, c.labels), func(t *testing.T) {
			got := value(fams, c.name, c.labels...)
			if c.want == -1 {
				if math.IsNaN(got) {
					t.Errorf("no series %s", c.name)
				}
				return
			}
			if got != c.want {
				t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
			}
		})
	}
	// the SR histogram has the documented buckets and the sum in seconds
	h := fams["srdgd_sr_duration_seconds"]
	for _, m := range h.Metric {
		if m.Label[0].GetValue() == "pc" {
			if got := m.Histogram.GetSampleSum(); math.Abs(got-2.0) > 1e-9 {
				t.Errorf("pc SR sum %v s, want 2", got)
			}
			if n := len(m.Histogram.Bucket); n != len(metrics.DefaultSRBuckets)+1 { // and +Inf
				t.Errorf("%d buckets, want %d and +Inf", n, len(metrics.DefaultSRBuckets))
			}
		}
	}
	if h.GetType() != dto.MetricType_HISTOGRAM || fams["srdgd_matches_total"].GetType() != dto.MetricType_COUNTER {
		t.Error("wrong metric types")
	}
}

func TestUnsetSourcesAndBadLabels(t *testing.T) {
	reg, err := metrics.New(metrics.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reg.Hit("bad\xffcamera", true) // dropped, not a panic
	srv := httptest.NewServer(reg.Handler())
	defer srv.Close()
	fams := scrape(t, srv.URL)
	for _, name := range []string{"srdgd_camera_frames_total", "srdgd_mqtt_connected", "srdgd_webrtc_viewers", "srdgd_matches_total"} {
		if fams[name] != nil {
			t.Errorf("%s exported without a source or an observation", name)
		}
	}
}

func TestConcurrentUpdatesAndScrapes(t *testing.T) {
	reg, err := metrics.New(metrics.Options{Cameras: func() []publish.CameraStatus { return []publish.CameraStatus{{Camera: "a"}} }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reg.Handler())
	defer srv.Close()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				reg.Hit("a", i%2 == 0)
				reg.ObserveSR("pc", time.Duration(w+i)*time.Millisecond)
				if i%50 == 0 {
					reg.SetMQTT(func() metrics.MQTTStatus { return metrics.MQTTStatus{SpoolMessages: i} })
				}
			}
		})
	}
	for range 5 {
		scrape(t, srv.URL)
	}
	wg.Wait()
	fams := scrape(t, srv.URL)
	if got := value(fams, "srdgd_matches_total", "result=known") + value(fams, "srdgd_matches_total", "result=unknown"); got != 800 {
		t.Errorf("matches %v, want 800", got)
	}
}
