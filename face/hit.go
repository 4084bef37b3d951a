package face

import "time"

// Box is a face box in frame pixels.
type Box struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
	W float64 `json:"w"`
	H float64 `json:"h"`
}

// Attribute is one soft-biometric attribute as seen by the SR stage.
type Attribute struct {
	// Name is the guidance attribute, e.g. "male", "glasses", "no_beard".
	Name string `json:"name"`
	// Label is the label that guided super-resolution (0 or 1); nil when the
	// attribute was not guided (abstained, or guidance off).
	Label *int `json:"label"`
	// Probability is the LR predictor's probability that the attribute is
	// present; nil when the predictor did not run.
	Probability *float64 `json:"probability"`
	// Source of Label: LabelsPredicted, LabelsOperator or LabelsNone.
	Source string `json:"source"`
}

// Candidate is one gallery identity in a hit's top-k.
type Candidate struct {
	PersonID   int64   `json:"person_id"`
	Name       string  `json:"name"`
	Similarity float64 `json:"similarity"`
	Watchlist  bool    `json:"watchlist,omitempty"`
}

// Reasons a face is unknown (Match.Reason). The match stage sets them; they
// are part of the hit's JSON.
const (
	ReasonNoGallery      = "no_gallery"      // no gallery key yet: faces are not matched
	ReasonSearchFailed   = "search_failed"   // the embedder or the gallery failed on this face
	ReasonEmpty          = "empty_gallery"   // nobody is searchable
	ReasonBelowThreshold = "below_threshold" // top-1 similarity under the identify threshold
	ReasonAmbiguous      = "ambiguous"       // top-1 leads the runner-up by less than the margin
)

// Match is the identity decision for a hit.
type Match struct {
	// Known is true when the best candidate passed the threshold and margin.
	Known      bool    `json:"known"`
	PersonID   int64   `json:"person_id,omitempty"`
	Name       string  `json:"name,omitempty"`
	Similarity float64 `json:"similarity"`
	// Margin is the lead of the best candidate over the runner-up.
	Margin    float64 `json:"margin"`
	Watchlist bool    `json:"watchlist,omitempty"`
	// Reason says why the face is unknown (one of the Reason constants).
	Reason    string      `json:"reason,omitempty"`
	Threshold float64     `json:"threshold"`
	TopK      []Candidate `json:"top_k"`
	// Explanation says why, in one sentence and structured.
	Explanation Explanation `json:"explanation"`
}

// SR describes the super-resolution run that made the face.
type SR struct {
	Sampler string `json:"sampler"`
	// Steps is the sampler's predictor step count; Evals the network
	// evaluations (score + guidance) it took.
	Steps   int     `json:"steps"`
	Evals   int     `json:"evals"`
	Scale   int     `json:"scale"`
	LRSize  int     `json:"lr_size"`
	Seed    uint64  `json:"seed"`
	Millis  float64 `json:"ms"`
	Guided  bool    `json:"guided"`
	Weight  float64 `json:"guidance_weight"`
	Upscale bool    `json:"upscaled"`
}

// Hit is one super-resolved face and its match outcome: the unit every sink
// receives. Images are encoded once and shared read-only.
//
// Its JSON is the one shape of a hit, the same in the history, the HTTP
// API, MQTT and the live view (each adds an envelope around it at most).
type Hit struct {
	// ID is unique per hit (26-character ULID-like, time ordered: NewID).
	ID     string `json:"id"`
	Camera string `json:"camera"`
	// FrameTime is the wall time of the frame the probe was cut from;
	// Time is when the hit was produced (after match).
	FrameTime time.Time `json:"frame_time"`
	Time      time.Time `json:"time"`
	TrackID   uint64    `json:"track_id"`
	Box       Box       `json:"box"`
	FrameW    int       `json:"frame_width"`
	FrameH    int       `json:"frame_height"`
	FacePx    int       `json:"face_px"`
	// DetectScore is the detector's confidence; Sharpness and Frontalness
	// the quality gate's measures.
	DetectScore float64     `json:"detect_score"`
	Sharpness   float64     `json:"sharpness"`
	Frontalness float64     `json:"frontalness"`
	Attributes  []Attribute `json:"attributes"`
	SR          SR          `json:"sr"`
	Match       Match       `json:"match"`
	// Models maps a role ("score", "guidance", "embedder", "lr_attrs",
	// "detector") to the model id from its ONNX metadata.
	Models map[string]string `json:"models"`
	// LRPNG is the LR probe as PNG (16x16 or 8x8); SRJPEG the 128x128 SR face
	// as JPEG; PreviewJPEG the detector's framing at 128x128 (bicubic) as JPEG.
	LRPNG       []byte `json:"-"`
	SRJPEG      []byte `json:"-"`
	PreviewJPEG []byte `json:"-"`
}

// InlineImages carries a hit's images inside a message (MQTT with
// include_image, the live view's data channel): base64 in JSON.
type InlineImages struct {
	// SRJPEG is the 128x128 super-resolved face, JPEG.
	SRJPEG []byte `json:"sr_jpeg,omitempty"`
	// LRPNG is the LR probe, PNG.
	LRPNG []byte `json:"lr_png,omitempty"`
}
