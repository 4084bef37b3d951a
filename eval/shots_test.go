package eval

import (
	"context"
	"image"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/srdgd/srdgd/internal/faceimg"
)

// testFace is a synthetic 128x128 face (see synthFace).
func testFace(t *testing.T) *faceimg.Planar {
	t.Helper()
	return faceimg.FromImage(synthFace(2, 0, 128, 128, image.Rect(0, 0, 128, 128)))
}

func TestShotsMake(t *testing.T) {
	hr := testFace(t)
	ctx := context.Background()
	s := DefaultShots(4)
	a, seen, n, err := s.Make(ctx, hr, 8, "p.png")
	if err != nil {
		t.Fatal(err)
	}
	if n != 16 || len(a) != 4 || len(seen) != 4 || len(a[0]) != 3*16*16 || len(seen[0]) != 3*128*128 {
		t.Fatalf("n %d, %d shots, %d HR references", n, len(a), len(seen))
	}
	b, _, _, _ := s.Make(ctx, hr, 8, "p.png")
	for k := range a {
		if !slices.Equal(a[k], b[k]) {
			t.Fatalf("shot %d differs between two calls with the same key", k)
		}
		for _, v := range a[k] { // 8 bits, as a camera delivers
			if q := float32(int(v*255+0.5)) / 255; q != v || v < 0 || v > 1 {
				t.Fatalf("shot %d value %v is not an 8-bit level", k, v)
			}
		}
		for j := range k {
			if slices.Equal(a[k], a[j]) {
				t.Errorf("shots %d and %d are equal", j, k)
			}
		}
	}
	c, _, _, _ := s.Make(ctx, hr, 8, "q.png")
	if slices.Equal(a[0], c[0]) {
		t.Error("two probes got the same shot 0")
	}
	// without motion and noise a shot is MakeLR's probe rounded to 8 bits
	still := Shots{K: 1, Shift: 0, Zoom: 0, Noise: 0}
	st, _, _, err := still.Make(ctx, hr, 16, "p.png")
	if err != nil {
		t.Fatal(err)
	}
	lr, _, _ := MakeLR(hr, 16)
	for i := range lr {
		if d := st[0][i] - lr[i]; d > 0.5/255+1e-6 || d < -0.5/255-1e-6 {
			t.Fatalf("still shot value %d: %v, MakeLR %v", i, st[0][i], lr[i])
		}
	}
	// the motion changes the shot more than the noise alone does
	noisy := Shots{K: 1, Noise: 0.01, Shift: 0, Zoom: 0}
	ns, _, _, _ := noisy.Make(ctx, hr, 8, "p.png")
	moved, _, _, _ := Shots{K: 1, Noise: 0.01, Shift: 0.5, Zoom: 0.04}.Make(ctx, hr, 8, "p.png")
	plain, _, _ := MakeLR(hr, 8)
	if pn, pm := psnrOf(t, ns[0], plain), psnrOf(t, moved[0], plain); pm >= pn {
		t.Errorf("PSNR to the still probe: noise only %.2f dB, moved %.2f dB", pn, pm)
	}
	for _, bad := range []int{1, 7, 12, 32} {
		if _, _, _, err := s.Make(ctx, hr, bad, "p.png"); err == nil {
			t.Errorf("scale %d accepted", bad)
		}
	}
	// a direct scale (LR rows only): 128/4 = 32 px shots
	if sh, _, n, err := s.Make(ctx, hr, 4, "p.png"); err != nil || n != 32 || len(sh[0]) != 3*32*32 {
		t.Errorf("scale 4: %d px, %v", n, err)
	}
}

func psnrOf(t *testing.T, a, b []float32) float64 {
	t.Helper()
	v, err := PSNR(a, b, 1)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestShotsCheck(t *testing.T) {
	tests := []struct {
		s    Shots
		want string
	}{
		{Shots{}, ""},
		{Shots{K: 65}, "shots 65"},
		{Shots{Samples: 17}, "samples 17"},
		{Shots{Shift: 3}, "shift 3"},
		{Shots{Zoom: 0.5}, "zoom 0.5"},
		{Shots{Noise: 0.2}, "noise 0.2"},
		{Shots{CRF: 52}, "crf 52"},
	}
	for _, tt := range tests {
		err := tt.s.WithDefaults().Check()
		if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%+v: %v, want %q", tt.s, err, tt.want)
		}
	}
	b28 := DefaultShots(1)
	b28.CRF = 28
	if a, b := DefaultShots(1).Tag(), b28.Tag(); a == b {
		t.Errorf("tags equal: %s", a)
	}
}

// TestShotsH264 sends shots through the real libx264 and ingest's decoder:
// as many frames come back as went in, close to what went in but not equal
// (the coding is lossy), and more so at a higher CRF.
func TestShotsH264(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skipf("SKIPPING: ffmpeg not installed: %v", err)
	}
	hr := testFace(t)
	ctx := context.Background()
	base := DefaultShots(4)
	raw, _, _, err := base.Make(ctx, hr, 8, "p.png")
	if err != nil {
		t.Fatal(err)
	}
	var psnr []float64
	for _, crf := range []int{18, 40} {
		s := base
		s.CRF = crf
		coded, _, _, err := s.Make(ctx, hr, 8, "p.png")
		if err != nil {
			if strings.Contains(err.Error(), "built without") || strings.Contains(err.Error(), "cgo") {
				t.Skipf("SKIPPING: no libavcodec decoder: %v", err)
			}
			t.Fatal(err)
		}
		if len(coded) != len(raw) {
			t.Fatalf("crf %d: %d shots back, %d sent", crf, len(coded), len(raw))
		}
		var p float64
		for k := range coded {
			p += psnrOf(t, coded[k], raw[k]) / float64(len(coded))
		}
		psnr = append(psnr, p)
	}
	t.Logf("H.264 round trip PSNR: crf 18 %.2f dB, crf 40 %.2f dB", psnr[0], psnr[1])
	if psnr[0] < 24 || psnr[0] > 99 || psnr[1] >= psnr[0] {
		t.Errorf("round trip PSNR crf 18 %.2f dB, crf 40 %.2f dB: want crf 18 >= 24 dB (4:2:0 chroma on a 16 px face), lossy, and crf 40 worse", psnr[0], psnr[1])
	}
}

func TestSRCacheFiles(t *testing.T) {
	dir := t.TempDir()
	in := Input{Probe: Image{Path: "a.png"}, Draw: Draw(1, 0)}
	m := Method{Name: "sr", ID: "model1"}
	p := srCachePath(dir, m, 8, in, "tag")
	for _, other := range []string{
		srCachePath(dir, Method{Name: "sr", ID: "model2"}, 8, in, "tag"),
		srCachePath(dir, m, 16, in, "tag"),
		srCachePath(dir, m, 8, Input{Probe: in.Probe, Draw: Draw(1, 1)}, "tag"),
		srCachePath(dir, m, 8, in, "tag2"),
	} {
		if other == p {
			t.Errorf("two keys share %s", p)
		}
	}
	pix := testFace(t).Pix
	got, err := writeSR(p, pix)
	if err != nil {
		t.Fatal(err)
	}
	back, err := readSR(p)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, back) {
		t.Error("the values written are not the values read back")
	}
	if d := psnrOf(t, back, pix); d < 90 {
		t.Errorf("16-bit round trip PSNR %.1f dB", d)
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(p), ".sr-*")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
}
