package face

import "time"

// Visit states (Visit.State): the three events of one visit, in order. A
// visit is published as VisitNew when its first decision is made (or when it
// ends undecided), as VisitUpdate when the decision or its confidence changes
// materially, and as VisitEnd once, when its track has ended.
const (
	VisitNew    = "new"
	VisitUpdate = "update"
	VisitEnd    = "end"
)

// Visit is one person's pass in front of one camera: a track's identity
// state, decided from all of its shots fused. It has one JSON shape,
// used by history, the HTTP API, MQTT and the live data channel.
type Visit struct {
	// ID is stable over the visit's events (26-character, time ordered,
	// NewID of the first frame).
	ID     string `json:"id"`
	Camera string `json:"camera"`
	// TrackID is the detect stage's track the visit follows.
	TrackID uint64 `json:"track_id"`
	// State is VisitNew, VisitUpdate or VisitEnd; Rev counts the events of
	// this visit (1 for new).
	State string `json:"state"`
	Rev   int    `json:"rev"`
	// Start is the frame time the track was first seen, LastSeen the latest
	// frame time with the face in view, End when the visit ended (VisitEnd).
	Start    time.Time `json:"start"`
	LastSeen time.Time `json:"last_seen"`
	End      time.Time `json:"end,omitzero"`
	// Decision is the identity decision over the fused shots.
	Decision Decision `json:"decision"`
	// BestShot is the hit ID of the shot that best supports the decision
	// (the highest quality shot when unknown).
	BestShot string `json:"best_shot,omitempty"`
	// Shots are the visit's super-resolved shots (hits) in frame order.
	Shots []ShotRef `json:"shots"`
	// Attributes fuse the shots' attribute probabilities (mean).
	Attributes []Attribute `json:"attributes"`
	// FacePx is the largest face height seen in the visit.
	FacePx int `json:"face_px"`
	// Repeat is true when the decided person was already named on this
	// camera by another visit less than match.visit.cooldown before this
	// one started (someone lingering, or leaving and coming back): the
	// visit is published like any other, but sinks do not alert on it.
	Repeat bool `json:"repeat,omitempty"`
	// BestJPEG is the best shot's 128x128 SR face as JPEG (for the retained
	// face image of MQTT and the UI); not part of the JSON.
	BestJPEG []byte `json:"-"`
}

// Decision is a visit's open-set identity decision.
type Decision struct {
	// Known is true when the fused top candidate passed Threshold with at
	// least MinMargin over the runner-up.
	Known     bool   `json:"known"`
	PersonID  int64  `json:"person_id,omitempty"`
	Name      string `json:"name,omitempty"`
	Watchlist bool   `json:"watchlist,omitempty"`
	// Confidence is the calibrated probability that the top candidate is
	// the person (from measured genuine/impostor score distributions).
	Confidence float64 `json:"confidence"`
	// Similarity is the fused similarity of the top candidate, Margin its
	// lead over the runner-up.
	Similarity float64 `json:"similarity"`
	Margin     float64 `json:"margin"`
	Threshold  float64 `json:"threshold"`
	MinMargin  float64 `json:"min_margin"`
	// Shots is how many shots (descriptors) the decision fused; Fusion names
	// the rule.
	Shots  int    `json:"shots"`
	Fusion string `json:"fusion"`
	// Reason says why the visit is unknown ("below threshold", ...).
	Reason string      `json:"reason,omitempty"`
	TopK   []Candidate `json:"top_k"`
	// Explanation says why, in one sentence and structured.
	Explanation Explanation `json:"explanation"`
}

// ShotRef is one shot of a visit: the hit it was published as.
type ShotRef struct {
	HitID     string    `json:"hit_id"`
	FrameTime time.Time `json:"frame_time"`
	FacePx    int       `json:"face_px"`
	// Quality is the probe's Quality.Value; Similarity the shot's own
	// similarity to the visit's top candidate.
	Quality    float64 `json:"quality"`
	Similarity float64 `json:"similarity"`
	// Direct is true for a face read without SR (srdg.direct_side: the
	// framing square bicubic-upscaled from the frame).
	Direct bool `json:"direct,omitempty"`
}

// TrackBoxes are the live tracks of one analysed frame at frame time: what
// the live view draws (detect.PipelineOptions.OnTracks makes them).
type TrackBoxes struct {
	Camera string `json:"camera"`
	// Seq is the frame's Frame.Seq, FrameTime its time (Frame.Wall), PTS
	// its presentation time (Frame.PTS, the same as its access unit's, so
	// the live view can find the video frame the boxes belong to).
	Seq       uint64        `json:"seq"`
	FrameTime time.Time     `json:"frame_time"`
	PTS       time.Duration `json:"pts_ns"`
	FrameW    int           `json:"frame_width"`
	FrameH    int           `json:"frame_height"`
	Tracks    []TrackBox    `json:"tracks"`
}

// TrackBox is one track's box in a frame; Coasting is true when the box is
// the tracker's prediction (the face was not detected in this frame).
type TrackBox struct {
	TrackID  uint64 `json:"track_id"`
	Box      Box    `json:"box"`
	Coasting bool   `json:"coasting,omitempty"`
}
