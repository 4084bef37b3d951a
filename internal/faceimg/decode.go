package faceimg

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io/fs"

	"github.com/srdgd/srdgd/internal/boundedfile"
)

// Limits on image inputs (enrolment and search photos, `srdgd sr --in`,
// `srdgd detect --in`). Go's decoders allocate the whole picture (4 to 8
// bytes a pixel) before anything can be reduced, and a PNG of 170 KB can
// claim 40 million pixels, so the size is checked on the header first.
const (
	// DefaultMaxPixels is the largest picture decoded (width x height): 40
	// million pixels, 160 MB as 8-bit RGBA. 8K video (7680x4320) and 36
	// megapixel photos fit.
	DefaultMaxPixels = 40_000_000
	// MaxFileBytes is the largest image file read (64 MiB).
	MaxFileBytes = 64 << 20
)

// Sentinel errors of Decode and Load.
var (
	// ErrUnreadable: not a PNG, JPEG or GIF, or a broken one.
	ErrUnreadable = errors.New("not a readable image")
	// ErrTooLarge: more pixels than the limit, or a file over MaxFileBytes.
	ErrTooLarge = errors.New("image too large")
)

// Decode decodes a PNG, JPEG or GIF after checking, from its header alone,
// that it has at most maxPixels pixels (0 means DefaultMaxPixels). It returns
// the image and the format name ("png", "jpeg", "gif"). Errors wrap
// ErrUnreadable or ErrTooLarge.
func Decode(data []byte, maxPixels int) (image.Image, string, error) {
	if maxPixels <= 0 {
		maxPixels = DefaultMaxPixels
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, "", fmt.Errorf("%w (JPEG, PNG or GIF): %w", ErrUnreadable, err)
	}
	if err := checkSize(cfg.Width, cfg.Height, maxPixels); err != nil {
		return nil, "", err
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, "", fmt.Errorf("%w (%s): %w", ErrUnreadable, format, err)
	}
	// a GIF frame or a JPEG may disagree with the header; the header is what
	// was checked, so insist on it
	if b := img.Bounds(); b.Dx() != cfg.Width || b.Dy() != cfg.Height {
		return nil, "", fmt.Errorf("%w (%s): the picture is %dx%d, the header says %dx%d", ErrUnreadable, format, b.Dx(), b.Dy(), cfg.Width, cfg.Height)
	}
	return img, format, nil
}

func checkSize(w, h, maxPixels int) error {
	// w*h cannot overflow: the decoders' headers hold 16- or 32-bit sides
	if w <= 0 || h <= 0 || int64(w)*int64(h) > int64(maxPixels) {
		return fmt.Errorf("%w: %dx%d pixels, the limit is %d", ErrTooLarge, w, h, maxPixels)
	}
	return nil
}

// ReadFile reads an image file: a regular file of at most MaxFileBytes (a
// device, FIFO or directory is refused before reading; the file is opened
// without blocking, so a FIFO does not wait for a writer: internal/boundedfile).
func ReadFile(path string) ([]byte, error) {
	b, err := boundedfile.Read(path, MaxFileBytes)
	switch {
	case errors.Is(err, boundedfile.ErrNotRegular):
		return nil, fmt.Errorf("%s: %w: %w", path, ErrUnreadable, err)
	case errors.Is(err, boundedfile.ErrTooLarge):
		return nil, fmt.Errorf("%s: %w: %w", path, ErrTooLarge, err)
	case err != nil:
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, err // names the path already
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// Shrink returns img reduced, aspect ratio kept, so that neither side
// exceeds side pixels, or img itself when it already fits. Each output pixel
// is the area-weighted mean of the input pixels it covers (a box filter, as
// OpenCV's INTER_AREA), in premultiplied RGBA; the input is read one row at
// a time, so the only memory used besides the output is two rows.
func Shrink(img image.Image, side int) image.Image {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if side <= 0 || (w <= side && h <= side) {
		return img
	}
	ow, oh := side, side
	if w > h {
		oh = max(1, int((int64(h)*int64(side)+int64(w)/2)/int64(w)))
	} else {
		ow = max(1, int((int64(w)*int64(side)+int64(h)/2)/int64(h)))
	}
	return shrinkTo(img, ow, oh)
}

// tap is one input column's or row's weight in an output pixel.
type tap struct {
	i int
	w float32
}

// boxTaps maps n input samples onto m <= n output samples: output j covers
// input [j*n/m, (j+1)*n/m), each input weighted by the part of it covered,
// normalised to sum 1.
func boxTaps(n, m int) [][]tap {
	out := make([][]tap, m)
	scale := float64(n) / float64(m)
	for j := range out {
		lo, hi := float64(j)*scale, float64(j+1)*scale
		for i := int(lo); i < n && float64(i) < hi; i++ {
			cov := min(hi, float64(i+1)) - max(lo, float64(i))
			if cov > 1e-9 {
				out[j] = append(out[j], tap{i, float32(cov / scale)})
			}
		}
	}
	return out
}

func shrinkTo(img image.Image, ow, oh int) *image.RGBA {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	xt, yt := boxTaps(w, ow), boxTaps(h, oh)
	// each input row feeds at most two output rows: the current one (acc)
	// and, when it straddles their boundary, the next one (next)
	out := image.NewRGBA(image.Rect(0, 0, ow, oh))
	row := make([]uint8, 4*w)
	hrow := make([]float32, 4*ow)
	acc, next := make([]float32, 4*ow), make([]float32, 4*ow)
	for oy, y := 0, 0; oy < oh; y++ {
		readRow(img, b.Min.Y+y, row)
		for j, ts := range xt {
			var r, g, bb, a float32
			for _, t := range ts {
				p := row[4*t.i : 4*t.i+4]
				r += t.w * float32(p[0])
				g += t.w * float32(p[1])
				bb += t.w * float32(p[2])
				a += t.w * float32(p[3])
			}
			hrow[4*j], hrow[4*j+1], hrow[4*j+2], hrow[4*j+3] = r, g, bb, a
		}
		addRow(acc, hrow, weightOf(yt[oy], y))
		if oy+1 < oh {
			addRow(next, hrow, weightOf(yt[oy+1], y))
		}
		if ts := yt[oy]; ts[len(ts)-1].i == y {
			put(out, oy, acc)
			acc, next = next, acc
			clear(next)
			oy++
		}
	}
	return out
}

func weightOf(ts []tap, i int) float32 {
	for _, t := range ts {
		if t.i == i {
			return t.w
		}
	}
	return 0
}

func addRow(acc, row []float32, w float32) {
	if w == 0 {
		return
	}
	for i := range acc {
		acc[i] += w * row[i]
	}
}

func put(out *image.RGBA, y int, acc []float32) {
	dst := out.Pix[y*out.Stride : y*out.Stride+len(acc)]
	for i, v := range acc {
		v += 0.5
		if v > 255 {
			v = 255
		}
		dst[i] = uint8(v)
	}
	// premultiplied: no colour above its alpha
	for i := 0; i+3 < len(dst); i += 4 {
		a := dst[i+3]
		dst[i] = min(dst[i], a)
		dst[i+1] = min(dst[i+1], a)
		dst[i+2] = min(dst[i+2], a)
	}
}

// readRow writes row y of img as premultiplied 8-bit RGBA into dst.
func readRow(img image.Image, y int, dst []uint8) {
	b := img.Bounds()
	switch m := img.(type) {
	case *image.RGBA:
		copy(dst, m.Pix[m.PixOffset(b.Min.X, y):])
	case *image.NRGBA:
		src := m.Pix[m.PixOffset(b.Min.X, y):]
		for i := 0; i < len(dst); i += 4 {
			a := uint32(src[i+3])
			dst[i] = uint8((uint32(src[i])*a + 127) / 255)
			dst[i+1] = uint8((uint32(src[i+1])*a + 127) / 255)
			dst[i+2] = uint8((uint32(src[i+2])*a + 127) / 255)
			dst[i+3] = uint8(a)
		}
	case *image.YCbCr:
		for x, i := b.Min.X, 0; i < len(dst); x, i = x+1, i+4 {
			yi, ci := m.YOffset(x, y), m.COffset(x, y)
			dst[i], dst[i+1], dst[i+2] = color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
			dst[i+3] = 255
		}
	case *image.Gray:
		src := m.Pix[m.PixOffset(b.Min.X, y):]
		for i := 0; i < len(dst); i += 4 {
			v := src[i/4]
			dst[i], dst[i+1], dst[i+2], dst[i+3] = v, v, v, 255
		}
	default:
		for x, i := b.Min.X, 0; i < len(dst); x, i = x+1, i+4 {
			r, g, bb, a := img.At(x, y).RGBA()
			dst[i], dst[i+1], dst[i+2], dst[i+3] = uint8(r>>8), uint8(g>>8), uint8(bb>>8), uint8(a>>8)
		}
	}
}
