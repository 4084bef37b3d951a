//go:build cgo

package ingest

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/srdgd/srdgd/face"
)

func TestAVDecoderDecodesFiles(t *testing.T) {
	tests := []struct {
		file       string
		codec      string
		w, h       int
		wantFrames int
	}{
		{"testsrc2_64x48.h264", CodecH264, 64, 48, 12},
		{"testsrc2_64x48.h265", CodecH265, 64, 48, 12},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			aus := readAccessUnits(t, tc.file, tc.codec)
			if len(aus) != tc.wantFrames {
				t.Fatalf("%d access units in %s, want %d", len(aus), tc.file, tc.wantFrames)
			}
			dec, err := NewAVDecoder(tc.codec)
			if err != nil {
				t.Fatal(err)
			}
			defer dec.Close()
			var pics []Picture
			for i, au := range aus {
				pts := time.Duration(i) * 40 * time.Millisecond
				got, err := dec.Decode(au, pts, nil)
				if err != nil {
					t.Fatalf("access unit %d: %v", i, err)
				}
				// Zero-latency streams come out as soon as they go in.
				if len(got) != 1 || got[0].PTS != pts {
					t.Fatalf("access unit %d (pts %v): got %d pictures %+v", i, pts, len(got), got)
				}
				pics = append(pics, got...)
			}
			for _, p := range pics {
				checkPicture(t, &face.Frame{Width: p.Width, Height: p.Height, Pix: p.Pix}, tc.w, tc.h)
			}
			// Buffers are per picture, not reused under the caller.
			if &pics[0].Pix[0] == &pics[1].Pix[0] {
				t.Fatal("two pictures share a pixel buffer")
			}
		})
	}
}

// A solid red picture must come out as B=0 G=0 R=255 (within limited-range
// rounding): this pins the channel order gocv expects.
func TestAVDecoderOutputsBGR(t *testing.T) {
	aus := readAccessUnits(t, "red_64x48.h264", CodecH264)
	dec, err := NewAVDecoder(CodecH264)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	pics, err := dec.Decode(aus[0], 0, nil)
	if err != nil || len(pics) != 1 {
		t.Fatalf("Decode = %d pictures, %v", len(pics), err)
	}
	p := pics[0]
	for _, at := range []int{0, len(p.Pix)/2 - len(p.Pix)/2%3, len(p.Pix) - 3} {
		b, g, r := int(p.Pix[at]), int(p.Pix[at+1]), int(p.Pix[at+2])
		if b > 8 || g > 8 || r < 245 {
			t.Fatalf("pixel at byte %d = B%d G%d R%d, want about B0 G0 R255", at, b, g, r)
		}
	}
}

func TestAVDecoderGarbageAndMisuse(t *testing.T) {
	if _, err := NewAVDecoder("VP8"); !errors.Is(err, ErrUnsupportedCodec) {
		t.Fatalf("NewAVDecoder(VP8) = %v, want ErrUnsupportedCodec", err)
	}
	for _, codec := range []string{CodecH264, CodecH265} {
		t.Run(codec, func(t *testing.T) {
			dec, err := NewAVDecoder(codec)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			var errs int
			for i := range 200 {
				au := make([][]byte, 1+rng.IntN(3))
				for j := range au {
					au[j] = make([]byte, rng.IntN(300))
					for k := range au[j] {
						au[j][k] = byte(rng.Uint32())
					}
					if len(au[j]) > 0 && i%2 == 0 {
						au[j][0] = 0x65 // claim to be an IDR slice
						if codec == CodecH265 {
							au[j][0] = 19 << 1
						}
					}
				}
				pics, err := dec.Decode(au, time.Duration(i), nil)
				if err != nil {
					errs++
				}
				for _, p := range pics {
					if len(p.Pix) != 3*p.Width*p.Height {
						t.Fatalf("picture %dx%d with %d bytes", p.Width, p.Height, len(p.Pix))
					}
				}
			}
			if errs == 0 {
				t.Fatal("200 random access units produced no decode error")
			}
			if pics, err := dec.Decode(nil, 0, nil); err != nil || pics != nil {
				t.Fatalf("empty access unit: %v %v", pics, err)
			}
			if err := dec.Close(); err != nil {
				t.Fatal(err)
			}
			if err := dec.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if _, err := dec.Decode([][]byte{{0x65, 1}}, 0, nil); err == nil {
				t.Fatal("Decode after Close succeeded")
			}
		})
	}
}

func BenchmarkAVDecodeH264_64x48(b *testing.B) {
	aus := readAccessUnits(b, "testsrc2_64x48.h264", CodecH264)
	dec, err := NewAVDecoder(CodecH264)
	if err != nil {
		b.Fatal(err)
	}
	defer dec.Close()
	b.ResetTimer()
	for i := range b.N {
		// The file starts with an IDR, so looping over it stays a valid stream.
		if _, err := dec.Decode(aus[i%len(aus)], time.Duration(i), nil); err != nil {
			b.Fatal(err)
		}
	}
}

// The committed fuzz seeds captured from ffmpeg streams must reach the decoder
// and yield pictures, or the fuzzer would only exercise error paths.
func TestCapturedSeedsDecode(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzAssembleDecode", "captured_*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no captured seeds (%v)", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			lit, ok := strings.CutPrefix(strings.TrimSpace(string(raw)), "go test fuzz v1\n[]byte(")
			if !ok {
				t.Fatalf("%s is not a go fuzz corpus file", file)
			}
			data, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
			if err != nil {
				t.Fatal(err)
			}
			forma, pkts := decodeFuzzInput([]byte(data))
			a, err := newAssembler(forma)
			if err != nil {
				t.Fatal(err)
			}
			dec, err := NewAVDecoder(a.codec)
			if err != nil {
				t.Fatal(err)
			}
			defer dec.Close()
			var pics int
			started := false
			for _, p := range pkts {
				au, _, key, err := a.push(p)
				if err != nil || au == nil || (!started && !key) {
					continue
				}
				started = true
				got, err := dec.Decode(au, 0, nil)
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				for _, pic := range got {
					if pic.Width != 64 || pic.Height != 48 {
						t.Fatalf("picture %dx%d, want 64x48", pic.Width, pic.Height)
					}
				}
				pics += len(got)
			}
			if pics < 1 {
				t.Fatal("seed decodes to no picture")
			}
		})
	}
}
