package httpapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/srdgd/srdgd/internal/ratelog"
	"github.com/srdgd/srdgd/publish"
)

// VersionInfo is what GET /api/v1/version reports.
type VersionInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit,omitempty"`
	// Go defaults to runtime.Version().
	Go string `json:"go"`
	// Models maps a role to the model id from its ONNX metadata.
	Models map[string]string `json:"models,omitempty"`
}

// Options configure New. Zero values take the documented defaults.
type Options struct {
	// Listen is host:port. Default: 127.0.0.1:8080. A host that is not a
	// loopback address (or empty, meaning every interface) needs Token.
	Listen string
	// Token is the bearer token every /api/ route (except health), /whep/
	// and /metrics require. Empty turns authentication off, which only a
	// loopback Listen allows.
	Token string
	// TLSCertFile and TLSKeyFile (PEM) serve HTTPS; both or neither.
	TLSCertFile, TLSKeyFile string
	// MaxBodyBytes is the largest request body. Default: 8 MiB.
	MaxBodyBytes int64
	// Version is reported by GET /api/v1/version.
	Version VersionInfo
	// Cameras returns every camera's status; nil reports none.
	Cameras publish.StatusFunc
	// Viewable returns the cameras the live view (Live) can show; nil: none.
	Viewable func() []string
	// Hits is the hit history; nil: the hit endpoints answer 503.
	Hits Hits
	// Visits is the visit history; nil: the visit endpoints answer 503.
	// Its shots' images are the hits' (Hits).
	Visits Visits
	// Gallery; nil: the gallery endpoints answer 503.
	Gallery Gallery
	// Auditor is required when Hits, Visits or Gallery is set: no access without
	// an audit trail.
	Auditor Auditor
	// Live serves /whep/ (WebRTC WHEP); nil: 404.
	Live http.Handler
	// Schemas are JSON schemas served at /api/v1/schemas/{name}.
	Schemas map[string][]byte
	// Metrics serves /metrics (Prometheus); nil: 404.
	Metrics http.Handler
	// Health reports whether the daemon is healthy (GET /api/v1/health);
	// nil: always healthy.
	Health func(ctx context.Context) error
	// Logger; default discards.
	Logger *slog.Logger
	// SessionTTL is how long a login cookie lasts. Default: 12h.
	SessionTTL time.Duration
	// AuthFailBurst failed authentications are allowed per remote IP, then
	// one more every AuthFailEvery; beyond that 429. Defaults: 10, 6s.
	AuthFailBurst int
	AuthFailEvery time.Duration
	// ShutdownTimeout is how long Run waits for requests in flight when ctx
	// ends before closing their connections. Default: 5s.
	ShutdownTimeout time.Duration
}

// Server is the HTTP API server.
type Server struct {
	o       Options
	log     *slog.Logger
	tls     *tls.Config
	handler http.Handler
	auth    *authenticator
	web     fs.FS
	refused *ratelog.Limiter // cross-origin changes refused
	lists   listAudits       // list requests audited in the last window

	ready chan struct{}
	mu    sync.Mutex
	addr  net.Addr
	ran   bool
}

const (
	defaultListen  = "127.0.0.1:8080"
	defaultMaxBody = 8 << 20
)

// New validates o and builds the server; Run listens.
func New(o Options) (*Server, error) {
	if o.Listen == "" {
		o.Listen = defaultListen
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = defaultMaxBody
	}
	if o.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("http api: max body bytes %d: must be >= 1", o.MaxBodyBytes)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.SessionTTL == 0 {
		o.SessionTTL = 12 * time.Hour
	}
	if o.AuthFailBurst == 0 {
		o.AuthFailBurst = 10
	}
	if o.AuthFailEvery == 0 {
		o.AuthFailEvery = 6 * time.Second
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 5 * time.Second
	}
	if o.SessionTTL < 0 || o.AuthFailBurst < 0 || o.AuthFailEvery < 0 || o.ShutdownTimeout < 0 {
		return nil, fmt.Errorf("http api: session ttl %v, auth fail burst %d, auth fail every %v, shutdown timeout %v: none may be negative",
			o.SessionTTL, o.AuthFailBurst, o.AuthFailEvery, o.ShutdownTimeout)
	}
	if o.Version.Go == "" {
		o.Version.Go = runtime.Version()
	}
	host, _, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("http api: listen %q: %w", o.Listen, err)
	}
	if o.Token == "" && !isLoopback(host) {
		return nil, fmt.Errorf("http api: listen %q is not a loopback address: %w to serve on it (or listen on 127.0.0.1)", o.Listen, ErrNoToken)
	}
	if strings.ContainsAny(o.Token, " \t\r\n") {
		return nil, fmt.Errorf("http api: the token contains white space")
	}
	if (o.Hits != nil || o.Visits != nil || o.Gallery != nil) && o.Auditor == nil {
		return nil, fmt.Errorf("http api: an auditor is required with the hit or visit history or the gallery")
	}
	s := &Server{o: o, log: o.Logger.With("component", "httpapi"), ready: make(chan struct{})}
	s.refused = ratelog.New(s.log, "cross-origin change refused", refusedWarnInterval)
	if (o.TLSCertFile == "") != (o.TLSKeyFile == "") {
		return nil, fmt.Errorf("http api: tls cert file %q and key file %q: give both or neither", o.TLSCertFile, o.TLSKeyFile)
	}
	if o.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.TLSCertFile, o.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("http api: tls cert %s, key %s: %w", o.TLSCertFile, o.TLSKeyFile, err)
		}
		s.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	s.auth = newAuthenticator(o.Token, o.SessionTTL, o.AuthFailBurst, o.AuthFailEvery, s.tls != nil)
	if s.web, err = fs.Sub(webFS, "web"); err != nil {
		return nil, fmt.Errorf("http api: embedded page: %w", err)
	}
	s.handler = s.routes()
	return s, nil
}

// isLoopback reports whether host (from host:port) only reaches this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Handler is the server's handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.handler }

// Ready is closed when Run listens.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr is the address Run listens on; nil before Ready.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Run listens and serves until ctx ends, then shuts down gracefully (requests
// in flight get ShutdownTimeout) and returns nil. It returns an error when it
// cannot listen or serving fails. Run may be called once.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.ran {
		s.mu.Unlock()
		return fmt.Errorf("http api: Run called twice")
	}
	s.ran = true
	s.mu.Unlock()
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.o.Listen)
	if err != nil {
		return fmt.Errorf("http api: listen %s: %w", s.o.Listen, err)
	}
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	s.mu.Lock()
	s.addr = ln.Addr()
	s.mu.Unlock()
	// requests keep their context through the graceful part of the shutdown
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	scheme := "http"
	if s.tls != nil {
		scheme = "https"
	}
	s.log.Info("http api listening", "addr", ln.Addr().String(), "scheme", scheme, "auth", s.o.Token != "")
	close(s.ready)
	select {
	case err := <-served:
		return fmt.Errorf("http api: serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.o.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.log.Warn("http api shutdown timed out, closing connections", "error", err)
		cancelBase()
		_ = srv.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http api: serve %s: %w", ln.Addr(), err)
	}
	s.log.Info("http api stopped")
	return nil
}
