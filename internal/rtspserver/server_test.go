package rtspserver

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/pion/rtp"
	"go.uber.org/goleak"
)

// requireFFmpeg skips loudly when ffmpeg is missing; with SRDGD_TEST_REQUIRE_FFMPEG=1
// (set by CI) it fails instead, so a broken CI image cannot pass silently.
func requireFFmpeg(t *testing.T) {
	t.Helper()
	if _, err := FFmpegPath(); err != nil {
		if os.Getenv("SRDGD_TEST_REQUIRE_FFMPEG") == "1" {
			t.Fatalf("SRDGD_TEST_REQUIRE_FFMPEG=1 but %v", err)
		}
		t.Skipf("SKIPPING %s: %v -- real-peer RTSP tests did NOT run", t.Name(), err)
	}
}

// leakCheck verifies, after every other cleanup of t has run, that no goroutine
// outlived the test.
func leakCheck(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func startServer(t *testing.T, o Options) *Server {
	t.Helper()
	s, err := Start(o)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

func publish(t *testing.T, ctx context.Context, s *Server, path string, o FFmpegOptions) *Publisher {
	t.Helper()
	p, err := PublishFFmpeg(ctx, s.URL(path), o)
	if err != nil {
		t.Fatalf("PublishFFmpeg: %v", err)
	}
	t.Cleanup(p.Stop)
	if err := s.WaitPublisher(ctx, path); err != nil {
		p.Stop()
		t.Fatalf("%v (ffmpeg stderr: %s)", err, p.Stderr())
	}
	return p
}

// readPackets plays url and returns its description once n RTP packets arrived.
func readPackets(ctx context.Context, url string, tr *gortsplib.Transport, tlsCfg *tls.Config, n int) (*description.Session, error) {
	u, err := base.ParseURL(url)
	if err != nil {
		return nil, err
	}
	c := &gortsplib.Client{
		Scheme: u.Scheme, Host: u.Host, Transport: tr, TLSConfig: tlsCfg,
		OnTransportSwitch: func(error) {}, OnPacketsLost: func(uint64) {}, OnDecodeError: func(error) {},
	}
	if err := c.Start2(); err != nil {
		return nil, err
	}
	defer c.Close()
	desc, _, err := c.Describe(u)
	if err != nil {
		return nil, err
	}
	if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		return nil, err
	}
	var got atomic.Int64
	enough := make(chan struct{})
	c.OnPacketRTPAny(func(_ *description.Media, _ format.Format, _ *rtp.Packet) {
		if got.Add(1) == int64(n) {
			close(enough)
		}
	})
	if _, err := c.Play(nil); err != nil {
		return nil, err
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- c.Wait() }()
	select {
	case <-enough:
		return desc, nil
	case err := <-waitErr:
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func transportPtr(t gortsplib.Transport) *gortsplib.Transport { return &t }

func TestPublishAndRead(t *testing.T) {
	requireFFmpeg(t)
	tests := []struct {
		name      string
		codec     string
		transport gortsplib.Transport
		wantCodec string
	}{
		{"h264 over tcp", CodecH264, gortsplib.TransportTCP, "H264"},
		{"h264 over udp", CodecH264, gortsplib.TransportUDP, "H264"},
		{"h265 over tcp", CodecH265, gortsplib.TransportTCP, "H265"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			ctx := testCtx(t)
			var forwarded atomic.Int64
			s := startServer(t, Options{OnPacket: func(path string, _ *rtp.Packet, _ time.Time) {
				if path == "cam" {
					forwarded.Add(1)
				}
			}})
			publish(t, ctx, s, "cam", FFmpegOptions{Codec: tc.codec})
			desc, err := readPackets(ctx, s.URL("cam"), transportPtr(tc.transport), nil, 20)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if got := desc.Medias[0].Formats[0].Codec(); got != tc.wantCodec {
				t.Fatalf("codec = %q, want %q", got, tc.wantCodec)
			}
			if forwarded.Load() < 20 {
				t.Fatalf("OnPacket saw %d packets, want >= 20", forwarded.Load())
			}
			if n := s.ForwardErrors(); n != 0 {
				t.Fatalf("%d packets could not be forwarded", n)
			}
		})
	}
}

func TestDescribeUnknownPathIs404(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	s := startServer(t, Options{})
	_, err := readPackets(ctx, s.URL("nobody"), nil, nil, 1)
	var bad liberrors.ErrClientBadStatusCode
	if !errors.As(err, &bad) || bad.Code != base.StatusNotFound {
		t.Fatalf("err = %v, want 404", err)
	}
}

func TestReaderAuth(t *testing.T) {
	requireFFmpeg(t)
	tests := []struct {
		name     string
		method   string
		userinfo string
		wantOK   bool
	}{
		{"basic right", AuthBasic, "viewer:s3cret@", true},
		{"digest right", AuthDigest, "viewer:s3cret@", true},
		{"any right", AuthAny, "viewer:s3cret@", true},
		{"basic wrong password", AuthBasic, "viewer:nope@", false},
		{"digest wrong user", AuthDigest, "intruder:s3cret@", false},
		{"no credentials", AuthAny, "", false},
	}
	leakCheck(t)
	ctx := testCtx(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, Options{Username: "viewer", Password: "s3cret", AuthMethod: tc.method})
			publish(t, ctx, s, "cam", FFmpegOptions{})
			url := strings.Replace(s.URL("cam"), "rtsp://", "rtsp://"+tc.userinfo, 1)
			_, err := readPackets(ctx, url, transportPtr(gortsplib.TransportTCP), nil, 5)
			if tc.wantOK && err != nil {
				t.Fatalf("read with %q: %v", tc.userinfo, err)
			}
			if !tc.wantOK && err == nil {
				t.Fatalf("read with %q succeeded, want an auth failure", tc.userinfo)
			}
		})
	}
}

func TestPublisherAuth(t *testing.T) {
	requireFFmpeg(t)
	leakCheck(t)
	ctx := testCtx(t)
	s := startServer(t, Options{PublishUsername: "pub", PublishPassword: "pw"})
	p, err := PublishFFmpeg(ctx, s.URL("cam"), FFmpegOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	select {
	case <-p.Done():
	case <-ctx.Done():
		t.Fatal("ffmpeg without credentials kept publishing")
	}
	if p.Err() == nil {
		t.Fatal("ffmpeg without credentials exited cleanly, want an error")
	}
	if !strings.Contains(p.Stderr(), "401") {
		t.Fatalf("ffmpeg stderr %q does not mention 401", p.Stderr())
	}
	// With credentials the publisher is accepted.
	p2, err := PublishFFmpeg(ctx, strings.Replace(s.URL("cam2"), "rtsp://", "rtsp://pub:pw@", 1), FFmpegOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Stop()
	if err := s.WaitPublisher(ctx, "cam2"); err != nil {
		t.Fatalf("%v (ffmpeg: %s)", err, p2.Stderr())
	}
}

func TestTLS(t *testing.T) {
	requireFFmpeg(t)
	leakCheck(t)
	ctx := testCtx(t)
	cfg, fp, err := SelfSignedTLS("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if len(fp) != 64 {
		t.Fatalf("fingerprint %q is not hex SHA-256", fp)
	}
	s := startServer(t, Options{TLSConfig: cfg, DisableUDP: true})
	if !strings.HasPrefix(s.URL("x"), "rtsps://") {
		t.Fatalf("URL = %q, want rtsps", s.URL("x"))
	}
	publish(t, ctx, s, "cam", FFmpegOptions{})
	if _, err := readPackets(ctx, s.URL("cam"), transportPtr(gortsplib.TransportTCP),
		&tls.Config{InsecureSkipVerify: true}, 50); err != nil { //nolint:gosec // self-signed test server
		t.Fatalf("read over rtsps: %v", err)
	}
	if n := s.ForwardErrors(); n != 0 {
		t.Fatalf("%d packets could not be forwarded over rtsps", n)
	}
	// Verifying against system roots must fail for a self-signed certificate.
	if _, err := readPackets(ctx, s.URL("cam"), transportPtr(gortsplib.TransportTCP), &tls.Config{}, 1); err == nil {
		t.Fatal("rtsps read with certificate verification succeeded against a self-signed cert")
	}
}

func TestRestartOnSamePort(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	s1, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	addr := s1.Addr()
	s1.Close()
	s1.Close() // idempotent
	if err := s1.WaitPublisher(ctx, "cam"); err == nil {
		t.Fatal("WaitPublisher on a closed server returned nil")
	}
	s2 := startServer(t, Options{Address: addr})
	if s2.Addr() != addr {
		t.Fatalf("restarted on %s, want %s", s2.Addr(), addr)
	}
	_, err = readPackets(ctx, s2.URL("cam"), nil, nil, 1)
	var bad liberrors.ErrClientBadStatusCode
	if !errors.As(err, &bad) || bad.Code != base.StatusNotFound {
		t.Fatalf("err = %v, want 404 from the restarted server", err)
	}
}

func TestOptionsValidation(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"bad auth method", Options{AuthMethod: "ntlm"}, `auth method "ntlm"`},
		{"odd rtp port", Options{UDPRTPPort: 40001}, "must be even"},
		{"bad address", Options{Address: "nonsense"}, "nonsense"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Start(tc.o)
			if err == nil {
				s.Close()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestFFmpegArgs(t *testing.T) {
	tests := []struct {
		name    string
		o       FFmpegOptions
		want    []string
		wantErr string
	}{
		{"h264 defaults", FFmpegOptions{}, []string{"testsrc2=size=320x240:rate=25", "libx264", "zerolatency", "-g", "10", "-bf", "0", "tcp"}, ""},
		{"h265", FFmpegOptions{Codec: CodecH265, GOP: 5}, []string{"libx265", "keyint=5:min-keyint=5:bframes=0"}, ""},
		{"duration", FFmpegOptions{Duration: 1500 * time.Millisecond}, []string{"-t", "1.500"}, ""},
		{"file copy", FFmpegOptions{Input: "in.mkv"}, []string{"-stream_loop", "-1", "in.mkv", "copy"}, ""},
		{"bad codec", FFmpegOptions{Codec: "vp8"}, nil, `codec "vp8"`},
		{"bad transport", FFmpegOptions{Transport: "sctp"}, nil, `transport "sctp"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args, err := ffmpegArgs("rtsp://127.0.0.1:1/x", tc.o)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			joined := " " + strings.Join(args, " ") + " "
			for _, w := range tc.want {
				if !strings.Contains(joined, w) {
					t.Fatalf("args %q lack %q", joined, w)
				}
			}
		})
	}
}
