// Package rtspserver is a small in-process RTSP server built on gortsplib. It
// accepts publishers (ANNOUNCE/RECORD, e.g. ffmpeg -f rtsp) and serves readers
// (DESCRIBE/SETUP/PLAY) on the same path, over TCP and UDP, optionally with
// basic/digest authentication and TLS (rtsps). Tests, `srdgd demo` and hwtest use
// it as a stand-in for IP cameras.
package rtspserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/auth"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/pion/rtp"
)

// Auth methods accepted in Options.AuthMethod.
const (
	AuthAny    = ""       // basic and digest (MD5)
	AuthBasic  = "basic"  // basic only
	AuthDigest = "digest" // digest (MD5) only
)

// Options configures a Server. The zero value is a plain RTSP server on a free
// port of 127.0.0.1 with TCP and UDP transports and no authentication.
type Options struct {
	// Address is the TCP listen address for RTSP. Default "127.0.0.1:0". Give the
	// Addr() of a closed server to start a new one on the same port.
	Address string
	// DisableUDP turns the UDP transport off (TCP only).
	DisableUDP bool
	// UDPRTPPort is the even UDP port for RTP; RTCP uses the next one. 0 picks a
	// free pair on the host of Address.
	UDPRTPPort int
	// Username and Password, when Username is set, are required from readers
	// (DESCRIBE and SETUP).
	Username, Password string
	// PublishUsername and PublishPassword, when PublishUsername is set, are
	// required from publishers (ANNOUNCE).
	PublishUsername, PublishPassword string
	// AuthMethod selects the accepted authentication: AuthAny (default),
	// AuthBasic or AuthDigest.
	AuthMethod string
	// TLSConfig, when set, makes the server speak RTSPS only (TLS on TCP, SRTP on UDP).
	TLSConfig *tls.Config
	// ReadTimeout and WriteTimeout bound network operations. Default 10 s each.
	ReadTimeout, WriteTimeout time.Duration
	// OnPacket, when set, is called for every RTP packet a publisher sends, right
	// before it is handed to the readers, with the time of that hand-off. It runs
	// on the publisher's read goroutine, must return quickly and must not keep or
	// modify pkt. Benchmarks use it to measure latency from the server to a
	// decoded frame.
	OnPacket func(path string, pkt *rtp.Packet, at time.Time)
	// Logger receives connection and session events at debug level and problems
	// at warn level. Default: discard.
	Logger *slog.Logger
}

// Server is a running RTSP server. Close it to release its ports and goroutines.
type Server struct {
	opts   Options
	log    *slog.Logger
	srv    *gortsplib.Server
	addr   string
	scheme string

	forwardErrors atomic.Uint64

	mu       sync.Mutex
	readUser string // reader credentials, Options.Username/Password until SetReaderCredentials
	readPass string
	paths    map[string]*pathState
	changed  chan struct{} // closed and replaced whenever a path gains or loses a publisher
	closed   bool
}

type pathState struct {
	stream    *gortsplib.ServerStream
	publisher *gortsplib.ServerSession
}

// Start listens and serves until Close.
func Start(opts Options) (*Server, error) {
	if opts.Address == "" {
		opts.Address = "127.0.0.1:0"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	methods, err := authMethods(opts.AuthMethod)
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:     opts,
		log:      opts.Logger.With("component", "rtspserver"),
		paths:    make(map[string]*pathState),
		changed:  make(chan struct{}),
		scheme:   "rtsp",
		readUser: opts.Username,
		readPass: opts.Password,
	}
	if opts.TLSConfig != nil {
		s.scheme = "rtsps"
	}

	var tcpLn net.Listener
	s.srv = &gortsplib.Server{
		Handler:      &handler{s: s},
		RTSPAddress:  opts.Address,
		ReadTimeout:  opts.ReadTimeout,
		WriteTimeout: opts.WriteTimeout,
		TLSConfig:    opts.TLSConfig,
		AuthMethods:  methods,
		Listen: func(network, address string) (net.Listener, error) {
			ln, err := net.Listen(network, address)
			tcpLn = ln
			return ln, err
		},
	}

	var udpConns []*net.UDPConn
	if !opts.DisableUDP {
		host, _, err := net.SplitHostPort(opts.Address)
		if err != nil {
			return nil, fmt.Errorf("rtspserver: address %q: %w", opts.Address, err)
		}
		rtpPort := opts.UDPRTPPort
		if rtpPort == 0 {
			udpConns, err = listenUDPPair(host)
			if err != nil {
				return nil, err
			}
			rtpPort = udpConns[0].LocalAddr().(*net.UDPAddr).Port
			byAddr := map[string]*net.UDPConn{
				net.JoinHostPort(host, strconv.Itoa(rtpPort)):   udpConns[0],
				net.JoinHostPort(host, strconv.Itoa(rtpPort+1)): udpConns[1],
			}
			// Hand the pre-bound sockets to gortsplib so no other process can take
			// the ports between choosing and binding them.
			s.srv.ListenPacket = func(network, address string) (net.PacketConn, error) {
				if c, ok := byAddr[address]; ok {
					delete(byAddr, address)
					return c, nil
				}
				return net.ListenPacket(network, address)
			}
		}
		s.srv.UDPRTPAddress = net.JoinHostPort(host, strconv.Itoa(rtpPort))
		s.srv.UDPRTCPAddress = net.JoinHostPort(host, strconv.Itoa(rtpPort+1))
	}

	if err := s.srv.Start(); err != nil {
		for _, c := range udpConns {
			c.Close()
		}
		return nil, fmt.Errorf("rtspserver: start on %s: %w", opts.Address, err)
	}
	s.addr = tcpLn.Addr().String()
	s.log.Debug("listening", "addr", s.addr, "udp_rtp", s.srv.UDPRTPAddress, "tls", opts.TLSConfig != nil)
	return s, nil
}

func authMethods(m string) ([]auth.VerifyMethod, error) {
	switch m {
	case AuthAny:
		return []auth.VerifyMethod{auth.VerifyMethodBasic, auth.VerifyMethodDigestMD5}, nil
	case AuthBasic:
		return []auth.VerifyMethod{auth.VerifyMethodBasic}, nil
	case AuthDigest:
		return []auth.VerifyMethod{auth.VerifyMethodDigestMD5}, nil
	}
	return nil, fmt.Errorf("rtspserver: auth method %q: want %q, %q or %q", m, AuthAny, AuthBasic, AuthDigest)
}

// listenUDPPair binds an even port and the next one on host.
func listenUDPPair(host string) ([]*net.UDPConn, error) {
	ip := net.ParseIP(host)
	var lastErr error
	for range 50 {
		a, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
		if err != nil {
			return nil, fmt.Errorf("rtspserver: listen udp on %q: %w", host, err)
		}
		p := a.LocalAddr().(*net.UDPAddr).Port
		if p%2 != 0 || p >= 65535 {
			a.Close()
			continue
		}
		b, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: p + 1})
		if err != nil {
			lastErr = err
			a.Close()
			continue
		}
		return []*net.UDPConn{a, b}, nil
	}
	return nil, fmt.Errorf("rtspserver: no free even/odd UDP port pair on %q: %v", host, lastErr)
}

// Addr returns the RTSP listen address (host:port).
func (s *Server) Addr() string { return s.addr }

// URL returns the rtsp:// (or rtsps://) URL of path on this server.
func (s *Server) URL(path string) string {
	return s.scheme + "://" + s.addr + "/" + strings.TrimPrefix(path, "/")
}

// SetReaderCredentials replaces the credentials required from readers from
// the next request on, as a camera whose password is changed does; an empty
// username lets every reader in. Sessions already playing go on.
func (s *Server) SetReaderCredentials(username, password string) {
	s.mu.Lock()
	s.readUser, s.readPass = username, password
	s.mu.Unlock()
}

// ForwardErrors counts RTP packets from publishers that could not be handed to
// the readers (the first one is logged).
func (s *Server) ForwardErrors() uint64 { return s.forwardErrors.Load() }

// WaitPublisher blocks until path has a publisher, ctx ends, or the server closes.
func (s *Server) WaitPublisher(ctx context.Context, path string) error {
	path = cleanPath(path)
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return errors.New("rtspserver: closed")
		}
		_, ok := s.paths[path]
		ch := s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("rtspserver: wait for publisher on %q: %w", path, ctx.Err())
		}
	}
}

// HasPublisher reports whether a publisher is on path now.
func (s *Server) HasPublisher(path string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.paths[cleanPath(path)]
	return ok
}

// Close disconnects every publisher and reader and releases the ports. It
// returns once all of the server's goroutines have ended.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()

	// Not under s.mu: gortsplib calls back into the handler while closing.
	s.srv.Close()

	s.mu.Lock()
	for p, ps := range s.paths {
		ps.stream.Close()
		delete(s.paths, p)
	}
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	s.log.Debug("closed", "addr", s.addr)
}

func cleanPath(p string) string {
	return strings.Trim(p, "/")
}

// notifyLocked wakes WaitPublisher callers. The caller holds s.mu.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

type handler struct {
	s *Server
}

var (
	_ gortsplib.ServerHandlerOnConnOpen         = (*handler)(nil)
	_ gortsplib.ServerHandlerOnConnClose        = (*handler)(nil)
	_ gortsplib.ServerHandlerOnSessionClose     = (*handler)(nil)
	_ gortsplib.ServerHandlerOnDescribe         = (*handler)(nil)
	_ gortsplib.ServerHandlerOnAnnounce         = (*handler)(nil)
	_ gortsplib.ServerHandlerOnSetup            = (*handler)(nil)
	_ gortsplib.ServerHandlerOnPlay             = (*handler)(nil)
	_ gortsplib.ServerHandlerOnRecord           = (*handler)(nil)
	_ gortsplib.ServerHandlerOnPacketsLost      = (*handler)(nil)
	_ gortsplib.ServerHandlerOnDecodeError      = (*handler)(nil)
	_ gortsplib.ServerHandlerOnStreamWriteError = (*handler)(nil)
)

func (h *handler) OnConnOpen(ctx *gortsplib.ServerHandlerOnConnOpenCtx) {
	h.s.log.Debug("conn opened", "remote", ctx.Conn.NetConn().RemoteAddr().String())
}

func (h *handler) OnConnClose(ctx *gortsplib.ServerHandlerOnConnCloseCtx) {
	h.s.log.Debug("conn closed", "remote", ctx.Conn.NetConn().RemoteAddr().String(), "err", ctx.Error)
}

func (h *handler) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	s := h.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, ps := range s.paths {
		if ps.publisher == ctx.Session {
			// The publisher left: drop the stream, which disconnects its readers.
			ps.stream.Close()
			delete(s.paths, p)
			s.notifyLocked()
			s.log.Debug("publisher left", "path", p, "err", ctx.Error)
		}
	}
}

func (h *handler) unauthorized() (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusUnauthorized}, liberrors.ErrServerAuth{}
}

func (h *handler) readerAllowed(conn *gortsplib.ServerConn, req *base.Request) bool {
	h.s.mu.Lock()
	user, pass := h.s.readUser, h.s.readPass
	h.s.mu.Unlock()
	return user == "" || conn.VerifyCredentials(req, user, pass)
}

func (h *handler) lookup(path string) *gortsplib.ServerStream {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	if ps, ok := h.s.paths[cleanPath(path)]; ok {
		return ps.stream
	}
	return nil
}

func (h *handler) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if !h.readerAllowed(ctx.Conn, ctx.Request) {
		res, err := h.unauthorized()
		return res, nil, err
	}
	st := h.lookup(ctx.Path)
	if st == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, st, nil
}

func (h *handler) OnAnnounce(ctx *gortsplib.ServerHandlerOnAnnounceCtx) (*base.Response, error) {
	o := h.s.opts
	if o.PublishUsername != "" && !ctx.Conn.VerifyCredentials(ctx.Request, o.PublishUsername, o.PublishPassword) {
		return h.unauthorized()
	}
	st := &gortsplib.ServerStream{Server: h.s.srv, Desc: ctx.Description}
	if err := st.Initialize(); err != nil {
		return &base.Response{StatusCode: base.StatusBadRequest}, fmt.Errorf("rtspserver: path %q: stream: %w", ctx.Path, err)
	}
	path := cleanPath(ctx.Path)

	s := h.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.paths[path]; ok {
		// A new publisher replaces the old one, as cameras that reboot would.
		old.stream.Close()
		old.publisher.Close()
	}
	s.paths[path] = &pathState{stream: st, publisher: ctx.Session}
	s.notifyLocked()
	s.log.Debug("publisher announced", "path", path, "medias", len(ctx.Description.Medias))
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func (h *handler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if ctx.Session.State() == gortsplib.ServerSessionStatePreRecord {
		return &base.Response{StatusCode: base.StatusOK}, nil, nil
	}
	if !h.readerAllowed(ctx.Conn, ctx.Request) {
		res, err := h.unauthorized()
		return res, nil, err
	}
	st := h.lookup(ctx.Path)
	if st == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, st, nil
}

func (h *handler) OnPlay(_ *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func (h *handler) OnRecord(ctx *gortsplib.ServerHandlerOnRecordCtx) (*base.Response, error) {
	path := cleanPath(ctx.Path)
	s := h.s
	s.mu.Lock()
	ps, ok := s.paths[path]
	s.mu.Unlock()
	if !ok || ps.publisher != ctx.Session {
		return &base.Response{StatusCode: base.StatusBadRequest}, fmt.Errorf("rtspserver: record on %q without announce", path)
	}
	st := ps.stream
	onPacket := s.opts.OnPacket
	ctx.Session.OnPacketRTPAny(func(medi *description.Media, _ format.Format, pkt *rtp.Packet) {
		if onPacket != nil {
			// Before the hand-off, so that a reader never sees a packet the hook
			// has not; the write only queues it, microseconds later.
			onPacket(path, pkt, time.Now())
		}
		if err := st.WritePacketRTP(medi, pkt); err != nil {
			// A closed stream, or a packet too large to forward: with TLS, SRTP
			// needs 10 bytes of room below the 1472-byte limit.
			if s.forwardErrors.Add(1) == 1 {
				s.log.Warn("cannot forward rtp packet", "path", path, "size", pkt.MarshalSize(), "err", err)
			}
		}
	})
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func (h *handler) OnPacketsLost(ctx *gortsplib.ServerHandlerOnPacketsLostCtx) {
	h.s.log.Warn("rtp packets lost", "lost", ctx.Lost)
}

func (h *handler) OnDecodeError(ctx *gortsplib.ServerHandlerOnDecodeErrorCtx) {
	h.s.log.Warn("decode error", "err", ctx.Error)
}

func (h *handler) OnStreamWriteError(ctx *gortsplib.ServerHandlerOnStreamWriteErrorCtx) {
	h.s.log.Warn("stream write error", "err", ctx.Error)
}
