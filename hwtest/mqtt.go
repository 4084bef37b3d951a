package hwtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/srdgd/srdgd/publish/mqtt"
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
		c.Status, c.Message = StatusFail, fmt.Sprintf("broker %s (publish.mqtt.broker): %v", m.Broker, err)
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
		c.Status, c.Message = StatusWarn, fmt.Sprintf("embedded broker address %s (publish.mqtt.embedded_listen) is taken by an MQTT broker (a running srdgd?); a second daemon could not start its own", addr)
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

// mqttConnect opens and closes one MQTT session with the daemon's own
// client (mqtt.Probe, mqtt.ClientTLS). The client id is its own, so a
// running daemon's session is not taken over.
func (o *Options) mqttConnect(ctx context.Context, broker string) (time.Duration, error) {
	m := o.MQTT
	tc, err := mqtt.ClientTLS(mqtt.TLSFiles{CAFile: m.CAFile, CertFile: m.CertFile, KeyFile: m.KeyFile,
		InsecureSkipVerify: m.InsecureSkipVerify})
	if err != nil {
		return 0, fmt.Errorf("publish.mqtt.tls: %w", err)
	}
	host, _ := os.Hostname()
	ctx, cancel := context.WithTimeout(ctx, o.MQTTTimeout)
	defer cancel()
	t0 := time.Now()
	err = mqtt.Probe(ctx, mqtt.Options{Broker: broker, ClientID: fmt.Sprintf("srdgd-hwtest-%s-%d", host, os.Getpid()),
		Username: m.Username, Password: m.Password, TLS: tc, ConnectTimeout: o.MQTTTimeout})
	if err != nil {
		return 0, o.explainMQTT(err)
	}
	return time.Since(t0), nil
}

// explainMQTT adds what to check to the probe's classified errors.
func (o *Options) explainMQTT(err error) error {
	switch {
	case errors.Is(err, mqtt.ErrAuth):
		return fmt.Errorf("credentials rejected (%v): check publish.mqtt.username and publish.mqtt.password_env or password_file", err)
	case errors.Is(err, mqtt.ErrRefused):
		return fmt.Errorf("nothing listens there (%v): is the broker running?", err)
	case errors.Is(err, mqtt.ErrTimeout):
		return fmt.Errorf("no MQTT answer within %s (%v): is it an MQTT broker?", o.MQTTTimeout, err)
	case errors.Is(err, mqtt.ErrTLS):
		return fmt.Errorf("%v: check publish.mqtt.tls (ca_file, insecure_skip_verify) and that the broker's port speaks TLS", err)
	case errors.Is(err, mqtt.ErrProtocol):
		return fmt.Errorf("%v: is it an MQTT broker, and does the scheme (tcp:// or ssl://) match its listener?", err)
	}
	return err
}
