package live

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/srdgd/srdgd/face"
)

// eventsLabel is the label of the data channel the browser opens for hits.
const eventsLabel = "events"

// hitMessage is the JSON sent on the "events" data channel for every hit of
// the viewer's camera: the hit's one JSON shape (face.Hit) with a type and
// its images inline (base64, as in MQTT's image).
type hitMessage struct {
	Type string `json:"type"` // "hit"
	*face.Hit
	Image *face.InlineImages `json:"image,omitempty"`
}

func newHitMessage(h *face.Hit) hitMessage {
	m := hitMessage{Type: "hit", Hit: h}
	if len(h.SRJPEG) > 0 || len(h.LRPNG) > 0 {
		m.Image = &face.InlineImages{SRJPEG: h.SRJPEG, LRPNG: h.LRPNG}
	}
	return m
}

// Publish implements publish.Sink: it queues the hit for every viewer of its
// camera and never blocks; a viewer whose queue is full loses its oldest hit.
// Hits of cameras without viewers, or not in the live view, are ignored.
func (s *Server) Publish(_ context.Context, h *face.Hit) error {
	if h == nil {
		return errors.New("live: publish: nil hit")
	}
	c := s.cams[h.Camera]
	if c == nil {
		return nil
	}
	c.labels.shot(h.TrackID)
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
