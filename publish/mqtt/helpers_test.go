package mqtt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/srdgd/srdgd/internal/testutil"
)

const (
	testUser = "srdgd"
	testPass = "s3cret-pass-word"
)

// testBroker is a real broker the tests can stop and restart on the same
// port.
type testBroker interface {
	Addr() string
	Stop(t *testing.T)
	Start(t *testing.T)
}

type brokerKind struct {
	name  string
	start func(t *testing.T, auth bool) testBroker
}

func brokerKinds() []brokerKind {
	return []brokerKind{
		{"embedded", startEmbedded},
		{"mosquitto", startMosquitto},
	}
}

// embedded runs our Broker.
type embedded struct {
	addr   string
	auth   bool
	cancel context.CancelFunc
	done   chan error
}

func startEmbedded(t *testing.T, auth bool) testBroker {
	e := &embedded{addr: "127.0.0.1:0", auth: auth}
	e.Start(t)
	t.Cleanup(func() { e.Stop(t) })
	return e
}

func (e *embedded) Addr() string { return e.addr }

func (e *embedded) Start(t *testing.T) {
	t.Helper()
	o := BrokerOptions{Listen: e.addr, Logger: testLogger(t)}
	if e.auth {
		o.Username, o.Password = testUser, testPass
	}
	b, err := NewBroker(o)
	if err != nil {
		t.Fatalf("embedded broker: %v", err)
	}
	e.addr = b.Addr()
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.done = make(chan error, 1)
	go func() { e.done <- b.Run(ctx) }()
}

func (e *embedded) Stop(t *testing.T) {
	t.Helper()
	if e.cancel == nil {
		return
	}
	e.cancel()
	if err := <-e.done; err != nil {
		t.Errorf("embedded broker run: %v", err)
	}
	e.cancel = nil
}

// mosquitto is Debian's broker (testutil) as a testBroker.
type mosquitto struct{ *testutil.Mosquitto }

func startMosquitto(t *testing.T, auth bool) testBroker {
	t.Helper()
	var o testutil.MosquittoOptions
	if auth {
		o.Username, o.Password = testUser, testPass
	}
	return mosquitto{testutil.StartMosquitto(t, o)}
}

func (m mosquitto) Start(t *testing.T) { m.Mosquitto.Start(t) }
func (m mosquitto) Stop(t *testing.T)  { m.Mosquitto.Stop(t) }

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proxy forwards TCP to a broker; the tests cut its connections (an abrupt
// network failure, no DISCONNECT) and close its gate (connections are
// accepted and dropped at once) to control when the publisher gets back.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	open   bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, open: true, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if !p.open {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.wg.Add(2)
		go p.pipe(c, up)
		go p.pipe(up, c)
		p.mu.Unlock()
	}
}

func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	_ = dst.Close()
	_ = src.Close()
}

// cut closes every forwarded connection abruptly.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST, like a dead network
		}
		_ = c.Close()
	}
	clear(p.conns)
}

func (p *proxy) setOpen(open bool) {
	p.mu.Lock()
	p.open = open
	p.mu.Unlock()
}

func (p *proxy) close() {
	_ = p.ln.Close()
	p.cut()
	p.wg.Wait()
}

// received is one message a subscriber got.
type received struct {
	Topic    string
	Payload  []byte
	Retained bool
	QoS      byte
}

// subscriber is a real MQTT client validating every message it receives
// against the schema for its topic.
type subscriber struct {
	t      *testing.T
	c      paho.Client
	msgs   chan received
	v      *validator
	prefix string
	ha     string
}

func subscribe(t *testing.T, addr, prefix, ha string, auth bool, filters ...string) *subscriber {
	t.Helper()
	s := &subscriber{t: t, msgs: make(chan received, 10000), v: newValidator(t), prefix: prefix, ha: ha}
	o := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("sub-" + t.Name()).
		SetCleanSession(true).SetAutoReconnect(false).SetProtocolVersion(4).SetOrderMatters(true)
	if auth {
		o.SetUsername(testUser).SetPassword(testPass)
	}
	s.c = paho.NewClient(o)
	if tok := s.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect %s: %v", addr, tok.Error())
	}
	if len(filters) == 0 {
		filters = []string{prefix + "/#", ha + "/#"}
	}
	subs := map[string]byte{}
	for _, f := range filters {
		subs[f] = 1
	}
	tok := s.c.SubscribeMultiple(subs, func(_ paho.Client, m paho.Message) {
		s.v.check(m.Topic(), m.Payload(), prefix, ha)
		s.msgs <- received{Topic: m.Topic(), Payload: append([]byte(nil), m.Payload()...), Retained: m.Retained(), QoS: m.Qos()}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	t.Cleanup(s.close)
	return s
}

func (s *subscriber) close() {
	if s.c != nil {
		s.c.Disconnect(100)
		s.c = nil
	}
}

// next returns the next message on topic (others are skipped but were
// validated), failing after the deadline.
func (s *subscriber) next(topic string) received {
	s.t.Helper()
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case m := <-s.msgs:
			if m.Topic == topic {
				return m
			}
		case <-deadline.C:
			s.t.Fatalf("no message on %s", topic)
			return received{}
		}
	}
}

// nextMatching returns the next message whose topic satisfies f.
func (s *subscriber) nextMatching(what string, f func(received) bool) received {
	s.t.Helper()
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case m := <-s.msgs:
			if f(m) {
				return m
			}
		case <-deadline.C:
			s.t.Fatalf("no message: %s", what)
			return received{}
		}
	}
}

// validator compiles the embedded schemas.
type validator struct {
	t       *testing.T
	schemas map[string]*jsonschema.Schema
	mu      sync.Mutex
	counts  map[string]int
}

const schemaBase = "https://github.com/srdgd/srdgd/publish/mqtt/schema/"

func newValidator(t *testing.T) *validator {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	c.AssertContent()
	all := Schemas()
	for name, b := range all {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("schema %s: %v", name, err)
		}
		if err := c.AddResource(schemaBase+name, doc); err != nil {
			t.Fatalf("schema %s: %v", name, err)
		}
	}
	v := &validator{t: t, schemas: map[string]*jsonschema.Schema{}, counts: map[string]int{}}
	for name := range all {
		s, err := c.Compile(schemaBase + name)
		if err != nil {
			t.Fatalf("compile %s: %v", name, err)
		}
		v.schemas[name] = s
	}
	return v
}

// check validates one received message; a topic without a schema must be
// the face image.
func (v *validator) check(topic string, payload []byte, prefix, ha string) {
	name := SchemaFor(prefix, ha, topic)
	v.mu.Lock()
	v.counts[name]++
	v.mu.Unlock()
	if name == "" {
		if strings.HasPrefix(topic, prefix+"/") && strings.HasSuffix(topic, "/face") {
			if !bytes.HasPrefix(payload, []byte{0xff, 0xd8}) {
				v.t.Errorf("%s: not a JPEG", topic)
			}
			return
		}
		v.t.Errorf("%s: no schema for this topic", topic)
		return
	}
	if err := v.validate(name, payload); err != nil {
		v.t.Errorf("%s: payload %.300s: %v", topic, payload, err)
	}
}

func (v *validator) validate(name string, payload []byte) error {
	if name == "availability.schema.json" {
		// a bare string, validated as the JSON string it would be
		q, _ := json.Marshal(string(payload))
		payload = q
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	s := v.schemas[name]
	if s == nil {
		return errors.New("schema " + name + " missing")
	}
	return s.Validate(inst)
}

func (v *validator) count(name string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.counts[name]
}

// testLogger logs to t (warnings and up, to keep -v output short) until
// the test's cleanups have run; later lines (a broker goroutine winding
// down) are dropped instead of panicking.
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	level := slog.LevelWarn
	if os.Getenv("SRDGD_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	t    *testing.T
	mu   sync.Mutex
	done bool
}

func (w *testWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(b)))
	}
	return len(b), nil
}
