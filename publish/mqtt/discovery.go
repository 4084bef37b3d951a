package mqtt

import (
	"encoding/json"
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
	node := p.topics.node
	dev := haDevice{
		Identifiers:  []string{"srdgd_" + node},
		Name:         "srdgd " + p.opts.ClientID,
		Manufacturer: "srdgd",
		Model:        "srdgd edge face super-resolution",
		SWVersion:    p.opts.Version,
	}
	base := func(name, object string) haConfig {
		return haConfig{
			Name:                name,
			UniqueID:            node + "_" + object,
			ObjectID:            node + "_" + object,
			AvailabilityTopic:   p.topics.availability(),
			PayloadAvailable:    PayloadOnline,
			PayloadNotAvailable: PayloadOffline,
			Device:              dev,
			Origin:              haOrigin{Name: "srdgd", SW: p.opts.Version},
		}
	}
	var out []message
	add := func(component, object string, c haConfig) {
		b, err := json.Marshal(c)
		if err != nil {
			p.log.Warn("discovery encode failed", "object", object, "error", err)
			return
		}
		out = append(out, message{Topic: p.topics.discovery(component, object), QoS: 1, Retain: true, Payload: b})
	}
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
