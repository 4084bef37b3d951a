package hwtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// checkMQTT connects to the external broker with the configured credentials,
// or, with no broker configured, checks that the embedded broker's address
// is free.
func (o *Options) checkMQTT(ctx context.Context) Check {
	m := o.MQTT
	c := Check{Name: "mqtt", Values: map[string]any{}}
	if !m.Enabled {
		c.Status, c.Message = StatusSkip, "publish.mqtt.enabled is false"
		return c
	}
	if m.Broker == "" {
		return o.checkEmbedded(ctx, c)
	}
	c.Values["broker"] = m.Broker
	d, err := o.mqttConnect(ctx, m.Broker)
	if err != nil {
		c.Status, c.Message = StatusFail, fmt.Sprintf("broker %s: %v", m.Broker, err)
		return c
	}
	c.Values["connect_ms"] = round2(ms(d))
	who := "anonymously"
	if m.Username != "" {
		who = fmt.Sprintf("as %q", m.Username)
	}
	c.Status, c.Message = StatusOK, fmt.Sprintf("broker %s accepted a connection %s in %s", m.Broker, who, d.Round(time.Millisecond))
	return c
}

func (o *Options) checkEmbedded(ctx context.Context, c Check) Check {
	addr := o.MQTT.EmbeddedListen
	c.Values["embedded_listen"] = addr
	l, err := net.Listen("tcp", addr)
	if err == nil {
		l.Close()
		c.Status, c.Message = StatusOK, fmt.Sprintf("no external broker: the daemon starts its embedded broker on %s, which is free", addr)
		return c
	}
	// Taken: by a running srdgd (fine) or by something else (the daemon
	// would fail to start). An MQTT answer with our credentials tells which.
	if _, cerr := o.mqttConnect(ctx, "tcp://"+addr); cerr == nil {
		c.Status, c.Message = StatusWarn, fmt.Sprintf("embedded broker address %s is taken by an MQTT broker (a running srdgd?); a second daemon could not start its own", addr)
		return c
	}
	c.Status, c.Message = StatusFail, fmt.Sprintf("embedded broker address %s (publish.mqtt.embedded_listen) is not available: %v", addr, unwrapOp(err))
	return c
}

func unwrapOp(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe.Err
	}
	return err
}

// mqttConnect opens and closes one MQTT session. The client id is its own,
// so a running daemon's session is not taken over.
func (o *Options) mqttConnect(ctx context.Context, broker string) (time.Duration, error) {
	m := o.MQTT
	u, err := url.Parse(broker)
	if err != nil || u.Host == "" {
		return 0, fmt.Errorf("not a broker URL")
	}
	host, _ := os.Hostname()
	opts := paho.NewClientOptions().
		AddBroker(broker).
		SetClientID(fmt.Sprintf("srdgd-hwtest-%s-%d", host, os.Getpid())).
		SetConnectTimeout(o.MQTTTimeout).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetCleanSession(true)
	if m.Username != "" {
		opts.SetUsername(m.Username).SetPassword(m.Password)
	}
	scheme := strings.ToLower(u.Scheme)
	var tcfg *tls.Config
	switch scheme {
	case "ssl", "tls", "mqtts", "wss", "tcps":
		if tcfg, err = mqttTLS(m); err != nil {
			return 0, err
		}
		opts.SetTLSConfig(tcfg)
	}
	// For plain and TLS TCP the connection is dialled here with a deadline
	// over the whole handshake: paho waits for CONNACK without one, and a
	// listener that is not a broker would keep its goroutine forever.
	var (
		connMu sync.Mutex
		conn   net.Conn
	)
	deadline := time.Now().Add(o.MQTTTimeout)
	switch scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts", "tcps":
		opts.SetCustomOpenConnectionFn(func(uri *url.URL, _ paho.ClientOptions) (net.Conn, error) {
			d := net.Dialer{Deadline: deadline}
			c, err := d.DialContext(ctx, "tcp", uri.Host)
			if err != nil {
				return nil, err
			}
			c.SetDeadline(deadline)
			if tcfg != nil {
				tc := tcfg.Clone()
				if tc.ServerName == "" {
					tc.ServerName = uri.Hostname()
				}
				tl := tls.Client(c, tc)
				if err := tl.HandshakeContext(ctx); err != nil {
					c.Close()
					return nil, err
				}
				c = tl
			}
			connMu.Lock()
			conn = c
			connMu.Unlock()
			return c, nil
		})
	}
	cl := paho.NewClient(opts)
	t0 := time.Now()
	tok := cl.Connect()
	stop := context.AfterFunc(ctx, func() {
		connMu.Lock()
		defer connMu.Unlock()
		if conn != nil {
			conn.Close()
		}
	})
	<-tok.Done()
	stop()
	d := time.Since(t0)
	if err := tok.Error(); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return 0, cerr
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return 0, fmt.Errorf("no MQTT answer within %s (%v): is it an MQTT broker?", o.MQTTTimeout, err)
		}
		return 0, explainMQTT(err)
	}
	cl.Disconnect(250)
	return d, nil
}

// explainMQTT adds what to check to paho's connect errors.
func explainMQTT(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "not Authorized"), strings.Contains(msg, "bad user name or password"):
		return fmt.Errorf("credentials rejected (%v): check publish.mqtt.username and the password variable/file", err)
	case strings.Contains(msg, "connection refused"):
		return fmt.Errorf("nothing listens there (%v): is the broker running?", err)
	}
	return err
}

func mqttTLS(m MQTTOptions) (*tls.Config, error) {
	t := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: m.InsecureSkipVerify} //nolint:gosec // operator's choice
	if m.CAFile != "" {
		pem, err := os.ReadFile(m.CAFile)
		if err != nil {
			return nil, fmt.Errorf("publish.mqtt.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("publish.mqtt.tls.ca_file %s: no PEM certificate in it", m.CAFile)
		}
		t.RootCAs = pool
	}
	if m.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(m.CertFile, m.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("publish.mqtt.tls.cert_file/key_file: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}
