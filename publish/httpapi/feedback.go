package httpapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/srdgd/srdgd/face"
)

// feedbackRequest is the body of a feedback POST. Person is required for
// confirm; for reject it defaults to the person the hit named (else its top
// candidate); not_enrolled rejects the hit's top candidate (and the named
// person, when that is another).
type feedbackRequest struct {
	Verdict string `json:"verdict"`
	Person  string `json:"person,omitempty"`
}

// FeedbackResult is one stored template of a feedback answer.
type FeedbackResult struct {
	Person   string `json:"person"`
	Template int64  `json:"template"`
}

type feedbackResponse struct {
	Hit     string           `json:"hit"`
	Visit   string           `json:"visit,omitempty"`
	Verdict string           `json:"verdict"`
	Stored  []FeedbackResult `json:"stored"`
}

// feedbackTargets are the people a verdict on h is stored for.
func feedbackTargets(h *face.Hit, req feedbackRequest) ([]string, error) {
	t, err := face.FeedbackTargets(h.Match, req.Verdict, req.Person)
	var fe *face.FeedbackError
	if errors.As(err, &fe) {
		return nil, errorf(http.StatusBadRequest, fe.Field, "%s", fe.Msg)
	}
	return t, err
}

// feedbackRequest reads a feedback request's body; false when it was
// refused (the answer is written).
func (s *Server) feedbackRequest(w http.ResponseWriter, r *http.Request) (feedbackRequest, bool) {
	var req feedbackRequest
	if err := decodeJSON(r, &req); err != nil {
		s.fail(w, r, err)
		return req, false
	}
	if len(req.Person) > maxNameBytes {
		s.fail(w, r, errorf(http.StatusBadRequest, "person", "person longer than %d bytes", maxNameBytes))
		return req, false
	}
	return req, true
}

// hitFeedback stores an operator's verdict on a hit's SR face: confirmed
// sightings become templates of the person, rejected ones negatives; each
// stored template is audited ("hit.feedback", the hit as target).
func (s *Server) hitFeedback(w http.ResponseWriter, r *http.Request) {
	g := s.gallery(w)
	if g == nil {
		return
	}
	req, ok := s.feedbackRequest(w, r)
	if !ok {
		return
	}
	h := s.hit(w, r)
	if h == nil {
		return
	}
	targets, err := feedbackTargets(h, req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if len(h.SRJPEG) == 0 {
		s.fail(w, r, errorf(http.StatusConflict, "", "hit %s has no SR face kept (history without images): nothing to learn from", h.ID))
		return
	}
	resp := feedbackResponse{Hit: h.ID, Verdict: req.Verdict, Stored: []FeedbackResult{}}
	for _, p := range targets {
		id, err := g.Feedback(r.Context(), p, req.Verdict, h.SRJPEG, h.SR.Scale, h.ID)
		if err != nil {
			_ = s.audit(r, "hit.feedback.failed", h.ID, fmt.Sprintf("%s %s: %v", req.Verdict, p, err))
			s.fail(w, r, fmt.Errorf("feedback on hit %s for %q: %w", h.ID, p, err))
			return
		}
		if err := s.audit(r, "hit.feedback", h.ID, fmt.Sprintf("%s %s (template %d)", req.Verdict, p, id)); err != nil {
			s.fail(w, r, err)
			return
		}
		resp.Stored = append(resp.Stored, FeedbackResult{Person: p, Template: id})
	}
	writeJSON(w, http.StatusCreated, resp)
}

// personPatch is the body of PATCH /api/v1/gallery/{name}: any of the
// watchlist flag and the threshold override (both offsets; an override of
// 0 and 0 clears it).
type personPatch struct {
	Watchlist       *bool    `json:"watchlist"`
	ThresholdOffset *float64 `json:"threshold_offset"`
	MarginOffset    *float64 `json:"margin_offset"`
}

// patchPerson changes a person's watchlist flag (audited
// "gallery.watchlist") and threshold override ("gallery.override").
func (s *Server) patchPerson(w http.ResponseWriter, r *http.Request) {
	g := s.gallery(w)
	if g == nil {
		return
	}
	var p personPatch
	if err := decodeJSON(r, &p); err != nil {
		s.fail(w, r, err)
		return
	}
	override := p.ThresholdOffset != nil || p.MarginOffset != nil
	if p.Watchlist == nil && !override {
		s.fail(w, r, errorf(http.StatusBadRequest, "watchlist",
			"nothing to change: give watchlist (true or false), threshold_offset and/or margin_offset (numbers in [-0.3, 0.3])"))
		return
	}
	name := r.PathValue("name")
	resp := map[string]any{"name": name}
	if override {
		var thr, mar float64
		if p.ThresholdOffset != nil {
			thr = *p.ThresholdOffset
		}
		if p.MarginOffset != nil {
			mar = *p.MarginOffset
		}
		if err := g.SetOverride(r.Context(), name, thr, mar); err != nil {
			if errors.Is(err, ErrInvalid) {
				s.fail(w, r, errorf(http.StatusBadRequest, "threshold_offset", "override of %q: %v", name, err))
				return
			}
			s.fail(w, r, fmt.Errorf("override of %q: %w", name, err))
			return
		}
		if err := s.audit(r, "gallery.override", name, fmt.Sprintf("threshold_offset %+.3f margin_offset %+.3f", thr, mar)); err != nil {
			s.fail(w, r, err)
			return
		}
		resp["threshold_offset"], resp["margin_offset"] = thr, mar
	}
	if p.Watchlist != nil {
		if err := g.SetWatchlist(r.Context(), name, *p.Watchlist); err != nil {
			s.fail(w, r, fmt.Errorf("watchlist of %q: %w", name, err))
			return
		}
		if err := s.audit(r, "gallery.watchlist", name, fmt.Sprintf("watchlist %v", *p.Watchlist)); err != nil {
			s.fail(w, r, err)
			return
		}
		resp["watchlist"] = *p.Watchlist
	}
	writeJSON(w, http.StatusOK, resp)
}

// visitFeedback is hitFeedback for a visit: the verdict applies to the
// visit's decision, and the face learnt from is its best shot's SR face
// (the hit stored in the history); audited as "visit.feedback".
func (s *Server) visitFeedback(w http.ResponseWriter, r *http.Request) {
	g := s.gallery(w)
	if g == nil {
		return
	}
	if s.o.Visits == nil || s.o.Hits == nil {
		writeError(w, http.StatusServiceUnavailable, "", "no visit history configured")
		return
	}
	req, ok := s.feedbackRequest(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	if !validID(id) {
		writeError(w, http.StatusNotFound, "", fmt.Sprintf("visit %q: not found (not a visit id)", id))
		return
	}
	v, err := s.o.Visits.GetVisit(r.Context(), id)
	if err != nil {
		s.fail(w, r, fmt.Errorf("visit %s: %w", id, err))
		return
	}
	d := v.Decision
	t, err := face.FeedbackTargets(face.Match{Known: d.Known, Name: d.Name, PersonID: d.PersonID, TopK: d.TopK}, req.Verdict, req.Person)
	var fe *face.FeedbackError
	if errors.As(err, &fe) {
		s.fail(w, r, errorf(http.StatusBadRequest, fe.Field, "%s", fe.Msg))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if v.BestShot == "" {
		s.fail(w, r, errorf(http.StatusConflict, "", "visit %s has no best shot: nothing to learn from", v.ID))
		return
	}
	h, err := s.o.Hits.GetHit(r.Context(), v.BestShot)
	if errors.Is(err, ErrNotFound) || (err == nil && len(h.SRJPEG) == 0) {
		s.fail(w, r, errorf(http.StatusConflict, "", "visit %s: its best shot %s is not in the history with its SR face: nothing to learn from", v.ID, v.BestShot))
		return
	}
	if err != nil {
		s.fail(w, r, fmt.Errorf("visit %s: best shot %s: %w", v.ID, v.BestShot, err))
		return
	}
	resp := feedbackResponse{Hit: h.ID, Visit: v.ID, Verdict: req.Verdict, Stored: []FeedbackResult{}}
	for _, p := range t {
		tid, err := g.Feedback(r.Context(), p, req.Verdict, h.SRJPEG, h.SR.Scale, v.ID)
		if err != nil {
			_ = s.audit(r, "visit.feedback.failed", v.ID, fmt.Sprintf("%s %s: %v", req.Verdict, p, err))
			s.fail(w, r, fmt.Errorf("feedback on visit %s for %q: %w", v.ID, p, err))
			return
		}
		if err := s.audit(r, "visit.feedback", v.ID, fmt.Sprintf("%s %s (template %d, best shot %s)", req.Verdict, p, tid, h.ID)); err != nil {
			s.fail(w, r, err)
			return
		}
		resp.Stored = append(resp.Stored, FeedbackResult{Person: p, Template: tid})
	}
	writeJSON(w, http.StatusCreated, resp)
}
