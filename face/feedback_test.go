package face

import (
	"errors"
	"slices"
	"testing"
)

func TestFeedbackTargets(t *testing.T) {
	named := Match{Known: true, Name: "Ada", TopK: []Candidate{{Name: "Ada"}, {Name: "Bob"}}}
	ranked := Match{TopK: []Candidate{{Name: "Bob"}, {Name: "Ada"}}}
	odd := Match{Known: true, Name: "Ada", TopK: []Candidate{{Name: "Cy"}}} // an override named someone not first
	none := Match{}
	for _, c := range []struct {
		name, verdict, person string
		m                     Match
		want                  []string
		field                 string
	}{
		{"confirm", "confirm", "Bob", named, []string{"Bob"}, ""},
		{"confirm needs a person", "confirm", "", named, nil, "person"},
		{"reject the named", "reject", "", named, []string{"Ada"}, ""},
		{"reject the top candidate", "reject", "", ranked, []string{"Bob"}, ""},
		{"reject someone given", "reject", "Cy", ranked, []string{"Cy"}, ""},
		{"reject with no one", "reject", "", none, nil, "person"},
		{"not enrolled: the named", "not_enrolled", "", named, []string{"Ada"}, ""},
		{"not enrolled: named and top", "not_enrolled", "", odd, []string{"Ada", "Cy"}, ""},
		{"not enrolled: top", "not_enrolled", "", ranked, []string{"Bob"}, ""},
		{"not enrolled with a person", "not_enrolled", "Ada", named, nil, "person"},
		{"not enrolled with no one", "not_enrolled", "", none, nil, "verdict"},
		{"unknown verdict", "yes", "Ada", named, nil, "verdict"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := FeedbackTargets(c.m, c.verdict, c.person)
			var fe *FeedbackError
			switch {
			case c.field != "" && (!errors.As(err, &fe) || fe.Field != c.field):
				t.Errorf("err %v, want a FeedbackError on %q", err, c.field)
			case c.field == "" && (err != nil || !slices.Equal(got, c.want)):
				t.Errorf("got %v, %v; want %v", got, err, c.want)
			}
		})
	}
}
