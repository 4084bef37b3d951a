package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"go.uber.org/goleak"

	"github.com/srdgd/srdgd/config"
	"github.com/srdgd/srdgd/internal/app"
	"github.com/srdgd/srdgd/internal/demoscene"
	"github.com/srdgd/srdgd/internal/rtspserver"
)

func runCLI(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := dispatch(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("version: 1\ncameras:\n  - name: Front Door\n    url: http://x\n    transprt: tcp\nlog:\n  level: loud\n"), 0o644)
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("version: 1\n"), 0o644)
	t.Setenv("CAM_FRONT_DOOR_PASSWORD", "s3cret-value")
	example := filepath.Join(dir, "example.yaml")
	os.WriteFile(example, config.Example, 0o644)

	cases := []struct {
		name     string
		args     []string
		code     int
		out, err []string
	}{
		{"no args is usage", []string{"bogus"}, exitUsage, nil, []string{`unknown command "bogus"`, "usage:"}},
		{"help", []string{"help"}, exitOK, []string{"config check"}, nil},
		{"version", []string{"version"}, exitOK, []string{"srdgd "}, nil},
		{"config check good", []string{"config", "check", good}, exitOK, []string{"ok (0 cameras)"}, nil},
		{"config check example", []string{"config", "check", example}, exitOK, []string{"ok (1 cameras)"}, nil},
		{"config check bad lists every problem", []string{"config", "check", bad}, exitConfig, nil,
			[]string{"cameras[0].name", "cameras[0].url", "cameras[0].transprt", "log.level", "bad.yaml:"}},
		{"config check missing file", []string{"config", "check", filepath.Join(dir, "nope.yaml")}, exitConfig, nil, []string{"nope.yaml"}},
		{"config check no file", []string{"config", "check"}, exitUsage, nil, []string{"usage"}},
		{"config example", []string{"config", "example"}, exitOK, []string{"version: 1"}, nil},
		{"run bad config", []string{"run", "--config", bad}, exitConfig, nil, []string{"problem"}},
		{"run bad flag", []string{"run", "--nope"}, exitUsage, nil, []string{"flag provided but not defined"}},
		{"sr without input", []string{"sr"}, exitUsage, nil, []string{"--in is required"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := runCLI(t, context.Background(), c.args...)
			if code != c.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, c.code, out, errs)
			}
			for _, w := range c.out {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range c.err {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errs)
				}
			}
			if strings.Contains(out+errs, "s3cret-value") {
				t.Error("a secret was printed")
			}
		})
	}
}

// TestRunIngestsAndDrains runs the daemon against a real RTSP server fed by
// ffmpeg, waits until frames were decoded, then stops it like SIGTERM does.
func TestRunIngestsAndDrains(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	srv, err := rtspserver.Start(rtspserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub, err := rtspserver.PublishFFmpeg(ctx, srv.URL("cam"), rtspserver.FFmpegOptions{})
	if err != nil {
		requireFFmpeg(t, err)
	}
	defer pub.Stop()
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	if err := srv.WaitPublisher(wctx, "cam"); err != nil {
		t.Fatalf("publisher: %v\n%s", err, pub.Stderr())
	}
	wcancel()

	cfg := testDaemonConfig(t)
	cam := config.DefaultCamera()
	cam.Name, cam.URL, cam.Transport = "cam", srv.URL("cam"), "tcp"
	cfg.Cameras = []config.Camera{cam}
	cfg.Daemon.ShutdownTimeout = 10 * time.Second
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	rctx, rcancel := context.WithCancel(ctx)
	done := make(chan int, 1)
	go func() {
		done <- runDaemonWith(rctx, cfg, log, func(d *app.App) { d.StatusEvery = 500 * time.Millisecond })
	}()
	deadline := time.Now().Add(30 * time.Second)
	decoded := regexp.MustCompile(`frames=[1-9]`)
	for !decoded.MatchString(logs.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("no frames decoded:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// the embedded broker carries availability and the camera's status
	m := regexp.MustCompile(`msg="embedded MQTT broker" addr=(\S+)`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no embedded broker in the log:\n%s", logs.String())
	}
	got := make(chan string, 16)
	sub := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + m[1]).SetClientID("test-sub"))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber: %v", tok.Error())
	}
	sub.Subscribe("srdgd/#", 1, func(_ paho.Client, msg paho.Message) {
		select {
		case got <- msg.Topic() + " " + string(msg.Payload()):
		default:
		}
	})
	seen := map[string]bool{}
	for !seen["srdgd/availability"] || !seen["srdgd/cam/status"] {
		select {
		case msg := <-got:
			topic, payload, _ := strings.Cut(msg, " ")
			seen[topic] = true
			if topic == "srdgd/availability" && payload != "online" {
				t.Errorf("availability %q, want online", payload)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("retained availability/status not received; saw %v", seen)
		}
	}
	sub.Disconnect(100)
	rcancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("exit %d after a clean stop:\n%s", code, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("daemon did not stop")
	}
	if !strings.Contains(logs.String(), "msg=stopped") {
		t.Errorf("no stop log:\n%s", logs.String())
	}
	pub.Stop()
	<-pub.Done()
	srv.Close()
}

// TestDrainTimeout: a component that ignores cancellation makes the daemon exit
// with exitDrainTimeout once daemon.shutdown_timeout has passed.
func TestDrainTimeout(t *testing.T) {
	cfg := testDaemonConfig(t)
	cfg.Daemon.ShutdownTimeout = 200 * time.Millisecond
	release := make(chan struct{})
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var logs syncBuffer
	go func() {
		done <- runDaemonWith(ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil)), func(d *app.App) {
			d.Add("stuck", func(context.Context) error {
				<-release
				return nil
			})
		})
	}()
	cancel()
	select {
	case code := <-done:
		if code != exitDrainTimeout {
			t.Errorf("exit %d, want %d:\n%s", code, exitDrainTimeout, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("drain timeout not enforced")
	}
}

// TestComponentFailureStopsDaemon: one failing component stops the others and
// the process exits with exitFailure.
func TestComponentFailureStopsDaemon(t *testing.T) {
	cfg := testDaemonConfig(t)
	// without the embedded broker: mochi v2.7.9 races (under -race) when it
	// is closed while a client is connecting, which a failure 10 ms after
	// start provokes; that race is the dependency's, not what this tests
	cfg.Publish.MQTT.Enabled = false
	var logs syncBuffer
	code := runDaemonWith(context.Background(), cfg, slog.New(slog.NewTextHandler(&logs, nil)), func(d *app.App) {
		d.Add("broken", func(context.Context) error {
			return os.ErrPermission
		})
	})
	if code != exitFailure || !strings.Contains(logs.String(), "component=broken") {
		t.Errorf("exit %d:\n%s", code, logs.String())
	}
}

func TestDemoRuns(t *testing.T) {
	if _, err := rtspserver.FFmpegPath(); err != nil {
		requireFFmpeg(t, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	code, out, errs := runCLI(t, ctx, "demo", "--duration", "90s", "--listen", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0",
		"--width", "320", "--height", "240", "--state-dir", t.TempDir())
	if code != exitOK {
		t.Fatalf("demo exit %d\n%s\n%s", code, out, errs)
	}
	if !regexp.MustCompile(`mosquitto_sub -h 127\.0\.0\.1 -p [1-9][0-9]* -t 'srdgd/#' -v`).MatchString(out) {
		t.Errorf("demo did not print where its broker listens:\n%s", out)
	}
	if !strings.Contains(out, "rtsp://127.0.0.1:") || !strings.Contains(errs, "msg=connected") {
		t.Errorf("demo did not connect to its camera:\n%s\n%s", out, errs)
	}
}

func requireFFmpeg(t *testing.T, err error) {
	t.Helper()
	if os.Getenv("SRDGD_TEST_REQUIRE_FFMPEG") != "" {
		t.Fatalf("ffmpeg required: %v", err)
	}
	t.Skipf("SKIPPING: ffmpeg not available (install Debian ffmpeg): %v", err)
}

// testDaemonConfig is the default config with its state in a temporary
// folder and every listener on a free loopback port.
func testDaemonConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg := config.Default()
	dir := t.TempDir()
	cfg.Storage.StateDir = dir
	cfg.Match.KeyFile = filepath.Join(dir, "gallery.key")
	cfg.Publish.HTTP.Listen = "127.0.0.1:0"
	cfg.Publish.MQTT.EmbeddedListen = "127.0.0.1:0"
	return cfg
}

// TestSystemdNotify: under systemd (NOTIFY_SOCKET, WATCHDOG_USEC) the daemon
// says READY=1 once running, pings WATCHDOG=1 while healthy and says
// STOPPING=1 on shutdown. The socket is a real unixgram socket read here.
func TestSystemdNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "200000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	cfg := testDaemonConfig(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var logs syncBuffer
	go func() { done <- runDaemonWith(ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil)), nil) }()
	var got []string
	want := []string{"READY=1", "WATCHDOG=1", "WATCHDOG=1"}
	buf := make([]byte, 4096)
	deadline := time.Now().Add(60 * time.Second)
	for len(got) < 3 || got[len(got)-1] != "WATCHDOG=1" || countOf(got, "WATCHDOG=1") < 2 {
		conn.SetReadDeadline(deadline)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("after %q: %v\n%s", got, err, logs.String())
		}
		for _, line := range strings.Split(string(buf[:n]), "\n") {
			if line == "READY=1" || line == "WATCHDOG=1" {
				got = append(got, line)
			}
		}
	}
	if got[0] != want[0] {
		t.Errorf("first notification %q, want READY=1 (all: %q)", got[0], got)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("exit %d\n%s", code, logs.String())
	}
	for {
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no STOPPING=1 after shutdown: %v", err)
		}
		if strings.Contains(string(buf[:n]), "STOPPING=1") {
			break
		}
	}
}

func countOf(s []string, v string) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

// streamDemoScene renders the demo scene as a 12 s loop at 640x480, 10 fps,
// in which a face 24-48 px high is nearly always in view (480 px of height,
// as the scene draws a body 7.5 face heights tall below each face: at 360 px
// the faces would leave the frame), and streams it from an in-process RTSP
// server at path "plaza". Defer stop: it is not a t.Cleanup, so that a
// goroutine-leak check deferred before it sees the server gone. stop may be
// called more than once.
func streamDemoScene(ctx context.Context, t *testing.T, ffmpeg string) (srv *rtspserver.Server, man *demoscene.Manifest, stop func()) {
	t.Helper()
	man, err := demoscene.LoadManifest(filepath.Join(repoModels, "demo"))
	if err != nil {
		t.Skipf("SKIPPING: demo faces missing (make models-packaged): %v", err)
	}
	sc, err := demoscene.New(man, demoscene.Options{Width: 640, Height: 480, FPS: 10, Loop: 12 * time.Second, MinFace: 24, MaxFace: 48})
	if err != nil {
		t.Fatal(err)
	}
	clip := filepath.Join(t.TempDir(), "scene.mp4")
	if err := sc.Encode(ctx, ffmpeg, clip); err != nil {
		t.Fatal(err)
	}
	srv, err = rtspserver.Start(rtspserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := rtspserver.PublishFFmpeg(ctx, srv.URL("plaza"), rtspserver.FFmpegOptions{Input: clip})
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() { once.Do(func() { pub.Stop(); srv.Close() }) }
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	err = srv.WaitPublisher(wctx, "plaza")
	wcancel()
	if err != nil {
		stop()
		t.Fatalf("camera stream: %v\n%s", err, pub.Stderr())
	}
	return srv, man, stop
}

// repoModels is the source tree's built model set (the tests run in cmd/srdgd).
var repoModels = filepath.Join("..", "..", "models", "dist")
