package ingest

import "errors"

var (
	// ErrNoDecoder is returned by NewAVDecoder in builds without cgo.
	ErrNoDecoder = errors.New("built without cgo: no decoder (libavcodec needs cgo)")
	// ErrUnsupportedCodec means the stream has no H.264 or H.265 video track, or
	// a decoder was asked for another codec.
	ErrUnsupportedCodec = errors.New("unsupported codec: want H264 or H265")
	// ErrAuthRejected is the cause Status.LastError names after MaxAuthFailures
	// consecutive rejections of the credentials (StateAuthFailed).
	ErrAuthRejected = errors.New("credentials rejected")
	// ErrRetriesExhausted is returned by Run when MaxRetries consecutive attempts failed.
	ErrRetriesExhausted = errors.New("reconnect attempts exhausted")
	// ErrFingerprintMismatch means the rtsps server certificate does not match
	// TLSFingerprint.
	ErrFingerprintMismatch = errors.New("tls certificate fingerprint mismatch")
	// ErrAlreadyRunning is returned by a second Run on the same Camera.
	ErrAlreadyRunning = errors.New("camera already running")
)
