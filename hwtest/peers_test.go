package hwtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/srdgd/srdgd/ingest"
	"github.com/srdgd/srdgd/internal/rtspserver"
	"github.com/srdgd/srdgd/internal/testutil"
	"github.com/srdgd/srdgd/match"
)

// runOnly runs Run with everything but the part under test switched off or
// pointed at a temp dir, and without loading ONNX Runtime (no models, no SR,
// and a library path that does not exist: its failure is ignored here).
func runOnly(t *testing.T, edit func(*Options)) *Report {
	t.Helper()
	o := baseOptions(t)
	o.ORT.Library = "/nonexistent/libonnxruntime.so.1"
	edit(&o)
	return Run(context.Background(), o)
}

func requireFFmpeg(t *testing.T) {
	t.Helper()
	if _, err := rtspserver.FFmpegPath(); err != nil {
		testutil.SkipOrFail(t, "SRDGD_TEST_REQUIRE_FFMPEG", err)
	}
	dec, err := ingest.NewAVDecoder(ingest.CodecH264)
	if err != nil {
		testutil.SkipOrFail(t, "SRDGD_TEST_REQUIRE_FFMPEG", err)
	}
	dec.Close()
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}

func TestCameras(t *testing.T) {
	requireFFmpeg(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const user, pass = "viewer", "S3cret-cam-pw"
	s, err := rtspserver.Start(rtspserver.Options{Username: user, Password: pass, AuthMethod: rtspserver.AuthAny})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, p := range []struct{ path, codec string }{{"h264", rtspserver.CodecH264}, {"h265", rtspserver.CodecH265}} {
		pub, err := rtspserver.PublishFFmpeg(ctx, s.URL(p.path), rtspserver.FFmpegOptions{Codec: p.codec, Width: 320, Height: 240, GOP: 5})
		if err != nil {
			t.Fatal(err)
		}
		defer pub.Stop()
		if err := s.WaitPublisher(ctx, p.path); err != nil {
			t.Fatalf("%v (ffmpeg: %s)", err, pub.Stderr())
		}
	}
	unreachable := "rtsp://" + freeAddr(t) + "/cam"

	cases := []struct {
		name   string
		cam    Camera
		status Status
		msg    []string
	}{
		{"h264", Camera{Name: "h264", URL: s.URL("h264"), Username: user, Password: pass, Transport: "tcp"},
			StatusOK, []string{"h264 320x240 over TCP", "first frame decoded"}},
		{"h265 udp", Camera{Name: "h265", URL: s.URL("h265"), Username: user, Password: pass, Transport: "udp"},
			StatusOK, []string{"h265 320x240 over UDP"}},
		{"credentials in url", Camera{Name: "inurl", URL: strings.Replace(s.URL("h264"), "rtsp://", "rtsp://"+user+":"+pass+"@", 1), Transport: "tcp"},
			StatusOK, []string{"h264 320x240"}},
		{"unreachable", Camera{Name: "gone", URL: unreachable},
			StatusFail, []string{"unreachable", "connection refused"}},
		{"wrong password", Camera{Name: "badpw", URL: s.URL("h264"), Username: user, Password: "Wr0ng-pw-here"},
			StatusFail, []string{"DESCRIBE: credentials rejected"}},
		{"no such stream", Camera{Name: "nopath", URL: s.URL("nothing"), Username: user, Password: pass},
			StatusFail, []string{"DESCRIBE: no such stream"}},
		{"not rtsp", Camera{Name: "http", URL: "http://127.0.0.1/x"},
			StatusFail, []string{`scheme "http"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runOnly(t, func(o *Options) { o.Cameras = []Camera{tc.cam}; o.CameraTimeout = 10 * time.Second })
			c := expect(t, r, "camera/"+tc.cam.Name, tc.status, tc.msg...)
			for _, secret := range []string{pass, "Wr0ng-pw-here"} {
				if strings.Contains(c.Message, secret) || strings.Contains(fmt.Sprint(c.Values), secret) {
					t.Errorf("password in the report: %s %v", c.Message, c.Values)
				}
			}
			if tc.status == StatusOK {
				if c.Values["size"] != "320x240" || c.Values["sdp_size"] != "320x240" {
					t.Errorf("values %v: want size and sdp_size 320x240", c.Values)
				}
			}
		})
	}
}

// mosquitto starts Debian's broker on a free loopback port with one user and
// returns its host:port; extra is appended to the listener's settings.
func mosquitto(t *testing.T, user, pass, extra string) string {
	t.Helper()
	return testutil.StartMosquitto(t, testutil.MosquittoOptions{Username: user, Password: pass, Listener: extra}).Addr()
}

func TestMQTT(t *testing.T) {
	const user, pass = "srdgd", "mqtt-Secret-1"
	broker := "tcp://" + mosquitto(t, user, pass, "")
	down := "tcp://" + freeAddr(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0") // a non-MQTT listener
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	cases := []struct {
		name   string
		m      MQTTOptions
		status Status
		msg    []string
	}{
		{"connects", MQTTOptions{Enabled: true, Broker: broker, Username: user, Password: pass}, StatusOK, []string{"accepted a connection as \"srdgd\""}},
		{"wrong password", MQTTOptions{Enabled: true, Broker: broker, Username: user, Password: "nope-nope"}, StatusFail, []string{"credentials rejected"}},
		{"anonymous refused", MQTTOptions{Enabled: true, Broker: broker}, StatusFail, []string{"credentials rejected"}},
		{"broker down", MQTTOptions{Enabled: true, Broker: down, Username: user, Password: pass}, StatusFail, []string{"broker " + down, "is the broker running?"}},
		{"disabled", MQTTOptions{Enabled: false, Broker: down}, StatusSkip, []string{"enabled is false"}},
		{"embedded, address free", MQTTOptions{Enabled: true, EmbeddedListen: freeAddr(t)}, StatusOK, []string{"embedded broker", "free"}},
		{"embedded, address taken by a broker", MQTTOptions{Enabled: true, EmbeddedListen: strings.TrimPrefix(broker, "tcp://"), Username: user, Password: pass},
			StatusWarn, []string{"taken by an MQTT broker"}},
		{"embedded, address taken by something else", MQTTOptions{Enabled: true, EmbeddedListen: busy.Addr().String()},
			StatusFail, []string{"publish.mqtt.embedded_listen", "address already in use"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			r := runOnly(t, func(o *Options) { o.MQTT = tc.m; o.MQTTTimeout = 3 * time.Second })
			c := expect(t, r, "mqtt", tc.status, tc.msg...)
			if strings.Contains(c.Message, pass) {
				t.Errorf("password in the message: %s", c.Message)
			}
		})
	}
}

func TestGallery(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := t.TempDir()
	keyA, keyB := filepath.Join(dir, "a.key"), filepath.Join(dir, "b.key")
	for _, k := range []string{keyA, keyB} {
		if err := match.GenerateKey(k); err != nil {
			t.Fatal(err)
		}
	}
	badKey := filepath.Join(dir, "bad.key")
	os.WriteFile(badKey, []byte("not a key\n"), 0o600)
	gal := filepath.Join(dir, "gallery.db")
	g, err := match.Open(context.Background(), match.Options{Path: gal, KeyFile: keyA})
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
	fresh := filepath.Join(dir, "fresh", "gallery.db")

	cases := []struct {
		name   string
		g      GalleryOptions
		status Status
		msg    []string
	}{
		{"right key", GalleryOptions{Path: gal, KeyFile: keyA, Encrypt: true}, StatusOK, []string{"opens with the key in " + keyA, "0 people"}},
		{"wrong key", GalleryOptions{Path: gal, KeyFile: keyB, Encrypt: true}, StatusFail, []string{"does not open with the key in " + keyB, "match.key_file"}},
		{"no key file", GalleryOptions{Path: gal, KeyFile: filepath.Join(dir, "missing.key"), Encrypt: true}, StatusWarn, []string{"missing.key", "srdgd gallery keygen"}},
		{"malformed key", GalleryOptions{Path: gal, KeyFile: badKey, Encrypt: true}, StatusFail, []string{"bad.key", "want 32 raw bytes or 64 hexadecimal"}},
		{"not created yet", GalleryOptions{Path: fresh, KeyFile: keyA, Encrypt: true}, StatusOK, []string{"is valid", "does not exist yet"}},
		{"plaintext config, encrypted gallery", GalleryOptions{Path: gal, Encrypt: false}, StatusFail, []string{"match.encrypt is false"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runOnly(t, func(o *Options) { o.Gallery = tc.g })
			expect(t, r, "gallery", tc.status, tc.msg...)
		})
	}
	if _, err := os.Stat(filepath.Dir(fresh)); err == nil {
		t.Error("the check created the gallery's folder")
	}
}

func TestDiskStateAndClock(t *testing.T) {
	dir := t.TempDir()
	ro := filepath.Join(dir, "ro")
	os.Mkdir(ro, 0o500)
	cases := []struct {
		name  string
		edit  func(*Options)
		check string
		st    Status
		msg   []string
	}{
		{"enough disk", func(o *Options) { o.StateDir = dir; o.MinFreeBytes = 1 }, "disk/state", StatusOK, []string{"free"}},
		{"too little disk", func(o *Options) { o.StateDir = dir; o.MinFreeBytes = 1 << 62 }, "disk/state", StatusFail, []string{"below storage.min_free_bytes"}},
		{"spool not there yet", func(o *Options) { o.SpoolDir = filepath.Join(dir, "a", "b"); o.MinFreeBytes = 1 }, "disk/spool", StatusOK, []string{"does not exist yet, measured at " + dir}},
		{"state writable", func(o *Options) { o.StateDir = dir }, "state_dir", StatusOK, []string{"is writable"}},
		{"state missing", func(o *Options) { o.StateDir = filepath.Join(dir, "none") }, "state_dir", StatusWarn, []string{"does not exist yet"}},
		{"clock in 1970", func(o *Options) { o.Now = func() time.Time { return time.Unix(0, 0) } }, "clock", StatusFail, []string{"1970-01-01", "set it"}},
	}
	if os.Getuid() != 0 { // root writes anywhere
		cases = append(cases, struct {
			name  string
			edit  func(*Options)
			check string
			st    Status
			msg   []string
		}{"state read-only", func(o *Options) { o.StateDir = ro }, "state_dir", StatusFail, []string{"not writable"}})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runOnly(t, tc.edit)
			expect(t, r, tc.check, tc.st, tc.msg...)
		})
	}
	r := runOnly(t, func(o *Options) {})
	c := mustCheck(t, r, "clock")
	if c.Status == StatusFail {
		t.Errorf("clock: %s", c.Message)
	}
	if _, ok := c.Values["ntp_synchronised"]; !ok {
		t.Errorf("clock values %v: no ntp_synchronised", c.Values)
	}
}

func TestCamerasRTSPS(t *testing.T) {
	requireFFmpeg(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, fingerprint, err := rtspserver.SelfSignedTLS("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := rtspserver.SelfSignedTLS("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	s, err := rtspserver.Start(rtspserver.Options{TLSConfig: cfg, DisableUDP: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pub, err := rtspserver.PublishFFmpeg(ctx, s.URL("cam"), rtspserver.FFmpegOptions{GOP: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Stop()
	if err := s.WaitPublisher(ctx, "cam"); err != nil {
		t.Fatalf("%v (ffmpeg: %s)", err, pub.Stderr())
	}
	cases := []struct {
		name   string
		cam    Camera
		status Status
		msg    []string
	}{
		{"pinned", Camera{TLSFingerprint: fingerprint}, StatusOK, []string{"rtsps://", "h264 320x240 over TCP"}},
		{"insecure", Camera{TLSInsecure: true}, StatusOK, []string{"h264 320x240"}},
		{"wrong pin", Camera{TLSFingerprint: other}, StatusFail, []string{"DESCRIBE", "does not match cameras[name=tls].tls_fingerprint"}},
		{"system roots", Camera{}, StatusFail, []string{"DESCRIBE", "certificate"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cam := tc.cam
			cam.Name, cam.URL, cam.Transport = "tls", s.URL("cam"), "tcp"
			r := runOnly(t, func(o *Options) { o.Cameras = []Camera{cam}; o.CameraTimeout = 10 * time.Second })
			expect(t, r, "camera/tls", tc.status, tc.msg...)
		})
	}
}

// selfSigned writes a CA-capable certificate for 127.0.0.1 and its key as PEM.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	cert, _ := testutil.SelfSigned(t)
	return testutil.WritePEM(t, dir, cert)
}

func TestMQTTTLS(t *testing.T) {
	const user, pass = "srdgd", "mqtt-Secret-2"
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	otherCA, _ := selfSigned(t, t.TempDir())
	addr := mosquitto(t, user, pass, fmt.Sprintf("certfile %s\nkeyfile %s\n", cert, key))
	cases := []struct {
		name   string
		m      MQTTOptions
		status Status
		msg    []string
	}{
		{"trusted ca", MQTTOptions{Broker: "ssl://" + addr, CAFile: cert}, StatusOK, []string{"accepted a connection"}},
		{"mqtts scheme", MQTTOptions{Broker: "mqtts://" + addr, CAFile: cert}, StatusOK, []string{"accepted a connection"}},
		{"insecure", MQTTOptions{Broker: "tls://" + addr, InsecureSkipVerify: true}, StatusOK, []string{"accepted a connection"}},
		{"untrusted", MQTTOptions{Broker: "ssl://" + addr, CAFile: otherCA}, StatusFail, []string{"certificate"}},
		{"plain tcp to a tls listener", MQTTOptions{Broker: "tcp://" + addr}, StatusFail, []string{"broker tcp://" + addr}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			m := tc.m
			m.Enabled, m.Username, m.Password = true, user, pass
			r := runOnly(t, func(o *Options) { o.MQTT = m; o.MQTTTimeout = 3 * time.Second })
			expect(t, r, "mqtt", tc.status, tc.msg...)
		})
	}
}
