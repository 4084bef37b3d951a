package ingest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
)

// Probe steps, in order; a ProbeError names the one that failed.
const (
	ProbeConnect  = "connect"  // TCP connection to the camera
	ProbeDescribe = "describe" // RTSP DESCRIBE (credentials, path, TLS, codec)
	ProbeFrame    = "frame"    // a session through Camera.Run up to one decoded frame
)

// ErrStreamNotFound means the camera answered DESCRIBE with 404: the path
// names no stream.
var ErrStreamNotFound = errors.New("no such stream")

// ProbeError is a failed Probe. Its message never contains the password.
type ProbeError struct {
	Camera string
	// URL is the camera URL without credentials.
	URL string
	// Step is ProbeConnect, ProbeDescribe or ProbeFrame.
	Step string
	// Err is the cause, credentials redacted; errors.Is finds
	// ErrAuthRejected, ErrStreamNotFound, ErrFingerprintMismatch,
	// ErrUnsupportedCodec and context.DeadlineExceeded through it.
	Err error
}

func (e *ProbeError) Error() string {
	return fmt.Sprintf("ingest: camera %q: %s: %s: %v", e.Camera, e.URL, e.Step, e.Err)
}

func (e *ProbeError) Unwrap() error { return e.Err }

// ProbeResult is what a successful Probe measured.
type ProbeResult struct {
	// URL is the camera URL without credentials.
	URL string
	// Codec is CodecH264 or CodecH265; Medias lists every format of the
	// stream ("video/H264, audio/MPEG-4 Audio").
	Codec, Medias string
	// SDPWidth and SDPHeight are the size in the SDP's parameter sets (0 when
	// absent); Width and Height that of the decoded frame.
	SDPWidth, SDPHeight int
	Width, Height       int
	// Transport is "TCP" or "UDP", as the session ended up.
	Transport string
	// Connect, Describe and FirstFrame are the times of the TCP connect, the
	// DESCRIBE round trip and the session up to its first decoded frame.
	Connect, Describe, FirstFrame time.Duration
}

// probeTimeout bounds a Probe whose ctx has no deadline.
const probeTimeout = 15 * time.Second

// Probe checks a camera the way the daemon will use it (hwtest): TCP
// connect, RTSP DESCRIBE with the credentials and the rtsps pinning or
// verification of o, then a session through Camera.Run until one frame is
// decoded. o is validated as NewCamera does; the reconnect delays default to
// 200 ms and 1 s here, so a camera that drops the first session is retried
// within the probe. Without a deadline on ctx, 15 s apply. The error is a
// *ProbeError for the steps, or NewCamera's for bad options.
func Probe(ctx context.Context, o CameraOptions) (*ProbeResult, error) {
	if o.ReconnectInitial == 0 {
		o.ReconnectInitial = 200 * time.Millisecond
	}
	if o.ReconnectMax == 0 {
		o.ReconnectMax = time.Second
	}
	cam, err := NewCamera(o)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, probeTimeout)
		defer cancel()
	}
	res := &ProbeResult{URL: cam.safeURL}
	fail := func(step string, err error) (*ProbeResult, error) {
		return nil, &ProbeError{Camera: cam.o.Name, URL: cam.safeURL, Step: step, Err: cam.red.err(err)}
	}

	host := cam.url.Host
	if cam.url.Port() == "" {
		port := "554"
		if cam.url.Scheme == "rtsps" {
			port = "322"
		}
		host = net.JoinHostPort(cam.url.Hostname(), port)
	}
	t0 := time.Now()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return fail(ProbeConnect, fmt.Errorf("tcp %s unreachable: %w", host, err))
	}
	conn.Close()
	res.Connect = time.Since(t0)

	t0 = time.Now()
	desc, err := cam.describe(ctx)
	if err != nil {
		return fail(ProbeDescribe, err)
	}
	res.Describe = time.Since(t0)
	res.Codec, res.SDPWidth, res.SDPHeight = sdpVideo(desc)
	res.Medias = describeMedias(desc)
	if res.Codec == "" {
		return fail(ProbeDescribe, fmt.Errorf("%w (stream has: %s)", ErrUnsupportedCodec, res.Medias))
	}

	frames := cam.SubscribeFrames(1)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	t0 = time.Now()
	go func() { done <- cam.Run(runCtx) }()
	f, popErr := frames.Pop(ctx)
	res.FirstFrame = time.Since(t0)
	st := cam.Status()
	stop()
	runErr := <-done
	if popErr != nil {
		why := st.LastError
		if why == "" && runErr != nil {
			why = runErr.Error()
		}
		if why == "" {
			why = "no error reported"
		}
		return fail(ProbeFrame, fmt.Errorf("%s answers DESCRIBE but no frame decoded (%s): %w", res.Codec, why, popErr))
	}
	res.Width, res.Height = f.Width, f.Height
	f.Release()
	res.Transport = st.Transport
	return res, nil
}

// describe sends one DESCRIBE with the camera's credentials and TLS
// settings; ctx ending closes the client. A 401 wraps ErrAuthRejected, a
// 404 ErrStreamNotFound, an expired ctx context.DeadlineExceeded.
func (c *Camera) describe(ctx context.Context) (*description.Session, error) {
	client := &gortsplib.Client{Scheme: c.url.Scheme, Host: c.url.Host, ReadTimeout: c.o.ReadTimeout,
		WriteTimeout: c.o.ReadTimeout, UserAgent: "srdgd-probe"}
	if c.tls != nil {
		client.TLSConfig = c.tls.Clone() // gortsplib sets ServerName on it
	}
	if err := client.Start2(); err != nil {
		return nil, fmt.Errorf("rtsp client: %w", err)
	}
	stop := context.AfterFunc(ctx, client.Close) // unblocks Describe when ctx ends
	desc, _, err := client.Describe(c.url)
	stop()
	client.Close()
	if err == nil {
		return desc, nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return nil, fmt.Errorf("no answer: %w (%v)", cerr, err)
	}
	var bad liberrors.ErrClientBadStatusCode
	switch {
	case isAuthRejected(err):
		return nil, fmt.Errorf("%w (%w)", ErrAuthRejected, err)
	case errors.As(err, &bad) && bad.Code == base.StatusNotFound:
		return nil, fmt.Errorf("%w (%w)", ErrStreamNotFound, err)
	}
	return nil, err
}

// sdpVideo returns the first H.264/H.265 track's codec and the size its SDP
// parameter sets give (0 when absent).
func sdpVideo(desc *description.Session) (codec string, w, h int) {
	_, f := findVideo(desc)
	switch f := f.(type) {
	case *format.H264:
		if sps, _ := f.SafeParams(); len(sps) > 0 {
			var s h264.SPS
			if s.Unmarshal(sps) == nil {
				w, h = s.Width(), s.Height()
			}
		}
		return CodecH264, w, h
	case *format.H265:
		if _, sps, _ := f.SafeParams(); len(sps) > 0 {
			var s h265.SPS
			if s.Unmarshal(sps) == nil {
				w, h = s.Width(), s.Height()
			}
		}
		return CodecH265, w, h
	}
	return "", 0, 0
}
