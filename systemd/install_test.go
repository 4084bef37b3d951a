package systemd

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// buildSrdgd builds cmd/srdgd once per test binary run.
func buildSrdgd(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "srdgd-build-"); buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(buildDir, "srdgd"), "./cmd/srdgd")
		cmd.Dir = ".."
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/srdgd: %v\n%s", err, b)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "srdgd")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// spyPath returns a PATH whose first folder has a command for each tool that
// changes the host (user creation, ownership, systemctl): each one records
// its call in a file and fails. With DESTDIR set none may run.
func spyPath(t *testing.T) (path, calls string) {
	t.Helper()
	dir := t.TempDir()
	calls = filepath.Join(dir, "calls")
	for _, name := range []string{"systemctl", "systemd-sysusers", "systemd-tmpfiles", "useradd", "usermod", "groupadd", "chown"} {
		script := "#!/bin/sh\necho \"" + name + " $*\" >> '" + calls + "'\nexit 1\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir + string(os.PathListSeparator) + os.Getenv("PATH"), calls
}

func runScript(t *testing.T, script string, env ...string) string {
	t.Helper()
	cmd := exec.Command("bash", filepath.Join("..", "scripts", script))
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", script, env, err, out.String())
	}
	return out.String()
}

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return st.Mode().Perm()
}

func TestInstallDestdir(t *testing.T) {
	if _, err := os.Stat("../third_party/onnxruntime/lib/libonnxruntime.so.1"); err != nil {
		t.Skipf("SKIPPING: no ONNX Runtime in third_party (scripts/fetch-ort.sh): %v", err)
	}
	bin := buildSrdgd(t)
	path, calls := spyPath(t)
	example, err := os.ReadFile("../config/srdgd.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	models, _ := filepath.Glob("../models/dist/*.onnx")
	if len(models) == 0 {
		t.Fatal("no models/dist/*.onnx")
	}

	cases := []struct {
		name, prefix, unitDir, execStart string
	}{
		{"usr", "/usr", "lib/systemd/system", "/usr/bin/srdgd run"},
		{"usr local", "/usr/local", "etc/systemd/system", "/usr/local/bin/srdgd run"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dest := t.TempDir()
			env := []string{"DESTDIR=" + dest, "PREFIX=" + tc.prefix, "INSTALL_BIN=" + bin, "KEYGEN=1", "PATH=" + path,
				"SRDGD_CONFIG=/nonexistent/srdgd.yaml"} // the installer must not be confused by the caller's env
			out := runScript(t, "install.sh", env...)
			p := func(rel string) string { return filepath.Join(dest, rel) }
			pre := strings.TrimPrefix(tc.prefix, "/")

			// every file in its place with its mode
			files := []struct {
				rel  string
				mode os.FileMode
			}{
				{pre + "/bin/srdgd", 0o755},
				{pre + "/lib/srdgd/libonnxruntime.so.1", 0o644},
				{tc.unitDir + "/srdgd.service", 0o644},
				{pre + "/lib/sysusers.d/srdgd.conf", 0o644},
				{pre + "/lib/tmpfiles.d/srdgd.conf", 0o644},
				{pre + "/share/doc/srdgd/README.md", 0o644},
				{"etc/srdgd", 0o750},
				{"etc/srdgd/srdgd.yaml", 0o640},
				{"etc/srdgd/gallery.key", 0o600},
			}
			for _, m := range models {
				files = append(files, struct {
					rel  string
					mode os.FileMode
				}{pre + "/share/srdgd/models/" + filepath.Base(m), 0o644})
			}
			for _, f := range files {
				if got := mode(t, p(f.rel)); got != f.mode {
					t.Errorf("%s: mode %v, want %v", f.rel, got, f.mode)
				}
			}
			if demo, _ := filepath.Glob("../models/dist/demo/*"); len(demo) > 0 {
				for _, f := range demo {
					if got := mode(t, p(pre+"/share/srdgd/models/demo/"+filepath.Base(f))); got != 0o644 {
						t.Errorf("demo file %s: mode %v", filepath.Base(f), got)
					}
				}
			}
			if tgt, err := os.Readlink(p(pre + "/lib/srdgd/libonnxruntime.so")); err != nil || tgt != "libonnxruntime.so.1" {
				t.Errorf("libonnxruntime.so link: %q, %v", tgt, err)
			}
			// the installed binary is the one given and runs
			if b, err := exec.Command(p(pre+"/bin/srdgd"), "version").Output(); err != nil || !strings.HasPrefix(string(b), "srdgd ") {
				t.Errorf("installed binary: %q, %v", b, err)
			}
			unit, _ := os.ReadFile(p(tc.unitDir + "/srdgd.service"))
			if !strings.Contains(string(unit), "\nExecStart="+tc.execStart+" --config /etc/srdgd/srdgd.yaml\n") {
				t.Errorf("unit ExecStart is not %s", tc.execStart)
			}
			cfg, _ := os.ReadFile(p("etc/srdgd/srdgd.yaml"))
			// the binary finds its models and ONNX Runtime beside itself:
			// the example config is installed as it is, whatever the prefix
			if string(cfg) != string(example) {
				t.Errorf("installed config differs from the example")
			}
			key, _ := os.ReadFile(p("etc/srdgd/gallery.key"))
			if k := strings.TrimSuffix(string(key), "\n"); len(k) != 64 || len(key) != 65 {
				t.Errorf("gallery key %q: want 64 hex digits and a newline", key)
			} else if _, err := hex.DecodeString(k); err != nil {
				t.Errorf("gallery key: %v", err)
			}
			// staging touches nothing outside DESTDIR
			if b, err := os.ReadFile(calls); err == nil {
				t.Errorf("host-changing commands ran with DESTDIR set:\n%s", b)
			}
			for _, w := range []string{"not creating the srdgd user", "not running systemctl"} {
				if !strings.Contains(out, w) {
					t.Errorf("output does not say %q:\n%s", w, out)
				}
			}
			if _, err := os.Stat(p("var")); err == nil {
				t.Errorf("staging created var/ (state belongs to the box, not the package)")
			}

			// a second install keeps an edited config and the key
			edited := append(cfg, []byte("# edited by the operator\n")...)
			if err := os.WriteFile(p("etc/srdgd/srdgd.yaml"), edited, 0o640); err != nil {
				t.Fatal(err)
			}
			out = runScript(t, "install.sh", env...)
			if got, _ := os.ReadFile(p("etc/srdgd/srdgd.yaml")); !bytes.Equal(got, edited) {
				t.Error("reinstall overwrote the config")
			}
			if got, _ := os.ReadFile(p("etc/srdgd/gallery.key")); !bytes.Equal(got, key) {
				t.Error("reinstall replaced the gallery key")
			}
			if !strings.Contains(out, "kept the existing /etc/srdgd/srdgd.yaml") {
				t.Errorf("reinstall output:\n%s", out)
			}

			// uninstall removes the software and keeps data and config
			state := p("var/lib/srdgd/gallery.db")
			os.MkdirAll(filepath.Dir(state), 0o750)
			os.WriteFile(state, []byte("data"), 0o600)
			out = runScript(t, "uninstall.sh", "DESTDIR="+dest, "PREFIX="+tc.prefix, "PATH="+path)
			for _, gone := range []string{pre + "/bin/srdgd", tc.unitDir + "/srdgd.service", pre + "/lib/srdgd",
				pre + "/share/srdgd", pre + "/lib/sysusers.d/srdgd.conf", pre + "/lib/tmpfiles.d/srdgd.conf"} {
				if _, err := os.Lstat(p(gone)); err == nil {
					t.Errorf("uninstall left %s", gone)
				}
			}
			for _, kept := range []string{"etc/srdgd/srdgd.yaml", "etc/srdgd/gallery.key", "var/lib/srdgd/gallery.db"} {
				if _, err := os.Stat(p(kept)); err != nil {
					t.Errorf("uninstall removed %s: %v", kept, err)
				}
			}
			if !strings.Contains(out, "kept /var/lib/srdgd") {
				t.Errorf("uninstall does not say what it kept:\n%s", out)
			}
			if b, err := os.ReadFile(calls); err == nil {
				t.Errorf("host-changing commands ran with DESTDIR set:\n%s", b)
			}
		})
	}
}

func TestInstallNoKeyWhenStaging(t *testing.T) {
	if _, err := os.Stat("../third_party/onnxruntime/lib/libonnxruntime.so.1"); err != nil {
		t.Skipf("SKIPPING: no ONNX Runtime in third_party: %v", err)
	}
	// a package image must not carry a key: every box makes its own
	dest := t.TempDir()
	path, _ := spyPath(t)
	out := runScript(t, "install.sh", "DESTDIR="+dest, "INSTALL_BIN=/bin/true", "PATH="+path)
	if _, err := os.Stat(filepath.Join(dest, "etc/srdgd/gallery.key")); err == nil {
		t.Error("staged install made a gallery key")
	}
	if !strings.Contains(out, "srdgd gallery keygen") {
		t.Errorf("output does not tell how to make the key:\n%s", out)
	}
}
