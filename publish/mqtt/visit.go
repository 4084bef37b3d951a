package mqtt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/srdgd/srdgd/face"
)

// visitPayload is <prefix>/<camera>/visit (schema/visit.schema.json): the
// visit's one JSON shape (face.Visit) in an envelope. As in the hit
// payload, the envelope's times shadow the visit's (UTC, milliseconds).
type visitPayload struct {
	Schema int `json:"schema"`
	face.Visit
	Start       jsTime       `json:"start"`
	LastSeen    jsTime       `json:"last_seen"`
	End         jsTime       `json:"end,omitzero"`
	Shots       []shotRefOut `json:"shots"`
	PublishTime jsTime       `json:"publish_time"`
	// Image is the best shot's SR face (base64 JPEG) with include_image.
	Image *face.InlineImages `json:"image,omitempty"`
	// Redacted marks the clear copy of a spooled visit (redactEntry).
	Redacted bool `json:"redacted,omitempty"`
}

// shotRefOut is a face.ShotRef with its frame time as MQTT writes times.
type shotRefOut struct {
	face.ShotRef
	FrameTime jsTime `json:"frame_time"`
}

// PublishVisit spools a visit event's messages (fsynced) and wakes the
// sender, like Publish for a hit: the visit on <prefix>/<camera>/visit;
// for an alert (the first event of a visit that names a person, or an
// update that names another one, unless the visit is a Repeat within the
// cooldown) the match on <prefix>/matches/<name>; the retained last match
// and (with include_image) the best shot's face image.
func (p *Publisher) PublishVisit(_ context.Context, v *face.Visit) error {
	if v == nil {
		return errors.New("mqtt: publish: nil visit")
	}
	msgs, err := p.visitMessages(v, time.Now())
	if err != nil {
		return fmt.Errorf("mqtt: visit %s: encode: %w", v.ID, err)
	}
	entry, err := encodeEntry(msgs)
	if err != nil {
		return fmt.Errorf("mqtt: visit %s: %w", v.ID, err)
	}
	if _, err := p.spool.Append(entry); err != nil {
		return fmt.Errorf("mqtt: visit %s: %w", v.ID, err)
	}
	select {
	case p.notify <- struct{}{}:
	default:
	}
	p.changed()
	return nil
}

// alerted remembers, per open visit, the person it last alerted on, so
// that an update alerts only when it names someone else. Bounded: entries
// go at the visit's end, and the oldest beyond maxAlerted.
const maxAlerted = 4096

func (p *Publisher) isAlert(v *face.Visit) bool {
	p.alertMu.Lock()
	defer p.alertMu.Unlock()
	if p.alerted == nil {
		p.alerted = map[string]int64{}
	}
	last, seen := p.alerted[v.ID]
	if v.State == face.VisitEnd {
		delete(p.alerted, v.ID)
		p.alertOrder = removeID(p.alertOrder, v.ID)
		return false
	}
	if !v.Decision.Known || v.Repeat || (seen && last == v.Decision.PersonID) {
		return false
	}
	if !seen {
		p.alertOrder = append(p.alertOrder, v.ID)
		if len(p.alertOrder) > maxAlerted {
			delete(p.alerted, p.alertOrder[0])
			p.alertOrder = p.alertOrder[1:]
		}
	}
	p.alerted[v.ID] = v.Decision.PersonID
	return true
}

func removeID(ids []string, id string) []string {
	for i, s := range ids {
		if s == id {
			return append(ids[:i], ids[i+1:]...)
		}
	}
	return ids
}

// visitMessages builds the messages of one visit event, in delivery order.
func (p *Publisher) visitMessages(v *face.Visit, now time.Time) ([]message, error) {
	qos := p.opts.qos
	vp := visitPayload{Schema: SchemaVersion, Visit: *v, Start: jsTime(v.Start), LastSeen: jsTime(v.LastSeen),
		End: jsTime(v.End), PublishTime: jsTime(now), Shots: make([]shotRefOut, len(v.Shots))}
	for i, s := range v.Shots {
		vp.Shots[i] = shotRefOut{ShotRef: s, FrameTime: jsTime(s.FrameTime)}
	}
	if vp.Attributes == nil {
		vp.Attributes = []face.Attribute{}
	}
	if vp.Decision.TopK == nil {
		vp.Decision.TopK = []face.Candidate{}
	}
	if p.opts.IncludeImage && len(v.BestJPEG) > 0 {
		vp.Image = &face.InlineImages{SRJPEG: v.BestJPEG}
	}
	vb, err := json.Marshal(vp)
	if err != nil {
		return nil, err
	}
	visitTopic := p.topics.visit(v.Camera)
	msgs := []message{{Topic: visitTopic, QoS: qos, Payload: vb}}
	d := v.Decision
	if p.isAlert(v) {
		mb, err := json.Marshal(matchPayload{
			Schema: SchemaVersion, ID: v.ID, Camera: v.Camera, Name: d.Name, PersonID: d.PersonID,
			Similarity: d.Similarity, Margin: d.Margin, Threshold: d.Threshold, Confidence: d.Confidence,
			Watchlist: d.Watchlist, TrackID: v.TrackID, FrameTime: vp.LastSeen, Time: jsTime(now),
			State: v.State, Shots: d.Shots, BestShot: v.BestShot, VisitTopic: visitTopic,
		})
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, message{Topic: p.topics.match(d.Name), QoS: qos, Payload: mb})
	}
	lm := lastMatchPayload{Schema: SchemaVersion, ID: v.ID, Camera: v.Camera, Name: "unknown", Known: d.Known,
		Similarity: d.Similarity, Confidence: d.Confidence, Watchlist: d.Watchlist, State: v.State, Time: jsTime(now)}
	if d.Known {
		lm.Name, lm.PersonID = d.Name, d.PersonID
	}
	lb, err := json.Marshal(lm)
	if err != nil {
		return nil, err
	}
	msgs = append(msgs, message{Topic: p.topics.lastMatch(v.Camera), QoS: qos, Retain: true, Payload: lb})
	pm, err := p.personMessages(v)
	if err != nil {
		return nil, err
	}
	msgs = append(msgs, pm...)
	if p.opts.IncludeImage && len(v.BestJPEG) > 0 {
		msgs = append(msgs, message{Topic: p.topics.face(v.Camera), QoS: qos, Retain: true, Payload: v.BestJPEG})
	}
	return msgs, nil
}

// redactVisit is redactEntry for a visit entry: the visit message alone,
// without its image, the decision's name and person id, the candidates
// and the attributes, marked "redacted".
func redactVisit(msgs []message) []byte {
	if !strings.HasSuffix(msgs[0].Topic, "/visit") {
		return nil
	}
	var vp visitPayload
	if err := json.Unmarshal(msgs[0].Payload, &vp); err != nil || vp.Schema != SchemaVersion || vp.ID == "" {
		return nil
	}
	vp.Image = nil
	vp.Redacted = true
	vp.Decision.Name, vp.Decision.PersonID = "", 0
	vp.Decision.TopK = []face.Candidate{}
	redactExplanation(&vp.Decision.Explanation)
	vp.Attributes = []face.Attribute{}
	b, err := json.Marshal(vp)
	if err != nil {
		return nil
	}
	out, err := encodeEntry([]message{{Topic: msgs[0].Topic, QoS: msgs[0].QoS, Payload: b}})
	if err != nil {
		return nil
	}
	return out
}
