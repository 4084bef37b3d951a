package app

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/match"
	"github.com/srdgd/srdgd/publish/history"
)

// The gallery changes the command line makes, each written to the audit
// log as the HTTP API writes its own (actor "cli:<user>"). A change that
// happened but could not be audited is not undone: the audit error goes to
// Gallery.AuditWarn.

// audit records one change; its failure is reported to AuditWarn.
func (g *Gallery) audit(ctx context.Context, action, target, detail string) {
	if err := AuditCLI(ctx, g.Cfg, action, target, detail); err != nil && g.AuditWarn != nil {
		g.AuditWarn(err)
	}
}

// Enrol adds photos of name (match.Gallery.Add) and returns each photo's
// result and how many were enrolled; "gallery.add", or "gallery.add.failed"
// when none was.
func (g *Gallery) Enrol(ctx context.Context, name string, photos []match.Photo) ([]match.PhotoResult, int, error) {
	res, err := g.Gallery.Add(ctx, name, photos)
	if err != nil {
		g.audit(ctx, "gallery.add.failed", name, fmt.Sprintf("0 of %d photos enrolled: %v", len(photos), err))
		return nil, 0, err
	}
	ok := 0
	var why []string
	for _, r := range res {
		if r.Err != nil {
			why = append(why, r.Source+": "+r.Err.Error())
		} else {
			ok++
		}
	}
	if ok == 0 {
		g.audit(ctx, "gallery.add.failed", name, fmt.Sprintf("0 of %d photos enrolled: %s", len(res), strings.Join(why, "; ")))
	} else {
		g.audit(ctx, "gallery.add", name, fmt.Sprintf("%d of %d photos enrolled", ok, len(res)))
	}
	return res, ok, nil
}

// Remove deletes a person and their photos ("gallery.remove").
func (g *Gallery) Remove(ctx context.Context, name string) error {
	if err := g.Gallery.Remove(ctx, name); err != nil {
		return err
	}
	g.audit(ctx, "gallery.remove", name, "")
	return nil
}

// Export writes the gallery to target, a folder or a .tar file ("gallery.export").
func (g *Gallery) Export(ctx context.Context, target string) (*match.ExportReport, error) {
	rep, err := g.Gallery.ExportTo(ctx, target)
	if err == nil {
		g.audit(ctx, "gallery.export", target, "")
	}
	return rep, err
}

// Import enrols an export ("gallery.import").
func (g *Gallery) Import(ctx context.Context, target string) (*match.ImportReport, error) {
	rep, err := g.Gallery.ImportFrom(ctx, target)
	if err == nil {
		g.audit(ctx, "gallery.import", target, "")
	}
	return rep, err
}

// SetWatchlist marks or unmarks a person ("gallery.watchlist").
func (g *Gallery) SetWatchlist(ctx context.Context, name string, on bool) error {
	if err := g.Gallery.SetWatchlist(ctx, name, on); err != nil {
		return err
	}
	g.audit(ctx, "gallery.watchlist", name, fmt.Sprintf("watchlist %v", on))
	return nil
}

// SetOffset sets (nil: clears) a person's threshold override
// ("gallery.override") and returns the audited description of it.
func (g *Gallery) SetOffset(ctx context.Context, name string, o *match.Offset) (string, error) {
	if err := g.Gallery.SetOffset(ctx, name, o); err != nil {
		return "", err
	}
	detail := "off"
	if o != nil {
		detail = fmt.Sprintf("threshold_offset %+.3f margin_offset %+.3f", o.Threshold, o.Margin)
	}
	g.audit(ctx, "gallery.override", name, detail)
	return detail, nil
}

// ReembedSummary is what Reembed did and where the gallery stands after it.
type ReembedSummary struct {
	*match.ReembedReport
	// Detail is the audited one-line description of the work done.
	Detail                     string
	People, Photos, Searchable int
}

// Reembed gives every photo without a descriptor of the embedder's model
// one (match.Gallery.Reembed); "gallery.reembed" when any needed one.
func (g *Gallery) Reembed(ctx context.Context) (*ReembedSummary, error) {
	rep, err := g.Gallery.Reembed(ctx, g.Embedder)
	if err != nil {
		return nil, err
	}
	people, err := g.Gallery.List(ctx)
	if err != nil {
		return nil, err
	}
	s := &ReembedSummary{ReembedReport: rep, People: len(people),
		Detail: fmt.Sprintf("%d photos needed a descriptor, %d re-embedded, %d failed", rep.Stale, rep.Reembedded, len(rep.Failed))}
	for _, p := range people {
		s.Photos, s.Searchable = s.Photos+p.Images, s.Searchable+p.Searchable
	}
	if rep.Stale > 0 {
		g.audit(ctx, "gallery.reembed", rep.Model, s.Detail)
	}
	return s, nil
}

// ErrNoSRFace is Feedback's answer for a hit whose SR face was not kept.
var ErrNoSRFace = errors.New("the hit has no SR face kept: nothing to learn from")

// StoredFeedback is one template Feedback stored.
type StoredFeedback struct {
	Person   string
	Template int64
}

// Feedback applies an operator's verdict on the hit hitID of the history,
// as the API does (face.FeedbackTargets: a template of each person it
// concerns), auditing "hit.feedback" per template or "hit.feedback.failed".
// A verdict or person that does not fit the hit is a UsageError; an
// unknown hit wraps history.ErrNotFound.
func (g *Gallery) Feedback(ctx context.Context, hitID, verdict, person string) ([]StoredFeedback, error) {
	o, err := HistoryOptions(g.Cfg, nil)
	if err != nil {
		return nil, err
	}
	h, err := history.Open(ctx, history.Options{Path: o.Path, Key: o.Key})
	if err != nil {
		return nil, err
	}
	defer h.Close()
	hit, err := h.Get(ctx, hitID)
	if errors.Is(err, history.ErrNotFound) {
		return nil, fmt.Errorf("no hit %q in the history (%s): %w", hitID, o.Path, err)
	}
	if err != nil {
		return nil, err
	}
	targets, err := face.FeedbackTargets(hit.Match, verdict, person)
	if err != nil {
		return nil, UsageError{err}
	}
	if len(hit.SRJPEG) == 0 {
		return nil, fmt.Errorf("hit %s: %w", hitID, ErrNoSRFace)
	}
	api := NewGalleryAPI(g.Gallery)
	var out []StoredFeedback
	for _, p := range targets {
		tid, err := api.Feedback(ctx, p, verdict, hit.SRJPEG, hit.SR.Scale, hit.ID)
		if err != nil {
			g.audit(ctx, "hit.feedback.failed", hit.ID, fmt.Sprintf("%s %s: %v", verdict, p, err))
			return out, err
		}
		out = append(out, StoredFeedback{Person: p, Template: tid})
		g.audit(ctx, "hit.feedback", hit.ID, fmt.Sprintf("%s %s (template %d)", verdict, p, tid))
	}
	return out, nil
}
