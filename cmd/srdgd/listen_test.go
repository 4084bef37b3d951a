package main

import (
	"context"
	"errors"
	"net"
	"regexp"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/srdgd/srdgd/config"
	"github.com/srdgd/srdgd/internal/rtspserver"
)

// TestDemoBrokerPortTaken: with the embedded broker's default address
// (127.0.0.1:1883) taken, held here or by anything else on this machine,
// `srdgd demo` without --mqtt-listen still starts, prints the free port its
// broker took instead, and that broker is the demo's: it carries the demo
// camera's retained status. (The address choice itself, --mqtt-listen
// included, is internal/app's TestDemoBrokerAddr.)
func TestDemoBrokerPortTaken(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo")
	}
	if _, err := rtspserver.FFmpegPath(); err != nil {
		requireFFmpeg(t, err)
	}
	def := config.Default().Publish.MQTT.EmbeddedListen
	held, err := net.Listen("tcp", def)
	switch {
	case err == nil:
		defer held.Close()
	case errors.Is(err, syscall.EADDRINUSE):
		t.Logf("%s is taken by another process already", def)
	default:
		t.Fatalf("holding %s: %v", def, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	var out, errs syncBuffer
	exited := make(chan int, 1)
	go func() {
		exited <- dispatch(ctx, []string{"demo", "--testsrc", "--duration", "120s", "--listen", "127.0.0.1:0",
			"--width", "320", "--height", "240", "--state-dir", t.TempDir()}, &out, &errs)
	}()

	printed := regexp.MustCompile(`mosquitto_sub -h 127\.0\.0\.1 -p ([0-9]+) -t 'srdgd/#' -v`)
	var port string
	for port == "" {
		select {
		case code := <-exited:
			t.Fatalf("demo exited with %d before printing its broker\nstdout:\n%s\nstderr:\n%s", code, out.String(), errs.String())
		case <-ctx.Done():
			t.Fatalf("demo never printed its broker\nstdout:\n%s\nstderr:\n%s", out.String(), errs.String())
		case <-time.After(50 * time.Millisecond):
			if m := printed.FindStringSubmatch(out.String()); m != nil {
				port = m[1]
			}
		}
	}
	if addr := "127.0.0.1:" + port; addr == def {
		t.Fatalf("demo printed the taken default %s:\n%s", def, out.String())
	}

	status := make(chan string, 1)
	sub := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://127.0.0.1:" + port).SetClientID("test-demo-port").
		SetConnectRetry(true).SetConnectRetryInterval(200 * time.Millisecond))
	if tok := sub.Connect(); !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
		t.Fatalf("no broker on the printed port %s: %v\nstderr:\n%s", port, tok.Error(), errs.String())
	}
	defer sub.Disconnect(100)
	if tok := sub.Subscribe("srdgd/demo/status", 1, func(_ paho.Client, m paho.Message) {
		select {
		case status <- string(m.Payload()):
		default:
		}
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	select {
	case <-status:
	case code := <-exited:
		t.Fatalf("demo exited with %d before its camera status came\nstderr:\n%s", code, errs.String())
	case <-ctx.Done():
		t.Fatalf("no camera status on the demo's broker at port %s\nstderr:\n%s", port, errs.String())
	}
	cancel()
	if code := <-exited; code != exitOK {
		t.Errorf("demo exit %d after being stopped, want %d\nstderr:\n%s", code, exitOK, errs.String())
	}
}
