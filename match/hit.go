package match

import (
	"bytes"
	"time"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/internal/faceimg"
)

// NewHit turns an SR shot and its search result into the record every sink
// receives. r is nil when the face was not searched; reason then says why
// (face.ReasonNoGallery, face.ReasonSearchFailed). th are the thresholds
// the decision was taken at when there was no search (r's own, which carry
// any override, otherwise); models are stamped on the hit as they are.
//
// The hit's similarity is the best candidate's and its margin that
// candidate's lead over the runner-up (the whole similarity when there is
// none): the two numbers the decision compared with th.Identify and
// th.Margin.
func NewHit(sh *face.Shot, r *SearchResult, reason string, th Thresholds, models map[string]string, now time.Time) *face.Hit {
	p := sh.Probe
	h := &face.Hit{
		ID: face.NewID(now), Camera: p.Camera, FrameTime: p.FrameTime, Time: now, TrackID: p.TrackID,
		Box: p.Box.Box(), FrameW: p.FrameW, FrameH: p.FrameH, FacePx: p.FacePx, DetectScore: p.Score,
		Sharpness: p.Quality.Sharpness, Frontalness: p.Quality.Frontal,
		Attributes: sh.Attributes, SR: sh.Run, Models: models,
		Match: face.Match{Threshold: th.Identify, Reason: reason, TopK: []face.Candidate{}},
	}
	if r != nil {
		if r.Override != "" {
			th = r.Thresholds // shifted by the override
		}
		h.Match = decision(r, th)
	} else {
		h.Match.Explanation = Explain(reason, nil, th, 0, "", "")
	}
	h.LRPNG = encodePlanar(p.LR, ".png")
	h.SRJPEG = encodePlanar(sh.SR, ".jpg")
	h.PreviewJPEG = encodePlanar(p.Preview, ".jpg")
	return h
}

// decision is a search result as a hit reports it.
func decision(r *SearchResult, th Thresholds) face.Match {
	m := face.Match{Threshold: th.Identify, Reason: r.Reason, TopK: make([]face.Candidate, 0, len(r.Candidates))}
	for _, c := range r.Candidates {
		m.TopK = append(m.TopK, face.Candidate{PersonID: c.PersonID, Name: c.Name, Similarity: c.Similarity, Watchlist: c.Watchlist})
	}
	if len(r.Candidates) > 0 {
		m.Similarity = r.Candidates[0].Similarity
		m.Margin = r.Candidates[0].Similarity
		if len(r.Candidates) > 1 {
			m.Margin -= r.Candidates[1].Similarity
		}
	}
	if r.Match != nil {
		m.Known, m.PersonID, m.Name, m.Watchlist = true, r.Match.PersonID, r.Match.Name, r.Match.Watchlist
		m.Reason = ""
	}
	outcome := m.Reason
	if m.Known {
		outcome = face.OutcomeNamed
	}
	m.Explanation = Explain(outcome, m.TopK, th, 0, r.Override, r.OverrideName)
	return m
}

// encodePlanar encodes an image for a hit (PNG or JPEG by ext); nil when
// there is none or it is malformed.
func encodePlanar(p *faceimg.Planar, ext string) []byte {
	if p == nil || p.W <= 0 || p.H <= 0 || len(p.Pix) != 3*p.W*p.H {
		return nil
	}
	var b bytes.Buffer
	if err := faceimg.Encode(&b, ext, p.Image()); err != nil {
		return nil
	}
	return b.Bytes()
}
