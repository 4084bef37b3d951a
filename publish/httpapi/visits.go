package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/srdgd/srdgd/face"
)

// maxFilterLen bounds the camera and person filters (a gallery name is at
// most 200 characters).
const maxFilterLen = 256

// shotImages are the image links of one shot: the hit it was published as.
type shotImages struct {
	LR      string `json:"lr"`
	SR      string `json:"sr"`
	Preview string `json:"preview"`
}

func shotLinks(hitID string) shotImages {
	base := "/api/v1/hits/" + url.PathEscape(hitID)
	return shotImages{LR: base + "/lr.png", SR: base + "/sr.jpg", Preview: base + "/preview.jpg"}
}

// shotJSON is a face.ShotRef with its images: absent while (or once) its
// hit is not in the history.
type shotJSON struct {
	face.ShotRef
	Images *shotImages `json:"images,omitempty"`
}

// candidateImage is the gallery photo of one top candidate, in the order
// of decision.top_k.
type candidateImage struct {
	Name  string `json:"name"`
	Photo string `json:"photo"`
}

// visitImages are the image links of a visit.
type visitImages struct {
	// Best is the best shot's images (absent when the visit has none).
	Best *shotImages `json:"best,omitempty"`
	// Gallery is the decided person's enrolled photo (known visits only).
	Gallery string `json:"gallery,omitempty"`
	// Candidates are the top candidates' photos, as decision.top_k (none
	// without a gallery to serve them).
	Candidates []candidateImage `json:"candidates"`
}

// visitJSON is a visit as the API returns it: face.Visit's JSON, its shots
// with their image links, and the visit's images.
type visitJSON struct {
	*face.Visit
	Shots  []shotJSON  `json:"shots"`
	Images visitImages `json:"images"`
}

func photoLink(name string) string { return "/api/v1/gallery/" + url.PathEscape(name) + "/photo.jpg" }

// visitLinks adds the links; stored says which hits are in the history,
// gallery whether gallery photos are served.
func visitLinks(v *face.Visit, stored map[string]bool, gallery bool) visitJSON {
	out := visitJSON{Visit: v, Shots: make([]shotJSON, 0, len(v.Shots)), Images: visitImages{Candidates: []candidateImage{}}}
	for _, s := range v.Shots {
		sj := shotJSON{ShotRef: s}
		if stored[s.HitID] {
			l := shotLinks(s.HitID)
			sj.Images = &l
		}
		out.Shots = append(out.Shots, sj)
	}
	if v.BestShot != "" && stored[v.BestShot] {
		b := shotLinks(v.BestShot)
		out.Images.Best = &b
	}
	if !gallery {
		return out
	}
	if v.Decision.Known && v.Decision.Name != "" {
		out.Images.Gallery = photoLink(v.Decision.Name)
	}
	for _, c := range v.Decision.TopK {
		if c.Name != "" {
			out.Images.Candidates = append(out.Images.Candidates, candidateImage{Name: c.Name, Photo: photoLink(c.Name)})
		}
	}
	return out
}

type visitsResponse struct {
	Visits []visitJSON `json:"visits"`
	// Next is the before= value for the following (older) page; absent when
	// this page is the last.
	Next string `json:"next,omitempty"`
}

const timeExample = "an RFC 3339 time, e.g. 2026-11-26T08:00:00Z"

// parseVisitQuery reads GET /api/v1/visits' parameters: camera, person,
// known (true or false), since (an RFC 3339 time: visits seen at or after
// it), before (a visit id, the previous page's next: older visits; or an
// RFC 3339 time: visits that started before it) and limit (1..500, default
// 50). An error is an *httpError (400) naming the parameter.
func parseVisitQuery(u *url.URL) (VisitQuery, error) {
	vals, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return VisitQuery{}, errorf(http.StatusBadRequest, "", "malformed query string: %v", err)
	}
	q, err := queryValues(vals, "camera", "person", "known", "since", "before", "limit")
	if err != nil {
		return VisitQuery{}, err
	}
	vq := VisitQuery{Camera: q["camera"], Person: q["person"]}
	for _, k := range []string{"camera", "person"} {
		if len(q[k]) > maxFilterLen {
			return VisitQuery{}, errorf(http.StatusBadRequest, k, "%s: %d bytes, want at most %d", k, len(q[k]), maxFilterLen)
		}
	}
	if vq.Limit, err = limitParam(q, 50, 500); err != nil {
		return VisitQuery{}, err
	}
	if v, ok := q["known"]; ok {
		k, err := strconv.ParseBool(v)
		if err != nil {
			return VisitQuery{}, errorf(http.StatusBadRequest, "known", "known %q: want true or false", v)
		}
		vq.Known = &k
	}
	if v, ok := q["since"]; ok {
		if vq.Since, err = time.Parse(time.RFC3339, v); err != nil {
			return VisitQuery{}, errorf(http.StatusBadRequest, "since", "since %q: want %s", v, timeExample)
		}
	}
	if v, ok := q["before"]; ok {
		switch t, err := time.Parse(time.RFC3339, v); {
		case validID(v):
			vq.Before = v
		case err == nil:
			vq.Until = t
		default:
			return VisitQuery{}, errorf(http.StatusBadRequest, "before", "before %q: want a visit id (26 characters, the next of the previous page) or %s", v, timeExample)
		}
	}
	if !vq.Since.IsZero() && !vq.Until.IsZero() && !vq.Since.Before(vq.Until) {
		return VisitQuery{}, errorf(http.StatusBadRequest, "before", "before %s is not after since %s: no visit can match",
			vq.Until.Format(time.RFC3339), vq.Since.Format(time.RFC3339))
	}
	return vq, nil
}

func (s *Server) listVisits(w http.ResponseWriter, r *http.Request) {
	if s.o.Visits == nil {
		writeError(w, http.StatusServiceUnavailable, "", "no visit history configured")
		return
	}
	vq, err := parseVisitQuery(r.URL)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	visits, err := s.o.Visits.ListVisits(r.Context(), vq)
	if err != nil {
		s.fail(w, r, fmt.Errorf("list visits: %w", err))
		return
	}
	if err := s.audit(r, "visits.list", r.URL.RawQuery, fmt.Sprintf("%d visits", len(visits))); err != nil {
		s.fail(w, r, err)
		return
	}
	stored, err := s.storedShots(r, visits...)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	resp := visitsResponse{Visits: make([]visitJSON, 0, len(visits))}
	for _, v := range visits {
		resp.Visits = append(resp.Visits, visitLinks(v, stored, s.o.Gallery != nil))
	}
	if len(visits) == vq.Limit && len(visits) > 0 {
		resp.Next = visits[len(visits)-1].ID
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) getVisit(w http.ResponseWriter, r *http.Request) {
	if s.o.Visits == nil {
		writeError(w, http.StatusServiceUnavailable, "", "no visit history configured")
		return
	}
	id := r.PathValue("id")
	if !validID(id) {
		writeError(w, http.StatusNotFound, "", fmt.Sprintf("visit %q: not found (not a visit id)", id))
		return
	}
	v, err := s.o.Visits.GetVisit(r.Context(), id)
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, "", fmt.Sprintf("visit %s: not found", id))
		return
	}
	if err != nil {
		s.fail(w, r, fmt.Errorf("visit %s: %w", id, err))
		return
	}
	stored, err := s.storedShots(r, v)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.audit(r, "visit.view", v.ID, ""); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, visitLinks(v, stored, s.o.Gallery != nil))
}

// storedShots looks up which of the visits' shots (and best shots) are in
// the hit history.
func (s *Server) storedShots(r *http.Request, visits ...*face.Visit) (map[string]bool, error) {
	var ids []string
	for _, v := range visits {
		if v.BestShot != "" {
			ids = append(ids, v.BestShot)
		}
		for _, sh := range v.Shots {
			ids = append(ids, sh.HitID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	stored, err := s.o.Visits.HitsStored(r.Context(), ids)
	if err != nil {
		return nil, fmt.Errorf("visits: shots stored: %w", err)
	}
	return stored, nil
}
