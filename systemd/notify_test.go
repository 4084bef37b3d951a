package systemd

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// fakeManager is the service manager's end of the notify protocol: a real
// unixgram socket the test reads, as systemd's /run/systemd/notify.
type fakeManager struct {
	t    *testing.T
	addr string
	conn *net.UnixConn
}

func listen(t *testing.T, addr string) *fakeManager {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &fakeManager{t: t, addr: addr, conn: c}
}

func pathSocket(t *testing.T) *fakeManager {
	// t.TempDir paths can exceed the 108-byte sun_path limit; use a short dir.
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return listen(t, filepath.Join(dir, "notify"))
}

func abstractSocket(t *testing.T) *fakeManager {
	b := make([]byte, 8)
	rand.Read(b)
	return listen(t, "@srdgd-test-"+hex.EncodeToString(b))
}

// recv returns the next datagram, failing the test after d.
func (m *fakeManager) recv(d time.Duration) string {
	m.t.Helper()
	msg, err := m.recvErr(d)
	if err != nil {
		m.t.Fatalf("no notification within %s: %v", d, err)
	}
	return msg
}

func (m *fakeManager) recvErr(d time.Duration) (string, error) {
	buf := make([]byte, 4096)
	m.conn.SetReadDeadline(time.Now().Add(d))
	n, _, err := m.conn.ReadFromUnix(buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// expectNone asserts nothing arrives within d.
func (m *fakeManager) expectNone(d time.Duration) {
	m.t.Helper()
	msg, err := m.recvErr(d)
	if err == nil {
		m.t.Fatalf("unexpected notification %q", msg)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		m.t.Fatalf("read: %v", err)
	}
}

func TestNotifierMessages(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, sock := range []struct {
		name string
		mk   func(*testing.T) *fakeManager
	}{{"path", pathSocket}, {"abstract", abstractSocket}} {
		t.Run(sock.name, func(t *testing.T) {
			m := sock.mk(t)
			n, err := NewNotifierAt(m.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			if !n.Enabled() || n.Socket() != m.addr {
				t.Fatalf("Enabled %v Socket %q, want true %q", n.Enabled(), n.Socket(), m.addr)
			}
			cases := []struct {
				name string
				send func() error
				want string
			}{
				{"ready", func() error { return n.Ready("") }, "READY=1"},
				{"ready with status", func() error { return n.Ready("3 cameras up") }, "READY=1\nSTATUS=3 cameras up"},
				{"status", func() error { return n.Status("detecting") }, "STATUS=detecting"},
				{"status newline flattened", func() error { return n.Status("a\nb\r\nc") }, "STATUS=a b c"},
				{"watchdog", n.Watchdog, "WATCHDOG=1"},
				{"stopping", n.Stopping, "STOPPING=1"},
				{"extend timeout", func() error { return n.ExtendTimeout(90 * time.Second) }, "EXTEND_TIMEOUT_USEC=90000000"},
				{"custom", func() error { return n.Notify("ERRNO=5", "STATUS=x") }, "ERRNO=5\nSTATUS=x"},
			}
			for _, tc := range cases {
				if err := tc.send(); err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				if got := m.recv(2 * time.Second); got != tc.want {
					t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
				}
			}
			if err := n.Reloading(); err != nil {
				t.Fatal(err)
			}
			got := m.recv(2 * time.Second)
			if !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") || len(got) <= len("RELOADING=1\nMONOTONIC_USEC=") {
				t.Errorf("reloading: got %q", got)
			}
		})
	}
}

func TestNotifierUnsetIsNoop(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n, err := NewNotifier()
	if err != nil {
		t.Fatal(err)
	}
	if n.Enabled() {
		t.Fatal("enabled without NOTIFY_SOCKET")
	}
	for _, f := range []func() error{func() error { return n.Ready("x") }, n.Watchdog, n.Stopping, func() error { return n.Status("s") }, n.Close} {
		if err := f(); err != nil {
			t.Fatalf("no-op notifier returned %v", err)
		}
	}
	var nilN *Notifier
	if err := nilN.Ready(""); err != nil || nilN.Enabled() || nilN.Close() != nil {
		t.Fatal("nil notifier is not a no-op")
	}
}

func TestNotifierFromEnv(t *testing.T) {
	m := pathSocket(t)
	t.Setenv("NOTIFY_SOCKET", m.addr)
	n, err := NewNotifier()
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Ready(""); err != nil {
		t.Fatal(err)
	}
	if got := m.recv(2 * time.Second); got != "READY=1" {
		t.Fatalf("got %q", got)
	}
}

func TestNotifierErrors(t *testing.T) {
	if _, err := NewNotifierAt("vsock:2:1234"); !errors.Is(err, ErrUnsupportedSocket) {
		t.Fatalf("vsock: got %v, want ErrUnsupportedSocket", err)
	}
	n, err := NewNotifierAt(filepath.Join(t.TempDir(), "gone"))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	err = n.Ready("")
	if err == nil || !strings.Contains(err.Error(), "gone") || !strings.Contains(err.Error(), "READY=1") {
		t.Fatalf("send to a missing socket: got %v, want an error naming the socket and the message", err)
	}
}

func TestWatchdogInterval(t *testing.T) {
	self := os.Getpid()
	cases := []struct {
		name, usec, pid string
		want            time.Duration
		wantErr         bool
	}{
		{"unset", "", "", 0, false},
		{"30s", "30000000", "", 30 * time.Second, false},
		{"for us", "2000000", itoa(self), 2 * time.Second, false},
		{"for another pid", "2000000", itoa(self + 1), 0, false},
		{"zero", "0", "", 0, true},
		{"junk", "abc", "", 0, true},
		{"negative", "-5", "", 0, true},
		{"bad pid", "1000", "x", 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := watchdogInterval(tc.usec, tc.pid, self)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("got %v, %v; want %v, err=%v", got, err, tc.want, tc.wantErr)
			}
		})
	}
	t.Run("env", func(t *testing.T) {
		t.Setenv("WATCHDOG_USEC", "30000000")
		t.Setenv("WATCHDOG_PID", itoa(self))
		if got, err := WatchdogInterval(); err != nil || got != 30*time.Second {
			t.Fatalf("got %v, %v", got, err)
		}
	})
}

func itoa(i int) string { return strconv.Itoa(i) }

// syncBuffer is a log sink safe for the watchdog goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestWatchdogCadenceAndUnhealthy(t *testing.T) {
	defer goleak.VerifyNone(t)
	m := abstractSocket(t)
	n, err := NewNotifierAt(m.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	const interval = 400 * time.Millisecond // pings every 200 ms
	var logs syncBuffer
	w := NewWatchdog(n, interval, slog.New(slog.NewTextHandler(&logs, nil)))
	if !w.Enabled() || w.Period() != interval/2 {
		t.Fatalf("Enabled %v Period %v", w.Enabled(), w.Period())
	}

	var sick atomic.Bool
	sickSeen := make(chan struct{}, 1) // healthy() has reported the failure
	healthy := func() error {
		if sick.Load() {
			select {
			case sickSeen <- struct{}{}:
			default:
			}
			return errors.New("main loop stuck for 42s")
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, healthy) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v, want nil", err)
		}
	}()

	// first ping at once, then one per period
	var at []time.Time
	for range 4 {
		if got := m.recv(2 * time.Second); got != "WATCHDOG=1" {
			t.Fatalf("got %q, want WATCHDOG=1", got)
		}
		at = append(at, time.Now())
	}
	for i := 1; i < len(at); i++ {
		// a ping late by a scheduling hiccup is fine; too early or much late is not
		if gap := at[i].Sub(at[i-1]); gap < w.Period()/2 || gap > 3*w.Period() {
			t.Errorf("ping %d came %v after the previous, period %v", i, gap, w.Period())
		}
	}

	// unhealthy: no ping for longer than the whole interval
	sick.Store(true)
	<-sickSeen
	// a ping sent just before healthy() failed may still be queued
	if msg, err := m.recvErr(10 * time.Millisecond); err == nil && msg != "WATCHDOG=1" {
		t.Fatalf("got %q", msg)
	}
	m.expectNone(interval + w.Period())
	if !strings.Contains(logs.String(), "unhealthy, not pinging") || !strings.Contains(logs.String(), "main loop stuck for 42s") {
		t.Errorf("log does not say why pings stopped:\n%s", logs.String())
	}
	if c := strings.Count(logs.String(), "unhealthy, not pinging"); c != 1 {
		t.Errorf("unhealthy logged %d times, want once per state change", c)
	}

	// healthy again: pings resume
	sick.Store(false)
	if got := m.recv(2 * time.Second); got != "WATCHDOG=1" {
		t.Fatalf("after recovery got %q", got)
	}
	if !strings.Contains(logs.String(), "healthy again") {
		t.Errorf("recovery not logged:\n%s", logs.String())
	}
}

func TestWatchdogBlockedHealthCheckStopsPings(t *testing.T) {
	defer goleak.VerifyNone(t)
	m := pathSocket(t)
	n, _ := NewNotifierAt(m.addr)
	defer n.Close()
	w := NewWatchdog(n, 200*time.Millisecond, nil)
	release := make(chan struct{})
	entered := make(chan struct{})
	var calls atomic.Int32
	healthy := func() error {
		if calls.Add(1) == 2 {
			close(entered)
			<-release // a deadlocked pipeline
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, healthy) }()
	if got := m.recv(2 * time.Second); got != "WATCHDOG=1" {
		t.Fatalf("got %q", got)
	}
	<-entered
	m.expectNone(300 * time.Millisecond)
	cancel()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestWatchdogDisabled(t *testing.T) {
	defer goleak.VerifyNone(t)
	cases := []struct {
		name     string
		n        *Notifier
		interval time.Duration
	}{
		{"no socket", &Notifier{}, time.Second},
		{"no interval", mustNotifier(t, "@srdgd-unused"), 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := NewWatchdog(tc.n, tc.interval, nil)
			if w.Enabled() {
				t.Fatal("enabled")
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			called := atomic.Bool{}
			go func() { done <- w.Run(ctx, func() error { called.Store(true); return nil }) }()
			select {
			case err := <-done:
				t.Fatalf("Run returned %v before ctx ended", err)
			default:
			}
			cancel()
			if err := <-done; err != nil || called.Load() {
				t.Fatalf("Run: %v, healthy called %v", err, called.Load())
			}
		})
	}
}

func mustNotifier(t *testing.T, s string) *Notifier {
	n, err := NewNotifierAt(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
