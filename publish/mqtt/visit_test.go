package mqtt

import (
	"fmt"
	"testing"
	"time"

	"github.com/srdgd/srdgd/face"
)

// Which visit events alert (matches/<name>): the first that names someone,
// an update that names someone else, never a repeat within the cooldown,
// an update of the same person or an end. Every message validates.
func TestVisitAlerts(t *testing.T) {
	p := &Publisher{opts: &resolved{Options: Options{IncludeImage: true}, qos: 1}, topics: topics{prefix: "r", ha: "ha"}}
	v := newValidator(t)
	base := makeVisit(t, 1, "cam", false)
	other := makeVisit(t, 2, "cam", true)
	other.Repeat = true
	steps := []struct {
		name  string
		vis   *face.Visit
		state string
		known bool
		pid   int64
		want  []string // topics after r/cam/
	}{
		{"undecided update", base, face.VisitUpdate, false, 0, []string{"cam/visit", "cam/last_match", "cam/face"}},
		{"first naming", base, face.VisitUpdate, true, 7, []string{"cam/visit", "matches/Ada _ Lovelace _1", "cam/last_match", "cam/face"}},
		{"same person, confidence moved", base, face.VisitUpdate, true, 7, []string{"cam/visit", "cam/last_match", "cam/face"}},
		{"another person", base, face.VisitUpdate, true, 9, []string{"cam/visit", "matches/Ada _ Lovelace _1", "cam/last_match", "cam/face"}},
		{"end", base, face.VisitEnd, true, 9, []string{"cam/visit", "cam/last_match", "cam/face"}},
		{"repeat within the cooldown", other, face.VisitNew, true, 7, []string{"cam/visit", "cam/last_match", "cam/face"}},
	}
	for i, s := range steps {
		vis := *s.vis
		vis.State, vis.Rev = s.state, i+1
		vis.Decision.Known, vis.Decision.PersonID = s.known, s.pid
		if s.known {
			vis.Decision.Name = "Ada / Lovelace #1"
		}
		if s.state == face.VisitEnd {
			vis.End = vis.LastSeen
		}
		msgs, err := p.visitMessages(&vis, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range msgs {
			got = append(got, m.Topic[2:])
			if name := SchemaFor("r", "ha", m.Topic); name != "" {
				if err := v.validate(name, m.Payload); err != nil {
					t.Errorf("%s: %s: %v\n%s", s.name, m.Topic, err, m.Payload)
				}
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(s.want) {
			t.Errorf("%s: topics %v, want %v", s.name, got, s.want)
		}
	}
	if len(p.alerted) != 0 {
		t.Errorf("%d visits remembered after their end, want 0", len(p.alerted))
	}
}
