package publish

import (
	"context"
	"time"

	"github.com/srdgd/srdgd/face"
)

// Sink receives hits. Publish must not block for long (queue, spool or drop
// and count); it returns an error only when the hit could not be accepted at
// all, which the caller logs.
type Sink interface {
	Publish(ctx context.Context, h *face.Hit) error
}

// VisitSink receives visit events (face.Visit: new, update, end), in the
// order they were published. Like Sink, PublishVisit must not block for
// long and returns an error only when the event could not be accepted. The
// visit aggregator reaches its sinks through a VisitFanout, which queues
// per sink: a sink is never called on the aggregator's goroutine.
type VisitSink interface {
	PublishVisit(ctx context.Context, v *face.Visit) error
}

// CameraStatus is the part of a camera's health that leaves the box.
type CameraStatus struct {
	Camera string `json:"camera"`
	// State is connecting, connected, backoff, auth_failed (the camera
	// rejected the credentials; retried after a long backoff), failed (given
	// up: LastError says why) or stopped.
	State          string    `json:"state"`
	Connected      bool      `json:"connected"`
	Codec          string    `json:"codec,omitempty"`
	Width          int       `json:"width,omitempty"`
	Height         int       `json:"height,omitempty"`
	FPS            float64   `json:"fps"`
	BitrateKbps    float64   `json:"bitrate_kbps"`
	Frames         uint64    `json:"frames"`
	DecodeErrors   uint64    `json:"decode_errors"`
	Reconnects     uint64    `json:"reconnects"`
	AuthFailures   uint64    `json:"auth_failures"`
	Dropped        uint64    `json:"dropped"`
	LastError      string    `json:"last_error,omitempty"`
	LastErrorAt    time.Time `json:"last_error_at,omitzero"`
	ConnectedSince time.Time `json:"connected_since,omitzero"`
}

// CameraStates are the values of CameraStatus.State (ingest's States).
var CameraStates = []string{"connecting", "connected", "backoff", "auth_failed", "failed", "stopped"}

// StatusFunc returns a snapshot of every configured camera.
type StatusFunc func() []CameraStatus
