package hwtest

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/srdgd/srdgd/publish/httpapi"
)

// TestHTTPListen: publish.http.listen is free, taken by a running srdgd
// (its real HTTP API), taken by another program, or not an address of this
// box; each says so and names the key.
func TestHTTPListen(t *testing.T) {
	free := freeAddr(t)
	other, err := net.Listen("tcp", "127.0.0.1:0") // accepts and never answers HTTP
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	go func() {
		for {
			c, err := other.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	api, err := httpapi.New(httpapi.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-api.Ready()

	cases := []struct {
		name   string
		http   HTTPOptions
		status Status
		want   string
	}{
		{"free", HTTPOptions{Enabled: true, Listen: free}, StatusOK, "publish.http.listen " + free + " is free"},
		{"a running srdgd", HTTPOptions{Enabled: true, Listen: api.Addr().String()}, StatusWarn, "is taken by a running srdgd"},
		{"another program", HTTPOptions{Enabled: true, Listen: other.Addr().String()}, StatusFail, "is taken by another program"},
		{"not this box", HTTPOptions{Enabled: true, Listen: "192.0.2.1:8080"}, StatusFail, "publish.http.listen 192.0.2.1:8080 cannot be listened on"},
		{"bad address", HTTPOptions{Enabled: true, Listen: "nonsense"}, StatusFail, "cannot be listened on"},
		{"off", HTTPOptions{Enabled: false, Listen: free}, StatusSkip, "publish.http.enabled is false"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runOnly(t, func(o *Options) { o.HTTP = c.http })
			ch := mustCheck(t, r, "http")
			if ch.Status != c.status || !strings.Contains(ch.Message, c.want) {
				t.Errorf("%s %q, want %s and %q", ch.Status, ch.Message, c.status, c.want)
			}
		})
	}
}

func TestNoCameraWarns(t *testing.T) {
	cases := []struct {
		name     string
		cams     []Camera
		disabled int
		want     string // "" = no cameras check
	}{
		{"none configured", nil, 0, "no camera configured"},
		{"all disabled", nil, 2, "every camera in cameras: has enabled: false (2)"},
		{"one enabled", []Camera{{Name: "door", URL: "rtsp://" + freeAddr(t) + "/s"}}, 1, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runOnly(t, func(o *Options) { o.Cameras, o.DisabledCameras = c.cams, c.disabled; o.CameraTimeout = 2e9 })
			ch := r.Find("cameras")
			if c.want == "" {
				if ch != nil {
					t.Errorf("cameras check with a camera: %+v", ch)
				}
				if cam := r.Find("camera/door"); cam == nil || !strings.Contains(cam.Message, "cameras[name=door].url") {
					t.Errorf("camera/door does not name its key: %+v", cam)
				}
				return
			}
			if ch == nil || ch.Status != StatusWarn || !strings.Contains(ch.Message, c.want) {
				t.Errorf("cameras: %+v, want a warning %q", ch, c.want)
			}
			for _, f := range r.Failed() {
				if f == "cameras" {
					t.Error("no camera makes the box unfit")
				}
			}
		})
	}
}
