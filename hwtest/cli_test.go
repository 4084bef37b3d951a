package hwtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCommandLine runs `srdgd hwtest` as an installer would: the config is
// mapped to options by cmd/srdgd, the text report ends in a verdict, --json
// parses, and the exit status says whether the box is fit.
func TestCommandLine(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the daemon and loads every model")
	}
	requireORT(t)
	requireModel(t, "guidance.onnx")
	dir := t.TempDir()
	bin := filepath.Join(dir, "srdgd")
	build := exec.Command("go", "build", "-o", bin, "./cmd/srdgd")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	models, err := filepath.Abs(modelsDir)
	if err != nil {
		t.Fatal(err)
	}
	base := "version: 1\nstorage:\n  state_dir: " + filepath.Join(dir, "state") + "\n  models_dir: " + models + "\n  min_free_bytes: 1\n" +
		"srdg:\n  sampler: ode\n  steps: 1\n  latency_budget: 1h\n  intra_threads: 1\n" +
		"match:\n  key_file: " + filepath.Join(dir, "gallery.key") + "\n" +
		"publish:\n  mqtt:\n    enabled: false\n  http:\n    listen: 127.0.0.1:0\n"
	os.MkdirAll(filepath.Join(dir, "state"), 0o750)
	run := func(cfg string, args ...string) (string, int) {
		p := filepath.Join(dir, "srdgd.yaml")
		os.WriteFile(p, []byte(cfg), 0o600)
		cmd := exec.Command(bin, append([]string{"hwtest", "--config", p, "--camera-timeout", "5s"}, args...)...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return out.String(), 0
		case errors.As(err, &ee):
			return out.String(), ee.ExitCode()
		}
		t.Fatalf("srdgd hwtest: %v\n%s", err, out.String())
		return "", -1
	}

	out, code := run(base)
	if code != 0 || !strings.Contains(out, "result: FIT") {
		t.Fatalf("exit %d, want 0 and FIT:\n%s", code, out)
	}
	for _, name := range []string{"onnxruntime", "provider/cpu", "model/score", "model/guidance", "model/lr_attrs",
		"model/blazeface", "model/embedder", "model/landmarks", "srdg", "cameras", "mqtt", "http", "gallery", "disk/state", "clock"} {
		if !strings.Contains(out, " "+name+" ") {
			t.Errorf("text report has no %s line", name)
		}
	}

	// an unreachable camera makes the box unfit; --json reports it (guidance
	// off: the slowest model is not what this run is about)
	cfg := strings.Replace(base, "srdg:\n", "srdg:\n  attributes:\n    policy: off\n", 1)
	out, code = run(cfg+"cameras:\n  - name: door\n    url: rtsp://"+freeAddr(t)+"/s\n", "--json")
	if code != 1 {
		t.Errorf("exit %d with an unreachable camera, want 1", code)
	}
	var rep Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, out)
	}
	if rep.Fit {
		t.Error("json says fit")
	}
	if c := rep.Find("camera/door"); c == nil || c.Status != StatusFail || !strings.Contains(c.Message, "unreachable") {
		t.Errorf("camera/door: %+v", c)
	}
	if f := rep.Failed(); len(f) != 1 {
		t.Errorf("failed checks %v, want only camera/door", f)
	}
	if rep.Find("model/guidance") != nil {
		t.Error("policy off still checks the guidance model")
	}
}
