package httpapi_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/internal/app"
	"github.com/srdgd/srdgd/internal/testutil"
	"github.com/srdgd/srdgd/match"
	"github.com/srdgd/srdgd/publish"
	"github.com/srdgd/srdgd/publish/httpapi"
)

func modelsPresent(t *testing.T) bool {
	for _, f := range []string{"face_embedder.onnx", "face_landmarks68.onnx"} {
		if _, err := os.Stat(filepath.Join(repoRoot(t), "models", "dist", f)); err != nil {
			return false
		}
	}
	return true
}

// TestPageInBrowser logs in on the page, sees the cameras, a known and an
// unknown hit in the timeline with their images loaded, and the gallery; the
// page writes no console error on the way.
func TestPageInBrowser(t *testing.T) {
	ctx, _ := testutil.Browser(context.Background(), t, testutil.Chromium(t), testutil.BrowserOptions{})
	hist := &memHistory{}
	var yardUp atomic.Bool
	o := httpapi.Options{
		Token: token, Hits: hist, Auditor: hist,
		Cameras: func() []publish.CameraStatus {
			yard := publish.CameraStatus{Camera: "yard", State: "backoff", LastError: "connection refused"}
			if yardUp.Load() {
				yard = publish.CameraStatus{Camera: "yard", State: "connected", Connected: true, Codec: "H264"}
			}
			return []publish.CameraStatus{
				{Camera: "door", State: "connected", Connected: true, FPS: 25, Codec: "H264", Width: 1920, Height: 1080},
				yard,
				{Camera: "gate", State: "auth_failed", LastError: `camera "gate": credentials rejected 3 times (check username/password)`},
			}
		},
	}
	t0 := time.Now().Add(-time.Minute)
	unknown := makeHit(t, t0, "yard", 3, false, "")
	hist.add(unknown)
	person := ""
	if modelsPresent(t) && celebaDir(t) != "" {
		rows := celebaRows(t)
		gal := app.NewGalleryAPI(realGallery(t))
		person = "celeb " + rows[0].identity
		res, err := gal.Enrol(context.Background(), person, []httpapi.Photo{{Source: rows[0].image, Data: readFile(t, celebaPath(t, rows[0].image))}})
		if err != nil || len(res) != 1 || res[0].Result != httpapi.PhotoEnrolled {
			t.Fatalf("enrol %s: %+v %v", person, res, err)
		}
		o.Gallery = gal
		hist.add(makeHit(t, t0.Add(time.Second), "door", 0, true, person))
		// the unknown face's closest candidate is the enrolled person: its
		// card shows that person's photo beside the explanation
		unknown.Match.TopK = []face.Candidate{{PersonID: 1, Name: person, Similarity: 0.921}, {PersonID: 2, Name: "carol", Similarity: 0.918},
			{PersonID: 3, Name: "dave", Similarity: 0.915}}
		unknown.Match.Explanation = match.Explain(face.ReasonBelowThreshold, unknown.Match.TopK, match.Thresholds{Identify: 0.93, Margin: 0.02}, 0, "", "")
	} else {
		t.Log("face models or CelebA absent: no gallery photo in the timeline")
		hist.add(makeHit(t, t0.Add(time.Second), "door", 0, false, ""))
	}
	r := start(t, o)
	console := testutil.WatchConsole(ctx)

	step, _ := browserSteps(t, ctx)
	step("open the page", chromedp.Navigate(r.url+"/"))
	step("log in", chromedp.Steps(
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS("#login-form button")),
		chromedp.WaitVisible(chromedp.CSS(`.camera[data-camera="yard"]`)),
	))
	cams, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#cameras")))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"door", "connected", "25.0 fps", "yard", "backoff", "connection refused", "no live view"} {
		if !strings.Contains(cams, want) {
			t.Errorf("camera grid %q lacks %q", cams, want)
		}
	}
	// an unreachable camera's tile says that it is down and why, not that
	// video is on its way; a connected one waits for its key frame
	tiles := map[string][]string{
		"yard": {"backoff", "cannot reach the camera", "connection refused", "no live view: the camera is down, retrying"},
		"door": {"connected", "waiting for the first H.264 key frame"},
	}
	for cam, wants := range tiles {
		txt, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`.camera[data-camera="`+cam+`"]`)))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range wants {
			if !strings.Contains(txt, want) {
				t.Errorf("%s tile %q lacks %q", cam, txt, want)
			}
		}
		if cam == "yard" && strings.Contains(txt, "waiting for") {
			t.Errorf("the down camera's tile %q says it is waiting for video", txt)
		}
	}
	// the tiles follow the cameras: the yard camera comes back
	yardUp.Store(true)
	pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
	_, err = chromedp.Run(pctx, chromedp.Poll[bool](
		`(t => t.textContent.includes("waiting for the first H.264 key frame") && !t.querySelector(".last-error").textContent)(document.querySelector('.camera[data-camera="yard"]'))`,
		chromedp.WithPollingInterval(100*time.Millisecond)))
	pcancel()
	if err != nil {
		t.Fatalf("the yard tile did not follow its camera back up: %v", err)
	}
	// a camera that rejects the credentials says so on its tile, with the error
	gate, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`.camera[data-camera="gate"]`)))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"auth_failed", "check username and password", "credentials rejected 3 times"} {
		if !strings.Contains(gate, want) {
			t.Errorf("gate tile %q lacks %q", gate, want)
		}
	}

	step("open the timeline", chromedp.Steps(
		chromedp.Click(chromedp.CSS(`nav a[href="#hits"]`)),
		chromedp.WaitVisible(chromedp.CSS(".hit")),
	))
	// wait until every image of the timeline has loaded (or failed)
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_, err = chromedp.Run(sctx, chromedp.Poll[bool](
		`document.querySelectorAll(".hit").length === 2 && [...document.querySelectorAll(".hit img")].every(i => i.complete)`,
		chromedp.WithPollingInterval(50*time.Millisecond)))
	cancel()
	if err != nil {
		t.Fatalf("timeline images: %v", err)
	}
	type imgInfo struct {
		Hit, Alt string
		Width    int
	}
	imgs, err := chromedp.Run(ctx, chromedp.Evaluate[[]imgInfo](
		`[...document.querySelectorAll(".hit img")].map(i => ({hit: i.closest(".hit").dataset.id, alt: i.alt, width: i.naturalWidth}))`))
	if err != nil {
		t.Fatal(err)
	}
	widths := map[string]int{}
	for _, im := range imgs {
		widths[im.Hit[len(im.Hit)-4:]+" "+im.Alt] = im.Width
	}
	newest := hist.hits[1].ID[22:]
	want := map[string]int{
		newest + " SR": 128, newest + " LR 16px": 16, newest + " bicubic": 128,
		hist.hits[0].ID[22:] + " SR": 128, hist.hits[0].ID[22:] + " LR 16px": 16,
	}
	if person != "" {
		want[newest+" gallery: "+person] = 178 // the enrolled CelebA photo, 178x218
		want[hist.hits[0].ID[22:]+" closest: "+person] = 178
	}
	for k, w := range want {
		if widths[k] != w {
			t.Errorf("timeline image %q: naturalWidth %d, want %d (all: %v)", k, widths[k], w, widths)
		}
	}
	testutil.Screenshot(t, ctx, "timeline")
	// every card explains its decision in one sentence
	explained, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](
		`Object.fromEntries([...document.querySelectorAll(".hit")].map(c => [c.dataset.id, c.querySelector(".match .explain-text").textContent]))`))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hist.hits {
		if got := explained[h.ID]; got == "" || got != h.Match.Explanation.Text {
			t.Errorf("card %s explains %q, want %q", h.ID, got, h.Match.Explanation.Text)
		}
	}
	if person != "" {
		want := "Closest: " + person + ", 0.921, below the 0.930 needed; the top 3 are within 0.006 of each other, no real evidence."
		if got := explained[unknown.ID]; got != want {
			t.Errorf("unknown card explains %q, want %q", got, want)
		}
	}
	if person != "" {
		txt, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(".hit.known .match")))
		if err != nil || !strings.Contains(txt, person+": 0.950") {
			t.Errorf("known hit's match %q (%v)", txt, err)
		}
		step("open the gallery", chromedp.Steps(
			chromedp.Click(chromedp.CSS(`nav a[href="#gallery"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#people tr[data-name="`+person+`"]`)),
		))
		// enrol a second person through the page's form (a real CelebA photo)
		other := ""
		for _, row := range celebaRows(t) {
			if row.identity != celebaRows(t)[0].identity {
				other = row.image
				break
			}
		}
		step("enrol on the page", chromedp.Steps(
			chromedp.SendKeys(chromedp.CSS(`#enrol-form input[name="name"]`), "visitor"),
			chromedp.SetUploadFiles(chromedp.CSS(`#enrol-form input[name="photo"]`), []string{celebaPath(t, other)}),
			chromedp.Click(chromedp.CSS("#enrol-form button")),
			chromedp.WaitVisible(chromedp.CSS(`#people tr[data-name="visitor"]`)),
		))
		res, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#enrol-results")))
		if err != nil || res != other+": enrolled" {
			t.Errorf("enrol results on the page: %q (%v)", res, err)
		}
		testutil.Screenshot(t, ctx, "gallery")
	}
	if errs := console.Errors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
	// the page's image loads were audited under the login session
	var sessionImages int
	for _, a := range hist.records() {
		if a.Action == "hit.image" && strings.HasPrefix(a.Actor, "session:") {
			sessionImages++
		}
	}
	if sessionImages < 5 {
		t.Errorf("%d hit.image audit entries by the session, want >= 5", sessionImages)
	}
}
