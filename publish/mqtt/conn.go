package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// tlsHandshakeError marks an error of the TLS handshake itself (an EOF
// there means the peer does not speak TLS).
type tlsHandshakeError struct{ err error }

func (e *tlsHandshakeError) Error() string { return "tls handshake: " + e.err.Error() }
func (e *tlsHandshakeError) Unwrap() error { return e.err }

// dialGuard closes connections being set up when ctx ends, so a cancelled
// Run or Probe never waits for a connect timeout; release stops that once
// the MQTT handshake is over.
type dialGuard struct {
	mu    sync.Mutex
	stops []func() bool
}

func (g *dialGuard) add(stop func() bool) {
	g.mu.Lock()
	g.stops = append(g.stops, stop)
	g.mu.Unlock()
}

func (g *dialGuard) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, s := range g.stops {
		s()
	}
	g.stops = nil
}

// openFunc dials the broker for paho with ctx, doing TLS itself so that
// handshake failures are told apart.
func openFunc(ctx context.Context, r *resolved, g *dialGuard) paho.OpenConnectionFunc {
	return func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
		switch u.Scheme {
		case "ws", "wss":
			var tc *tls.Config
			if u.Scheme == "wss" {
				tc = tlsConfig(r, u)
			}
			c, err := paho.NewWebsocket(u.String(), tc, r.ConnectTimeout, nil, nil)
			if err != nil && tc != nil && classify(err) == nil {
				err = &tlsHandshakeError{err}
			}
			return c, err
		}
		d := net.Dialer{Timeout: r.ConnectTimeout}
		conn, err := d.DialContext(ctx, "tcp", u.Host)
		if err != nil {
			return nil, err
		}
		g.add(context.AfterFunc(ctx, func() { _ = conn.Close() }))
		if !isTLSScheme(u.Scheme) {
			return conn, nil
		}
		tc := tls.Client(conn, tlsConfig(r, u))
		hctx, cancel := context.WithTimeout(ctx, r.ConnectTimeout)
		defer cancel()
		if err := tc.HandshakeContext(hctx); err != nil {
			_ = conn.Close()
			return nil, &tlsHandshakeError{err}
		}
		return tc, nil
	}
}

func tlsConfig(r *resolved, u *url.URL) *tls.Config {
	var c *tls.Config
	if r.TLS != nil {
		c = r.TLS.Clone()
	} else {
		c = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if c.ServerName == "" && !c.InsecureSkipVerify {
		c.ServerName = u.Hostname()
	}
	return c
}

// connect makes one connection attempt. will adds the retained "offline"
// last will on willTopic; lost receives the reason when the connection
// drops later. The error is a *ConnectError.
func connect(ctx context.Context, r *resolved, clientID, willTopic string, lost chan<- error) (paho.Client, error) {
	g := &dialGuard{}
	o := paho.NewClientOptions()
	o.AddBroker(r.url.String())
	o.SetClientID(clientID)
	o.SetUsername(r.Username)
	o.SetPassword(r.Password)
	// The spool, not the session, keeps what is undelivered: a clean
	// session per connection and our own resend in order.
	o.SetCleanSession(true)
	o.SetAutoReconnect(false)
	o.SetConnectRetry(false)
	// Explicit 3.1.1 so a refused CONNECT is not retried as 3.1 (which
	// would hide "bad user name or password").
	o.SetProtocolVersion(4)
	o.SetKeepAlive(r.Keepalive)
	o.SetPingTimeout(min(r.Keepalive, r.ConnectTimeout))
	o.SetConnectTimeout(r.ConnectTimeout)
	o.SetWriteTimeout(r.ConnectTimeout)
	o.SetCustomOpenConnectionFn(openFunc(ctx, r, g))
	if willTopic != "" {
		o.SetBinaryWill(willTopic, []byte(PayloadOffline), 1, true)
	}
	if lost != nil {
		o.SetConnectionLostHandler(func(_ paho.Client, err error) {
			select {
			case lost <- err:
			default:
			}
		})
	}
	c := paho.NewClient(o)
	t := c.Connect()
	<-t.Done()
	g.release()
	err := t.Error()
	if err == nil && ctx.Err() != nil {
		// Connected just as ctx ended: the guard may have closed the
		// socket already; leave cleanly.
		c.Disconnect(0)
		err = ctx.Err()
	}
	if err != nil {
		kind := classify(err)
		var the *tlsHandshakeError
		if errors.As(err, &the) {
			kind = ErrTLS
		}
		if cerr := ctx.Err(); cerr != nil {
			if errors.Is(cerr, context.DeadlineExceeded) {
				kind = ErrTimeout
			}
			err = fmt.Errorf("%w (%v)", cerr, err)
		}
		return nil, &ConnectError{Broker: r.redacted, Kind: kind, Err: err}
	}
	return c, nil
}

// Probe connects once to the broker in o with its credentials and
// disconnects: a check for hwtest. The client id gets "-probe" appended so
// a running daemon keeps its session. The error is a *ConnectError naming
// the broker (without credentials) and what failed (ErrRefused, ErrAuth,
// ErrTLS, ErrTimeout, ...). Without a deadline on ctx, o.ConnectTimeout
// (default 10s) applies.
func Probe(ctx context.Context, o Options) error {
	r, err := o.resolve(false)
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.ConnectTimeout)
		defer cancel()
	}
	c, err := connect(ctx, r, r.ClientID+"-probe", "", nil)
	if err != nil {
		return err
	}
	c.Disconnect(250)
	return nil
}
