package live

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/pion/sdp/v3"
)

// checkText refuses control characters other than CR, LF and tab: SDP is
// text (RFC 8866 section 5), and pion would carry, say, a NUL in s= into a
// session that then never connects.
func checkText(body []byte) error {
	for i, b := range body {
		if (b < 0x20 && b != '\r' && b != '\n' && b != '\t') || b == 0x7f {
			return fmt.Errorf("%w: byte %d is the control character 0x%02x (SDP is text)", ErrBadOffer, i, b)
		}
	}
	return nil
}

// fingerprintSizes are the hash functions of RFC 8122 section 5 that DTLS
// stacks implement, with their digest sizes in bytes.
var fingerprintSizes = map[string]int{"sha-1": 20, "sha-224": 28, "sha-256": 32, "sha-384": 48, "sha-512": 64}

// checkConnectable refuses an offer whose video section can never become a
// working session with this server, so that it gets a 400 with the reason
// instead of a viewer slot it would hold until ConnectTimeout: the viewer
// must receive video over DTLS-SRTP, with usable ICE credentials and a usable
// certificate fingerprint.
func checkConnectable(sd *sdp.SessionDescription, video *sdp.MediaDescription) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadOffer}, args...)...)
	}
	if video.MediaName.Port.Value == 0 {
		return bad("the video section is disabled (port 0)")
	}
	if proto := strings.Join(video.MediaName.Protos, "/"); !strings.HasSuffix(proto, "RTP/SAVPF") {
		return bad("video profile %q: WebRTC needs UDP/TLS/RTP/SAVPF (DTLS-SRTP)", proto)
	}
	if dir := direction(sd, video); dir == "sendonly" || dir == "inactive" {
		return bad("the video section is %s: a viewer must receive video (recvonly)", dir)
	}
	attr := func(key string) (string, bool) {
		if v, ok := video.Attribute(key); ok {
			return v, true
		}
		return sd.Attribute(key)
	}
	// RFC 8839 section 5.4: ufrag 4 to 256 characters, password 22 to 256.
	for _, c := range []struct {
		key      string
		min, max int
	}{{"ice-ufrag", 4, 256}, {"ice-pwd", 22, 256}} {
		v, ok := attr(c.key)
		switch {
		case !ok || v == "":
			return bad("no a=%s", c.key)
		case len(v) < c.min || len(v) > c.max:
			return bad("a=%s is %d characters long (allowed: %d to %d)", c.key, len(v), c.min, c.max)
		case strings.IndexFunc(v, func(r rune) bool { return !isICEChar(r) }) >= 0:
			return bad("a=%s has characters other than letters, digits, + and /", c.key)
		}
	}
	fps := attributes(video, "fingerprint")
	if len(fps) == 0 {
		fps = sessionAttributes(sd, "fingerprint")
	}
	if len(fps) == 0 {
		return bad("no a=fingerprint (DTLS needs the viewer's certificate fingerprint)")
	}
	for _, fp := range fps {
		if err := checkFingerprint(fp); err != nil {
			return bad("a=fingerprint:%.120s: %v", fp, err)
		}
	}
	if setup, ok := attr("setup"); ok && setup != "actpass" && setup != "active" && setup != "passive" {
		return bad("a=setup:%.40s: an offer needs actpass, active or passive", setup)
	}
	if _, lite := sd.Attribute("ice-lite"); lite {
		n := 0
		for _, m := range sd.MediaDescriptions {
			n += len(attributes(m, "candidate"))
		}
		if n == 0 {
			return bad("an ice-lite viewer without candidates never starts connectivity checks, and this server has none to answer")
		}
	}
	return nil
}

// direction is the media section's direction attribute, else the
// session's, else sendrecv (RFC 8866 section 6.7).
func direction(sd *sdp.SessionDescription, m *sdp.MediaDescription) string {
	dirs := []string{"sendrecv", "sendonly", "recvonly", "inactive"}
	for _, attrs := range [][]sdp.Attribute{m.Attributes, sd.Attributes} {
		for _, a := range attrs {
			for _, d := range dirs {
				if a.Key == d {
					return d
				}
			}
		}
	}
	return "sendrecv"
}

func attributes(m *sdp.MediaDescription, key string) []string {
	var out []string
	for _, a := range m.Attributes {
		if a.Key == key {
			out = append(out, a.Value)
		}
	}
	return out
}

func sessionAttributes(sd *sdp.SessionDescription, key string) []string {
	var out []string
	for _, a := range sd.Attributes {
		if a.Key == key {
			out = append(out, a.Value)
		}
	}
	return out
}

// checkFingerprint checks "hash-func fingerprint" (RFC 8122 section 5): a
// known hash and as many colon-separated hex bytes as it produces.
func checkFingerprint(v string) error {
	alg, value, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok {
		return fmt.Errorf("want \"<hash function> <hex bytes>\"")
	}
	size, known := fingerprintSizes[strings.ToLower(alg)]
	if !known {
		return fmt.Errorf("hash function %q is not one of sha-1, sha-224, sha-256, sha-384, sha-512", alg)
	}
	parts := strings.Split(strings.TrimSpace(value), ":")
	if len(parts) != size {
		return fmt.Errorf("%s has %d bytes, this one %d", alg, size, len(parts))
	}
	for _, p := range parts {
		if b, err := hex.DecodeString(p); err != nil || len(b) != 1 {
			return fmt.Errorf("%q is not a hex byte", p)
		}
	}
	return nil
}

// isICEChar: ice-char = ALPHA / DIGIT / "+" / "/" (RFC 8839 section 5.4).
func isICEChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '+' || r == '/'
}
