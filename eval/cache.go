package eval

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
)

// readCache reads a cache; a missing file is an empty cache, and a
// truncated last line (an interrupted write) is ignored.
func readCache(path string) (map[string]record, error) {
	done := map[string]record{}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return done, nil
	}
	if err != nil {
		return nil, fmt.Errorf("evaluate: cache: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	line := 0
	var bad error
	for sc.Scan() {
		line++
		if bad != nil { // a bad line followed by more lines is corruption
			return nil, bad
		}
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			bad = fmt.Errorf("evaluate: cache %s line %d: %w", path, line, err)
			continue
		}
		done[r.key()] = r
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("evaluate: cache %s: %w", path, err)
	}
	return done, nil
}

// srCachePath is where the SR cache keeps one output: a hash of everything
// it depends on, so a new model, step count, seed or shot setting is a new
// file and nothing stale is read.
func srCachePath(dir string, meth Method, scale int, in Input, shotsTag string) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s|%s|x%d|%s|%s|%s", meth.srName(), meth.ID, scale, in.Probe.Path, in.Draw, shotsTag)))
	name := hex.EncodeToString(h[:16])
	return filepath.Join(dir, name[:2], name+".png")
}

// readSR reads a cached output (planar RGB, HR x HR).
func readSR(path string) ([]float32, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("sr cache %s: %w (delete it to recompute)", path, err)
	}
	if img.Bounds().Dx() != HR || img.Bounds().Dy() != HR {
		return nil, fmt.Errorf("sr cache %s: %v, want %dx%d (delete it to recompute)", path, img.Bounds(), HR, HR)
	}
	out := make([]float32, 3*HR*HR)
	b := img.Bounds()
	for y := range HR {
		for x := range HR {
			c := color.RGBA64Model.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.RGBA64)
			for ch, v := range []uint16{c.R, c.G, c.B} {
				out[ch*HR*HR+y*HR+x] = float32(v) / 0xffff
			}
		}
	}
	return out, nil
}

// writeSR keeps an output as a 16-bit PNG (written to a temporary file and
// renamed, so an interrupted run leaves no half file) and returns the values
// as they will be read back.
func writeSR(path string, pix []float32) ([]float32, error) {
	img := image.NewRGBA64(image.Rect(0, 0, HR, HR))
	out := make([]float32, len(pix))
	for y := range HR {
		for x := range HR {
			var c [3]uint16
			for ch := range 3 {
				i := ch*HR*HR + y*HR + x
				c[ch] = uint16(math.Round(float64(min(max(pix[i], 0), 1)) * 0xffff))
				out[i] = float32(c[ch]) / 0xffff
			}
			img.SetRGBA64(x, y, color.RGBA64{c[0], c[1], c[2], 0xffff})
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("sr cache: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".sr-*")
	if err != nil {
		return nil, fmt.Errorf("sr cache: %w", err)
	}
	err = png.Encode(tmp, img)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("sr cache %s: %w", path, err)
	}
	return out, nil
}
