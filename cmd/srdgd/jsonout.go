package main

import (
	"image"

	"github.com/srdgd/srdgd/match"
)

// The --json documents of the gallery commands: snake_case keys, lists
// never null, no descriptor values unless asked for (--embeddings: they
// are biometric data). Where a match type's JSON is the document (match.Candidate,
// match.ExportReport, face.Person) it is used as it is.

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
	Known      bool              `json:"known"`
	Match      *match.Candidate  `json:"match"`
	Reason     string            `json:"reason,omitempty"`
	Detail     string            `json:"detail,omitempty"`
	Candidates []match.Candidate `json:"candidates"`
	Thresholds thresholdsJSON    `json:"thresholds"`
	Model      string            `json:"model"`
	Face       [4]int            `json:"face"`
	// Scale and SR describe the super-resolution run of --scale.
	Scale     int       `json:"scale,omitempty"`
	SR        string    `json:"sr,omitempty"`
	Embedding []float32 `json:"embedding,omitempty"`
}

func searchOut(r *match.SearchResult, scale int, note string, embeddings bool) searchJSON {
	out := searchJSON{Known: r.Match != nil, Reason: r.Reason, Detail: r.Detail, Candidates: append([]match.Candidate{}, r.Candidates...), Model: r.Model,
		Thresholds: thresholdsJSON{r.Thresholds.Identify, r.Thresholds.Margin, r.Thresholds.Verify}, Face: box(r.Face), Scale: scale, SR: note}
	if r.Match != nil {
		out.Match, out.Reason, out.Detail = r.Match, "", ""
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
