// Package ingest pulls video from RTSP/RTSPS cameras and turns it into decoded
// frames: one supervised gortsplib session per camera with reconnect and
// backoff, RTP depacketising of H.264 (RFC 6184) and H.265 (RFC 7798), decoding
// with libavcodec and conversion to packed BGR24 with libswscale. Frames and raw
// access units fan out to subscribers through drop-oldest queues, so a slow
// consumer never stalls a camera.
package ingest

import (
	"log/slog"
	"sync/atomic"
	"time"
)

// Codec names used in AccessUnit.Codec, Status.Codec and Decoder construction.
const (
	CodecH264 = "H264"
	CodecH265 = "H265"
)

// Camera states reported in Status.State.
const (
	StateConnecting = "connecting"
	StateConnected  = "connected"
	StateBackoff    = "backoff"
	// StateAuthFailed: the camera rejected the credentials MaxAuthFailures
	// times in a row; Run retries after the long AuthRetry backoff.
	StateAuthFailed = "auth_failed"
	// StateFailed: Run returned a permanent error (see Run); LastError says which.
	StateFailed  = "failed"
	StateStopped = "stopped"
)

// States lists every value of Status.State.
var States = []string{StateConnecting, StateConnected, StateBackoff, StateAuthFailed, StateFailed, StateStopped}

// Frame is one decoded picture. Subscribers share the same *Frame: treat it,
// and Pix in particular, as read-only.
type Frame struct {
	Camera string
	// Seq numbers decoded frames of this camera from 1, across reconnects.
	Seq uint64
	// PTS is the presentation time from the RTP timestamps, relative to the start
	// of the RTSP session.
	PTS time.Duration
	// RTPTime is the raw RTP timestamp (90 kHz) of the access unit, for
	// correlating with the sender.
	RTPTime uint32
	// Wall is when the last RTP packet of the access unit arrived.
	Wall time.Time
	// Decoded is when the picture was ready in BGR24.
	Decoded time.Time
	Width   int
	Height  int
	// Pix is packed BGR24, stride 3*Width, the layout of a gocv CV_8UC3 Mat.
	// Each frame has its own buffer until it is released (see Release).
	Pix []byte

	refs atomic.Int32 // subscribers still holding the frame
	pool *bufPool
}

// Release tells ingest that one subscriber is done with the frame. Once every
// subscriber that received it has released it, its pixel buffer is reused for
// a later frame, which saves an allocation and page faults per frame (about
// half the decode cost at 720p). Calling Release is optional: frames that are
// never released are garbage-collected as usual. Each subscriber may call it
// at most once per frame and must not touch the frame afterwards.
func (f *Frame) Release() {
	if f == nil || f.pool == nil {
		return
	}
	if f.refs.Add(-1) == 0 {
		f.pool.put(f.Pix)
	}
}

// AccessUnit is one coded picture as received, for passthrough (WebRTC).
// Subscribers share the same *AccessUnit: treat it as read-only.
type AccessUnit struct {
	Camera string
	// Codec is CodecH264 or CodecH265.
	Codec   string
	PTS     time.Duration
	RTPTime uint32
	Wall    time.Time
	// NALUs without start codes. Key access units carry the parameter sets
	// (VPS/SPS/PPS) in front, taken from the SDP or the stream when the camera
	// sends them out of band.
	NALUs [][]byte
	// Key is true for IDR (H.264) and IRAP IDR/CRA (H.265) access units.
	Key bool
}

// Status is a snapshot of a camera's health and counters.
type Status struct {
	Camera    string
	State     string // one of States
	Connected bool
	Codec     string
	// Transport in use while connected: "TCP" or "UDP".
	Transport     string
	Width, Height int
	// FPS and BitrateKbps are measured over the time since the previous Status
	// call, at least one second apart.
	FPS, BitrateKbps float64
	Frames           uint64
	DecodeErrors     uint64
	// RTPErrors counts RTP packets that could not be depacketised or parsed.
	RTPErrors uint64
	// PacketsLost counts RTP sequence gaps.
	PacketsLost uint64
	// Reconnects counts the sessions that came up after an earlier session
	// had been up: how often the camera came back. Failed attempts do not
	// count (a camera that needed six tries to connect at all has 0).
	Reconnects uint64
	// AuthFailures counts connection attempts the camera answered with
	// rejected credentials (401).
	AuthFailures uint64
	// Dropped counts frames and access units discarded because a queue was full,
	// the decoder's own queue included.
	Dropped uint64
	// BuffersAllocated counts frame pixel buffers allocated fresh,
	// BuffersReused those recycled from released frames (see Frame.Release).
	// A subscriber that never releases its frames makes every buffer a fresh
	// one.
	BuffersAllocated, BuffersReused uint64
	// BuffersOutstanding is the number of frames whose buffer is still held
	// by a subscriber or a subscriber queue; it returns to 0 once every frame
	// delivered has been released.
	BuffersOutstanding int64
	LastError          string
	LastErrorAt        time.Time
	ConnectedSince     time.Time
}

// CameraOptions configures a Camera. Durations of 0 take the documented default.
type CameraOptions struct {
	// Name identifies the camera in frames, logs and errors. Required.
	Name string
	// URL is rtsp://host[:port]/path or rtsps://... . Credentials belong in
	// Username/Password; userinfo in the URL is used only when Username is empty,
	// and is never logged.
	URL      string
	Username string
	// Password in plain text; cmd resolves secrets before building options.
	Password string
	// Transport is "auto" (default: UDP, falling back to TCP), "tcp" or "udp".
	Transport string
	// TLSInsecure skips certificate verification for rtsps.
	TLSInsecure bool
	// TLSFingerprint pins the rtsps server certificate by the hex SHA-256 of its
	// DER encoding (colons allowed). Exclusive with TLSInsecure.
	TLSFingerprint string
	// ReconnectInitial is the first backoff delay (default 500 ms); it doubles
	// per failed attempt up to ReconnectMax (default 30 s), with jitter. After a
	// session stayed up for ReconnectResetAfter (default 60 s) the delay starts
	// over.
	ReconnectInitial, ReconnectMax, ReconnectResetAfter time.Duration
	// MaxRetries bounds consecutive failed attempts after the first one; Run then
	// returns ErrRetriesExhausted. 0 retries forever. A session that delivered
	// video resets the count.
	MaxRetries int
	// MaxAuthFailures: after this many consecutive rejected credentials the
	// camera enters StateAuthFailed and waits AuthRetryInitial (doubling up to
	// AuthRetryMax, with jitter) between further attempts, so that a wrong
	// password does not lock the account on the camera. Default 3.
	MaxAuthFailures int
	// AuthRetryInitial and AuthRetryMax are that long backoff. Defaults 5 min
	// and 1 h. It starts over once an attempt gets past authentication.
	AuthRetryInitial, AuthRetryMax time.Duration
	// ReadTimeout bounds RTSP requests and the silence tolerated on a playing
	// session before it is restarted. Default 10 s.
	ReadTimeout time.Duration
	// DecodeQueue is how many access units may wait for the decoder; when it
	// overflows the oldest is dropped and decoding resumes at the next key frame.
	// Default 32.
	DecodeQueue int
	// WarnInterval aggregates recurring warnings (decode errors, drops, packet
	// loss) into at most one log line per interval. Default 10 s.
	WarnInterval time.Duration
	// NewDecoder builds the decoder for a codec; nil uses libavcodec
	// (NewAVDecoder).
	NewDecoder func(codec string) (Decoder, error)
	// Logger gets a child logger with component=ingest camera=Name. Default: discard.
	Logger *slog.Logger
}

func (o *CameraOptions) setDefaults() {
	if o.Transport == "" {
		o.Transport = "auto"
	}
	if o.ReconnectInitial == 0 {
		o.ReconnectInitial = 500 * time.Millisecond
	}
	if o.ReconnectMax == 0 {
		o.ReconnectMax = 30 * time.Second
	}
	if o.ReconnectResetAfter == 0 {
		o.ReconnectResetAfter = 60 * time.Second
	}
	if o.MaxAuthFailures == 0 {
		o.MaxAuthFailures = 3
	}
	if o.AuthRetryInitial == 0 {
		o.AuthRetryInitial = 5 * time.Minute
	}
	if o.AuthRetryMax == 0 {
		o.AuthRetryMax = time.Hour
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = 10 * time.Second
	}
	if o.DecodeQueue == 0 {
		o.DecodeQueue = 32
	}
	if o.WarnInterval == 0 {
		o.WarnInterval = 10 * time.Second
	}
	if o.NewDecoder == nil {
		o.NewDecoder = NewAVDecoder
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}
