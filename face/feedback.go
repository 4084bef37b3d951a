package face

import (
	"fmt"
	"strings"
)

// Feedback verdicts an operator gives on a sighting (a hit or a visit).
const (
	VerdictConfirm     = "confirm"      // "this is <person>"
	VerdictReject      = "reject"       // "not <person>"
	VerdictNotEnrolled = "not_enrolled" // "not anyone enrolled"
)

// FeedbackError is a verdict that cannot be applied, naming the request
// field at fault ("verdict" or "person").
type FeedbackError struct {
	Field, Msg string
}

func (e *FeedbackError) Error() string { return e.Msg }

// FeedbackTargets are the people a verdict on a sighting decided as m is
// stored for: confirm needs the person; reject defaults to the person m
// named, else its top candidate; not_enrolled takes no person and rejects
// the named person and the top candidate.
func FeedbackTargets(m Match, verdict, person string) ([]string, error) {
	top := ""
	if len(m.TopK) > 0 {
		top = m.TopK[0].Name
	}
	switch verdict {
	case VerdictConfirm:
		if person == "" {
			return nil, &FeedbackError{"person", "confirm needs the person the face is"}
		}
		return []string{person}, nil
	case VerdictReject:
		p := person
		if p == "" {
			p = m.Name
		}
		if p == "" {
			p = top
		}
		if p == "" {
			return nil, &FeedbackError{"person", "reject: the sighting names no one and has no candidate; say who it is not"}
		}
		return []string{p}, nil
	case VerdictNotEnrolled:
		if person != "" {
			return nil, &FeedbackError{"person", "not_enrolled takes no person (it rejects the sighting's candidates)"}
		}
		var out []string
		for _, p := range []string{m.Name, top} {
			if p != "" && (len(out) == 0 || !strings.EqualFold(out[0], p)) {
				out = append(out, p)
			}
		}
		if len(out) == 0 {
			return nil, &FeedbackError{"verdict", "not_enrolled: the sighting has no candidate to reject"}
		}
		return out, nil
	}
	return nil, &FeedbackError{"verdict", fmt.Sprintf("verdict %q: want %s, %s or %s", verdict, VerdictConfirm, VerdictReject, VerdictNotEnrolled)}
}
