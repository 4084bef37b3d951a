package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// apiError is the body of every error response.
type apiError struct {
	Error string `json:"error"`
	// Field names the JSON field, form field or query parameter at fault.
	Field string `json:"field,omitempty"`
}

// httpError is an error with a status and, optionally, the field at fault.
type httpError struct {
	status int
	field  string
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, field, format string, args ...any) *httpError {
	return &httpError{status: status, field: field, msg: fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(true)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		b.Reset()
		b.WriteString(`{"error":"encoding the response failed"}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

func writeError(w http.ResponseWriter, status int, field, msg string) {
	writeJSON(w, status, apiError{Error: msg, Field: field})
}

// fail writes err: an *httpError as it is, a body over the limit as 413, a
// store's ErrNotFound as 404 and ErrInvalid as 400; anything else is logged
// and answered 500 without details.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		writeError(w, he.status, he.field, he.msg)
	case errors.As(err, &mbe):
		writeError(w, http.StatusRequestEntityTooLarge, "", fmt.Sprintf("request body larger than %d bytes", mbe.Limit))
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "", err.Error())
	case errors.Is(err, ErrInvalid):
		writeError(w, http.StatusBadRequest, "", err.Error())
	default:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		writeError(w, http.StatusInternalServerError, "", "internal error (see the daemon's log)")
	}
}

// decodeJSON decodes the body strictly into v: one JSON value, no unknown
// fields, nothing after it.
func decodeJSON(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return errorf(http.StatusUnsupportedMediaType, "", "content type %q: want application/json", ct)
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return errorf(http.StatusBadRequest, "", "malformed JSON: data after the object")
	}
	return nil
}

// jsonError turns a decoding error into a 400 naming the field, or keeps a
// body-size error for fail's 413.
func jsonError(err error) error {
	var mbe *http.MaxBytesError
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.Is(err, io.EOF):
		return errorf(http.StatusBadRequest, "", "malformed JSON: empty body")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errorf(http.StatusBadRequest, "", "malformed JSON: unexpected end of the body")
	case errors.As(err, &se):
		return errorf(http.StatusBadRequest, "", "malformed JSON at byte %d: %v", se.Offset, se)
	case errors.As(err, &te):
		return errorf(http.StatusBadRequest, te.Field, "field %q: want a JSON %s, got %s", te.Field, te.Type, te.Value)
	}
	// encoding/json reports unknown fields only as text: json: unknown field "x"
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if f, err := strconv.Unquote(name); err == nil {
			return errorf(http.StatusBadRequest, f, "unknown field %q", f)
		}
	}
	return errorf(http.StatusBadRequest, "", "malformed JSON: %v", err)
}
