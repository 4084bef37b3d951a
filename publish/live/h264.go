package live

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// offeredH264 is one H.264 payload format of the offer's first video section.
type offeredH264 struct {
	PayloadType uint8
	Fmtp        string
	Feedback    []string
	// Profile is the profile-level-id's first two bytes (profile_idc and the
	// constraint flags), RFC 6184 section 8.1.
	Profile [2]byte
	HasPLID bool
}

// parseOffer checks that body is an SDP offer with a video section that can
// become a session (checkConnectable) and returns the H.264 formats it offers
// with packetization-mode=1 (RFC 6184 section 6.3: non-interleaved mode,
// which FU-A and STAP-A need).
func parseOffer(body []byte) ([]offeredH264, error) {
	if err := checkText(body); err != nil {
		return nil, err
	}
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(body); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	var video *sdp.MediaDescription
	for _, m := range sd.MediaDescriptions {
		if m.MediaName.Media == "video" {
			video = m
			break
		}
	}
	if video == nil {
		return nil, fmt.Errorf("%w: no video section (add a recvonly video transceiver)", ErrBadOffer)
	}
	if err := checkConnectable(&sd, video); err != nil {
		return nil, err
	}

	type format struct {
		name     string
		fmtp     string
		feedback []string
	}
	formats := map[uint8]*format{}
	get := func(pt string) *format {
		n, err := strconv.ParseUint(pt, 10, 8)
		if err != nil {
			return nil
		}
		f := formats[uint8(n)]
		if f == nil {
			f = &format{}
			formats[uint8(n)] = f
		}
		return f
	}
	for _, a := range video.Attributes {
		pt, rest, _ := strings.Cut(a.Value, " ")
		switch a.Key {
		case "rtpmap":
			if f := get(pt); f != nil {
				f.name, _, _ = strings.Cut(rest, "/")
			}
		case "fmtp":
			if f := get(pt); f != nil {
				f.fmtp = strings.TrimSpace(rest)
			}
		case "rtcp-fb":
			if f := get(pt); f != nil && pt != "*" {
				f.feedback = append(f.feedback, strings.TrimSpace(rest))
			}
		}
	}

	var out []offeredH264
	for _, ptText := range video.MediaName.Formats {
		n, err := strconv.ParseUint(ptText, 10, 8)
		if err != nil {
			continue
		}
		f := formats[uint8(n)]
		if f == nil || !strings.EqualFold(f.name, "H264") {
			continue
		}
		params := fmtpParams(f.fmtp)
		if params["packetization-mode"] != "1" {
			continue
		}
		o := offeredH264{PayloadType: uint8(n), Fmtp: f.fmtp, Feedback: f.feedback}
		if b, err := hex.DecodeString(params["profile-level-id"]); err == nil && len(b) == 3 {
			o.Profile = [2]byte{b[0], b[1]}
			o.HasPLID = true
		}
		out = append(out, o)
	}
	if len(out) == 0 {
		return nil, ErrNoH264Offer
	}
	return out, nil
}

func fmtpParams(line string) map[string]string {
	params := map[string]string{}
	for _, kv := range strings.Split(line, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		params[strings.ToLower(k)] = v
	}
	return params
}

// chooseH264 picks the offered format for a camera whose SPS starts with
// profile_idc and constraint flags cam: the same profile and constraints if
// offered, else the same profile_idc, else the most capable profile offered
// (High before Main before Baseline), since a decoder for a profile also
// decodes the ones below it and browsers do not enforce the negotiated
// profile on the received stream.
func chooseH264(offered []offeredH264, cam [2]byte) offeredH264 {
	best, bestScore := offered[0], -1
	for _, o := range offered {
		score := 0
		switch {
		case !o.HasPLID:
			score = 0
		case o.Profile == cam:
			score = 1000
		case o.Profile[0] == cam[0]:
			score = 500
		default:
			score = profileRank(o.Profile[0])
		}
		if score > bestScore {
			best, bestScore = o, score
		}
	}
	return best
}

func profileRank(idc byte) int {
	switch idc {
	case 100: // High
		return 30
	case 77: // Main
		return 20
	case 66: // Baseline
		return 10
	}
	return 1
}

// spsProfile returns profile_idc and the constraint flags of an H.264 SPS NAL
// unit (ITU-T H.264 section 7.3.2.1.1: the two bytes after the NAL header).
func spsProfile(sps []byte) ([2]byte, bool) {
	if len(sps) < 4 || sps[0]&0x1f != 7 {
		return [2]byte{}, false
	}
	return [2]byte{sps[1], sps[2]}, true
}
