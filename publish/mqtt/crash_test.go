package mqtt

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

const crashDirEnv = "SRDGD_SPOOL_CRASH_DIR"

// TestSpoolCrashChild is the child of TestSpoolKill9: it appends (and acks
// the entry 100 behind) until it is killed, reporting each step on stdout
// after the spool call returned.
func TestSpoolCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("child process of TestSpoolKill9")
	}
	s, err := openSpool(spoolOptions{Dir: dir, MaxMessages: 1 << 20, MaxBytes: 1 << 30, SegmentBytes: 4096, Sealer: testSealer(t)})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	var seqs []uint64
	for i := 0; ; i++ {
		seq, err := s.Append([]byte(fmt.Sprintf("crash-%06d", i)))
		if err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		seqs = append(seqs, seq)
		acked := -1
		if i >= 100 {
			acked = i - 100
			s.Ack(seqs[acked])
		}
		fmt.Printf("ok %d %d\n", i, acked)
	}
}

// TestSpoolKill9 kills a process that is appending to the spool with
// SIGKILL and checks that the reopened spool holds every entry the child
// saw appended and not acked, in order, and nothing it saw acked.
func TestSpoolKill9(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSpoolCrashChild$")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	appended, acked := -1, -1
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "error") {
			t.Fatalf("child: %s", line)
		}
		var i, a int
		if _, err := fmt.Sscanf(line, "ok %d %d", &i, &a); err != nil {
			continue
		}
		appended, acked = i, a
		if appended >= 400 {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if appended < 400 {
		t.Fatalf("child stopped after %d appends", appended)
	}

	s := testSpool(t, dir, 1<<20, 1<<30, 4096)
	_, entries := drain(t, s)
	if len(entries) == 0 {
		t.Fatal("nothing recovered")
	}
	var first int
	if _, err := fmt.Sscanf(entries[0], "crash-%d", &first); err != nil {
		t.Fatalf("first entry %q", entries[0])
	}
	// Acked before the last report: gone. Not acked: kept. Between its last
	// report and the kill the child may have acked a few more (seen: 3), so
	// only the lower bound is exact; the upper one is that every reported
	// append is still there (checked below with the last entry).
	if first < acked+1 || first > appended+1 {
		t.Fatalf("first entry %d, child reported acked up to %d", first, acked)
	}
	for k, e := range entries {
		if want := fmt.Sprintf("crash-%06d", first+k); e != want {
			t.Fatalf("entry %d = %q, want %q", k, e, want)
		}
	}
	if last := first + len(entries) - 1; last < appended {
		t.Fatalf("last entry %d, child reported %d appended", last, appended)
	}
	t.Logf("killed after %d appends (%d acked): recovered %d..%d, truncated %d bytes",
		appended+1, acked+1, first, first+len(entries)-1, s.truncated)
}
