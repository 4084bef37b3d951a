package app

import (
	"context"
	"slices"
	"time"

	"github.com/srdgd/srdgd/detect"
	"github.com/srdgd/srdgd/ingest"
	"github.com/srdgd/srdgd/match"
	"github.com/srdgd/srdgd/publish"
	"github.com/srdgd/srdgd/publish/metrics"
	"github.com/srdgd/srdgd/publish/mqtt"
	"github.com/srdgd/srdgd/srdg"
)

// CameraStats are one camera's ingest and detect counters.
type CameraStats struct {
	Name   string
	Ingest ingest.Status
	Detect detect.Stats
}

// Stats is one snapshot of every stage's Stats.
type Stats struct {
	Cameras []CameraStats
	SR      srdg.StageStats
	Match   match.StageStats
	Sinks   []publish.SinkStats
	// VisitSinks are the visit fan-out's sinks (none without cameras).
	VisitSinks []publish.SinkStats
	// Gallery is the number of enrolled people (0 without a gallery).
	Gallery  int
	Provider string
}

// collector reads every stage's Stats, and is the one source of both the
// MQTT stats message and the Prometheus pipeline counters.
type collector struct {
	cams     []*ingest.Camera
	dets     []*detect.Pipeline
	sr       *srdg.Stage
	match    *match.Stage
	fan      *publish.Fanout
	visits   *publish.VisitFanout
	gallery  *match.Gallery
	provider string
	// every is how often Run moves the counters into Prometheus.
	every time.Duration
}

// snapshot reads every stage; full also reads the cameras' status (which
// starts a new fps window) and counts the enrolled people (a query).
func (c *collector) snapshot(ctx context.Context, full bool) Stats {
	st := Stats{Provider: c.provider}
	for i, cam := range c.cams {
		cs := CameraStats{Name: cam.Name()}
		if full {
			cs.Ingest = cam.Status()
		}
		if i < len(c.dets) {
			cs.Detect = c.dets[i].Stats()
		}
		st.Cameras = append(st.Cameras, cs)
	}
	if c.sr != nil {
		st.SR = c.sr.Stats()
	}
	if c.match != nil {
		st.Match = c.match.Stats()
	}
	if c.fan != nil {
		st.Sinks = c.fan.Stats()
	}
	if c.visits != nil {
		st.VisitSinks = c.visits.Stats()
	}
	if full && c.gallery != nil {
		if people, err := c.gallery.List(ctx); err == nil {
			st.Gallery = len(people)
		}
	}
	return st
}

// mqttStats are the pipeline's counters for the MQTT stats topic;
// latencies cover the time since the previous call.
func (c *collector) mqttStats() mqtt.Stats {
	s := c.snapshot(context.Background(), true)
	st := mqtt.Stats{SRRuns: s.SR.Faces, Direct: s.SR.Direct, Hits: s.Match.Shots, Known: s.Match.Known, Provider: s.Provider,
		Gallery: s.Gallery, Dropped: map[string]uint64{}}
	st.Unknowns = st.Hits - st.Known
	for _, cs := range s.Cameras {
		st.Frames += cs.Ingest.Frames
		st.Dropped["frames"] += cs.Ingest.Dropped
		st.Faces += cs.Detect.Faces
		st.Tracks += cs.Detect.TracksStarted
		st.Dropped["probes"] += cs.Detect.ProbesDropped
	}
	st.Dropped["sr_faces"] = s.SR.ShotsDropped
	if c.match != nil {
		srLat, matchLat := c.match.TakeLatencies()
		st.SRLatencyMs, st.MatchLatencyMs = summarise(srLat), summarise(matchLat)
	}
	return st
}

func summarise(v []float64) mqtt.Latency {
	if len(v) == 0 {
		return mqtt.Latency{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	var sum float64
	for _, x := range s {
		sum += x
	}
	return mqtt.Latency{Mean: sum / float64(len(s)), P95: s[min(len(s)-1, int(0.95*float64(len(s))))]}
}

// feed moves the detect counters of every snapshot into the Prometheus
// registry (as deltas, so the counters stay monotonic) until ctx ends.
func (c *collector) feed(reg *metrics.Registry) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		type last struct{ faces, probes, dropped uint64 }
		prev := map[string]last{}
		t := time.NewTicker(c.every)
		defer t.Stop()
		for {
			for _, cs := range c.snapshot(ctx, false).Cameras {
				s, p := cs.Detect, prev[cs.Name]
				reg.FacesDetected(cs.Name, int(s.Faces-p.faces))
				for range s.Probes - p.probes {
					reg.Probe(cs.Name)
				}
				reg.SRDropped(cs.Name, int(s.ProbesDropped-p.dropped))
				prev[cs.Name] = last{s.Faces, s.Probes, s.ProbesDropped}
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	}
}
