package app

import (
	"image"

	"github.com/srdgd/srdgd/match"
)

// The JSON documents of the gallery commands (`srdgd gallery ... --json`,
// README "Gallery"): snake_case keys, lists never null, no descriptor
// values unless asked for (they are biometric data). Where a match type's
// JSON is the document (match.Candidate, match.ExportReport, face.Person:
// PersonDoc) it is used as it is.

// ThresholdsDoc are the thresholds a search decided with.
type ThresholdsDoc struct {
	Identify float64 `json:"identify"`
	Margin   float64 `json:"margin"`
	Verify   float64 `json:"verify"`
}

// boxDoc is x0, y0, x1, y1 in the photo's pixels.
func boxDoc(r image.Rectangle) [4]int { return [4]int{r.Min.X, r.Min.Y, r.Max.X, r.Max.Y} }

// SearchDoc is `gallery search --json`.
type SearchDoc struct {
	// Known is whether someone was identified; Match is then that candidate
	// (null when unknown), Reason and Detail say why not.
	Known      bool              `json:"known"`
	Match      *match.Candidate  `json:"match"`
	Reason     string            `json:"reason,omitempty"`
	Detail     string            `json:"detail,omitempty"`
	Candidates []match.Candidate `json:"candidates"`
	Thresholds ThresholdsDoc     `json:"thresholds"`
	Model      string            `json:"model"`
	Face       [4]int            `json:"face"`
	// Scale and SR describe the super-resolution run of --scale.
	Scale     int       `json:"scale,omitempty"`
	SR        string    `json:"sr,omitempty"`
	Embedding []float32 `json:"embedding,omitempty"`
}

// NewSearchDoc documents a search (scale and note: the SR run of --scale;
// embeddings: include the probe's descriptor).
func NewSearchDoc(r *match.SearchResult, scale int, note string, embeddings bool) SearchDoc {
	out := SearchDoc{Known: r.Match != nil, Reason: r.Reason, Detail: r.Detail, Candidates: append([]match.Candidate{}, r.Candidates...), Model: r.Model,
		Thresholds: ThresholdsDoc{r.Thresholds.Identify, r.Thresholds.Margin, r.Thresholds.Verify}, Face: boxDoc(r.Face), Scale: scale, SR: note}
	if r.Match != nil {
		out.Match, out.Reason, out.Detail = r.Match, "", ""
	}
	if embeddings && r.Embedding != nil {
		out.Embedding = r.Embedding.Vector
	}
	return out
}

// VerifyDoc is `gallery verify --json`.
type VerifyDoc struct {
	Person     string  `json:"person"`
	Match      bool    `json:"match"`
	Similarity float64 `json:"similarity"`
	Threshold  float64 `json:"threshold"`
	ImageID    int64   `json:"image_id"`
	Face       [4]int  `json:"face"`
}

// NewVerifyDoc documents a verification.
func NewVerifyDoc(r *match.VerifyResult) VerifyDoc {
	return VerifyDoc{Person: r.Person, Match: r.Match, Similarity: r.Similarity, Threshold: r.Threshold, ImageID: r.ImageID, Face: boxDoc(r.Face)}
}

// CheckDoc is `gallery check --json`.
type CheckDoc struct {
	OK         bool     `json:"ok"`
	People     int      `json:"people"`
	Photos     int      `json:"photos"`
	Embeddings int      `json:"embeddings"`
	Problems   []string `json:"problems"`
}

// NewCheckDoc documents an integrity check.
func NewCheckDoc(r *match.CheckReport) CheckDoc {
	return CheckDoc{OK: r.OK(), People: r.People, Photos: r.Images, Embeddings: r.Embeddings, Problems: append([]string{}, r.Problems...)}
}

// RejectedDoc is a photo an import rejected.
type RejectedDoc struct {
	Source string `json:"source"`
	Error  string `json:"error"`
}

// ImportDoc is `gallery import --json`.
type ImportDoc struct {
	People   int           `json:"people"`
	Created  int           `json:"created"`
	Photos   int           `json:"photos"`
	Rejected []RejectedDoc `json:"rejected"`
	// From is the export imported (the text form names it).
	From string `json:"-"`
}

// NewImportDoc documents an import from the export from.
func NewImportDoc(r *match.ImportReport, from string) ImportDoc {
	out := ImportDoc{People: r.People, Created: r.Created, Photos: r.Images, Rejected: []RejectedDoc{}, From: from}
	for _, p := range r.Photos {
		msg := ""
		if p.Err != nil {
			msg = p.Err.Error()
		}
		out.Rejected = append(out.Rejected, RejectedDoc{Source: p.Source, Error: msg})
	}
	return out
}
