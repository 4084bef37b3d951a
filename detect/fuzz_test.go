package detect

import (
	"errors"
	"testing"

	"github.com/srdgd/srdgd/internal/faceimg"
)

// FuzzDecodeInput: any `detect --in` file gives a valid BGR frame within the
// pixel limit or an ErrUnreadable / ErrTooLarge error, never a panic. Seeds:
// testdata/fuzz/FuzzDecodeInput (small PNG, JPEG and GIF, headers claiming
// huge sizes, a truncated PNG).
func FuzzDecodeInput(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 1 << 20
		img, err := DecodeImage(data, limit)
		if err != nil {
			if !errors.Is(err, faceimg.ErrUnreadable) && !errors.Is(err, faceimg.ErrTooLarge) {
				t.Fatalf("error %v wraps neither ErrUnreadable nor ErrTooLarge", err)
			}
			return
		}
		if err := img.check(); err != nil {
			t.Fatal(err)
		}
		if img.Width*img.Height > limit {
			t.Fatalf("decoded %dx%d with a limit of %d pixels", img.Width, img.Height, limit)
		}
	})
}

// FuzzParseNormRect: any --roi value gives a region inside the frame or an
// error, never a panic.
func FuzzParseNormRect(f *testing.F) {
	for _, s := range []string{"0,0,1,1", "0.1, 0.2 ,0.5,0.9", "0.5,0,0.2,1", "1,2,3", "a,b,c,d", "NaN,0,1,1", "0,0,1e400,1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseNormRect(s)
		if err == nil && !(n.X0 >= 0 && n.X0 < n.X1 && n.X1 <= 1 && n.Y0 >= 0 && n.Y0 < n.Y1 && n.Y1 <= 1) {
			t.Fatalf("%q: accepted %+v outside the frame", s, n)
		}
	})
}
