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
	"c=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\n" +
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
