package httpapi_test

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browserSteps are a browser test's two helpers on ctx's tab: step runs
// actions, poll waits (30 s at most each) for a JavaScript condition; both
// fail the test with the page's text.
func browserSteps(t *testing.T, ctx context.Context) (step func(name string, a chromedp.Action[chromedp.Void]), poll func(what, expr string)) {
	fail := func(what string, err error) {
		t.Helper()
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("%s: %v\npage:\n%s", what, err, text)
	}
	step = func(name string, a chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, a); err != nil {
			fail(name, err)
		}
	}
	poll = func(what, expr string) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if _, err := chromedp.Run(sctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
			fail(what, err)
		}
	}
	return step, poll
}
