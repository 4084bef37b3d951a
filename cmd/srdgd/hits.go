package main

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"time"

	"github.com/srdgd/srdgd/internal/faceimg"
	"github.com/srdgd/srdgd/match"
	"github.com/srdgd/srdgd/publish"
	"github.com/srdgd/srdgd/srdg"
)

// hitInfo is what the daemon knows about its models, stamped on every hit.
type hitInfo struct {
	scale    int
	weight   float64
	models   map[string]string
	sinks    []namedSink
	log      *slog.Logger
	observed func(h *publish.Hit, sr time.Duration)
}

type namedSink struct {
	name string
	sink publish.Sink
}

// newHit turns an SR face and its search result (nil: not searched, with
// reason) into the record every sink receives.
func (hi *hitInfo) newHit(f *srdg.SRFace, attrs []string, r *match.SearchResult, reason string, th match.Thresholds) *publish.Hit {
	now := time.Now()
	p := f.Probe
	h := &publish.Hit{
		ID: publish.NewID(now), Camera: p.Camera, FrameTime: p.FrameTime, Time: now, TrackID: p.TrackID,
		Box:    publish.Box{X: p.Box.X0, Y: p.Box.Y0, W: p.Box.W(), H: p.Box.H()},
		FrameW: p.FrameW, FrameH: p.FrameH, FacePx: p.FacePx, DetectScore: p.Score,
		Sharpness: p.Quality.Sharpness, Frontalness: p.Quality.Frontal,
		SR: publish.SR{Sampler: f.Result.Sampler, Steps: f.Result.Steps, Evals: f.Result.ScoreEvals + f.Result.GuidanceEvals,
			Scale: hi.scale, LRSize: p.LRSize, Seed: f.Seed, Millis: float64(f.Result.Elapsed.Microseconds()) / 1000,
			Guided: f.Result.Guided, Weight: hi.weight, Upscale: p.Upscaled},
		Models: hi.models,
		Match:  publish.Match{Threshold: th.Identify, Reason: reason},
	}
	for i, name := range attrs {
		a := publish.Attribute{Name: name, Source: "none"}
		if i < len(f.Result.Labels) && f.Result.Labels[i] >= 0 && f.Result.Guided {
			l := f.Result.Labels[i]
			a.Label = &l
			a.Source = f.LabelSource
		}
		if i < len(f.AttrProbs) {
			pr := f.AttrProbs[i]
			a.Probability = &pr
		}
		h.Attributes = append(h.Attributes, a)
	}
	if r != nil {
		h.Match.Reason = r.Reason
		for _, c := range r.Candidates {
			h.Match.TopK = append(h.Match.TopK, publish.Candidate{PersonID: c.PersonID, Name: c.Name, Similarity: c.Similarity, Watchlist: c.Watchlist})
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
		h.Match.TopK = []publish.Candidate{}
	}
	h.LRPNG = encodePlanar(p.LR, ".png")
	hr := int(0.5 + math.Sqrt(float64(len(f.Result.SR)/3)))
	h.SRJPEG = encodePlanar(&faceimg.Planar{W: hr, H: hr, Pix: f.Result.SR}, ".jpg")
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
func (hi *hitInfo) publishHit(ctx context.Context, h *publish.Hit) {
	for _, s := range hi.sinks {
		if err := s.sink.Publish(ctx, h); err != nil {
			hi.log.Warn("hit not accepted", "sink", s.name, "hit", h.ID, "err", err)
		}
	}
}
