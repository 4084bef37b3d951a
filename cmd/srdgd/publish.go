package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/srdgd/srdgd/config"
	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/publish/mqtt"

	"github.com/srdgd/srdgd/ingest"
	"github.com/srdgd/srdgd/internal/app"
	"github.com/srdgd/srdgd/match"
	"github.com/srdgd/srdgd/publish"
	"github.com/srdgd/srdgd/publish/history"
	"github.com/srdgd/srdgd/publish/httpapi"
	"github.com/srdgd/srdgd/publish/live"
	"github.com/srdgd/srdgd/publish/metrics"
)

// publishLayer is everything that leaves the box: metrics, the live view,
// MQTT and the HTTP API. Built after the pipeline so its sinks see every hit.
type publishLayer struct {
	metrics *metrics.Registry
	live    *live.Server
	http    *httpapi.Server
	mqtt    *mqtt.Publisher
}

// cameraStatuses snapshots every camera for the API, MQTT and metrics.
func cameraStatuses(cams []*ingest.Camera) publish.StatusFunc {
	return func() []publish.CameraStatus {
		out := make([]publish.CameraStatus, 0, len(cams))
		for _, c := range cams {
			s := c.Status()
			out = append(out, publish.CameraStatus{Camera: s.Camera, State: s.State, Connected: s.Connected, Codec: s.Codec,
				Width: s.Width, Height: s.Height, FPS: s.FPS, BitrateKbps: s.BitrateKbps, Frames: s.Frames,
				DecodeErrors: s.DecodeErrors, Reconnects: s.Reconnects, AuthFailures: s.AuthFailures, Dropped: s.Dropped, LastError: s.LastError,
				LastErrorAt: s.LastErrorAt, ConnectedSince: s.ConnectedSince})
		}
		return out
	}
}

// newPublish builds the publish layer and adds its components and sinks.
func newPublish(d *daemon, sv *services, p *pipeline) (*publishLayer, error) {
	cfg, log := d.cfg, d.log
	pl := &publishLayer{}
	statuses := cameraStatuses(d.cameras)
	reg, err := metrics.New(metrics.Options{Cameras: statuses, Version: buildVersion()})
	if err != nil {
		return nil, err
	}
	pl.metrics = reg
	sinks := []publish.NamedSink{{Name: "metrics", Sink: reg}}
	if p != nil {
		d.components = append(d.components, component{name: "metrics", run: p.feedMetrics(reg)})
	}

	if cfg.Publish.WebRTC.Enabled && len(d.cameras) > 0 {
		srcs := map[string]live.Source{}
		for _, c := range d.cameras {
			srcs[c.Name()] = c
		}
		var ice []live.ICEServer
		for _, s := range cfg.Publish.WebRTC.ICEServers {
			ice = append(ice, live.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential.Reveal()})
		}
		addrs, err := iceAddresses(cfg.Publish.WebRTC, cfg.Publish.HTTP.Listen)
		if err != nil {
			return nil, err
		}
		ls, err := live.New(live.Options{Cameras: srcs, ICEServers: ice, UDPPortMin: cfg.Publish.WebRTC.UDPPortMin,
			UDPPortMax: cfg.Publish.WebRTC.UDPPortMax, TCPListen: cfg.Publish.WebRTC.TCPListen,
			NAT1To1IPs: cfg.Publish.WebRTC.NAT1To1IPs, BasePath: "",
			ICEAddresses: addrs, MulticastDNS: cfg.Publish.WebRTC.MDNS, ConnectTimeout: cfg.Publish.WebRTC.ConnectTimeout,
			// a viewer on the box itself (the demo) has only loopback to reach us
			IncludeLoopback: config.IsLoopbackListen(cfg.Publish.HTTP.Listen), Logger: log})
		if err != nil {
			return nil, fmt.Errorf("publish.webrtc: %w", err)
		}
		pl.live = ls
		d.components = append(d.components, component{name: "live", run: ls.Run})
		sinks = append(sinks, publish.NamedSink{Name: "live", Sink: ls})
		reg.SetViewers(func() map[string]int {
			out := map[string]int{}
			for _, s := range ls.Stats() {
				out[s.Camera] = s.Viewers
			}
			return out
		})
	}

	if cfg.Publish.MQTT.Enabled {
		pub, err := newMQTT(d, sv, p, reg)
		if err != nil {
			return nil, err
		}
		pl.mqtt = pub
		sinks = append(sinks, publish.NamedSink{Name: "mqtt", Sink: pub})
		o := pub
		reg.SetMQTT(func() metrics.MQTTStatus {
			m, b := o.SpoolDepth()
			return metrics.MQTTStatus{Connected: o.Connected(), SpoolMessages: m, SpoolBytes: b, Dropped: o.Dropped()}
		})
	}

	if cfg.Publish.HTTP.Enabled {
		o := httpapi.Options{Listen: cfg.Publish.HTTP.Listen, Token: cfg.Publish.HTTP.Token.Reveal(),
			TLSCertFile: cfg.Publish.HTTP.TLSCertFile, TLSKeyFile: cfg.Publish.HTTP.TLSKeyFile,
			MaxBodyBytes: cfg.Publish.HTTP.MaxBodyBytes, Cameras: statuses, Metrics: reg.Handler(), Logger: log,
			Version: httpapi.VersionInfo{Version: buildVersion()},
			Health:  func(context.Context) error { return d.health.check() },
			Schemas: mqtt.Schemas()}
		if p != nil {
			o.Version.Models = p.models
		}
		if sv.history != nil {
			ha := historyAPI{sv.history}
			o.Hits, o.Auditor = ha, ha
		}
		if sv.gallery != nil {
			if o.Auditor == nil {
				return nil, errors.New("publish.http: the gallery API needs the audit log (history), which could not be opened")
			}
			o.Gallery = app.NewGalleryAPI(sv.gallery)
		}
		if pl.live != nil {
			o.Live = pl.live.Handler()
			o.Viewable = func() []string {
				var out []string
				for _, c := range pl.live.Cameras() {
					if c.Viewable {
						out = append(out, c.Name)
					}
				}
				return out
			}
		}
		hs, err := httpapi.New(o)
		if err != nil {
			return nil, fmt.Errorf("publish.http: %w", err)
		}
		pl.http = hs
		d.components = append(d.components, component{name: "http", run: hs.Run})
	}
	// every hit goes to every sink through its own queue (history first)
	fan, err := publish.NewFanout(publish.FanoutOptions{Sinks: append(sv.sinks, sinks...), Logger: log})
	if err != nil {
		return nil, err
	}
	d.components = append(d.components, component{name: "publish", run: fan.Run})
	if p != nil {
		var visits []visitSink
		if pl.mqtt != nil {
			visits = append(visits, pl.mqtt)
		}
		if err := p.addMatch(d, fan, visits); err != nil {
			return nil, err
		}
	}
	return pl, nil
}

// iceAddresses is where the live view's ICE may bind: publish.webrtc.
// ice_addresses, else the addresses publish.http.listen binds, so that a
// daemon serving HTTP on loopback does not open UDP ports on the LAN (nil:
// every interface, for 0.0.0.0, :: or an empty host).
func iceAddresses(w config.WebRTC, httpListen string) ([]string, error) {
	if len(w.ICEAddresses) > 0 {
		return w.ICEAddresses, nil
	}
	host, _, err := net.SplitHostPort(httpListen)
	if err != nil {
		return nil, fmt.Errorf("publish.http.listen %q: %w", httpListen, err)
	}
	if host == "" {
		return nil, nil
	}
	if host == "localhost" {
		return []string{"127.0.0.1", "::1"}, nil
	}
	if ip := net.ParseIP(host); ip != nil {
		if ip.IsUnspecified() {
			return nil, nil
		}
		return []string{ip.String()}, nil
	}
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return nil, fmt.Errorf("publish.webrtc: the ICE addresses default to those of publish.http.listen %q, which does not resolve (%v): set publish.webrtc.ice_addresses", httpListen, err)
	}
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out, nil
}

// historyAPI adapts the history store to the HTTP API.
type historyAPI struct{ s *history.Store }

func (h historyAPI) ListHits(ctx context.Context, q httpapi.HitQuery) ([]*face.Hit, error) {
	return h.s.List(ctx, history.Query{Camera: q.Camera, Person: q.Person, Known: q.Known, Before: q.Before, Since: q.Since, Limit: q.Limit})
}

func (h historyAPI) GetHit(ctx context.Context, id string) (*face.Hit, error) {
	hit, err := h.s.Get(ctx, id)
	if errors.Is(err, history.ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", httpapi.ErrNotFound, err)
	}
	return hit, err
}

func (h historyAPI) Audit(ctx context.Context, r httpapi.AuditRecord) error {
	return h.s.Audit(ctx, history.AuditEntry{Time: r.Time, Actor: "api:" + r.Actor, Action: r.Action, Target: r.Target, Detail: r.Detail, Remote: r.Remote})
}

func (h historyAPI) AuditLog(ctx context.Context, after int64, limit int) ([]httpapi.AuditRecord, error) {
	es, err := h.s.AuditLog(ctx, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]httpapi.AuditRecord, len(es))
	for i, e := range es {
		out[i] = httpapi.AuditRecord{Seq: e.Seq, Time: e.Time, Actor: e.Actor, Action: e.Action, Target: e.Target, Detail: e.Detail, Remote: e.Remote}
	}
	return out, nil
}

// newMQTT starts the embedded broker when no external one is configured and
// builds the alert publisher with its on-disk spool.
func newMQTT(d *daemon, sv *services, p *pipeline, reg *metrics.Registry) (*mqtt.Publisher, error) {
	cfg, log := d.cfg, d.log
	m := cfg.Publish.MQTT
	broker := m.Broker
	if broker == "" {
		b, err := mqtt.NewBroker(mqtt.BrokerOptions{Listen: m.EmbeddedListen, Username: m.Username,
			Password: m.Password.Reveal(), Logger: log})
		if err != nil {
			return nil, fmt.Errorf("publish.mqtt.embedded_listen: %w", err)
		}
		d.components = append(d.components, component{name: "mqtt-broker", run: b.Run})
		broker = "tcp://" + b.Addr()
		log.Info("embedded MQTT broker", "addr", b.Addr(), "auth", m.Username != "")
	}
	tc, err := mqtt.ClientTLS(mqtt.TLSFiles{CAFile: m.TLS.CAFile, CertFile: m.TLS.CertFile, KeyFile: m.TLS.KeyFile,
		InsecureSkipVerify: m.TLS.InsecureSkipVerify})
	if err != nil {
		return nil, fmt.Errorf("publish.mqtt.tls: %w", err)
	}
	var names []string
	for _, c := range d.cameras {
		names = append(names, c.Name())
	}
	// The spool holds faces: sealed with the gallery key like the history,
	// kept no longer than the hit retention. Without a key (none created
	// yet, or match.encrypt off) the publisher seals with a key that dies
	// with the process and says so.
	var key []byte
	if cfg.Match.Encrypt && sv.gallery != nil {
		if key, err = match.LoadKey(cfg.Match.KeyFile); err != nil {
			return nil, fmt.Errorf("publish.mqtt: spool key: %w", err)
		}
	}
	o := mqtt.Options{Broker: broker, ClientID: m.ClientID, Username: m.Username, Password: m.Password.Reveal(),
		TLS: tc, QoS: byte(m.QoS), QoSSet: true, Keepalive: m.Keepalive, TopicPrefix: m.TopicPrefix,
		SpoolDir: cfg.Paths().Spool, SpoolMaxMessages: m.SpoolMaxMessages, SpoolMaxBytes: m.SpoolMaxBytes,
		SpoolKey: key, SpoolRetention: cfg.Storage.HitRetention,
		IncludeImage: m.IncludeImage, Hits: m.Hits, HADiscovery: m.HADiscovery.Enabled, HAPrefix: m.HADiscovery.Prefix,
		Cameras: names, Status: cameraStatuses(d.cameras), Version: buildVersion(), Logger: log}
	if p != nil {
		o.Stats = p.stats
	}
	pub, err := mqtt.New(o)
	if err != nil {
		return nil, fmt.Errorf("publish.mqtt: %w", err)
	}
	d.components = append(d.components, component{name: "mqtt", run: pub.Run})
	d.onStop = append(d.onStop, func() { pub.Close() })
	return pub, nil
}

// feedMetrics moves the detect pipelines' counters into the registry every
// two seconds (as deltas, so the counters stay monotonic).
func (p *pipeline) feedMetrics(reg *metrics.Registry) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		type last struct{ faces, probes, dropped uint64 }
		prev := make([]last, len(p.dets))
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			for i, dp := range p.dets {
				s, cam := dp.Stats(), p.cams[i].Name()
				reg.FacesDetected(cam, int(s.Faces-prev[i].faces))
				for range s.Probes - prev[i].probes {
					reg.Probe(cam)
				}
				reg.SRDropped(cam, int(s.ProbesDropped-prev[i].dropped))
				prev[i] = last{s.Faces, s.Probes, s.ProbesDropped}
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	}
}
