package live

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/srdgd/srdgd/internal/rtspserver"
	"github.com/srdgd/srdgd/internal/testutil"
)

// TestBrowserPlaysLiveView drives headless Chromium through testdata/whep.html:
// WHEP with fetch and RTCPeerConnection, the camera's H.264 decoded in a
// <video>, and a hit arriving on the events data channel.
func TestBrowserPlaysLiveView(t *testing.T) {
	requireFFmpeg(t)
	chromium := testutil.Chromium(t)
	tests := []struct {
		name    string
		stream  func(t *testing.T) rtspserver.FFmpegOptions
		profile string // profile_idc and constraint flags of the SPS
	}{
		{"constrained baseline", func(*testing.T) rtspserver.FFmpegOptions { return h264 }, "42c0"},
		{"high profile", func(t *testing.T) rtspserver.FFmpegOptions {
			return rtspserver.FFmpegOptions{Input: highProfileFile(t)}
		}, "6400"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			testutil.LeakCheck(t)
			browserPlays(t, chromium, tc.stream(t), tc.profile)
		})
	}
}

func browserPlays(t *testing.T, chromium string, stream rtspserver.FFmpegOptions, wantProfile string) {
	page, err := os.ReadFile("testdata/whep.html")
	if err != nil {
		t.Fatal(err)
	}
	ctx := testutil.Context(t, 90*time.Second)
	cam := startCamera(t, "front", stream)
	ls := startLive(t, Options{Cameras: map[string]Source{"front": cam}})

	// The page and WHEP share an origin, as behind the daemon's HTTP server.
	mux := http.NewServeMux()
	mux.Handle("/whep", ls.srv.Handler())
	mux.Handle("/whep/", ls.srv.Handler())
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(page)
	})
	web := httptest.NewServer(mux)
	t.Cleanup(web.Close)

	bctx, _ := testutil.Browser(ctx, t, chromium, testutil.BrowserOptions{WebRTC: true, Logf: t.Logf})

	failIfError := func(what string) {
		t.Helper()
		jsErr, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`String(window.live.error || "")`))
		st, _ := chromedp.Run(bctx, chromedp.Evaluate[string](
			`JSON.stringify({status: live.status, pc: live.pcState, dc: live.dcOpen, loc: live.location})`))
		t.Fatalf("%s: page error %q, state %s", what, jsErr, st)
	}
	poll := func(what, expr string, timeout time.Duration) {
		t.Helper()
		// The predicate is also true on a page error, so a failed POST does
		// not wait out the timeout.
		if _, err := chromedp.Run(bctx, chromedp.Poll[any](`(window.live && window.live.error) ? "error" : (`+expr+`)`,
			chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
			failIfError(what + ": " + err.Error())
		}
		if jsErr, err := chromedp.Run(bctx, chromedp.Evaluate[string](`String(window.live.error || "")`)); err != nil || jsErr != "" {
			failIfError(what)
		}
	}

	if err := chromedp.Do(bctx, chromedp.Navigate(web.URL+"/?camera=front")); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	poll("whep answer", `live.status === "answered" && live.location !== null`, 30*time.Second)

	// The session exists now: a hit published for the camera reaches the page.
	if err := ls.srv.Publish(ctx, testHit("front", "hit-browser")); err != nil {
		t.Fatal(err)
	}
	poll("decoded frames", `(() => { const v = document.getElementById("video");
		return v.getVideoPlaybackQuality().totalVideoFrames > 0 && v.currentTime > 0; })()`, 40*time.Second)
	t0, err := chromedp.Run(bctx, chromedp.Evaluate[float64](`document.getElementById("video").currentTime`))
	if err != nil {
		t.Fatal(err)
	}
	poll("playback advancing", `document.getElementById("video").currentTime > `+formatFloat(t0+0.5), 20*time.Second)

	type videoState struct {
		Width, Height int
		Frames        int
		Dropped       int
		Time          float64
	}
	video, err := chromedp.Run(bctx, chromedp.Evaluate[videoState](`(() => { const v = document.getElementById("video");
		const q = v.getVideoPlaybackQuality();
		return {Width: v.videoWidth, Height: v.videoHeight, Frames: q.totalVideoFrames, Dropped: q.droppedVideoFrames, Time: v.currentTime}; })()`))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("chromium decoded %d frames (%d dropped) of %dx%d, played %.2f s", video.Frames, video.Dropped, video.Width, video.Height, video.Time)
	if info := ls.srv.cams["front"].info.Load(); info == nil || fmt.Sprintf("%x", info.profile[:]) != wantProfile {
		t.Fatalf("camera stream info %+v, want profile %s", info, wantProfile)
	}
	if video.Width != 320 || video.Height != 240 {
		t.Fatalf("video %dx%d, want the camera's 320x240", video.Width, video.Height)
	}

	poll("hit on the data channel", `live.hits.length > 0`, 20*time.Second)
	type pageHit struct {
		Type, ID, Camera string
		SR               string
		Known            bool
		Name             string
	}
	hit, err := chromedp.Run(bctx, chromedp.Evaluate[pageHit](`(() => { const h = live.hits[0];
		return {Type: h.type, ID: h.id, Camera: h.camera, SR: h.image.sr_jpeg, Known: h.match.known, Name: h.match.name}; })()`))
	if err != nil {
		t.Fatal(err)
	}
	if hit.Type != "hit" || hit.ID != "hit-browser" || hit.Camera != "front" || hit.SR != "/9j/2Q==" || !hit.Known || hit.Name != "Ada" {
		t.Fatalf("hit in the page %+v", hit)
	}

	// The page's DELETE ends the session: it answers once the server has closed
	// the peer connection.
	status, err := chromedp.Run(bctx, chromedp.Evaluate[int](`fetch(live.location, {method: "DELETE"}).then((r) => r.status)`,
		chromedp.EvalAwaitPromise))
	if err != nil || status != http.StatusOK {
		t.Fatalf("DELETE from the page: %d, %v", status, err)
	}
	if st := ls.srv.Stats(); st[0].Viewers != 0 || st[0].Sessions != 1 || st[0].UnitsSent == 0 {
		t.Fatalf("stats %+v", st)
	}
}
