package httpapi

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/srdgd/srdgd/face"
)

// Feedback verdicts (POST /api/v1/hits/{id}/feedback).
const (
	VerdictConfirm     = "confirm"      // "this is <person>"
	VerdictReject      = "reject"       // "not <person>"
	VerdictNotEnrolled = "not_enrolled" // "not anyone enrolled"
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
	Verdict string           `json:"verdict"`
	Stored  []FeedbackResult `json:"stored"`
}

// feedbackTargets are the people a verdict on h is stored for.
func feedbackTargets(h *face.Hit, req feedbackRequest) ([]string, error) {
	top := ""
	if len(h.Match.TopK) > 0 {
		top = h.Match.TopK[0].Name
	}
	switch req.Verdict {
	case VerdictConfirm:
		if req.Person == "" {
			return nil, errorf(http.StatusBadRequest, "person", "confirm needs the person the face is")
		}
		return []string{req.Person}, nil
	case VerdictReject:
		p := req.Person
		if p == "" {
			p = h.Match.Name
		}
		if p == "" {
			p = top
		}
		if p == "" {
			return nil, errorf(http.StatusBadRequest, "person", "reject: the hit names no one and has no candidate; say who it is not")
		}
		return []string{p}, nil
	case VerdictNotEnrolled:
		if req.Person != "" {
			return nil, errorf(http.StatusBadRequest, "person", "not_enrolled takes no person (it rejects the hit's candidates)")
		}
		var out []string
		for _, p := range []string{h.Match.Name, top} {
			if p != "" && !containsFold(out, p) {
				out = append(out, p)
			}
		}
		if len(out) == 0 {
			return nil, errorf(http.StatusBadRequest, "verdict", "not_enrolled: the hit has no candidate to reject")
		}
		return out, nil
	}
	return nil, errorf(http.StatusBadRequest, "verdict", "verdict %q: want %s, %s or %s", req.Verdict, VerdictConfirm, VerdictReject, VerdictNotEnrolled)
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// hitFeedback stores an operator's verdict on a hit's SR face: confirmed
// sightings become templates of the person, rejected ones negatives; each
// stored template is audited ("hit.feedback", the hit as target).
func (s *Server) hitFeedback(w http.ResponseWriter, r *http.Request) {
	g := s.gallery(w)
	if g == nil {
		return
	}
	var req feedbackRequest
	if err := decodeJSON(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if len(req.Person) > maxNameBytes {
		s.fail(w, r, errorf(http.StatusBadRequest, "person", "person longer than %d bytes", maxNameBytes))
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

// personPatch is the body of PATCH /api/v1/gallery/{name}.
type personPatch struct {
	Watchlist *bool `json:"watchlist"`
}

// patchPerson changes a person's watchlist flag (audited
// "gallery.watchlist").
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
	if p.Watchlist == nil {
		s.fail(w, r, errorf(http.StatusBadRequest, "watchlist", "nothing to change: give watchlist (true or false)"))
		return
	}
	name := r.PathValue("name")
	if err := g.SetWatchlist(r.Context(), name, *p.Watchlist); err != nil {
		s.fail(w, r, fmt.Errorf("watchlist of %q: %w", name, err))
		return
	}
	if err := s.audit(r, "gallery.watchlist", name, fmt.Sprintf("watchlist %v", *p.Watchlist)); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": name, "watchlist": *p.Watchlist})
}
