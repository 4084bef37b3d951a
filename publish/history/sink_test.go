package history

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/publish"
)

// TestVisitSinkDrainsOnStop: the history behind the daemon's visit fan-out
// (publish.VisitFanout, its own queue and goroutine). The visit aggregator
// ends its open visits when the daemon stops, after the context ended: those
// end events, and every event accepted before, must be in the store once the
// fan-out returned, each visit at its last revision, encrypted, although the
// store's own Run stopped with the same context.
func TestVisitSinkDrainsOnStop(t *testing.T) {
	ctx := context.Background()
	s := open(t, Options{Path: filepath.Join(t.TempDir(), "history.db"), Key: key(7), Retention: time.Hour})
	f, err := publish.NewVisitFanout(publish.VisitFanoutOptions{DrainTimeout: time.Minute,
		Sinks: []publish.NamedVisitSink{{Name: "history", Sink: s}}})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	storeDone, fanDone := make(chan error, 1), make(chan error, 1)
	go func() { storeDone <- s.Run(rctx) }()
	go func() { fanDone <- f.Run(rctx) }()
	t0 := time.Now().Add(-time.Minute).UTC()
	const n = 40
	ids := make([]string, n)
	for i := range ids {
		ids[i] = face.NewID(t0.Add(time.Duration(i) * time.Second))
		// new, and for the even ones an update naming them
		v := visit(ids[i], "door", t0.Add(time.Duration(i)*time.Second), 1, "", []string{"Ann"})
		if err := f.PublishVisit(ctx, v); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if err := f.PublishVisit(ctx, visit(ids[i], "door", v.Start, 2, "Ann", []string{"Ann"})); err != nil {
				t.Fatal(err)
			}
		}
	}
	stop()
	// the aggregator stopping: every visit ends, after ctx ended
	for i, id := range ids {
		rev := 2
		if i%2 == 0 {
			rev = 3
		}
		name := map[bool]string{true: "Ann"}[i%2 == 0]
		end := visit(id, "door", t0.Add(time.Duration(i)*time.Second), rev, name, []string{"Ann"})
		end.State, end.End = face.VisitEnd, end.LastSeen
		if err := f.PublishVisit(ctx, end); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	for name, done := range map[string]chan error{"fan-out": fanDone, "store": storeDone} {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s Run: %v", name, err)
			}
		case <-time.After(time.Minute):
			t.Fatalf("%s Run did not return", name)
		}
	}
	if st := f.Stats()[0]; st.Delivered != n+n/2+n || st.Failed != 0 || st.Dropped != 0 || st.Queued != 0 {
		t.Errorf("fan-out stats %+v, want %d delivered", st, n+n/2+n)
	}
	if c, err := s.CountVisits(ctx); err != nil || c != n {
		t.Fatalf("%d visits stored (%v), want %d", c, err, n)
	}
	for i, id := range ids {
		v, err := s.GetVisit(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		wantRev, wantKnown := 2, false
		if i%2 == 0 {
			wantRev, wantKnown = 3, true
		}
		if v.State != face.VisitEnd || v.Rev != wantRev || v.Decision.Known != wantKnown {
			t.Errorf("visit %d: state %s rev %d known %v, want end, rev %d, known %v", i, v.State, v.Rev, v.Decision.Known, wantRev, wantKnown)
		}
	}
	yes := true
	if vs, err := s.ListVisits(ctx, VisitQuery{Person: "ann", Known: &yes, Limit: 1000}); err != nil || len(vs) != n/2 {
		t.Errorf("%d known visits of Ann (%v), want %d", len(vs), err, n/2)
	}
}
