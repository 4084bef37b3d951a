package httpapi

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
)

const (
	// maxPhotos per enrolment request.
	maxPhotos = 32
	// maxNameBytes bounds the name field (200 characters of up to 4 bytes).
	maxNameBytes = 800
)

func (s *Server) gallery(w http.ResponseWriter) Gallery {
	if s.o.Gallery == nil {
		writeError(w, http.StatusServiceUnavailable, "", "no gallery configured")
	}
	return s.o.Gallery
}

func (s *Server) listGallery(w http.ResponseWriter, r *http.Request) {
	g := s.gallery(w)
	if g == nil {
		return
	}
	people, err := g.People(r.Context())
	if err != nil {
		s.fail(w, r, fmt.Errorf("list the gallery: %w", err))
		return
	}
	if people == nil {
		people = []Person{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"people": people})
}

type enrolResponse struct {
	Error    string        `json:"error,omitempty"`
	Name     string        `json:"name"`
	Enrolled int           `json:"enrolled"`
	Photos   []PhotoResult `json:"photos"`
}

// readEnrolment reads a multipart/form-data body: one "name" field and one
// or more "photo" files. Other fields are refused by name.
func readEnrolment(r *http.Request) (string, []Photo, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return "", nil, errorf(http.StatusUnsupportedMediaType, "", "content type %q: want multipart/form-data with a name and photo files", r.Header.Get("Content-Type"))
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return "", nil, errorf(http.StatusBadRequest, "", "multipart body: %v", err)
	}
	var name string
	var haveName bool
	var photos []Photo
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", nil, partError(err, "")
		}
		field := part.FormName()
		switch field {
		case "name":
			if haveName {
				return "", nil, errorf(http.StatusBadRequest, "name", "name given twice")
			}
			b, err := io.ReadAll(io.LimitReader(part, maxNameBytes+1))
			if err != nil {
				return "", nil, partError(err, "name")
			}
			if len(b) > maxNameBytes {
				return "", nil, errorf(http.StatusBadRequest, "name", "name longer than %d bytes", maxNameBytes)
			}
			name, haveName = string(b), true
		case "photo":
			if len(photos) == maxPhotos {
				return "", nil, errorf(http.StatusBadRequest, "photo", "more than %d photos in one request", maxPhotos)
			}
			b, err := io.ReadAll(part)
			if err != nil {
				return "", nil, partError(err, "photo")
			}
			src := path.Base(strings.ReplaceAll(part.FileName(), `\`, "/"))
			if src == "." || src == "/" || src == "" {
				src = "photo-" + strconv.Itoa(len(photos)+1)
			}
			photos = append(photos, Photo{Source: src, Data: b})
		default:
			return "", nil, errorf(http.StatusBadRequest, field, "unknown form field %q (want name and photo)", field)
		}
		part.Close()
	}
	if !haveName || name == "" {
		return "", nil, errorf(http.StatusBadRequest, "name", "name is required")
	}
	if len(photos) == 0 {
		return "", nil, errorf(http.StatusBadRequest, "photo", "at least one photo is required")
	}
	return name, photos, nil
}

// partError keeps a body-size error for 413, else a 400.
func partError(err error, field string) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err
	}
	return errorf(http.StatusBadRequest, field, "multipart body: %v", err)
}

func (s *Server) enrol(w http.ResponseWriter, r *http.Request) {
	g := s.gallery(w)
	if g == nil {
		return
	}
	name, photos, err := readEnrolment(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := g.Enrol(r.Context(), name, photos)
	if errors.Is(err, ErrInvalid) {
		// the name was refused: recorded quoted and bounded, as it came
		if aerr := s.audit(r, "gallery.add.failed", strconv.Quote(name[:min(len(name), 200)]), err.Error()); aerr != nil {
			s.fail(w, r, aerr)
			return
		}
		writeError(w, http.StatusBadRequest, "name", err.Error())
		return
	}
	resp := enrolResponse{Name: name, Photos: res}
	for _, p := range res {
		if p.Result == PhotoEnrolled {
			resp.Enrolled++
		}
	}
	// photos enrolled before a failure stay enrolled; an enrolment that
	// added nothing is recorded as failed, with why
	if resp.Enrolled > 0 {
		detail := fmt.Sprintf("%d of %d photos enrolled", resp.Enrolled, len(photos))
		if aerr := s.audit(r, "gallery.add", name, detail); aerr != nil {
			s.fail(w, r, aerr)
			return
		}
	} else {
		if aerr := s.audit(r, "gallery.add.failed", name, enrolFailure(res, err, len(photos))); aerr != nil {
			s.fail(w, r, aerr)
			return
		}
	}
	if err != nil {
		s.fail(w, r, fmt.Errorf("enrol %q: %w", name, err))
		return
	}
	if resp.Photos == nil {
		resp.Photos = []PhotoResult{}
	}
	status := http.StatusCreated
	if resp.Enrolled == 0 {
		status = http.StatusUnprocessableEntity
		resp.Error = "no photo was enrolled"
	}
	writeJSON(w, status, resp)
}

// enrolFailure says why no photo of an enrolment was enrolled: the error,
// or each photo's result.
func enrolFailure(res []PhotoResult, err error, photos int) string {
	if err != nil {
		return fmt.Sprintf("0 of %d photos enrolled: %v", photos, err)
	}
	why := make([]string, 0, len(res))
	for _, p := range res {
		w := p.Source + ": " + p.Result
		if p.Error != "" {
			w += " (" + p.Error + ")"
		}
		why = append(why, w)
	}
	return fmt.Sprintf("0 of %d photos enrolled: %s", photos, strings.Join(why, "; "))
}

func (s *Server) removePerson(w http.ResponseWriter, r *http.Request) {
	g := s.gallery(w)
	if g == nil {
		return
	}
	name := r.PathValue("name")
	if err := g.Remove(r.Context(), name); err != nil {
		s.fail(w, r, fmt.Errorf("remove %q: %w", name, err))
		return
	}
	if err := s.audit(r, "gallery.remove", name, ""); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) personPhoto(w http.ResponseWriter, r *http.Request) {
	g := s.gallery(w)
	if g == nil {
		return
	}
	name := r.PathValue("name")
	b, err := g.PhotoJPEG(r.Context(), name)
	if err != nil {
		s.fail(w, r, fmt.Errorf("photo of %q: %w", name, err))
		return
	}
	if err := s.audit(r, "gallery.photo", name, ""); err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}
