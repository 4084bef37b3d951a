package match

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"strconv"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Series is one curve of a Plot.
type Series struct {
	Name string
	X, Y []float64
	// Color of the line; the zero value takes the next palette colour.
	Color color.RGBA
}

// Plot is a line chart rendered to PNG with nothing but the standard image
// packages and a bitmap font: axes with ticks, one polyline per series, a
// legend. Zero limits are fitted to the data.
type Plot struct {
	Title, XLabel, YLabel string
	// XLog uses a base-10 logarithmic x axis (for false match rates); values
	// <= 0 are drawn at XMin.
	XLog                   bool
	XMin, XMax, YMin, YMax float64
	Width, Height          int // default 640 x 480
	Series                 []Series
}

var palette = []color.RGBA{
	{31, 119, 180, 255}, {214, 39, 40, 255}, {44, 160, 44, 255}, {255, 127, 14, 255},
	{148, 103, 189, 255}, {140, 86, 75, 255}, {23, 190, 207, 255}, {127, 127, 127, 255},
}

// ROCSeries turns ROC points into a series of (FMR, TMR).
func ROCSeries(name string, roc []ROCPoint) Series {
	s := Series{Name: name}
	for _, p := range roc {
		s.X = append(s.X, p.FMR)
		s.Y = append(s.Y, p.TMR)
	}
	return s
}

// CMCSeries turns Rank-k rates (k = 1, 2, ...) into a series.
func CMCSeries(name string, cmc []float64) Series {
	s := Series{Name: name}
	for k, v := range cmc {
		s.X = append(s.X, float64(k+1))
		s.Y = append(s.Y, v)
	}
	return s
}

const (
	marginLeft, marginRight, marginTop, marginBottom = 64, 20, 40, 48
)

// WritePNG renders the plot and encodes it as PNG.
func (p Plot) WritePNG(w io.Writer) error {
	img, err := p.Render()
	if err != nil {
		return err
	}
	return png.Encode(w, img)
}

// Render draws the plot.
func (p Plot) Render() (*image.RGBA, error) {
	if p.Width == 0 {
		p.Width = 640
	}
	if p.Height == 0 {
		p.Height = 480
	}
	if p.Width < marginLeft+marginRight+100 || p.Height < marginTop+marginBottom+100 {
		return nil, fmt.Errorf("plot %q: %dx%d is too small", p.Title, p.Width, p.Height)
	}
	for _, s := range p.Series {
		if len(s.X) != len(s.Y) {
			return nil, fmt.Errorf("plot %q: series %q has %d x and %d y values", p.Title, s.Name, len(s.X), len(s.Y))
		}
	}
	if err := p.fitLimits(); err != nil {
		return nil, err
	}
	img := image.NewRGBA(image.Rect(0, 0, p.Width, p.Height))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	x0, y0 := marginLeft, p.Height-marginBottom // plot area, bottom-left
	x1, y1 := p.Width-marginRight, marginTop    // top-right
	black := color.RGBA{0, 0, 0, 255}
	grid := color.RGBA{225, 225, 225, 255}
	tx := func(v float64) float64 {
		if p.XLog {
			v = math.Log10(math.Max(v, p.XMin))
			return float64(x0) + (v-math.Log10(p.XMin))/(math.Log10(p.XMax)-math.Log10(p.XMin))*float64(x1-x0)
		}
		return float64(x0) + (v-p.XMin)/(p.XMax-p.XMin)*float64(x1-x0)
	}
	ty := func(v float64) float64 {
		return float64(y0) - (v-p.YMin)/(p.YMax-p.YMin)*float64(y0-y1)
	}
	// ticks and grid
	for _, v := range p.xTicks() {
		x := int(math.Round(tx(v)))
		line(img, x, y0, x, y1, grid, 1)
		line(img, x, y0, x, y0+4, black, 1)
		lbl := tickLabel(v, p.XLog)
		text(img, x-textWidth(lbl)/2, y0+18, lbl, black)
	}
	for _, v := range linearTicks(p.YMin, p.YMax) {
		y := int(math.Round(ty(v)))
		line(img, x0, y, x1, y, grid, 1)
		line(img, x0-4, y, x0, y, black, 1)
		lbl := tickLabel(v, false)
		text(img, x0-8-textWidth(lbl), y+4, lbl, black)
	}
	// frame
	line(img, x0, y0, x1, y0, black, 1)
	line(img, x0, y1, x1, y1, black, 1)
	line(img, x0, y0, x0, y1, black, 1)
	line(img, x1, y0, x1, y1, black, 1)
	// series, clipped to the plot area
	clip := image.Rect(x0, y1, x1+1, y0+1)
	for i, s := range p.Series {
		c := s.Color
		if c == (color.RGBA{}) {
			c = palette[i%len(palette)]
		}
		for k := 1; k < len(s.X); k++ {
			lineClipped(img, clip, tx(s.X[k-1]), ty(s.Y[k-1]), tx(s.X[k]), ty(s.Y[k]), c)
		}
		if len(s.X) == 1 {
			lineClipped(img, clip, tx(s.X[0])-2, ty(s.Y[0]), tx(s.X[0])+2, ty(s.Y[0]), c)
		}
	}
	// labels
	text(img, (p.Width-textWidth(p.Title))/2, 20, p.Title, black)
	text(img, x0+(x1-x0-textWidth(p.XLabel))/2, p.Height-10, p.XLabel, black)
	text(img, 6, marginTop-8, p.YLabel, black)
	// legend, bottom-right inside the plot
	if len(p.Series) > 0 {
		w := 0
		for _, s := range p.Series {
			w = max(w, textWidth(s.Name))
		}
		lx := x1 - w - 40
		ly := y0 - 10 - 16*len(p.Series)
		fill(img, image.Rect(lx-6, ly-6, x1-6, y0-6), color.RGBA{255, 255, 255, 255})
		box := color.RGBA{160, 160, 160, 255}
		line(img, lx-6, ly-6, x1-6, ly-6, box, 1)
		line(img, lx-6, y0-6, x1-6, y0-6, box, 1)
		line(img, lx-6, ly-6, lx-6, y0-6, box, 1)
		line(img, x1-6, ly-6, x1-6, y0-6, box, 1)
		for i, s := range p.Series {
			c := s.Color
			if c == (color.RGBA{}) {
				c = palette[i%len(palette)]
			}
			y := ly + 16*i + 6
			line(img, lx, y, lx+20, y, c, 2)
			text(img, lx+26, y+4, s.Name, black)
		}
	}
	return img, nil
}

func (p *Plot) fitLimits() error {
	fitX := p.XMin == 0 && p.XMax == 0
	fitY := p.YMin == 0 && p.YMax == 0
	if fitX || fitY {
		xlo, xhi, ylo, yhi := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
		for _, s := range p.Series {
			for i := range s.X {
				if !math.IsNaN(s.X[i]) && !math.IsInf(s.X[i], 0) && (!p.XLog || s.X[i] > 0) {
					xlo, xhi = math.Min(xlo, s.X[i]), math.Max(xhi, s.X[i])
				}
				if !math.IsNaN(s.Y[i]) && !math.IsInf(s.Y[i], 0) {
					ylo, yhi = math.Min(ylo, s.Y[i]), math.Max(yhi, s.Y[i])
				}
			}
		}
		if math.IsInf(xlo, 1) || math.IsInf(ylo, 1) {
			return fmt.Errorf("plot %q: no finite data to fit the axes to", p.Title)
		}
		if fitX {
			if p.XLog {
				p.XMin, p.XMax = math.Pow(10, math.Floor(math.Log10(xlo))), math.Pow(10, math.Ceil(math.Log10(xhi)))
			} else {
				p.XMin, p.XMax = xlo, xhi
			}
		}
		if fitY {
			p.YMin, p.YMax = ylo, yhi
		}
	}
	if p.XMax <= p.XMin {
		p.XMax = p.XMin + 1
	}
	if p.YMax <= p.YMin {
		p.YMax = p.YMin + 1
	}
	if p.XLog && p.XMin <= 0 {
		return fmt.Errorf("plot %q: log x axis needs XMin > 0, have %v", p.Title, p.XMin)
	}
	return nil
}

func (p *Plot) xTicks() []float64 {
	if !p.XLog {
		return linearTicks(p.XMin, p.XMax)
	}
	var t []float64
	for e := math.Ceil(math.Log10(p.XMin) - 1e-9); e <= math.Log10(p.XMax)+1e-9; e++ {
		t = append(t, math.Pow(10, e))
	}
	return t
}

// linearTicks returns 4-10 round values (steps of 1, 2 or 5 times a power
// of ten) within [lo, hi].
func linearTicks(lo, hi float64) []float64 {
	span := hi - lo
	step := math.Pow(10, math.Floor(math.Log10(span)))
	for span/step < 4 {
		switch {
		case span/(step/2) >= 4:
			step /= 2
		case span/(step/5) >= 4:
			step /= 5
		default:
			step /= 10
		}
	}
	for span/step > 10 {
		step *= 2
	}
	var t []float64
	for v := math.Ceil(lo/step-1e-9) * step; v <= hi+step*1e-9; v += step {
		t = append(t, math.Round(v/step)*step)
	}
	return t
}

func tickLabel(v float64, log bool) string {
	if log {
		return "1e" + strconv.Itoa(int(math.Round(math.Log10(v))))
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

var plotFace = basicfont.Face7x13

func textWidth(s string) int { return font.MeasureString(plotFace, s).Round() }

// text draws s with its baseline at y.
func text(img *image.RGBA, x, y int, s string, c color.RGBA) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: plotFace, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Rect)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

// line draws a Bresenham line of the given thickness (1 or 2 pixels).
func line(img *image.RGBA, xa, ya, xb, yb int, c color.RGBA, thick int) {
	dx, dy := abs(xb-xa), -abs(yb-ya)
	sx, sy := 1, 1
	if xa > xb {
		sx = -1
	}
	if ya > yb {
		sy = -1
	}
	e := dx + dy
	for {
		img.SetRGBA(xa, ya, c)
		if thick > 1 {
			img.SetRGBA(xa+1, ya, c)
			img.SetRGBA(xa, ya+1, c)
		}
		if xa == xb && ya == yb {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			xa += sx
		}
		if e2 <= dx {
			e += dx
			ya += sy
		}
	}
}

// lineClipped draws a 2-pixel line from float coordinates, clipped to r
// (Liang-Barsky).
func lineClipped(img *image.RGBA, r image.Rectangle, xa, ya, xb, yb float64, c color.RGBA) {
	if math.IsNaN(xa+ya+xb+yb) || math.IsInf(xa+ya+xb+yb, 0) {
		return
	}
	t0, t1 := 0.0, 1.0
	dx, dy := xb-xa, yb-ya
	for _, e := range [][2]float64{
		{-dx, xa - float64(r.Min.X)}, {dx, float64(r.Max.X-1) - xa},
		{-dy, ya - float64(r.Min.Y)}, {dy, float64(r.Max.Y-1) - ya},
	} {
		pp, q := e[0], e[1]
		if pp == 0 {
			if q < 0 {
				return
			}
			continue
		}
		t := q / pp
		if pp < 0 {
			t0 = math.Max(t0, t)
		} else {
			t1 = math.Min(t1, t)
		}
	}
	if t0 > t1 {
		return
	}
	line(img, int(math.Round(xa+t0*dx)), int(math.Round(ya+t0*dy)), int(math.Round(xa+t1*dx)), int(math.Round(ya+t1*dy)), c, 2)
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
