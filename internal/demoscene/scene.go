// Package demoscene renders the synthetic surveillance scene of `srdgd demo`:
// real faces (models/dist/demo) walking through a plaza at surveillance
// distance, their faces 12-40 px high, encoded once to an H.264 file that the
// demo's in-process RTSP server streams in a loop.
package demoscene

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	xdraw "golang.org/x/image/draw"
)

// Person is one demo identity.
type Person struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Gallery string `json:"gallery"`
	Sprite  string `json:"sprite"`
	Source  string `json:"source"`
}

// Manifest is models/dist/demo/manifest.json.
type Manifest struct {
	License string   `json:"license"`
	People  []Person `json:"people"`
	dir     string
}

// LoadManifest reads dir/manifest.json.
func LoadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, fmt.Errorf("demo faces: %w (build them with `make models-packaged`)", err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("demo faces: %s: %w", filepath.Join(dir, "manifest.json"), err)
	}
	if len(m.People) == 0 {
		return nil, fmt.Errorf("demo faces: %s lists nobody", filepath.Join(dir, "manifest.json"))
	}
	m.dir = dir
	return &m, nil
}

// GalleryPath is the enrolment photo of p.
func (m *Manifest) GalleryPath(p Person) string { return filepath.Join(m.dir, p.Gallery) }

// Options describe the scene.
type Options struct {
	Width, Height, FPS int
	// Loop is the length of the rendered clip; people cross it on staggered
	// schedules so that two or three are in view at any time.
	Loop time.Duration
	// MinFace and MaxFace bound the face heights in px (far and near).
	MinFace, MaxFace float64
	Seed             uint64
	// FrameCode draws the frame number as a 16-bit code in the top-left
	// corner (benchmarks read it back with ReadFrameCode).
	FrameCode bool
	// Passers are the sprites (see Sprite) of extra people who cross the
	// scene but are not in the manifest: unknown passers-by. They are
	// persons len(m.People).. in Faces, in this order. With passers the
	// crossings are planned in an order shuffled by Seed (manifest people
	// and passers mixed); without, as before.
	Passers []*image.NRGBA
	// CrossTime is how long one crossing takes (default 0.3 of Loop): set
	// it with a longer Loop to keep the walking speed while more people
	// cross.
	CrossTime time.Duration
}

func (o *Options) defaults() {
	if o.Width == 0 {
		o.Width, o.Height = 1280, 720
	}
	if o.FPS == 0 {
		o.FPS = 15
	}
	if o.Loop == 0 {
		o.Loop = 40 * time.Second
	}
	if o.MinFace == 0 {
		o.MinFace, o.MaxFace = 12, 40
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.CrossTime == 0 {
		o.CrossTime = time.Duration(float64(o.Loop) * 0.3)
	}
}

// Walk is one person's crossing of the scene.
type Walk struct {
	Person     int
	Start, End time.Duration
	// X0, X1: horizontal path in px; Y: the feet line, which sets the depth.
	X0, X1, Y0, Y1 float64
}

// Scene is a prepared scene: sprites loaded, walks planned.
type Scene struct {
	o       Options
	sprites []*image.NRGBA
	walks   []Walk
	bg      *image.RGBA
	shirts  []color.NRGBA
}

// New plans the scene for the people in m.
func New(m *Manifest, o Options) (*Scene, error) {
	o.defaults()
	if o.Width < 320 || o.Height < 240 || o.Width%2 != 0 || o.Height%2 != 0 {
		return nil, fmt.Errorf("demo scene: %dx%d: want even sizes of at least 320x240", o.Width, o.Height)
	}
	s := &Scene{o: o}
	for _, p := range m.People {
		f, err := os.Open(filepath.Join(m.dir, p.Sprite))
		if err != nil {
			return nil, fmt.Errorf("demo faces: %w", err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("demo faces: %s: %w", p.Sprite, err)
		}
		n := image.NewNRGBA(img.Bounds())
		draw.Draw(n, n.Bounds(), img, img.Bounds().Min, draw.Src)
		s.sprites = append(s.sprites, n)
	}
	for i, p := range o.Passers {
		if p == nil || p.Bounds().Dx() < 16 || p.Bounds().Dy() < 16 {
			return nil, fmt.Errorf("demo scene: passer-by %d: want a sprite of at least 16x16 px", i)
		}
		s.sprites = append(s.sprites, p)
	}
	if o.CrossTime <= 0 || o.CrossTime > o.Loop {
		return nil, fmt.Errorf("demo scene: crossing time %v: want (0, loop %v]", o.CrossTime, o.Loop)
	}
	rng := rand.New(rand.NewPCG(o.Seed, 7))
	for range s.sprites {
		s.shirts = append(s.shirts, color.NRGBA{uint8(40 + rng.IntN(160)), uint8(40 + rng.IntN(160)), uint8(40 + rng.IntN(160)), 255})
	}
	s.bg = background(o.Width, o.Height, rng)
	// each person crosses once per loop; starts staggered evenly, direction
	// and depth alternate
	n := len(s.sprites)
	cross := o.CrossTime
	order := make([]int, n) // order[i]: who makes the i-th walk of the loop
	for i := range order {
		order[i] = i
	}
	if len(o.Passers) > 0 {
		rand.New(rand.NewPCG(o.Seed, 11)).Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	for i := range n {
		start := time.Duration(float64(o.Loop) * float64(i) / float64(n))
		y := float64(o.Height) * (0.55 + 0.4*float64((i*3)%n)/float64(max(n-1, 1)))
		w := Walk{Person: order[i], Start: start, End: start + cross, X0: -0.05 * float64(o.Width), X1: 1.05 * float64(o.Width),
			Y0: y, Y1: y + 0.03*float64(o.Height)}
		if i%2 == 1 {
			w.X0, w.X1 = w.X1, w.X0
		}
		s.walks = append(s.walks, w)
	}
	return s, nil
}

// Walks returns the planned crossings (ground truth for tests and benchmarks).
func (s *Scene) Walks() []Walk { return s.walks }

// Frames is the number of frames in one loop.
func (s *Scene) Frames() int { return int(s.o.Loop.Seconds() * float64(s.o.FPS)) }

// FaceHeight is the face height in px for a person whose feet are at y.
func (s *Scene) FaceHeight(y float64) float64 {
	t := (y/float64(s.o.Height) - 0.5) / 0.5 // 0 at the horizon band, 1 at the bottom
	t = min(max(t, 0), 1)
	return s.o.MinFace + t*(s.o.MaxFace-s.o.MinFace)
}

// Face is where a person's face is in a frame: the ground truth of the
// scene.
type Face struct {
	Person int
	// Crossing numbers the person's passes through the scene, the same for
	// every frame of one pass: walk w of loop L (the clip plays in a loop,
	// L = k / Frames()) is (L+1)*len(Walks())+w. A walk that runs past the
	// end of the loop continues at the start of the next one under the same
	// number.
	Crossing int
	// Box is the sprite's square; the face fills about 80 % of its height.
	Box image.Rectangle
}

// Faces returns the faces in frame k, any k >= 0 (frames repeat every
// Frames(), as the looped clip does), including faces partly outside the
// frame at the left and right edges.
func (s *Scene) Faces(k int) []Face {
	n := s.Frames()
	loop := k / n
	t := time.Duration(float64(k%n) / float64(s.o.FPS) * float64(time.Second))
	var out []Face
	for wi, w := range s.walks {
		for back, off := range []time.Duration{0, -s.o.Loop} { // walks that wrap the loop end
			tt := t - off
			if tt < w.Start || tt >= w.End {
				continue
			}
			a := float64(tt-w.Start) / float64(w.End-w.Start)
			x := w.X0 + a*(w.X1-w.X0)
			y := w.Y0 + a*(w.Y1-w.Y0)
			fh := s.FaceHeight(y)
			// body 7.5 face heights tall; the sprite's face fills ~80 % of it
			sp := fh / 0.8
			r := image.Rect(int(x-sp/2), int(y-7.5*fh-sp/2+fh*0.4), int(x+sp/2), int(y-7.5*fh+sp/2+fh*0.4))
			out = append(out, Face{Person: w.Person, Crossing: (loop+1-back)*len(s.walks) + wi, Box: r})
		}
	}
	return out
}

// Render draws frame k into dst (Width x Height); frames repeat every
// Frames().
func (s *Scene) Render(k int, dst *image.RGBA) {
	copy(dst.Pix, s.bg.Pix)
	faces := s.Faces(k)
	// far people first
	for i := range faces {
		for j := i + 1; j < len(faces); j++ {
			if faces[j].Box.Max.Y < faces[i].Box.Max.Y {
				faces[i], faces[j] = faces[j], faces[i]
			}
		}
	}
	for _, f := range faces {
		fh := float64(f.Box.Dy()) * 0.8
		cx := float64(f.Box.Min.X+f.Box.Max.X) / 2
		top := float64(f.Box.Max.Y) - fh*0.2
		// body: torso and legs as rounded blocks in the person's shirt colour
		torso := image.Rect(int(cx-1.3*fh), int(top), int(cx+1.3*fh), int(top+3.2*fh))
		legs := image.Rect(int(cx-0.9*fh), int(top+3.2*fh), int(cx+0.9*fh), int(top+6.9*fh))
		draw.Draw(dst, torso, &image.Uniform{s.shirts[f.Person]}, image.Point{}, draw.Over)
		draw.Draw(dst, legs, &image.Uniform{color.NRGBA{45, 50, 70, 255}}, image.Point{}, draw.Over)
		xdraw.CatmullRom.Scale(dst, f.Box, s.sprites[f.Person], s.sprites[f.Person].Bounds(), xdraw.Over, nil)
	}
	if s.o.FrameCode {
		drawCode(dst, k)
	}
}

// The frame code: codeBits cells of codeCell x codeCell px in a row at the
// top-left, white for 1, black for 0, most significant bit first, on a
// mid-grey strip; big enough to survive H.264 at any sane quality.
const (
	codeBits = 16
	codeCell = 16
)

func drawCode(dst *image.RGBA, k int) {
	draw.Draw(dst, image.Rect(0, 0, codeBits*codeCell+8, codeCell+8), &image.Uniform{color.RGBA{128, 128, 128, 255}}, image.Point{}, draw.Src)
	for i := range codeBits {
		c := color.RGBA{0, 0, 0, 255}
		if k>>(codeBits-1-i)&1 == 1 {
			c = color.RGBA{255, 255, 255, 255}
		}
		r := image.Rect(4+i*codeCell, 4, 4+(i+1)*codeCell, 4+codeCell)
		draw.Draw(dst, r, &image.Uniform{c}, image.Point{}, draw.Src)
	}
}

// ReadFrameCode reads the frame number drawn by FrameCode from a BGR24 (or
// any 3-byte-per-pixel) picture; ok is false when the strip is not there.
func ReadFrameCode(pix []byte, stride int) (k int, ok bool) {
	if stride < 3*(codeBits*codeCell+8) || len(pix) < stride*(codeCell+8) {
		return 0, false
	}
	for i := range codeBits {
		x, y := 4+i*codeCell+codeCell/2, 4+codeCell/2
		o := y*stride + 3*x
		v := (int(pix[o]) + int(pix[o+1]) + int(pix[o+2])) / 3
		switch {
		case v > 170:
			k |= 1 << (codeBits - 1 - i)
		case v < 85:
		default:
			return 0, false
		}
	}
	return k, true
}

func background(w, h int, rng *rand.Rand) *image.RGBA {
	bg := image.NewRGBA(image.Rect(0, 0, w, h))
	horizon := int(0.42 * float64(h))
	for y := range h {
		for x := range w {
			var c color.RGBA
			if y < horizon {
				// building facade: concrete with window bands
				v := 150 + int(20*math.Sin(float64(x)/37))
				if (y/40)%3 == 1 && (x/60)%2 == 0 {
					v = 70
				}
				c = color.RGBA{uint8(v), uint8(v - 5), uint8(v - 12), 255}
			} else {
				// paving: perspective tiles
				d := float64(y-horizon) / float64(h-horizon)
				tile := int(float64(x-w/2)/(20+90*d)) + int(math.Log1p(d*20)*4)
				v := 120 + 25*((tile%2+2)%2)
				c = color.RGBA{uint8(v), uint8(v), uint8(v + 6), 255}
			}
			n := rng.IntN(9) - 4
			bg.SetRGBA(x, y, color.RGBA{clamp(int(c.R) + n), clamp(int(c.G) + n), clamp(int(c.B) + n), 255})
		}
	}
	return bg
}

func clamp(v int) uint8 { return uint8(min(max(v, 0), 255)) }

// Key identifies a rendering (options and sprites) for caching.
func (s *Scene) Key() string {
	h := sha256.New()
	o := s.o
	o.Passers = nil // their pixels are hashed below, with the other sprites
	fmt.Fprintf(h, "v1 %+v %d", o, len(s.sprites))
	for _, sp := range s.sprites {
		h.Write(sp.Pix)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Encode renders one loop and encodes it with ffmpeg (libx264, baseline-
// compatible settings a browser decodes: yuv420p, no B-frames, a key frame
// every 2 s) into path. It writes to a temporary file and renames, so a
// crash never leaves a half file under path.
func (s *Scene) Encode(ctx context.Context, ffmpeg, path string) error {
	tmp := path + ".tmp.mp4"
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-y",
		"-f", "rawvideo", "-pix_fmt", "rgba", "-s", fmt.Sprintf("%dx%d", s.o.Width, s.o.Height),
		"-r", strconv.Itoa(s.o.FPS), "-i", "-",
		"-c:v", "libx264", "-preset", "veryfast", "-profile:v", "baseline", "-pix_fmt", "yuv420p",
		"-g", strconv.Itoa(2 * s.o.FPS), "-bf", "0", "-crf", "20", "-movflags", "+faststart", tmp}
	cmd := exec.CommandContext(ctx, ffmpeg, args...)
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	var stderr limitedBuf
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("demo scene: start ffmpeg: %w", err)
	}
	frame := image.NewRGBA(image.Rect(0, 0, s.o.Width, s.o.Height))
	var werr error
	for k := range s.Frames() {
		s.Render(k, frame)
		if _, werr = in.Write(frame.Pix); werr != nil {
			break
		}
	}
	in.Close()
	if err := cmd.Wait(); err != nil || werr != nil {
		os.Remove(tmp)
		return fmt.Errorf("demo scene: ffmpeg: %w %v: %s", errors.Join(err, werr), "", stderr.String())
	}
	return os.Rename(tmp, path)
}

type limitedBuf struct{ b []byte }

func (l *limitedBuf) Write(p []byte) (int, error) {
	if len(l.b) < 4096 {
		l.b = append(l.b, p[:min(len(p), 4096-len(l.b))]...)
	}
	return len(p), nil
}
func (l *limitedBuf) String() string { return string(l.b) }

var _ io.Writer = (*limitedBuf)(nil)

// SpriteSize is the side of a sprite in px.
const SpriteSize = 128

// Sprite frames a head for the scene the way the packaged demo sprites are
// framed (models/convert/package_demo_faces.py): the square 1.25 times the
// face box's larger side, centred on it, scaled to SpriteSize, mirrored,
// with a feathered elliptical alpha (the ellipse (18,6)-(110,124) of 128,
// edges soft over about 5 px). Pixels outside img are transparent.
func Sprite(img image.Image, face image.Rectangle) (*image.NRGBA, error) {
	if face.Dx() < 8 || face.Dy() < 8 {
		return nil, fmt.Errorf("demo scene: sprite: face box %v: want at least 8x8 px", face)
	}
	side := 1.25 * float64(max(face.Dx(), face.Dy()))
	cx, cy := float64(face.Min.X+face.Max.X)/2, float64(face.Min.Y+face.Max.Y)/2
	src := image.Rect(int(cx-side/2), int(cy-side/2), int(cx-side/2)+int(side), int(cy-side/2)+int(side))
	sq := image.NewNRGBA(image.Rect(0, 0, SpriteSize, SpriteSize))
	xdraw.CatmullRom.Scale(sq, sq.Bounds(), img, src, xdraw.Src, nil)
	out := image.NewNRGBA(sq.Bounds())
	const ex0, ey0, ex1, ey1, feather = 18.0, 6.0, 110.0, 124.0, 5.0
	ax, ay := (ex1-ex0)/2, (ey1-ey0)/2
	ecx, ecy := (ex0+ex1)/2, (ey0+ey1)/2
	for y := range SpriteSize {
		for x := range SpriteSize {
			c := sq.NRGBAAt(SpriteSize-1-x, y)
			dx, dy := (float64(x)+0.5-ecx)/ax, (float64(y)+0.5-ecy)/ay
			// signed distance to the ellipse edge, approximately, in px
			d := (math.Sqrt(dx*dx+dy*dy) - 1) * min(ax, ay)
			a := min(max(0.5-d/(2*feather), 0), 1)
			c.A = uint8(float64(c.A) * a)
			out.SetNRGBA(x, y, c)
		}
	}
	return out, nil
}
