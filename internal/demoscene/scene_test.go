package demoscene

import (
	"bytes"
	"context"
	"image"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func demoDir(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	d := filepath.Join(filepath.Dir(file), "..", "..", "models", "dist", "demo")
	if _, err := os.Stat(filepath.Join(d, "manifest.json")); err != nil {
		t.Fatalf("demo faces missing (make models-packaged): %v", err)
	}
	return d
}

func TestSceneGroundTruth(t *testing.T) {
	m, err := LoadManifest(demoDir(t))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	visible := 0
	for k := range s.Frames() {
		fs := s.Faces(k)
		if len(fs) > 0 {
			visible++
		}
		for _, f := range fs {
			seen[f.Person] = true
			h := float64(f.Box.Dy()) * 0.8 // the face fills 80 % of the sprite
			if h < 11.5 || h > 40.5 {
				t.Fatalf("frame %d person %d face %.1f px, want 12-40", k, f.Person, h)
			}
		}
	}
	if len(seen) != len(m.People) {
		t.Fatalf("%d of %d people cross the scene", len(seen), len(m.People))
	}
	if visible < s.Frames()*9/10 {
		t.Fatalf("faces in only %d of %d frames", visible, s.Frames())
	}
	// rendering is deterministic and draws the faces
	a := image.NewRGBA(image.Rect(0, 0, 1280, 720))
	b := image.NewRGBA(image.Rect(0, 0, 1280, 720))
	s.Render(100, a)
	s.Render(100, b)
	if !bytes.Equal(a.Pix, b.Pix) {
		t.Fatal("Render is not deterministic")
	}
	s.Render(101, b)
	if bytes.Equal(a.Pix, b.Pix) {
		t.Fatal("consecutive frames are identical: nobody moves")
	}
	s2, _ := New(m, Options{Width: 640, Height: 360})
	if s.Key() == s2.Key() {
		t.Fatal("cache key ignores the size")
	}
	if _, err := New(m, Options{Width: 321, Height: 240}); err == nil {
		t.Fatal("odd width accepted")
	}
	if _, err := LoadManifest(t.TempDir()); err == nil || !strings.Contains(err.Error(), "make models-packaged") {
		t.Fatalf("missing manifest: %v", err)
	}
}

func TestEncode(t *testing.T) {
	ff, err := exec.LookPath("ffmpeg")
	if err != nil {
		if os.Getenv("SRDGD_TEST_REQUIRE_FFMPEG") != "" {
			t.Fatal(err)
		}
		t.Skip("SKIPPING: no ffmpeg")
	}
	m, _ := LoadManifest(demoDir(t))
	s, err := New(m, Options{Width: 320, Height: 240, FPS: 10, Loop: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "scene.mp4")
	if err := s.Encode(context.Background(), ff, out); err != nil {
		t.Fatal(err)
	}
	probe, err := exec.Command(strings.TrimSuffix(ff, "ffmpeg")+"ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "csv=p=0", out).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(probe)); got != "h264,320,240,20" {
		t.Fatalf("ffprobe: %q, want h264,320,240,20", got)
	}
	if _, err := os.Stat(out + ".tmp.mp4"); err == nil {
		t.Fatal("temporary file left behind")
	}
}

func TestFrameCodeRoundTrip(t *testing.T) {
	m, _ := LoadManifest(demoDir(t))
	s, err := New(m, Options{Width: 640, Height: 360, FrameCode: true})
	if err != nil {
		t.Fatal(err)
	}
	img := image.NewRGBA(image.Rect(0, 0, 640, 360))
	for _, k := range []int{0, 1, 77, 599, 40000} {
		s.Render(k, img)
		bgr := make([]byte, 640*360*3)
		for i := 0; i < 640*360; i++ {
			bgr[3*i], bgr[3*i+1], bgr[3*i+2] = img.Pix[4*i+2], img.Pix[4*i+1], img.Pix[4*i]
		}
		got, ok := ReadFrameCode(bgr, 640*3)
		if !ok || got != k {
			t.Fatalf("frame %d read back as %d (ok %v)", k, got, ok)
		}
	}
	grey := make([]byte, 640*360*3)
	for i := range grey {
		grey[i] = 128
	}
	if _, ok := ReadFrameCode(grey, 640*3); ok {
		t.Fatal("a grey picture has no frame code")
	}
}

// Crossing numbers one pass of one person: over three loops each number is
// one person in one contiguous run of frames, walks that wrap the loop end
// keep their number into the next loop, and every loop has one crossing per
// person.
func TestSceneCrossings(t *testing.T) {
	m, err := LoadManifest(demoDir(t))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(m, Options{Width: 640, Height: 360})
	if err != nil {
		t.Fatal(err)
	}
	n := s.Frames()
	type span struct{ person, first, last int }
	spans := map[int]*span{}
	for k := range 3 * n {
		for _, f := range s.Faces(k) {
			sp, ok := spans[f.Crossing]
			if !ok {
				spans[f.Crossing] = &span{f.Person, k, k}
				continue
			}
			if sp.person != f.Person {
				t.Fatalf("crossing %d: person %d at frame %d, person %d before", f.Crossing, f.Person, k, sp.person)
			}
			if sp.last != k-1 {
				t.Fatalf("crossing %d: frames %d..%d, then again at %d", f.Crossing, sp.first, sp.last, k)
			}
			sp.last = k
		}
	}
	cross := 0.3 * s.o.Loop.Seconds() * float64(s.o.FPS)
	perLoop := map[int]int{}
	for id, sp := range spans {
		if sp.first > 0 && sp.last < 3*n-1 && math.Abs(float64(sp.last-sp.first+1)-cross) > 1 {
			t.Errorf("crossing %d lasts %d frames, want %.0f", id, sp.last-sp.first+1, cross)
		}
		perLoop[sp.first/n]++
	}
	for l := range 3 {
		// the crossings starting in loop l (loop 0 also holds the tails of
		// the walks that wrap from the loop before)
		if got := perLoop[l]; got < len(m.People) {
			t.Errorf("loop %d: %d crossings start, want at least %d", l, got, len(m.People))
		}
	}
	// the frames repeat
	if a, b := s.Faces(17), s.Faces(17+n); len(a) != len(b) || a[0].Box != b[0].Box || a[0].Crossing == b[0].Crossing {
		t.Errorf("frame 17 %v and %v a loop later: want the same boxes, other crossings", a, b)
	}
}

// TestPassersBy: extra sprites cross the scene as persons after the
// manifest's, every one of them once per loop, planned deterministically by
// seed and mixed with the manifest's people.
func TestPassersBy(t *testing.T) {
	m, err := LoadManifest(demoDir(t))
	if err != nil {
		t.Fatal(err)
	}
	photo := image.NewNRGBA(image.Rect(0, 0, 178, 218))
	for i := range photo.Pix {
		photo.Pix[i] = uint8(i * 7)
		if i%4 == 3 {
			photo.Pix[i] = 255 // opaque
		}
	}
	sp, err := Sprite(photo, image.Rect(29, 56, 149, 176))
	if err != nil {
		t.Fatal(err)
	}
	if b := sp.Bounds(); b.Dx() != SpriteSize || b.Dy() != SpriteSize {
		t.Fatalf("sprite %v, want %dx%d", b, SpriteSize, SpriteSize)
	}
	if a := sp.NRGBAAt(0, 0).A; a != 0 {
		t.Fatalf("sprite corner alpha %d, want 0", a)
	}
	if a := sp.NRGBAAt(64, 64).A; a != 255 {
		t.Fatalf("sprite centre alpha %d, want 255", a)
	}
	if _, err := Sprite(photo, image.Rect(0, 0, 4, 4)); err == nil {
		t.Fatal("a 4x4 face box made a sprite")
	}
	passers := []*image.NRGBA{sp, sp, sp, sp}
	o := Options{Loop: 80 * time.Second, CrossTime: 12 * time.Second, Passers: passers, Seed: 3}
	s, err := New(m, o)
	if err != nil {
		t.Fatal(err)
	}
	n := len(m.People) + len(passers)
	if len(s.Walks()) != n {
		t.Fatalf("%d walks, want %d", len(s.Walks()), n)
	}
	who := map[int]int{}
	var order []int
	for _, w := range s.Walks() {
		who[w.Person]++
		order = append(order, w.Person)
		if d := w.End - w.Start; d != 12*time.Second {
			t.Fatalf("walk of %d takes %v, want 12s", w.Person, d)
		}
	}
	for p := range n {
		if who[p] != 1 {
			t.Fatalf("person %d walks %d times per loop, want 1 (%v)", p, who[p], order)
		}
	}
	if slices.IsSorted(order) {
		t.Fatalf("walk order %v: passers not mixed in", order)
	}
	again, _ := New(m, o)
	o.Seed = 4
	other, _ := New(m, o)
	if !slices.Equal(walkPeople(again), order) || slices.Equal(walkPeople(other), order) {
		t.Fatalf("walk order not set by the seed: %v, %v, %v", order, walkPeople(again), walkPeople(other))
	}
	if again.Key() != s.Key() || other.Key() == s.Key() {
		t.Fatal("cache key does not follow the options")
	}
	plain, _ := New(m, Options{})
	if slices.Equal(walkPeople(plain), order) || !slices.IsSorted(walkPeople(plain)) {
		t.Fatalf("without passers the walk order changed: %v", walkPeople(plain))
	}
	if _, err := New(m, Options{Loop: 10 * time.Second, CrossTime: 20 * time.Second}); err == nil {
		t.Fatal("a crossing longer than the loop was accepted")
	}
	if _, err := New(m, Options{Passers: []*image.NRGBA{nil}}); err == nil {
		t.Fatal("a nil passer sprite was accepted")
	}
}

func walkPeople(s *Scene) []int {
	var out []int
	for _, w := range s.Walks() {
		out = append(out, w.Person)
	}
	return out
}
