package rtspserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"sync"
	"time"
)

// Codecs PublishFFmpeg can encode.
const (
	CodecH264 = "h264"
	CodecH265 = "h265"
)

// ErrNoFFmpeg is returned by PublishFFmpeg and FFmpegPath when no ffmpeg binary
// is on PATH (Debian package: ffmpeg).
var ErrNoFFmpeg = errors.New("ffmpeg binary not found in PATH (install the Debian package ffmpeg)")

// FFmpegPath returns the path of the ffmpeg binary or ErrNoFFmpeg.
func FFmpegPath() (string, error) {
	p, err := exec.LookPath("ffmpeg")
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoFFmpeg, err)
	}
	return p, nil
}

// FFmpegOptions describes the test stream PublishFFmpeg pushes.
type FFmpegOptions struct {
	// Codec is CodecH264 (libx264, default) or CodecH265 (libx265).
	Codec string
	// Width and Height of the lavfi testsrc2 picture. Default 320x240.
	Width, Height int
	// FPS is the frame rate. Default 25.
	FPS int
	// GOP is the key frame interval in frames. Default 10.
	GOP int
	// Duration of the stream; 0 publishes until Stop or ctx ends.
	Duration time.Duration
	// Input, when set, is a file published with -c copy in a loop (-stream_loop
	// -1) instead of encoding testsrc2; Codec, size, FPS and GOP are then ignored.
	Input string
	// Transport to the server: "tcp" (default) or "udp".
	Transport string
}

// Publisher is a running ffmpeg process that pushes a stream to an RTSP server.
type Publisher struct {
	cmd    *exec.Cmd
	cancel context.CancelFunc
	done   chan struct{}
	err    error

	stderrMu sync.Mutex
	stderr   bytes.Buffer
}

// PublishFFmpeg starts ffmpeg publishing a synthetic (or file) stream to url in
// real time (-re). The process ends with ctx, on Stop, or after Duration.
func PublishFFmpeg(ctx context.Context, url string, o FFmpegOptions) (*Publisher, error) {
	bin, err := FFmpegPath()
	if err != nil {
		return nil, err
	}
	args, err := ffmpegArgs(url, o)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &Publisher{cancel: cancel, done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, bin, args...)
	p.cmd.Stdout = nil
	p.cmd.Stderr = &lockedWriter{mu: &p.stderrMu, w: &p.stderr}
	p.cmd.WaitDelay = 2 * time.Second
	if err := p.cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("rtspserver: start ffmpeg: %w", err)
	}
	go func() {
		defer close(p.done)
		p.err = p.cmd.Wait()
	}()
	return p, nil
}

func ffmpegArgs(url string, o FFmpegOptions) ([]string, error) {
	if o.Width == 0 {
		o.Width = 320
	}
	if o.Height == 0 {
		o.Height = 240
	}
	if o.FPS == 0 {
		o.FPS = 25
	}
	if o.GOP == 0 {
		o.GOP = 10
	}
	if o.Transport == "" {
		o.Transport = "tcp"
	}
	if o.Transport != "tcp" && o.Transport != "udp" {
		return nil, fmt.Errorf("rtspserver: ffmpeg transport %q: want tcp or udp", o.Transport)
	}
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-re"}
	if o.Input != "" {
		args = append(args, "-stream_loop", "-1", "-i", o.Input)
		if o.Duration > 0 {
			args = append(args, "-t", strconv.FormatFloat(o.Duration.Seconds(), 'f', 3, 64))
		}
		args = append(args, "-c", "copy")
	} else {
		src := fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", o.Width, o.Height, o.FPS)
		args = append(args, "-f", "lavfi", "-i", src)
		if o.Duration > 0 {
			args = append(args, "-t", strconv.FormatFloat(o.Duration.Seconds(), 'f', 3, 64))
		}
		args = append(args, "-pix_fmt", "yuv420p", "-g", strconv.Itoa(o.GOP), "-bf", "0", "-threads", "1")
		switch o.Codec {
		case "", CodecH264:
			args = append(args, "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency")
		case CodecH265:
			args = append(args, "-c:v", "libx265", "-preset", "ultrafast", "-tune", "zerolatency",
				"-x265-params", fmt.Sprintf("keyint=%d:min-keyint=%d:bframes=0:pools=1:frame-threads=1:log-level=error", o.GOP, o.GOP))
		default:
			return nil, fmt.Errorf("rtspserver: ffmpeg codec %q: want %q or %q", o.Codec, CodecH264, CodecH265)
		}
	}
	// 1200-byte packets leave room for SRTP when the server forwards over RTSPS.
	args = append(args, "-f", "rtsp", "-rtsp_transport", o.Transport, "-pkt_size", "1200", url)
	return args, nil
}

// Done is closed when the ffmpeg process has exited.
func (p *Publisher) Done() <-chan struct{} { return p.done }

// Err returns the process exit error once Done is closed.
func (p *Publisher) Err() error {
	<-p.done
	return p.err
}

// Stderr returns what ffmpeg wrote to stderr so far (it runs with -loglevel error).
func (p *Publisher) Stderr() string {
	p.stderrMu.Lock()
	defer p.stderrMu.Unlock()
	return p.stderr.String()
}

// Stop kills ffmpeg and waits for it to exit. It is safe to call more than once.
func (p *Publisher) Stop() {
	p.cancel()
	<-p.done
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
