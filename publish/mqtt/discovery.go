package mqtt

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/srdgd/srdgd/face"
)

// Home Assistant MQTT discovery: configs are retained under
// <ha_prefix>/<component>/<node>/<object>/config (node = the client id
// reduced to [a-zA-Z0-9_-]); every entity belongs to one device and uses
// <prefix>/availability.

type haDevice struct {
	Identifiers  []string `json:"identifiers"`
	Name         string   `json:"name"`
	Manufacturer string   `json:"manufacturer"`
	Model        string   `json:"model"`
	SWVersion    string   `json:"sw_version,omitempty"`
}

type haOrigin struct {
	Name string `json:"name"`
	SW   string `json:"sw_version,omitempty"`
}

// haConfig is one discovery config (schema/ha_discovery.schema.json).
type haConfig struct {
	Name                string   `json:"name"`
	UniqueID            string   `json:"unique_id"`
	ObjectID            string   `json:"object_id"`
	StateTopic          string   `json:"state_topic,omitempty"`
	Topic               string   `json:"topic,omitempty"` // camera entities
	ValueTemplate       string   `json:"value_template,omitempty"`
	JSONAttributesTopic string   `json:"json_attributes_topic,omitempty"`
	JSONAttrTemplate    string   `json:"json_attributes_template,omitempty"`
	DeviceClass         string   `json:"device_class,omitempty"`
	EntityCategory      string   `json:"entity_category,omitempty"`
	StateClass          string   `json:"state_class,omitempty"`
	UnitOfMeasurement   string   `json:"unit_of_measurement,omitempty"`
	PayloadOn           string   `json:"payload_on,omitempty"`
	PayloadOff          string   `json:"payload_off,omitempty"`
	OffDelay            int      `json:"off_delay,omitempty"`
	Icon                string   `json:"icon,omitempty"`
	AvailabilityTopic   string   `json:"availability_topic"`
	PayloadAvailable    string   `json:"payload_available"`
	PayloadNotAvailable string   `json:"payload_not_available"`
	Device              haDevice `json:"device"`
	Origin              haOrigin `json:"origin"`
}

// discoveryMessages returns the retained discovery configs: per camera a
// "last match" sensor, a connectivity binary sensor and (with images) a
// camera entity showing the last SR face; for the box a spool depth
// sensor.
func (p *Publisher) discoveryMessages() []message {
	base := p.haBase
	var out []message
	add := func(component, object string, c haConfig) { out = p.haAdd(out, component, object, c) }
	for _, cam := range p.opts.Cameras {
		obj := sanitizeID(cam)
		lm := base(cam+" last match", obj+"_last_match")
		lm.StateTopic = p.topics.lastMatch(cam)
		lm.ValueTemplate = "{{ value_json.name }}"
		lm.JSONAttributesTopic = p.topics.lastMatch(cam)
		lm.Icon = "mdi:face-recognition"
		add("sensor", obj+"_last_match", lm)

		cn := base(cam+" connected", obj+"_connectivity")
		cn.StateTopic = p.topics.status(cam)
		cn.ValueTemplate = "{{ 'ON' if value_json.connected else 'OFF' }}"
		cn.PayloadOn, cn.PayloadOff = "ON", "OFF"
		cn.JSONAttributesTopic = p.topics.status(cam)
		cn.DeviceClass = "connectivity"
		cn.EntityCategory = "diagnostic"
		add("binary_sensor", obj+"_connectivity", cn)

		if p.opts.IncludeImage {
			fc := base(cam+" last face", obj+"_face")
			fc.Topic = p.topics.face(cam)
			add("camera", obj+"_face", fc)
		}
	}
	sd := base("spool depth", "spool_depth")
	sd.StateTopic = p.topics.stats()
	sd.ValueTemplate = "{{ value_json.mqtt.spool_messages }}"
	sd.StateClass = "measurement"
	sd.EntityCategory = "diagnostic"
	sd.UnitOfMeasurement = "alerts"
	sd.Icon = "mdi:tray-full"
	add("sensor", "spool_depth", sd)
	return out
}

// haBase is a discovery config of the box's device with its availability.
func (p *Publisher) haBase(name, object string) haConfig {
	node := p.topics.node
	return haConfig{
		Name:                name,
		UniqueID:            node + "_" + object,
		ObjectID:            node + "_" + object,
		AvailabilityTopic:   p.topics.availability(),
		PayloadAvailable:    PayloadOnline,
		PayloadNotAvailable: PayloadOffline,
		Device: haDevice{
			Identifiers:  []string{"srdgd_" + node},
			Name:         "srdgd " + p.opts.ClientID,
			Manufacturer: "srdgd",
			Model:        "srdgd edge face super-resolution",
			SWVersion:    p.opts.Version,
		},
		Origin: haOrigin{Name: "srdgd", SW: p.opts.Version},
	}
}

// haAdd appends one retained discovery config.
func (p *Publisher) haAdd(out []message, component, object string, c haConfig) []message {
	b, err := json.Marshal(c)
	if err != nil {
		p.log.Warn("discovery encode failed", "object", object, "error", err)
		return out
	}
	return append(out, message{Topic: p.topics.discovery(component, object), QoS: 1, Retain: true, Payload: b})
}

// personPayload is <prefix>/people/<person_id>/state, retained
// (schema/person.schema.json): where and when a person was last seen.
type personPayload struct {
	Schema     int     `json:"schema"`
	PersonID   int64   `json:"person_id"`
	Name       string  `json:"name"`
	Camera     string  `json:"camera"`
	LastSeen   jsTime  `json:"last_seen"`
	Visit      string  `json:"visit"`
	Confidence float64 `json:"confidence"`
	Watchlist  bool    `json:"watchlist"`
}

// maxPeopleAnnounced bounds the people whose configs were published since
// start (past it the set starts again: configs are retained and
// idempotent, so announcing again costs a few messages).
const maxPeopleAnnounced = 4096

// personMessages are a named visit event's per-person messages: the
// person's discovery configs on their first sighting since start, then
// their state. Empty unless HADiscovery and HAPeople.
func (p *Publisher) personMessages(v *face.Visit) ([]message, error) {
	d := v.Decision
	if !p.opts.HADiscovery || !p.opts.HAPeople || !d.Known || d.PersonID == 0 || d.Name == "" {
		return nil, nil
	}
	var out []message
	stateTopic := p.topics.person(d.PersonID)
	p.alertMu.Lock()
	if p.announced == nil || len(p.announced) >= maxPeopleAnnounced {
		p.announced = map[int64]string{}
	}
	first := p.announced[d.PersonID] != d.Name
	p.announced[d.PersonID] = d.Name
	p.alertMu.Unlock()
	if first {
		obj := "person_" + strconv.FormatInt(d.PersonID, 10)
		lc := p.haBase(d.Name+" last camera", obj+"_camera")
		lc.StateTopic, lc.JSONAttributesTopic = stateTopic, stateTopic
		lc.ValueTemplate = "{{ value_json.camera }}"
		lc.Icon = "mdi:cctv"
		out = p.haAdd(out, "sensor", obj+"_camera", lc)

		ls := p.haBase(d.Name+" last seen", obj+"_last_seen")
		ls.StateTopic = stateTopic
		ls.ValueTemplate = "{{ value_json.last_seen }}"
		ls.DeviceClass = "timestamp"
		out = p.haAdd(out, "sensor", obj+"_last_seen", ls)

		win := int(p.opts.HASeenWindow / time.Second)
		seen := p.haBase(fmt.Sprintf("%s seen in the last %s", d.Name, shortDuration(p.opts.HASeenWindow)), obj+"_seen")
		seen.StateTopic, seen.JSONAttributesTopic = stateTopic, stateTopic
		// on a retained state (a Home Assistant restart) the template
		// compares the sighting's time with now; off_delay turns it off
		// when no newer sighting comes
		seen.ValueTemplate = fmt.Sprintf("{{ 'ON' if (now() - as_datetime(value_json.last_seen)).total_seconds() < %d else 'OFF' }}", win)
		seen.PayloadOn, seen.PayloadOff = "ON", "OFF"
		seen.OffDelay = win
		seen.DeviceClass = "presence"
		out = p.haAdd(out, "binary_sensor", obj+"_seen", seen)
	}
	seenAt := v.LastSeen
	if seenAt.IsZero() {
		seenAt = v.Start
	}
	b, err := json.Marshal(personPayload{Schema: SchemaVersion, PersonID: d.PersonID, Name: d.Name, Camera: v.Camera,
		LastSeen: jsTime(seenAt), Visit: v.ID, Confidence: d.Confidence, Watchlist: d.Watchlist})
	if err != nil {
		return nil, err
	}
	return append(out, message{Topic: stateTopic, QoS: p.opts.qos, Retain: true, Payload: b}), nil
}

// shortDuration writes a window as "10 min", "2 h".
func shortDuration(d time.Duration) string {
	if d%time.Hour == 0 {
		return fmt.Sprintf("%d h", d/time.Hour)
	}
	if d%time.Minute == 0 {
		return fmt.Sprintf("%d min", d/time.Minute)
	}
	return d.String()
}
