package eval

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/srdgd/srdgd/ingest"
	"github.com/srdgd/srdgd/internal/faceimg"
	"github.com/srdgd/srdgd/internal/resample"
)

// Shots configure the multi-shot evaluation: K LR observations of each probe
// the way consecutive frames of a walking person give them. Each shot is the
// HR face moved by a sub-pixel shift and a few percent of scale (the face's
// place and distance change from frame to frame), then reduced to the probe
// size as MakeLR does, with Gaussian sensor noise, rounded to 8 bits as a
// camera delivers them, and optionally through an H.264 round trip (all K
// shots of a probe as consecutive frames of one stream: libx264, then
// ingest's libavcodec decoder, as the daemon decodes a camera).
type Shots struct {
	// K observations per probe (0 or 1: one).
	K int
	// Samples is the number of posterior samples per shot for stochastic
	// methods (different noise seeds; 0 or 1: one).
	Samples int
	// Shift is the largest shift along each axis in LR pixels (uniform in
	// [-Shift, Shift]); DefaultShots: 0.5.
	Shift float64
	// Zoom is the largest relative change of scale (uniform in [-Zoom,
	// Zoom]); DefaultShots: 0.04.
	Zoom float64
	// Noise is the standard deviation of the sensor noise in [0, 1] units;
	// DefaultShots: 0.01 (2.6 of 255).
	Noise float64
	// CRF > 0 adds the H.264 round trip at that constant rate factor
	// (libx264 -preset veryfast -tune zerolatency -bf 0); 0: none.
	CRF int
	// Seed of the shots' randomness (each probe's is derived from it).
	Seed uint64
}

// Enabled says whether the shots add rows.
func (s Shots) Enabled() bool { return s.K > 1 || s.Samples > 1 }

// DefaultShots are k shots with the default motion and noise.
func DefaultShots(k int) Shots {
	return Shots{K: k, Samples: 1, Shift: 0.5, Zoom: 0.04, Noise: 0.01, Seed: 1}
}

// WithDefaults makes K and Samples at least 1 (zero motion and noise are
// settings, not defaults: see DefaultShots).
func (s Shots) WithDefaults() Shots {
	s.K, s.Samples = max(s.K, 1), max(s.Samples, 1)
	return s
}

// Check validates the (defaulted) settings.
func (s Shots) Check() error {
	var errs []error
	if s.K < 1 || s.K > 64 {
		errs = append(errs, fmt.Errorf("shots %d: want 1..64", s.K))
	}
	if s.Samples < 1 || s.Samples > 16 {
		errs = append(errs, fmt.Errorf("samples %d: want 1..16", s.Samples))
	}
	if s.Shift < 0 || s.Shift > 2 {
		errs = append(errs, fmt.Errorf("shot shift %v LR pixels: want 0..2", s.Shift))
	}
	if s.Zoom < 0 || s.Zoom > 0.2 {
		errs = append(errs, fmt.Errorf("shot zoom %v: want 0..0.2", s.Zoom))
	}
	if s.Noise < 0 || s.Noise > 0.1 {
		errs = append(errs, fmt.Errorf("shot noise %v: want 0..0.1", s.Noise))
	}
	if s.CRF < 0 || s.CRF > 51 {
		errs = append(errs, fmt.Errorf("shot crf %d: want 0 (no H.264) or 1..51", s.CRF))
	}
	return errors.Join(errs...)
}

// Tag names the settings that make the shots (not K or Samples: shot k is
// the same whatever K), for cache keys.
func (s Shots) Tag() string {
	return fmt.Sprintf("walk1-shift%g-zoom%g-noise%g-crf%d-seed%d", s.Shift, s.Zoom, s.Noise, s.CRF, s.Seed)
}

// Draw names shot k's posterior sample m (Input.Draw).
func Draw(k, m int) string { return fmt.Sprintf("shot%d.sample%d", k, m) }

// Make returns the K shots of an HR face (3 x n x n each) at scale (CheckScale),
// and the HR face as each shot saw it (moved and scaled: what a restored
// shot is compared with); key (the probe's path) seeds them.
func (s Shots) Make(ctx context.Context, hr *faceimg.Planar, scale int, key string) (shots [][]float32, seen [][]float32, n int, err error) {
	if err := CheckScale(scale); err != nil {
		return nil, nil, 0, err
	}
	n = hr.W / scale
	out := make([][]float32, s.K)
	seen = make([][]float32, s.K)
	for k := range out {
		rng := rand.New(rand.NewPCG(ProbeSeed(s.Seed, key), uint64(k)))
		dx, dy := s.Shift*(2*rng.Float64()-1), s.Shift*(2*rng.Float64()-1)
		z := 1 + s.Zoom*(2*rng.Float64()-1)
		seen[k] = warp(hr, float64(scale)*dx, float64(scale)*dy, z)
		lr, err := resample.Resize(seen[k], 3, hr.H, hr.W, n, n, resample.Bilinear)
		if err != nil {
			return nil, nil, 0, err
		}
		for i, v := range lr {
			v += float32(s.Noise * rng.NormFloat64())
			lr[i] = float32(math.Round(float64(min(max(v, 0), 1))*255) / 255)
		}
		out[k] = lr
	}
	if s.CRF == 0 {
		return out, seen, n, nil
	}
	coded, err := h264RoundTrip(ctx, out, n, s.CRF)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("shots of %s: h264: %w", key, err)
	}
	return coded, seen, n, nil
}

// warp resamples the planar face moved by (dx, dy) pixels and scaled by z
// about its centre (bilinear, edges clamped).
func warp(hr *faceimg.Planar, dx, dy, z float64) []float32 {
	w, h := hr.W, hr.H
	out := make([]float32, len(hr.Pix))
	cx, cy := float64(w-1)/2, float64(h-1)/2
	at := func(c, x, y int) float64 {
		x, y = min(max(x, 0), w-1), min(max(y, 0), h-1)
		return float64(hr.Pix[c*w*h+y*w+x])
	}
	for y := range h {
		sy := (float64(y)-cy)/z + cy - dy
		y0 := int(math.Floor(sy))
		fy := sy - float64(y0)
		for x := range w {
			sx := (float64(x)-cx)/z + cx - dx
			x0 := int(math.Floor(sx))
			fx := sx - float64(x0)
			for c := range 3 {
				v := (1-fy)*((1-fx)*at(c, x0, y0)+fx*at(c, x0+1, y0)) + fy*((1-fx)*at(c, x0, y0+1)+fx*at(c, x0+1, y0+1))
				out[c*w*h+y*w+x] = float32(v)
			}
		}
	}
	return out
}

// h264Pad is the frame around an n x n shot: 4n x 4n, the shot in the
// middle and its edges repeated outwards, so the encoder sees a face in a
// picture rather than a picture that is all face.
const h264Pad = 4

// h264RoundTrip encodes the shots as consecutive frames of one H.264 stream
// (libx264 through ffmpeg, single-threaded so the bits are reproducible) and
// decodes them with ingest's decoder, returning the shots cut back out.
func h264RoundTrip(ctx context.Context, shots [][]float32, n, crf int) ([][]float32, error) {
	side := h264Pad * n
	off := (side - n) / 2
	var raw bytes.Buffer
	for _, s := range shots {
		for y := range side {
			sy := min(max(y-off, 0), n-1)
			for x := range side {
				sx := min(max(x-off, 0), n-1)
				for c := range 3 {
					raw.WriteByte(uint8(math.Round(float64(s[c*n*n+sy*n+sx]) * 255)))
				}
			}
		}
	}
	size := fmt.Sprintf("%dx%d", side, side)
	cmd := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
		"-s", size, "-r", "25", "-i", "pipe:0", "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
		"-crf", strconv.Itoa(crf), "-g", "50", "-bf", "0", "-threads", "1", "-pix_fmt", "yuv420p",
		"-bsf:v", "h264_metadata=aud=insert", "-f", "h264", "pipe:1")
	cmd.Stdin = &raw
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("ffmpeg: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	pics, err := decodeAnnexB(stdout.Bytes())
	if err != nil {
		return nil, err
	}
	if len(pics) != len(shots) {
		return nil, fmt.Errorf("%d frames encoded, %d decoded", len(shots), len(pics))
	}
	out := make([][]float32, len(pics))
	for k, p := range pics {
		if p.Width != side || p.Height != side {
			return nil, fmt.Errorf("frame %d decoded at %dx%d, want %s", k, p.Width, p.Height, size)
		}
		lr := make([]float32, 3*n*n)
		for y := range n {
			for x := range n {
				i := 3 * ((y+off)*side + x + off) // BGR24
				for c := range 3 {
					lr[c*n*n+y*n+x] = float32(p.Pix[i+2-c]) / 255
				}
			}
		}
		out[k] = lr
	}
	return out, nil
}

// decodeAnnexB splits an Annex-B stream written with access unit delimiters
// into access units and decodes them, draining the decoder at the end.
func decodeAnnexB(stream []byte) ([]ingest.Picture, error) {
	var nalus h264.AnnexB
	if err := nalus.Unmarshal(stream); err != nil {
		return nil, fmt.Errorf("annex-b: %w", err)
	}
	var aus [][][]byte
	for _, nu := range nalus {
		if h264.NALUType(nu[0]&0x1f) == h264.NALUTypeAccessUnitDelimiter || len(aus) == 0 {
			aus = append(aus, nil)
			if h264.NALUType(nu[0]&0x1f) == h264.NALUTypeAccessUnitDelimiter {
				continue
			}
		}
		aus[len(aus)-1] = append(aus[len(aus)-1], nu)
	}
	dec, err := ingest.NewAVDecoder(ingest.CodecH264)
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	var pics []ingest.Picture
	for i, au := range aus {
		if len(au) == 0 {
			continue
		}
		p, err := dec.Decode(au, time.Duration(i)*40*time.Millisecond, nil)
		if err != nil {
			return nil, fmt.Errorf("access unit %d: %w", i, err)
		}
		pics = append(pics, p...)
	}
	return pics, nil
}
