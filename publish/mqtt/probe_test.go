package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/srdgd/srdgd/internal/testutil"
)

func TestProbe(t *testing.T) {
	b := startEmbedded(t, true)
	cert, pool := testutil.SelfSigned(t)
	tlsAddr := startTLSProxy(t, b.Addr(), cert)
	closed := "127.0.0.1:" + strconv.Itoa(freePort(t))
	silent := testutil.SilentListener(t)
	good := func(o Options) Options {
		o.Username, o.Password = testUser, testPass
		return o
	}
	tests := []struct {
		name    string
		o       Options
		timeout time.Duration
		want    error // nil: success
		broker  string
	}{
		{"ok", good(Options{Broker: "tcp://" + b.Addr()}), 0, nil, ""},
		{"ok mqtt scheme", good(Options{Broker: "mqtt://" + b.Addr()}), 0, nil, ""},
		{"ok tls", good(Options{Broker: "mqtts://" + tlsAddr, TLS: &tls.Config{RootCAs: pool}}), 0, nil, ""},
		{"refused", good(Options{Broker: "tcp://" + closed}), 0, ErrRefused, "tcp://" + closed},
		{"timeout", good(Options{Broker: "tcp://" + silent}), 300 * time.Millisecond, ErrTimeout, "tcp://" + silent},
		{"timeout by option", good(Options{Broker: "tcp://" + silent, ConnectTimeout: 300 * time.Millisecond}), -1, ErrTimeout, "tcp://" + silent},
		{"untrusted certificate", good(Options{Broker: "ssl://" + tlsAddr}), 0, ErrTLS, "ssl://" + tlsAddr},
		{"tls to a plain broker", good(Options{Broker: "tls://" + b.Addr(), TLS: &tls.Config{RootCAs: pool}}), 0, ErrTLS, "tls://" + b.Addr()},
		{"bad password", Options{Broker: "tcp://" + b.Addr(), Username: testUser, Password: "hunter2-wrong"}, 0, ErrAuth, "tcp://" + b.Addr()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			switch {
			case tt.timeout > 0:
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			case tt.timeout == 0:
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
			}
			start := time.Now()
			err := Probe(ctx, tt.o)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("probe: %v", err)
				}
				return
			}
			checkConnErr(t, err, tt.want, tt.broker, tt.o.Password)
			var ce *ConnectError
			if !errors.As(err, &ce) || ce.Broker != tt.broker {
				t.Fatalf("error %#v is not a ConnectError for %s", err, tt.broker)
			}
			if el := time.Since(start); el > 5*time.Second {
				t.Fatalf("took %s", el)
			}
		})
	}
}

func startTLSProxy(t *testing.T, target string, cert tls.Certificate) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}}), target: target, open: true, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p.Addr()
}

func TestOptionsResolve(t *testing.T) {
	tests := []struct {
		name    string
		o       Options
		wantErr string // substring; "" = valid
		url     string
	}{
		{"tcp default port", Options{Broker: "tcp://broker.lan"}, "", "tcp://broker.lan:1883"},
		{"mqtts default port", Options{Broker: "MQTTS://broker.lan"}, "", "mqtts://broker.lan:8883"},
		{"ws path kept", Options{Broker: "ws://broker.lan:9001/mqtt"}, "", "ws://broker.lan:9001/mqtt"},
		{"wss", Options{Broker: "wss://broker.lan/mqtt"}, "", "wss://broker.lan/mqtt"},
		{"empty", Options{}, "broker URL is empty", ""},
		{"http scheme", Options{Broker: "http://broker.lan"}, `scheme "http"`, ""},
		{"credentials in URL", Options{Broker: "tcp://user:topsecret@broker.lan"}, "credentials in the URL", ""},
		{"no host", Options{Broker: "tcp://:1883"}, "no host", ""},
		{"prefix wildcard", Options{Broker: "tcp://h", TopicPrefix: "a/#"}, "wildcard", ""},
		{"prefix $", Options{Broker: "tcp://h", TopicPrefix: "$SYS/x"}, "reserved", ""},
		{"prefix empty level", Options{Broker: "tcp://h", TopicPrefix: "a//b"}, "empty level", ""},
		{"qos 3", Options{Broker: "tcp://h", QoS: 3, QoSSet: true}, "qos 3", ""},
		{"keepalive too long", Options{Broker: "tcp://h", Keepalive: 24 * time.Hour}, "keepalive", ""},
		{"cameras collide", Options{Broker: "tcp://h", Cameras: []string{"a/b", "a+b"}}, "same topic level", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := tt.o.resolve(false)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("resolve: %v", err)
				}
				if r.url.String() != tt.url {
					t.Fatalf("url %s, want %s", r.url, tt.url)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "topsecret") {
				t.Fatalf("error leaks the password: %v", err)
			}
		})
	}
	// Defaults.
	r, err := Options{Broker: "tcp://h"}.resolve(false)
	if err != nil {
		t.Fatal(err)
	}
	if r.qos != 1 || r.TopicPrefix != "srdgd" || r.HAPrefix != "homeassistant" || r.StatusEvery != 30*time.Second ||
		r.SpoolMaxMessages != 10000 || r.SpoolMaxBytes != 256<<20 || !strings.HasPrefix(r.ClientID, "srdgd-") {
		t.Fatalf("defaults: %+v", r)
	}
	if _, err := (Options{Broker: "tcp://h"}).resolve(true); err == nil {
		t.Fatal("New without a spool dir accepted")
	}
}

func TestTopicSegment(t *testing.T) {
	tests := []struct{ in, want string }{
		{"front door", "front door"},
		{"a/b", "a_b"},
		{"a+b#c", "a_b_c"},
		{"", "_"},
		{"   ", "_"},
		{"$SYS", "_SYS"},
		{"tab\there", "tab_here"},
		{"nul\x00", "nul_"},
		{"bad\xffutf8", "bad_utf8"},
		{"Zoë", "Zoë"},
		{strings.Repeat("é", 100), strings.Repeat("é", 64)},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := topicSegment(tt.in); got != tt.want {
				t.Fatalf("topicSegment(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	if got := (topics{prefix: "p"}).hit("matches"); got != "p/_matches/hit" {
		t.Fatalf("camera 'matches' hit topic %s", got)
	}
}

func TestSchemaForTopic(t *testing.T) {
	tests := []struct{ topic, want string }{
		{"p/availability", "availability.schema.json"},
		{"p/stats", "stats.schema.json"},
		{"p/matches/Ada", "match.schema.json"},
		{"p/cam/hit", "hit.schema.json"},
		{"p/cam/visit", "visit.schema.json"},
		{"p/cam/status", "status.schema.json"},
		{"p/cam/last_match", "last_match.schema.json"},
		{"p/cam/face", ""},
		{"ha/sensor/node/obj/config", "ha_discovery.schema.json"},
		{"p/people/7/state", "person.schema.json"},
		{"p/people/7/other", ""},
		{"other/x", ""},
	}
	for _, tt := range tests {
		if got := SchemaFor("p", "ha", tt.topic); got != tt.want {
			t.Errorf("SchemaFor(%q) = %q, want %q", tt.topic, got, tt.want)
		}
	}
	if len(Schemas()) != 9 {
		t.Fatalf("schemas: %d", len(Schemas()))
	}
}

func TestNewBroker(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name    string
		o       BrokerOptions
		wantErr string
	}{
		{"loopback anonymous", BrokerOptions{Listen: "127.0.0.1:0"}, ""},
		{"localhost anonymous", BrokerOptions{Listen: "localhost:0"}, ""},
		{"all interfaces with credentials", BrokerOptions{Listen: "0.0.0.0:0", Username: "u", Password: "p"}, ""},
		{"all interfaces anonymous", BrokerOptions{Listen: "0.0.0.0:0"}, "not a loopback address"},
		{"empty host anonymous", BrokerOptions{Listen: ":0"}, "not a loopback address"},
		{"user without password", BrokerOptions{Listen: "127.0.0.1:0", Username: "u"}, "without a password"},
		{"no port", BrokerOptions{Listen: "127.0.0.1"}, "missing port"},
		{"port taken", BrokerOptions{Listen: busy.Addr().String()}, "address already in use"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := NewBroker(tt.o)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("new broker: %v", err)
				}
				if strings.HasSuffix(b.Addr(), ":0") {
					t.Fatalf("addr %s", b.Addr())
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- b.Run(ctx) }()
				// A client connects (with the credentials if any).
				o := Options{Broker: "tcp://" + b.Addr(), Username: tt.o.Username, Password: tt.o.Password}
				if strings.HasPrefix(tt.o.Listen, "0.0.0.0") {
					_, port, _ := net.SplitHostPort(b.Addr())
					o.Broker = "tcp://127.0.0.1:" + port
				}
				if err := Probe(ctx, o); err != nil {
					t.Fatalf("probe: %v", err)
				}
				cancel()
				if err := <-done; err != nil {
					t.Fatalf("run: %v", err)
				}
				return
			}
			if err == nil {
				_ = b.Close()
				t.Fatalf("accepted, want %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// wsBridge serves MQTT over WebSocket (subprotocol "mqtt") by piping each
// upgraded connection to a TCP broker, for the ws:// scheme.
func wsBridge(t *testing.T, target string) string {
	t.Helper()
	up := websocket.Upgrader{Subprotocols: []string{"mqtt"}}
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		tcp, err := net.Dial("tcp", target)
		if err != nil {
			_ = ws.Close()
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 4096)
			for {
				n, err := tcp.Read(buf)
				if err != nil {
					_ = ws.Close()
					return
				}
				if err := ws.WriteMessage(websocket.BinaryMessage, buf[:n]); err != nil {
					_ = tcp.Close()
					return
				}
			}
		}()
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				_ = tcp.Close()
				return
			}
			if _, err := tcp.Write(b); err != nil {
				_ = ws.Close()
				return
			}
		}
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		wg.Wait()
	})
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestWebSocketScheme(t *testing.T) {
	b := startEmbedded(t, true)
	addr := wsBridge(t, b.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Probe(ctx, Options{Broker: "ws://" + addr + "/mqtt", Username: testUser, Password: testPass}); err != nil {
		t.Fatalf("probe over ws: %v", err)
	}
	sub := subscribe(t, b.Addr(), "ws", "ha", true, "ws/+/hit")
	h := startPublisher(t, Options{Broker: "ws://" + addr + "/mqtt", Username: testUser, Password: testPass, TopicPrefix: "ws", Hits: true})
	hit := makeHit(t, 0, "cam", false)
	if err := h.p.Publish(ctx, hit); err != nil {
		t.Fatal(err)
	}
	if id := hitID(t, sub.next("ws/cam/hit")); id != hit.ID {
		t.Fatalf("hit %s", id)
	}
}
