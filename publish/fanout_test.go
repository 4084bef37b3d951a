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
		fast.wait(t, 10)
	}
	refusing.wait(t, 20)
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
