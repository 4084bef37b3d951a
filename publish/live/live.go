// Package live is the WebRTC live view: browsers pull a camera's H.264 video
// over WHEP (RFC 9725, the WebRTC-HTTP Egress Protocol) and receive the hits of
// that camera, and the tracker's boxes of every analysed frame labelled with
// their visits' decisions, as JSON on a data channel labelled "events".
//
// Video is passed through without transcoding: each camera's access units fan
// out to per-viewer drop-oldest queues, and every viewer packetises them into
// RTP itself (RFC 6184), starting at a key unit and starting again at the next
// key unit after a gap. A slow viewer loses its own frames, never the camera's
// or another viewer's.
package live

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/internal/queue"
	"github.com/srdgd/srdgd/publish"
)

// Source is what the live view needs from a camera (an ingest camera: the
// composition root, internal/app, checks that it has it).
type Source interface {
	SubscribeAccessUnits(capacity int) *queue.Queue[*face.AccessUnit]
	UnsubscribeAccessUnits(q *queue.Queue[*face.AccessUnit])
}

var _ publish.Sink = (*Server)(nil)

// ICEServer is a STUN or TURN server offered to the server's peer connections
// and, in WHEP Link headers, to viewers.
type ICEServer struct {
	// URLs are stun:, stuns:, turn: or turns: URLs.
	URLs []string
	// Username and Credential authenticate with TURN.
	Username, Credential string
}

// Options configures a Server. Zero values take the documented defaults.
type Options struct {
	// Cameras maps camera names (as in hits and URLs) to their sources.
	Cameras map[string]Source
	// ICEServers for relayed or reflexive candidates. Default none: host
	// candidates only, which is all a LAN needs.
	ICEServers []ICEServer
	// UDPPortMin and UDPPortMax bound the UDP ports ICE allocates, both set or
	// both 0 (any port).
	UDPPortMin, UDPPortMax int
	// TCPListen, such as ":8189", enables ICE over TCP (RFC 6544 passive
	// candidates) on one port, for viewers behind firewalls that block UDP.
	// Default "" (off).
	TCPListen string
	// NAT1To1IPs replace the host candidates' addresses when the box sits
	// behind a 1:1 NAT. Default none.
	NAT1To1IPs []string
	// IncludeLoopback also offers 127.0.0.1/::1 candidates, for a viewer on the
	// same host that has no other interface (tests, demos). Default false; a
	// loopback address in ICEAddresses implies it.
	IncludeLoopback bool
	// ICEAddresses are the only local IP addresses ICE binds sockets to and
	// announces as host candidates (STUN and TURN sockets included);
	// "0.0.0.0" stands for every IPv4 address, "::" for every IPv6 one.
	// Default none: every address of every interface.
	ICEAddresses []string
	// MulticastDNS answers nothing but resolves the viewers' mDNS (.local)
	// host candidates, which needs sockets on 0.0.0.0:5353 and [::]:5353.
	// Default false: off; viewers still connect through the candidates they
	// reveal in their connectivity checks (peer-reflexive).
	MulticastDNS bool
	// ConnectTimeout ends a session whose peer has not connected (ICE and
	// DTLS) this long after the answer, freeing its viewer slot. Default 5 s.
	ConnectTimeout time.Duration
	// MaxViewers bounds concurrent viewers per camera. Default 10.
	MaxViewers int
	// FirstVideoTimeout bounds how long a WHEP request waits for a camera's
	// first key unit when its codec is not known yet. Default 10 s.
	FirstVideoTimeout time.Duration
	// GatherTimeout bounds ICE candidate gathering for one answer. Default 10 s.
	GatherTimeout time.Duration
	// ViewerQueue is how many access units may wait for one viewer. Default 64.
	ViewerQueue int
	// EventQueue is how many hit messages may wait for one viewer's data
	// channel. Default 32.
	EventQueue int
	// BasePath is the path the Handler is mounted under (e.g. "/live"), for the
	// Location header of new sessions. Default "".
	BasePath string
	// AllowOrigin, when set ("*" or an origin), adds CORS headers for browsers
	// on other origins. Default "" (same origin only).
	AllowOrigin string
	// Logger gets a child logger with component=live. Default: discard.
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.MaxViewers == 0 {
		o.MaxViewers = 10
	}
	if o.FirstVideoTimeout == 0 {
		o.FirstVideoTimeout = 10 * time.Second
	}
	if o.GatherTimeout == 0 {
		o.GatherTimeout = 10 * time.Second
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = defaultConnectTimeout
	}
	if o.ViewerQueue == 0 {
		o.ViewerQueue = 64
	}
	if o.EventQueue == 0 {
		o.EventQueue = 32
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

func (o *Options) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for name, src := range o.Cameras {
		if name == "" {
			bad("cameras: empty camera name")
		}
		if src == nil {
			bad("cameras: %q: nil source", name)
		}
	}
	if o.UDPPortMin < 0 || o.UDPPortMax > 65535 || o.UDPPortMin > o.UDPPortMax ||
		(o.UDPPortMin == 0) != (o.UDPPortMax == 0) {
		bad("udp ports %d-%d: want both 0 or 1 <= min <= max <= 65535", o.UDPPortMin, o.UDPPortMax)
	}
	if o.TCPListen != "" {
		if _, _, err := net.SplitHostPort(o.TCPListen); err != nil {
			bad("tcp listen %q: %v", o.TCPListen, err)
		}
	}
	for _, ip := range o.NAT1To1IPs {
		if net.ParseIP(ip) == nil {
			bad("nat 1:1 ip %q: not an IP address", ip)
		}
	}
	for _, ip := range o.ICEAddresses {
		if net.ParseIP(ip) == nil {
			bad("ice address %q: not an IP address", ip)
		}
	}
	for i, s := range o.ICEServers {
		if len(s.URLs) == 0 {
			bad("ice server %d: no urls", i)
		}
		for _, u := range s.URLs {
			if _, err := ice.ParseURL(u); err != nil {
				bad("ice server %d: url %q: %v", i, u, err)
			}
		}
	}
	switch {
	case o.MaxViewers < 0:
		bad("max viewers %d: want >= 1", o.MaxViewers)
	case o.FirstVideoTimeout < 0 || o.GatherTimeout < 0 || o.ConnectTimeout < 0:
		bad("timeouts must not be negative")
	case o.ViewerQueue < 0 || o.EventQueue < 0:
		bad("queue sizes must not be negative")
	}
	if o.BasePath != "" && (o.BasePath[0] != '/' || o.BasePath[len(o.BasePath)-1] == '/') {
		bad("base path %q: want /path without a trailing slash", o.BasePath)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("live: %w", err)
	}
	return nil
}

// Server is the live view. Build it with New, call Run once, mount Handler.
type Server struct {
	o     Options
	log   *slog.Logger
	cams  map[string]*camera
	names []string // sorted

	mu       sync.Mutex
	runCtx   context.Context // set by Run
	stopped  bool            // Run is ending: no new sessions
	api      apiConfig
	sessions map[string]*viewer
	wg       sync.WaitGroup // viewer goroutines
}

// New validates o and returns a Server that is not yet running.
func New(o Options) (*Server, error) {
	o.setDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	s := &Server{
		o:        o,
		log:      o.Logger.With("component", "live"),
		cams:     map[string]*camera{},
		sessions: map[string]*viewer{},
	}
	for name, src := range o.Cameras {
		s.cams[name] = newCamera(name, src, s.log.With("camera", name))
		s.names = append(s.names, name)
	}
	sort.Strings(s.names)
	return s, nil
}

// apiConfig is what every session's pion API shares.
type apiConfig struct {
	settings webrtc.SettingEngine
	ice      []webrtc.ICEServer
}

// Run serves sessions until ctx ends, then closes every peer connection and
// returns nil once all of its goroutines have ended. It returns an error only
// when the ICE TCP port cannot be opened.
func (s *Server) Run(ctx context.Context) error {
	se := webrtc.SettingEngine{LoggerFactory: pionLogs{log: s.log}}
	if s.o.UDPPortMin != 0 {
		if err := se.SetEphemeralUDPPortRange(uint16(s.o.UDPPortMin), uint16(s.o.UDPPortMax)); err != nil {
			return fmt.Errorf("live: udp ports %d-%d: %w", s.o.UDPPortMin, s.o.UDPPortMax, err)
		}
	}
	filter := newAddrFilter(s.o.ICEAddresses)
	if filter != nil {
		se.SetIPFilter(filter.keep)
	}
	v4, v6 := filter.families()
	var networks []webrtc.NetworkType
	if v4 {
		networks = append(networks, webrtc.NetworkTypeUDP4)
	}
	if v6 {
		networks = append(networks, webrtc.NetworkTypeUDP6)
	}
	mdns := ice.MulticastDNSModeDisabled
	if s.o.MulticastDNS {
		mdns = ice.MulticastDNSModeQueryOnly
	}
	se.SetICEMulticastDNSMode(mdns)
	var tcpMux ice.TCPMux
	if s.o.TCPListen != "" {
		ln, err := net.Listen("tcp", s.o.TCPListen)
		if err != nil {
			return fmt.Errorf("live: ice tcp listen %q: %w", s.o.TCPListen, err)
		}
		s.log.Info("ice over tcp", "addr", ln.Addr().String())
		tcpMux = webrtc.NewICETCPMux(pionLogs{log: s.log}.NewLogger("ice-tcp"), ln, 64)
		defer tcpMux.Close()
		se.SetICETCPMux(tcpMux)
		if v4 {
			networks = append(networks, webrtc.NetworkTypeTCP4)
		}
		if v6 {
			networks = append(networks, webrtc.NetworkTypeTCP6)
		}
	}
	se.SetNetworkTypes(networks)
	if len(s.o.NAT1To1IPs) > 0 {
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        s.o.NAT1To1IPs,
			AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode:            webrtc.ICEAddressRewriteReplace,
		}); err != nil {
			return fmt.Errorf("live: nat 1:1 ips %v: %w", s.o.NAT1To1IPs, err)
		}
	}
	se.SetIncludeLoopbackCandidate(s.o.IncludeLoopback || filter.loopback())
	var servers []webrtc.ICEServer
	for _, is := range s.o.ICEServers {
		servers = append(servers, webrtc.ICEServer{URLs: is.URLs, Username: is.Username, Credential: is.Credential})
	}

	s.mu.Lock()
	if s.runCtx != nil {
		s.mu.Unlock()
		return errors.New("live: Run called twice")
	}
	s.runCtx = ctx
	s.api = apiConfig{settings: se, ice: servers}
	s.mu.Unlock()

	var camWG sync.WaitGroup
	for _, c := range s.cams {
		camWG.Go(func() { c.run(ctx, s.o.ViewerQueue) })
		camWG.Go(func() { c.runTracks(ctx) })
	}
	s.log.Info("live view running", "cameras", len(s.cams), "ice_addresses", filter.String(), "mdns", s.o.MulticastDNS)
	<-ctx.Done()

	// Refuse new sessions, then end the ones there are. Each viewer's
	// goroutine closes its peer connection when the run context ends.
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.wg.Wait()
	camWG.Wait()
	return nil
}

// CameraInfo describes a camera for the viewer page.
type CameraInfo struct {
	Name string `json:"name"`
	// Codec is "H264", "H265" or "" while no key unit has arrived yet.
	Codec string `json:"codec"`
	// Viewable is true when the codec is H.264.
	Viewable bool `json:"viewable"`
	// Reason says why a camera is not viewable.
	Reason     string `json:"reason,omitempty"`
	Viewers    int    `json:"viewers"`
	MaxViewers int    `json:"max_viewers"`
}

// Cameras lists the configured cameras sorted by name.
func (s *Server) Cameras() []CameraInfo {
	out := make([]CameraInfo, 0, len(s.names))
	for _, name := range s.names {
		c := s.cams[name]
		ci := CameraInfo{Name: name, Viewers: c.viewerCount(), MaxViewers: s.o.MaxViewers}
		switch info := c.info.Load(); {
		case info == nil:
			ci.Reason = "no video from the camera yet"
		case info.codec == face.CodecH264:
			ci.Codec, ci.Viewable = info.codec, true
		default:
			ci.Codec = info.codec
			ci.Reason = codecReason(info.codec)
		}
		out = append(out, ci)
	}
	return out
}

func codecReason(codec string) string {
	return fmt.Sprintf("camera sends %s; browsers need H.264 over WebRTC and the live view does not transcode: set the camera's stream to H.264", codec)
}

// CameraStats are one camera's live-view counters since New.
type CameraStats struct {
	Camera  string
	Viewers int
	// Sessions counts accepted WHEP sessions; Rejected refused ones (full,
	// wrong codec, no video).
	Sessions, Rejected uint64
	// PacketsSent and BytesSent count RTP packets (payload and header) handed
	// to peer connections.
	PacketsSent, BytesSent uint64
	// UnitsSent counts access units sent; UnitsDropped those a full viewer
	// queue discarded; UnitsSkipped those discarded while a viewer waited for a
	// key unit (at start and after every drop).
	UnitsSent, UnitsDropped, UnitsSkipped uint64
	// HitsSent counts hit messages sent on data channels; HitsDropped those
	// discarded because a viewer's queue or channel buffer was full.
	HitsSent, HitsDropped uint64
	// TracksSent counts track-box messages (one per analysed frame and
	// viewer) sent; TracksDropped those discarded because the camera's or a
	// viewer's queue, or the channel buffer, was full.
	TracksSent, TracksDropped uint64
}

// Stats returns every camera's counters, sorted by camera name.
func (s *Server) Stats() []CameraStats {
	out := make([]CameraStats, 0, len(s.names))
	for _, name := range s.names {
		out = append(out, s.cams[name].stats())
	}
	return out
}

func (s *Server) removeSession(id string) {
	s.mu.Lock()
	delete(s.sessions, id)
	s.mu.Unlock()
}

func (s *Server) session(camera, id string) *viewer {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.sessions[id]
	if v == nil || v.cam.name != camera {
		return nil
	}
	return v
}

// running returns the run context and API settings, or ok=false before Run
// and after it returned.
func (s *Server) running() (ctx context.Context, api apiConfig, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runCtx == nil || s.stopped || s.runCtx.Err() != nil {
		return nil, apiConfig{}, false
	}
	return s.runCtx, s.api, true
}
