package ingest

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"

	"github.com/srdgd/srdgd/internal/rtspserver"
	"github.com/srdgd/srdgd/internal/testutil"
)

var updateFuzzSeeds = flag.Bool("update-fuzz-seeds", false,
	"capture RTP packets from ffmpeg streams and rewrite testdata/fuzz/FuzzAssembleDecode seeds")

// Fuzz inputs encode a codec and a packet sequence:
//
//	byte 0: bit 0 selects H.265 (else H.264)
//	then per packet: flags, uint16 BE length, payload
//	flags: bit 0 marker, bit 1 next timestamp, bit 2 not a packet but an
//	out-of-band parameter set (SPS/PPS/VPS from the SDP), in SDP order
//
// A truncated last payload is used as is.
type fuzzPacket struct {
	marker  bool
	nextTS  bool
	sdp     bool
	payload []byte
}

func encodeFuzzInput(codec string, pkts []fuzzPacket) []byte {
	out := []byte{0}
	if codec == CodecH265 {
		out[0] = 1
	}
	for _, p := range pkts {
		var flags byte
		if p.marker {
			flags |= 1
		}
		if p.nextTS {
			flags |= 2
		}
		if p.sdp {
			flags |= 4
		}
		out = append(out, flags)
		out = binary.BigEndian.AppendUint16(out, uint16(len(p.payload)))
		out = append(out, p.payload...)
	}
	return out
}

// decodeFuzzInput returns the format (with SDP parameter sets) and the packets.
func decodeFuzzInput(data []byte) (format.Format, []*rtp.Packet) {
	if len(data) == 0 {
		return &format.H264{PayloadTyp: 96, PacketizationMode: 1}, nil
	}
	codec := CodecH264
	if data[0]&1 == 1 {
		codec = CodecH265
	}
	data = data[1:]
	var pkts []*rtp.Packet
	var params [][]byte
	var seq uint16
	ts := uint32(90000)
	for len(data) >= 3 {
		flags := data[0]
		n := int(binary.BigEndian.Uint16(data[1:3]))
		data = data[3:]
		n = min(n, len(data))
		if flags&4 != 0 {
			params = append(params, data[:n:n])
			data = data[n:]
			continue
		}
		if flags&2 != 0 {
			ts += 3600
		}
		seq++
		pkts = append(pkts, &rtp.Packet{
			Header:  rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: ts, Marker: flags&1 != 0},
			Payload: data[:n:n],
		})
		data = data[n:]
	}
	param := func(i int) []byte {
		if i < len(params) {
			return params[i]
		}
		return nil
	}
	if codec == CodecH265 {
		return &format.H265{PayloadTyp: 96, VPS: param(0), SPS: param(1), PPS: param(2)}, pkts
	}
	return &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: param(0), PPS: param(1)}, pkts
}

// sdpParams lists the out-of-band parameter sets of f in SDP order.
func sdpParams(f format.Format) []fuzzPacket {
	var sets [][]byte
	switch f := f.(type) {
	case *format.H264:
		sets = [][]byte{f.SPS, f.PPS}
	case *format.H265:
		sets = [][]byte{f.VPS, f.SPS, f.PPS}
	}
	var out []fuzzPacket
	for _, s := range sets {
		out = append(out, fuzzPacket{sdp: true, payload: s})
	}
	return out
}

// toFuzzPackets converts RTP packets into the fuzz encoding.
func toFuzzPackets(pkts []*rtp.Packet) []fuzzPacket {
	out := make([]fuzzPacket, len(pkts))
	for i, p := range pkts {
		out[i] = fuzzPacket{marker: p.Marker, nextTS: i > 0 && p.Timestamp != pkts[i-1].Timestamp, payload: p.Payload}
	}
	return out
}

// FuzzAssembleDecode feeds arbitrary RTP payloads through the depacketiser and,
// where cgo is available, the libavcodec decoder: nothing may panic, and every
// output must be well formed.
func FuzzAssembleDecode(f *testing.F) {
	// Seeds from the depacketiser table; the committed corpus adds packets
	// captured from live ffmpeg streams (see TestGenerateFuzzSeeds).
	for _, tc := range depacketizeCases {
		forma, pkts, _ := caseInput(f, tc)
		f.Add(encodeFuzzInput(tc.codec, append(sdpParams(forma), toFuzzPackets(pkts)...)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		forma, pkts := decodeFuzzInput(data)
		a, err := newAssembler(forma)
		if err != nil {
			t.Fatal(err)
		}
		codec := a.codec
		dec, err := NewAVDecoder(codec)
		if err != nil {
			dec = nil // built without cgo: fuzz the depacketiser alone
		} else {
			defer dec.Close()
		}
		for i, p := range pkts {
			au, _, key, err := a.push(p)
			if err != nil || au == nil {
				continue
			}
			for _, n := range au {
				if len(n) == 0 {
					t.Fatal("empty NAL unit in an access unit")
				}
			}
			if key && !isKeyUnit(codec, au) {
				t.Fatal("key flag on an access unit without IDR/IRAP")
			}
			if dec == nil {
				continue
			}
			pics, _ := dec.Decode(au, time.Duration(i), nil)
			for _, pic := range pics {
				if pic.Width <= 0 || pic.Height <= 0 || len(pic.Pix) != 3*pic.Width*pic.Height {
					t.Fatalf("malformed picture %dx%d with %d bytes", pic.Width, pic.Height, len(pic.Pix))
				}
			}
		}
	})
}

func isKeyUnit(codec string, au [][]byte) bool {
	for _, n := range au {
		typ := nalType(codec, n)
		if codec == CodecH264 && typ == h264NALUIDR ||
			codec == CodecH265 && typ >= h265NALUIRAPFirst && typ <= h265NALUIRAPLast {
			return true
		}
	}
	return false
}

// TestGenerateFuzzSeeds captures real RTP packets of ffmpeg's H.264 and H.265
// streams and writes them as fuzz seeds. It runs only with
// -args -update-fuzz-seeds.
func TestGenerateFuzzSeeds(t *testing.T) {
	if !*updateFuzzSeeds {
		t.Skip("seed generator; run with -args -update-fuzz-seeds")
	}
	requireFFmpeg(t)
	dir := filepath.Join("testdata", "fuzz", "FuzzAssembleDecode")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, codec := range []string{rtspserver.CodecH264, rtspserver.CodecH265} {
		ctx := testutil.Context(t, 30*time.Second)
		s := startServer(t, rtspserver.Options{})
		publish(t, ctx, s, "cam", rtspserver.FFmpegOptions{Codec: codec, Width: 64, Height: 48, GOP: 4})
		forma, pkts := capturePackets(t, ctx, s.URL("cam"), 40)
		name := CodecH264
		if codec == rtspserver.CodecH265 {
			name = CodecH265
		}
		seeds := map[string][]*rtp.Packet{
			"stream_start": pkts[:12],
			"mid_stream":   pkts[12:28],
			"long":         pkts,
		}
		for suffix, p := range seeds {
			data := encodeFuzzInput(name, append(sdpParams(forma), toFuzzPackets(p)...))
			file := filepath.Join(dir, fmt.Sprintf("captured_%s_%s", name, suffix))
			if err := os.WriteFile(file, fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", data), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s (%d packets, %d bytes)", file, len(p), len(data))
		}
	}
}

// capturePackets plays url over TCP and returns the video format from the SDP
// and the first n RTP packets.
func capturePackets(t *testing.T, ctx context.Context, url string, n int) (format.Format, []*rtp.Packet) {
	t.Helper()
	u, err := base.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	tcp := gortsplib.TransportTCP
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Transport: &tcp,
		OnTransportSwitch: func(error) {}, OnPacketsLost: func(uint64) {}, OnDecodeError: func(error) {}}
	if err := c.Start2(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	desc, _, err := c.Describe(u)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var pkts []*rtp.Packet
	enough := make(chan struct{})
	c.OnPacketRTP(desc.Medias[0], desc.Medias[0].Formats[0], func(p *rtp.Packet) {
		mu.Lock()
		defer mu.Unlock()
		if len(pkts) < n {
			pkts = append(pkts, p)
			if len(pkts) == n {
				close(enough)
			}
		}
	})
	if _, err := c.Play(nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-enough:
	case <-ctx.Done():
		t.Fatal("timed out capturing packets")
	}
	mu.Lock()
	defer mu.Unlock()
	return desc.Medias[0].Formats[0], pkts
}
