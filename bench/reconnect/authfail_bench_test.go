package reconnectbench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/srdgd/srdgd/internal/rtspserver"
)

// TestAuthRejectedDaemon runs the srdgd binary at $SRDGD_BENCH_BIN with two
// cameras, "front" on an open server and "back" on one that requires
// credentials, and reports what the daemon does when back's server answers
// 401 (issue 19, finding 2): in one run back has no credentials configured;
// in the other they are right until the server restarts with another
// password after back was healthy for $SRDGD_BENCH_HEALTHY (default 10 s).
// For $SRDGD_BENCH_WATCH (default 20 s) after the first 401 it records
// whether the process exits (and when), back's state, front's frames and the
// health; then, with $SRDGD_BENCH_AUTH_RETRY set (reconnect.auth_retry, a
// key older builds do not know), the server accepts back again and it
// records how long back takes to deliver frames. Reconnect backoff is the
// default (0.5 s doubling), as in the issue.
func TestAuthRejectedDaemon(t *testing.T) {
	requireBench(t)
	bin := os.Getenv("SRDGD_BENCH_BIN")
	if bin == "" {
		t.Skip("SRDGD_BENCH_BIN (the srdgd binary to measure) is not set")
	}
	models := os.Getenv("SRDGD_BENCH_MODELS")
	if models == "" {
		models, _ = filepath.Abs("../../models/dist")
	}
	envDur := func(k string, def time.Duration) time.Duration {
		if d, err := time.ParseDuration(os.Getenv(k)); err == nil && d > 0 {
			return d
		}
		return def
	}
	watch, healthy := envDur("SRDGD_BENCH_WATCH", 20*time.Second), envDur("SRDGD_BENCH_HEALTHY", 10*time.Second)
	authRetry := os.Getenv("SRDGD_BENCH_AUTH_RETRY")
	const user, pass, changed = "viewer", "Right-pa55word", "Changed-pa55word"

	for _, sc := range []struct {
		name  string
		creds bool // back has the right credentials until the password changes
	}{
		{"no credentials configured", false},
		{"password changed after a healthy session", true},
	} {
		t.Run(sc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			open := &stream{t: t, ctx: ctx, addr: "127.0.0.1:0"}
			open.start()
			defer func() { open.stop() }()
			locked := &stream{t: t, ctx: ctx, addr: "127.0.0.1:0", opts: rtspserver.Options{Username: user, Password: pass}}
			locked.start()
			defer func() { locked.stop() }()

			dir := t.TempDir()
			backCreds, reconnect := "", ""
			if sc.creds {
				backCreds = fmt.Sprintf("\n    username: %s\n    password_env: CAM_BACK_PASSWORD", user)
			}
			if authRetry != "" {
				reconnect = fmt.Sprintf("\n    reconnect: {auth_retry: %s, auth_retry_max: %s}", authRetry, authRetry)
			}
			cfg := fmt.Sprintf(`version: 1
log: {level: info, format: json}
storage: {state_dir: %q, models_dir: %q}
cameras:
  - name: front
    url: %s
    transport: tcp
  - name: back
    url: %s
    transport: tcp%s%s
srdg: {attributes: {policy: "off"}, providers: [cpu]}
match: {key_file: %q}
publish:
  mqtt: {embedded_listen: "127.0.0.1:0"}
  http: {listen: "127.0.0.1:0"}
  webrtc: {enabled: false}
`, dir, models, open.srv.URL("cam"), locked.srv.URL("cam"), backCreds, reconnect, filepath.Join(dir, "gallery.key"))
			d := startDaemon(t, ctx, bin, dir, cfg, []string{"CAM_BACK_PASSWORD=" + pass})

			type camStatus struct {
				Camera       string `json:"camera"`
				State        string `json:"state"`
				Connected    bool   `json:"connected"`
				Frames       uint64 `json:"frames"`
				AuthFailures uint64 `json:"auth_failures"`
			}
			// cameras returns nil once the daemon is gone
			cameras := func() map[string]camStatus {
				resp, err := http.Get(d.base + "/api/v1/cameras")
				if err != nil {
					return nil
				}
				defer resp.Body.Close()
				var body struct {
					Cameras []camStatus `json:"cameras"`
				}
				if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
					return nil
				}
				out := map[string]camStatus{}
				for _, c := range body.Cameras {
					out[c.Camera] = c
				}
				return out
			}
			exited := func() bool {
				select {
				case <-d.exited:
					return true
				default:
					return false
				}
			}
			// poll: the daemon is another process, its API is the only way to see it
			poll := func(what string, limit time.Duration, cond func(map[string]camStatus) bool) bool {
				end := time.Now().Add(limit)
				for time.Now().Before(end) && ctx.Err() == nil {
					if exited() {
						return false
					}
					if c := cameras(); c != nil && cond(c) {
						return true
					}
					time.Sleep(100 * time.Millisecond)
				}
				return false
			}

			t0 := d.started
			if sc.creds {
				if !poll("back healthy", time.Minute, func(c map[string]camStatus) bool { return c["back"].Connected && c["back"].Frames >= 10 }) {
					t.Fatalf("back never delivered frames with the right password (exit %v):\n%s", exited(), d.errors())
				}
				time.Sleep(healthy)
				// the camera restarts with another password
				locked.stop()
				locked.opts.Password = changed
				locked.start()
				t0 = time.Now()
			}
			var frontFrom uint64
			if c := cameras(); c != nil {
				frontFrom = c["front"].Frames
			}
			authFailedAt := time.Duration(-1)
			var last map[string]camStatus
			for time.Since(t0) < watch && !exited() {
				if c := cameras(); c != nil {
					last = c
					if authFailedAt < 0 && c["back"].State == "auth_failed" {
						authFailedAt = time.Since(t0)
					}
				}
				time.Sleep(100 * time.Millisecond)
			}
			var during, recovery string
			if exited() {
				during = fmt.Sprintf("**exit %d** %.1f s after %s", d.code, time.Since(t0).Seconds(), map[bool]string{false: "start", true: "the change"}[sc.creds])
				if e := d.errors(); e != "" {
					t.Logf("daemon errors:\n%s", e)
				}
				recovery = "—"
			} else {
				health := "?"
				if resp, err := http.Get(d.base + "/api/v1/health"); err == nil {
					var h struct {
						Status string `json:"status"`
						Down   []struct{ Camera, State string }
					}
					json.NewDecoder(resp.Body).Decode(&h)
					resp.Body.Close()
					var down []string
					for _, c := range h.Down {
						down = append(down, c.Camera+" "+c.State)
					}
					health = fmt.Sprintf("%d %s (down: %s)", resp.StatusCode, h.Status, strings.Join(down, ", "))
				}
				during = fmt.Sprintf("running after %.0f s; back %s (%d auth failures, auth_failed after %.1f s); front %s, +%d frames; health %s",
					watch.Seconds(), last["back"].State, last["back"].AuthFailures, authFailedAt.Seconds(),
					last["front"].State, last["front"].Frames-frontFrom, health)
				recovery = "not tried (SRDGD_BENCH_AUTH_RETRY unset)"
				if authRetry != "" {
					if sc.creds {
						locked.srv.SetReaderCredentials(user, pass) // the old password again
					} else {
						locked.srv.SetReaderCredentials("", "") // the camera stops requiring credentials
					}
					t1 := time.Now()
					from := last["back"].Frames
					if poll("back back", 2*time.Minute, func(c map[string]camStatus) bool {
						return c["back"].Connected && c["back"].Frames >= from+10
					}) {
						recovery = fmt.Sprintf("back delivers frames %.1f s after the fix (auth_retry %s)", time.Since(t1).Seconds(), authRetry)
					} else {
						recovery = fmt.Sprintf("**not back** after 2 min (exit %v)", exited())
					}
				}
			}
			line := fmt.Sprintf("| %s | %s | %s | %s |", filepath.Base(filepath.Dir(bin)), sc.name, during, recovery)
			t.Log(line)
			if out := os.Getenv("SRDGD_BENCH_OUT"); out != "" {
				f, err := os.OpenFile(filepath.Join(out, "summary-auth.md"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintln(f, line)
				f.Close()
			}
		})
	}
}
