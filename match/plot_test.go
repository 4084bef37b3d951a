package match

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"testing"
)

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
				if r == 0xffff && g == 0 && b == 0 {
					return true
				}
			}
		}
		return false
	}
	// the diagonal passes through the middle of the plot area, and not
	// through the top-left corner of it
	cx := (marginLeft + 640 - marginRight) / 2
	cy := (marginTop + 480 - marginBottom) / 2
	if !isRed(cx, cy) {
		t.Errorf("no series pixel at the plot centre (%d, %d)", cx, cy)
	}
	if isRed(marginLeft+20, marginTop+20) {
		t.Error("series pixel in the top-left corner")
	}
	// legend text is drawn (dark pixels) at the bottom right
	dark := 0
	for y := 480 - marginBottom - 40; y < 480-marginBottom; y++ {
		for x := 640 - marginRight - 120; x < 640-marginRight; x++ {
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
	q := Plot{XLog: true, XMin: 1e-4, XMax: 1}
	if got := q.xTicks(); len(got) != 5 || got[0] != 1e-4 || got[4] != 1 {
		t.Errorf("log ticks %v", got)
	}
	if got := linearTicks(0, 1); len(got) != 6 || got[1] != 0.2 {
		t.Errorf("linear ticks %v", got)
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

// TestLineEndpoints draws lines in every direction and slope: each must end
// (Bresenham terminates) with both endpoints set.
func TestLineEndpoints(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 40, 40))
	c := color.RGBA{1, 2, 3, 255}
	pts := []image.Point{{0, 0}, {39, 0}, {0, 39}, {39, 39}, {20, 3}, {3, 20}, {17, 18}, {20, 20}}
	for _, a := range pts {
		for _, b := range pts {
			for i := range img.Pix {
				img.Pix[i] = 0
			}
			line(img, a.X, a.Y, b.X, b.Y, c, 1)
			if img.RGBAAt(a.X, a.Y) != c || img.RGBAAt(b.X, b.Y) != c {
				t.Fatalf("line %v-%v misses an endpoint", a, b)
			}
		}
	}
}
