package face

import (
	"image"
	"math"
)

// Point is a position in frame pixels, continuous coordinates (pixel i covers
// [i, i+1)).
type Point struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
}

// Rect is an axis-aligned box in continuous frame coordinates.
type Rect struct{ X0, Y0, X1, Y1 float64 }

// W is the width.
func (r Rect) W() float64 { return r.X1 - r.X0 }

// H is the height.
func (r Rect) H() float64 { return r.Y1 - r.Y0 }

// Centre is the box centre.
func (r Rect) Centre() Point { return Point{(r.X0 + r.X1) / 2, (r.Y0 + r.Y1) / 2} }

// Area is W*H (0 for an empty box).
func (r Rect) Area() float64 {
	if r.X1 <= r.X0 || r.Y1 <= r.Y0 {
		return 0
	}
	return r.W() * r.H()
}

// Int rounds the box outwards to whole pixels.
func (r Rect) Int() image.Rectangle {
	return image.Rect(int(math.Floor(r.X0)), int(math.Floor(r.Y0)), int(math.Ceil(r.X1)), int(math.Ceil(r.Y1)))
}

// Translate moves the box.
func (r Rect) Translate(dx, dy float64) Rect { return Rect{r.X0 + dx, r.Y0 + dy, r.X1 + dx, r.Y1 + dy} }

// Box is the rectangle as a hit reports it.
func (r Rect) Box() Box { return Box{X: r.X0, Y: r.Y0, W: r.W(), H: r.H()} }
