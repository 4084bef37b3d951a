package live

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/ingest"
	"github.com/srdgd/srdgd/internal/rtspserver"
	"github.com/srdgd/srdgd/internal/testutil"
)

// requireFFmpeg skips loudly when the ffmpeg binary is missing; with
// SRDGD_TEST_REQUIRE_FFMPEG=1 (CI) it fails instead.
func requireFFmpeg(t *testing.T) {
	t.Helper()
	if _, err := rtspserver.FFmpegPath(); err != nil {
		testutil.SkipOrFail(t, "SRDGD_TEST_REQUIRE_FFMPEG", err)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() && os.Getenv("SRDGD_TEST_LIVE_LOG") == "1" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// passDecoder stands in for libavcodec in the cameras of these tests: the live
// view forwards coded access units and never looks at pictures, so decoding
// them would only burn CPU (and need cgo).
type passDecoder struct{}

func (passDecoder) Decode([][]byte, time.Duration, func(int) []byte) ([]ingest.Picture, error) {
	return nil, nil
}
func (passDecoder) Close() error { return nil }

// startCamera publishes a testsrc2 stream with ffmpeg to an in-process RTSP
// server and runs a real ingest.Camera pulling it. Everything stops in
// t.Cleanup.
func startCamera(t *testing.T, name string, o rtspserver.FFmpegOptions) *ingest.Camera {
	t.Helper()
	srv, err := rtspserver.Start(rtspserver.Options{})
	if err != nil {
		t.Fatalf("rtspserver.Start: %v", err)
	}
	t.Cleanup(srv.Close)
	ctx := testutil.Context(t, 60*time.Second)
	if o.GOP == 0 {
		o.GOP = 10
	}
	p, err := rtspserver.PublishFFmpeg(context.Background(), srv.URL("cam"), o)
	if err != nil {
		t.Fatalf("PublishFFmpeg: %v", err)
	}
	t.Cleanup(p.Stop)
	if err := srv.WaitPublisher(ctx, "cam"); err != nil {
		t.Fatalf("%v (ffmpeg stderr: %s)", err, p.Stderr())
	}
	return runCamera(t, name, srv.URL("cam"))
}

// runCamera runs an ingest.Camera on url until the test ends.
func runCamera(t *testing.T, name, url string) *ingest.Camera {
	t.Helper()
	cam, err := ingest.NewCamera(ingest.CameraOptions{
		Name: name, URL: url, Transport: "tcp",
		ReconnectInitial: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond,
		ReadTimeout: 3 * time.Second,
		NewDecoder:  func(string) (ingest.Decoder, error) { return passDecoder{}, nil },
	})
	if err != nil {
		t.Fatalf("NewCamera: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = cam.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return cam
}

// liveServer is a running Server behind an httptest server.
type liveServer struct {
	srv    *Server
	http   *httptest.Server
	cancel context.CancelFunc
	done   chan error
}

func startLive(t *testing.T, o Options) *liveServer {
	t.Helper()
	if o.Logger == nil {
		o.Logger = testLogger(t)
	}
	o.IncludeLoopback = true
	s, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ls := &liveServer{srv: s, http: httptest.NewServer(s.Handler()), cancel: cancel, done: make(chan error, 1)}
	go func() { ls.done <- s.Run(ctx) }()
	t.Cleanup(func() {
		ls.http.Close()
		if err := ls.stop(t); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return ls
}

// stop ends Run and returns its result; it may be called more than once.
func (ls *liveServer) stop(t *testing.T) error {
	t.Helper()
	ls.cancel()
	select {
	case err, ok := <-ls.done:
		if ok {
			close(ls.done)
		}
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return within 20 s of its context ending")
		return nil
	}
}

// post sends a WHEP offer and returns the response with its body read.
func (ls *liveServer) post(t *testing.T, ctx context.Context, camera, contentType string, body []byte) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ls.http.URL+"/whep/"+camera, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	return do(t, ls.http.Client(), req)
}

func do(t *testing.T, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return resp, string(b)
}

// whepClient is a pion peer that plays the browser: a recvonly video
// transceiver and an "events" data channel.
type whepClient struct {
	pc       *webrtc.PeerConnection
	packets  chan *rtp.Packet // video RTP, in arrival order
	messages chan string      // data channel text messages
	dcOpen   chan struct{}
	state    chan webrtc.PeerConnectionState
}

type clientOptions struct {
	// vp8Only offers VP8 instead of pion's default codecs (H.264 among them).
	vp8Only bool
	// noVideo offers only the data channel.
	noVideo bool
	// networks restricts the client's candidates (e.g. TCP only).
	networks []webrtc.NetworkType
	// sendonly offers to send video instead of receiving it.
	sendonly bool
	// loopbackOnly keeps the client's own sockets on 127.0.0.1 with mDNS
	// off, so that the sockets of the process are the server's to judge.
	loopbackOnly bool
}

func newWHEPClient(t *testing.T, co clientOptions) *whepClient {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if co.vp8Only {
		if err := m.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
			PayloadType:        96,
		}, webrtc.RTPCodecTypeVideo); err != nil {
			t.Fatal(err)
		}
	} else if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	if co.networks != nil {
		se.SetNetworkTypes(co.networks)
	}
	if co.loopbackOnly {
		se.SetIPFilter(func(ip net.IP) bool { return ip.Equal(net.IPv4(127, 0, 0, 1)) })
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	c := &whepClient{
		pc:       pc,
		packets:  make(chan *rtp.Packet, 4096),
		messages: make(chan string, 64),
		dcOpen:   make(chan struct{}),
		state:    make(chan webrtc.PeerConnectionState, 16),
	}
	t.Cleanup(c.close)
	if !co.noVideo {
		dir := webrtc.RTPTransceiverDirectionRecvonly
		if co.sendonly {
			dir = webrtc.RTPTransceiverDirectionSendonly
		}
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: dir}); err != nil {
			t.Fatal(err)
		}
	}
	dc, err := pc.CreateDataChannel(eventsLabel, nil)
	if err != nil {
		t.Fatal(err)
	}
	var openOnce sync.Once
	dc.OnOpen(func() { openOnce.Do(func() { close(c.dcOpen) }) })
	dc.OnMessage(func(msg webrtc.DataChannelMessage) {
		select {
		case c.messages <- string(msg.Data):
		default:
		}
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		select {
		case c.state <- s:
		default:
		}
	})
	// pion runs OnTrack on its own goroutine; the loop ends when pc closes.
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			select {
			case c.packets <- pkt:
			default:
			}
		}
	})
	return c
}

// offer returns the client's complete offer (ICE gathering finished).
func (c *whepClient) offer(t *testing.T, ctx context.Context) string {
	t.Helper()
	o, err := c.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(c.pc)
	if err := c.pc.SetLocalDescription(o); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		t.Fatal("client ice gathering did not complete")
	}
	return c.pc.LocalDescription().SDP
}

func (c *whepClient) answer(t *testing.T, sdp string) {
	t.Helper()
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		t.Fatalf("set answer: %v\n%s", err, sdp)
	}
}

// waitState waits for the client's peer connection to reach want.
func (c *whepClient) waitState(t *testing.T, ctx context.Context, want ...webrtc.PeerConnectionState) {
	t.Helper()
	for {
		select {
		case s := <-c.state:
			for _, w := range want {
				if s == w {
					return
				}
			}
		case <-ctx.Done():
			t.Fatalf("client peer connection never reached %v", want)
		}
	}
}

func (c *whepClient) close() { _ = c.pc.Close() }

// testHit is a hit for camera with a tiny JPEG-like payload.
func testHit(camera, id string) *face.Hit {
	label := 1
	prob := 0.9
	return &face.Hit{
		ID: id, Camera: camera, TrackID: 7,
		Box:    face.Box{X: 10, Y: 20, W: 16, H: 16},
		FrameW: 320, FrameH: 240, FacePx: 16,
		Time:  time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC),
		Match: face.Match{Known: true, Name: "Ada", Similarity: 0.71},
		Attributes: []face.Attribute{
			{Name: "glasses", Label: &label, Probability: &prob, Source: "predicted"},
		},
		SRJPEG: []byte{0xff, 0xd8, 0xff, 0xd9},
	}
}

func decodeJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.NewDecoder(strings.NewReader(s)).Decode(v); err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', 3, 64) }

// h264 is the default test stream: libx264 ultrafast, which is Constrained
// Baseline.
var h264 = rtspserver.FFmpegOptions{Codec: rtspserver.CodecH264}

// highProfileFile encodes a few seconds of testsrc2 as H.264 High profile
// (CABAC, 8x8 transforms: what most IP cameras send) for PublishFFmpeg's Input.
func highProfileFile(t *testing.T) string {
	t.Helper()
	bin, err := rtspserver.FFmpegPath()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "high.mkv")
	cmd := exec.Command(bin, "-hide_banner", "-nostdin", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "4",
		"-c:v", "libx264", "-profile:v", "high", "-preset", "veryfast", "-g", "10", "-bf", "0",
		"-pix_fmt", "yuv420p", "-threads", "1", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("encode high profile file: %v: %s", err, b)
	}
	return out
}

// waitFor polls cond until it holds or ctx ends. It is for conditions on
// counters that have no event to wait on.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}
