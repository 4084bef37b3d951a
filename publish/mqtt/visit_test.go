package mqtt

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
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

// TestHomeAssistantPeople: the per-person discovery configs follow Home
// Assistant's rules (the schema: required keys, availability), every
// unique id of the box is distinct, a person is announced once (again
// when renamed), and nothing per person goes out without HAPeople or for
// an unknown visit.
func TestHomeAssistantPeople(t *testing.T) {
	sch := newValidator(t)
	for _, people := range []bool{true, false} {
		p := &Publisher{opts: &resolved{qos: 1, Options: Options{HADiscovery: true, HAPeople: people, HASeenWindow: 10 * time.Minute,
			Cameras: []string{"door", "yard"}, ClientID: "box"}}, topics: topics{prefix: "srdgd", ha: "homeassistant", node: "box"},
			log: slog.New(slog.DiscardHandler)}
		msgs := p.discoveryMessages()
		ada := makeVisit(t, 1, "door", true)
		unknown := makeVisit(t, 2, "yard", false)
		for _, v := range []*face.Visit{ada, ada, unknown} {
			pm, err := p.personMessages(v)
			if err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, pm...)
		}
		renamed := *ada
		renamed.Decision.Name = "Ada King"
		pm, _ := p.personMessages(&renamed)
		msgs = append(msgs, pm...)
		ids := map[string]bool{}
		configs, states := 0, 0
		for _, m := range msgs {
			name := schemaForTopic("srdgd", "homeassistant", m.Topic)
			if err := sch.validate(name, m.Payload); err != nil {
				t.Errorf("%s: %v\n%s", m.Topic, err, m.Payload)
			}
			switch name {
			case "ha_discovery.schema.json":
				configs++
				var c struct {
					UniqueID string `json:"unique_id"`
				}
				_ = json.Unmarshal(m.Payload, &c)
				if ids[c.UniqueID] && !strings.Contains(m.Topic, "person_") {
					t.Errorf("unique id %q twice", c.UniqueID)
				}
				ids[c.UniqueID] = true
			case "person.schema.json":
				states++
			}
			if !m.Retain {
				t.Errorf("%s not retained", m.Topic)
			}
		}
		// 2 cameras x 2 (no images) + spool, and with people: 3 configs on
		// the first sighting, 3 again for the new name, 3 states
		wantConfigs, wantStates := 5, 0
		if people {
			wantConfigs, wantStates = 5+3+3, 3
		}
		if configs != wantConfigs || states != wantStates {
			t.Errorf("people %v: %d configs, %d states; want %d, %d", people, configs, states, wantConfigs, wantStates)
		}
	}
}
