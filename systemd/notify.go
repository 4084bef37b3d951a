// Package systemd is the glue between srdgd and its service manager: the
// sd_notify protocol (READY=1, STATUS=, WATCHDOG=1, STOPPING=1) spoken over the
// datagram socket named by $NOTIFY_SOCKET, and a watchdog that pings only while
// the daemon reports itself healthy. It needs no cgo and no libsystemd; with
// $NOTIFY_SOCKET unset (not started by systemd, or Type= is not notify) every
// call is a no-op.
//
// The unit file, sysusers.d and tmpfiles.d snippets live next to this file.
package systemd

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ErrUnsupportedSocket is returned for a $NOTIFY_SOCKET this package cannot
// speak to (systemd >= 254 also allows vsock: addresses, used by VMs).
var ErrUnsupportedSocket = errors.New("unsupported NOTIFY_SOCKET address")

// Notifier sends state changes to the service manager. The zero value and a
// nil *Notifier are valid no-op notifiers. Safe for concurrent use.
type Notifier struct {
	addr *net.UnixAddr // nil: no-op
}

// NewNotifier returns a notifier for $NOTIFY_SOCKET, or a no-op notifier when
// the variable is unset or empty.
func NewNotifier() (*Notifier, error) {
	return NewNotifierAt(os.Getenv("NOTIFY_SOCKET"))
}

// NewNotifierAt returns a notifier for the given socket address: a path, or
// "@name" for a Linux abstract socket (sd_notify(3)); "" gives a no-op.
func NewNotifierAt(socket string) (*Notifier, error) {
	switch {
	case socket == "":
		return &Notifier{}, nil
	case strings.HasPrefix(socket, "/"), strings.HasPrefix(socket, "@"):
		// Go maps a leading '@' to the abstract namespace (leading NUL byte).
		return &Notifier{addr: &net.UnixAddr{Name: socket, Net: "unixgram"}}, nil
	default:
		return nil, fmt.Errorf("NOTIFY_SOCKET %q: %w (want an absolute path or @abstract name)", socket, ErrUnsupportedSocket)
	}
}

// Enabled reports whether notifications go anywhere.
func (n *Notifier) Enabled() bool { return n != nil && n.addr != nil }

// Socket returns the socket address, "" for a no-op notifier.
func (n *Notifier) Socket() string {
	if !n.Enabled() {
		return ""
	}
	return n.addr.Name
}

// Notify sends one datagram holding the given VAR=value assignments, one per
// line. It is what the other methods call; use it for assignments they do not
// cover (sd_notify(3) lists them).
func (n *Notifier) Notify(assignments ...string) error {
	if !n.Enabled() || len(assignments) == 0 {
		return nil
	}
	msg := []byte(strings.Join(assignments, "\n"))
	// One socket per message: a ping every few seconds costs nothing, and a
	// socket the manager re-created (daemon-reexec) is reached on the next one.
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("notify %s: %s: %w", n.addr.Name, firstLine(assignments), err)
	}
	defer c.Close()
	if _, err := c.Write(msg); err != nil {
		return fmt.Errorf("notify %s: %s: %w", n.addr.Name, firstLine(assignments), err)
	}
	return nil
}

func firstLine(a []string) string {
	if len(a) == 0 {
		return ""
	}
	return a[0]
}

// Ready tells the manager start-up is complete (Type=notify units leave
// "activating" on it). status, when not empty, is sent with it as STATUS=.
func (n *Notifier) Ready(status string) error {
	if status == "" {
		return n.Notify("READY=1")
	}
	return n.Notify("READY=1", "STATUS="+oneLine(status))
}

// Stopping tells the manager the daemon is shutting down (it then waits for
// the exit instead of treating it as a crash).
func (n *Notifier) Stopping() error { return n.Notify("STOPPING=1") }

// Reloading tells the manager a configuration reload began; send Ready when it
// is done. MONOTONIC_USEC is required by Type=notify-reload (systemd >= 253).
func (n *Notifier) Reloading() error {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return fmt.Errorf("notify: clock_gettime: %w", err)
	}
	usec := ts.Sec*1_000_000 + ts.Nsec/1000
	return n.Notify("RELOADING=1", "MONOTONIC_USEC="+strconv.FormatInt(usec, 10))
}

// Status sets the one-line status `systemctl status` shows.
func (n *Notifier) Status(s string) error { return n.Notify("STATUS=" + oneLine(s)) }

// Watchdog is one keep-alive ping (WATCHDOG=1).
func (n *Notifier) Watchdog() error { return n.Notify("WATCHDOG=1") }

// ExtendTimeout asks the manager for d more time in the current start or
// stop phase, e.g. while TensorRT builds its engines on a first start.
func (n *Notifier) ExtendTimeout(d time.Duration) error {
	return n.Notify("EXTEND_TIMEOUT_USEC=" + strconv.FormatInt(d.Microseconds(), 10))
}

// Close is a no-op kept so a Notifier can be released like other resources
// (each message uses its own socket).
func (n *Notifier) Close() error { return nil }

// oneLine keeps a status to one line: a newline would start a new assignment.
func oneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}

// WatchdogInterval returns WatchdogSec= of the unit, from $WATCHDOG_USEC, or 0
// when the watchdog is off for this process: variable unset, not a positive
// number, or $WATCHDOG_PID naming another process (sd_watchdog_enabled(3)).
func WatchdogInterval() (time.Duration, error) {
	return watchdogInterval(os.Getenv("WATCHDOG_USEC"), os.Getenv("WATCHDOG_PID"), os.Getpid())
}

func watchdogInterval(usec, pid string, self int) (time.Duration, error) {
	if usec == "" {
		return 0, nil
	}
	u, err := strconv.ParseUint(usec, 10, 63)
	if err != nil || u == 0 {
		return 0, fmt.Errorf("WATCHDOG_USEC %q: want a positive number of microseconds", usec)
	}
	if pid != "" {
		p, err := strconv.Atoi(pid)
		if err != nil || p <= 0 {
			return 0, fmt.Errorf("WATCHDOG_PID %q: want a process id", pid)
		}
		if p != self {
			return 0, nil
		}
	}
	return time.Duration(u) * time.Microsecond, nil
}
