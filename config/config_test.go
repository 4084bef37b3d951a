package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files (*.bad.txt, *.good.json) and the fuzz seed corpus")

// testEnv is the environment every fixture sees; a sibling *.env file adds
// to it.
var testEnv = map[string]string{
	"CAM_PASS":   "cam-env-secret",
	"MQTT_PASS":  "mqtt-env-secret",
	"HTTP_TOKEN": "http-env-secret",
	"TURN_CRED":  "turn-env-secret",
	"EMPTY_VAR":  "",
}

// secretValues are the values of testEnv and testdata/secrets; no message
// may contain one.
var secretValues = []string{"cam-env-secret", "mqtt-env-secret", "http-env-secret", "turn-env-secret", "cam-file-secret", "turn-file-secret", "hunter2"}

func lookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// fixtureEnv returns testEnv plus the KEY=VALUE lines of path's .env sibling.
func fixtureEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for k, v := range testEnv {
		env[k] = v
	}
	data, err := os.ReadFile(strings.TrimSuffix(path, ".yaml") + ".env")
	if errors.Is(err, os.ErrNotExist) {
		return env
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: bad env line %q", path, line)
		}
		env[k] = v
	}
	return env
}

func loadFixture(t *testing.T, path string) (*Config, error) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(path)
	// files_* fixtures are loaded as `srdgd config check` loads a file,
	// with the checks of the files it names
	return loadWith(name, data, lookup(fixtureEnv(t, path)), nil, strings.HasPrefix(name, "files_"))
}

// golden compares got with the file at path, or rewrites it with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./config -run %s -update)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update to accept)\n--- got:\n%s\n--- want:\n%s", path, got, want)
	}
}

func TestFixtures(t *testing.T) {
	paths, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 30 {
		t.Fatalf("found only %d fixtures", len(paths))
	}
	for _, path := range paths {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			cfg, err := loadFixture(t, path)
			switch {
			case strings.HasSuffix(name, ".good.yaml"):
				if err != nil {
					t.Fatalf("want no problems, got:\n%v", err)
				}
				if err := cfg.Validate(); err != nil {
					t.Fatalf("loaded config does not validate again:\n%v", err)
				}
				out, err := json.MarshalIndent(cfg, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				golden(t, strings.TrimSuffix(path, ".yaml")+".json", append(out, '\n'))
			case strings.HasSuffix(name, ".bad.yaml"):
				if cfg != nil {
					t.Errorf("got a config along with the error")
				}
				var errs *Errors
				if !errors.As(err, &errs) {
					t.Fatalf("want *Errors, got %T: %v", err, err)
				}
				msg := err.Error()
				for _, s := range secretValues {
					if strings.Contains(msg, s) {
						t.Errorf("message leaks secret %q:\n%s", s, msg)
					}
				}
				for _, p := range errs.Problems {
					if p.File == "" || p.Msg == "" {
						t.Errorf("problem without file or message: %#v", p)
					}
				}
				golden(t, strings.TrimSuffix(path, ".yaml")+".txt", []byte(msg+"\n"))
			default:
				t.Fatalf("fixture name must end in .good.yaml or .bad.yaml")
			}
		})
	}
}

// TestFixtureCoverage pins that each class of problem the issue lists has a
// fixture whose golden file shows it.
func TestFixtureCoverage(t *testing.T) {
	cases := []struct{ fixture, want string }{
		{"unknown_key_deep", "unknown_key_deep.bad.yaml:7: cameras[1].detct_fps: unknown key, did you mean detect_fps?"},
		{"unknown_key_deep", "unknown_key_deep.bad.yaml:12: cameras[1].roi[0].z: unknown key (allowed: x, y, w, h)"},
		{"wrong_types", `daemon.shutdown_timeout: 10 is not a duration`},
		{"wrong_types", `storage.min_free_bytes: "1024" (quoted, so a string) is not an integer`},
		{"wrong_types", `cameras[0].enabled: "yes" is not a boolean (allowed: true, false)`},
		{"bad_enum", `cameras[0].transport: "tcpp" is not allowed (allowed: auto, tcp, udp)`},
		{"bad_duration", `cameras[0].reconnect.max: "1d" is not a duration`},
		{"duplicate_camera", `cameras[2].name: "door" is already used by cameras[0]`},
		{"url_credentials", "cameras[0].url: credentials are not allowed"},
		{"url_scheme", `has scheme "http" (allowed: rtsp, rtsps)`},
		{"missing_password_env", "environment variable CAM_PASS_NOT_SET is not set"},
		{"roi_range", "cameras[0].roi[0].x: -0.1 is out of range (allowed: [0, 1))"},
		{"face_px", "cameras[0].face_max_px: 64 must exceed face_min_px (64)"},
		{"http_no_token", "anything that listens has authentication"},
		{"udp_ports", "publish.webrtc.udp_port_min: 50010 exceeds udp_port_max (50000)"},
		{"webrtc_ice", `publish.webrtc.ice_addresses[2]: "eth0" is not an IP address`},
		{"webrtc_ice", "publish.webrtc.connect_timeout: 0s is out of range (allowed: 1s to 5m)"},
		{"webrtc_timeout", "publish.webrtc.connect_timeout: 10m0s is out of range"},
		{"syntax", "syntax.bad.yaml:2: YAML syntax error: did not find expected '-' indicator"},
		{"syntax_colon", "syntax_colon.bad.yaml:3: YAML syntax error: mapping values are not allowed in this context"},
		{"empty", "empty.bad.yaml: the file is empty"},
		{"version2", "version2.bad.yaml:1: version: 2 is not supported (supported: 1)"},
	}
	for _, c := range cases {
		data, err := os.ReadFile("testdata/" + c.fixture + ".bad.txt")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), c.want) {
			t.Errorf("%s.bad.txt lacks %q:\n%s", c.fixture, c.want, data)
		}
	}
	// many.bad.yaml must report everything at once.
	data, err := os.ReadFile("testdata/many.bad.txt")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\n"); n < 10 {
		t.Errorf("many.bad.txt has %d problems, want at least 10", n)
	}
}

func TestProblemFields(t *testing.T) {
	data := []byte("version: 1\ncameras:\n  - name: a\n    url: rtsp://u:pw@192.0.2.1/s\n    transport: tcpp\n")
	_, err := LoadBytes("x.yaml", data, nil)
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("want *Errors, got %v", err)
	}
	want := []Problem{
		{File: "x.yaml", Line: 4, Path: "cameras[0].url", Value: "rtsp://192.0.2.1/s", Msg: "credentials are not allowed in the URL; put the user name in cameras[0].username and the password in an environment variable named by cameras[0].password_env or a file named by cameras[0].password_file"},
		{File: "x.yaml", Line: 5, Path: "cameras[0].transport", Value: "tcpp", Msg: `"tcpp" is not allowed (allowed: auto, tcp, udp)`},
	}
	if !reflect.DeepEqual(errs.Problems, want) {
		t.Errorf("got\n%#v\nwant\n%#v", errs.Problems, want)
	}
	if got := errs.Problems[1].String(); got != `x.yaml:5: cameras[0].transport: "tcpp" is not allowed (allowed: auto, tcp, udp)` {
		t.Errorf("String() = %q", got)
	}
}

func exampleEnv() map[string]string {
	return map[string]string{"CAM_FRONT_DOOR_PASSWORD": "example-secret"}
}

// TestExampleIsDefault keeps the shipped example in step with Default: it
// must load, and differ from Default only in the camera it sets.
func TestExampleIsDefault(t *testing.T) {
	got, err := LoadBytes("srdgd.example.yaml", Example, lookup(exampleEnv()))
	if err != nil {
		t.Fatalf("example does not load:\n%v", err)
	}
	want := Default()
	// The only deliberate difference from Default: one camera.
	cam := DefaultCamera()
	cam.Name = "front_door"
	cam.URL = "rtsp://192.0.2.10:554/stream1"
	cam.Username = "viewer"
	cam.PasswordEnv = "CAM_FRONT_DOOR_PASSWORD"
	cam.Password = NewSecret("example-secret")
	want.Cameras = []Camera{cam}
	if !reflect.DeepEqual(got, want) {
		gj, _ := json.MarshalIndent(got, "", " ")
		wj, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("example differs from Default:\n--- example:\n%s\n--- want:\n%s", gj, wj)
	}
	if got.Cameras[0].Password.Reveal() != "example-secret" {
		t.Errorf("camera password not resolved")
	}
	// Without the password variable the example must say which one is missing.
	_, err = LoadBytes("srdgd.example.yaml", Example, nil)
	if err == nil || !strings.Contains(err.Error(), "cameras[0].password_env: environment variable CAM_FRONT_DOOR_PASSWORD is not set") {
		t.Errorf("want missing password problem, got %v", err)
	}
}

// schemaKeys lists every key path of the schema, list entries as [].
func schemaKeys(t reflect.Type, prefix string, fn func(path, key string)) {
	for _, f := range fields(t) {
		p := childPath(prefix, f.name)
		fn(p, f.name)
		ft := t.Field(f.index).Type
		if ft.Kind() == reflect.Slice {
			ft = ft.Elem()
			p += "[]"
		}
		if ft.Kind() == reflect.Struct && ft != durationType {
			schemaKeys(ft, p, fn)
		}
	}
}

// TestExampleDocumentsEveryKey: every key of the schema appears in the
// example, set or (inside lists) in a comment.
func TestExampleDocumentsEveryKey(t *testing.T) {
	text := string(Example)
	schemaKeys(reflect.TypeOf(Config{}), "", func(path, key string) {
		re := regexp.MustCompile(`(?m)^[ #-]*(- )?` + regexp.QuoteMeta(key) + `:|[{,] *` + regexp.QuoteMeta(key) + `:`)
		if !re.MatchString(text) {
			t.Errorf("example does not mention %s", path)
		}
	})
}

// TestDocCommentsStateDefaults: every field of the schema documents its
// default in its doc comment (gortsplib style).
func TestDocCommentsStateDefaults(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "config.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	ast.Inspect(f, func(node ast.Node) bool {
		st, ok := node.(*ast.StructType)
		if !ok {
			return true
		}
		for _, fld := range st.Fields.List {
			if fld.Tag == nil {
				continue
			}
			tag, _ := strconv.Unquote(fld.Tag.Value)
			yamlKey := reflect.StructTag(tag).Get("yaml")
			if yamlKey == "" || yamlKey == "-" {
				continue
			}
			n++
			if fld.Doc == nil || !strings.Contains(fld.Doc.Text(), "Default:") {
				t.Errorf("%s: field %s (%s) lacks \"Default:\" in its doc comment", fset.Position(fld.Pos()), fld.Names[0].Name, yamlKey)
			}
		}
		return true
	})
	if n < 100 {
		t.Errorf("checked only %d fields", n)
	}
}

// TestSchemaKinds: the decoder handles every kind of field in the schema.
func TestSchemaKinds(t *testing.T) {
	secretType := reflect.TypeOf(Secret{})
	var check func(t2 reflect.Type, path string)
	check = func(t2 reflect.Type, path string) {
		if t2 == durationType {
			return
		}
		switch t2.Kind() {
		case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Float64:
		case reflect.Slice:
			check(t2.Elem(), path+"[]")
		case reflect.Map:
			if t2.Key().Kind() != reflect.String {
				t.Errorf("%s: map keys must be strings", path)
			}
			check(t2.Elem(), path+".*")
		case reflect.Struct:
			for i := 0; i < t2.NumField(); i++ {
				sf := t2.Field(i)
				tag := sf.Tag.Get("yaml")
				switch {
				case sf.Type == secretType:
					if tag != "-" {
						t.Errorf("%s.%s: a Secret must be tagged yaml:\"-\"", path, sf.Name)
					}
				case tag == "" || tag == "-":
					t.Errorf("%s.%s: field without a yaml key", path, sf.Name)
				default:
					check(sf.Type, childPath(path, tag))
				}
			}
		default:
			t.Errorf("%s: kind %s is not decoded", path, t2.Kind())
		}
	}
	check(reflect.TypeOf(Config{}), "")
}

func TestEnvNames(t *testing.T) {
	names := EnvNames()
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			t.Errorf("%s names two keys", n)
		}
		seen[n] = true
	}
	for _, want := range []string{"SRDGD_LOG_LEVEL", "SRDGD_SRDG_PROVIDERS", "SRDGD_PUBLISH_MQTT_HA_DISCOVERY_ENABLED", "SRDGD_PUBLISH_WEBRTC_NAT_1TO1_IPS", "SRDGD_DETECT_QUALITY_MIN_FACE_PX"} {
		if !seen[want] {
			t.Errorf("missing %s", want)
		}
	}
	for _, not := range []string{"SRDGD_VERSION", "SRDGD_CAMERAS", "SRDGD_PUBLISH_WEBRTC_ICE_SERVERS", envConfigVar} {
		if seen[not] {
			t.Errorf("%s must not be an override", not)
		}
	}
}

func TestEnvOverrides(t *testing.T) {
	cfg, err := loadFixture(t, "testdata/env_override.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"log.level over the file", cfg.Log.Level, "debug"},
		{"srdg.scale", cfg.SRDG.Scale, 16},
		{"detect.tile", cfg.Detect.Tile, false},
		{"daemon.shutdown_timeout", cfg.Daemon.ShutdownTimeout, 45 * time.Second},
		{"srdg.providers trimmed", cfg.SRDG.Providers, []string{"cuda", "cpu"}},
		{"nat_1to1_ips empty", cfg.Publish.WebRTC.NAT1To1IPs, []string(nil)},
		{"publish.mqtt.broker", cfg.Publish.MQTT.Broker, "tcp://10.0.0.2:1883"},
		{"untouched default", cfg.Log.Format, "text"},
		{"derived path", cfg.Paths().Spool, "/var/lib/srdgd/spool"},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

func TestStrayEnviron(t *testing.T) {
	data := []byte("version: 1\ncameras:\n  - name: a\n    url: rtsp://192.0.2.1/s\n    username: u\n    password_env: SRDGD_CAM_A_PASSWORD\n")
	environ := []string{
		"PATH=/usr/bin",
		"SRDGD_CONFIG=/etc/srdgd/srdgd.yaml",
		"SRDGD_CAM_A_PASSWORD=pw",
		"SRDGD_LOG_LEVEL=debug",
		"SRDGD_LOG_LEVL=debug",
		"SRDGD_NONSENSE=1",
		// reserved for the test suite and benchmarks: never flagged
		"SRDGD_TEST_REQUIRE_FFMPEG=1",
		"SRDGD_BENCH_OUT=/tmp/x",
	}
	env := func(k string) (string, bool) {
		for _, kv := range environ {
			if name, v, _ := strings.Cut(kv, "="); name == k {
				return v, true
			}
		}
		return "", false
	}
	_, err := load("x.yaml", data, env, environ)
	want := "$SRDGD_LOG_LEVL: unknown override variable, did you mean SRDGD_LOG_LEVEL?\n" +
		"$SRDGD_NONSENSE: unknown override variable (overrides are SRDGD_ plus the key path upper-cased with _ for ., such as SRDGD_LOG_LEVEL)"
	if err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
	// LoadBytes cannot list the environment and so does not check it.
	if _, err := LoadBytes("x.yaml", data, env); err != nil {
		t.Errorf("LoadBytes: %v", err)
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "srdgd.yaml")
	if err := os.WriteFile(path, Example, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CAM_FRONT_DOOR_PASSWORD", "from-process-env")
	t.Setenv("SRDGD_LOG_FORMAT", "json")
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Cameras[0].Password.Reveal() != "from-process-env" || cfg.Log.Format != "json" {
		t.Errorf("process environment not used: %q %q", cfg.Cameras[0].Password.Reveal(), cfg.Log.Format)
	}

	_, err = Load(filepath.Join(dir, "missing.yaml"))
	var errs *Errors
	if !errors.As(err, &errs) || len(errs.Problems) != 1 {
		t.Fatalf("want one problem, got %v", err)
	}
	if want := filepath.Join(dir, "missing.yaml") + ": cannot read config file: no such file or directory"; err.Error() != want {
		t.Errorf("got %q, want %q", err.Error(), want)
	}
}

func TestValidateInCode(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default does not validate:\n%v", err)
	}
	c := Default()
	c.Cameras = []Camera{DefaultCamera()}
	c.Cameras[0].Name = "a"
	c.Cameras[0].URL = "rtsp://192.0.2.1/s"
	if err := c.Validate(); err != nil {
		t.Fatalf("DefaultCamera with name and url does not validate:\n%v", err)
	}
	c.Log.Level = "loud"
	c.Cameras[0].DetectFPS = 0
	err := c.Validate()
	want := `log.level: "loud" is not allowed (allowed: debug, info, warn, error)` + "\n" +
		`cameras[0].detect_fps: 0 is out of range (allowed: (0, 60])`
	if err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
}

func TestPaths(t *testing.T) {
	c := Default()
	got := c.Paths()
	want := Paths{
		Spool:    "/var/lib/srdgd/spool",
		TRTCache: "/var/lib/srdgd/trt-cache",
		Gallery:  "/var/lib/srdgd/gallery.db",
	}
	if got != want {
		t.Errorf("defaults: got %+v, want %+v", got, want)
	}
	c.SRDG.Scale = 16
	c.Storage.StateDir = "/s"
	c.Storage.SpoolDir = "/spool"
	c.Match.GalleryPath = "/g.db"
	got = c.Paths()
	if got.Spool != "/spool" || got.TRTCache != "/s/trt-cache" || got.Gallery != "/g.db" {
		t.Errorf("overrides: got %+v", got)
	}
}

func TestSlogLevel(t *testing.T) {
	for level, want := range map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError} {
		if got := (Log{Level: level}).SlogLevel(); got != want {
			t.Errorf("%s: got %v", level, got)
		}
	}
}

func TestSamplersExtensible(t *testing.T) {
	old := slices.Clone(Samplers)
	t.Cleanup(func() { Samplers = old })
	data := []byte("version: 1\nsrdg: {sampler: dpm}\n")
	if _, err := LoadBytes("x.yaml", data, nil); err == nil || !strings.Contains(err.Error(), `"dpm" is not allowed (allowed: reference, fast, ode)`) {
		t.Fatalf("got %v", err)
	}
	Samplers = append(Samplers, "dpm")
	if _, err := LoadBytes("x.yaml", data, nil); err != nil {
		t.Errorf("after adding dpm: %v", err)
	}
}

func TestEditDistance(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "abc", 0}, {"detct_fps", "detect_fps", 1}, {"kitten", "sitting", 3}, {"a", "xyzw", 3},
	}
	for _, c := range cases {
		if got := editDistance(c.a, c.b, 3); got != c.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func Example_errors() {
	_, err := LoadBytes("srdgd.yaml", []byte("version: 1\ncameras:\n  - name: door\n    url: rtsp://192.0.2.1/s\n    transport: tcpp\n    detct_fps: 3\n"), nil)
	fmt.Println(err)
	// Output:
	// srdgd.yaml:5: cameras[0].transport: "tcpp" is not allowed (allowed: auto, tcp, udp)
	// srdgd.yaml:6: cameras[0].detct_fps: unknown key, did you mean detect_fps? (allowed: name, url, username, password_env, password_file, transport, tls_insecure, tls_fingerprint, roi, face_min_px, face_max_px, detect_fps, enabled, reconnect, attributes, threshold_offset, margin_offset)
}

// TestLoadFileKinds: Load and LoadChecked refuse, before reading, what is
// not a regular file of at most MaxFileBytes.
func TestLoadFileKinds(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, append([]byte("version: 1\n#"), bytes.Repeat([]byte("x"), MaxFileBytes)...), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, path, want string }{
		{"device", "/dev/zero", "not a regular file (a character device)"},
		{"fifo without a writer", fifo, "not a regular file (a FIFO)"},
		{"directory", dir, "not a regular file (a directory)"},
		{"over 1 MiB", big, "more than the limit of 1048576 (1 MiB)"},
		{"missing", filepath.Join(dir, "nope.yaml"), "no such file or directory"},
	} {
		for _, load := range []struct {
			name string
			f    func(string) (*Config, error)
		}{{"Load", Load}, {"LoadChecked", LoadChecked}} {
			t.Run(c.name+"/"+load.name, func(t *testing.T) {
				cfg, err := load.f(c.path)
				var errs *Errors
				if cfg != nil || !errors.As(err, &errs) || len(errs.Problems) != 1 {
					t.Fatalf("got %v, %v; want one problem", cfg, err)
				}
				p := errs.Problems[0]
				if p.File != c.path || !strings.HasPrefix(p.Msg, "cannot read config file: ") || !strings.Contains(p.Msg, c.want) {
					t.Errorf("problem %q, want %s: cannot read config file: ...%s", p, c.path, c.want)
				}
			})
		}
	}
}
