package face

import (
	"sync/atomic"
	"time"
)

// Codec names used in AccessUnit.Codec and camera status.
const (
	CodecH264 = "H264"
	CodecH265 = "H265"
)

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

	refs    atomic.Int32 // holders still holding the frame
	recycle func(pix []byte)
}

// Share is called by the frame's producer before it hands the frame out:
// refs holders (the producer included) will each call Release once, and
// after the last one recycle gets Pix back for a later frame. Without Share,
// Release does nothing and the frame is garbage-collected as usual.
func (f *Frame) Share(refs int, recycle func(pix []byte)) {
	f.recycle = recycle
	f.refs.Store(int32(refs))
}

// Release tells the producer that one holder is done with the frame. Once
// every holder has released it, its pixel buffer is reused for a later
// frame, which saves an allocation and page faults per frame (about half the
// decode cost at 720p). Calling Release is optional: frames that are never
// released are garbage-collected as usual. Each holder may call it at most
// once per frame and must not touch the frame afterwards.
func (f *Frame) Release() {
	if f == nil || f.recycle == nil {
		return
	}
	if f.refs.Add(-1) == 0 {
		f.recycle(f.Pix)
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
