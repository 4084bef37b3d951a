package mqtt

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/srdgd/srdgd/internal/seal"
	"github.com/srdgd/srdgd/publish"
)

// Options configures a Publisher (and Probe). Zero values take the default
// named on each field.
type Options struct {
	// Broker is the broker URL: tcp://, mqtt:// (default port 1883),
	// ssl://, tls://, mqtts:// (default port 8883), ws:// or wss://.
	// It must not carry credentials. Required.
	Broker string
	// ClientID is the MQTT client id. Default: "srdgd-<hostname>".
	ClientID string
	// Username and Password authenticate to the broker. Default: none.
	// The password is never logged.
	Username string
	Password string
	// TLS is used for ssl://, tls://, mqtts:// and wss://. Default: nil
	// (system roots, server name from the URL).
	TLS *tls.Config
	// QoS of alerts (hit, match, last match): 0, 1 or 2, used when QoSSet
	// is true. Default (QoSSet false): 1. Availability, status and
	// discovery always use QoS 1; stats QoS 0.
	QoS    byte
	QoSSet bool
	// Keepalive is the MQTT keepalive. Default: 30s.
	Keepalive time.Duration
	// ConnectTimeout bounds one connection attempt (dial, TLS, CONNECT)
	// and is also paho's write timeout (handing a packet to the connection
	// and writing it). Default: 10s.
	ConnectTimeout time.Duration
	// TopicPrefix is the first level(s) of every topic; no + or #, no
	// empty level, no leading $. Default: "srdgd".
	TopicPrefix string
	// SpoolDir holds the on-disk spool of undelivered alerts. Required.
	SpoolDir string
	// SpoolMaxMessages bounds the spool in alerts. Default: 10000.
	SpoolMaxMessages int
	// SpoolMaxBytes bounds the spool in bytes. Default: 256 MiB.
	SpoolMaxBytes int64
	// SpoolKey seals every spooled alert (AES-256-GCM, 32 bytes): the
	// gallery key. Default (nil): a random key that lives in memory for
	// this run only; each spooled alert then also keeps a copy without
	// images, names or candidates (the hit message only), which is what
	// is delivered for alerts still spooled when the process restarts.
	SpoolKey []byte
	// SpoolRetention: spooled alerts older than this are dropped, sent or
	// not, and counted (the hit retention). Default: 0, kept until the
	// bound.
	SpoolRetention time.Duration
	// IncludeImage attaches the SR face (JPEG) and the LR probe (PNG) to
	// hits as base64 and publishes the face on <prefix>/<camera>/face.
	IncludeImage bool
	// Hits publishes every hit (the per-shot stream) on
	// <prefix>/<camera>/hit; without it Publish does nothing and only
	// visits (PublishVisit) are published. Default false.
	Hits bool
	// HADiscovery publishes Home Assistant MQTT discovery configs under
	// HAPrefix (default "homeassistant").
	HADiscovery bool
	HAPrefix    string
	// HAPeople (with HADiscovery) adds per-person entities: every visit
	// event that names someone updates the retained
	// <prefix>/people/<person_id>/state, and the person's first sighting
	// since start publishes their discovery configs (last camera, last
	// seen, seen in the last HASeenWindow).
	HAPeople bool
	// HASeenWindow is how long after a sighting the person's "seen" binary
	// sensor stays on. Default: 10m.
	HASeenWindow time.Duration
	// Cameras are the configured camera names (for discovery and for the
	// cameras list in stats).
	Cameras []string
	// Status returns camera health; nil publishes no camera status.
	Status publish.StatusFunc
	// Stats returns pipeline counters for <prefix>/stats; nil publishes
	// only the publisher's own counters.
	Stats func() Stats
	// StatusEvery is the period of status and stats messages. Default: 30s.
	StatusEvery time.Duration
	// StatusPoll is how often Status is polled for a change of a camera's
	// Connected flag (published at once). Default: 1s.
	StatusPoll time.Duration
	// ReconnectMin and ReconnectMax bound the reconnect backoff (doubling
	// with jitter, reset after a connection that lasted a minute).
	// Defaults: 500ms and 30s.
	ReconnectMin time.Duration
	ReconnectMax time.Duration
	// InFlight is how many alerts may await their acknowledgement at once.
	// Default: 16.
	InFlight int
	// Version is the daemon version for stats and discovery.
	Version string
	// Logger receives the publisher's logs. Default: discard.
	Logger *slog.Logger
}

// Stats are the pipeline counters a dashboard wants, supplied by the daemon
// through Options.Stats. Counters are totals since start.
type Stats struct {
	// Frames decoded, faces detected, tracks started, SR runs done.
	Frames uint64 `json:"frames"`
	Faces  uint64 `json:"faces"`
	Tracks uint64 `json:"tracks"`
	SRRuns uint64 `json:"sr_runs"`
	// Direct counts the faces read without SR (srdg.direct_side).
	Direct   uint64 `json:"direct_faces"`
	Hits     uint64 `json:"hits"`
	Known    uint64 `json:"known"`
	Unknowns uint64 `json:"unknowns"`
	// SRLatencyMs is the mean and p95 wall time of one SR run over the last
	// interval; MatchLatencyMs the same for embedding + search.
	SRLatencyMs    Latency `json:"sr_latency_ms"`
	MatchLatencyMs Latency `json:"match_latency_ms"`
	// Dropped counts items dropped by the bounded queues, by stage
	// ("frames", "faces", "sr", ...).
	Dropped map[string]uint64 `json:"dropped"`
	// Provider is the ONNX Runtime execution provider in use.
	Provider string `json:"provider,omitempty"`
	// Gallery is the number of enrolled identities.
	Gallery int `json:"gallery"`
}

// Latency summarises a latency distribution in milliseconds.
type Latency struct {
	Mean float64 `json:"mean"`
	P95  float64 `json:"p95"`
}

// resolved are validated options with defaults applied.
type resolved struct {
	Options
	url        *url.URL // broker URL with default port
	redacted   string   // broker URL for logs and errors
	qos        byte
	haNode     string
	spoolLimit int64
}

// resolve validates o and applies defaults. Errors never contain the
// password.
func (o Options) resolve(needSpool bool) (*resolved, error) {
	r := &resolved{Options: o}
	var errs []error
	u, red, err := parseBroker(o.Broker)
	r.redacted = red
	if err != nil {
		errs = append(errs, err)
	}
	r.url = u
	if r.ClientID == "" {
		host, _ := os.Hostname()
		r.ClientID = "srdgd-" + sanitizeID(host)
	}
	if len(r.ClientID) > 65535 {
		errs = append(errs, errors.New("mqtt: client id longer than 65535 bytes"))
	}
	r.qos = 1
	if o.QoSSet {
		r.qos = o.QoS
	}
	if r.qos > 2 {
		errs = append(errs, fmt.Errorf("mqtt: qos %d: must be 0, 1 or 2", r.qos))
	}
	if r.Keepalive == 0 {
		r.Keepalive = 30 * time.Second
	}
	if r.Keepalive < time.Second || r.Keepalive > 65535*time.Second {
		errs = append(errs, fmt.Errorf("mqtt: keepalive %s: must be 1s to 18h12m15s", r.Keepalive))
	}
	if r.ConnectTimeout <= 0 {
		r.ConnectTimeout = 10 * time.Second
	}
	if r.TopicPrefix == "" {
		r.TopicPrefix = "srdgd"
	}
	if err := checkPrefix(r.TopicPrefix); err != nil {
		errs = append(errs, fmt.Errorf("mqtt: topic prefix %q: %w", r.TopicPrefix, err))
	}
	if r.HASeenWindow <= 0 {
		r.HASeenWindow = 10 * time.Minute
	}
	if r.HAPrefix == "" {
		r.HAPrefix = "homeassistant"
	}
	if err := checkPrefix(r.HAPrefix); err != nil {
		errs = append(errs, fmt.Errorf("mqtt: home assistant prefix %q: %w", r.HAPrefix, err))
	}
	r.haNode = sanitizeID(r.ClientID)
	errs = append(errs, r.spoolErrors(needSpool)...)
	r.timingDefaults()
	if r.Logger == nil {
		r.Logger = slog.New(slog.DiscardHandler)
	}
	seen := map[string]string{}
	for _, c := range r.Cameras {
		seg := cameraSegment(c)
		if prev, ok := seen[seg]; ok {
			errs = append(errs, fmt.Errorf("mqtt: cameras %q and %q map to the same topic level %q", prev, c, seg))
		}
		seen[seg] = c
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// spoolErrors applies the spool's defaults and returns its problems.
func (r *resolved) spoolErrors(needSpool bool) []error {
	var errs []error
	if needSpool && r.SpoolDir == "" {
		errs = append(errs, errors.New("mqtt: spool directory is empty"))
	}
	if r.SpoolMaxMessages == 0 {
		r.SpoolMaxMessages = 10000
	}
	if r.SpoolMaxMessages < 0 {
		errs = append(errs, fmt.Errorf("mqtt: spool max messages %d: must be >= 1", r.SpoolMaxMessages))
	}
	if r.SpoolMaxBytes == 0 {
		r.SpoolMaxBytes = 256 << 20
	}
	if r.SpoolKey != nil && len(r.SpoolKey) != seal.KeySize {
		errs = append(errs, fmt.Errorf("mqtt: spool key of %d bytes, want %d", len(r.SpoolKey), seal.KeySize))
	}
	if r.SpoolRetention < 0 {
		errs = append(errs, fmt.Errorf("mqtt: spool retention %s: must be >= 0", r.SpoolRetention))
	}
	if r.SpoolMaxBytes < 0 {
		errs = append(errs, fmt.Errorf("mqtt: spool max bytes %d: must be >= 1", r.SpoolMaxBytes))
	}
	return errs
}

// timingDefaults applies the defaults of the status and reconnect timing
// and of the in-flight window.
func (r *resolved) timingDefaults() {
	if r.StatusEvery <= 0 {
		r.StatusEvery = 30 * time.Second
	}
	if r.StatusPoll <= 0 {
		r.StatusPoll = time.Second
	}
	if r.ReconnectMin <= 0 {
		r.ReconnectMin = 500 * time.Millisecond
	}
	if r.ReconnectMax <= 0 {
		r.ReconnectMax = 30 * time.Second
	}
	if r.ReconnectMax < r.ReconnectMin {
		r.ReconnectMax = r.ReconnectMin
	}
	if r.InFlight <= 0 {
		r.InFlight = 16
	}
}

// parseBroker checks the broker URL and returns it with the default port
// and a form without credentials for logs.
func parseBroker(raw string) (*url.URL, string, error) {
	if raw == "" {
		return nil, "", errors.New("mqtt: broker URL is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse errors quote the input, which may hold a password.
		return nil, "(unparsable)", errors.New("mqtt: broker URL does not parse")
	}
	red := redactURL(u)
	if u.User != nil {
		return nil, red, fmt.Errorf("mqtt: broker %q: credentials in the URL are not allowed, use the username and password settings", red)
	}
	scheme := strings.ToLower(u.Scheme)
	u.Scheme = scheme
	switch scheme {
	case "tcp", "mqtt":
		defaultPort(u, "1883")
	case "ssl", "tls", "mqtts":
		defaultPort(u, "8883")
	case "ws", "wss":
	default:
		return nil, red, fmt.Errorf("mqtt: broker %q: scheme %q: want tcp, mqtt, ssl, tls, mqtts, ws or wss", red, u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, red, fmt.Errorf("mqtt: broker %q: no host", red)
	}
	return u, redactURL(u), nil
}

func defaultPort(u *url.URL, port string) {
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
}

// redactURL drops user info, query and fragment.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	c.Fragment = ""
	return c.String()
}

// isTLSScheme reports whether the broker URL implies TLS.
func isTLSScheme(scheme string) bool {
	switch scheme {
	case "ssl", "tls", "mqtts", "wss":
		return true
	}
	return false
}
