package live

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/ingest"
	"github.com/srdgd/srdgd/internal/queue"
	"github.com/srdgd/srdgd/internal/testutil"
)

var locationRE = regexp.MustCompile(`^/whep/front/[0-9a-f]{32}$`)

// connect runs the WHEP exchange for c against camera and returns the
// session's Location.
func connect(t *testing.T, ctx context.Context, ls *liveServer, c *whepClient, camera string) string {
	t.Helper()
	resp, body := ls.post(t, ctx, camera, "application/sdp", []byte(c.offer(t, ctx)))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /whep/%s: %d %s", camera, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/sdp" {
		t.Fatalf("answer content type %q", ct)
	}
	c.answer(t, body)
	return resp.Header.Get("Location")
}

// nalTypes depacketises RTP packets (RFC 6184) and returns the NAL unit types
// of the first access unit (up to the first marker bit) and how many packets
// that took.
func firstUnit(t *testing.T, ctx context.Context, packets <-chan *rtp.Packet) (types []byte, ts uint32) {
	t.Helper()
	var dep codecs.H264Packet
	for {
		var pkt *rtp.Packet
		select {
		case pkt = <-packets:
		case <-ctx.Done():
			t.Fatalf("no complete access unit arrived (nal types so far %v)", types)
		}
		annexB, err := dep.Unmarshal(pkt.Payload)
		if err != nil {
			t.Fatalf("depacketise: %v", err)
		}
		types = append(types, annexBTypes(annexB)...)
		if pkt.Marker {
			return types, pkt.Timestamp
		}
	}
}

// annexBTypes lists the NAL unit types in an Annex B byte stream.
func annexBTypes(b []byte) []byte {
	var types []byte
	for i := 0; i+3 < len(b); i++ {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			types = append(types, b[i+3]&0x1f)
			i += 3
		}
	}
	return types
}

func TestWHEPSessionGoClient(t *testing.T) {
	requireFFmpeg(t)
	testutil.LeakCheck(t)
	ctx := testutil.Context(t, 60*time.Second)
	cam := startCamera(t, "front", h264)
	ls := startLive(t, Options{Cameras: map[string]Source{"front": cam}, MaxViewers: 1})

	c := newWHEPClient(t, clientOptions{})
	loc := connect(t, ctx, ls, c, "front")
	if !locationRE.MatchString(loc) {
		t.Fatalf("Location %q, want %s", loc, locationRE)
	}
	c.waitState(t, ctx, webrtc.PeerConnectionStateConnected)

	// The first access unit a viewer gets is a key unit with its parameter sets.
	types, ts0 := firstUnit(t, ctx, c.packets)
	if !containsAll(types, 7, 8, 5) {
		t.Fatalf("first access unit has NAL types %v, want SPS (7), PPS (8) and IDR (5)", types)
	}
	// Later units follow at the camera's 25 fps: 3600 ticks of 90 kHz apart.
	for i := 1; i <= 5; i++ {
		_, ts := firstUnit(t, ctx, c.packets)
		if want := ts0 + uint32(i*3600); ts != want {
			t.Fatalf("access unit %d: rtp timestamp %d, want %d (+%d)", i, ts, want, i*3600)
		}
	}

	// A hit of another camera is not delivered; one of this camera is.
	if err := ls.srv.Publish(ctx, testHit("back", "hit-back")); err != nil {
		t.Fatal(err)
	}
	if err := ls.srv.Publish(ctx, testHit("front", "hit-front")); err != nil {
		t.Fatal(err)
	}
	var msg struct {
		Type        string `json:"type"`
		ID          string `json:"id"`
		Camera      string `json:"camera"`
		TrackID     uint64 `json:"track_id"`
		Box         struct{ X, Y, W, H float64 }
		FrameWidth  int    `json:"frame_width"`
		FrameHeight int    `json:"frame_height"`
		FacePx      int    `json:"face_px"`
		Time        string `json:"time"`
		Image       struct {
			SRJPEG string `json:"sr_jpeg"`
		} `json:"image"`
		Match struct {
			Known      bool    `json:"known"`
			Name       string  `json:"name"`
			Similarity float64 `json:"similarity"`
		} `json:"match"`
		Attributes []struct {
			Name  string `json:"name"`
			Label *int   `json:"label"`
		} `json:"attributes"`
	}
	select {
	case m := <-c.messages:
		decodeJSON(t, m, &msg)
	case <-ctx.Done():
		t.Fatal("no hit message on the events data channel")
	}
	if msg.Type != "hit" || msg.ID != "hit-front" || msg.Camera != "front" || msg.TrackID != 7 ||
		msg.Box.W != 16 || msg.FrameWidth != 320 || msg.FrameHeight != 240 || msg.FacePx != 16 ||
		msg.Time != "2026-11-26T12:00:00Z" || !msg.Match.Known || msg.Match.Name != "Ada" || msg.Match.Similarity != 0.71 ||
		len(msg.Attributes) != 1 || msg.Attributes[0].Name != "glasses" || *msg.Attributes[0].Label != 1 {
		t.Fatalf("hit message %+v", msg)
	}
	if jpeg, err := base64.StdEncoding.DecodeString(msg.Image.SRJPEG); err != nil || string(jpeg) != "\xff\xd8\xff\xd9" {
		t.Fatalf("image.sr_jpeg %q: %v", msg.Image.SRJPEG, err)
	}

	// The camera list shows the viewer.
	resp, body := do(t, ls.http.Client(), mustRequest(t, ctx, http.MethodGet, ls.http.URL+"/whep"))
	var list struct{ Cameras []CameraInfo }
	decodeJSON(t, body, &list)
	if resp.StatusCode != http.StatusOK || len(list.Cameras) != 1 || !list.Cameras[0].Viewable ||
		list.Cameras[0].Codec != "H264" || list.Cameras[0].Viewers != 1 {
		t.Fatalf("GET /whep: %d %s", resp.StatusCode, body)
	}

	// MaxViewers is 1: a second viewer is refused until the first leaves.
	c2 := newWHEPClient(t, clientOptions{})
	offer2 := []byte(c2.offer(t, ctx))
	resp, body = ls.post(t, ctx, "front", "application/sdp", offer2)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "too many viewers") {
		t.Fatalf("second viewer: %d %s, want 503 too many viewers", resp.StatusCode, body)
	}

	st := ls.srv.Stats()
	if len(st) != 1 || st[0].Viewers != 1 || st[0].Sessions != 1 || st[0].Rejected != 1 ||
		st[0].PacketsSent == 0 || st[0].BytesSent == 0 || st[0].UnitsSent < 6 {
		t.Fatalf("stats %+v", st)
	}

	// DELETE ends the session: the server closes the peer connection.
	resp, body = do(t, ls.http.Client(), mustRequest(t, ctx, http.MethodDelete, ls.http.URL+loc))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE %s: %d %s", loc, resp.StatusCode, body)
	}
	c.waitState(t, ctx, webrtc.PeerConnectionStateClosed, webrtc.PeerConnectionStateFailed,
		webrtc.PeerConnectionStateDisconnected)
	if st := ls.srv.Stats(); st[0].Viewers != 0 || st[0].HitsSent != 1 {
		t.Fatalf("stats after DELETE %+v, want 0 viewers and 1 hit sent", st)
	}
	resp, _ = do(t, ls.http.Client(), mustRequest(t, ctx, http.MethodDelete, ls.http.URL+loc))
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("second DELETE %s: %d, want 404", loc, resp.StatusCode)
	}

	// The slot is free again; this viewer is still connected when Run ends,
	// which must close it and return nil.
	resp, body = ls.post(t, ctx, "front", "application/sdp", offer2)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("viewer after DELETE: %d %s", resp.StatusCode, body)
	}
	c2.answer(t, body)
	c2.waitState(t, ctx, webrtc.PeerConnectionStateConnected)
	firstUnit(t, ctx, c2.packets)
	if err := ls.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if st := ls.srv.Stats(); st[0].Viewers != 0 {
		t.Fatalf("viewers after Run returned: %+v", st)
	}
	c2.waitState(t, ctx, webrtc.PeerConnectionStateClosed, webrtc.PeerConnectionStateFailed,
		webrtc.PeerConnectionStateDisconnected)
}

func TestWHEPOverICETCP(t *testing.T) {
	requireFFmpeg(t)
	testutil.LeakCheck(t)
	ctx := testutil.Context(t, 60*time.Second)
	cam := startCamera(t, "front", h264)
	ls := startLive(t, Options{Cameras: map[string]Source{"front": cam}, TCPListen: "127.0.0.1:0"})

	c := newWHEPClient(t, clientOptions{networks: []webrtc.NetworkType{webrtc.NetworkTypeTCP4}})
	connect(t, ctx, ls, c, "front")
	c.waitState(t, ctx, webrtc.PeerConnectionStateConnected)
	if types, _ := firstUnit(t, ctx, c.packets); !containsAll(types, 7, 8, 5) {
		t.Fatalf("first access unit over ICE-TCP has NAL types %v", types)
	}
	pair, err := selectedPair(c.pc)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(pair, "tcp") {
		t.Fatalf("selected candidate pair %s, want tcp", pair)
	}
}

func selectedPair(pc *webrtc.PeerConnection) (string, error) {
	sctp := pc.SCTP()
	if sctp == nil {
		return "", errors.New("no selected candidate pair")
	}
	p, err := sctp.Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || p == nil {
		return "", errors.New("no selected candidate pair")
	}
	return p.Local.Protocol.String() + " " + p.Local.String() + " <-> " + p.Remote.String(), nil
}

func containsAll(have []byte, want ...byte) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}

func mustRequest(t *testing.T, ctx context.Context, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// Hits published while a viewer cannot take them (here: before its data
// channel exists) never block Publish; the viewer keeps the newest
// EventQueue of them.
func TestHitsDropOldest(t *testing.T) {
	requireFFmpeg(t)
	testutil.LeakCheck(t)
	ctx := testutil.Context(t, 60*time.Second)
	cam := startCamera(t, "front", h264)
	ls := startLive(t, Options{Cameras: map[string]Source{"front": cam}, EventQueue: 4})

	c := newWHEPClient(t, clientOptions{})
	resp, answer := ls.post(t, ctx, "front", "application/sdp", []byte(c.offer(t, ctx)))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d %s", resp.StatusCode, answer)
	}
	// The client has not applied the answer: nothing can be delivered yet.
	for i := range 10 {
		if err := ls.srv.Publish(ctx, testHit("front", "hit-"+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if st := ls.srv.Stats()[0]; st.HitsDropped != 6 || st.HitsSent != 0 {
		t.Fatalf("stats %+v, want 6 hits dropped and none sent", st)
	}
	c.answer(t, answer)
	for i := 6; i < 10; i++ {
		var msg struct{ ID string }
		select {
		case m := <-c.messages:
			decodeJSON(t, m, &msg)
		case <-ctx.Done():
			t.Fatalf("hit %d never arrived", i)
		}
		if want := "hit-" + strconv.Itoa(i); msg.ID != want {
			t.Fatalf("got %s, want %s (the oldest hits go first)", msg.ID, want)
		}
	}
}

func TestCORSAndOptions(t *testing.T) {
	cam, err := ingest.NewCamera(ingest.CameraOptions{Name: "front", URL: "rtsp://127.0.0.1:1/cam"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		origin     string
		path       string
		wantStatus int
		wantHeader map[string]string
	}{
		{"same origin", "", "/whep/front", 204, map[string]string{
			"Accept-Post": "application/sdp", "Access-Control-Allow-Origin": "",
			"Link": `<stun:stun.example.net:3478>; rel="ice-server"`}},
		{"any origin", "*", "/whep/front", 204, map[string]string{
			"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET, POST, DELETE, PATCH, OPTIONS",
			"Access-Control-Expose-Headers": "Location, Link, Accept-Post"}},
		{"session", "https://ops.example", "/whep/front/0123", 204, map[string]string{
			"Access-Control-Allow-Origin": "https://ops.example", "Vary": "Origin", "Allow": "DELETE, PATCH, OPTIONS"}},
		{"unknown camera", "*", "/whep/nope", 404, map[string]string{"Access-Control-Allow-Origin": "*"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(Options{Cameras: map[string]Source{"front": cam}, AllowOrigin: tc.origin,
				ICEServers: []ICEServer{{URLs: []string{"stun:stun.example.net:3478"}}}})
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodOptions, tc.path, nil))
			if rec.Code != tc.wantStatus {
				t.Fatalf("OPTIONS %s: %d, want %d", tc.path, rec.Code, tc.wantStatus)
			}
			for k, v := range tc.wantHeader {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
		})
	}
}

// countingSource is a real camera that counts its live subscriptions.
type countingSource struct {
	*ingest.Camera
	active atomic.Int32
}

func (c *countingSource) SubscribeAccessUnits(n int) *queue.Queue[*face.AccessUnit] {
	c.active.Add(1)
	return c.Camera.SubscribeAccessUnits(n)
}

func (c *countingSource) UnsubscribeAccessUnits(q *queue.Queue[*face.AccessUnit]) {
	c.active.Add(-1)
	c.Camera.UnsubscribeAccessUnits(q)
}

// The camera's access units are subscribed to only while someone watches
// (after one look at start-up to learn the codec).
func TestSubscribesOnlyWhileWatched(t *testing.T) {
	requireFFmpeg(t)
	testutil.LeakCheck(t)
	ctx := testutil.Context(t, 60*time.Second)
	src := &countingSource{Camera: startCamera(t, "front", h264)}
	ls := startLive(t, Options{Cameras: map[string]Source{"front": src}})

	waitFor(t, ctx, "codec learnt and subscription dropped", func() bool {
		return len(ls.srv.Cameras()) == 1 && ls.srv.Cameras()[0].Viewable && src.active.Load() == 0
	})
	c := newWHEPClient(t, clientOptions{})
	loc := connect(t, ctx, ls, c, "front")
	firstUnit(t, ctx, c.packets)
	if n := src.active.Load(); n != 1 {
		t.Fatalf("%d subscriptions while watched, want 1", n)
	}
	resp, body := do(t, ls.http.Client(), mustRequest(t, ctx, http.MethodDelete, ls.http.URL+loc))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %d %s", resp.StatusCode, body)
	}
	waitFor(t, ctx, "subscription dropped after the last viewer left", func() bool { return src.active.Load() == 0 })
}
