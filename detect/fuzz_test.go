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
