package match

import (
	"fmt"
	"image"
	"math"

	"github.com/srdgd/srdgd/internal/faceimg"
	"github.com/srdgd/srdgd/internal/resample"
)

// Face-api's dlib alignment (FaceLandmarks.alignDlib, models/README.md "Face
// embedder"): an axis-aligned square of side floor(mean eye-to-mouth distance /
// relScale) placed at relX, relY of its side around the centroid of the two
// eye centres and the mouth centre.
const (
	relX     = 0.5
	relY     = 0.43
	relScale = 0.45

	landmarkSize = 112 // landmark net input side
	numPoints    = 68
)

// EmbedInput is one face to embed: an image and the face's box in it (from a face
// detector; a zero box means the whole image is the face, as for a 128x128 SR
// output). Exactly one of Image and Planar is set.
type EmbedInput struct {
	Image  image.Image
	Planar *faceimg.Planar // planar RGB in [0, 1], e.g. an SR output
	Box    image.Rectangle
	// Scale is the upscaling factor a super-resolved face was restored at
	// (8 or 16), 0 for a photo; the embedder's SR adapter of that scale,
	// when it has one, maps the face's descriptor (Embedder.UseAdapter).
	Scale int
}

func (f EmbedInput) bounds() (image.Rectangle, error) {
	switch {
	case f.Image != nil && f.Planar == nil:
		return f.Image.Bounds(), nil
	case f.Planar != nil && f.Image == nil:
		if len(f.Planar.Pix) != 3*f.Planar.W*f.Planar.H {
			return image.Rectangle{}, fmt.Errorf("planar image %dx%d has %d samples, want %d", f.Planar.W, f.Planar.H, len(f.Planar.Pix), 3*f.Planar.W*f.Planar.H)
		}
		return image.Rect(0, 0, f.Planar.W, f.Planar.H), nil
	}
	return image.Rectangle{}, fmt.Errorf("a face needs exactly one of Image and Planar")
}

// box returns the face box clipped to the image.
func (f EmbedInput) box() (image.Rectangle, error) {
	b, err := f.bounds()
	if err != nil {
		return image.Rectangle{}, err
	}
	if f.Box.Empty() {
		return b, nil
	}
	r := f.Box.Intersect(b)
	if r.Empty() {
		return image.Rectangle{}, fmt.Errorf("face box %v lies outside the image %v", f.Box, b)
	}
	return r, nil
}

// squareCrop implements face-api's crop-and-pad (Box.clipAtImageBorders, then
// padToSquare with the image centred): the box (image coordinates) is clipped
// to the image, the short side padded with black, round(diff/2) after and the
// rest before, and the square resized to size x size with Pillow's bilinear
// (antialiased) filter into dst (3*size*size). It returns the image position
// of the padded square's top-left corner and its side, which map network
// outputs (relative to the square) back to image coordinates.
func squareCrop(f EmbedInput, box image.Rectangle, size int, dst []float32) (origin image.Point, side int, err error) {
	b, err := f.bounds()
	if err != nil {
		return image.Point{}, 0, err
	}
	r := box.Intersect(b)
	if r.Empty() {
		return image.Point{}, 0, fmt.Errorf("crop box %v does not overlap the image %v", box, b)
	}
	w, h := r.Dx(), r.Dy()
	side = max(w, h)
	diff := side - min(w, h)
	after := int(math.Floor(float64(diff)*0.5 + 0.5))
	before := diff - after
	off := image.Point{}
	if w < h {
		off.X = before
	} else {
		off.Y = before
	}
	origin = r.Min.Sub(off)
	sq := make([]float32, 3*side*side)
	n := side * side
	reg := regionPlanar(f, r)
	rn := w * h
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			di := (off.Y+y)*side + off.X + x
			for c := 0; c < 3; c++ {
				sq[c*n+di] = reg[c*rn+y*w+x]
			}
		}
	}
	if side == size {
		copy(dst, sq)
		return origin, side, nil
	}
	rs, err := resample.NewResizer(3, side, side, size, size, resample.Bilinear)
	if err != nil {
		return image.Point{}, 0, err
	}
	if err := rs.Resize(dst, sq); err != nil {
		return image.Point{}, 0, err
	}
	return origin, side, nil
}

// Landmarks are the 68 iBUG points of a face in image coordinates (continuous,
// pixel i covers [i, i+1)).
type Landmarks [numPoints][2]float64

func (l *Landmarks) mean(from, to int) (x, y float64) {
	for i := from; i <= to; i++ {
		x += l[i][0]
		y += l[i][1]
	}
	n := float64(to - from + 1)
	return x / n, y / n
}

// EyeCentres returns the centres of points 36-41 and 42-47 (the eyes on the
// image's left and right).
func (l *Landmarks) EyeCentres() (left, right [2]float64) {
	lx, ly := l.mean(36, 41)
	rx, ry := l.mean(42, 47)
	return [2]float64{lx, ly}, [2]float64{rx, ry}
}

// AlignBox is face-api's dlib box from the landmarks (before clipping at the
// image borders): eye centres, mouth centre (points 48-67), side =
// floor(mean eye-to-mouth distance / 0.45), top-left at
// floor(max(0, c.x - 0.5 side)), floor(max(0, c.y - 0.43 side)) with c the
// centroid of the three centres.
func (l *Landmarks) AlignBox() image.Rectangle {
	ax, ay := l.mean(36, 41)
	bx, by := l.mean(42, 47)
	mx, my := l.mean(48, 67)
	dist := (math.Hypot(mx-ax, my-ay) + math.Hypot(mx-bx, my-by)) / 2
	side := int(math.Floor(dist / relScale))
	cx, cy := (ax+bx+mx)/3, (ay+by+my)/3
	x := int(math.Floor(math.Max(0, cx-relX*float64(side))))
	y := int(math.Floor(math.Max(0, cy-relY*float64(side))))
	return image.Rect(x, y, x+side, y+side)
}
