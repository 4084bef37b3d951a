// Package faceimg converts between Go images, packed BGR frames and the planar
// RGB float32 tensors ([3][H][W], values in [0, 1]) the networks take.
package faceimg

import (
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"

	_ "image/gif" // decoders for Decode and Load
)

// Planar is a planar RGB float32 image.
type Planar struct {
	W, H int
	Pix  []float32 // 3*H*W: R plane, G plane, B plane
}

// NewPlanar allocates a w x h image.
func NewPlanar(w, h int) *Planar { return &Planar{W: w, H: h, Pix: make([]float32, 3*w*h)} }

// FromImage converts any image to planar RGB in [0, 1] (alpha ignored).
func FromImage(img image.Image) *Planar {
	b := img.Bounds()
	p := NewPlanar(b.Dx(), b.Dy())
	n := p.W * p.H
	for y := 0; y < p.H; y++ {
		for x := 0; x < p.W; x++ {
			c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
			i := y*p.W + x
			p.Pix[i] = float32(c.R) / 255
			p.Pix[n+i] = float32(c.G) / 255
			p.Pix[2*n+i] = float32(c.B) / 255
		}
	}
	return p
}

// FromBGR converts a packed BGR24 region (stride bytes per row) to planar RGB.
func FromBGR(pix []byte, stride int, r image.Rectangle) *Planar {
	p := NewPlanar(r.Dx(), r.Dy())
	n := p.W * p.H
	for y := 0; y < p.H; y++ {
		row := pix[(r.Min.Y+y)*stride+3*r.Min.X:]
		for x := 0; x < p.W; x++ {
			i := y*p.W + x
			p.Pix[2*n+i] = float32(row[3*x]) / 255
			p.Pix[n+i] = float32(row[3*x+1]) / 255
			p.Pix[i] = float32(row[3*x+2]) / 255
		}
	}
	return p
}

func to8(v float32) uint8 {
	v = v*255 + 0.5
	if v < 0 || v != v {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// Image converts to an 8-bit RGBA image (values clipped to [0, 1]).
func (p *Planar) Image() *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, p.W, p.H))
	n := p.W * p.H
	for i := 0; i < n; i++ {
		img.Pix[4*i] = to8(p.Pix[i])
		img.Pix[4*i+1] = to8(p.Pix[n+i])
		img.Pix[4*i+2] = to8(p.Pix[2*n+i])
		img.Pix[4*i+3] = 255
	}
	return img
}

// Load decodes a PNG, JPEG or GIF file within the limits of ReadFile and
// Decode (DefaultMaxPixels).
func Load(path string) (image.Image, error) {
	return LoadLimit(path, DefaultMaxPixels)
}

// LoadLimit is Load with another pixel limit.
func LoadLimit(path string, maxPixels int) (image.Image, error) {
	b, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	img, _, err := Decode(b, maxPixels)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return img, nil
}

// Save encodes img by the file extension (.png, or .jpg/.jpeg at quality 92).
func Save(path string, img image.Image) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := Encode(f, filepath.Ext(path), img); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

// Encode writes img as PNG or JPEG by extension.
func Encode(w io.Writer, ext string, img image.Image) error {
	switch strings.ToLower(ext) {
	case ".png", "png":
		return png.Encode(w, img)
	case ".jpg", ".jpeg", "jpg", "jpeg":
		return jpeg.Encode(w, img, &jpeg.Options{Quality: 92})
	default:
		return fmt.Errorf("unknown image format %q (png, jpg)", ext)
	}
}
