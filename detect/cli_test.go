package detect

import (
	"bytes"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/srdgd/srdgd/internal/faceimg"
)

func TestCLI(t *testing.T) {
	dir := t.TempDir()
	img, ts := scene(t, 320, 180, []float64{20, 40}, 8, celebaNames(t, 3800, 2))
	in := filepath.Join(dir, "scene.png")
	if err := faceimg.Save(in, img.RGBA()); err != nil {
		t.Fatal(err)
	}
	probes := filepath.Join(dir, "probes")
	var out, errb bytes.Buffer
	if rc := CLI([]string{"--in", in, "--json", "--probes", probes, "--model", modelPath, "--threads", "1"}, &out, &errb); rc != 0 {
		t.Fatalf("exit %d: %s", rc, errb.String())
	}
	var res CLIResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	if res.Width != 320 || res.Detector != "blazeface" || len(res.Faces) != 2 {
		t.Fatalf("result %+v", res)
	}
	var faces []Face
	for _, f := range res.Faces {
		faces = append(faces, Face{Box: Rect{f.Box[0], f.Box[1], f.Box[2], f.Box[3]}})
		if len(f.Landmarks) != NumLandmarks || f.Gate != "ok" || f.Quality.Sharpness <= 0 {
			t.Errorf("face %+v", f)
		}
		for _, p := range []string{f.LR, f.Preview} {
			fh, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := png.DecodeConfig(fh)
			fh.Close()
			if err != nil {
				t.Fatal(err)
			}
			want := 16
			if strings.Contains(p, "hr128") {
				want = 128
			}
			if cfg.Width != want || cfg.Height != want {
				t.Errorf("%s is %dx%d, want %d", p, cfg.Width, cfg.Height, want)
			}
		}
	}
	if idx, fp := match(faces, ts, 0.3); idx[0] < 0 || idx[1] < 0 || fp != 0 {
		t.Errorf("faces %v do not match the pasted ones %v", faces, ts)
	}

	// text output, Haar
	out.Reset()
	if rc := CLI([]string{"--in", in, "--detector", "haar", "--lr", "8"}, &out, &errb); rc != 0 {
		t.Fatalf("haar: exit %d: %s", rc, errb.String())
	}
	if !strings.Contains(out.String(), "haar") || !strings.Contains(out.String(), "face 1: box") {
		t.Errorf("haar text output:\n%s", out.String())
	}
}

func TestCLIErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		rc   int
		msg  string
	}{
		{nil, 2, "usage"},
		{[]string{"--in", "testdata/missing.png"}, 1, "missing.png"},
		{[]string{"--in", "x.png", "--bogus"}, 2, "bogus"},
		{[]string{"--in", "x.png", "--roi", "0.5,0,0.2,1"}, 2, "region"},
	} {
		var out, errb bytes.Buffer
		if rc := CLI(tc.args, &out, &errb); rc != tc.rc || !strings.Contains(errb.String(), tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, rc, errb.String(), tc.rc, tc.msg)
		}
	}
}
