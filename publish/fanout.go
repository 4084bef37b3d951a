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

// NamedSink is a hit sink with the name its logs and stats use.
type NamedSink struct {
	Name string
	Sink Sink
}

// NamedVisitSink is a visit sink with the name its logs and stats use.
type NamedVisitSink struct {
	Name string
	Sink VisitSink
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

// VisitFanoutOptions configure NewVisitFanout.
type VisitFanoutOptions struct {
	// Sinks receive every visit event, each from its own queue and
	// goroutine, in the order the events were published.
	Sinks []NamedVisitSink
	// QueueSize is each sink's queue (default 256 events; visits are few,
	// a full queue means the sink is stuck): when it is full the oldest
	// event waiting for that sink is dropped and counted.
	QueueSize int
	// DrainTimeout bounds the shutdown (default 2 s): once ctx ended, Run
	// waits for Close (the producer has stopped: the visit aggregator ends
	// every open visit as it stops, and those end events are published
	// then) and delivers everything queued until then, within this time.
	DrainTimeout time.Duration
	// WarnInterval aggregates drops per sink into one warning (default 10 s).
	WarnInterval time.Duration
	Logger       *slog.Logger
}

// SinkStats are one sink's counters.
type SinkStats struct {
	Name string
	// Delivered items (hits or visit events) the sink accepted, Failed
	// those it refused, Dropped those its full queue discarded (or that
	// came after Close); Queued is waiting now.
	Delivered, Failed, Dropped uint64
	Queued                     int
}

// Fanout hands every hit to every sink without letting one sink hold up
// the pipeline or the other sinks: Publish queues the hit per sink and
// returns; Run delivers each queue from its own goroutine (a history INSERT
// or a spool fsync happens there, never on the match stage's goroutine).
type Fanout struct {
	*fanout[*face.Hit]
}

// VisitFanout is the Fanout of visit events: PublishVisit queues the event
// per sink and returns (it runs on the visit aggregator's goroutine, with
// the aggregator's lock held); Run delivers each queue from its own
// goroutine; Close, called once the aggregator has stopped, lets Run drain
// and return.
type VisitFanout struct {
	*fanout[*face.Visit]
}

var (
	_ Sink      = (*Fanout)(nil)
	_ VisitSink = (*VisitFanout)(nil)
)

// NewFanout validates the options.
func NewFanout(o FanoutOptions) (*Fanout, error) {
	f, err := newFanout[*face.Hit](queueOptions{kind: "hit", size: o.QueueSize, defSize: 64, drain: o.DrainTimeout,
		warn: o.WarnInterval, log: o.Logger}, func(h *face.Hit) string { return h.ID })
	if err != nil {
		return nil, err
	}
	ff := &Fanout{f}
	for _, s := range o.Sinks {
		if err := ff.Add(s); err != nil {
			return nil, err
		}
	}
	return ff, nil
}

// Add adds a sink; only before Run (the composition root adds the sinks
// as it builds them).
func (f *Fanout) Add(s NamedSink) error {
	if s.Sink == nil {
		return f.add(s.Name, nil)
	}
	return f.add(s.Name, s.Sink.Publish)
}

// Publish queues h for every sink; it never blocks. A sink whose queue is
// full loses its oldest waiting hit (counted, and logged at most once per
// WarnInterval); the other sinks are not affected.
func (f *Fanout) Publish(_ context.Context, h *face.Hit) error {
	if h == nil {
		return errors.New("publish fan-out: nil hit")
	}
	return f.push(h)
}

// NewVisitFanout validates the options.
func NewVisitFanout(o VisitFanoutOptions) (*VisitFanout, error) {
	f, err := newFanout[*face.Visit](queueOptions{kind: "visit", size: o.QueueSize, defSize: 256, drain: o.DrainTimeout,
		warn: o.WarnInterval, log: o.Logger, waitClose: true}, func(v *face.Visit) string { return v.ID })
	if err != nil {
		return nil, err
	}
	vf := &VisitFanout{f}
	for _, s := range o.Sinks {
		if err := vf.Add(s); err != nil {
			return nil, err
		}
	}
	return vf, nil
}

// Add adds a visit sink; only before Run.
func (f *VisitFanout) Add(s NamedVisitSink) error {
	if s.Sink == nil {
		return f.add(s.Name, nil)
	}
	return f.add(s.Name, s.Sink.PublishVisit)
}

// PublishVisit queues v for every sink; it never blocks. The sinks share
// the event: they must not modify it. After Close it returns an error.
func (f *VisitFanout) PublishVisit(_ context.Context, v *face.Visit) error {
	if v == nil {
		return errors.New("publish visit fan-out: nil visit")
	}
	return f.push(v)
}

// queueOptions are the options both fan-outs share.
type queueOptions struct {
	kind          string // "hit" or "visit", for errors and logs
	size, defSize int
	drain, warn   time.Duration
	log           *slog.Logger
	waitClose     bool // Run waits for Close after ctx ended
}

// fanout is the machinery of both fan-outs: one drop-oldest queue and one
// goroutine per sink.
type fanout[T any] struct {
	o       queueOptions
	id      func(T) string
	log     *slog.Logger
	sinks   []*fanSink[T]
	names   map[string]bool
	started atomic.Bool
	closed  atomic.Bool
	closeCh chan struct{}
	once    sync.Once
}

type fanSink[T any] struct {
	name              string
	send              func(context.Context, T) error
	q                 *queue.Queue[T]
	delivered, failed atomic.Uint64

	warnMu   sync.Mutex
	lastWarn time.Time
	warnN    int
}

func newFanout[T any](o queueOptions, id func(T) string) (*fanout[T], error) {
	if o.size == 0 {
		o.size = o.defSize
	}
	if o.drain == 0 {
		o.drain = 2 * time.Second
	}
	if o.warn == 0 {
		o.warn = 10 * time.Second
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.size < 1 || o.drain < 0 {
		return nil, fmt.Errorf("publish %s fan-out: queue size %d and drain timeout %v: want at least 1 and not negative", o.kind, o.size, o.drain)
	}
	return &fanout[T]{o: o, id: id, log: o.log.With("component", "publish"), names: map[string]bool{}, closeCh: make(chan struct{})}, nil
}

func (f *fanout[T]) add(name string, send func(context.Context, T) error) error {
	if send == nil || name == "" || f.names[name] {
		return fmt.Errorf("publish %s fan-out: sink %q: want a sink and a unique name", f.o.kind, name)
	}
	if f.started.Load() {
		return fmt.Errorf("publish %s fan-out: sink %q added after Run started", f.o.kind, name)
	}
	f.names[name] = true
	f.sinks = append(f.sinks, &fanSink[T]{name: name, send: send, q: queue.New[T](f.o.size)})
	return nil
}

func (f *fanout[T]) push(v T) error {
	if f.closed.Load() {
		for _, s := range f.sinks {
			s.q.Push(v) // counted as dropped
		}
		return fmt.Errorf("publish %s fan-out: %s %s after Close: not delivered", f.o.kind, f.o.kind, f.id(v))
	}
	for _, s := range f.sinks {
		if s.q.Push(v) {
			f.warnDrop(s)
		}
	}
	return nil
}

// Close tells the fan-out that nothing more will be published: the visit
// fan-out's Run, once its context ended, delivers what is queued and
// returns. Later publishes fail. Safe to call more than once.
func (f *fanout[T]) Close() {
	f.once.Do(func() {
		f.closed.Store(true)
		for _, s := range f.sinks {
			s.q.Close()
		}
		close(f.closeCh)
	})
}

// Run delivers the queues, one goroutine per sink, until ctx ends; then it
// delivers what is still queued within DrainTimeout (the visit fan-out:
// also what is published until Close), waits for every goroutine and
// returns nil.
func (f *fanout[T]) Run(ctx context.Context) error {
	f.started.Store(true)
	var wg sync.WaitGroup
	for _, s := range f.sinks {
		wg.Go(func() { f.deliver(ctx, s) })
	}
	wg.Wait()
	return nil
}

func (f *fanout[T]) deliver(ctx context.Context, s *fanSink[T]) {
	// The sinks get a context that outlives ctx by DrainTimeout: an item in
	// flight when the stop begins (an INSERT, a spool append) completes,
	// and a sink stuck for good cannot hold the stop up for longer.
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(f.o.drain, cancel) })
	defer stop()
	for {
		v, err := s.q.Pop(ctx)
		if err != nil {
			break
		}
		f.send(sctx, s, v)
	}
	for sctx.Err() == nil {
		var v T
		if f.o.waitClose {
			// until Close (the queue is closed then) and the queue is empty
			var err error
			if v, err = s.q.Pop(sctx); errors.Is(err, queue.ErrClosed) {
				return
			} else if err != nil {
				f.log.Warn(f.o.kind+" fan-out: the producer did not stop within the drain timeout", "sink", s.name,
					"drain_timeout", f.o.drain.String())
				break
			}
		} else {
			var ok bool
			if v, ok, _ = s.q.TryPop(); !ok {
				return
			}
		}
		f.send(sctx, s, v)
	}
	if n := s.q.Len(); n > 0 {
		f.log.Warn(f.o.kind+"s not delivered: the drain timeout ended first", "sink", s.name, "count", n, "drain_timeout", f.o.drain.String())
	}
}

func (f *fanout[T]) send(ctx context.Context, s *fanSink[T], v T) {
	if err := s.send(ctx, v); err != nil {
		s.failed.Add(1)
		f.log.Warn(f.o.kind+" not accepted", "sink", s.name, f.o.kind, f.id(v), "err", err)
		return
	}
	s.delivered.Add(1)
}

// warnDrop logs a sink's drops at most once per WarnInterval, with the
// count since the last warning.
func (f *fanout[T]) warnDrop(s *fanSink[T]) {
	s.warnMu.Lock()
	defer s.warnMu.Unlock()
	s.warnN++
	if time.Since(s.lastWarn) < f.o.warn {
		return
	}
	f.log.Warn(f.o.kind+"s dropped: the sink is behind", "sink", s.name, "count", s.warnN, "queue", s.q.Cap())
	s.lastWarn, s.warnN = time.Now(), 0
}

// Stats returns every sink's counters, in the order the sinks were added.
func (f *fanout[T]) Stats() []SinkStats {
	out := make([]SinkStats, len(f.sinks))
	for i, s := range f.sinks {
		out[i] = SinkStats{Name: s.name, Delivered: s.delivered.Load(), Failed: s.failed.Load(), Dropped: s.q.Dropped(), Queued: s.q.Len()}
	}
	return out
}
