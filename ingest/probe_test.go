package ingest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/srdgd/srdgd/internal/rtspserver"
	"github.com/srdgd/srdgd/internal/testutil"
)

// silentListener accepts TCP connections and never answers: a camera that
// hangs after the connect.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// TestProbe probes real cameras: the in-process RTSP server fed by ffmpeg,
// over rtsp with credentials and over rtsps with a pinned certificate.
func TestProbe(t *testing.T) {
	requireFFmpeg(t)
	testutil.LeakCheck(t)
	ctx := testutil.Context(t, 2*time.Minute)
	const user, pass = "viewer", "S3cret-cam-pw"
	plain := startServer(t, rtspserver.Options{Username: user, Password: pass})
	publish(t, ctx, plain, "h264", rtspserver.FFmpegOptions{GOP: 5})
	publish(t, ctx, plain, "h265", rtspserver.FFmpegOptions{Codec: rtspserver.CodecH265, GOP: 5})
	cfg, pin, err := rtspserver.SelfSignedTLS("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	_, otherPin, err := rtspserver.SelfSignedTLS("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	secure := startServer(t, rtspserver.Options{TLSConfig: cfg, DisableUDP: true})
	publish(t, ctx, secure, "cam", rtspserver.FFmpegOptions{GOP: 5})
	silent := "rtsp://" + silentListener(t) + "/cam"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "rtsp://" + ln.Addr().String() + "/cam"
	ln.Close()

	tests := []struct {
		name    string
		o       CameraOptions
		timeout time.Duration
		step    string // "" = success
		want    error  // in the chain of a failure; nil: only the step
		msg     string // substring of the error
	}{
		{"ok h264 tcp", CameraOptions{URL: plain.URL("h264"), Username: user, Password: pass, Transport: "tcp"}, 0, "", nil, ""},
		{"ok h265 udp", CameraOptions{URL: plain.URL("h265"), Username: user, Password: pass, Transport: "udp"}, 0, "", nil, ""},
		{"ok credentials in the url", CameraOptions{URL: strings.Replace(plain.URL("h264"), "rtsp://", "rtsp://"+user+":"+pass+"@", 1), Transport: "tcp"}, 0, "", nil, ""},
		{"ok pinned rtsps", CameraOptions{URL: secure.URL("cam"), TLSFingerprint: pin, Transport: "tcp"}, 0, "", nil, ""},
		{"wrong password", CameraOptions{URL: plain.URL("h264"), Username: user, Password: "Wr0ng-pw-here"}, 0, ProbeDescribe, ErrAuthRejected, "401"},
		{"no credentials", CameraOptions{URL: plain.URL("h264")}, 0, ProbeDescribe, ErrAuthRejected, ""},
		{"wrong pin", CameraOptions{URL: secure.URL("cam"), TLSFingerprint: otherPin}, 0, ProbeDescribe, ErrFingerprintMismatch, "certificate"},
		{"untrusted certificate", CameraOptions{URL: secure.URL("cam")}, 0, ProbeDescribe, nil, "certificate"},
		{"no such stream", CameraOptions{URL: plain.URL("nothing"), Username: user, Password: pass}, 0, ProbeDescribe, ErrStreamNotFound, "404"},
		{"timeout", CameraOptions{URL: silent}, time.Second, ProbeDescribe, context.DeadlineExceeded, "no answer"},
		{"refused", CameraOptions{URL: refused}, 0, ProbeConnect, nil, "connection refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.Name = "cam"
			pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			if tc.timeout > 0 {
				cancel()
				pctx, cancel = context.WithTimeout(ctx, tc.timeout)
			}
			defer cancel()
			res, err := Probe(pctx, o)
			if tc.step == "" {
				if err != nil {
					t.Fatalf("probe: %v", err)
				}
				wantCodec, wantTransport := CodecH264, "TCP"
				if strings.Contains(tc.name, "h265") {
					wantCodec, wantTransport = CodecH265, "UDP"
				}
				if res.Codec != wantCodec || res.Width != 320 || res.Height != 240 || res.SDPWidth != 320 || res.SDPHeight != 240 ||
					res.Transport != wantTransport || res.FirstFrame <= 0 || res.Describe <= 0 || strings.Contains(res.URL, pass) {
					t.Fatalf("result %+v: want %s 320x240 over %s, timings set, URL without the password", res, wantCodec, wantTransport)
				}
				return
			}
			var pe *ProbeError
			if !errors.As(err, &pe) || pe.Step != tc.step || pe.Camera != "cam" {
				t.Fatalf("error %v (%T): want a ProbeError at step %s", err, err, tc.step)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("error %v: want %v in the chain", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %v: want %q in it", err, tc.msg)
			}
			for _, secret := range []string{pass, "Wr0ng-pw-here"} {
				if strings.Contains(err.Error(), secret) || strings.Contains(fmt.Sprint(pe.URL), secret) {
					t.Fatalf("password in the error: %v", err)
				}
			}
		})
	}
}

// TestProbeOptions: bad options are NewCamera's errors, before any network.
func TestProbeOptions(t *testing.T) {
	tests := []struct{ name, url, fp, want string }{
		{"scheme", "http://127.0.0.1/x", "", `scheme "http"`},
		{"pin on rtsp", "rtsp://127.0.0.1/x", strings.Repeat("ab", 32), "need an rtsps:// URL"},
		{"bad pin", "rtsps://127.0.0.1/x", "abc", "64 hex digits"},
		{"password in a bad url", "rtsp://u:pa55-w0rd@[::1/x", "", "url"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Probe(context.Background(), CameraOptions{Name: "c", URL: tc.url, TLSFingerprint: tc.fp})
			var pe *ProbeError
			if err == nil || errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "pa55-w0rd") {
				t.Fatalf("error %v: want NewCamera's %q without the password", err, tc.want)
			}
		})
	}
}
