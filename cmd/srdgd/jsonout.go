package main

import (
	"image"
	"time"

	"github.com/srdgd/srdgd/match"
)

// The --json documents of the gallery commands: snake_case keys, lists
// never null, no descriptor values unless asked for (--embeddings: they
// are biometric data). match's types stay free of output concerns.

type personJSON struct {
	ID        int64  `json:"id"`
	Name      string `json:"name"`
	Watchlist bool   `json:"watchlist"`
	// Attributes are the operator-forced ones only ({} when none).
	Attributes map[string]bool `json:"attributes"`
	Created    time.Time       `json:"created"`
	Photos     int             `json:"photos"`
	// Searchable is the photos with a descriptor of the configured
	// embedder's model; absent when the models could not be loaded.
	Searchable *int `json:"searchable,omitempty"`
}

func personOut(p match.Person, searchable bool) personJSON {
	out := personJSON{ID: p.ID, Name: p.Name, Watchlist: p.Watchlist, Attributes: map[string]bool{}, Created: p.Created, Photos: p.Images}
	for name, v := range map[string]*bool{"male": p.Attributes.Male, "glasses": p.Attributes.Glasses, "no_beard": p.Attributes.NoBeard} {
		if v != nil {
			out.Attributes[name] = *v
		}
	}
	if searchable {
		n := p.Searchable
		out.Searchable = &n
	}
	return out
}

type candidateJSON struct {
	PersonID   int64   `json:"person_id"`
	Name       string  `json:"name"`
	Watchlist  bool    `json:"watchlist"`
	Similarity float64 `json:"similarity"`
	ImageID    int64   `json:"image_id"`
}

func candidateOut(c match.Candidate) candidateJSON {
	return candidateJSON{PersonID: c.PersonID, Name: c.Name, Watchlist: c.Watchlist, Similarity: c.Similarity, ImageID: c.ImageID}
}

type thresholdsJSON struct {
	Identify float64 `json:"identify"`
	Margin   float64 `json:"margin"`
	Verify   float64 `json:"verify"`
}

// box is x0, y0, x1, y1 in the photo's pixels.
func box(r image.Rectangle) [4]int { return [4]int{r.Min.X, r.Min.Y, r.Max.X, r.Max.Y} }

type searchJSON struct {
	// Known is whether someone was identified; Match is then that candidate
	// (null when unknown), Reason and Detail say why not.
	Known      bool            `json:"known"`
	Match      *candidateJSON  `json:"match"`
	Reason     string          `json:"reason,omitempty"`
	Detail     string          `json:"detail,omitempty"`
	Candidates []candidateJSON `json:"candidates"`
	Thresholds thresholdsJSON  `json:"thresholds"`
	Model      string          `json:"model"`
	Face       [4]int          `json:"face"`
	// Scale and SR describe the super-resolution run of --scale.
	Scale     int       `json:"scale,omitempty"`
	SR        string    `json:"sr,omitempty"`
	Embedding []float32 `json:"embedding,omitempty"`
}

func searchOut(r *match.SearchResult, scale int, note string, embeddings bool) searchJSON {
	out := searchJSON{Known: r.Match != nil, Reason: r.Reason, Detail: r.Detail, Candidates: []candidateJSON{}, Model: r.Model,
		Thresholds: thresholdsJSON{r.Thresholds.Identify, r.Thresholds.Margin, r.Thresholds.Verify}, Face: box(r.Face), Scale: scale, SR: note}
	if r.Match != nil {
		m := candidateOut(*r.Match)
		out.Match = &m
		out.Reason, out.Detail = "", ""
	}
	for _, c := range r.Candidates {
		out.Candidates = append(out.Candidates, candidateOut(c))
	}
	if embeddings && r.Embedding != nil {
		out.Embedding = r.Embedding.Vector
	}
	return out
}

type verifyJSON struct {
	Person     string  `json:"person"`
	Match      bool    `json:"match"`
	Similarity float64 `json:"similarity"`
	Threshold  float64 `json:"threshold"`
	ImageID    int64   `json:"image_id"`
	Face       [4]int  `json:"face"`
}

func verifyOut(r *match.VerifyResult) verifyJSON {
	return verifyJSON{Person: r.Person, Match: r.Match, Similarity: r.Similarity, Threshold: r.Threshold, ImageID: r.ImageID, Face: box(r.Face)}
}

type checkJSON struct {
	OK         bool     `json:"ok"`
	People     int      `json:"people"`
	Photos     int      `json:"photos"`
	Embeddings int      `json:"embeddings"`
	Problems   []string `json:"problems"`
}

func checkOut(r *match.CheckReport) checkJSON {
	return checkJSON{OK: r.OK(), People: r.People, Photos: r.Images, Embeddings: r.Embeddings, Problems: append([]string{}, r.Problems...)}
}

type exportJSON struct {
	People  int    `json:"people"`
	Photos  int    `json:"photos"`
	Warning string `json:"warning"`
}

type rejectedJSON struct {
	Source string `json:"source"`
	Error  string `json:"error"`
}

type importJSON struct {
	People   int            `json:"people"`
	Created  int            `json:"created"`
	Photos   int            `json:"photos"`
	Rejected []rejectedJSON `json:"rejected"`
}

func importOut(r *match.ImportReport) importJSON {
	out := importJSON{People: r.People, Created: r.Created, Photos: r.Images, Rejected: []rejectedJSON{}}
	for _, p := range r.Photos {
		msg := ""
		if p.Err != nil {
			msg = p.Err.Error()
		}
		out.Rejected = append(out.Rejected, rejectedJSON{Source: p.Source, Error: msg})
	}
	return out
}
