package mqtt

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/publish"
)

// SchemaVersion is the "schema" field of every JSON payload. It changes
// only when a field changes meaning or goes away; new fields keep it.
// Version 2: the hit payload is the hit's one JSON shape (face.Hit), so
// frame.width/height became frame_width/frame_height and detect.score,
// detect.sharpness, detect.frontalness became detect_score, sharpness and
// frontalness. Version 3: alerts follow visits: matches/<name> and
// last_match carry the visit's id and fused decision (confidence, state;
// visit_topic replaces hit_topic), and the per-shot hit topic is off unless
// configured. Version 4: sr.guidance_weight is the weight applied (it was
// the configured value, 0 for "the sampler's default"), and hits and visits
// explain their decisions (match.explanation, decision.explanation).
const SchemaVersion = 4

// Availability payloads (plain strings, as Frigate and Home Assistant use).
const (
	PayloadOnline  = "online"
	PayloadOffline = "offline"
)

// jsTime is a time as RFC 3339 in UTC with milliseconds; the zero time is
// null.
type jsTime time.Time

const timeLayout = "2006-01-02T15:04:05.000Z07:00"

func (t jsTime) MarshalJSON() ([]byte, error) {
	tt := time.Time(t)
	if tt.IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + tt.UTC().Format(timeLayout) + `"`), nil
}

func (t *jsTime) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = jsTime{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	tt, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return err
	}
	*t = jsTime(tt)
	return nil
}

// hitPayload is <prefix>/<camera>/hit (schema/hit.schema.json): the hit's
// one JSON shape (face.Hit) in an envelope. The envelope's times shadow the
// hit's: MQTT writes them in UTC with milliseconds, and a zero frame time as
// null.
type hitPayload struct {
	Schema int `json:"schema"`
	face.Hit
	FrameTime   jsTime `json:"frame_time"`
	Time        jsTime `json:"time"`
	PublishTime jsTime `json:"publish_time"`
	// Image is present with include_image.
	Image *face.InlineImages `json:"image,omitempty"`
	// Redacted marks the clear copy of an alert (redactEntry): no image,
	// no match name, person id or candidates.
	Redacted bool `json:"redacted,omitempty"`
}

// matchPayload is <prefix>/matches/<name> (schema/match.schema.json), in
// the spirit of Double Take's double-take/matches/<name>: the alert of a
// visit that names someone.
type matchPayload struct {
	Schema     int     `json:"schema"`
	ID         string  `json:"id"`
	Camera     string  `json:"camera"`
	Name       string  `json:"name"`
	PersonID   int64   `json:"person_id"`
	Similarity float64 `json:"similarity"`
	Margin     float64 `json:"margin"`
	Threshold  float64 `json:"threshold"`
	Confidence float64 `json:"confidence"`
	Watchlist  bool    `json:"watchlist"`
	TrackID    uint64  `json:"track_id"`
	FrameTime  jsTime  `json:"frame_time"`
	Time       jsTime  `json:"time"`
	State      string  `json:"state"`
	Shots      int     `json:"shots"`
	BestShot   string  `json:"best_shot,omitempty"`
	VisitTopic string  `json:"visit_topic"`
}

// lastMatchPayload is <prefix>/<camera>/last_match, retained
// (schema/last_match.schema.json): the latest visit event of the camera,
// the Home Assistant sensor's state.
type lastMatchPayload struct {
	Schema     int     `json:"schema"`
	ID         string  `json:"id"`
	Camera     string  `json:"camera"`
	Name       string  `json:"name"` // "unknown" when not known
	Known      bool    `json:"known"`
	PersonID   int64   `json:"person_id,omitempty"`
	Similarity float64 `json:"similarity"`
	Confidence float64 `json:"confidence"`
	Watchlist  bool    `json:"watchlist"`
	State      string  `json:"state"`
	Time       jsTime  `json:"time"`
}

// statusPayload is <prefix>/<camera>/status, retained
// (schema/status.schema.json).
type statusPayload struct {
	Schema int    `json:"schema"`
	Time   jsTime `json:"time"`
	publish.CameraStatus
}

// mqttStats are the publisher's own counters in <prefix>/stats.
type mqttStats struct {
	Connected     bool   `json:"connected"`
	Broker        string `json:"broker"`
	SpoolMessages int    `json:"spool_messages"`
	SpoolBytes    int64  `json:"spool_bytes"`
	SpoolDropped  uint64 `json:"spool_dropped"`
	SpoolExpired  uint64 `json:"spool_expired"`
	SpoolCorrupt  uint64 `json:"spool_corrupt"`
	Published     uint64 `json:"published"`
	Reconnects    uint64 `json:"reconnects"`
	LastError     string `json:"last_error,omitempty"`
}

// statsPayload is <prefix>/stats (schema/stats.schema.json).
type statsPayload struct {
	Schema   int       `json:"schema"`
	Time     jsTime    `json:"time"`
	Version  string    `json:"version"`
	UptimeS  float64   `json:"uptime_s"`
	Cameras  []string  `json:"cameras"`
	Pipeline *Stats    `json:"pipeline"`
	MQTT     mqttStats `json:"mqtt"`
}

// alertMessages builds the message of one hit: the hit on
// <prefix>/<camera>/hit. Matches, the last match and the face image follow
// visits (visitMessages).
func (p *Publisher) alertMessages(h *face.Hit, now time.Time) ([]message, error) {
	qos := p.opts.qos
	hp := hitPayload{
		Schema:      SchemaVersion,
		Hit:         *h,
		FrameTime:   jsTime(h.FrameTime),
		Time:        jsTime(h.Time),
		PublishTime: jsTime(now),
	}
	if hp.Time == (jsTime{}) {
		hp.Time = jsTime(now)
	}
	if hp.Attributes == nil {
		hp.Attributes = []face.Attribute{}
	}
	if hp.Match.TopK == nil {
		hp.Match.TopK = []face.Candidate{}
	}
	if hp.Models == nil {
		hp.Models = map[string]string{}
	}
	if p.opts.IncludeImage && (len(h.SRJPEG) > 0 || len(h.LRPNG) > 0) {
		hp.Image = &face.InlineImages{SRJPEG: h.SRJPEG, LRPNG: h.LRPNG}
	}
	hb, err := json.Marshal(hp)
	if err != nil {
		return nil, err
	}
	return []message{{Topic: p.topics.hit(h.Camera), QoS: qos, Payload: hb}}, nil
}

// redactEntry returns the clear copy of a spooled alert for a spool whose
// key dies with the process: the hit or visit message alone (the first of
// an entry) without its image, the match's name and person id and the
// top-k candidates, marked "redacted". The match message (its topic names
// the person), the retained last match and face are left out: they are
// state that a later alert refreshes. nil when the entry is not an alert.
func redactEntry(entry []byte) []byte {
	msgs, err := decodeEntry(entry)
	if err != nil {
		return nil
	}
	if strings.HasSuffix(msgs[0].Topic, "/visit") {
		return redactVisit(msgs)
	}
	var hp hitPayload
	if err := json.Unmarshal(msgs[0].Payload, &hp); err != nil || hp.Schema != SchemaVersion || hp.ID == "" {
		return nil
	}
	hp.Image = nil
	hp.Redacted = true
	hp.Match.Name, hp.Match.PersonID = "", 0
	hp.Match.TopK = []face.Candidate{}
	redactExplanation(&hp.Match.Explanation)
	b, err := json.Marshal(hp)
	if err != nil {
		return nil
	}
	out, err := encodeEntry([]message{{Topic: msgs[0].Topic, QoS: msgs[0].QoS, Payload: b}})
	if err != nil {
		return nil
	}
	return out
}

// redactExplanation removes the names and person ids from an explanation
// and writes its sentence again without them: the numbers stay in it.
func redactExplanation(e *face.Explanation) {
	for _, c := range []*face.Candidate{e.Closest, e.RunnerUp} {
		if c != nil {
			c.Name, c.PersonID = "", 0
		}
	}
	if e.Override == face.OverridePerson {
		e.OverrideName = ""
	}
	if e.Text != "" {
		e.Text = e.Render()
	}
	// the candidates' ids would still tell them apart: the sentence keeps
	// their similarities
	e.Closest, e.RunnerUp = nil, nil
}
