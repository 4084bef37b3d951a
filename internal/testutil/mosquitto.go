package testutil

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// MosquittoOptions configure Debian's broker for a test.
type MosquittoOptions struct {
	// Username and Password, when Username is set, are the one account;
	// anonymous clients are refused then. Default: anonymous allowed.
	Username, Password string
	// Listener is appended to the listener's settings ("certfile ...\n").
	Listener string
}

// Mosquitto is Debian's mosquitto on one free loopback port, which Stop and
// Start keep (to take a broker away and bring it back).
type Mosquitto struct {
	bin, conf string
	port      int
	cmd       *exec.Cmd
	done      chan struct{}
}

// NewMosquitto writes the broker's configuration without starting it, or
// skips t (fails it with SRDGD_TEST_REQUIRE_MOSQUITTO=1) when mosquitto is not
// installed. The broker is stopped when t ends.
func NewMosquitto(t testing.TB, o MosquittoOptions) *Mosquitto {
	t.Helper()
	bin := "/usr/sbin/mosquitto"
	if _, err := os.Stat(bin); err != nil {
		if bin, err = exec.LookPath("mosquitto"); err != nil {
			SkipOrFail(t, "SRDGD_TEST_REQUIRE_MOSQUITTO", errors.New("mosquitto not installed (apt-get install mosquitto)"))
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	m := &Mosquitto{bin: bin, conf: filepath.Join(dir, "mosquitto.conf"), port: port}
	// "user root": as root it would switch to the mosquitto user, who cannot
	// read the test's temp dir
	conf := fmt.Sprintf("listener %d 127.0.0.1\n%spersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\n"+
		"log_type notice\nlog_type information\nuser root\n", port, o.Listener)
	if o.Username != "" {
		pwFile := filepath.Join(dir, "passwd")
		pw, err := exec.LookPath("mosquitto_passwd")
		if err != nil {
			pw = "/usr/bin/mosquitto_passwd"
		}
		if out, err := exec.Command(pw, "-c", "-b", pwFile, o.Username, o.Password).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v: %s", err, out)
		}
		conf += "allow_anonymous false\npassword_file " + pwFile + "\n"
	} else {
		conf += "allow_anonymous true\n"
	}
	if err := os.WriteFile(m.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Stop(t) })
	return m
}

// StartMosquitto is NewMosquitto and Start.
func StartMosquitto(t testing.TB, o MosquittoOptions) *Mosquitto {
	t.Helper()
	m := NewMosquitto(t, o)
	m.Start(t)
	return m
}

// Addr is the broker's host:port.
func (m *Mosquitto) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(m.port)) }

// Start runs mosquitto and waits for its "running" log line; it returns
// Addr.
func (m *Mosquitto) Start(t testing.TB) string {
	t.Helper()
	cmd := exec.Command(m.bin, "-c", m.conf)
	// stderr: mosquitto block-buffers stdout into a pipe
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mosquitto: %v", err)
	}
	m.cmd, m.done = cmd, make(chan struct{})
	ready := make(chan string, 1)
	go func() {
		defer close(m.done)
		sc := bufio.NewScanner(out)
		var log strings.Builder
		sent := false
		for sc.Scan() {
			line := sc.Text()
			if !sent {
				log.WriteString(line + "\n")
				if strings.Contains(line, " running") {
					ready <- ""
					sent = true
				}
			}
		}
		if !sent {
			ready <- log.String()
		}
		_ = cmd.Wait()
	}()
	select {
	case msg := <-ready:
		if msg != "" {
			t.Fatalf("mosquitto did not start:\n%s", msg)
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-m.done
		m.cmd = nil
		t.Fatal("mosquitto did not say it was running within 20 s")
	}
	return m.Addr()
}

// Stop ends the broker (SIGTERM) and waits for it; a stopped broker is left
// alone.
func (m *Mosquitto) Stop(t testing.TB) {
	t.Helper()
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
	m.cmd = nil
}
