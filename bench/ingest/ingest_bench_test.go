// Package ingestbench measures the ingest stage: libavcodec decode throughput
// per core against the ffmpeg CLI on the same file, and the latency from the
// RTSP server handing off an access unit to the decoded BGR24 frame, with one
// and with four cameras. It runs only with SRDGD_BENCH=1 (see run.sh), since it
// takes about a minute and both CPU cores.
package ingestbench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"

	"github.com/srdgd/srdgd/ingest"
	"github.com/srdgd/srdgd/internal/rtspserver"
)

const (
	width, height = 1280, 720
	fps           = 25
	clipSeconds   = 10
	passes        = 3 // decode the clip this many times for throughput
)

func requireBench(t *testing.T) {
	t.Helper()
	if os.Getenv("SRDGD_BENCH") != "1" {
		t.Skip("benchmark; run bench/ingest/run.sh (SRDGD_BENCH=1)")
	}
	if _, err := rtspserver.FFmpegPath(); err != nil {
		t.Fatal(err)
	}
}

// report appends a markdown line to $SRDGD_BENCH_OUT (and the test log).
func report(t *testing.T, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf(format, args...)
	t.Log(line)
	if out := os.Getenv("SRDGD_BENCH_OUT"); out != "" {
		f, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fmt.Fprintln(f, line)
	}
}

func ffmpeg(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

type clip struct {
	codec   string
	mkv     string // for publishing with -c copy
	annexB  string // raw stream with access unit delimiters, for our decoder
	bitrate string
}

// makeClips encodes a camera-like 720p25 clip (GOP 50, no B-frames) once per
// codec into dir.
func makeClips(t *testing.T, dir string) []clip {
	t.Helper()
	src := fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", width, height, fps)
	var clips []clip
	for _, c := range []struct{ codec, enc, bsf, ext, raw string }{
		{ingest.CodecH264, "libx264", "h264_mp4toannexb,h264_metadata=aud=insert", "h264", "h264"},
		{ingest.CodecH265, "libx265", "hevc_mp4toannexb,hevc_metadata=aud=insert", "h265", "hevc"},
	} {
		cl := clip{codec: c.codec, mkv: filepath.Join(dir, "cam720."+c.ext+".mkv"), annexB: filepath.Join(dir, "cam720."+c.ext), bitrate: "2M"}
		args := []string{"-f", "lavfi", "-i", src, "-t", fmt.Sprint(clipSeconds), "-pix_fmt", "yuv420p",
			"-c:v", c.enc, "-preset", "veryfast", "-b:v", cl.bitrate, "-g", "50", "-bf", "0"}
		if c.enc == "libx265" {
			args = append(args, "-x265-params", "keyint=50:bframes=0:log-level=error")
		}
		ffmpeg(t, append(args, cl.mkv)...)
		ffmpeg(t, "-i", cl.mkv, "-c", "copy", "-bsf:v", c.bsf, "-f", c.raw, cl.annexB)
		clips = append(clips, cl)
	}
	return clips
}

// splitAUs splits an Annex-B stream at its access unit delimiters.
func splitAUs(t *testing.T, path, codec string) [][][]byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var nalus h264.AnnexB
	if err := nalus.Unmarshal(raw); err != nil {
		t.Fatal(err)
	}
	var aus [][][]byte
	for _, n := range nalus {
		aud := n[0]&0x1f == 9
		if codec == ingest.CodecH265 {
			aud = (n[0]>>1)&0x3f == 35
		}
		if aud || len(aus) == 0 {
			aus = append(aus, nil)
		}
		if !aud {
			aus[len(aus)-1] = append(aus[len(aus)-1], n)
		}
	}
	return aus
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type rate struct {
	frames    int
	cpu, wall time.Duration
}

func (r rate) perCPUSecond() float64  { return float64(r.frames) / r.cpu.Seconds() }
func (r rate) perWallSecond() float64 { return float64(r.frames) / r.wall.Seconds() }

// decodeOurs decodes the clip with the ingest decoder. With recycle, each
// picture's buffer is handed back before the next one, as when consumers call
// Frame.Release promptly; without, every picture gets a fresh buffer.
func decodeOurs(t *testing.T, cl clip, recycle bool) rate {
	aus := splitAUs(t, cl.annexB, cl.codec)
	dec, err := ingest.NewAVDecoder(cl.codec)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	var spare []byte
	var alloc func(int) []byte
	if recycle {
		alloc = func(n int) []byte {
			if cap(spare) >= n {
				return spare[:n]
			}
			return make([]byte, n)
		}
	}
	start, cpu0 := time.Now(), cpuTime()
	var frames int
	for p := range passes {
		for i, au := range aus {
			pics, err := dec.Decode(au, time.Duration(p*len(aus)+i), alloc)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			frames += len(pics)
			for _, pic := range pics {
				spare = pic.Pix
			}
		}
	}
	return rate{frames: frames, cpu: cpuTime() - cpu0, wall: time.Since(start)}
}

func decodeFFmpeg(t *testing.T, cl clip, extra ...string) rate {
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-threads", "1", "-filter_threads", "1",
		"-stream_loop", fmt.Sprint(passes - 1), "-i", cl.mkv}
	args = append(args, extra...)
	args = append(args, "-f", "null", "-")
	cmd := exec.Command("ffmpeg", args...)
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	wall := time.Since(start)
	st := cmd.ProcessState
	return rate{frames: passes * clipSeconds * fps, cpu: st.UserTime() + st.SystemTime(), wall: wall}
}

func TestDecodeThroughput(t *testing.T) {
	requireBench(t)
	clips := makeClips(t, t.TempDir())
	report(t, "")
	report(t, "#### Decode throughput, %dx%d, one thread, %d frames (%d passes over a %d s clip, 2 Mbit/s, GOP 50)", width, height, passes*clipSeconds*fps, passes, clipSeconds)
	report(t, "")
	report(t, "| codec | decoder | frames/s per CPU-second | frames/s wall | ours ÷ ffmpeg (per CPU-second) |")
	report(t, "|---|---|---|---|---|")
	for _, cl := range clips {
		fresh := decodeOurs(t, cl, false)
		recycled := decodeOurs(t, cl, true)
		plain := decodeFFmpeg(t, cl)
		bgr := decodeFFmpeg(t, cl, "-pix_fmt", "bgr24")
		report(t, "| %s | `ffmpeg -threads 1 -f null` (decode only) | %.0f | %.0f | — |", cl.codec, plain.perCPUSecond(), plain.perWallSecond())
		report(t, "| %s | `ffmpeg -threads 1 -pix_fmt bgr24 -f null` (decode + BGR24) | %.0f | %.0f | — |", cl.codec, bgr.perCPUSecond(), bgr.perWallSecond())
		for _, r := range []struct {
			name string
			r    rate
		}{
			{"srdgd ingest → BGR24, buffers recycled (Frame.Release)", recycled},
			{"srdgd ingest → BGR24, fresh buffer per frame", fresh},
		} {
			report(t, "| %s | %s | %.0f | %.0f | %.2f of decode-only, %.2f of decode+BGR24 |", cl.codec, r.name,
				r.r.perCPUSecond(), r.r.perWallSecond(), r.r.perCPUSecond()/plain.perCPUSecond(), r.r.perCPUSecond()/bgr.perCPUSecond())
		}
	}
}

// sendTimes records when the server handed off the last packet of each
// access unit, per path and RTP timestamp.
type sendTimes struct {
	mu sync.Mutex
	m  map[string]map[uint32]time.Time
}

func (s *sendTimes) onPacket(path string, pkt *rtp.Packet, at time.Time) {
	if !pkt.Marker {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pm := s.m[path]
	if pm == nil {
		pm = make(map[uint32]time.Time)
		s.m[path] = pm
	}
	pm[pkt.Timestamp] = at
}

func (s *sendTimes) get(path string, ts uint32) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.m[path][ts]
	return at, ok
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

func TestLatency(t *testing.T) {
	requireBench(t)
	clips := makeClips(t, t.TempDir())
	const warmup, measure = 3 * time.Second, 12 * time.Second
	report(t, "")
	report(t, "#### Latency, server hand-off of an access unit's last RTP packet → decoded BGR24 frame (%dx%d@%d, RTSP over TCP on loopback, %v per run)", width, height, fps, measure)
	report(t, "")
	report(t, "| codec | cameras | frames | median | p99 | max | process CPU |")
	report(t, "|---|---|---|---|---|---|---|")
	for _, cl := range clips {
		for _, n := range []int{1, 4} {
			latencyRun(t, cl, n, warmup, measure)
		}
	}
}

func latencyRun(t *testing.T, cl clip, cameras int, warmup, measure time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), warmup+measure+30*time.Second)
	defer cancel()
	st := &sendTimes{m: make(map[string]map[uint32]time.Time)}
	srv, err := rtspserver.Start(rtspserver.Options{OnPacket: st.onPacket})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	var wg sync.WaitGroup
	var mu sync.Mutex
	var lat []time.Duration
	var missing int
	measureFrom := time.Now().Add(warmup + 2*time.Second) // publishers and sessions start first
	runCtx, stop := context.WithCancel(ctx)
	defer func() {
		stop()
		wg.Wait()
	}()
	for i := range cameras {
		path := fmt.Sprintf("cam%d", i)
		pub, err := rtspserver.PublishFFmpeg(ctx, srv.URL(path), rtspserver.FFmpegOptions{Input: cl.mkv})
		if err != nil {
			t.Fatal(err)
		}
		defer pub.Stop()
		if err := srv.WaitPublisher(ctx, path); err != nil {
			t.Fatalf("%v: %s", err, pub.Stderr())
		}
		cam, err := ingest.NewCamera(ingest.CameraOptions{Name: path, URL: srv.URL(path), Transport: "tcp"})
		if err != nil {
			t.Fatal(err)
		}
		frames := cam.SubscribeFrames(8)
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := cam.Run(runCtx); err != nil {
				t.Errorf("camera %s: %v", path, err)
			}
		}()
		go func() {
			defer wg.Done()
			for {
				f, err := frames.Pop(runCtx)
				if err != nil {
					return
				}
				decoded, rtpTime := f.Decoded, f.RTPTime
				f.Release()
				if decoded.Before(measureFrom) {
					continue
				}
				sent, ok := st.get(path, rtpTime)
				mu.Lock()
				if ok {
					lat = append(lat, decoded.Sub(sent))
				} else {
					missing++
				}
				mu.Unlock()
			}
		}()
	}
	cpu0 := cpuTime()
	start := time.Now()
	timer := time.NewTimer(time.Until(measureFrom.Add(measure)))
	<-timer.C
	cpu := cpuTime() - cpu0
	wall := time.Since(start)
	stop()
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	if len(lat) == 0 {
		t.Fatalf("%s x%d: no frames measured (%d without a send time)", cl.codec, cameras, missing)
	}
	report(t, "| %s | %d | %d | %.1f ms | %.1f ms | %.1f ms | %.0f%% of one core |", cl.codec, cameras, len(lat),
		ms(percentile(lat, 0.5)), ms(percentile(lat, 0.99)), ms(lat[len(lat)-1]), 100*cpu.Seconds()/wall.Seconds())
	if missing > 0 {
		t.Logf("%d frames had no recorded send time", missing)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
