// Package testutil holds the helpers the tests of several packages share:
// skipping loudly (or failing in CI) when a real peer is missing, a
// goroutine-leak check, headless Chromium and Debian's mosquitto. Only test
// files import it; it imports no stage of the pipeline, so that every stage's
// own tests can use it.
package testutil

import (
	"context"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// SkipOrFail skips t with a loud SKIPPING line saying what did not run, or
// fails it when the environment variable env is "1" (CI sets the
// SRDGD_TEST_REQUIRE_* variables so that a broken image cannot pass
// silently).
func SkipOrFail(t testing.TB, env string, err error) {
	t.Helper()
	if os.Getenv(env) == "1" {
		t.Fatalf("%s=1 but %v", env, err)
	}
	t.Skipf("SKIPPING %s: %v -- this real-peer test did NOT run (set %s=1 to fail instead)", t.Name(), err, env)
}

// LeakCheck verifies, after every other cleanup of t has run, that no
// goroutine started during the test outlived it.
func LeakCheck(t testing.TB, opts ...goleak.Option) {
	t.Helper()
	opts = append(opts, goleak.IgnoreCurrent())
	t.Cleanup(func() { goleak.VerifyNone(t, opts...) })
}

// Context is a context that ends after d or with the test.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
