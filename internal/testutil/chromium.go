package testutil

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

// Chromium returns the headless browser's binary (Debian package chromium),
// or skips t (fails it with SRDGD_TEST_REQUIRE_CHROMIUM=1) when there is none.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	SkipOrFail(t, "SRDGD_TEST_REQUIRE_CHROMIUM", errors.New("no chromium binary (install the Debian package chromium)"))
	return ""
}

// BrowserOptions adjust Browser.
type BrowserOptions struct {
	// Width and Height of the window; 0 keeps chromedp's default.
	Width, Height int
	// WebRTC lets a page play media over WebRTC on loopback: autoplay
	// without a gesture, host candidates on 127.0.0.1 and plain IP
	// candidates instead of mDNS names nobody resolves here.
	WebRTC bool
	// Logf receives chromedp's log; nil drops it.
	Logf func(string, ...any)
}

// Browser starts headless Chromium at path (see Chromium) with its own
// profile folder and returns a chromedp context for it; stop ends the
// browser and waits for the process (safe to call twice, and called when t
// ends). It ends with ctx as well.
func Browser(ctx context.Context, t testing.TB, path string, o BrowserOptions) (bctx context.Context, stop func()) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Flag("headless", "new"),
		chromedp.Flag("disable-gpu", true),
		chromedp.UserDataDir(t.TempDir()),
		// the tests run as root in CI containers, where the sandbox cannot start
		chromedp.NoSandbox,
	)
	if o.Width > 0 && o.Height > 0 {
		opts = append(opts, chromedp.WindowSize(o.Width, o.Height))
	}
	if o.WebRTC {
		opts = append(opts,
			chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
			chromedp.Flag("allow-loopback-in-peer-connection", true),
			chromedp.Flag("disable-features", "Translate,BlinkGenPropertyTrees,WebRtcHideLocalIpsWithMdns"),
		)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	var copts []chromedp.ContextOption
	if o.Logf != nil {
		copts = append(copts, chromedp.WithLogf(o.Logf))
	}
	bctx, cancelBrowser := chromedp.NewContext(actx, copts...)
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancelBrowser()
			cancelAlloc()
		})
	}
	t.Cleanup(stop)
	return bctx, stop
}

// Console collects a page's console messages until Errors is called.
type Console struct {
	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
	done chan struct{}
	stop context.CancelFunc
}

// WatchConsole starts collecting the console messages of the page in ctx.
func WatchConsole(ctx context.Context) *Console {
	ctx, cancel := context.WithCancel(ctx)
	c := &Console{done: make(chan struct{}), stop: cancel}
	msgs := chromedp.Console(ctx)
	go func() {
		defer close(c.done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			c.mu.Lock()
			c.msgs = append(c.msgs, m)
			c.mu.Unlock()
		}
	}()
	return c
}

// Errors stops collecting and returns the console errors and uncaught
// exceptions, each with the URL that wrote it.
func (c *Console) Errors() []string {
	c.stop()
	<-c.done
	var out []string
	for _, m := range c.msgs {
		if m.Type == chromedp.ConsoleError || m.IsException() {
			out = append(out, m.String()+" at "+m.URL)
		}
	}
	return out
}

// Screenshot saves the page to $SRDGD_TEST_SCREENSHOTS/name.png when that is
// set (to look at the page while changing it).
func Screenshot(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("SRDGD_TEST_SCREENSHOTS")
	if dir == "" {
		return
	}
	b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}
