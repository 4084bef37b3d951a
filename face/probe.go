package face

import (
	"time"

	"github.com/srdgd/srdgd/internal/faceimg"
)

// Quality describes how useful one observation of a face is for SR.
type Quality struct {
	// FacePx is the face box height in frame pixels.
	FacePx float64 `json:"face_px"`
	// Sharpness is the variance of the 4-neighbour Laplacian over the face
	// box's gray pixels divided by the gray variance there (so contrast does
	// not count, blur does), on the box binned k x k (k = floor(FacePx/32)),
	// times the binned height / 32. Measured on CelebA faces pasted at 8..64
	// px: sharp ones have a median of about 0.5..0.65 and 90 % are above
	// 0.24; after a Gaussian blur with sigma 1 px, 90 % are below 0.2.
	Sharpness float64 `json:"sharpness"`
	// Frontal is 1 for a face looking at the camera, falling to 0 when the
	// nose tip sits over an eye (from BlazeFace's eye and nose keypoints:
	// where the nose projects onto the eye line); -1 when unknown (Haar).
	Frontal float64 `json:"frontal"`
	// Score is the detector's.
	Score float64 `json:"score"`
	// Value combines them for best-shot ranking: size (up to RefFacePx),
	// sharpness (up to RefSharpness), frontalness (1 when unknown) and score,
	// multiplied.
	Value float64 `json:"value"`
}

// Framing is the square (possibly rotated) in frame coordinates that maps to
// the SR crop.
type Framing struct {
	Centre Point   `json:"centre"`
	Side   float64 `json:"side"`
	// Angle in radians of the face relative to the aligned pose (0 when the
	// framing came from the box or rotation is off); the crop is rotated by it
	// so the eyes come out level.
	Angle float64 `json:"angle"`
	// FromEyes is true when the landmarks (eyes and mouth) set the framing.
	FromEyes bool `json:"from_eyes"`
}

// Probe is one best shot of a tracked face, ready for the SR stage.
type Probe struct {
	Camera  string
	TrackID uint64
	// Seq and FrameTime identify the frame (Frame.Seq and Wall).
	Seq       uint64
	FrameTime time.Time
	// FrameW and FrameH are the frame's size in pixels.
	FrameW, FrameH int
	Detector       string
	// Box is the face box in frame pixels; FacePx its height, rounded.
	Box    Rect
	FacePx int
	Score  float64
	// Landmarks are BlazeFace's six keypoints (right eye, left eye, nose tip,
	// mouth, right ear, left ear); nil for Haar.
	Landmarks []Point
	Quality   Quality
	// Framing is the square cut from the frame (the SR framing).
	Framing Framing
	// LR is the probe, LRSize x LRSize planar RGB float32 in [0, 1].
	LR     *faceimg.Planar
	LRSize int
	// Upscaled is true when the framing square had fewer pixels than LR.
	Upscaled bool
	// Preview is the framed face at 128x128 (planar RGB) for the UI.
	Preview *faceimg.Planar
	// First is true for the track's first probe; later ones are further
	// shots of the same track, spread over time.
	First bool
	// TrackStart is the frame time the track was first seen.
	TrackStart time.Time
	// Ended marks a track-end notice, not a face: the track has ended
	// (unseen for detect.track_timeout) and FrameTime is when it was last
	// seen; only Camera, TrackID, TrackStart and FrameTime are set. It
	// travels the probe and shot queues behind the track's probes (the SR
	// stage passes it on as a Shot without SR) so that the match stage ends
	// the track's visit.
	Ended bool
}

// TrackEnd is the track-end notice for a track of camera last seen at
// lastSeen (a Probe with Ended set).
func TrackEnd(camera string, track uint64, start, lastSeen time.Time) *Probe {
	return &Probe{Camera: camera, TrackID: track, TrackStart: start, FrameTime: lastSeen, Ended: true}
}
