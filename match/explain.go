package match

import (
	"github.com/srdgd/srdgd/face"
)

// Explain builds the explanation of a decision: outcome is
// face.OutcomeNamed or the unknown reason; topK are the candidates best
// first as the decision saw them; th the thresholds it was held to; shots
// the descriptors a visit fused (0 for a hit); override and overrideName
// the threshold override that set th (face.OverridePerson,
// face.OverrideCamera; empty: none).
//
// Candidates the closest does not lead by th.Margin cannot be told apart
// from it by the decision's own rule; they are counted as Indistinct.
func Explain(outcome string, topK []face.Candidate, th Thresholds, shots int, override, overrideName string) face.Explanation {
	e := face.Explanation{Outcome: outcome, Threshold: th.Identify, MarginNeeded: th.Margin, Shots: shots,
		Override: override, OverrideName: overrideName}
	if outcome == face.ReasonNoGallery || outcome == face.ReasonSearchFailed || outcome == ReasonNoShots || len(topK) == 0 {
		// no candidate to speak of
		e.Text = e.Render()
		return e
	}
	top := topK[0]
	e.Closest = &top
	e.Lead = top.Similarity
	e.Indistinct = 1
	if len(topK) > 1 {
		r := topK[1]
		e.RunnerUp = &r
		e.Lead = top.Similarity - r.Similarity
		for _, c := range topK[1:] {
			if top.Similarity-c.Similarity >= th.Margin {
				break
			}
			e.Indistinct++
			e.Spread = top.Similarity - c.Similarity
		}
	}
	e.Text = e.Render()
	return e
}
