package boundedfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	if err := os.WriteFile(small, []byte("0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		path    string
		max     int64
		want    string // content, when err is nil
		err     error
		message string
	}{
		{"regular within the limit", small, 10, "0123456789", nil, ""},
		{"one byte over the limit", small, 9, "", ErrTooLarge, "10 bytes, the limit is 9"},
		// /dev/zero would read forever: it is refused before the first byte
		{"character device", "/dev/zero", 1 << 20, "", ErrNotRegular, "(a character device)"},
		// a FIFO without a writer would block an ordinary open
		{"FIFO", fifo, 1 << 20, "", ErrNotRegular, "(a FIFO)"},
		{"directory", dir, 1 << 20, "", ErrNotRegular, "(a directory)"},
		{"missing", filepath.Join(dir, "nope"), 1 << 20, "", fs.ErrNotExist, "no such file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := Read(c.path, c.max)
			if c.err == nil {
				if err != nil || string(b) != c.want {
					t.Fatalf("Read = %q, %v; want %q", b, err, c.want)
				}
				return
			}
			if !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.message) {
				t.Fatalf("Read error %v; want %v containing %q", err, c.err, c.message)
			}
			if b != nil {
				t.Fatalf("Read returned %d bytes with an error", len(b))
			}
		})
	}
}

func TestKind(t *testing.T) {
	cases := []struct {
		mode fs.FileMode
		want string
	}{
		{0o644, "a regular file"},
		{fs.ModeDir | 0o755, "a directory"},
		{fs.ModeNamedPipe, "a FIFO"},
		{fs.ModeDevice | fs.ModeCharDevice, "a character device"},
		{fs.ModeDevice, "a device"},
		{fs.ModeSocket, "a socket"},
	}
	for _, c := range cases {
		if got := Kind(c.mode); got != c.want {
			t.Errorf("Kind(%v) = %q, want %q", c.mode, got, c.want)
		}
	}
}
