package match

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/srdgd/srdgd/face"
)

func cands(sims ...float64) []face.Candidate {
	names := []string{"Ada Lovelace", "Bob", "Carol", "Dan", "Eve", "Fay"}
	out := make([]face.Candidate, len(sims))
	for i, s := range sims {
		out[i] = face.Candidate{PersonID: int64(i + 1), Name: names[i], Similarity: s}
	}
	return out
}

// TestExplain: the sentence and the structured form for every kind of
// decision, from the numbers the decision compared.
func TestExplain(t *testing.T) {
	th := Thresholds{Identify: 0.94, Margin: 0.01, Verify: 0.93}
	cases := []struct {
		name           string
		outcome        string
		topK           []face.Candidate
		shots          int
		override, who  string
		text           string
		indistinct     int
		lead, spread   float64
		closest, runup string
	}{
		{"named", face.OutcomeNamed, cands(0.962, 0.931, 0.90), 0, "", "",
			"Named Ada Lovelace: 0.962 (needs 0.940), lead 0.031 over Bob (needs 0.010).", 1, 0.031, 0, "Ada Lovelace", "Bob"},
		{"named, nobody else", face.OutcomeNamed, cands(0.962), 0, "", "",
			"Named Ada Lovelace: 0.962 (needs 0.940), nobody else searchable.", 1, 0.962, 0, "Ada Lovelace", ""},
		{"below the threshold", face.ReasonBelowThreshold, cands(0.921, 0.85), 0, "", "",
			"Closest: Ada Lovelace, 0.921, below the 0.940 needed.", 1, 0.071, 0, "Ada Lovelace", "Bob"},
		{"below the threshold, everyone alike", face.ReasonBelowThreshold, cands(0.921, 0.918, 0.915, 0.60), 0, "", "",
			"Closest: Ada Lovelace, 0.921, below the 0.940 needed; the top 3 are within 0.006 of each other, no real evidence.", 3, 0.003, 0.006, "Ada Lovelace", "Bob"},
		{"ambiguous pair", face.ReasonAmbiguous, cands(0.951, 0.947, 0.90), 0, "", "",
			"Ada Lovelace, 0.951 (needs 0.940), leads Bob by 0.004, needs 0.010: the two cannot be told apart.", 2, 0.004, 0.004, "Ada Lovelace", "Bob"},
		{"ambiguous five", face.ReasonAmbiguous, cands(0.956, 0.952, 0.948, 0.9475, 0.947), 0, "", "",
			"Ada Lovelace, 0.956 (needs 0.940), leads Bob by 0.004, needs 0.010: the top 5 are within 0.009 of each other, no real evidence.", 5, 0.004, 0.009, "Ada Lovelace", "Bob"},
		{"visit over shots", face.OutcomeNamed, cands(0.97, 0.93), 3, "", "",
			"Named Ada Lovelace: 0.970 (needs 0.940), lead 0.040 over Bob (needs 0.010) (3 shots fused).", 1, 0.04, 0, "Ada Lovelace", "Bob"},
		{"person override", face.OutcomeNamed, cands(0.97, 0.93), 0, face.OverridePerson, "Ada Lovelace",
			"Named Ada Lovelace: 0.970 (needs 0.940), lead 0.040 over Bob (needs 0.010), by the person threshold override for Ada Lovelace.", 1, 0.04, 0, "Ada Lovelace", "Bob"},
		{"empty gallery", face.ReasonEmpty, nil, 0, "", "",
			"Nobody in the gallery is searchable (no enrolled photo has a descriptor of this embedder).", 0, 0, 0, "", ""},
		{"no gallery key", face.ReasonNoGallery, nil, 0, "", "",
			"Not matched: there is no gallery key, so faces are not searched.", 0, 0, 0, "", ""},
		{"search failed", face.ReasonSearchFailed, nil, 2, "", "",
			"Not matched: the search failed on this face.", 0, 0, 0, "", ""},
		{"no descriptor", ReasonNoShots, nil, 0, "", "",
			"Not matched: no shot of this visit could be embedded.", 0, 0, 0, "", ""},
	}
	near := func(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := Explain(tc.outcome, tc.topK, th, tc.shots, tc.override, tc.who)
			if e.Text != tc.text {
				t.Errorf("text\n got %q\nwant %q", e.Text, tc.text)
			}
			if e.Indistinct != tc.indistinct || !near(e.Lead, tc.lead) || !near(e.Spread, tc.spread) {
				t.Errorf("indistinct %d lead %v spread %v, want %d %v %v", e.Indistinct, e.Lead, e.Spread, tc.indistinct, tc.lead, tc.spread)
			}
			if e.Threshold != th.Identify || e.MarginNeeded != th.Margin || e.Outcome != tc.outcome || e.Override != tc.override {
				t.Errorf("structured %+v", e)
			}
			name := func(c *face.Candidate) string {
				if c == nil {
					return ""
				}
				return c.Name
			}
			if name(e.Closest) != tc.closest || name(e.RunnerUp) != tc.runup {
				t.Errorf("closest %q runner-up %q, want %q %q", name(e.Closest), name(e.RunnerUp), tc.closest, tc.runup)
			}
			// the structured form alone renders the same sentence
			b, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			var back face.Explanation
			if err := json.Unmarshal(b, &back); err != nil || back.Render() != e.Text {
				t.Errorf("re-rendered %q (%v)", back.Render(), err)
			}
		})
	}
}

// TestExplainRedacted: without names (a redacted copy) the sentence keeps
// the numbers and names nobody.
func TestExplainRedacted(t *testing.T) {
	e := Explain(face.ReasonAmbiguous, cands(0.951, 0.947), Thresholds{Identify: 0.94, Margin: 0.01}, 0, "", "")
	e.Closest.Name, e.RunnerUp.Name = "", ""
	want := "The closest candidate, 0.951 (needs 0.940), leads the runner-up by 0.004, needs 0.010: the two cannot be told apart."
	if got := e.Render(); got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// TestNewHitExplains: NewHit's explanation follows its decision, for a
// searched face and for one that was not searched.
func TestNewHitExplains(t *testing.T) {
	th := Thresholds{Identify: 0.94, Margin: 0.02}
	sh := &face.Shot{Probe: &face.Probe{Camera: "door"}}
	cases := []struct {
		name string
		r    *SearchResult
		why  string
		want string
	}{
		{"named", &SearchResult{Candidates: []Candidate{{PersonID: 1, Name: "Ada", Similarity: 0.97}, {PersonID: 2, Name: "Bob", Similarity: 0.90}},
			Match: &Candidate{PersonID: 1, Name: "Ada", Similarity: 0.97}}, "",
			"Named Ada: 0.970 (needs 0.940), lead 0.070 over Bob (needs 0.020)."},
		{"ambiguous", &SearchResult{Candidates: []Candidate{{PersonID: 1, Name: "Ada", Similarity: 0.95}, {PersonID: 2, Name: "Bob", Similarity: 0.94}},
			Reason: face.ReasonAmbiguous}, "",
			"Ada, 0.950 (needs 0.940), leads Bob by 0.010, needs 0.020: the two cannot be told apart."},
		{"not searched", nil, face.ReasonNoGallery, "Not matched: there is no gallery key, so faces are not searched."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHit(sh, tc.r, tc.why, th, nil, time.Now())
			if h.Match.Explanation.Text != tc.want {
				t.Errorf("got %q\nwant %q", h.Match.Explanation.Text, tc.want)
			}
		})
	}
}
