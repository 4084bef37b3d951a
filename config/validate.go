package config

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Allowed values of the enumerated keys.
var (
	logLevels       = []string{"debug", "info", "warn", "error"}
	logFormats      = []string{"text", "json"}
	transports      = []string{"auto", "tcp", "udp"}
	detectors       = []string{"blazeface", "haar"}
	attributeNames  = []string{"male", "glasses", "no_beard"}
	policies        = []string{"predict", "operator", "off"}
	providers       = []string{"tensorrt", "cuda", "cpu"}
	brokerSchemes   = []string{"tcp", "ssl", "tls", "mqtt", "mqtts", "ws", "wss"}
	tlsBrokerScheme = []string{"ssl", "tls", "mqtts", "wss"}
	iceSchemes      = []string{"stun", "stuns", "turn", "turns"}
)

// checker runs the validation rules; report locates and records a problem.
type checker struct {
	report func(path, value, msg string)
}

func validate(c *Config, report func(path, value, msg string)) {
	v := checker{report: report}
	if c.Version != Version {
		v.report("version", strconv.Itoa(c.Version), fmt.Sprintf("%d is not supported (supported: %d)", c.Version, Version))
	}
	v.enum("log.level", c.Log.Level, logLevels)
	v.enum("log.format", c.Log.Format, logFormats)
	v.positive("daemon.shutdown_timeout", c.Daemon.ShutdownTimeout)
	v.storage(&c.Storage)
	v.cameras(c)
	v.detect(&c.Detect)
	v.srdg(&c.SRDG)
	v.match(&c.Match)
	v.mqtt(&c.Publish.MQTT)
	v.http(&c.Publish.HTTP)
	v.webrtc(&c.Publish.WebRTC)
}

func (v checker) storage(s *Storage) {
	v.required("storage.state_dir", s.StateDir)
	if s.HitRetention < 0 {
		v.report("storage.hit_retention", s.HitRetention.String(), fmt.Sprintf("%s is out of range (allowed: >= 0; 0 keeps hits forever)", s.HitRetention))
	}
	v.intRange("storage.min_free_bytes", s.MinFreeBytes, 0, math.MaxInt64)
}

func (v checker) cameras(c *Config) {
	first := map[string]int{}
	for i := range c.Cameras {
		cam := &c.Cameras[i]
		p := fmt.Sprintf("cameras[%d]", i)
		switch {
		case cam.Name == "":
			v.report(p+".name", "", "is required (1-32 characters from a-z, 0-9, _ and -)")
		case !validCameraName(cam.Name):
			v.report(p+".name", cam.Name, fmt.Sprintf("%s is not allowed (allowed: 1-32 characters from a-z, 0-9, _ and -, as it becomes an MQTT topic level)", quote(cam.Name)))
		default:
			if j, dup := first[cam.Name]; dup {
				v.report(p+".name", cam.Name, fmt.Sprintf("%s is already used by cameras[%d]; names must be unique", quote(cam.Name), j))
			} else {
				first[cam.Name] = i
			}
		}
		v.camera(c, cam, p)
	}
}

func validCameraName(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func (v checker) camera(c *Config, cam *Camera, p string) {
	rtsps := v.cameraURL(p, cam.URL)
	if cam.PasswordEnv != "" || cam.PasswordFile != "" {
		if cam.Username == "" {
			v.report(p+".username", "", "is required when a password is set")
		}
	}
	v.enum(p+".transport", cam.Transport, transports)
	if !rtsps && cam.URL != "" {
		if cam.TLSInsecure {
			v.report(p+".tls_insecure", "true", "applies only to rtsps:// URLs")
		}
		if cam.TLSFingerprint != "" {
			v.report(p+".tls_fingerprint", cam.TLSFingerprint, "applies only to rtsps:// URLs")
		}
	}
	if cam.TLSInsecure && cam.TLSFingerprint != "" {
		v.report(p+".tls_insecure", "true", "set tls_insecure or tls_fingerprint, not both (a pinned fingerprint is the safer choice)")
	}
	if f := cam.TLSFingerprint; f != "" && !isHex(f, 64) {
		v.report(p+".tls_fingerprint", f, fmt.Sprintf("%s is not a SHA-256 fingerprint (allowed: 64 hex digits)", quote(f)))
	}
	for j, r := range cam.ROI {
		rp := fmt.Sprintf("%s.roi[%d]", p, j)
		okX := v.floatRange(rp+".x", r.X, 0, 1, false, true)
		okY := v.floatRange(rp+".y", r.Y, 0, 1, false, true)
		okW := v.floatRange(rp+".w", r.W, 0, 1, true, false)
		okH := v.floatRange(rp+".h", r.H, 0, 1, true, false)
		const slack = 1e-9 // 0.1+0.9 is not exactly 1 in floating point
		if okX && okW && r.X+r.W > 1+slack {
			v.report(rp, "", fmt.Sprintf("x+w = %s exceeds 1 (the right edge of the frame)", fmtFloat(r.X+r.W)))
		}
		if okY && okH && r.Y+r.H > 1+slack {
			v.report(rp, "", fmt.Sprintf("y+h = %s exceeds 1 (the bottom edge of the frame)", fmtFloat(r.Y+r.H)))
		}
	}
	if v.intRange(p+".face_min_px", int64(cam.FaceMinPx), 1, 4096) && cam.FaceMaxPx <= cam.FaceMinPx {
		v.report(p+".face_max_px", strconv.Itoa(cam.FaceMaxPx), fmt.Sprintf("%d must exceed face_min_px (%d)", cam.FaceMaxPx, cam.FaceMinPx))
	}
	v.floatRange(p+".detect_fps", cam.DetectFPS, 0, 60, true, false)
	v.floatRange(p+".threshold_offset", cam.ThresholdOffset, -0.3, 0.3, false, false)
	v.floatRange(p+".margin_offset", cam.MarginOffset, -0.3, 0.3, false, false)
	b := cam.Reconnect
	if v.positive(p+".reconnect.initial", b.Initial) && b.Max < b.Initial {
		v.report(p+".reconnect.max", b.Max.String(), fmt.Sprintf("%s is out of range (allowed: >= reconnect.initial, %s)", b.Max, b.Initial))
	}
	v.positive(p+".reconnect.reset_after", b.ResetAfter)
	if v.positive(p+".reconnect.auth_retry", b.AuthRetry) && b.AuthRetryMax < b.AuthRetry {
		v.report(p+".reconnect.auth_retry_max", b.AuthRetryMax.String(), fmt.Sprintf("%s is out of range (allowed: >= reconnect.auth_retry, %s)", b.AuthRetryMax, b.AuthRetry))
	}
	if len(cam.Attributes) > 0 && c.SRDG.Attributes.Policy == "off" {
		v.report(p+".attributes", "", "set, but srdg.attributes.policy is off; remove them or pick predict or operator")
	}
	for _, k := range sortedKeys(cam.Attributes) {
		ap := p + ".attributes." + k
		if !slices.Contains(attributeNames, k) {
			v.report(ap, k, fmt.Sprintf("%s is not an attribute (allowed: %s)", quote(k), strings.Join(attributeNames, ", ")))
			continue
		}
		if val := cam.Attributes[k]; val != 0 && val != 1 {
			v.report(ap, strconv.Itoa(val), fmt.Sprintf("%d is not allowed (allowed: 0, 1)", val))
		}
	}
}

// cameraURL checks a camera URL and reports whether it is rtsps://.
func (v checker) cameraURL(p, raw string) bool {
	p += ".url"
	if raw == "" {
		v.report(p, "", "is required (an rtsp:// or rtsps:// URL)")
		return false
	}
	safe := RedactURL(raw)
	if safe != raw {
		base := parentPath(p)
		v.report(p, safe, fmt.Sprintf("credentials are not allowed in the URL; put the user name in %s.username and the password in an environment variable named by %s.password_env or a file named by %s.password_file", base, base, base))
	}
	u, err := url.Parse(safe)
	if err != nil {
		v.report(p, safe, fmt.Sprintf("%s is not a valid URL: %v", quote(safe), urlErr(err)))
		return false
	}
	if u.Scheme != "rtsp" && u.Scheme != "rtsps" {
		v.report(p, safe, fmt.Sprintf("%s has scheme %s (allowed: rtsp, rtsps)", quote(safe), quote(u.Scheme)))
		return false
	}
	if u.Hostname() == "" {
		v.report(p, safe, fmt.Sprintf("%s has no host", quote(safe)))
	}
	v.urlPort(p, safe, u)
	return u.Scheme == "rtsps"
}

// urlPort checks the port of a URL, if it has one, is 1 to 65535.
func (v checker) urlPort(path, safe string, u *url.URL) {
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			v.report(path, safe, fmt.Sprintf("%s has port %s (allowed: 1 to 65535)", quote(safe), port))
		}
	}
}

// urlErr drops the URL that url.Parse repeats in its errors; the caller
// already shows the redacted URL.
func urlErr(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

func (v checker) detect(d *Detect) {
	v.enum("detect.detector", d.Detector, detectors)
	if d.Detector == "haar" && d.HaarCascade == "" {
		v.report("detect.haar_cascade", "", "is required when detect.detector is haar")
	}
	v.floatRange("detect.min_score", d.MinScore, 0, 1, false, false)
	v.intRange("detect.tile_size", int64(d.TileSize), 32, 4096)
	v.floatRange("detect.upscale", d.Upscale, 1, 8, false, false)
	v.positive("detect.frame_budget", d.FrameBudget)
	v.positive("detect.track_timeout", d.TrackTimeout)
	v.floatRange("detect.iou_threshold", d.IOUThreshold, 0, 1, true, false)
	v.floatRange("detect.track.max_speed", d.Track.MaxSpeed, 0, 1000, true, false)
	v.floatRange("detect.track.speed_uncertainty", d.Track.SpeedUncertainty, 0, 1000, true, false)
	v.floatRange("detect.track.min_appearance", d.Track.MinAppearance, 0, 1, true, false)
	v.floatRange("detect.quality.min_sharpness", d.Quality.MinSharpness, 0, math.MaxFloat64, false, false)
	v.floatRange("detect.quality.min_frontalness", d.Quality.MinFrontalness, 0, 1, false, false)
	v.intRange("detect.quality.min_face_px", int64(d.Quality.MinFacePx), 1, 4096)
	v.intRange("detect.queue_size", int64(d.QueueSize), 1, 1024)
	v.enum("detect.queue_policy", d.QueuePolicy, []string{"fair", "fifo"})
}

func (v checker) srdg(s *SRDG) {
	if s.Scale != 8 && s.Scale != 16 {
		v.report("srdg.scale", strconv.Itoa(s.Scale), fmt.Sprintf("%d is not allowed (allowed: 8, 16)", s.Scale))
	}
	v.enum("srdg.sampler", s.Sampler, Samplers)
	if v.intRange("srdg.steps", int64(s.Steps), 0, 10000) && s.Sampler == "fast" && s.Steps > 0 && s.Steps < 8 {
		v.report("srdg.steps", strconv.Itoa(s.Steps), "the fast sampler needs at least 8 steps (fewer leave visible noise); use sampler ode for fewer")
	}
	v.floatRange("srdg.guidance_weight", s.GuidanceWeight, 0, math.MaxFloat64, false, false)
	v.intRange("srdg.corrector_steps", int64(s.CorrectorSteps), -1, 100)
	v.floatRange("srdg.snr", s.SNR, 0, math.MaxFloat64, true, false)
	v.floatRange("srdg.eps", s.Eps, 0, 1, true, true)
	v.enum("srdg.attributes.policy", s.Attributes.Policy, policies)
	v.floatRange("srdg.attributes.abstain_threshold", s.Attributes.AbstainThreshold, 0.5, 1, true, false)
	if len(s.Providers) == 0 {
		v.report("srdg.providers", "", fmt.Sprintf("must list at least one provider (allowed: %s)", strings.Join(providers, ", ")))
	}
	seen := map[string]bool{}
	for i, p := range s.Providers {
		pp := fmt.Sprintf("srdg.providers[%d]", i)
		if v.enum(pp, p, providers) && seen[p] {
			v.report(pp, p, fmt.Sprintf("%s is listed twice", quote(p)))
		}
		seen[p] = true
	}
	v.intRange("srdg.intra_threads", int64(s.IntraThreads), 0, 1024)
	v.intRange("srdg.inter_threads", int64(s.InterThreads), 0, 1024)
	v.intRange("srdg.batch_size", int64(s.BatchSize), 1, 64)
	if s.DirectSide != 0 && s.DirectSide < MinDirectSide {
		v.report("srdg.direct_side", strconv.Itoa(s.DirectSide), fmt.Sprintf("%d is neither 0 (off) nor at least %d (smaller squares have no direct calibration)", s.DirectSide, MinDirectSide))
	} else {
		v.intRange("srdg.direct_side", int64(s.DirectSide), 0, 8192)
	}
	v.positive("srdg.latency_budget", s.LatencyBudget)
}

func (v checker) match(m *Match) {
	if m.Encrypt && m.KeyFile == "" {
		v.report("match.key_file", "", "is required when match.encrypt is true")
	}
	v.floatRange("match.threshold", m.Threshold, -1, 1, false, false)
	v.floatRange("match.margin", m.Margin, 0, 2, false, false)
	v.intRange("match.top_k", int64(m.TopK), 1, 100)
	v.floatRange("match.verify_threshold", m.VerifyThreshold, -1, 1, false, false)
	for _, sc := range []struct {
		key string
		t   SRThreshold
	}{{"match.sr.x8", m.SR.X8}, {"match.sr.x16", m.SR.X16}} {
		v.floatRange(sc.key+".threshold", sc.t.Threshold, -1, 1, false, false)
		v.floatRange(sc.key+".margin", sc.t.Margin, 0, 2, false, false)
	}
	vi := m.Visit
	v.intRange("match.visit.max_shots", int64(vi.MaxShots), 1, 64)
	v.intRange("match.visit.samples", int64(vi.Samples), 1, 8) // srdg.MaxSamples
	if vi.MinInterval < 0 {
		v.report("match.visit.min_interval", vi.MinInterval.String(), vi.MinInterval.String()+" is out of range (allowed: >= 0)")
	}
	if vi.Cooldown < 0 {
		v.report("match.visit.cooldown", vi.Cooldown.String(), vi.Cooldown.String()+" is out of range (allowed: >= 0)")
	}
	v.positive("match.visit.timeout", vi.Timeout)
	v.intRange("match.visit.max_open", int64(vi.MaxOpen), 1, 10000)
	v.floatRange("match.visit.min_confidence_change", vi.MinConfidenceChange, 0, 1, true, false)
	v.floatRange("match.visit.duplicate", vi.Duplicate, 0, 1, true, false)
	v.floatRange("match.feedback.negative_margin", m.Feedback.NegativeMargin, 0, 0.2, false, false)
}

func (v checker) mqtt(m *MQTT) {
	const p = "publish.mqtt"
	scheme := ""
	if m.Broker != "" {
		safe := RedactURL(m.Broker)
		if safe != m.Broker {
			v.report(p+".broker", safe, "credentials are not allowed in the URL; put the user name in publish.mqtt.username and the password in an environment variable named by publish.mqtt.password_env or a file named by publish.mqtt.password_file")
		}
		u, err := url.Parse(safe)
		switch {
		case err != nil:
			v.report(p+".broker", safe, fmt.Sprintf("%s is not a valid URL: %v", quote(safe), urlErr(err)))
		case !slices.Contains(brokerSchemes, u.Scheme):
			v.report(p+".broker", safe, fmt.Sprintf("%s has scheme %s (allowed: %s; or empty for the embedded broker)", quote(safe), quote(u.Scheme), strings.Join(brokerSchemes, ", ")))
		case u.Hostname() == "":
			v.report(p+".broker", safe, fmt.Sprintf("%s has no host", quote(safe)))
		default:
			scheme = u.Scheme
			v.urlPort(p+".broker", safe, u)
		}
	}
	v.hostPort(p+".embedded_listen", m.EmbeddedListen)
	v.topic(p+".topic_prefix", m.TopicPrefix)
	if (m.PasswordEnv != "" || m.PasswordFile != "") && m.Username == "" {
		v.report(p+".username", "", "is required when a password is set")
	}
	t := m.TLS
	if (t.CertFile == "") != (t.KeyFile == "") {
		v.report(p+".tls", "", "set both cert_file and key_file, or neither")
	}
	if t != (ClientTLS{}) && m.Broker != "" && scheme != "" && !slices.Contains(tlsBrokerScheme, scheme) {
		v.report(p+".tls", "", fmt.Sprintf("applies only to a TLS broker URL (%s://), but broker is %s://", strings.Join(tlsBrokerScheme, "://, "), scheme))
	}
	if t != (ClientTLS{}) && m.Broker == "" {
		v.report(p+".tls", "", "applies only to an external TLS broker; broker is empty (embedded broker)")
	}
	v.intRange(p+".qos", int64(m.QoS), 0, 2)
	// MQTT carries the keepalive as a 16-bit count of seconds.
	if m.Keepalive < time.Second || m.Keepalive > 65535*time.Second {
		v.report(p+".keepalive", m.Keepalive.String(), fmt.Sprintf("%s is out of range (allowed: 1s to 18h12m15s)", m.Keepalive))
	}
	v.intRange(p+".spool_max_messages", int64(m.SpoolMaxMessages), 1, math.MaxInt64)
	v.intRange(p+".spool_max_bytes", m.SpoolMaxBytes, 1, math.MaxInt64)
	v.topic(p+".ha_discovery.prefix", m.HADiscovery.Prefix)
	if w := m.HADiscovery.SeenWindow; w < time.Minute || w > 24*time.Hour {
		v.report(p+".ha_discovery.seen_window", w.String(), w.String()+" is out of range (allowed: 1m to 24h)")
	}
	if m.Enabled && m.Broker == "" && !IsLoopbackListen(m.EmbeddedListen) && (m.Username == "" || m.PasswordEnv == "" && m.PasswordFile == "") {
		v.report(p+".embedded_listen", m.EmbeddedListen, fmt.Sprintf("%s is not a loopback address, so the embedded broker needs publish.mqtt.username and a password (password_env or password_file): anything that listens has authentication", quote(m.EmbeddedListen)))
	}
}

func (v checker) http(h *HTTP) {
	const p = "publish.http"
	v.hostPort(p+".listen", h.Listen)
	if (h.TLSCertFile == "") != (h.TLSKeyFile == "") {
		v.report(p+".tls_cert_file", "", "set both tls_cert_file and tls_key_file, or neither")
	}
	v.intRange(p+".max_body_bytes", h.MaxBodyBytes, 1, math.MaxInt64)
	if h.Enabled && h.TokenEnv == "" && h.TokenFile == "" && !IsLoopbackListen(h.Listen) {
		v.report(p+".listen", h.Listen, fmt.Sprintf("%s is not a loopback address and no token is configured; anything that listens has authentication: set publish.http.token_env or publish.http.token_file", quote(h.Listen)))
	}
}

func (v checker) webrtc(w *WebRTC) {
	const p = "publish.webrtc"
	for i, s := range w.ICEServers {
		sp := fmt.Sprintf("%s.ice_servers[%d]", p, i)
		if len(s.URLs) == 0 {
			v.report(sp+".urls", "", "must list at least one stun:, stuns:, turn: or turns: URL")
		}
		turn := false
		for j, raw := range s.URLs {
			up := fmt.Sprintf("%s.urls[%d]", sp, j)
			// ICE URLs are opaque (turn:host:port), so the scheme is cut
			// off before looking for credentials.
			scheme, rest, _ := strings.Cut(raw, ":")
			rest = RedactURL(rest)
			safe := scheme + ":" + rest
			if safe != raw {
				v.report(up, safe, fmt.Sprintf("credentials are not allowed in the URL; use %s.username and %s.credential_env or %s.credential_file", sp, sp, sp))
			}
			if !slices.Contains(iceSchemes, scheme) {
				v.report(up, safe, fmt.Sprintf("%s has scheme %s (allowed: %s)", quote(safe), quote(scheme), strings.Join(iceSchemes, ", ")))
				continue
			}
			if strings.TrimPrefix(rest, "//") == "" {
				v.report(up, safe, fmt.Sprintf("%s has no host", quote(safe)))
			}
			turn = turn || strings.HasPrefix(scheme, "turn")
		}
		hasCred := s.CredentialEnv != "" || s.CredentialFile != ""
		if turn && (s.Username == "" || !hasCred) {
			v.report(sp, "", "a TURN server needs username and credential_env or credential_file")
		}
		if hasCred && s.Username == "" && !turn {
			v.report(sp+".username", "", "is required when a credential is set")
		}
	}
	lo, hi := w.UDPPortMin, w.UDPPortMax
	okLo := v.intRange(p+".udp_port_min", int64(lo), 0, 65535)
	okHi := v.intRange(p+".udp_port_max", int64(hi), 0, 65535)
	switch {
	case (lo == 0) != (hi == 0):
		v.report(p+".udp_port_min", "", "set both udp_port_min and udp_port_max, or neither (0 means any port)")
	case okLo && okHi && lo > hi:
		v.report(p+".udp_port_min", strconv.Itoa(lo), fmt.Sprintf("%d exceeds udp_port_max (%d)", lo, hi))
	}
	if w.TCPListen != "" {
		v.hostPort(p+".tcp_listen", w.TCPListen)
	}
	for i, ip := range w.NAT1To1IPs {
		if net.ParseIP(ip) == nil {
			v.report(fmt.Sprintf("%s.nat_1to1_ips[%d]", p, i), ip, fmt.Sprintf("%s is not an IP address", quote(ip)))
		}
	}
	for i, ip := range w.ICEAddresses {
		if net.ParseIP(ip) == nil {
			v.report(fmt.Sprintf("%s.ice_addresses[%d]", p, i), ip, fmt.Sprintf("%s is not an IP address (0.0.0.0 or :: for every address)", quote(ip)))
		}
	}
	if w.ConnectTimeout < time.Second || w.ConnectTimeout > 5*time.Minute {
		v.report(p+".connect_timeout", w.ConnectTimeout.String(), fmt.Sprintf("%s is out of range (allowed: 1s to 5m)", w.ConnectTimeout))
	}
}

// Rule helpers. Each reports at most one problem and returns whether the
// value was fine, so that rules relating two fields run only on sane input.

func (v checker) required(path, s string) {
	if s == "" {
		v.report(path, "", "is required")
	}
}

func (v checker) enum(path, s string, allowed []string) bool {
	if slices.Contains(allowed, s) {
		return true
	}
	v.report(path, s, fmt.Sprintf("%s is not allowed (allowed: %s)", quote(s), strings.Join(allowed, ", ")))
	return false
}

func (v checker) positive(path string, d time.Duration) bool {
	if d > 0 {
		return true
	}
	v.report(path, d.String(), fmt.Sprintf("%s is out of range (allowed: > 0)", d))
	return false
}

func (v checker) intRange(path string, n, lo, hi int64) bool {
	if n >= lo && n <= hi {
		return true
	}
	var allowed string
	switch {
	case hi == math.MaxInt64:
		allowed = fmt.Sprintf(">= %d", lo)
	default:
		allowed = fmt.Sprintf("%d to %d", lo, hi)
	}
	v.report(path, strconv.FormatInt(n, 10), fmt.Sprintf("%d is out of range (allowed: %s)", n, allowed))
	return false
}

// floatRange checks lo <= f <= hi, with either end open. NaN and the
// infinities are always out of range.
func (v checker) floatRange(path string, f, lo, hi float64, loOpen, hiOpen bool) bool {
	ok := !math.IsNaN(f) && !math.IsInf(f, 0) &&
		(f > lo || !loOpen && f == lo) && (f < hi || !hiOpen && f == hi)
	if ok {
		return true
	}
	var allowed string
	if hi == math.MaxFloat64 {
		op := ">="
		if loOpen {
			op = ">"
		}
		allowed = op + " " + fmtFloat(lo)
	} else {
		l, r := "[", "]"
		if loOpen {
			l = "("
		}
		if hiOpen {
			r = ")"
		}
		allowed = l + fmtFloat(lo) + ", " + fmtFloat(hi) + r
	}
	v.report(path, fmtFloat(f), fmt.Sprintf("%s is out of range (allowed: %s)", fmtFloat(f), allowed))
	return false
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// hostPort checks a listen address: host:port with a numeric port; the host
// may be empty (all interfaces), an IP or a name.
func (v checker) hostPort(path, s string) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		v.report(path, s, fmt.Sprintf("%s is not host:port (such as 127.0.0.1:8080 or :8080)", quote(s)))
		return
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		v.report(path, s, fmt.Sprintf("%s has port %s (allowed: 0 to 65535)", quote(s), quote(port)))
	}
	if strings.ContainsAny(host, " /@") {
		v.report(path, s, fmt.Sprintf("%s has host %s, which is not an IP address or host name", quote(s), quote(host)))
	}
}

// IsLoopbackListen reports whether a listen address (host:port) binds only
// loopback.
func IsLoopbackListen(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// topic checks an MQTT topic prefix: it is followed by "/" and more levels,
// so wildcards, empty levels and a leading $ (reserved by brokers) are out.
func (v checker) topic(path, s string) {
	var why string
	switch {
	case s == "":
		why = "is required"
	case !utf8.ValidString(s) || strings.ContainsRune(s, 0):
		why = "must be UTF-8 without NUL"
	case strings.ContainsAny(s, "+#"):
		why = "must not contain the wildcards + or #"
	case strings.HasPrefix(s, "/") || strings.HasSuffix(s, "/"):
		why = "must not start or end with /"
	case strings.Contains(s, "//"):
		why = "must not contain empty levels (//)"
	case strings.HasPrefix(s, "$"):
		why = "must not start with $ (reserved by brokers)"
	case len(s) > 1024:
		why = "is longer than 1024 bytes"
	default:
		return
	}
	if s == "" {
		v.report(path, "", why)
		return
	}
	v.report(path, s, quote(s)+" "+why)
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// MinDirectSide is the smallest srdg.direct_side other than 0: the
// smallest square the direct path has a scale for (srdg.MinDirectSide,
// which config does not import; TestMinDirectSide ties them).
const MinDirectSide = 19
