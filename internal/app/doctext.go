package app

import (
	"fmt"
	"io"
	"strings"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/match"
	"github.com/srdgd/srdgd/srdg"
)

// The text forms of the command documents (`srdgd detect` and `srdgd
// gallery` without --json): a document is built once and printed either as
// its JSON or with WriteText, so the two never disagree. hwtest.Report
// does the same for `srdgd hwtest`.

// PeopleDoc is `gallery list`: the enrolled people; Searchable is counted
// when the embedder loaded (nil otherwise).
type PeopleDoc []face.Person

// NewPeopleDoc documents the gallery's people.
func NewPeopleDoc(people []match.Person, searchable bool) PeopleDoc {
	out := make(PeopleDoc, 0, len(people))
	for _, p := range people {
		out = append(out, PersonDoc(p, searchable))
	}
	return out
}

// WriteText prints one line per person and the count.
func (d PeopleDoc) WriteText(w io.Writer) {
	for _, p := range d {
		sr := "?"
		if p.Searchable != nil {
			sr = fmt.Sprint(*p.Searchable)
		}
		over := ""
		if p.ThresholdOffset != 0 || p.MarginOffset != 0 {
			over = fmt.Sprintf("  threshold %+.3f margin %+.3f", p.ThresholdOffset, p.MarginOffset)
		}
		fmt.Fprintf(w, "%-24s photos %d  searchable %s  watchlist %v%s\n", p.Name, p.Photos, sr, p.Watchlist, over)
	}
	fmt.Fprintf(w, "%d people\n", len(d))
}

// WriteText prints the SR note, the decision and the candidates.
func (d SearchDoc) WriteText(w io.Writer) {
	if d.SR != "" {
		fmt.Fprintln(w, d.SR)
	}
	if d.Match != nil {
		fmt.Fprintf(w, "match: %s (similarity %.4f)\n", d.Match.Name, d.Match.Similarity)
	} else {
		fmt.Fprintf(w, "unknown: %s\n", d.Detail)
	}
	for i, c := range d.Candidates {
		fmt.Fprintf(w, "%2d. %-24s %.4f\n", i+1, c.Name, c.Similarity)
	}
}

// WriteText prints the verdict with the similarity and the threshold.
func (d VerifyDoc) WriteText(w io.Writer) {
	verdict, cmp := "match", ">="
	if !d.Match {
		verdict, cmp = "no match", "<"
	}
	fmt.Fprintf(w, "%s: %s (similarity %.4f %s verify threshold %.4f)\n", verdict, d.Person, d.Similarity, cmp, d.Threshold)
}

// WriteText prints the counts, every problem, and "ok" when there is none.
func (d CheckDoc) WriteText(w io.Writer) {
	fmt.Fprintf(w, "%d people, %d photos, %d descriptors\n", d.People, d.Photos, d.Embeddings)
	for _, p := range d.Problems {
		fmt.Fprintln(w, "problem:", p)
	}
	if d.OK {
		fmt.Fprintln(w, "ok")
	}
}

// WriteText prints the counts and every rejected photo.
func (d ImportDoc) WriteText(w io.Writer) {
	fmt.Fprintf(w, "imported %d people (%d new), %d photos from %s\n", d.People, d.Created, d.Photos, d.From)
	for _, p := range d.Rejected {
		fmt.Fprintf(w, "rejected %s: %s\n", p.Source, p.Error)
	}
}

// WriteText prints the picture's line, then per face its box, score,
// quality and gate, its landmarks, attributes and the probe files written.
func (r *PhotoReport) WriteText(w io.Writer) {
	fmt.Fprintf(w, "%s: %dx%d, %s, %d faces in %.1f ms (%d windows)\n", r.Image, r.Width, r.Height,
		r.Detector, len(r.Faces), r.ElapsedMS, r.Windows)
	for i, f := range r.Faces {
		fmt.Fprintf(w, "face %d: box %.1f,%.1f,%.1f,%.1f (%.0f px) score %.3f sharpness %.2f frontal %.2f value %.3f gate %s",
			i+1, f.Box[0], f.Box[1], f.Box[2], f.Box[3], f.FacePx, f.Score, f.Quality.Sharpness, f.Quality.Frontal, f.Quality.Value, f.Gate)
		if f.Upscaled {
			fmt.Fprint(w, " (probe upscaled)")
		}
		fmt.Fprintln(w)
		if f.Landmarks != nil {
			var parts []string
			for _, n := range LandmarkNames {
				p := f.Landmarks[n]
				parts = append(parts, fmt.Sprintf("%s %.1f,%.1f", n, p[0], p[1]))
			}
			fmt.Fprintf(w, "  landmarks: %s\n", strings.Join(parts, "; "))
		}
		if f.Attributes != nil {
			var parts []string
			for _, n := range []string{"male", "glasses", "no_beard"} {
				if p, ok := f.Attributes[n]; ok {
					parts = append(parts, fmt.Sprintf("%s=%s (p=%.2f)", n, srdg.LabelString(f.Labels[n]), p))
				}
			}
			fmt.Fprintf(w, "  attributes: %s\n", strings.Join(parts, " "))
		}
		if f.LR != "" {
			fmt.Fprintf(w, "  probe: %s  preview: %s\n", f.LR, f.Preview)
		}
	}
}
