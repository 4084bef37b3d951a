package eval

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Series is one curve of a Plot.
type Series struct {
	Name string
	X, Y []float64
	// Color of the line; the zero value takes the next palette colour.
	Color color.RGBA
}

// Plot is a line chart rendered to PNG with gonum.org/v1/plot: axes with
// ticks, a grid, one line per series, a legend at the bottom right. Zero
// limits are fitted to the data.
type Plot struct {
	Title, XLabel, YLabel string
	// XLog uses a base-10 logarithmic x axis (for false match rates); values
	// <= 0 are drawn at XMin.
	XLog                   bool
	XMin, XMax, YMin, YMax float64
	Width, Height          int // pixels, default 640 x 480
	Series                 []Series
}

var palette = []color.RGBA{
	{31, 119, 180, 255}, {214, 39, 40, 255}, {44, 160, 44, 255}, {255, 127, 14, 255},
	{148, 103, 189, 255}, {140, 86, 75, 255}, {23, 190, 207, 255}, {127, 127, 127, 255},
}

// minSide is the smallest plot side in pixels that leaves room for the data
// beside the axes, the title and the legend.
const minSide = 200

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

// WritePNG renders the plot and encodes it as PNG.
func (p Plot) WritePNG(w io.Writer) error {
	img, err := p.Render()
	if err != nil {
		return err
	}
	return png.Encode(w, img)
}

// Render draws the plot.
func (p Plot) Render() (image.Image, error) {
	if p.Width == 0 {
		p.Width = 640
	}
	if p.Height == 0 {
		p.Height = 480
	}
	if p.Width < minSide || p.Height < minSide {
		return nil, fmt.Errorf("plot %q: %dx%d is too small, want at least %dx%d", p.Title, p.Width, p.Height, minSide, minSide)
	}
	pl, err := p.build()
	if err != nil {
		return nil, err
	}
	// 72 dpi: one point is one pixel.
	c := vgimg.NewWith(vgimg.UseWH(vg.Length(p.Width), vg.Length(p.Height)), vgimg.UseDPI(72),
		vgimg.UseBackgroundColor(color.White))
	pl.Draw(draw.New(c))
	return c.Image(), nil
}

// build makes the gonum plot of p (sizes already defaulted and checked).
func (p Plot) build() (*plot.Plot, error) {
	if err := p.fitLimits(); err != nil {
		return nil, err
	}
	pl := plot.New()
	pl.Title.Text, pl.X.Label.Text, pl.Y.Label.Text = p.Title, p.XLabel, p.YLabel
	pl.X.Min, pl.X.Max, pl.Y.Min, pl.Y.Max = p.XMin, p.XMax, p.YMin, p.YMax
	if p.XLog {
		pl.X.Scale, pl.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
	}
	pl.Add(plotter.NewGrid())
	pl.Legend.Top, pl.Legend.Left = false, false
	for i, s := range p.Series {
		xy := make(plotter.XYs, len(s.X))
		for k := range s.X {
			xy[k] = plotter.XY{X: s.X[k], Y: s.Y[k]}
			if p.XLog && xy[k].X < p.XMin { // log(0) has no place on the axis
				xy[k].X = p.XMin
			}
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return nil, fmt.Errorf("plot %q: series %q: %w", p.Title, s.Name, err)
		}
		l.Color = s.Color
		if s.Color == (color.RGBA{}) {
			l.Color = palette[i%len(palette)]
		}
		l.Width = vg.Points(1.5)
		pl.Add(l)
		pl.Legend.Add(s.Name, l)
	}
	return pl, nil
}

// fitLimits checks the series and fills zero limits from the data.
func (p *Plot) fitLimits() error {
	xmin, xmax, ymin, ymax := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range p.Series {
		if len(s.X) != len(s.Y) {
			return fmt.Errorf("plot %q: series %q has %d x and %d y values", p.Title, s.Name, len(s.X), len(s.Y))
		}
		for k := range s.X {
			x, y := s.X[k], s.Y[k]
			if math.IsNaN(x) || math.IsNaN(y) || math.IsInf(x, 0) || math.IsInf(y, 0) {
				return fmt.Errorf("plot %q: series %q point %d (%v, %v) is not finite", p.Title, s.Name, k, x, y)
			}
			if !p.XLog || x > 0 {
				xmin, xmax = min(xmin, x), max(xmax, x)
			}
			ymin, ymax = min(ymin, y), max(ymax, y)
		}
	}
	if p.XMin == 0 && p.XMax == 0 {
		p.XMin, p.XMax = xmin, xmax
	}
	if p.YMin == 0 && p.YMax == 0 {
		p.YMin, p.YMax = ymin, ymax
	}
	if math.IsInf(p.XMin, 0) || math.IsInf(p.YMin, 0) { // no data and no limits
		p.XMin, p.XMax, p.YMin, p.YMax = 0, 1, 0, 1
		if p.XLog {
			p.XMin = 1e-3
		}
	}
	if p.XMax <= p.XMin {
		p.XMax = p.XMin + 1
	}
	if p.YMax <= p.YMin {
		p.YMax = p.YMin + 1
	}
	if p.XLog && p.XMin <= 0 {
		return fmt.Errorf("plot %q: log x axis from %v, want a minimum > 0", p.Title, p.XMin)
	}
	return nil
}
