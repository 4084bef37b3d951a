package systemd

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// requireTool skips when a systemd tool is missing, or fails with
// SRDGD_TEST_REQUIRE_SYSTEMD=1 (CI) so a broken image cannot pass silently.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("SRDGD_TEST_REQUIRE_SYSTEMD") == "1" {
			t.Fatalf("SRDGD_TEST_REQUIRE_SYSTEMD=1 but %s is missing (Debian package systemd): %v", name, err)
		}
		t.Skipf("SKIPPING %s: %s not found (Debian package systemd)", t.Name(), name)
	}
	return p
}

// unitForVerify copies the unit into dir with ExecStart pointing at an
// executable that exists here, which is the only thing verify checks on the
// host (it does not look up User=).
func unitForVerify(t *testing.T, dir string, edit func(string) string) string {
	t.Helper()
	b, err := os.ReadFile("srdgd.service")
	if err != nil {
		t.Fatal(err)
	}
	exe := "/bin/true"
	if _, err := os.Stat(exe); err != nil {
		if exe, err = os.Executable(); err != nil {
			t.Fatal(err)
		}
	}
	s := strings.Replace(string(b), "ExecStart=/usr/bin/srdgd ", "ExecStart="+exe+" ", 1)
	if s == string(b) {
		t.Fatal("srdgd.service has no ExecStart=/usr/bin/srdgd line")
	}
	if edit != nil {
		s = edit(s)
	}
	p := filepath.Join(dir, "srdgd.service")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func verify(t *testing.T, tool, unit string) (string, error) {
	cmd := exec.Command(tool, "verify", unit)
	// no pager, no colour, and do not try to talk to a running manager
	cmd.Env = append(os.Environ(), "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0", "SYSTEMD_LOG_COLOR=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

func TestUnitVerify(t *testing.T) {
	tool := requireTool(t, "systemd-analyze")
	out, err := verify(t, tool, unitForVerify(t, t.TempDir(), nil))
	if err != nil || out != "" {
		t.Fatalf("systemd-analyze verify srdgd.service: %v\n%s", err, out)
	}
	// The check must be able to fail: the same unit with a misspelt key and
	// a bad value is reported.
	out, _ = verify(t, tool, unitForVerify(t, t.TempDir(), func(s string) string {
		return strings.Replace(s, "WatchdogSec=30s", "WatchdogSecs=30s\nRestartSec=soon", 1)
	}))
	if !strings.Contains(out, "WatchdogSecs") || !strings.Contains(out, "soon") {
		t.Fatalf("verify did not report a broken unit:\n%s", out)
	}
}

// unitSettings reads "Key=value" lines (later ones appended) per section.
func unitSettings(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open("srdgd.service")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string][]string{}
	sec := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "["):
			sec = strings.Trim(l, "[]")
		default:
			k, v, _ := strings.Cut(l, "=")
			m[sec+"."+k] = append(m[sec+"."+k], v)
		}
	}
	return m
}

// TestUnitSettings pins what the daemon and install.sh rely on, so that an
// edit that verifies but breaks them (a dropped watchdog, PrivateDevices=yes
// hiding the GPU) fails here.
func TestUnitSettings(t *testing.T) {
	m := unitSettings(t)
	want := []struct{ key, value string }{
		{"Service.Type", "notify"},
		{"Service.NotifyAccess", "main"},
		{"Service.WatchdogSec", "30s"},
		{"Service.Restart", "on-failure"},
		{"Service.RestartSec", "5s"},
		{"Service.ExecStart", "/usr/bin/srdgd run --config /etc/srdgd/srdgd.yaml"},
		{"Service.User", "srdgd"},
		{"Service.Group", "srdgd"},
		{"Service.SupplementaryGroups", "video render"},
		{"Service.StateDirectory", "srdgd"},
		{"Service.ConfigurationDirectory", "srdgd"},
		{"Service.RuntimeDirectory", "srdgd"},
		{"Service.EnvironmentFile", "-/etc/srdgd/srdgd.env"},
		{"Service.ProtectSystem", "strict"},
		{"Service.ProtectHome", "yes"},
		{"Service.PrivateTmp", "yes"},
		{"Service.NoNewPrivileges", "yes"},
		{"Service.CapabilityBoundingSet", ""},
		{"Service.AmbientCapabilities", ""},
		{"Service.RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6 AF_NETLINK"},
		{"Service.SystemCallFilter", "@system-service"},
		{"Service.SystemCallArchitectures", "native"},
		{"Service.ProtectKernelTunables", "yes"},
		{"Service.ProtectKernelModules", "yes"},
		{"Service.ProtectKernelLogs", "yes"},
		{"Service.ProtectControlGroups", "yes"},
		{"Service.ProtectClock", "yes"},
		{"Service.ProtectHostname", "yes"},
		{"Service.RestrictNamespaces", "yes"},
		{"Service.LockPersonality", "yes"},
		{"Service.RestrictRealtime", "yes"},
		{"Service.RestrictSUIDSGID", "yes"},
		{"Service.MemoryDenyWriteExecute", "no"},
		{"Service.DevicePolicy", "closed"},
		{"Install.WantedBy", "multi-user.target"},
	}
	for _, w := range want {
		got, ok := m[w.key]
		if !ok || got[len(got)-1] != w.value {
			t.Errorf("%s = %q, want %q", w.key, got, w.value)
		}
	}
	if v, ok := m["Service.PrivateDevices"]; ok && v[len(v)-1] != "no" {
		t.Errorf("PrivateDevices=%s hides the GPU device nodes", v[len(v)-1])
	}
	allow := strings.Join(m["Service.DeviceAllow"], "\n")
	for _, d := range []string{"char-nvidia* rw", "/dev/nvmap rw", "char-nvhost* rw"} {
		if !strings.Contains(allow, d) {
			t.Errorf("no DeviceAllow=%s", d)
		}
	}
}

func TestSysusers(t *testing.T) {
	tool := requireTool(t, "systemd-sysusers")
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf, err := os.Open("srdgd.sysusers.conf")
	if err != nil {
		t.Fatal(err)
	}
	defer conf.Close()
	cmd := exec.Command(tool, "--root="+root, "-")
	cmd.Stdin = conf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("systemd-sysusers: %v\n%s", err, out)
	}
	passwd, _ := os.ReadFile(filepath.Join(root, "etc", "passwd"))
	group, _ := os.ReadFile(filepath.Join(root, "etc", "group"))
	if !hasLine(string(passwd), "srdgd:x:", ":srdgd daemon:/var/lib/srdgd:/usr/sbin/nologin") {
		t.Errorf("passwd has no srdgd system user:\n%s", passwd)
	}
	for _, g := range []string{"video:", "render:"} {
		found := false
		for _, l := range strings.Split(string(group), "\n") {
			if strings.HasPrefix(l, g) && strings.HasSuffix(l, ":srdgd") {
				found = true
			}
		}
		if !found {
			t.Errorf("srdgd is not in group %s\n%s", strings.TrimSuffix(g, ":"), group)
		}
	}
}

func hasLine(text, prefix, suffix string) bool {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) && strings.HasSuffix(l, suffix) {
			return true
		}
	}
	return false
}
