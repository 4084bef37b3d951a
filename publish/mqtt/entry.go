package mqtt

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// message is one MQTT publication.
type message struct {
	Topic   string
	QoS     byte
	Retain  bool
	Payload []byte
}

// An entry is the spooled unit: the messages of one alert (the hit, the
// match, the Home Assistant state), delivered in order and removed together
// once the broker acknowledged all of them.
//
//	version u8 (1), count u8, then per message:
//	flags u8 (bits 0-1 QoS, bit 2 retain), topic length u16, topic,
//	payload length u32, payload
const entryVersion = 1

var errBadEntry = errors.New("malformed spool entry")

func encodeEntry(msgs []message) ([]byte, error) {
	if len(msgs) == 0 || len(msgs) > 255 {
		return nil, fmt.Errorf("%w: %d messages", errBadEntry, len(msgs))
	}
	n := 2
	for _, m := range msgs {
		if len(m.Topic) == 0 || len(m.Topic) > 0xffff {
			return nil, fmt.Errorf("%w: topic length %d", errBadEntry, len(m.Topic))
		}
		if m.QoS > 2 {
			return nil, fmt.Errorf("%w: qos %d", errBadEntry, m.QoS)
		}
		n += 1 + 2 + len(m.Topic) + 4 + len(m.Payload)
	}
	b := make([]byte, 0, n)
	b = append(b, entryVersion, byte(len(msgs)))
	for _, m := range msgs {
		flags := m.QoS & 3
		if m.Retain {
			flags |= 4
		}
		b = append(b, flags)
		b = binary.BigEndian.AppendUint16(b, uint16(len(m.Topic)))
		b = append(b, m.Topic...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(m.Payload)))
		b = append(b, m.Payload...)
	}
	return b, nil
}

func decodeEntry(b []byte) ([]message, error) {
	if len(b) < 2 || b[0] != entryVersion || b[1] == 0 {
		return nil, errBadEntry
	}
	count := int(b[1])
	b = b[2:]
	msgs := make([]message, 0, count)
	for range count {
		if len(b) < 3 {
			return nil, errBadEntry
		}
		flags := b[0]
		if flags&^7 != 0 || flags&3 == 3 {
			return nil, errBadEntry
		}
		tl := int(binary.BigEndian.Uint16(b[1:3]))
		b = b[3:]
		if tl == 0 || len(b) < tl+4 {
			return nil, errBadEntry
		}
		topic := string(b[:tl])
		pl := binary.BigEndian.Uint32(b[tl : tl+4])
		b = b[tl+4:]
		if uint64(len(b)) < uint64(pl) {
			return nil, errBadEntry
		}
		msgs = append(msgs, message{Topic: topic, QoS: flags & 3, Retain: flags&4 != 0, Payload: b[:pl:pl]})
		b = b[pl:]
	}
	if len(b) != 0 {
		return nil, errBadEntry
	}
	return msgs, nil
}
