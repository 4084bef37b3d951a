package visitsbench

import (
	"image"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/srdgd/srdgd/config"
	"github.com/srdgd/srdgd/internal/demoscene"
)

func TestApplySet(t *testing.T) {
	for _, c := range []struct {
		set, err string
		check    func(*config.Config) bool
	}{
		{"", "", func(c *config.Config) bool { return c.Match.Visit.MaxShots == config.Default().Match.Visit.MaxShots }},
		{"max_shots=2, min_interval=2s", "", func(c *config.Config) bool {
			return c.Match.Visit.MaxShots == 2 && c.Match.Visit.MinInterval == 2*time.Second
		}},
		{"x8_threshold=0.93,x8_margin=0.01,cooldown=0s", "", func(c *config.Config) bool {
			return c.Match.SR.X8.Threshold == 0.93 && c.Match.SR.X8.Margin == 0.01 && c.Match.Visit.Cooldown == 0
		}},
		{"sampler=ode,policy=off,track_timeout=4s", "", func(c *config.Config) bool {
			return c.SRDG.Sampler == "ode" && c.SRDG.Attributes.Policy == "off" && c.Detect.TrackTimeout == 4*time.Second
		}},
		{"hints=false,samples=2,queue=fifo", "", func(c *config.Config) bool {
			return !c.Detect.Track.Hints && c.Match.Visit.Samples == 2 && c.Detect.QueuePolicy == "fifo"
		}},
		{"hints=maybe", "invalid syntax", nil},
		{"max_shots", "want key=value", nil},
		{"max_shots=two", "invalid syntax", nil},
		{"min_interval=1", "missing unit", nil},
		{"colour=red", "unknown key", nil},
	} {
		cfg := config.Default()
		err := applySet(cfg, c.set)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%q: %v", c.set, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q: error %v, want one containing %q", c.set, err, c.err)
		case c.check != nil && !c.check(cfg):
			t.Errorf("%q: not applied", c.set)
		}
	}
}

func TestQuantile(t *testing.T) {
	for _, c := range []struct {
		v    []float64
		q    float64
		want float64
	}{
		{[]float64{3}, 0.5, 3},
		{[]float64{1, 2, 3}, 0.5, 2},
		{[]float64{1, 2, 3, 4}, 0.5, 2.5},
		{[]float64{0, 10}, 0.95, 9.5},
		{[]float64{1, 2, 3}, 1, 3},
	} {
		if got := quantile(c.v, c.q); got != c.want {
			t.Errorf("quantile(%v, %v) = %v, want %v", c.v, c.q, got, c.want)
		}
	}
}

// TestScore scores made-up events on the real demo scene's ground truth:
// one crossing named correctly 5 s after it came into view, one named
// wrongly, the rest without events.
func TestScore(t *testing.T) {
	man, err := demoscene.LoadManifest(filepath.Join(repoRoot(), "models", "dist", "demo"))
	if err != nil {
		t.Skipf("SKIPPING: demo faces missing (make models-packaged): %v", err)
	}
	scene, err := demoscene.New(man, demoscene.Options{Width: width, Height: height, FPS: fps})
	if err != nil {
		t.Fatal(err)
	}
	var people []person
	for _, p := range man.People {
		people = append(people, person{Name: p.Name, Enrolled: true, Source: "demo"})
	}
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	at := func(abs int) time.Time { return t0.Add(time.Duration(abs) * time.Second / fps) }
	n := 2 * scene.Frames()
	var arrivals []arrival
	for k := range n {
		arrivals = append(arrivals, arrival{at(k), k})
	}
	// the frames in which each crossing is wholly in view
	frame := image.Rect(0, 0, width, height)
	visible := map[int][]int{}
	who := map[int]int{}
	for k := range n {
		for _, f := range scene.Faces(k) {
			if f.Box.In(frame) {
				visible[f.Crossing] = append(visible[f.Crossing], k)
				who[f.Crossing] = f.Person
			}
		}
	}
	start, stop := at(30), at(n-1)
	var right, wrong int = -1, -1
	for c, ks := range visible {
		if ks[0] >= 30 && ks[len(ks)-1] < n-30 {
			if right < 0 || c < right {
				right, wrong = c, right
			} else if wrong < 0 || c < wrong {
				wrong = c
			}
		}
	}
	if right < 0 || wrong < 0 {
		t.Fatalf("scene has no two whole crossings: %v", visible)
	}
	hit := func(track uint64, c, i int) hitMsg {
		k := visible[c][i]
		for _, f := range scene.Faces(k) {
			if f.Crossing == c {
				h := hitMsg{TrackID: track, FrameTime: at(k)}
				h.Box.X, h.Box.Y, h.Box.W, h.Box.H = float64(f.Box.Min.X), float64(f.Box.Min.Y), float64(f.Box.Dx()), float64(f.Box.Dy())
				return h
			}
		}
		t.Fatalf("crossing %d not in frame %d", c, k)
		return hitMsg{}
	}
	visit := func(id string, track uint64, state, name string, recv time.Time) visitMsg {
		v := visitMsg{ID: id, TrackID: track, State: state, recv: recv}
		conf := 0.9
		v.dec.Known, v.dec.Name, v.dec.Confidence, v.dec.Shots = name != "", name, &conf, 2
		return v
	}
	first := at(visible[right][0])
	rightName, wrongName := people[who[right]].Name, people[(who[wrong]+1)%len(people)].Name
	hits := []hitMsg{hit(1, right, 3), hit(1, right, 20), hit(2, wrong, 5)}
	visits := []visitMsg{
		visit("a", 1, "new", "", first.Add(2*time.Second)),
		visit("a", 1, "update", rightName, first.Add(5*time.Second)),
		visit("a", 1, "end", rightName, first.Add(9*time.Second)),
		visit("b", 2, "new", wrongName, first.Add(30*time.Second)),
		visit("b", 2, "end", wrongName, first.Add(31*time.Second)),
		visit("c", 9, "new", "", first.Add(32*time.Second)), // no hits: unattributed
	}
	s := score(scene, people, arrivals, hits, visits, start, stop)
	if s.NamedCorrect != 1 || s.NamedWrong != 1 || s.Unknown != s.Crossings-2 || s.Crossings < 3 {
		t.Fatalf("correct %d wrong %d unknown %d of %d crossings, want 1, 1 and the rest", s.NamedCorrect, s.NamedWrong, s.Unknown, s.Crossings)
	}
	if s.Events != 2 || s.Unattributed != 1 || s.Missed != s.Crossings-2 || s.Messages != 6 {
		t.Fatalf("events %d unattributed %d missed %d messages %d", s.Events, s.Unattributed, s.Missed, s.Messages)
	}
	if s.FirstNamedMed < 4.99 || s.FirstNamedMed > 5.01 {
		t.Fatalf("first named after %.2f s, want 5", s.FirstNamedMed)
	}
	for _, r := range s.Table {
		if r.Crossing == right && (r.Outcome != "correct" || r.Visits != 1 || r.Messages != 3 || r.Updates != 1 || r.Hits != 2) {
			t.Fatalf("right crossing: %+v", r)
		}
		if r.Crossing == wrong && (r.Outcome != "wrong" || r.WrongNames != wrongName) {
			t.Fatalf("wrong crossing: %+v", r)
		}
	}
}
