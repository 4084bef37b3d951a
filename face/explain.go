package face

import (
	"fmt"
	"strings"
)

// Outcomes of a decision (Explanation.Outcome): OutcomeNamed, or the
// reason the face is unknown (the Reason constants, and the visit's
// "no_descriptor").
const OutcomeNamed = "named"

// Override scopes (Explanation.Override): the threshold override that set
// the bar a decision was held to.
const (
	OverridePerson = "person"
	OverrideCamera = "camera"
)

// Explanation says why a hit's or a visit's decision came out as it did:
// the closest candidate's score against the threshold and its lead over the
// runner-up against the margin needed, and how many of the top candidates
// cannot be told apart. Text is the one plain sentence the page, MQTT and
// the API show; the other fields are the same facts for machines.
type Explanation struct {
	Text string `json:"text"`
	// Outcome is OutcomeNamed or the unknown reason (Match.Reason,
	// Decision.Reason).
	Outcome string `json:"outcome"`
	// Closest and RunnerUp are the two best candidates; absent when there
	// are none (or one).
	Closest  *Candidate `json:"closest,omitempty"`
	RunnerUp *Candidate `json:"runner_up,omitempty"`
	// Threshold is the similarity the closest candidate needed;
	// MarginNeeded the lead over the runner-up it needed; Lead the lead it
	// had (its whole similarity when nobody else is searchable, as the
	// decision compares it).
	Threshold    float64 `json:"threshold"`
	MarginNeeded float64 `json:"margin_needed"`
	Lead         float64 `json:"lead"`
	// Indistinct is how many of the top candidates the closest does not
	// lead by MarginNeeded, itself included: 1 when it stands apart, 0
	// when there is no candidate. Spread is the similarity between the
	// closest and the last of them.
	Indistinct int     `json:"indistinct"`
	Spread     float64 `json:"spread"`
	// Shots is how many shots a visit's decision fused (0 for a hit).
	Shots int `json:"shots,omitempty"`
	// Override is the scope of the threshold override that set Threshold
	// and MarginNeeded (OverridePerson, OverrideCamera; OverrideName names
	// whose); empty when the configured (or, for visits, calibrated)
	// thresholds decided.
	Override     string `json:"override,omitempty"`
	OverrideName string `json:"override_name,omitempty"`
}

// noEvidence is the size of a group of indistinct candidates from which
// the sentence says that the ranking carries no real evidence: with three
// or more people equally close the face resembles everyone, not someone.
const noEvidence = 3

// Render writes e's sentence from its structured fields; an empty name
// (a redacted copy) is written as "the closest candidate" or "the runner-up".
func (e Explanation) Render() string {
	f := func(x float64) string { return fmt.Sprintf("%.3f", x) }
	closest, runner := "the closest candidate", "the runner-up"
	if e.Closest != nil && e.Closest.Name != "" {
		closest = e.Closest.Name
	}
	if e.RunnerUp != nil && e.RunnerUp.Name != "" {
		runner = e.RunnerUp.Name
	}
	group := ""
	switch {
	case e.Indistinct >= noEvidence:
		group = fmt.Sprintf("the top %d are within %s of each other, no real evidence", e.Indistinct, f(e.Spread))
	case e.Indistinct == 2:
		group = "the two cannot be told apart"
	}
	var s string
	switch e.Outcome {
	case OutcomeNamed:
		s = fmt.Sprintf("Named %s: %s (needs %s)", closest, f(closestSim(e)), f(e.Threshold))
		if e.RunnerUp != nil {
			s += fmt.Sprintf(", lead %s over %s (needs %s)", f(e.Lead), runner, f(e.MarginNeeded))
		} else {
			s += ", nobody else searchable"
		}
	case ReasonBelowThreshold:
		s = fmt.Sprintf("Closest: %s, %s, below the %s needed", closest, f(closestSim(e)), f(e.Threshold))
		if e.Indistinct >= noEvidence {
			s += "; " + group
		}
	case ReasonAmbiguous:
		first := closest
		if e.Closest == nil || e.Closest.Name == "" {
			first = "The closest candidate"
		}
		s = fmt.Sprintf("%s, %s (needs %s), leads %s by %s, needs %s", first, f(closestSim(e)), f(e.Threshold),
			runner, f(e.Lead), f(e.MarginNeeded))
		if group != "" {
			s += ": " + group
		}
	case ReasonEmpty:
		s = "Nobody in the gallery is searchable (no enrolled photo has a descriptor of this embedder)"
	case ReasonNoGallery:
		s = "Not matched: there is no gallery key, so faces are not searched"
	case ReasonSearchFailed:
		s = "Not matched: the search failed on this face"
	case "no_descriptor":
		s = "Not matched: no shot of this visit could be embedded"
	default:
		s = "Not matched (" + e.Outcome + ")"
	}
	if e.Override != "" {
		who := e.OverrideName
		if who == "" {
			who = "this " + e.Override
		}
		s += fmt.Sprintf(", by the %s threshold override for %s", e.Override, who)
	}
	if e.Shots > 1 && e.Outcome != ReasonNoGallery && e.Outcome != ReasonSearchFailed {
		s += fmt.Sprintf(" (%d shots fused)", e.Shots)
	}
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

func closestSim(e Explanation) float64 {
	if e.Closest == nil {
		return 0
	}
	return e.Closest.Similarity
}
