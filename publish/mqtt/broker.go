package mqtt

import (
	"bytes"
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// BrokerOptions configures the embedded broker.
type BrokerOptions struct {
	// Listen is host:port; port 0 picks a free one (see Addr). Required.
	Listen string
	// Username and Password, when Username is set, are required of every
	// client. Without them the broker only listens on loopback addresses.
	Username string
	Password string
	// Logger receives the broker's logs. Default: discard.
	Logger *slog.Logger
}

// Broker is an embedded MQTT broker (mochi-mqtt) for boxes without one.
type Broker struct {
	ln   *trackedListener
	srv  *mochi.Server
	log  *slog.Logger
	once sync.Once
}

// NewBroker validates o and binds the listen address (so Addr is known at
// once and a taken port fails here); Run serves. Close releases the socket
// if Run is never called.
func NewBroker(o BrokerOptions) (*Broker, error) {
	host, _, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded broker: listen %q: %w", o.Listen, err)
	}
	if o.Username == "" && o.Password != "" {
		return nil, fmt.Errorf("embedded broker: listen %q: a password without a username", o.Listen)
	}
	if o.Username != "" && o.Password == "" {
		return nil, fmt.Errorf("embedded broker: listen %q: username %q without a password", o.Listen, o.Username)
	}
	if o.Username == "" && !isLoopback(host) {
		return nil, fmt.Errorf("embedded broker: listen %q is not a loopback address: set a username and password (or listen on 127.0.0.1 or ::1)", o.Listen)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "broker")
	raw, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded broker: listen %q: %w", o.Listen, err)
	}
	ln := &trackedListener{Listener: raw}
	// mochi logs every failed login and dropped client as a warning
	srv := mochi.New(&mochi.Options{
		Logger:                 slog.New(levelFloor{log.Handler(), slog.LevelError}),
		SysTopicResendInterval: 3600,
	})
	hook := &authHook{user: []byte(o.Username), pass: []byte(o.Password), anon: o.Username == ""}
	if err := srv.AddHook(hook, nil); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("embedded broker: auth hook: %w", err)
	}
	if err := srv.AddListener(listeners.NewNet("srdgd", ln)); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("embedded broker: listener: %w", err)
	}
	return &Broker{ln: ln, srv: srv, log: log}, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Addr returns the bound address (host:port).
func (b *Broker) Addr() string { return b.ln.Addr().String() }

// Run serves until ctx ends, then disconnects every client and returns
// nil.
func (b *Broker) Run(ctx context.Context) error {
	if err := b.srv.Serve(); err != nil {
		_ = b.Close()
		return fmt.Errorf("embedded broker %s: serve: %w", b.Addr(), err)
	}
	b.log.Info("embedded broker listening", "addr", b.Addr())
	<-ctx.Done()
	return b.Close()
}

// Close stops the broker and closes its socket and clients; safe to call
// more than once.
func (b *Broker) Close() error {
	b.once.Do(func() {
		// Close the listeners with our own client closer first. mochi
		// v2.7.9's own one (Clients.GetByListener) takes the clients' read
		// lock twice, which deadlocks when a client that is disconnecting at
		// that moment queues for the write lock (seen in CI). Net.Close runs
		// the closer only once, so srv.Close below no longer calls mochi's.
		// The socket closes first so that no connection is being accepted
		// while CloseAll waits for the clients.
		_ = b.ln.Close()
		// a connection accepted just before that is handed to a goroutine
		// that registers with mochi's client WaitGroup; CloseAll waits on
		// it, and a registration racing that wait is a WaitGroup misuse
		// (the race detector reports it): wait until every accepted
		// connection has registered (its first read comes after) or closed
		b.ln.settle(2 * time.Second)
		b.srv.Listeners.CloseAll(func(id string) {
			for _, cl := range b.srv.Clients.GetAll() {
				if cl.Net.Listener == id && !cl.Closed() {
					_ = b.srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
				}
			}
		})
		_ = b.srv.Close()
	})
	return nil
}

// authHook allows the configured user, or anyone when anon (loopback only,
// checked by NewBroker).
type authHook struct {
	mochi.HookBase
	user, pass []byte
	anon       bool
}

func (h *authHook) ID() string { return "srdgd-auth" }

func (h *authHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mochi.OnConnectAuthenticate, mochi.OnACLCheck}, []byte{b})
}

func (h *authHook) OnConnectAuthenticate(_ *mochi.Client, pk packets.Packet) bool {
	if h.anon {
		return true
	}
	u := subtle.ConstantTimeCompare(pk.Connect.Username, h.user)
	p := subtle.ConstantTimeCompare(pk.Connect.Password, h.pass)
	return u&p == 1
}

func (h *authHook) OnACLCheck(_ *mochi.Client, _ string, _ bool) bool { return true }

// levelFloor drops records below min.
type levelFloor struct {
	slog.Handler
	min slog.Level
}

func (l levelFloor) Enabled(ctx context.Context, lv slog.Level) bool {
	return lv >= l.min && l.Handler.Enabled(ctx, lv)
}

func (l levelFloor) WithAttrs(a []slog.Attr) slog.Handler {
	return levelFloor{l.Handler.WithAttrs(a), l.min}
}

func (l levelFloor) WithGroup(n string) slog.Handler {
	return levelFloor{l.Handler.WithGroup(n), l.min}
}

// trackedListener counts the connections it accepted until each is first
// read or closed: mochi's per-connection goroutine registers with its
// client WaitGroup before its first read (attachClient), so once the count
// is back to zero no registration can race Listeners.CloseAll's wait.
type trackedListener struct {
	net.Listener
	pending sync.WaitGroup
}

func (l *trackedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.pending.Add(1)
	return &trackedConn{Conn: c, done: l.pending.Done}, nil
}

// settle waits for the accepted connections to register, at most d (a
// connection mochi never reads is not waited for longer).
func (l *trackedListener) settle(d time.Duration) {
	ch := make(chan struct{})
	go func() { l.pending.Wait(); close(ch) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	}
}

// trackedConn says done at its first Read or its Close, whichever is first.
type trackedConn struct {
	net.Conn
	once sync.Once
	done func()
}

func (c *trackedConn) Read(b []byte) (int, error) {
	c.once.Do(c.done)
	return c.Conn.Read(b)
}

func (c *trackedConn) Close() error {
	c.once.Do(c.done)
	return c.Conn.Close()
}
