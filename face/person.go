package face

import "time"

// Person is one enrolled identity as operators see it: the one JSON
// document of `GET /api/v1/people` and `srdgd gallery list --json`.
type Person struct {
	ID        int64  `json:"id"`
	Name      string `json:"name"`
	Watchlist bool   `json:"watchlist"`
	// Attributes forced by the operator; nil (absent from the JSON) =
	// predicted from the probe.
	Male    *bool `json:"male,omitempty"`
	Glasses *bool `json:"glasses,omitempty"`
	NoBeard *bool `json:"no_beard,omitempty"`
	// Photos enrolled, and Searchable those with a descriptor of the
	// current embedder (nil when the embedder could not be loaded, so they
	// were not counted).
	Photos     int       `json:"photos"`
	Searchable *int      `json:"searchable,omitempty"`
	Created    time.Time `json:"created"`
	// ThresholdOffset and MarginOffset are the person's threshold
	// override: added to the bar a decision naming them is held to
	// (0: none).
	ThresholdOffset float64 `json:"threshold_offset"`
	MarginOffset    float64 `json:"margin_offset"`
}
