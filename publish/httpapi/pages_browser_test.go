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
	"github.com/srdgd/srdgd/publish"
	"github.com/srdgd/srdgd/publish/httpapi"
)

// TestPagesKeepUpInBrowser is issue 18's "pages that keep up" on the real
// history store in headless Chromium: the Hits view takes new hits without
// a reload; its person filter finds the person as the match and as a mere
// candidate, in any case, and suggests the enrolled names and configured
// cameras; a camera that does not exist is said not to exist; the audit
// page lists newest first, groups one hit's image fetches into one line
// and filters by action and target.
func TestPagesKeepUpInBrowser(t *testing.T) {
	ctx, _ := testutil.Browser(context.Background(), t, testutil.Chromium(t), testutil.BrowserOptions{Width: 1280, Height: 1000})
	store := openHistory(t)
	hapi := app.HistoryAPI{S: store}
	o := httpapi.Options{Token: token, Hits: hapi, Auditor: hapi,
		Cameras: func() []publish.CameraStatus {
			return []publish.CameraStatus{{Camera: "door", State: "connected", Connected: true}, {Camera: "yard", State: "connected", Connected: true}}
		}}
	people := false
	if modelsPresent(t) && celebaDir(t) != "" {
		gal := app.NewGalleryAPI(realGallery(t))
		row := celebaRows(t)[0]
		res, err := gal.Enrol(context.Background(), "Ada Lovelace", []httpapi.Photo{{Source: row.image, Data: readFile(t, celebaPath(t, row.image))}})
		if err != nil || len(res) != 1 || res[0].Result != httpapi.PhotoEnrolled {
			t.Fatalf("enrol: %+v %v", res, err)
		}
		o.Gallery, people = gal, true
	} else {
		t.Log("face models or CelebA absent: no enrolled names to suggest")
	}
	t0 := time.Now().Add(-10 * time.Minute).UTC()
	named := makeHit(t, t0, "door", 0, true, "Ada Lovelace")
	cand := makeHit(t, t0.Add(time.Minute), "yard", 1, false, "")
	cand.Match.TopK = []face.Candidate{{PersonID: 2, Name: "Bob", Similarity: 0.5}, {PersonID: 1, Name: "Ada Lovelace", Similarity: 0.45}}
	other := makeHit(t, t0.Add(2*time.Minute), "door", 2, false, "")
	other.SR = face.SR{Sampler: face.DirectSampler, Scale: 3, LRSize: 16} // read without SR (srdg.direct_side)
	for _, h := range []*face.Hit{named, cand, other} {
		if err := store.Publish(context.Background(), h); err != nil {
			t.Fatal(err)
		}
	}
	r := start(t, o)
	console := testutil.WatchConsole(ctx)
	step, poll := browserSteps(t, ctx)
	ids := `[...document.querySelectorAll("#timeline .hit")].map((c) => c.dataset.id).join(",")`
	filter := func(camera, person string) {
		t.Helper()
		set := fmt.Sprintf(`(() => { const f = document.querySelector("#hit-filter");
			f.elements.camera.value = %q; f.elements.person.value = %q; return true; })()`, camera, person)
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](set)); err != nil {
			t.Fatal(err)
		}
		step("filter camera="+camera+" person="+person, chromedp.Click(chromedp.CSS("#hit-filter button")))
	}
	step("open the hits and log in", chromedp.Steps(
		chromedp.Navigate(r.url+"/#hits"),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS("#login-form button")),
	))
	poll("the three hits, newest first", fmt.Sprintf(`%s === %q`, ids, other.ID+","+cand.ID+","+named.ID))
	poll("a face read without SR says so", fmt.Sprintf(`(c => c && c.textContent.includes("none: the crop read directly (scale 3)") && c.textContent.includes("read directly")
		&& !c.textContent.includes("0 steps"))(document.querySelector('#timeline .hit[data-id="%s"]'))`, other.ID))
	// suggestions: the configured cameras, the enrolled people
	wantOpts := `["door","yard"]`
	if people {
		wantOpts = `["door","yard","Ada Lovelace"]`
	}
	poll("camera and person suggestions", `JSON.stringify([...document.querySelectorAll("#hit-filter datalist option")].map((o) => o.value)) === `+"`"+wantOpts+"`")

	// live: a hit published while the view is open goes on top
	fresh := makeHit(t, time.Now().UTC(), "yard", 3, false, "")
	if err := store.Publish(context.Background(), fresh); err != nil {
		t.Fatal(err)
	}
	poll("the new hit on top without a reload", fmt.Sprintf(`%s.startsWith(%q)`, ids, fresh.ID+","+other.ID))

	// the person filter: as the match and as a candidate, any case
	filter("", "ada LOVELACE")
	poll("person filter finds the match and the candidate", fmt.Sprintf(`%s === %q`, ids, cand.ID+","+named.ID))
	filter("door", "ada lovelace")
	poll("camera and person together", fmt.Sprintf(`%s === %q`, ids, named.ID))
	// a camera that does not exist is said to be unknown, with the real ones
	filter("Door2", "")
	poll("an unknown camera is said to be unknown", `(() => { const t = document.querySelector("#timeline .empty")?.textContent || "";
		return t.includes('there is no camera "Door2"') && t.includes("Cameras: door, yard"); })()`)
	filter("DOOR", "")
	poll("a camera in the wrong case is pointed at", `(document.querySelector("#timeline .empty")?.textContent || "").includes('did you mean "door"')`)
	if people {
		filter("", "Grace")
		poll("a person nobody enrolled", `(document.querySelector("#timeline .empty")?.textContent || "").includes("nobody is enrolled under that name")`)
	}
	testutil.Screenshot(t, ctx, "hits-filter")

	// the audit page: newest first; the three image fetches of each hit
	// card are one line; filters by action family and by target
	step("open the audit log", chromedp.Navigate(r.url+"/#audit"))
	type row struct{ Seq, Action, Target, Detail string }
	rows := func() []row {
		t.Helper()
		got, err := chromedp.Run(ctx, chromedp.Evaluate[[]row](`[...document.querySelectorAll("#audit-log tbody tr")].map((tr) => {
			const td = tr.querySelectorAll("td"); return {Seq: td[0].textContent, Action: td[3]?.textContent || "", Target: td[4]?.textContent || "", Detail: td[5]?.textContent || ""}; })`))
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	poll("audit rows", `document.querySelectorAll("#audit-log tbody tr").length > 3`)
	all := rows()
	first, _ := chromedp.Run(ctx, chromedp.Evaluate[[]int](`[...document.querySelectorAll("#audit-log tbody tr td:first-child")].map((td) => parseInt(td.textContent.split("–").pop()))`)) // a group by its newest
	for i := 1; i < len(first); i++ {
		if first[i] >= first[i-1] {
			t.Errorf("audit rows not newest first: %v", first)
			break
		}
	}
	grouped := 0
	for _, rw := range all {
		if rw.Action == "hit.image ×3" && strings.Count(rw.Detail, ".") == 3 && strings.Contains(rw.Seq, "–") {
			grouped++
		}
		if rw.Action == "hit.image" {
			t.Errorf("an image fetch not grouped with its hit's others: %+v", rw)
		}
	}
	if grouped < 3 {
		t.Errorf("%d grouped image lines (hit.image ×3), want one per card seen (>= 3): %+v", grouped, all)
	}
	step("filter: lists only", chromedp.Steps(
		chromedp.SetValue(chromedp.CSS(`#audit-filter select[name="action"]`), "hits.list"),
		chromedp.Click(chromedp.CSS("#audit-filter button")),
	))
	poll("only hit lists", `[...document.querySelectorAll("#audit-log tbody tr")].every((tr) => tr.querySelectorAll("td")[3].textContent === "hits.list")`)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const f = document.querySelector("#audit-filter");
			f.elements.action.value = ""; f.elements.target.value = %q; return true; })()`, named.ID))); err != nil {
		t.Fatal(err)
	}
	step("filter: one hit", chromedp.Click(chromedp.CSS("#audit-filter button")))
	poll("only the named hit's entries", fmt.Sprintf(`(() => { const r = [...document.querySelectorAll("#audit-log tbody tr")];
		return r.length > 0 && r.every((tr) => tr.querySelectorAll("td")[4].textContent === %q); })()`, named.ID))
	testutil.Screenshot(t, ctx, "audit-filter")
	if errs := console.Errors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}
