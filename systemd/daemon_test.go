package systemd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDaemonNotifies runs the real `srdgd run` the way the unit does, with a
// notify socket and WatchdogSec=1s, and checks the protocol the unit relies on:
// READY=1 once up, WATCHDOG=1 at about twice a second, STOPPING=1 and exit 0
// on SIGTERM.
func TestDaemonNotifies(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	bin := buildSrdgd(t)
	m := pathSocket(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "srdgd.yaml")
	os.WriteFile(cfg, []byte("version: 1\nstorage:\n  state_dir: "+filepath.Join(dir, "state")+
		"\npublish:\n  mqtt:\n    enabled: false\n  http:\n    enabled: false\n  webrtc:\n    enabled: false\n"), 0o600)
	cmd := exec.Command(bin, "run", "--config", cfg)
	// the daemon reads SRDGD_* as config overrides: give it a clean environment
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "NOTIFY_SOCKET=" + m.addr, "WATCHDOG_USEC=1000000"}
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()

	if got := m.recv(60 * time.Second); !strings.HasPrefix(got, "READY=1") {
		t.Fatalf("first notification %q, want READY=1\n%s", got, logs.String())
	}
	var pings []time.Time
	for len(pings) < 3 {
		got := m.recv(5 * time.Second)
		if got != "WATCHDOG=1" {
			t.Fatalf("got %q, want WATCHDOG=1", got)
		}
		pings = append(pings, time.Now())
	}
	if gap := pings[2].Sub(pings[1]); gap > 900*time.Millisecond {
		t.Errorf("pings %v apart with WatchdogSec=1s: systemd would kill the service", gap)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for {
		got := m.recv(15 * time.Second)
		if got == "STOPPING=1" {
			break
		}
		if got != "WATCHDOG=1" {
			t.Fatalf("after SIGTERM got %q, want STOPPING=1", got)
		}
	}
	select {
	case err := <-exited:
		exited <- err // for the deferred wait
		if err != nil {
			t.Fatalf("srdgd run exited with %v after SIGTERM\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("srdgd did not exit within 30s of SIGTERM\n%s", logs.String())
	}
}
