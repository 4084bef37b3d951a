package eval

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDaemonDoesNotLinkEval: the packages of the daemon's run path import
// neither this package nor its plotting library (cmd/srdgd may, for `srdgd
// eval`).
func TestDaemonDoesNotLinkEval(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("SKIPPING: no go tool: %v", err)
	}
	stages := []string{"./match", "./srdg", "./detect", "./ingest", "./publish/..."}
	out, err := cmdIn("..", gobin, append([]string{"list", "-deps"}, stages...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "github.com/srdgd/srdgd/eval" || strings.HasPrefix(dep, "gonum.org/v1/plot") {
			t.Errorf("%s is linked by one of %v", dep, stages)
		}
	}
}

func cmdIn(dir, name string, args ...string) *exec.Cmd {
	c := exec.Command(name, args...)
	c.Dir = dir
	return c
}
