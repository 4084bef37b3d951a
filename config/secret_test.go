package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecretNeverPrints(t *testing.T) {
	s := NewSecret("hunter2")
	if s.Reveal() != "hunter2" || !s.IsSet() || NewSecret("").IsSet() {
		t.Fatal("Reveal/IsSet broken")
	}
	type holder struct {
		Name string
		Pw   Secret
		Ptr  *Secret
	}
	h := holder{Name: "x", Pw: s, Ptr: &s}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
		outs = append(outs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, h), fmt.Sprintf(verb, &h))
	}
	outs = append(outs, fmt.Sprint(s), fmt.Sprintln(h), s.String(), s.GoString())
	j, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(j))
	txt, _ := s.MarshalText()
	outs = append(outs, string(txt))
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "secret", s, "holder", h)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "secret", s, slog.Any("ptr", &s))
	outs = append(outs, buf.String())
	for _, o := range outs {
		if strings.Contains(o, "hunter2") || strings.Contains(o, "68756e74657232") /* hex */ {
			t.Errorf("secret leaked: %s", o)
		}
	}
	if !strings.Contains(string(j), `"Pw":"[redacted]"`) {
		t.Errorf("json: %s", j)
	}
	if !strings.Contains(buf.String(), `secret=[redacted]`) {
		t.Errorf("slog: %s", buf.String())
	}
}

func TestLoadedConfigNeverPrintsSecrets(t *testing.T) {
	cfg, err := loadFixture(t, "testdata/full.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Cameras[0].Password.Reveal() != "cam-env-secret" ||
		cfg.Cameras[1].Password.Reveal() != "cam-file-secret" ||
		cfg.Publish.MQTT.Password.Reveal() != "mqtt-env-secret" ||
		cfg.Publish.HTTP.Token.Reveal() != "http-env-secret" ||
		cfg.Publish.WebRTC.ICEServers[1].Credential.Reveal() != "turn-file-secret" {
		t.Fatalf("secrets not resolved: %q %q %q %q %q", cfg.Cameras[0].Password.Reveal(), cfg.Cameras[1].Password.Reveal(),
			cfg.Publish.MQTT.Password.Reveal(), cfg.Publish.HTTP.Token.Reveal(), cfg.Publish.WebRTC.ICEServers[1].Credential.Reveal())
	}
	if cfg.Cameras[2].Password.IsSet() {
		t.Errorf("disabled camera's secret was resolved")
	}
	j, _ := json.Marshal(cfg)
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "cfg", cfg)
	for _, o := range []string{fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), string(j), buf.String()} {
		for _, s := range secretValues {
			if strings.Contains(o, s) {
				t.Errorf("secret %q leaked in %s", s, o)
			}
		}
	}
}

func TestSecretFile(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, content, want, err string
	}{
		{name: "plain", content: "pw", want: "pw"},
		{name: "newline", content: "pw\n", want: "pw"},
		{name: "crlf", content: "pw\r\n", want: "pw"},
		{name: "only one newline trimmed", content: "pw\n\n", want: "pw\n"},
		{name: "inner spaces kept", content: " p w \n", want: " p w "},
		{name: "too large", content: strings.Repeat("x", maxSecretFile+1), err: "is larger than 65536 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_"))
			if err := os.WriteFile(path, []byte(c.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := readSecretFile(path)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %q, %v; want error %q", got, err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %q, %v; want %q", got, err, c.want)
			}
		})
	}
	if _, err := readSecretFile(dir); err == nil || !strings.Contains(err.Error(), "is not a regular file") {
		t.Errorf("directory: got %v", err)
	}
}

func TestRedactURL(t *testing.T) {
	cases := []struct{ in, want string }{
		{"rtsp://192.0.2.1:554/s", "rtsp://192.0.2.1:554/s"},
		{"rtsp://user:pass@192.0.2.1:554/s", "rtsp://192.0.2.1:554/s"},
		{"rtsp://user@host/s", "rtsp://host/s"},
		{"rtsp://u:p@ss@host/s?x=1", "rtsp://host/s?x=1"},
		{"rtsp://u:pa/ss@host/s", "rtsp://host/s"},
		{"rtsp://host/s?next=a@b", "rtsp://host/s?next=a@b"},
		{"user:pass@host:554", "host:554"},
		{"tcp://u:p@broker:1883", "tcp://broker:1883"},
		{"", ""},
		{"not a url", "not a url"},
	}
	for _, c := range cases {
		if got := RedactURL(c.in); got != c.want {
			t.Errorf("RedactURL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
