package main

import (
	"bytes"
	"context"
	"log/slog"
	"time"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/internal/faceimg"
	"github.com/srdgd/srdgd/match"
	"github.com/srdgd/srdgd/publish"
)

// hitInfo is what the daemon knows about its models, stamped on every hit.
type hitInfo struct {
	models   map[string]string
	sinks    []namedSink
	log      *slog.Logger
	observed func(h *face.Hit, sr time.Duration)
}

type namedSink struct {
	name string
	sink publish.Sink
}

// newHit turns an SR shot and its search result (nil: not searched, with
// reason) into the record every sink receives.
func (hi *hitInfo) newHit(f *face.Shot, r *match.SearchResult, reason string, th match.Thresholds) *face.Hit {
	now := time.Now()
	p := f.Probe
	h := &face.Hit{
		ID: face.NewID(now), Camera: p.Camera, FrameTime: p.FrameTime, Time: now, TrackID: p.TrackID,
		Box: p.Box.Box(), FrameW: p.FrameW, FrameH: p.FrameH, FacePx: p.FacePx, DetectScore: p.Score,
		Sharpness: p.Quality.Sharpness, Frontalness: p.Quality.Frontal,
		Attributes: f.Attributes, SR: f.Run, Models: hi.models,
		Match: face.Match{Threshold: th.Identify, Reason: reason},
	}
	if r != nil {
		h.Match.Reason = r.Reason
		for _, c := range r.Candidates {
			h.Match.TopK = append(h.Match.TopK, face.Candidate{PersonID: c.PersonID, Name: c.Name, Similarity: c.Similarity, Watchlist: c.Watchlist})
		}
		if len(r.Candidates) > 0 {
			h.Match.Similarity = r.Candidates[0].Similarity
			h.Match.Margin = r.Candidates[0].Similarity
			if len(r.Candidates) > 1 {
				h.Match.Margin -= r.Candidates[1].Similarity
			}
		}
		if r.Match != nil {
			h.Match.Known, h.Match.PersonID, h.Match.Name, h.Match.Watchlist = true, r.Match.PersonID, r.Match.Name, r.Match.Watchlist
			h.Match.Reason = ""
		}
	}
	if h.Match.TopK == nil {
		h.Match.TopK = []face.Candidate{}
	}
	h.LRPNG = encodePlanar(p.LR, ".png")
	h.SRJPEG = encodePlanar(f.SR, ".jpg")
	h.PreviewJPEG = encodePlanar(p.Preview, ".jpg")
	return h
}

func encodePlanar(p *faceimg.Planar, ext string) []byte {
	if p == nil {
		return nil
	}
	var b bytes.Buffer
	if err := faceimg.Encode(&b, ext, p.Image()); err != nil {
		return nil
	}
	return b.Bytes()
}

// publishHit hands the hit to every sink; a sink's refusal is logged and
// does not keep the hit from the others.
func (hi *hitInfo) publishHit(ctx context.Context, h *face.Hit) {
	for _, s := range hi.sinks {
		if err := s.sink.Publish(ctx, h); err != nil {
			hi.log.Warn("hit not accepted", "sink", s.name, "hit", h.ID, "err", err)
		}
	}
}
