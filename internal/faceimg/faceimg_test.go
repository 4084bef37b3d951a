package faceimg

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 3, 2))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 9)
	}
	for i := 3; i < len(img.Pix); i += 4 {
		img.Pix[i] = 255
	}
	p := FromImage(img)
	if p.W != 3 || p.H != 2 {
		t.Fatalf("size %dx%d", p.W, p.H)
	}
	back := p.Image()
	if !bytes.Equal(back.Pix, img.Pix) {
		t.Errorf("round trip changed pixels:\n%v\n%v", img.Pix, back.Pix)
	}
	// planar order: R plane first
	if p.Pix[0] != float32(img.Pix[0])/255 || p.Pix[6] != float32(img.Pix[1])/255 {
		t.Errorf("not planar RGB: %v", p.Pix)
	}
}

func TestFromBGR(t *testing.T) {
	// 2x1 BGR frame: blue pixel then red pixel, crop the red one
	pix := []byte{255, 0, 0, 0, 0, 255}
	p := FromBGR(pix, 6, image.Rect(1, 0, 2, 1))
	if p.Pix[0] != 1 || p.Pix[1] != 0 || p.Pix[2] != 0 {
		t.Errorf("red pixel became %v", p.Pix)
	}
}

func TestClip(t *testing.T) {
	p := &Planar{W: 1, H: 1, Pix: []float32{-0.5, 2, 0.5}}
	c := p.Image().At(0, 0).(color.RGBA)
	if c.R != 0 || c.G != 255 || c.B != 128 {
		t.Errorf("got %v", c)
	}
	var buf bytes.Buffer
	if err := Encode(&buf, ".png", p.Image()); err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(&buf); err != nil {
		t.Fatal(err)
	}
	if err := Encode(&buf, ".bmp", p.Image()); err == nil {
		t.Error("bmp accepted")
	}
}
