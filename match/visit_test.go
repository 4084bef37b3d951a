package match

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/srdgd/srdgd/face"
)

// visitFixture is a gallery of four CelebA train people (three photos
// each) and real descriptors of their other photos and of three strangers,
// from the real embedder: what the match stage hands the aggregator.
type visitFixture struct {
	g      *Gallery
	people []string
	// shots[person][i] is the descriptor of the person's i-th probe photo;
	// strangers' are under "stranger 0".."stranger 2".
	shots map[string][]Embedding
}

func newVisitFixture(t *testing.T) *visitFixture {
	t.Helper()
	emb := testEmbedder(t)
	rows := celebaRows(t)
	ids, imgs := byIdentity(rows, "train")
	dir := t.TempDir()
	fx := &visitFixture{shots: map[string][]Embedding{}}
	th := Thresholds{Identify: 0.93, Margin: 0.02, Verify: 0.93}
	ctx := context.Background()
	g, err := Open(ctx, Options{Path: filepath.Join(dir, "gallery.db"), KeyFile: newKey(t, dir), Embedder: emb, Finder: celebaTiles{}, Thresholds: &th})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	fx.g = g
	embed := func(names []string) []Embedding {
		var faces []EmbedInput
		for _, n := range names {
			faces = append(faces, EmbedInput{Image: loadCeleba(t, n), Box: celebaBox})
		}
		es, err := emb.Embed(ctx, faces)
		if err != nil {
			t.Fatal(err)
		}
		return es
	}
	for _, id := range ids[:4] {
		name := "celeb " + id
		fx.people = append(fx.people, name)
		var photos []Photo
		for _, n := range imgs[id][:3] {
			photos = append(photos, Photo{Source: n, Data: readCeleba(t, n)})
		}
		if _, err := g.Add(ctx, name, photos); err != nil {
			t.Fatal(err)
		}
		fx.shots[name] = embed(imgs[id][3:9])
	}
	for i, id := range ids[len(ids)-3:] {
		fx.shots[fmt.Sprintf("stranger %d", i)] = embed(imgs[id][:4])
	}
	return fx
}

// clock is a settable Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// recorder collects emitted visits.
type recorder struct {
	mu     sync.Mutex
	events []*face.Visit
	notify chan struct{} // optional: signalled after each event
}

func (r *recorder) Emit(v *face.Visit) {
	r.mu.Lock()
	r.events = append(r.events, v)
	r.mu.Unlock()
	if r.notify != nil {
		select {
		case r.notify <- struct{}{}:
		default:
		}
	}
}
func (r *recorder) all() []*face.Visit {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

var t0 = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

// step is one input to the aggregator: a shot of who (photo i) on a
// camera's track at t0+at with a quality, or the track's end.
type step struct {
	cam   string
	track uint64
	who   string // person name, "stranger N", or "" with end
	photo int
	q     float64
	at    time.Duration
	end   bool
	tick  time.Duration // advance the clock by this and Tick
	// direct > 0: a face read without SR at this direct scale
	direct int
}

func (fx *visitFixture) run(t *testing.T, vs *Visits, clk *clock, steps []step) {
	t.Helper()
	for i, s := range steps {
		switch {
		case s.tick > 0:
			clk.Add(s.tick)
			vs.Tick()
		case s.end:
			vs.TrackEnded(s.cam, s.track, t0.Add(s.at))
		default:
			e := fx.shots[s.who][s.photo]
			ft := t0.Add(s.at)
			h := &face.Hit{ID: fmt.Sprintf("hit-%02d", i), Camera: s.cam, TrackID: s.track, FrameTime: ft, FacePx: 20,
				SRJPEG: []byte{byte(i)}}
			if s.direct > 0 {
				h.SR = face.SR{Sampler: face.DirectSampler, Scale: s.direct}
			}
			if err := vs.Add(VisitShot{Hit: h, Quality: s.q, Embedding: &e}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func (fx *visitFixture) person(i int) string { return fx.people[i] }

func TestVisits(t *testing.T) {
	fx := newVisitFixture(t)
	a, b := fx.person(0), fx.person(1)
	fallback := Thresholds{Identify: 0.93, Margin: 0.02, Verify: 0.93}
	type want struct {
		state string
		known bool
		name  string // "" = any
		shots int    // len(Shots); -1 = any
	}
	cases := []struct {
		name  string
		opts  func(*VisitOptions)
		steps []step
		want  []want
		// check looks at the stats after the steps
		check func(t *testing.T, s VisitStats, ev []*face.Visit)
	}{
		{
			name: "named from the first shot, end with all shots",
			steps: []step{
				{cam: "door", track: 1, who: a, photo: 0, q: 0.6},
				{cam: "door", track: 1, who: a, photo: 1, q: 0.7, at: time.Second},
				{cam: "door", track: 1, end: true, at: 2 * time.Second},
			},
			want: []want{{face.VisitNew, true, a, 1}, {face.VisitEnd, true, a, 2}},
		},
		{
			name: "undecided: new only when it ends",
			steps: []step{
				{cam: "door", track: 2, who: "stranger 0", photo: 0, q: 0.5},
				{cam: "door", track: 2, who: "stranger 0", photo: 1, q: 0.5, at: time.Second},
				{cam: "door", track: 2, who: "stranger 0", photo: 2, q: 0.5, at: 2 * time.Second},
				{cam: "door", track: 2, end: true, at: 3 * time.Second},
			},
			want: []want{{face.VisitNew, false, "", 3}, {face.VisitEnd, false, "", 3}},
		},
		{
			name: "another person's shots change the decision: update, same id",
			steps: []step{
				{cam: "door", track: 3, who: a, photo: 2, q: 0.5},
				{cam: "door", track: 3, who: b, photo: 0, q: 0.9, at: time.Second},
				{cam: "door", track: 3, who: b, photo: 1, q: 0.9, at: 2 * time.Second},
				{cam: "door", track: 3, who: b, photo: 2, q: 0.9, at: 3 * time.Second},
				{cam: "door", track: 3, end: true, at: 4 * time.Second},
			},
			// the mixed descriptor is ambiguous first, then B's shots outweigh A's
			want: []want{{face.VisitNew, true, a, 1}, {face.VisitUpdate, false, "", 2}, {face.VisitUpdate, true, b, 3}, {face.VisitEnd, true, b, 4}},
		},
		{
			name: "near-duplicate rejected, a better copy replaces it",
			steps: []step{
				{cam: "door", track: 4, who: a, photo: 3, q: 0.5},
				{cam: "door", track: 4, who: a, photo: 3, q: 0.4, at: time.Second},
				{cam: "door", track: 4, who: a, photo: 3, q: 0.8, at: 2 * time.Second},
				{cam: "door", track: 4, end: true, at: 3 * time.Second},
			},
			want: []want{{face.VisitNew, true, a, 1}, {face.VisitEnd, true, a, 1}},
			check: func(t *testing.T, s VisitStats, ev []*face.Visit) {
				if s.Rejected[RejectDuplicate] != 1 || s.Replaced != 1 {
					t.Errorf("duplicates rejected %d, replaced %d; want 1 and 1", s.Rejected[RejectDuplicate], s.Replaced)
				}
				if q := ev[len(ev)-1].Shots[0].Quality; q != 0.8 {
					t.Errorf("kept shot quality %v, want the better copy's 0.8", q)
				}
			},
		},
		{
			name: "shots closer than the min interval: the better one stays",
			steps: []step{
				{cam: "door", track: 5, who: a, photo: 0, q: 0.5},
				{cam: "door", track: 5, who: a, photo: 1, q: 0.3, at: 100 * time.Millisecond},
				{cam: "door", track: 5, end: true, at: time.Second},
			},
			want: []want{{face.VisitNew, true, a, 1}, {face.VisitEnd, true, a, 1}},
			check: func(t *testing.T, s VisitStats, _ []*face.Visit) {
				if s.Rejected[RejectTooClose] != 1 {
					t.Errorf("too close rejected %d, want 1", s.Rejected[RejectTooClose])
				}
			},
		},
		{
			name: "K cap keeps the best shots in frame order",
			opts: func(o *VisitOptions) { o.MaxShots = 3 },
			steps: []step{
				{cam: "door", track: 6, who: a, photo: 0, q: 0.2},
				{cam: "door", track: 6, who: a, photo: 1, q: 0.9, at: time.Second},
				{cam: "door", track: 6, who: a, photo: 2, q: 0.3, at: 2 * time.Second},
				{cam: "door", track: 6, who: a, photo: 3, q: 0.8, at: 3 * time.Second},
				{cam: "door", track: 6, who: a, photo: 4, q: 0.1, at: 4 * time.Second},
				{cam: "door", track: 6, end: true, at: 5 * time.Second},
			},
			want: []want{{face.VisitNew, true, a, 1}, {face.VisitEnd, true, a, 3}},
			check: func(t *testing.T, s VisitStats, ev []*face.Visit) {
				var qs []float64
				for _, r := range ev[len(ev)-1].Shots {
					qs = append(qs, r.Quality)
				}
				if !slices.Equal(qs, []float64{0.9, 0.3, 0.8}) {
					t.Errorf("kept qualities %v, want [0.9 0.3 0.8]", qs)
				}
				if s.Rejected[RejectWorse] != 1 {
					t.Errorf("rejected as worse %d, want 1", s.Rejected[RejectWorse])
				}
			},
		},
		{
			name: "a camera override holds its visits to a stricter threshold; other cameras keep theirs",
			opts: func(o *VisitOptions) { o.Cameras = CameraOffsets{"door": {Threshold: 0.06}} },
			steps: []step{
				{cam: "door", track: 30, who: a, photo: 0, q: 0.6},
				{cam: "yard", track: 31, who: a, photo: 1, q: 0.6, at: time.Second},
				{cam: "door", track: 30, end: true, at: 2 * time.Second},
			},
			want: []want{{face.VisitNew, true, a, 1}, {face.VisitNew, false, "", 1}, {face.VisitEnd, false, "", 1}},
			check: func(t *testing.T, s VisitStats, ev []*face.Visit) {
				yard, door := ev[0].Decision, ev[2].Decision
				if yard.Threshold != fallback.Identify || yard.Explanation.Override != "" {
					t.Errorf("yard: threshold %v override %q, want %v and none", yard.Threshold, yard.Explanation.Override, fallback.Identify)
				}
				if math.Abs(door.Threshold-(fallback.Identify+0.06)) > 1e-9 || door.Explanation.Override != face.OverrideCamera ||
					door.Explanation.OverrideName != "door" || !strings.Contains(door.Explanation.Text, "camera threshold override for door") {
					t.Errorf("door: threshold %v, explanation %+v; want %v by the door camera override", door.Threshold, door.Explanation, fallback.Identify+0.06)
				}
			},
		},
		{
			name: "timeout ends a visit whose track-end notice was lost",
			steps: []step{
				{cam: "door", track: 7, who: a, photo: 0, q: 0.5},
				{tick: 59 * time.Second},
				{tick: time.Second},
			},
			want: []want{{face.VisitNew, true, a, 1}, {face.VisitEnd, true, a, 1}},
			check: func(t *testing.T, s VisitStats, ev []*face.Visit) {
				if s.TimedOut != 1 || s.Open != 0 {
					t.Errorf("timed out %d, open %d; want 1 and 0", s.TimedOut, s.Open)
				}
			},
		},
		{
			name: "a late shot of an ended track does not reopen it",
			steps: []step{
				{cam: "door", track: 8, who: a, photo: 0, q: 0.5},
				{cam: "door", track: 8, end: true, at: time.Second},
				{cam: "door", track: 8, who: a, photo: 1, q: 0.5, at: 2 * time.Second},
			},
			want: []want{{face.VisitNew, true, a, 1}, {face.VisitEnd, true, a, 1}},
		},
		{
			name: "cooldown: the same person again on the same camera is a repeat, not on another camera",
			steps: []step{
				{cam: "door", track: 9, who: a, photo: 0, q: 0.5},
				{cam: "door", track: 9, end: true, at: time.Second},
				{cam: "door", track: 10, who: a, photo: 1, q: 0.5, at: 30 * time.Second},
				{cam: "yard", track: 1, who: a, photo: 2, q: 0.5, at: 31 * time.Second},
				{cam: "door", track: 10, end: true, at: 32 * time.Second},
				{cam: "door", track: 11, who: a, photo: 3, q: 0.5, at: 32*time.Second + 3*time.Minute},
			},
			want: []want{{face.VisitNew, true, a, 1}, {face.VisitEnd, true, a, 1}, {face.VisitNew, true, a, 1},
				{face.VisitNew, true, a, 1}, {face.VisitEnd, true, a, 1}, {face.VisitNew, true, a, 1}},
			check: func(t *testing.T, s VisitStats, ev []*face.Visit) {
				var rep []bool
				for _, v := range ev {
					rep = append(rep, v.Repeat)
				}
				if !slices.Equal(rep, []bool{false, false, true, false, true, false}) {
					t.Errorf("repeat flags %v, want [false false true false true false]", rep)
				}
			},
		},
		{
			name: "max open visits: the idlest is ended",
			opts: func(o *VisitOptions) { o.MaxOpen = 2 },
			steps: []step{
				{cam: "door", track: 20, who: "stranger 0", photo: 0, q: 0.5},
				{cam: "door", track: 21, who: "stranger 1", photo: 0, q: 0.5},
				{cam: "door", track: 22, who: "stranger 2", photo: 0, q: 0.5},
			},
			want: []want{{face.VisitNew, false, "", 1}, {face.VisitEnd, false, "", 1}},
			check: func(t *testing.T, s VisitStats, ev []*face.Visit) {
				if s.Evicted != 1 || s.Open != 2 || ev[0].TrackID != 20 {
					t.Errorf("evicted %d, open %d, first ended track %d; want 1, 2, 20", s.Evicted, s.Open, ev[0].TrackID)
				}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var rec recorder
			clk := &clock{t: t0}
			o := VisitOptions{Searcher: fx.g, Emit: rec.Emit, Calibration: &Calibration{Source: "none"}, Fallback: fallback, Now: clk.Now}
			if c.opts != nil {
				c.opts(&o)
			}
			vs, err := NewVisits(o)
			if err != nil {
				t.Fatal(err)
			}
			fx.run(t, vs, clk, c.steps)
			ev := rec.all()
			for i, v := range ev {
				t.Logf("event %d: %s rev %d visit %s track %d known %v %q sim %.4f margin %.4f conf %.3f shots %d repeat %v reason %s",
					i, v.State, v.Rev, v.ID, v.TrackID, v.Decision.Known, v.Decision.Name, v.Decision.Similarity,
					v.Decision.Margin, v.Decision.Confidence, len(v.Shots), v.Repeat, v.Decision.Reason)
			}
			if len(ev) != len(c.want) {
				t.Fatalf("%d events, want %d", len(ev), len(c.want))
			}
			revs := map[string]int{}
			for i, w := range c.want {
				v := ev[i]
				if v.State != w.state || v.Decision.Known != w.known || (w.name != "" && v.Decision.Name != w.name) || (w.shots >= 0 && len(v.Shots) != w.shots) {
					t.Errorf("event %d: %s known %v %q shots %d, want %s known %v %q shots %d", i, v.State, v.Decision.Known,
						v.Decision.Name, len(v.Shots), w.state, w.known, w.name, w.shots)
				}
				revs[v.ID]++
				if v.Rev != revs[v.ID] {
					t.Errorf("event %d: rev %d, want %d", i, v.Rev, revs[v.ID])
				}
				if (v.State == face.VisitEnd) != !v.End.IsZero() {
					t.Errorf("event %d: state %s with end %v", i, v.State, v.End)
				}
				if v.Decision.Fusion != FusionDescriptor || (v.Decision.Explanation.Override == "" &&
					(v.Decision.Threshold != fallback.Identify || v.Decision.MinMargin != fallback.Margin)) {
					t.Errorf("event %d: fusion %q threshold %v margin %v", i, v.Decision.Fusion, v.Decision.Threshold, v.Decision.MinMargin)
				}
				// every event explains its decision at the thresholds it used
				if x := v.Decision.Explanation; x.Text == "" || x.Threshold != v.Decision.Threshold || x.MarginNeeded != v.Decision.MinMargin ||
					x.Shots != v.Decision.Shots || (v.Decision.Known != (x.Outcome == face.OutcomeNamed)) ||
					(v.Decision.Known && !strings.HasPrefix(x.Text, "Named "+v.Decision.Name+":")) {
					t.Errorf("event %d: explanation %+v for decision %+v", i, x, v.Decision)
				}
				if v.Decision.Confidence <= 0 || v.Decision.Confidence >= 1 || (v.Decision.Known != (v.Decision.Confidence >= 0.5)) {
					t.Errorf("event %d: confidence %v for known %v", i, v.Decision.Confidence, v.Decision.Known)
				}
				if len(v.Shots) > 0 && !slices.ContainsFunc(v.Shots, func(r face.ShotRef) bool { return r.HitID == v.BestShot }) {
					t.Errorf("event %d: best shot %q not among its shots", i, v.BestShot)
				}
				if v.Decision.Known && len(v.Shots) > 0 {
					for _, r := range v.Shots {
						if r.Similarity <= 0 || r.Similarity > v.Decision.TopK[0].Similarity+0.2 {
							t.Errorf("event %d: shot %s similarity %v to the top candidate", i, r.HitID, r.Similarity)
						}
					}
				}
			}
			for i := 1; i < len(ev); i++ {
				if ev[i].State == face.VisitUpdate {
					p := ev[i-1]
					if p.ID != ev[i].ID {
						t.Errorf("update %d has id %s, the visit %s", i, ev[i].ID, p.ID)
					}
					d := ev[i].Decision.Confidence - p.Decision.Confidence
					if p.Decision.PersonID == ev[i].Decision.PersonID && p.Decision.Known == ev[i].Decision.Known && d < 0.1 && d > -0.1 {
						t.Errorf("update %d is not material: confidence %.3f -> %.3f", i, p.Decision.Confidence, ev[i].Decision.Confidence)
					}
				}
			}
			if c.check != nil {
				c.check(t, vs.Stats(), ev)
			}
		})
	}
}

// The calibrated path: the entry for the number of fused shots sets the
// threshold, margin and confidence.
func TestVisitsCalibrated(t *testing.T) {
	fx := newVisitFixture(t)
	a := fx.person(0)
	cal := &Calibration{Source: "test", Entries: []CalibrationEntry{
		{Scale: 8, Shots: 1, Identify: 0.99, Margin: 0.02, Logistic: Logistic{Bias: -90, Top: 100}},
		{Scale: 8, Shots: 2, Identify: 0.90, Margin: 0.01, Logistic: Logistic{Bias: -85, Top: 100}},
		{Scale: 16, Shots: 1, Identify: 0.5, Margin: 0.01},
	}}
	var rec recorder
	clk := &clock{t: t0}
	vs, err := NewVisits(VisitOptions{Searcher: fx.g, Emit: rec.Emit, Calibration: cal, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	fx.run(t, vs, clk, []step{
		{cam: "door", track: 1, who: a, photo: 0, q: 0.5},
		{cam: "door", track: 1, who: a, photo: 1, q: 0.5, at: time.Second},
		{cam: "door", track: 1, end: true, at: 2 * time.Second},
	})
	ev := rec.all()
	if len(ev) != 2 || ev[0].State != face.VisitNew || !ev[0].Decision.Known || ev[0].Decision.Shots != 2 {
		t.Fatalf("events %+v: want new (known, after the second shot: the one-shot entry's 0.99 refuses it) and end", ev)
	}
	d := ev[0].Decision
	if d.Threshold != 0.90 || d.MinMargin != 0.01 {
		t.Errorf("threshold %v margin %v, want the 2-shot entry's 0.90 / 0.01", d.Threshold, d.MinMargin)
	}
	if want := (Logistic{Bias: -85, Top: 100}).P(d.Similarity, d.Margin); d.Confidence != want {
		t.Errorf("confidence %v, want the 2-shot logistic's %v", d.Confidence, want)
	}
}

func TestVisitsRunStopsAndEndsOpenVisits(t *testing.T) {
	fx := newVisitFixture(t)
	var rec recorder
	vs, err := NewVisits(VisitOptions{Searcher: fx.g, Emit: rec.Emit, Calibration: &Calibration{},
		Fallback: Thresholds{Identify: 0.93, Margin: 0.02, Verify: 0.93}, TickInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- vs.Run(ctx) }()
	e := fx.shots[fx.person(0)][0]
	if err := vs.Add(VisitShot{Hit: &face.Hit{ID: "h1", Camera: "door", TrackID: 1, FrameTime: time.Now()}, Quality: 0.5, Embedding: &e}); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	ev := rec.all()
	if len(ev) != 2 || ev[1].State != face.VisitEnd {
		t.Fatalf("%d events, want new and end", len(ev))
	}
	// after Run: ignored
	if err := vs.Add(VisitShot{Hit: &face.Hit{ID: "h2", Camera: "door", TrackID: 2}, Quality: 0.5, Embedding: &e}); err != nil || len(rec.all()) != 2 {
		t.Errorf("add after Run: %v, %d events", err, len(rec.all()))
	}
}

func TestVisitOptionsValidate(t *testing.T) {
	emit := func(*face.Visit) {}
	fb := Thresholds{Identify: 0.93, Margin: 0.02, Verify: 0.93}
	cases := []struct {
		name string
		o    VisitOptions
		want string
	}{
		{"no emit", VisitOptions{Fallback: fb}, "Emit is required"},
		{"scale", VisitOptions{Emit: emit, Fallback: fb, Scale: 4}, "scale 4"},
		{"shots", VisitOptions{Emit: emit, Fallback: fb, MaxShots: 100}, "max shots 100"},
		{"duplicate", VisitOptions{Emit: emit, Fallback: fb, Duplicate: 1.5}, "duplicate similarity 1.5"},
		{"negative", VisitOptions{Emit: emit, Fallback: fb, Cooldown: -time.Second}, "must not be negative"},
		{"no fallback", VisitOptions{Emit: emit, Calibration: &Calibration{Source: "empty"}}, "no calibration entry for x8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewVisits(c.o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

// TestVisitsCalibrationByModel: without a Calibration, visits take the
// shipped one of the model that reads the shots; a model without one
// decides with the fallback thresholds.
func TestVisitsCalibrationByModel(t *testing.T) {
	fb := Thresholds{Identify: 0.6, Margin: 0.01, Verify: 0.93}
	for _, c := range []struct {
		model, want string
	}{
		{"human-models faceres@6df2fcc38b0e9ac0+17f82ad1", "human-models faceres@"},
		{"", "face-api face_recognition_model@"},
		{"some other net@1+2", ""},
	} {
		t.Run(c.model, func(t *testing.T) {
			var logs strings.Builder
			vs, err := NewVisits(VisitOptions{Emit: func(*face.Visit) {}, Fallback: fb, Model: c.model, Scale: 8,
				Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			if got := vs.calib.Embedder; !strings.HasPrefix(got, c.want) || (c.want == "") != (got == "") {
				t.Errorf("calibration of %q, want %q", got, c.want)
			}
			th, _ := vs.setting(8, 1, 200)
			if c.want == "" {
				if th != fb || !strings.Contains(logs.String(), "no fused calibration") {
					t.Errorf("setting %+v, log %s: want the fallback, said", th, logs.String())
				}
			} else {
				e, err := vs.calib.Entry(8, 1)
				if err != nil {
					t.Fatal(err)
				}
				// face-api's file has no per-size settings: floored by the fallback
				want := e.ForGallery(200)
				if len(e.Galleries) == 0 {
					want.Identify, want.Margin = max(want.Identify, fb.Identify), max(want.Margin, fb.Margin)
				}
				if th.Identify != want.Identify || th.Margin != want.Margin || !strings.Contains(logs.String(), "visit decisions calibrated") {
					t.Errorf("setting %+v, want %v / %v; log %s", th, want.Identify, want.Margin, logs.String())
				}
			}
		})
	}
}

// TestVisitsCalibratedByGallerySize: a calibration entry with settings
// for smaller galleries decides with the one measured on the smallest
// gallery at least as large as the searchable people; Floor (match.sr set
// in the config) keeps the fallback as the lowest bar.
func TestVisitsCalibratedByGallerySize(t *testing.T) {
	fx := newVisitFixture(t)
	if n := fx.g.Searchable(); n != len(fx.people) {
		t.Fatalf("searchable %d, want %d", n, len(fx.people))
	}
	small := Logistic{Bias: -20, Top: 40}
	cal := &Calibration{Source: "test", Entries: []CalibrationEntry{{Scale: 8, Shots: 1, Gallery: 200, Identify: 0.99, Margin: 0.02,
		Logistic:  Logistic{Bias: -90, Top: 100},
		Galleries: []GallerySetting{{Gallery: 2, Identify: 0.98}, {Gallery: 4, Identify: 0.5, Margin: 0.01, Logistic: small}, {Gallery: 8, Identify: 0.97}}}}}
	fb := Thresholds{Identify: 0.93, Margin: 0.02, Verify: 0.93}
	for _, c := range []struct {
		name          string
		floor         bool
		wantThreshold float64
		wantMargin    float64
	}{
		{"size 4", false, 0.5, 0.01},
		{"floored", true, 0.93, 0.02},
	} {
		t.Run(c.name, func(t *testing.T) {
			var rec recorder
			clk := &clock{t: t0}
			vs, err := NewVisits(VisitOptions{Searcher: fx.g, Emit: rec.Emit, Calibration: cal, Fallback: fb, Floor: c.floor, Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			a := fx.person(0)
			fx.run(t, vs, clk, []step{
				{cam: "door", track: 1, who: a, photo: 0, q: 0.5},
				{cam: "door", track: 1, end: true, at: time.Second},
			})
			ev := rec.all()
			if len(ev) == 0 {
				t.Fatal("no events")
			}
			d := ev[len(ev)-1].Decision
			if d.Threshold != c.wantThreshold || d.MinMargin != c.wantMargin {
				t.Errorf("threshold %v margin %v, want %v / %v", d.Threshold, d.MinMargin, c.wantThreshold, c.wantMargin)
			}
			if want := small.P(d.Similarity, d.Margin); d.Confidence != want && !c.floor {
				t.Errorf("confidence %v, want the 4-person logistic's %v", d.Confidence, want)
			}
		})
	}
}

// TestVisitsDirect: a visit with direct faces (read without SR) fuses only
// those and is decided by the calibration of the smallest direct scale
// among them (the largest square); a direct scale without an entry falls
// back to the match thresholds; SR shots are still listed.
func TestVisitsDirect(t *testing.T) {
	fx := newVisitFixture(t)
	a := fx.person(0)
	cal := &Calibration{Source: "test", Entries: []CalibrationEntry{
		{Scale: 3, Shots: 1, Identify: 0.5, Margin: 0.01},
		{Scale: 5, Shots: 1, Identify: 0.6, Margin: 0.01},
		{Scale: 5, Shots: 2, Identify: 0.55, Margin: 0.01},
		{Scale: 8, Shots: 1, Identify: 0.999, Margin: 0.02},
	}}
	fb := Thresholds{Identify: 0.7, Margin: 0.03, Verify: 0.93}
	for _, c := range []struct {
		name          string
		steps         []step
		wantShots     int
		wantThreshold float64
		wantDirect    []bool
		wantKnown     bool
	}{
		{"SR then direct", []step{{who: "stranger 0", q: 0.9}, {who: a, photo: 1, q: 0.5, at: time.Second, direct: 5}},
			1, 0.6, []bool{false, true}, true},
		{"two scales", []step{{who: a, q: 0.5, direct: 5}, {who: a, photo: 1, q: 0.5, at: time.Second, direct: 3}},
			2, 0.5, []bool{true, true}, true},
		{"two at one scale", []step{{who: a, q: 0.5, direct: 5}, {who: a, photo: 1, q: 0.5, at: time.Second, direct: 5}},
			2, 0.55, []bool{true, true}, true},
		{"no entry", []step{{who: a, q: 0.5, direct: 6}}, 1, 0.7, []bool{true}, true},
		{"SR only", []step{{who: a, q: 0.5}}, 1, 0.999, []bool{false}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var rec recorder
			clk := &clock{t: t0}
			vs, err := NewVisits(VisitOptions{Searcher: fx.g, Emit: rec.Emit, Calibration: cal, Fallback: fb, Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			steps := slices.Clone(c.steps)
			for i := range steps {
				steps[i].cam, steps[i].track = "door", 1
			}
			fx.run(t, vs, clk, append(steps, step{cam: "door", track: 1, end: true, at: 5 * time.Second}))
			ev := rec.all()
			if len(ev) == 0 {
				t.Fatal("no events")
			}
			end := ev[len(ev)-1]
			d := end.Decision
			if d.Shots != c.wantShots || d.Threshold != c.wantThreshold || d.Known != c.wantKnown {
				t.Errorf("fused %d shots at threshold %v, known %v (%s); want %d at %v, known %v", d.Shots, d.Threshold, d.Known, d.Name, c.wantShots, c.wantThreshold, c.wantKnown)
			}
			if d.Known && d.Name != a {
				t.Errorf("named %q, want %q", d.Name, a)
			}
			var direct []bool
			for _, s := range end.Shots {
				direct = append(direct, s.Direct)
			}
			if !slices.Equal(direct, c.wantDirect) {
				t.Errorf("shots direct %v, want %v", direct, c.wantDirect)
			}
		})
	}
}
