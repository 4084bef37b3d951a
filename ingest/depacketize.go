package ingest

import (
	"errors"
	"fmt"

	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph265"
	"github.com/pion/rtp"
)

// NAL unit types (H.264: ITU-T H.264 table 7-1; H.265: ITU-T H.265 table 7-1).
const (
	h264NALUIDR = 5
	h264NALUSPS = 7
	h264NALUPPS = 8

	h265NALUIRAPFirst = 16 // BLA_W_LP
	h265NALUIRAPLast  = 21 // CRA_NUT (22 and 23 are reserved)
	h265NALUVPS       = 32
	h265NALUSPS       = 33
	h265NALUPPS       = 34
)

// assembler turns RTP packets of one video track into access units: it
// depacketises (RFC 6184 / RFC 7798), tracks the parameter sets from the SDP
// and the stream, and puts them in front of key access units that lack them,
// so a decoder (or a WebRTC viewer) can start at any key frame.
type assembler struct {
	codec string
	rtp   interface {
		Decode(*rtp.Packet) ([][]byte, error)
	}
	// params holds VPS, SPS, PPS (H.265) or -, SPS, PPS (H.264).
	params [3][]byte

	prevTS uint32 // timestamp of the previous packet
	hasPrv bool
}

// newAssembler builds an assembler for an H.264 or H.265 format.
func newAssembler(f format.Format) (*assembler, error) {
	switch f := f.(type) {
	case *format.H264:
		d, err := f.CreateDecoder()
		if err != nil {
			return nil, fmt.Errorf("h264 depacketiser: %w", err)
		}
		a := &assembler{codec: CodecH264, rtp: d}
		sps, pps := f.SafeParams()
		a.params[1], a.params[2] = clone(sps), clone(pps)
		return a, nil
	case *format.H265:
		d, err := f.CreateDecoder()
		if err != nil {
			return nil, fmt.Errorf("h265 depacketiser: %w", err)
		}
		a := &assembler{codec: CodecH265, rtp: d}
		vps, sps, pps := f.SafeParams()
		a.params[0], a.params[1], a.params[2] = clone(vps), clone(sps), clone(pps)
		return a, nil
	}
	return nil, fmt.Errorf("format %s: %w", f.Codec(), ErrUnsupportedCodec)
}

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// push feeds one RTP packet. It returns a complete access unit, its RTP
// timestamp and whether it is a key frame; au is nil while more packets are
// needed. Errors are malformed packets; the caller counts them and goes on.
func (a *assembler) push(pkt *rtp.Packet) (au [][]byte, ts uint32, key bool, err error) {
	prevTS, hadPrev := a.prevTS, a.hasPrv
	a.prevTS, a.hasPrv = pkt.Timestamp, true

	nalus, err := a.rtp.Decode(pkt)
	if err != nil {
		if errors.Is(err, rtph264.ErrMorePacketsNeeded) || errors.Is(err, rtph265.ErrMorePacketsNeeded) ||
			errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious) || errors.Is(err, rtph265.ErrNonStartingPacketAndNoPrevious) {
			// Normal: a fragment in the middle, or joining a stream mid-picture.
			return nil, 0, false, nil
		}
		return nil, 0, false, err
	}
	// The depacketiser also ends an access unit when the timestamp changes
	// without a marker bit; the unit then belongs to the previous timestamp.
	ts = pkt.Timestamp
	if !pkt.Marker && hadPrev && prevTS != pkt.Timestamp {
		ts = prevTS
	}
	au, key = a.complete(nalus)
	if len(au) == 0 {
		return nil, 0, false, nil
	}
	return au, ts, key, nil
}

// complete drops empty NAL units, learns in-band parameter sets, detects key
// frames and prepends missing parameter sets to them.
func (a *assembler) complete(nalus [][]byte) ([][]byte, bool) {
	out := nalus[:0:0]
	var key bool
	var have [3]bool
	for _, n := range nalus {
		if len(n) == 0 {
			continue
		}
		out = append(out, n)
		if a.codec == CodecH264 {
			switch n[0] & 0x1f {
			case h264NALUIDR:
				key = true
			case h264NALUSPS:
				a.params[1], have[1] = clone(n), true
			case h264NALUPPS:
				a.params[2], have[2] = clone(n), true
			}
			continue
		}
		switch typ := (n[0] >> 1) & 0x3f; {
		case typ >= h265NALUIRAPFirst && typ <= h265NALUIRAPLast:
			key = true
		case typ == h265NALUVPS:
			a.params[0], have[0] = clone(n), true
		case typ == h265NALUSPS:
			a.params[1], have[1] = clone(n), true
		case typ == h265NALUPPS:
			a.params[2], have[2] = clone(n), true
		}
	}
	if !key {
		return out, false
	}
	first := 1
	if a.codec == CodecH265 {
		first = 0
	}
	var prefix [][]byte
	for i := first; i < 3; i++ {
		if !have[i] && a.params[i] != nil {
			prefix = append(prefix, a.params[i])
		}
	}
	if len(prefix) == 0 {
		return out, true
	}
	return append(prefix, out...), true
}
