package live

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/srdgd/srdgd/publish"
)

// eventsLabel is the label of the data channel the browser opens for hits.
const eventsLabel = "events"

// hitMessage is the JSON sent on the "events" data channel for every hit of
// the viewer's camera. Images travel base64-encoded (encoding/json does that
// for []byte).
type hitMessage struct {
	Type        string              `json:"type"` // "hit"
	ID          string              `json:"id"`
	Camera      string              `json:"camera"`
	TrackID     uint64              `json:"track_id"`
	Box         publish.Box         `json:"box"`
	FrameWidth  int                 `json:"frame_width"`
	FrameHeight int                 `json:"frame_height"`
	FacePx      int                 `json:"face_px"`
	Time        time.Time           `json:"time"`
	FrameTime   time.Time           `json:"frame_time"`
	Match       publish.Match       `json:"match"`
	Attributes  []publish.Attribute `json:"attributes"`
	SRJPEG      []byte              `json:"sr_jpeg,omitempty"`
	LRPNG       []byte              `json:"lr_png,omitempty"`
}

func newHitMessage(h *publish.Hit) hitMessage {
	return hitMessage{
		Type:        "hit",
		ID:          h.ID,
		Camera:      h.Camera,
		TrackID:     h.TrackID,
		Box:         h.Box,
		FrameWidth:  h.FrameW,
		FrameHeight: h.FrameH,
		FacePx:      h.FacePx,
		Time:        h.Time,
		FrameTime:   h.FrameTime,
		Match:       h.Match,
		Attributes:  h.Attributes,
		SRJPEG:      h.SRJPEG,
		LRPNG:       h.LRPNG,
	}
}

// Publish implements publish.Sink: it queues the hit for every viewer of its
// camera and never blocks; a viewer whose queue is full loses its oldest hit.
// Hits of cameras without viewers, or not in the live view, are ignored.
func (s *Server) Publish(_ context.Context, h *publish.Hit) error {
	if h == nil {
		return errors.New("live: publish: nil hit")
	}
	c := s.cams[h.Camera]
	if c == nil {
		return nil
	}
	viewers := c.viewerList()
	if len(viewers) == 0 {
		return nil
	}
	msg, err := json.Marshal(newHitMessage(h))
	if err != nil {
		return fmt.Errorf("live: publish hit %s: encode: %w", h.ID, err)
	}
	for _, v := range viewers {
		v.pushEvent(msg)
	}
	return nil
}
