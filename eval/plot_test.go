package eval

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"testing"

	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// dataArea is the plot area of p rendered at its size, in image pixels
// (y down), as gonum lays it out.
func dataArea(t *testing.T, p Plot) image.Rectangle {
	t.Helper()
	pl, err := p.build()
	if err != nil {
		t.Fatal(err)
	}
	c := vgimg.NewWith(vgimg.UseWH(vg.Length(p.Width), vg.Length(p.Height)), vgimg.UseDPI(72))
	da := pl.DataCanvas(draw.New(c))
	return image.Rect(int(da.Min.X), p.Height-int(da.Max.Y), int(da.Max.X), p.Height-int(da.Min.Y))
}

func TestPlotPNG(t *testing.T) {
	red := color.RGBA{255, 0, 0, 255}
	p := Plot{
		Title: "test", XLabel: "x", YLabel: "y",
		XMin: 0, XMax: 1, YMin: 0, YMax: 1,
		Series: []Series{{Name: "diagonal", X: []float64{0, 1}, Y: []float64{0, 1}, Color: red}},
	}
	var buf bytes.Buffer
	if err := p.WritePNG(&buf); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds() != image.Rect(0, 0, 640, 480) {
		t.Fatalf("size %v", img.Bounds())
	}
	isRed := func(x, y int) bool {
		for dy := -1; dy <= 1; dy++ {
			for dx := -1; dx <= 1; dx++ {
				r, g, b, _ := img.At(x+dx, y+dy).RGBA()
				if r > 0xf000 && g < 0x1000 && b < 0x1000 {
					return true
				}
			}
		}
		return false
	}
	p.Width, p.Height = 640, 480
	area := dataArea(t, p)
	if area.Dx() < 400 || area.Dy() < 300 {
		t.Fatalf("plot area %v of a 640x480 image", area)
	}
	// the diagonal passes through the middle of the plot area, and not
	// through the top-left corner of it
	cx, cy := (area.Min.X+area.Max.X)/2, (area.Min.Y+area.Max.Y)/2
	if !isRed(cx, cy) {
		t.Errorf("no series pixel at the plot centre (%d, %d)", cx, cy)
	}
	if isRed(area.Min.X+20, area.Min.Y+20) {
		t.Error("series pixel in the top-left corner")
	}
	// legend text is drawn (dark pixels) at the bottom right
	dark := 0
	for y := area.Max.Y - 40; y < area.Max.Y; y++ {
		for x := area.Max.X - 120; x < area.Max.X; x++ {
			if r, _, _, _ := img.At(x, y).RGBA(); r < 0x4000 {
				dark++
			}
		}
	}
	if dark < 20 {
		t.Errorf("legend area has %d dark pixels", dark)
	}
}

func TestPlotLogAndErrors(t *testing.T) {
	roc := []ROCPoint{{math.Inf(1), 0, 0}, {0.9, 1e-4, 0.5}, {0.5, 1e-2, 0.9}, {0.1, 1, 1}}
	p := Plot{Title: "roc", XLog: true, Series: []Series{ROCSeries("a", roc), CMCSeries("b", []float64{0.5, 0.7})}}
	if _, err := p.Render(); err != nil {
		t.Fatal(err)
	}
	// the log axis is fitted to the positive x values: FMR 0 is drawn at 1e-4
	if err := p.fitLimits(); err != nil || p.XMin != 1e-4 || p.XMax != 2 {
		t.Errorf("log limits %v..%v (%v), want 1e-4..2", p.XMin, p.XMax, err)
	}
	bad := []Plot{
		{Series: []Series{{X: []float64{1}, Y: nil}}},
		{Series: []Series{{X: []float64{math.NaN()}, Y: []float64{1}}}},
		{Width: 50, Height: 50},
		{XLog: true, XMin: -1, XMax: 1, YMax: 1},
	}
	for i, b := range bad {
		if _, err := b.Render(); err == nil {
			t.Errorf("bad plot %d rendered", i)
		}
	}
}
