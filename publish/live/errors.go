package live

import "errors"

// Sentinel errors. HTTP answers map them to status codes (see whep.go); Go
// callers match them with errors.Is.
var (
	// ErrUnknownCamera: the camera is not configured for the live view.
	ErrUnknownCamera = errors.New("unknown camera")
	// ErrBadOffer: the body is not a usable SDP offer.
	ErrBadOffer = errors.New("bad sdp offer")
	// ErrNoH264Offer: the offer has no H.264 video with packetization-mode=1,
	// which is the only format the live view sends.
	ErrNoH264Offer = errors.New("offer has no H.264 video with packetization-mode=1")
	// ErrCodecNotSupported: the camera sends a codec browsers cannot take over
	// WebRTC (H.265); the live view passes video through and never transcodes.
	ErrCodecNotSupported = errors.New("camera codec not supported by the live view")
	// ErrTooManyViewers: the camera already has MaxViewers viewers.
	ErrTooManyViewers = errors.New("too many viewers")
	// ErrNoVideo: the camera delivered no key frame within FirstVideoTimeout.
	ErrNoVideo = errors.New("camera has not sent video yet")
	// ErrNotRunning: Run has not started or has returned.
	ErrNotRunning = errors.New("live view not running")
	// ErrUnknownSession: no session with that id on that camera.
	ErrUnknownSession = errors.New("unknown session")
)
