package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/internal/queue"
)

// NamedSink is a sink with the name its logs and stats use.
type NamedSink struct {
	Name string
	Sink Sink
}

// FanoutOptions configure NewFanout.
type FanoutOptions struct {
	// Sinks receive every hit, each from its own queue and goroutine.
	Sinks []NamedSink
	// QueueSize is each sink's queue (default 64 hits); when it is full the
	// oldest hit waiting for that sink is dropped and counted.
	QueueSize int
	// DrainTimeout bounds how long Run still delivers the hits queued when
	// ctx ended (default 2 s): a hit accepted just before a shutdown
	// reaches the history and the MQTT spool.
	DrainTimeout time.Duration
	// WarnInterval aggregates drops per sink into one warning (default 10 s).
	WarnInterval time.Duration
	Logger       *slog.Logger
}

// SinkStats are one sink's counters.
type SinkStats struct {
	Name string
	// Delivered hits the sink accepted, Failed those it refused, Dropped
	// those its full queue discarded; Queued is waiting now.
	Delivered, Failed, Dropped uint64
	Queued                     int
}

// Fanout hands every hit to every sink without letting one sink hold up
// the pipeline or the other sinks: Publish queues the hit per sink and
// returns; Run delivers each queue from its own goroutine (a history INSERT
// or a spool fsync happens there, never on the match stage's goroutine).
type Fanout struct {
	o     FanoutOptions
	log   *slog.Logger
	sinks []*fanSink
}

type fanSink struct {
	NamedSink
	q                 *queue.Queue[*face.Hit]
	delivered, failed atomic.Uint64

	warnMu   sync.Mutex
	lastWarn time.Time
	warnN    int
}

// NewFanout validates the options.
func NewFanout(o FanoutOptions) (*Fanout, error) {
	if o.QueueSize == 0 {
		o.QueueSize = 64
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = 2 * time.Second
	}
	if o.WarnInterval == 0 {
		o.WarnInterval = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.QueueSize < 1 || o.DrainTimeout < 0 {
		return nil, fmt.Errorf("publish fan-out: queue size %d and drain timeout %v: want at least 1 and not negative", o.QueueSize, o.DrainTimeout)
	}
	f := &Fanout{o: o, log: o.Logger.With("component", "publish")}
	seen := map[string]bool{}
	for _, s := range o.Sinks {
		if s.Sink == nil || s.Name == "" || seen[s.Name] {
			return nil, fmt.Errorf("publish fan-out: sink %q: want a sink and a unique name", s.Name)
		}
		seen[s.Name] = true
		f.sinks = append(f.sinks, &fanSink{NamedSink: s, q: queue.New[*face.Hit](o.QueueSize)})
	}
	return f, nil
}

var _ Sink = (*Fanout)(nil)

// Publish queues h for every sink; it never blocks. A sink whose queue is
// full loses its oldest waiting hit (counted, and logged at most once per
// WarnInterval); the other sinks are not affected.
func (f *Fanout) Publish(_ context.Context, h *face.Hit) error {
	if h == nil {
		return errors.New("publish fan-out: nil hit")
	}
	for _, s := range f.sinks {
		if s.q.Push(h) {
			f.warnDrop(s)
		}
	}
	return nil
}

// Run delivers the queues, one goroutine per sink, until ctx ends; then it
// delivers what is still queued within DrainTimeout, waits for every
// goroutine and returns nil.
func (f *Fanout) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, s := range f.sinks {
		wg.Go(func() { f.deliver(ctx, s) })
	}
	wg.Wait()
	return nil
}

func (f *Fanout) deliver(ctx context.Context, s *fanSink) {
	for {
		h, err := s.q.Pop(ctx)
		if err != nil {
			break
		}
		f.send(ctx, s, h)
	}
	// drain: the sinks' own Run may be stopping too; bounded, and without
	// the ended ctx so that a spool append or an INSERT still completes
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.o.DrainTimeout)
	defer cancel()
	for dctx.Err() == nil {
		h, ok, _ := s.q.TryPop()
		if !ok {
			return
		}
		f.send(dctx, s, h)
	}
}

func (f *Fanout) send(ctx context.Context, s *fanSink, h *face.Hit) {
	if err := s.Sink.Publish(ctx, h); err != nil {
		s.failed.Add(1)
		f.log.Warn("hit not accepted", "sink", s.Name, "hit", h.ID, "err", err)
		return
	}
	s.delivered.Add(1)
}

// warnDrop logs a sink's drops at most once per WarnInterval, with the
// count since the last warning.
func (f *Fanout) warnDrop(s *fanSink) {
	s.warnMu.Lock()
	defer s.warnMu.Unlock()
	s.warnN++
	if time.Since(s.lastWarn) < f.o.WarnInterval {
		return
	}
	f.log.Warn("hits dropped: the sink is behind", "sink", s.Name, "count", s.warnN, "queue", s.q.Cap())
	s.lastWarn, s.warnN = time.Now(), 0
}

// Stats returns every sink's counters, in the order of Sinks.
func (f *Fanout) Stats() []SinkStats {
	out := make([]SinkStats, len(f.sinks))
	for i, s := range f.sinks {
		out[i] = SinkStats{Name: s.Name, Delivered: s.delivered.Load(), Failed: s.failed.Load(), Dropped: s.q.Dropped(), Queued: s.q.Len()}
	}
	return out
}
