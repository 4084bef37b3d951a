package publish

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/srdgd/srdgd/face"
)

// recorder is a sink that keeps what it got; gate, when set, holds every
// Publish until it is closed or the context ends (a sink that is behind).
type recorder struct {
	mu      sync.Mutex
	ids     []string
	got     chan struct{} // one per Publish that returned
	entered chan struct{} // one per Publish called
	gate    chan struct{}
	fail    bool
}

func newRecorder() *recorder {
	return &recorder{got: make(chan struct{}, 1000), entered: make(chan struct{}, 1000)}
}

func (r *recorder) Publish(ctx context.Context, h *face.Hit) error {
	r.entered <- struct{}{}
	defer func() { r.got <- struct{}{} }()
	if r.gate != nil {
		select {
		case <-r.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if r.fail {
		return errors.New("refused")
	}
	r.mu.Lock()
	r.ids = append(r.ids, h.ID)
	r.mu.Unlock()
	return nil
}

func (r *recorder) wait(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-r.got:
		case <-time.After(10 * time.Second):
			t.Fatalf("the sink got %d of %d hits", len(r.snapshot()), n)
		}
	}
}

func (r *recorder) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ids...)
}

func hits(n int) []*face.Hit {
	out := make([]*face.Hit, n)
	for i := range out {
		out[i] = &face.Hit{ID: fmt.Sprintf("hit-%02d", i), Camera: "door"}
	}
	return out
}

func runFanout(t *testing.T, f *Fanout, ctx context.Context) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	return done
}

func waitStopped(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// TestFanoutSlowSinkDoesNotStallOthers: a sink that takes no hit holds up
// neither Publish nor the other sinks; its queue keeps the newest hits and
// counts what it dropped; Run stops with the sink still stuck.
func TestFanoutSlowSinkDoesNotStallOthers(t *testing.T) {
	slow, fast, refusing := newRecorder(), newRecorder(), newRecorder()
	slow.gate = make(chan struct{})
	refusing.fail = true
	f, err := NewFanout(FanoutOptions{QueueSize: 16, DrainTimeout: 50 * time.Millisecond,
		Sinks: []NamedSink{{"slow", slow}, {"fast", fast}, {"refusing", refusing}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := runFanout(t, f, ctx)
	hs := hits(20)
	f.Publish(ctx, hs[0])
	select { // the slow sink holds hit-00 in Publish; the others go to queues
	case <-slow.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow sink was never called")
	}
	// two waves of less than a queue each (hit-00 and nine, then ten), so
	// that the sinks that keep up never drop
	for _, wave := range [][]*face.Hit{hs[1:10], hs[10:]} {
		for _, h := range wave {
			if err := f.Publish(ctx, h); err != nil {
				t.Fatal(err)
			}
		}
		// both sinks that keep up must have taken the wave before the next
		// (on a loaded machine their goroutines may not have run yet)
		fast.wait(t, 10)
		refusing.wait(t, 10)
	}
	if got := fast.snapshot(); len(got) != 20 || got[0] != "hit-00" || got[19] != "hit-19" {
		t.Errorf("fast sink got %v, want hit-00 .. hit-19 in order", got)
	}
	st := map[string]SinkStats{}
	for _, s := range f.Stats() {
		st[s.Name] = s
	}
	if s := st["fast"]; s.Delivered != 20 || s.Dropped != 0 {
		t.Errorf("fast: %+v", s)
	}
	if s := st["refusing"]; s.Failed != 20 || s.Delivered != 0 || s.Dropped != 0 {
		t.Errorf("refusing: %+v", s)
	}
	// hit-00 in the sink, the newest 16 queued: the 3 in between dropped
	if s := st["slow"]; s.Delivered != 0 || s.Queued != 16 || s.Dropped != 3 {
		t.Errorf("slow: %+v", s)
	}
	cancel()
	waitStopped(t, done)
	if got := slow.snapshot(); len(got) != 0 {
		t.Errorf("the stuck sink got %v", got)
	}
}

// TestFanoutDrainsOnStop: hits queued when the context ends still reach the
// sinks (a hit accepted before a shutdown is not lost between match and the
// MQTT spool), in order.
func TestFanoutDrainsOnStop(t *testing.T) {
	a, b := newRecorder(), newRecorder()
	f, err := NewFanout(FanoutOptions{Sinks: []NamedSink{{"a", a}, {"b", b}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	for _, h := range hits(3) {
		f.Publish(ctx, h)
	}
	cancel()
	waitStopped(t, runFanout(t, f, ctx))
	for name, r := range map[string]*recorder{"a": a, "b": b} {
		if got := r.snapshot(); len(got) != 3 || got[0] != "hit-00" || got[2] != "hit-02" {
			t.Errorf("sink %s got %v after the drain, want hit-00 .. hit-02", name, got)
		}
	}
}

func TestFanoutOptions(t *testing.T) {
	r := newRecorder()
	for _, o := range []FanoutOptions{
		{Sinks: []NamedSink{{"a", r}, {"a", r}}},
		{Sinks: []NamedSink{{"", r}}},
		{Sinks: []NamedSink{{"a", nil}}},
		{QueueSize: -1},
	} {
		if _, err := NewFanout(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	f, _ := NewFanout(FanoutOptions{})
	if err := f.Publish(context.Background(), nil); err == nil {
		t.Error("nil hit accepted")
	}
}

// visitRecorder is a visit sink that keeps the ids and revisions it got.
type visitRecorder struct {
	mu   sync.Mutex
	got  []string
	gate chan struct{}
}

func (r *visitRecorder) PublishVisit(ctx context.Context, v *face.Visit) error {
	if r.gate != nil {
		select {
		case <-r.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	r.got = append(r.got, fmt.Sprintf("%s/%d", v.ID, v.Rev))
	r.mu.Unlock()
	return nil
}

func (r *visitRecorder) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

// TestVisitFanoutDrainsUntilClose: the visit aggregator ends its open
// visits as it stops, after the context ended: the visit fan-out must still
// deliver those end events (published between the end of ctx and Close),
// in order, to every sink, and then return; a visit after Close is refused.
func TestVisitFanoutDrainsUntilClose(t *testing.T) {
	a, slow := &visitRecorder{}, &visitRecorder{gate: make(chan struct{})}
	f, err := NewVisitFanout(VisitFanoutOptions{DrainTimeout: 30 * time.Second,
		Sinks: []NamedVisitSink{{"a", a}, {"slow", slow}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	ev := func(id string, rev int) *face.Visit { return &face.Visit{ID: id, Rev: rev} }
	if err := f.PublishVisit(ctx, ev("v1", 1)); err != nil {
		t.Fatal(err)
	}
	cancel()
	// the producer stops after ctx ended: its last events still go out
	for _, v := range []*face.Visit{ev("v1", 2), ev("v2", 1), ev("v2", 2)} {
		if err := f.PublishVisit(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-done:
		t.Fatal("Run returned before Close")
	case <-time.After(100 * time.Millisecond):
	}
	close(slow.gate) // the slow sink catches up during the drain
	f.Close()
	waitStopped(t, done)
	want := []string{"v1/1", "v1/2", "v2/1", "v2/2"}
	for name, r := range map[string]*visitRecorder{"a": a, "slow": slow} {
		if got := r.snapshot(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("sink %s got %v, want %v", name, got, want)
		}
	}
	if err := f.PublishVisit(ctx, ev("v3", 1)); err == nil {
		t.Error("a visit after Close was accepted")
	}
	for _, s := range f.Stats() {
		if s.Delivered != 4 || s.Failed != 0 || s.Queued != 0 || s.Dropped != 1 {
			t.Errorf("%s: %+v, want 4 delivered and the one after Close dropped", s.Name, s)
		}
	}
}

// TestVisitFanoutDrainTimeout: a producer that never closes, or a sink
// stuck for good, cannot hold up the shutdown past DrainTimeout.
func TestVisitFanoutDrainTimeout(t *testing.T) {
	stuck := &visitRecorder{gate: make(chan struct{})}
	f, err := NewVisitFanout(VisitFanoutOptions{DrainTimeout: 50 * time.Millisecond, Sinks: []NamedVisitSink{{"stuck", stuck}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	f.PublishVisit(ctx, &face.Visit{ID: "v1", Rev: 1})
	f.PublishVisit(ctx, &face.Visit{ID: "v1", Rev: 2})
	cancel()
	waitStopped(t, done) // without Close, with the sink stuck
	if got := stuck.snapshot(); len(got) != 0 {
		t.Errorf("the stuck sink got %v", got)
	}
}

func TestVisitFanoutOptions(t *testing.T) {
	r := &visitRecorder{}
	for _, o := range []VisitFanoutOptions{
		{Sinks: []NamedVisitSink{{"a", r}, {"a", r}}},
		{Sinks: []NamedVisitSink{{"", r}}},
		{Sinks: []NamedVisitSink{{"a", nil}}},
		{QueueSize: -1},
		{DrainTimeout: -time.Second},
	} {
		if _, err := NewVisitFanout(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	f, _ := NewVisitFanout(VisitFanoutOptions{})
	if err := f.PublishVisit(context.Background(), nil); err == nil {
		t.Error("nil visit accepted")
	}
}
