// Package ingest pulls video from RTSP/RTSPS cameras and turns it into decoded
// frames: one supervised gortsplib session per camera with reconnect and
// backoff, RTP depacketising of H.264 (RFC 6184) and H.265 (RFC 7798), decoding
// with libavcodec and conversion to packed BGR24 with libswscale. Frames and raw
// access units fan out to subscribers through drop-oldest queues, so a slow
// consumer never stalls a camera.
package ingest

import (
	"log/slog"
	"time"

	"github.com/srdgd/srdgd/face"
)

// Codec names used in face.AccessUnit.Codec, Status.Codec and Decoder
// construction.
const (
	CodecH264 = face.CodecH264
	CodecH265 = face.CodecH265
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
