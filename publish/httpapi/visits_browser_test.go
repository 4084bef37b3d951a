package httpapi_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/internal/app"
	"github.com/srdgd/srdgd/internal/testutil"
	"github.com/srdgd/srdgd/publish/httpapi"
)

// TestVisitTimelineInBrowser opens the Visits view on the real history
// store: each card shows the best SR shot, LR and bicubic, the decision with
// its confidence, open or ended, the top candidates with their gallery
// photos (when the face models and CelebA are here to enrol them) and fused
// scores, and the strip of shots, every image loaded. While the view is
// open, a new visit and the end of an open one reach the page without a
// reload; no console error on the way.
func TestVisitTimelineInBrowser(t *testing.T) {
	ctx, _ := testutil.Browser(context.Background(), t, testutil.Chromium(t), testutil.BrowserOptions{Width: 1280, Height: 1000})
	store := openHistory(t)
	api := app.HistoryAPI{S: store}
	o := httpapi.Options{Token: token, Hits: api, Visits: api, Auditor: api}
	ada, bob := "Ada Lovelace", "Bob"
	photos := false
	if modelsPresent(t) && celebaDir(t) != "" {
		rows := celebaRows(t)
		gal := app.NewGalleryAPI(realGallery(t))
		enrolled := map[string]bool{}
		for _, row := range rows {
			name := map[int]string{0: ada, 1: bob}[len(enrolled)]
			if name == "" {
				break
			}
			if enrolled[row.identity] {
				continue
			}
			res, err := gal.Enrol(context.Background(), name, []httpapi.Photo{{Source: row.image, Data: readFile(t, celebaPath(t, row.image))}})
			if err != nil || len(res) != 1 || res[0].Result != httpapi.PhotoEnrolled {
				t.Fatalf("enrol %s: %+v %v", name, res, err)
			}
			enrolled[row.identity] = true
		}
		o.Gallery, photos = gal, true
	} else {
		t.Log("face models or CelebA absent: no gallery photos on the cards")
	}
	t0 := time.Now().Add(-10 * time.Minute).UTC().Truncate(time.Second)
	named := storeVisit(t, store, t0, 1, 0, visitSpec{"door", ada, []string{ada, bob}, 3, face.VisitEnd})
	open := storeVisit(t, store, t0.Add(time.Minute), 2, 1, visitSpec{"door", bob, []string{bob, ada}, 2, face.VisitUpdate})
	r := start(t, o)
	console := testutil.WatchConsole(ctx)
	step, poll := browserSteps(t, ctx)
	step("open the page and log in", chromedp.Steps(
		chromedp.Navigate(r.url+"/#visits"),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS("#login-form button")),
	))
	card := func(id string) string { return `document.querySelector('.visit[data-id="` + id + `"]')` }
	poll("both visits on the timeline with their images", `document.querySelectorAll(".visit").length === 2 &&
		[...document.querySelectorAll(".visit img")].every((i) => i.complete && i.naturalWidth > 0)`)
	type imgInfo struct {
		Alt           string
		Width, Height int
	}
	imgs, err := chromedp.Run(ctx, chromedp.Evaluate[[]imgInfo](`[...`+card(named.ID)+`.querySelectorAll("img")].map((i) => ({Alt: i.alt, Width: i.naturalWidth, Height: i.naturalHeight}))`))
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[string]int{}
	shots := 0
	for _, im := range imgs {
		sizes[im.Alt] = im.Width
		if strings.HasPrefix(im.Alt, "shot ") {
			shots++
		}
	}
	for alt, w := range map[string]int{"best SR": 128, "LR": 16, "bicubic": 128} {
		if sizes[alt] != w {
			t.Errorf("named visit's %q: naturalWidth %d, want %d (all %v)", alt, sizes[alt], w, sizes)
		}
	}
	if shots != 3 {
		t.Errorf("%d shots in the strip, want 3 (%v)", shots, sizes)
	}
	if photos && (sizes["gallery: "+ada] != 178 || sizes["gallery: "+bob] != 178) {
		t.Errorf("candidate photos: %v, want both enrolled CelebA photos (178 wide)", sizes)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`.visit[data-id="`+named.ID+`"] .facts`)))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{ada, "confidence 91%", "ended", "door, track 1", "3 shots fused (descriptor)", "fused 0.800", bob, "fused 0.700"} {
		if !strings.Contains(text, want) {
			t.Errorf("named visit's card %q lacks %q", text, want)
		}
	}
	openText, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`.visit[data-id="`+open.ID+`"] .state`)))
	if openText != "open" {
		t.Errorf("open visit's state %q, want open", openText)
	}
	testutil.Screenshot(t, ctx, "visits")

	// live: a new visit (unknown, ended) and the open one ends, named
	// someone else; the page shows both without a reload
	fresh := storeVisit(t, store, t0.Add(2*time.Minute), 3, 2, visitSpec{"yard", "", []string{bob}, 1, face.VisitEnd})
	ended := *open
	ended.State, ended.Rev, ended.End = face.VisitEnd, open.Rev+2, open.LastSeen
	ended.Decision.Name, ended.Decision.Confidence = ada, 0.55
	if err := store.PublishVisit(ctx, &ended); err != nil {
		t.Fatal(err)
	}
	poll("the new visit on top and the open one ended", fmt.Sprintf(`(() => {
		const cards = [...document.querySelectorAll(".visit")];
		return cards.length === 3 && cards[0].dataset.id === %q && cards[0].classList.contains("unknown") &&
			%s.dataset.state === "end" && %s.querySelector(".confidence").textContent.includes("55%%") &&
			[...document.querySelectorAll(".visit img")].every((i) => i.complete && i.naturalWidth > 0); })()`,
		fresh.ID, card(open.ID), card(open.ID)))
	testutil.Screenshot(t, ctx, "visits-live")
	if errs := console.Errors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
	// the page's loads were audited under its session
	entries, err := store.AuditLog(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var lists, images int
	for _, e := range entries {
		switch {
		case e.Action == "visits.list" && strings.Contains(e.Actor, "session:"):
			lists++
		case e.Action == "hit.image" && strings.Contains(e.Actor, "session:"):
			images++
		}
	}
	// the page polled the list every few seconds: one entry per minute
	// covers the same list (listAuditWindow), each image is its own entry
	if lists < 1 || lists > 2 || images < 10 {
		t.Errorf("%d visits.list and %d hit.image audit entries by the session, want 1 or 2 (one a minute) and >= 10", lists, images)
	}
}
