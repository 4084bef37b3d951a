package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/srdgd/srdgd/detect"
	"github.com/srdgd/srdgd/detect/detecttest"
	"github.com/srdgd/srdgd/internal/app"
	"github.com/srdgd/srdgd/internal/faceimg"
)

const blazefaceModel = "../../models/dist/blazeface.onnx"

// detectScene pastes one CelebA face per entry of sizes (face box heights)
// into a synthetic w x h background and returns it with the boxes BlazeFace
// should find (its calibration inverted), as detect's own tests do.
func detectScene(t *testing.T, w, h int, sizes []float64, seed uint64, names []string) (*detecttest.Picture, []detect.Rect) {
	t.Helper()
	c := detect.BlazeFaceCalibration
	bg := detecttest.Background(w, h, seed)
	sides := make([]float64, len(sizes))
	for i, s := range sizes {
		sides[i] = s * c.BoxSide
	}
	var boxes []detect.Rect
	for i, at := range detecttest.Layout(w, h, sides, seed) {
		x0, y0, x1, y1 := detecttest.PasteFace(t, bg, detecttest.LoadCelebA(t, names[i%len(names)]), at[0], at[1], sides[i])
		bh := (x1 - x0) / c.BoxSide
		bcx, bcy := (x0+x1)/2-c.BoxOffX*bh, (y0+y1)/2-c.BoxOffY*bh
		boxes = append(boxes, detect.Rect{X0: bcx - bh/2, Y0: bcy - bh/2, X1: bcx + bh/2, Y1: bcy + bh/2})
	}
	return bg, boxes
}

// matchBoxes pairs detections with the truth greedily by IoU >= minIoU: per
// truth the matched face index (-1 if none), and the unmatched detections.
func matchBoxes(faces, truth []detect.Rect, minIoU float64) (idx []int, fp int) {
	idx = make([]int, len(truth))
	used := make([]bool, len(faces))
	for i, tb := range truth {
		idx[i] = -1
		best := minIoU
		for j, f := range faces {
			if v := detect.IoU(f, tb); !used[j] && v >= best {
				best, idx[i] = v, j
			}
		}
		if idx[i] >= 0 {
			used[idx[i]] = true
		}
	}
	for _, u := range used {
		if !u {
			fp++
		}
	}
	return idx, fp
}

func TestCLI(t *testing.T) {
	dir := t.TempDir()
	pic, ts := detectScene(t, 320, 180, []float64{20, 40}, 8, detecttest.CelebANames(t, 3800, 2))
	img := &detect.Image{Width: pic.W, Height: pic.H, Pix: pic.Pix}
	in := filepath.Join(dir, "scene.png")
	if err := faceimg.Save(in, img.RGBA()); err != nil {
		t.Fatal(err)
	}
	probes := filepath.Join(dir, "probes")
	var out, errb bytes.Buffer
	if rc := cmdDetect(context.Background(), []string{"--in", in, "--json", "--probes", probes, "--model", blazefaceModel, "--threads", "1"}, &out, &errb); rc != 0 {
		t.Fatalf("exit %d: %s", rc, errb.String())
	}
	var res app.PhotoReport
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	if res.Width != 320 || res.Detector != "blazeface" || len(res.Faces) != 2 {
		t.Fatalf("result %+v", res)
	}
	var faces []detect.Rect
	for _, f := range res.Faces {
		faces = append(faces, detect.Rect{X0: f.Box[0], Y0: f.Box[1], X1: f.Box[2], Y1: f.Box[3]})
		if len(f.Landmarks) != detect.NumLandmarks || f.Gate != "ok" || f.Quality.Sharpness <= 0 {
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
	if idx, fp := matchBoxes(faces, ts, 0.3); idx[0] < 0 || idx[1] < 0 || fp != 0 {
		t.Errorf("faces %v do not match the pasted ones %v", faces, ts)
	}

	// text output, Haar
	out.Reset()
	if rc := cmdDetect(context.Background(), []string{"--in", in, "--detector", "haar", "--lr", "8"}, &out, &errb); rc != 0 {
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
		if rc := cmdDetect(context.Background(), tc.args, &out, &errb); rc != tc.rc || !strings.Contains(errb.String(), tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, rc, errb.String(), tc.rc, tc.msg)
		}
	}
}
