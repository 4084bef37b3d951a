package match

import (
	"bytes"
	"errors"
	"image"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadKey: any key file content gives a 32-byte key or an ErrKey error,
// and a key is only accepted from 32 raw bytes or 64 hex characters.
func FuzzLoadKey(f *testing.F) {
	f.Add([]byte(strings.Repeat("ab", 32) + "\n"))
	f.Add(bytes.Repeat([]byte{0}, 32))
	f.Add([]byte("short"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "k")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		k, err := LoadKey(p)
		if err != nil {
			if !errors.Is(err, ErrKey) {
				t.Fatalf("error %v does not wrap ErrKey", err)
			}
			return
		}
		if len(k) != KeySize {
			t.Fatalf("key of %d bytes", len(k))
		}
		if len(data) != KeySize && len(bytes.TrimRight(data, "\r\n")) != 2*KeySize {
			t.Fatalf("accepted a %d-byte key file", len(data))
		}
	})
}

// FuzzOpenBlob: arbitrary stored bytes never decrypt (nor panic) unless they
// are a blob sealed under this key with the same associated data (the only
// plaintext ever sealed here is "descriptor" with "ad"; fuzz workers seal
// their own copy with another nonce).
func FuzzOpenBlob(f *testing.F) {
	s, err := newSealer(bytes.Repeat([]byte{1}, KeySize))
	if err != nil {
		f.Fatal(err)
	}
	good, _ := s.Seal([]byte("descriptor"), "ad")
	f.Add(good, "ad")
	f.Add(good, "other")
	f.Add([]byte{1, 2, 3}, "ad")
	f.Fuzz(func(t *testing.T, blob []byte, ad string) {
		p, err := s.Open(blob, ad)
		if err == nil && (ad != "ad" || string(p) != "descriptor") {
			t.Fatalf("forged blob %x with ad %q decrypted to %q", blob, ad, p)
		}
	})
}

// FuzzDecodePhoto: any enrolment photo is refused with ErrUnreadable or
// ErrTooLarge, or comes out at most PhotoSide on a side with stored JPEG
// bytes of exactly its pixels' size; never a panic. Seeds:
// testdata/fuzz/FuzzDecodePhoto (small PNG, JPEG and GIF, headers claiming
// huge sizes, a truncated PNG) and a photo above PhotoSide.
func FuzzDecodePhoto(f *testing.F) {
	var big bytes.Buffer
	if err := png.Encode(&big, image.NewGray(image.Rect(0, 0, PhotoSide+1, 3))); err != nil {
		f.Fatal(err)
	}
	f.Add(big.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 1 << 21
		d, err := decodePhotoBytes(data, limit)
		if err != nil {
			if !errors.Is(err, ErrUnreadable) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v wraps neither ErrUnreadable nor ErrTooLarge", err)
			}
			return
		}
		b := d.img.Bounds()
		if b.Empty() || b.Dx() > PhotoSide || b.Dy() > PhotoSide {
			t.Fatalf("photo %v of a %v file: want at most %d px a side", b, d.file, PhotoSide)
		}
		if d.file.Dx()*d.file.Dy() > limit {
			t.Fatalf("decoded a %v file with a limit of %d pixels", d.file, limit)
		}
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(d.stored))
		if err != nil || cfg.Width != b.Dx() || cfg.Height != b.Dy() {
			t.Fatalf("stored JPEG %dx%d (%v), photo %v", cfg.Width, cfg.Height, err, b)
		}
		if r := d.fromFile(d.file); r != b {
			t.Fatalf("the whole file maps to %v, want %v", r, b)
		}
	})
}
