package faceimg

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// hugePNGHeader is a PNG signature and an IHDR claiming w x h pixels, and no
// pixel data: what a decompression bomb looks like to DecodeConfig.
func hugePNGHeader(w, h uint32) []byte {
	var ihdr [13]byte
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 6 // 8-bit RGBA
	chunk := append([]byte("IHDR"), ihdr[:]...)
	out := []byte("\x89PNG\r\n\x1a\n")
	out = binary.BigEndian.AppendUint32(out, 13)
	out = append(out, chunk...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(chunk))
}

// hugeJPEGHeader is SOI, a baseline SOF0 claiming w x h pixels and the
// start of a scan.
func hugeJPEGHeader(w, h uint16) []byte {
	out := []byte{0xff, 0xd8, 0xff, 0xc0, 0, 17, 8}
	out = binary.BigEndian.AppendUint16(out, h)
	out = binary.BigEndian.AppendUint16(out, w)
	out = append(out, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1)
	return append(out, 0xff, 0xda, 0, 12, 3, 1, 0, 2, 0x11, 3, 0x11, 0, 0x3f, 0)
}

// decodeCases feed TestDecode and FuzzDecode's seeds.
func decodeCases(t testing.TB) []struct {
	name string
	data []byte
	err  error
} {
	gray := image.NewGray(image.Rect(0, 0, 6, 4))
	var g bytes.Buffer
	if err := gif.Encode(&g, gray, nil); err != nil {
		t.Fatal(err)
	}
	return []struct {
		name string
		data []byte
		err  error
	}{
		{"png", encodePNG(t, image.NewNRGBA(image.Rect(0, 0, 5, 3))), nil},
		{"jpeg", encodeJPEG(t, image.NewRGBA(image.Rect(0, 0, 16, 8))), nil},
		{"gif", g.Bytes(), nil},
		{"png over the limit", encodePNG(t, image.NewGray(image.Rect(0, 0, 101, 100))), ErrTooLarge},
		{"png header claiming 100000 squared", hugePNGHeader(100_000, 100_000), ErrTooLarge},
		{"png header claiming 2^31 squared", hugePNGHeader(1<<31-1, 1<<31-1), ErrUnreadable},
		{"png header claiming 0 wide", hugePNGHeader(0, 10), ErrUnreadable},
		{"jpeg header claiming 65535 squared", hugeJPEGHeader(65535, 65535), ErrTooLarge},
		{"truncated png", encodePNG(t, image.NewNRGBA(image.Rect(0, 0, 50, 50)))[:60], ErrUnreadable},
		{"empty", nil, ErrUnreadable},
		{"text", []byte("hello, world"), ErrUnreadable},
	}
}

func TestDecode(t *testing.T) {
	for _, c := range decodeCases(t) {
		t.Run(c.name, func(t *testing.T) {
			img, _, err := Decode(c.data, 10_000)
			if !errors.Is(err, c.err) {
				t.Fatalf("error %v, want %v", err, c.err)
			}
			if err == nil && img == nil {
				t.Fatal("no image and no error")
			}
		})
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok.png")
	if err := os.WriteFile(ok, encodePNG(t, image.NewGray(image.Rect(0, 0, 2, 2))), 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.png")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxFileBytes + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, path string
		err        error
	}{
		{"regular", ok, nil},
		{"over MaxFileBytes", big, ErrTooLarge},
		{"directory", dir, ErrUnreadable},
		{"device", "/dev/zero", ErrUnreadable},
		// without a writer: a blocking open would hang here
		{"fifo", fifo, ErrUnreadable},
		{"missing", filepath.Join(dir, "nope"), os.ErrNotExist},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadFile(c.path)
			if !errors.Is(err, c.err) {
				t.Fatalf("error %v, want %v", err, c.err)
			}
		})
	}
}

func TestShrink(t *testing.T) {
	// a 2:1 checkerboard of black and white columns averages to grey
	src := image.NewNRGBA(image.Rect(10, 20, 10+400, 20+300))
	for y := 0; y < 300; y++ {
		for x := 0; x < 400; x++ {
			v := uint8(255 * (x % 2))
			src.SetNRGBA(10+x, 20+y, color.NRGBA{v, v, v, 255})
		}
	}
	ycc := image.NewYCbCr(image.Rect(0, 0, 300, 301), image.YCbCrSubsampleRatio420)
	for i := range ycc.Y {
		ycc.Y[i] = 200
	}
	for i := range ycc.Cb {
		ycc.Cb[i], ycc.Cr[i] = 128, 128
	}
	transparent := image.NewNRGBA(image.Rect(0, 0, 2000, 10))
	for _, c := range []struct {
		name   string
		img    image.Image
		side   int
		w, h   int
		centre color.RGBA
	}{
		{"fits", src, 400, 400, 300, color.RGBA{255, 255, 255, 255}},
		{"halves", src, 200, 200, 150, color.RGBA{128, 128, 128, 255}},
		{"odd ratio", src, 123, 123, 92, color.RGBA{128, 128, 128, 255}},
		{"ycbcr portrait", ycc, 100, 100, 100, color.RGBA{200, 200, 200, 255}},
		{"transparent strip", transparent, 100, 100, 1, color.RGBA{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := Shrink(c.img, c.side)
			b := out.Bounds()
			if b.Dx() != c.w || b.Dy() != c.h {
				t.Fatalf("size %dx%d, want %dx%d", b.Dx(), b.Dy(), c.w, c.h)
			}
			if c.name == "fits" {
				if out != c.img {
					t.Fatal("an image that fits was copied")
				}
				return
			}
			got := color.RGBAModel.Convert(out.At(b.Min.X+b.Dx()/2, b.Min.Y+b.Dy()/2)).(color.RGBA)
			d := func(a, b uint8) int { return max(int(a)-int(b), int(b)-int(a)) }
			if d(got.R, c.centre.R) > 2 || d(got.G, c.centre.G) > 2 || d(got.B, c.centre.B) > 2 || got.A != c.centre.A {
				t.Errorf("centre pixel %v, want %v", got, c.centre)
			}
		})
	}
}

// TestShrinkMean: the box filter keeps the mean of every channel.
func TestShrinkMean(t *testing.T) {
	src := image.NewRGBA(image.Rect(0, 0, 997, 641))
	for i := range src.Pix {
		src.Pix[i] = uint8(i*7 + i/4096)
	}
	for i := 3; i < len(src.Pix); i += 4 {
		src.Pix[i] = 255
	}
	out := Shrink(src, 100).(*image.RGBA)
	mean := func(pix []uint8) (m [4]float64) {
		for i, v := range pix {
			m[i%4] += float64(v)
		}
		for i := range m {
			m[i] /= float64(len(pix) / 4)
		}
		return m
	}
	a, b := mean(src.Pix), mean(out.Pix)
	for i := range a {
		if d := a[i] - b[i]; d > 1 || d < -1 {
			t.Errorf("channel %d: mean %.2f before, %.2f after", i, a[i], b[i])
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, c := range decodeCases(f) {
		f.Add(c.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 1 << 20
		img, _, err := Decode(data, limit)
		if err != nil {
			if !errors.Is(err, ErrUnreadable) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v wraps neither ErrUnreadable nor ErrTooLarge", err)
			}
			return
		}
		b := img.Bounds()
		if b.Dx()*b.Dy() > limit || b.Empty() {
			t.Fatalf("decoded a %v image with a limit of %d pixels", b, limit)
		}
		s := Shrink(img, 64).Bounds()
		if s.Dx() > 64 || s.Dy() > 64 || s.Empty() {
			t.Fatalf("Shrink(%v, 64) is %v", b, s)
		}
	})
}
