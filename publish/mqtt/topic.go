package mqtt

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxSegment caps one topic level made from a name, in bytes.
const maxSegment = 128

// topicSegment turns a camera or person name into one topic level: the MQTT
// wildcards + and #, the level separator /, NUL and control characters
// become "_" (MQTT 3.1.1 section 4.7.3 forbids NUL and wildcards in topic
// names); invalid UTF-8 becomes "_"; empty becomes "_"; a leading $ (topics
// reserved for brokers) becomes "_"; more than maxSegment bytes are cut at
// a rune boundary. Different names can map to the same level; the payload
// always carries the real name.
func topicSegment(name string) string {
	var b strings.Builder
	for i, r := range name {
		rep := string(r)
		switch {
		case r == utf8.RuneError && !validRuneAt(name, i),
			r == '+' || r == '#' || r == '/' || r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0),
			i == 0 && r == '$':
			rep = "_"
		}
		if b.Len()+len(rep) > maxSegment {
			break
		}
		b.WriteString(rep)
	}
	if strings.TrimSpace(b.String()) == "" {
		return "_"
	}
	return b.String()
}

// cameraSegment is topicSegment for cameras; "matches" is taken by the
// match topics, so a camera of that name publishes under "_matches".
func cameraSegment(name string) string {
	s := topicSegment(name)
	if s == "matches" {
		return "_matches"
	}
	return s
}

func validRuneAt(s string, i int) bool {
	r, size := utf8.DecodeRuneInString(s[i:])
	return !(r == utf8.RuneError && size <= 1)
}

// sanitizeID keeps [a-zA-Z0-9_-] (what Home Assistant allows in node and
// object ids) and maps everything else to "_".
func sanitizeID(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}

// checkPrefix validates a configured topic prefix.
func checkPrefix(p string) error {
	switch {
	case p == "":
		return errors.New("empty")
	case strings.ContainsAny(p, "+#"):
		return errors.New("contains a wildcard (+ or #)")
	case strings.HasPrefix(p, "$"):
		return errors.New("starts with $ (reserved for the broker)")
	case strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.Contains(p, "//"):
		return errors.New("has an empty level (leading, trailing or double /)")
	case strings.ContainsRune(p, 0) || !utf8.ValidString(p):
		return errors.New("contains NUL or invalid UTF-8")
	}
	return nil
}

// topics builds every topic the publisher uses.
type topics struct {
	prefix, ha, node string
}

func (t topics) availability() string { return t.prefix + "/availability" }
func (t topics) stats() string        { return t.prefix + "/stats" }
func (t topics) camera(cam, leaf string) string {
	return t.prefix + "/" + cameraSegment(cam) + "/" + leaf
}
func (t topics) hit(cam string) string       { return t.camera(cam, "hit") }
func (t topics) visit(cam string) string     { return t.camera(cam, "visit") }
func (t topics) status(cam string) string    { return t.camera(cam, "status") }
func (t topics) lastMatch(cam string) string { return t.camera(cam, "last_match") }
func (t topics) face(cam string) string      { return t.camera(cam, "face") }
func (t topics) match(name string) string {
	return t.prefix + "/matches/" + topicSegment(name)
}
func (t topics) person(id int64) string {
	return t.prefix + "/people/" + strconv.FormatInt(id, 10) + "/state"
}
func (t topics) discovery(component, object string) string {
	return t.ha + "/" + component + "/" + t.node + "/" + object + "/config"
}

// schemaForTopic maps one of our topics to its schema file; "" for the
// face image (raw JPEG) and for foreign topics.
func schemaForTopic(prefix, haPrefix, topic string) string {
	switch {
	case topic == prefix+"/availability":
		return "availability.schema.json"
	case topic == prefix+"/stats":
		return "stats.schema.json"
	case strings.HasPrefix(topic, prefix+"/matches/"):
		return "match.schema.json"
	case strings.HasPrefix(topic, prefix+"/people/") && strings.HasSuffix(topic, "/state"):
		return "person.schema.json"
	case strings.HasPrefix(topic, haPrefix+"/") && strings.HasSuffix(topic, "/config"):
		return "ha_discovery.schema.json"
	case strings.HasPrefix(topic, prefix+"/"):
		rest := strings.TrimPrefix(topic, prefix+"/")
		parts := strings.Split(rest, "/")
		if len(parts) != 2 {
			return ""
		}
		switch parts[1] {
		case "hit":
			return "hit.schema.json"
		case "visit":
			return "visit.schema.json"
		case "status":
			return "status.schema.json"
		case "last_match":
			return "last_match.schema.json"
		}
	}
	return ""
}
