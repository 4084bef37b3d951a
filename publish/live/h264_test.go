package live

import (
	"errors"
	"strings"
	"testing"
)

// chromeOffer is the video section of a Chrome offer, trimmed to its H.264
// formats plus VP8 and one packetization-mode=0 entry.
const chromeOffer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96 102 103 104 106 108 112\r\n" +
	"c=IN IP4 0.0.0.0\r\na=ice-ufrag:Xo9d\r\na=ice-pwd:ZBCGuKFrjqX4PO0nJ1nOwhrC\r\n" +
	"a=fingerprint:sha-256 1F:0B:67:9A:4C:6E:0C:3C:76:58:EB:76:55:5B:B4:50:DC:63:CA:4F:F2:0D:7D:2E:5C:05:7B:1A:47:BE:7A:B2\r\n" +
	"a=setup:actpass\r\na=mid:0\r\na=recvonly\r\n" +
	"a=rtpmap:96 VP8/90000\r\n" +
	"a=rtpmap:102 H264/90000\r\na=rtcp-fb:102 nack\r\na=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n" +
	"a=rtpmap:103 H264/90000\r\na=fmtp:103 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f\r\n" +
	"a=rtpmap:104 H264/90000\r\na=fmtp:104 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n" +
	"a=rtpmap:106 H264/90000\r\na=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f\r\n" +
	"a=rtpmap:108 H264/90000\r\na=fmtp:108 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=f4001f\r\n" +
	"a=rtpmap:112 H264/90000\r\na=fmtp:112 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f\r\n"

func TestChooseH264(t *testing.T) {
	offered, err := parseOffer([]byte(chromeOffer))
	if err != nil {
		t.Fatal(err)
	}
	if len(offered) != 5 {
		t.Fatalf("parsed %d packetization-mode=1 formats, want 5: %+v", len(offered), offered)
	}
	tests := []struct {
		name   string
		sps    []byte // NAL header, profile_idc, constraint flags, level_idc
		wantPT uint8
	}{
		{"constrained baseline exact", []byte{0x67, 0x42, 0xe0, 0x1f}, 104},
		{"baseline exact", []byte{0x67, 0x42, 0x00, 0x1e}, 102},
		{"x264 constrained baseline (c0 flags) takes a baseline entry", []byte{0x67, 0x42, 0xc0, 0x0d}, 102},
		{"main", []byte{0x67, 0x4d, 0x00, 0x28}, 106},
		{"main with constraint flags", []byte{0x67, 0x4d, 0x40, 0x28}, 106},
		{"high", []byte{0x67, 0x64, 0x00, 0x33}, 112},
		{"high 10 falls back to high", []byte{0x67, 0x6e, 0x00, 0x1f}, 112},
		{"unknown profile falls back to high", []byte{0x67, 0x00, 0x00, 0x00}, 112},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := spsProfile(tc.sps)
			if !ok {
				t.Fatalf("spsProfile(%x) not ok", tc.sps)
			}
			if got := chooseH264(offered, p); got.PayloadType != tc.wantPT {
				t.Fatalf("chose %d (%s), want %d", got.PayloadType, got.Fmtp, tc.wantPT)
			}
		})
	}
}

func TestParseOfferErrors(t *testing.T) {
	tests := []struct {
		name  string
		offer string
		want  error
		text  string
	}{
		{"garbage", "hello", ErrBadOffer, ""},
		{"no video", "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n", ErrBadOffer, "no video section"},
		{"only mode 0", strings.Replace(chromeOffer, "packetization-mode=1", "packetization-mode=0", -1), ErrNoH264Offer, ""},
	}
	// Offers that parse but can never connect (issue 19): each names why.
	for _, m := range offerMutations {
		tests = append(tests, struct {
			name  string
			offer string
			want  error
			text  string
		}{m.name, m.mutate(chromeOffer), ErrBadOffer, m.reason})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseOffer([]byte(tc.offer))
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("parseOffer: %v, want %v containing %q", err, tc.want, tc.text)
			}
		})
	}
	if _, ok := spsProfile([]byte{0x68, 0x42, 0, 0}); ok {
		t.Fatal("spsProfile accepted a PPS")
	}
}

// Variants of a good offer that a WebRTC stack may send are accepted.
func TestParseOfferAccepts(t *testing.T) {
	sessionLevel := strings.Replace(chromeOffer, "c=IN IP4 0.0.0.0\r\na=ice-ufrag:Xo9d\r\na=ice-pwd:ZBCGuKFrjqX4PO0nJ1nOwhrC\r\n", "c=IN IP4 0.0.0.0\r\n", 1)
	sessionLevel = strings.Replace(sessionLevel, "t=0 0\r\n", "t=0 0\r\na=ice-ufrag:Xo9d\r\na=ice-pwd:ZBCGuKFrjqX4PO0nJ1nOwhrC\r\n", 1)
	for name, offer := range map[string]string{
		"credentials at session level": sessionLevel,
		"sendrecv":                     strings.Replace(chromeOffer, "a=recvonly", "a=sendrecv", 1),
		"no direction (sendrecv)":      strings.Replace(chromeOffer, "a=recvonly\r\n", "", 1),
		"upper-case hash name":         strings.Replace(chromeOffer, "sha-256", "SHA-256", 1),
		"ice over tcp profile":         strings.Replace(chromeOffer, "UDP/TLS/RTP/SAVPF", "TCP/DTLS/RTP/SAVPF", 1),
		"setup active":                 strings.Replace(chromeOffer, "a=setup:actpass", "a=setup:active", 1),
		"ice-lite with a candidate":    strings.Replace(chromeOffer, "t=0 0\r\n", "t=0 0\r\na=ice-lite\r\n", 1) + "a=candidate:1 1 udp 2130706431 192.0.2.7 50000 typ host\r\n",
	} {
		if _, err := parseOffer([]byte(offer)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// offerMutations turn a good offer into one that can never become a
// session; the real-peer test in whep_test.go posts each of them too.
var offerMutations = []struct {
	name, reason string
	mutate       func(string) string
}{
	{"NUL in s=", "control character 0x00", func(o string) string { return strings.Replace(o, "\r\ns=-\r\n", "\r\ns=a\x00b\r\n", 1) }},
	{"escape in a=", "control character 0x1b", func(o string) string { return strings.Replace(o, "a=mid:0", "a=mid:\x1b0", 1) }},
	{"sendonly video", "the video section is sendonly", func(o string) string { return strings.Replace(o, "a=recvonly", "a=sendonly", 1) }},
	{"inactive video", "the video section is inactive", func(o string) string { return strings.Replace(o, "a=recvonly", "a=inactive", 1) }},
	{"video port 0", "disabled (port 0)", func(o string) string { return strings.Replace(o, "m=video 9 ", "m=video 0 ", 1) }},
	{"plain RTP profile", "WebRTC needs UDP/TLS/RTP/SAVPF", func(o string) string { return strings.Replace(o, "UDP/TLS/RTP/SAVPF", "RTP/AVP", 1) }},
	{"no ice-ufrag", "no a=ice-ufrag", func(o string) string { return dropLines(o, "a=ice-ufrag:") }},
	{"short ice-pwd", "a=ice-pwd is 5 characters long", func(o string) string { return replaceLine(o, "a=ice-pwd:", "a=ice-pwd:short") }},
	{"ice-ufrag with spaces", "characters other than", func(o string) string { return replaceLine(o, "a=ice-ufrag:", "a=ice-ufrag:ab cd") }},
	{"no fingerprint", "no a=fingerprint", func(o string) string { return dropLines(o, "a=fingerprint:") }},
	{"unknown fingerprint hash", "hash function \"md5\"", func(o string) string { return strings.Replace(o, "a=fingerprint:sha-256", "a=fingerprint:md5", 1) }},
	{"fingerprint too short", "sha-256 has 32 bytes, this one 31", func(o string) string {
		return editFingerprint(o, func(v string) string { return v[:len(v)-3] })
	}},
	{"fingerprint not hex", "\"ZZ\" is not a hex byte", func(o string) string {
		return editFingerprint(o, func(v string) string { return v[:len(v)-2] + "ZZ" })
	}},
	{"fingerprint without value", "want \"<hash function> <hex bytes>\"", func(o string) string { return replaceLine(o, "a=fingerprint:", "a=fingerprint:sha-256") }},
	{"setup holdconn", "a=setup:holdconn", func(o string) string { return strings.Replace(o, "a=setup:actpass", "a=setup:holdconn", 1) }},
	{"ice-lite without candidates", "ice-lite", func(o string) string {
		return strings.Replace(dropLines(o, "a=candidate:"), "t=0 0\r\n", "t=0 0\r\na=ice-lite\r\n", 1)
	}},
}

// replaceLine replaces every line starting with prefix.
func replaceLine(sdp, prefix, with string) string {
	lines := strings.Split(sdp, "\r\n")
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) {
			lines[i] = with
		}
	}
	return strings.Join(lines, "\r\n")
}

// editFingerprint rewrites the value of every a=fingerprint line.
func editFingerprint(sdp string, edit func(string) string) string {
	lines := strings.Split(sdp, "\r\n")
	for i, l := range lines {
		if v, ok := strings.CutPrefix(l, "a=fingerprint:"); ok {
			lines[i] = "a=fingerprint:" + edit(v)
		}
	}
	return strings.Join(lines, "\r\n")
}

// dropLines drops every line starting with prefix.
func dropLines(sdp, prefix string) string {
	var out []string
	for _, l := range strings.Split(sdp, "\r\n") {
		if !strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\r\n")
}

// FuzzParseOffer: any input yields formats or an error, never a panic, and
// chooseH264 accepts whatever parseOffer returns.
func FuzzParseOffer(f *testing.F) {
	f.Add([]byte(chromeOffer))
	f.Add([]byte("v=0\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		offered, err := parseOffer(b)
		if err != nil {
			return
		}
		if len(offered) == 0 {
			t.Fatal("no formats and no error")
		}
		chooseH264(offered, [2]byte{0x64, 0})
	})
}
