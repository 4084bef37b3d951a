package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/srdgd/srdgd/face"
)

// hitImages are the image links of a hit.
type hitImages struct {
	LR      string `json:"lr"`
	SR      string `json:"sr"`
	Preview string `json:"preview"`
	// Gallery is the matched person's enrolled photo (known hits only).
	Gallery string `json:"gallery,omitempty"`
	// Closest is the enrolled photo of the closest candidate (the matched
	// person when known), for every hit that has one: what the
	// explanation compared the face with.
	Closest string `json:"closest,omitempty"`
}

// hitJSON is a hit as the API returns it: face.Hit's JSON plus links.
type hitJSON struct {
	*face.Hit
	Images hitImages `json:"images"`
}

// withLinks adds the image links; the closest candidate's photo only when
// that person is enrolled (enrolled nil: no gallery to serve it).
func (s *Server) withLinks(h *face.Hit, enrolled map[string]bool) hitJSON {
	base := "/api/v1/hits/" + url.PathEscape(h.ID)
	im := hitImages{LR: base + "/lr.png", SR: base + "/sr.jpg", Preview: base + "/preview.jpg"}
	if h.Match.Known && h.Match.Name != "" {
		im.Gallery = photoURL(h.Match.Name)
	}
	if c := closestCandidate(h.Match); c != "" && enrolled[c] {
		im.Closest = photoURL(c)
	}
	return hitJSON{Hit: h, Images: im}
}

// enrolled is the set of enrolled names whose photos the gallery serves;
// nil without a gallery or when it cannot say (then no closest photo is
// linked rather than a link that may 404).
func (s *Server) enrolled(ctx context.Context) map[string]bool {
	if s.o.Gallery == nil {
		return nil
	}
	people, err := s.o.Gallery.People(ctx)
	if err != nil {
		return nil
	}
	out := make(map[string]bool, len(people))
	for _, p := range people {
		out[p.Name] = true
	}
	return out
}

func photoURL(name string) string {
	return "/api/v1/gallery/" + url.PathEscape(name) + "/photo.jpg"
}

// closestCandidate is the name of the closest candidate of a decision
// ("" when there is none).
func closestCandidate(m face.Match) string {
	switch {
	case m.Known && m.Name != "":
		return m.Name
	case m.Explanation.Closest != nil:
		return m.Explanation.Closest.Name
	case len(m.TopK) > 0:
		return m.TopK[0].Name
	}
	return ""
}

type hitsResponse struct {
	Hits []hitJSON `json:"hits"`
	// Next is the before= value for the following (older) page; absent when
	// this page is the last.
	Next string `json:"next,omitempty"`
}

// validID reports whether id looks like a face.NewID (26 characters of
// Crockford base32).
func validID(id string) bool {
	if len(id) != 26 {
		return false
	}
	for _, c := range id {
		if !strings.ContainsRune("0123456789ABCDEFGHJKMNPQRSTVWXYZ", c) {
			return false
		}
	}
	return true
}

func (s *Server) hitQuery(r *http.Request) (HitQuery, error) {
	q, err := query(r, "camera", "person", "known", "before", "since", "limit")
	if err != nil {
		return HitQuery{}, err
	}
	hq := HitQuery{Camera: q["camera"], Person: q["person"], Before: q["before"]}
	if hq.Limit, err = limitParam(q, 50, 500); err != nil {
		return HitQuery{}, err
	}
	if v, ok := q["known"]; ok {
		k, err := strconv.ParseBool(v)
		if err != nil {
			return HitQuery{}, errorf(http.StatusBadRequest, "known", "known %q: want true or false", v)
		}
		hq.Known = &k
	}
	if hq.Before != "" && !validID(hq.Before) {
		return HitQuery{}, errorf(http.StatusBadRequest, "before", "before %q: want a hit id (26 characters)", hq.Before)
	}
	if v, ok := q["since"]; ok {
		if hq.Since, err = time.Parse(time.RFC3339, v); err != nil {
			return HitQuery{}, errorf(http.StatusBadRequest, "since", "since %q: want an RFC 3339 time, e.g. 2026-11-26T08:00:00Z", v)
		}
	}
	return hq, nil
}

func (s *Server) listHits(w http.ResponseWriter, r *http.Request) {
	if s.o.Hits == nil {
		writeError(w, http.StatusServiceUnavailable, "", "no hit history configured")
		return
	}
	hq, err := s.hitQuery(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	hits, err := s.o.Hits.ListHits(r.Context(), hq)
	if err != nil {
		s.fail(w, r, fmt.Errorf("list hits: %w", err))
		return
	}
	if err := s.audit(r, "hits.list", r.URL.RawQuery, fmt.Sprintf("%d hits", len(hits))); err != nil {
		s.fail(w, r, err)
		return
	}
	resp := hitsResponse{Hits: make([]hitJSON, 0, len(hits))}
	enrolled := s.enrolled(r.Context())
	for _, h := range hits {
		resp.Hits = append(resp.Hits, s.withLinks(h, enrolled))
	}
	if len(hits) == hq.Limit && len(hits) > 0 {
		resp.Next = hits[len(hits)-1].ID
	}
	writeJSON(w, http.StatusOK, resp)
}

// hit fetches the hit named by the path, or answers the request.
func (s *Server) hit(w http.ResponseWriter, r *http.Request) *face.Hit {
	if s.o.Hits == nil {
		writeError(w, http.StatusServiceUnavailable, "", "no hit history configured")
		return nil
	}
	id := r.PathValue("id")
	if !validID(id) {
		writeError(w, http.StatusNotFound, "", fmt.Sprintf("hit %q: not found (not a hit id)", id))
		return nil
	}
	h, err := s.o.Hits.GetHit(r.Context(), id)
	if err != nil {
		s.fail(w, r, fmt.Errorf("hit %s: %w", id, err))
		return nil
	}
	return h
}

func (s *Server) getHit(w http.ResponseWriter, r *http.Request) {
	h := s.hit(w, r)
	if h == nil {
		return
	}
	if err := s.audit(r, "hit.view", h.ID, ""); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.withLinks(h, s.enrolled(r.Context())))
}

func (s *Server) hitImage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("image")
	var ct string
	switch name {
	case "lr.png":
		ct = "image/png"
	case "sr.jpg", "preview.jpg":
		ct = "image/jpeg"
	default:
		writeError(w, http.StatusNotFound, "", fmt.Sprintf("no hit image %q (lr.png, sr.jpg or preview.jpg)", name))
		return
	}
	h := s.hit(w, r)
	if h == nil {
		return
	}
	b := map[string][]byte{"lr.png": h.LRPNG, "sr.jpg": h.SRJPEG, "preview.jpg": h.PreviewJPEG}[name]
	if len(b) == 0 {
		writeError(w, http.StatusNotFound, "", fmt.Sprintf("hit %s has no %s", h.ID, name))
		return
	}
	if err := s.audit(r, "hit.image", h.ID, name); err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}
