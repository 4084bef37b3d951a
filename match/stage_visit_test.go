package match

import (
	"context"
	"testing"
	"time"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/internal/queue"
)

// TestStageFeedsVisits: the match stage hands each decided shot, with its
// descriptor, to the visit aggregator, and a track-end notice in the same
// batch ends the track's visit after the shots before it.
func TestStageFeedsVisits(t *testing.T) {
	emb := testEmbedder(t)
	fx := newFixture(t, 2, 3)
	ctx := context.Background()
	th := Thresholds{Identify: 0.93, Margin: 0.02, Verify: 0.93}
	g := stageGallery(t, emb, fx, th)
	rec := recorder{notify: make(chan struct{}, 1)}
	vs, err := NewVisits(VisitOptions{Searcher: g, Emit: rec.Emit, Calibration: &Calibration{}, Fallback: th})
	if err != nil {
		t.Fatal(err)
	}
	in, out := queue.New[[]*face.Shot](4), queue.New[*face.Hit](8)
	st, err := NewStage(StageOptions{In: in, Out: hitQueue{out}, Gallery: g, TopK: 2, Thresholds: th, Visits: vs})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1000, 0)
	known := srShot(t, fx.probe[fx.people[1]], 1)
	known.Probe.FrameTime, known.Probe.TrackStart, known.Probe.Quality.Value = t0, t0.Add(-time.Second), 0.5
	stranger := srShot(t, fx.strangers[0], 2)
	stranger.Probe.FrameTime = t0
	in.Push([]*face.Shot{known, stranger})
	in.Push([]*face.Shot{{Probe: face.TrackEnd("door", 1, t0.Add(-time.Second), t0.Add(2*time.Second))}})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- st.Run(rctx) }()
	for range 2 {
		if _, err := out.Pop(rctx); err != nil {
			t.Fatal(err)
		}
	}
	for len(rec.all()) < 2 {
		select {
		case <-rec.notify:
		case <-time.After(30 * time.Second):
			t.Fatalf("%d visit events, want new and end", len(rec.all()))
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ev := rec.all()
	if len(ev) != 2 || ev[0].State != face.VisitNew || ev[1].State != face.VisitEnd || ev[1].TrackID != 1 ||
		!ev[1].Decision.Known || ev[1].Decision.Name != fx.people[1] || !ev[1].Start.Equal(t0.Add(-time.Second)) ||
		!ev[1].LastSeen.Equal(t0.Add(2*time.Second)) || len(ev[1].Shots) != 1 || ev[1].Shots[0].Quality != 0.5 {
		for _, v := range ev {
			t.Logf("%+v", v)
		}
		t.Fatalf("%d events: want track 1's new and end (known %s, from its one shot)", len(ev), fx.people[1])
	}
	if s := vs.Stats(); s.Open != 1 || s.Kept != 2 {
		t.Errorf("visits %+v: want the stranger's still open, 2 shots kept", s)
	}
	if s := st.Stats(); s.Shots != 2 {
		t.Errorf("stage shots %d, want 2 (the notice is not a shot)", s.Shots)
	}
}
