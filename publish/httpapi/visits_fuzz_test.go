package httpapi

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"
)

// FuzzVisitQuery feeds arbitrary query strings to the parser of GET
// /api/v1/visits: it never panics; it refuses with a 400 naming one of the
// request's parameters (or none, for a malformed query string), or it
// returns a query whose every field is in range; and a parsed query,
// written back as parameters, parses to the same query.
func FuzzVisitQuery(f *testing.F) {
	for _, s := range []string{"", "camera=door", "person=Zo%C3%AB+Quinn&known=true", "known=0&limit=500",
		"before=01JDTW6ZX8B5C7D2E3F4G5H6J7", "before=2026-11-26T08:00:00Z&since=2026-11-25T08:00:00+02:00",
		"limit=0", "limit=99999999999999999999", "since=x", "camera=a&camera=b", "%zz", "person=" + string(make([]byte, 300)),
		";", "known=maybe", "before=yesterday", "since=2026-11-26T09:00:00Z&before=2026-11-26T08:00:00Z"} {
		f.Add(s)
	}
	allowed := []string{"camera", "person", "known", "since", "before", "limit"}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := parseVisitQuery(&url.URL{RawQuery: raw})
		if err != nil {
			var he *httpError
			if !errors.As(err, &he) || he.status != http.StatusBadRequest || he.msg == "" {
				t.Fatalf("%q: %v, want a 400 with a message", raw, err)
			}
			// a malformed query string has no parameters to name; else the
			// field is one of the request's (a parameter may be named "")
			vals, perr := url.ParseQuery(raw)
			if perr == nil {
				if _, given := vals[he.field]; !given {
					t.Fatalf("%q: the error names %q, which the request does not have", raw, he.field)
				}
			}
			return
		}
		if q.Limit < 1 || q.Limit > 500 || (q.Before != "" && !validID(q.Before)) ||
			len(q.Camera) > maxFilterLen || len(q.Person) > maxFilterLen ||
			(!q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until)) {
			t.Fatalf("%q: out of range: %+v", raw, q)
		}
		vals, _ := url.ParseQuery(raw)
		for k := range vals {
			if !slices.Contains(allowed, k) {
				t.Fatalf("%q: parameter %q accepted", raw, k)
			}
		}
		// written back, the query parses to itself
		back := url.Values{}
		if q.Camera != "" {
			back.Set("camera", q.Camera)
		}
		if q.Person != "" {
			back.Set("person", q.Person)
		}
		if q.Known != nil {
			back.Set("known", strconv.FormatBool(*q.Known))
		}
		if !q.Since.IsZero() {
			back.Set("since", q.Since.Format(time.RFC3339Nano))
		}
		switch {
		case q.Before != "" && !q.Until.IsZero():
			t.Fatalf("%q: both a before id and a before time", raw)
		case q.Before != "":
			back.Set("before", q.Before)
		case !q.Until.IsZero():
			back.Set("before", q.Until.Format(time.RFC3339Nano))
		}
		back.Set("limit", strconv.Itoa(q.Limit))
		q2, err := parseVisitQuery(&url.URL{RawQuery: back.Encode()})
		if err != nil {
			t.Fatalf("%q: written back as %q: %v", raw, back.Encode(), err)
		}
		same := q.Camera == q2.Camera && q.Person == q2.Person && q.Before == q2.Before && q.Limit == q2.Limit &&
			q.Since.Equal(q2.Since) && q.Until.Equal(q2.Until) && (q.Known == nil) == (q2.Known == nil) &&
			(q.Known == nil || *q.Known == *q2.Known)
		if !same {
			t.Fatalf("%q: %+v, written back as %q: %+v", raw, q, back.Encode(), q2)
		}
	})
}
