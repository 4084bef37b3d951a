package ingest

import (
	"bytes"
	"testing"

	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
)

// packetize turns access units into RTP packets with gortsplib's encoders
// (payloads of at most maxPayload bytes, so larger NAL units fragment) and
// 90 kHz timestamps 3600 apart.
func packetize(t testing.TB, codec string, aus [][][]byte, maxPayload int) []*rtp.Packet {
	t.Helper()
	var encode func([][]byte) ([]*rtp.Packet, error)
	switch codec {
	case CodecH264:
		e, err := (&format.H264{PayloadTyp: 96, PacketizationMode: 1}).CreateEncoder()
		if err != nil {
			t.Fatal(err)
		}
		e.PayloadMaxSize = maxPayload
		encode = e.Encode
	case CodecH265:
		e, err := (&format.H265{PayloadTyp: 96}).CreateEncoder()
		if err != nil {
			t.Fatal(err)
		}
		e.PayloadMaxSize = maxPayload
		encode = e.Encode
	}
	var out []*rtp.Packet
	for i, au := range aus {
		pkts, err := encode(au)
		if err != nil {
			t.Fatalf("encode access unit %d: %v", i, err)
		}
		for _, p := range pkts {
			p.Timestamp = uint32(1000 + 3600*i)
		}
		out = append(out, pkts...)
	}
	return out
}

// nalType returns the NAL unit type of n for codec.
func nalType(codec string, n []byte) int {
	if codec == CodecH264 {
		return int(n[0] & 0x1f)
	}
	return int(n[0]>>1) & 0x3f
}

func isParamSet(codec string, n []byte) bool {
	switch typ := nalType(codec, n); codec {
	case CodecH264:
		return typ == h264NALUSPS || typ == h264NALUPPS
	default:
		return typ == h265NALUVPS || typ == h265NALUSPS || typ == h265NALUPPS
	}
}

// stripParams removes in-band parameter sets and returns them, as a camera
// that sends them only in the SDP would.
func stripParams(codec string, aus [][][]byte) (out [][][]byte, params [][]byte) {
	seen := map[int]bool{}
	for _, au := range aus {
		var kept [][]byte
		for _, n := range au {
			if isParamSet(codec, n) {
				if typ := nalType(codec, n); !seen[typ] {
					seen[typ] = true
					params = append(params, n)
				}
				continue
			}
			kept = append(kept, n)
		}
		out = append(out, kept)
	}
	return out, params
}

type depacketizeCase struct {
	name        string
	file        string
	codec       string
	maxPayload  int
	sdpParams   bool // strip in-band parameter sets, announce them in the SDP
	skipPackets int  // join the stream this many packets late
}

var depacketizeCases = []depacketizeCase{
	{name: "h264 single nal units", file: "testsrc2_64x48.h264", codec: CodecH264, maxPayload: 1400},
	{name: "h264 fu-a fragments", file: "testsrc2_64x48.h264", codec: CodecH264, maxPayload: 100},
	{name: "h264 params only in sdp", file: "testsrc2_64x48.h264", codec: CodecH264, maxPayload: 200, sdpParams: true},
	{name: "h264 joined mid picture", file: "testsrc2_64x48.h264", codec: CodecH264, maxPayload: 100, skipPackets: 3},
	{name: "h265 single nal units", file: "testsrc2_64x48.h265", codec: CodecH265, maxPayload: 1400},
	{name: "h265 fragmentation units", file: "testsrc2_64x48.h265", codec: CodecH265, maxPayload: 100},
	{name: "h265 params only in sdp", file: "testsrc2_64x48.h265", codec: CodecH265, maxPayload: 200, sdpParams: true},
	{name: "h265 joined mid picture", file: "testsrc2_64x48.h265", codec: CodecH265, maxPayload: 100, skipPackets: 3},
}

// caseInput builds the format (with SDP parameter sets if asked), the packets
// the camera receives and the access units it should reassemble.
func caseInput(t testing.TB, tc depacketizeCase) (format.Format, []*rtp.Packet, [][][]byte) {
	aus := readAccessUnits(t, tc.file, tc.codec)
	var params [][]byte
	if tc.sdpParams {
		aus, params = stripParams(tc.codec, aus)
	}
	pkts := packetize(t, tc.codec, aus, tc.maxPayload)
	var f format.Format
	switch tc.codec {
	case CodecH264:
		h := &format.H264{PayloadTyp: 96, PacketizationMode: 1}
		if len(params) == 2 {
			h.SPS, h.PPS = params[0], params[1]
		}
		f = h
	case CodecH265:
		h := &format.H265{PayloadTyp: 96}
		if len(params) == 3 {
			h.VPS, h.SPS, h.PPS = params[0], params[1], params[2]
		}
		f = h
	}
	return f, pkts[tc.skipPackets:], aus
}

func TestAssembler(t *testing.T) {
	for _, tc := range depacketizeCases {
		t.Run(tc.name, func(t *testing.T) {
			forma, pkts, want := caseInput(t, tc)
			a, err := newAssembler(forma)
			if err != nil {
				t.Fatal(err)
			}
			if a.codec != tc.codec {
				t.Fatalf("codec %q, want %q", a.codec, tc.codec)
			}
			type unit struct {
				au  [][]byte
				ts  uint32
				key bool
			}
			var got []unit
			for i, p := range pkts {
				au, ts, key, err := a.push(p)
				if err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
				if au != nil {
					got = append(got, unit{au, ts, key})
				}
			}
			if len(got) != len(want) {
				t.Fatalf("reassembled %d of %d access units", len(got), len(want))
			}
			for idx, g := range got {
				if g.ts != uint32(1000+3600*idx) {
					t.Fatalf("unit %d: timestamp %d, want %d", idx, g.ts, 1000+3600*idx)
				}
				if idx == 0 && tc.skipPackets > 0 {
					continue // joined late: the first unit is whatever was left of it
				}
				wantKey := idx%6 == 0 // GOP 6 in the test files
				if g.key != wantKey {
					t.Fatalf("unit %d: key %v, want %v", idx, g.key, wantKey)
				}
				exp := want[idx]
				if g.key && tc.sdpParams {
					var params int
					for _, n := range g.au {
						if isParamSet(tc.codec, n) {
							params++
						}
					}
					wantParams := 2
					if tc.codec == CodecH265 {
						wantParams = 3
					}
					if params != wantParams || !isParamSet(tc.codec, g.au[0]) {
						t.Fatalf("key unit %d has %d parameter sets in front, want %d", idx, params, wantParams)
					}
					g.au = g.au[wantParams:]
				}
				if len(g.au) != len(exp) {
					t.Fatalf("unit %d: %d NAL units, want %d", idx, len(g.au), len(exp))
				}
				for j := range exp {
					if !bytes.Equal(g.au[j], exp[j]) {
						t.Fatalf("unit %d NAL %d differs", idx, j)
					}
				}
			}
		})
	}
}

func TestAssemblerRejectsOtherCodecs(t *testing.T) {
	if _, err := newAssembler(&format.VP8{PayloadTyp: 96}); err == nil {
		t.Fatal("newAssembler(VP8) succeeded")
	}
}

func TestAssemblerCountsMalformedPackets(t *testing.T) {
	a, err := newAssembler(&format.H264{PayloadTyp: 96, PacketizationMode: 1})
	if err != nil {
		t.Fatal(err)
	}
	bad := []*rtp.Packet{
		{Header: rtp.Header{Marker: true}, Payload: nil},                // empty
		{Header: rtp.Header{Marker: true}, Payload: []byte{0x7c}},       // FU-A without header
		{Header: rtp.Header{Marker: true}, Payload: []byte{0x78, 0, 1}}, // STAP-A with a bad length
	}
	for i, p := range bad {
		if au, _, _, err := a.push(p); err == nil || au != nil {
			t.Fatalf("packet %d: au=%v err=%v, want an error", i, au, err)
		}
	}
}
