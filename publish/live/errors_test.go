package live

import (
	"bytes"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/srdgd/srdgd/internal/rtspserver"
	"github.com/srdgd/srdgd/internal/testutil"
)

func TestWHEPErrors(t *testing.T) {
	requireFFmpeg(t)
	testutil.LeakCheck(t)
	ctx := testutil.Context(t, 60*time.Second)

	// "dark" points at a path nobody publishes to: the camera never delivers.
	dark, err := rtspserver.Start(rtspserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dark.Close)
	ls := startLive(t, Options{
		Cameras: map[string]Source{
			"front": startCamera(t, "front", h264),
			"hevc":  startCamera(t, "hevc", rtspserver.FFmpegOptions{Codec: rtspserver.CodecH265}),
			"dark":  runCamera(t, "dark", dark.URL("nothing")),
		},
		FirstVideoTimeout: 300 * time.Millisecond,
	})

	// The short FirstVideoTimeout is for "dark"; wait until the others have
	// shown their codec, so a slow start-up cannot turn 415 into 503.
	waitFor(t, ctx, "codecs of front and hevc", func() bool {
		n := 0
		for _, ci := range ls.srv.Cameras() {
			if ci.Codec != "" {
				n++
			}
		}
		return n == 2
	})
	h264Offer := []byte(newWHEPClient(t, clientOptions{}).offer(t, ctx))
	vp8Offer := []byte(newWHEPClient(t, clientOptions{vp8Only: true}).offer(t, ctx))
	noVideoOffer := []byte(newWHEPClient(t, clientOptions{noVideo: true}).offer(t, ctx))

	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        []byte
		wantStatus  int
		wantBody    string
	}{
		{"unknown camera", "POST", "/whep/nope", "application/sdp", h264Offer, 404, "unknown camera"},
		{"wrong content type", "POST", "/whep/front", "application/json", h264Offer, 415, "want application/sdp"},
		{"garbage sdp", "POST", "/whep/front", "application/sdp", []byte("hello, world"), 400, "bad sdp offer"},
		{"empty body", "POST", "/whep/front", "application/sdp", nil, 400, "bad sdp offer"},
		{"oversized body", "POST", "/whep/front", "application/sdp", bytes.Repeat([]byte("a=x\r\n"), 20000), 413, "larger than"},
		{"no video section", "POST", "/whep/front", "application/sdp", noVideoOffer, 400, "no video section"},
		{"vp8 only", "POST", "/whep/front", "application/sdp", vp8Offer, 400, "no H.264"},
		{"h265 camera", "POST", "/whep/hevc", "application/sdp", h264Offer, 415, "browsers need H.264"},
		{"camera without video", "POST", "/whep/dark", "application/sdp", h264Offer, 503, "has not sent video"},
		{"patch is not supported", "PATCH", "/whep/front/0123", "application/trickle-ice-sdpfrag", []byte("a=x"), 405, "trickle"},
		{"delete unknown session", "DELETE", "/whep/front/0123", "", nil, 404, "unknown session"},
		{"get on a camera", "GET", "/whep/front", "", nil, 405, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(ctx, tc.method, ls.http.URL+tc.path, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			resp, body := do(t, ls.http.Client(), req)
			if resp.StatusCode != tc.wantStatus || !strings.Contains(body, tc.wantBody) {
				t.Fatalf("%s %s: %d %q, want %d containing %q", tc.method, tc.path, resp.StatusCode, body, tc.wantStatus, tc.wantBody)
			}
		})
	}

	// The camera list tells the page which cameras it can play and why not.
	resp, body := do(t, ls.http.Client(), mustRequest(t, ctx, http.MethodGet, ls.http.URL+"/whep"))
	var list struct{ Cameras []CameraInfo }
	decodeJSON(t, body, &list)
	if resp.StatusCode != http.StatusOK || len(list.Cameras) != 3 {
		t.Fatalf("GET /whep: %d %s", resp.StatusCode, body)
	}
	want := map[string]struct {
		codec    string
		viewable bool
	}{"dark": {"", false}, "front": {"H264", true}, "hevc": {"H265", false}}
	for _, ci := range list.Cameras {
		if w := want[ci.Name]; ci.Codec != w.codec || ci.Viewable != w.viewable || (!ci.Viewable && ci.Reason == "") {
			t.Errorf("camera %+v, want codec %q viewable %v and a reason when not viewable", ci, w.codec, w.viewable)
		}
	}
}

func TestOptionsValidation(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"udp range reversed", Options{UDPPortMin: 5000, UDPPortMax: 4000}, "udp ports 5000-4000"},
		{"udp range half set", Options{UDPPortMin: 5000}, "udp ports 5000-0"},
		{"tcp listen without port", Options{TCPListen: "0.0.0.0"}, `tcp listen "0.0.0.0"`},
		{"bad nat ip", Options{NAT1To1IPs: []string{"box.example"}}, `nat 1:1 ip "box.example"`},
		{"bad ice url", Options{ICEServers: []ICEServer{{URLs: []string{"http://x"}}}}, `url "http://x"`},
		{"ice server without urls", Options{ICEServers: []ICEServer{{}}}, "ice server 0: no urls"},
		{"negative viewers", Options{MaxViewers: -1}, "max viewers -1"},
		{"base path with slash", Options{BasePath: "/live/"}, `base path "/live/"`},
		{"nil source", Options{Cameras: map[string]Source{"x": nil}}, `"x": nil source`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if _, err := New(Options{UDPPortMin: 50000, UDPPortMax: 50100, TCPListen: ":8189",
		NAT1To1IPs: []string{"203.0.113.7"}, ICEServers: []ICEServer{{URLs: []string{"stun:stun.example.net:3478"}}}}); err != nil {
		t.Fatalf("valid options: %v", err)
	}
}

func TestRunFailsWhenTCPPortTaken(t *testing.T) {
	testutil.LeakCheck(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, err := New(Options{TCPListen: ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Run(testutil.Context(t, 10*time.Second))
	if err == nil || !strings.Contains(err.Error(), "ice tcp listen") {
		t.Fatalf("Run: %v, want an ice tcp listen error", err)
	}
}

// Behind a 1:1 NAT the answer announces the public IPv4 address instead of the
// host's IPv4 addresses (IPv6 ones are not NATed and stay).
func TestAnswerAnnouncesNAT1To1(t *testing.T) {
	requireFFmpeg(t)
	testutil.LeakCheck(t)
	ctx := testutil.Context(t, 60*time.Second)
	ls := startLive(t, Options{
		Cameras:    map[string]Source{"front": startCamera(t, "front", h264)},
		NAT1To1IPs: []string{"203.0.113.7"},
	})
	c := newWHEPClient(t, clientOptions{})
	resp, answer := ls.post(t, ctx, "front", "application/sdp", []byte(c.offer(t, ctx)))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d %s", resp.StatusCode, answer)
	}
	var cands []string
	for _, line := range strings.Split(answer, "\r\n") {
		if strings.HasPrefix(line, "a=candidate:") {
			cands = append(cands, line)
		}
	}
	if len(cands) == 0 {
		t.Fatalf("answer has no candidates:\n%s", answer)
	}
	v4 := 0
	for _, cand := range cands {
		fields := strings.Fields(cand) // foundation component transport priority address port typ type
		if len(fields) < 8 {
			t.Fatalf("candidate %q", cand)
		}
		if ip := net.ParseIP(fields[4]); ip == nil || ip.To4() == nil {
			continue
		}
		v4++
		if fields[4] != "203.0.113.7" {
			t.Fatalf("candidate %q announces %s, not the NAT address", cand, fields[4])
		}
	}
	if v4 == 0 {
		t.Fatalf("no IPv4 candidate in %q", cands)
	}
}
