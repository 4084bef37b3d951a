package app

import (
	"errors"
	"image"
	"testing"

	"github.com/srdgd/srdgd/internal/faceimg"
)

func TestSRInput(t *testing.T) {
	for _, c := range []struct {
		name string
		w, h int
		err  bool
		note bool
	}{
		{"model size", 16, 16, false, false},
		{"larger", 128, 128, false, true},
		{"above SRInputSide", SRInputSide + 500, SRInputSide + 500, false, true},
		{"not square", 128, 100, true, false},
		{"too small", 8, 8, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, note, err := SRInput(image.NewRGBA(image.Rect(0, 0, c.w, c.h)), 16)
			if (err != nil) != c.err {
				t.Fatalf("error %v, want error %v", err, c.err)
			}
			if err != nil {
				return
			}
			if p.W != 16 || p.H != 16 || len(p.Pix) != 3*16*16 {
				t.Errorf("input %dx%d with %d samples", p.W, p.H, len(p.Pix))
			}
			if (note != "") != c.note {
				t.Errorf("note %q", note)
			}
		})
	}
}

// FuzzSRInput: any `srdgd sr --in` file gives the model's 16x16 input or an
// error, never a panic. Seeds: testdata/fuzz/FuzzSRInput (small PNG, JPEG
// and GIF, headers claiming huge sizes, a truncated PNG).
func FuzzSRInput(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		img, _, err := faceimg.Decode(data, 1<<20)
		if err != nil {
			if !errors.Is(err, faceimg.ErrUnreadable) && !errors.Is(err, faceimg.ErrTooLarge) {
				t.Fatalf("error %v wraps neither ErrUnreadable nor ErrTooLarge", err)
			}
			return
		}
		p, _, err := SRInput(img, 16)
		if err != nil {
			return
		}
		if p.W != 16 || p.H != 16 || len(p.Pix) != 3*16*16 {
			t.Fatalf("input %dx%d with %d samples", p.W, p.H, len(p.Pix))
		}
	})
}
