// Package queue provides a bounded FIFO queue whose writer never blocks: when the
// queue is full the oldest item is dropped and counted. It is the hand-off between
// pipeline stages, so a slow stage loses old items instead of stalling the one
// before it.
package queue

import (
	"context"
	"errors"
	"sync"
)

// ErrClosed is returned by Pop and TryPop once the queue is closed and drained.
var ErrClosed = errors.New("queue closed")

// Queue is a bounded, drop-oldest FIFO queue that is safe for concurrent use by
// any number of writers and readers.
type Queue[T any] struct {
	mu      sync.Mutex
	buf     []T
	head    int // index of the oldest item
	n       int // number of items
	dropped uint64
	closed  bool

	// notify has room for one wake-up. Push and Close put a token in without
	// blocking; a Pop that finds items left after taking one passes the token on,
	// so every waiting reader is eventually woken.
	notify chan struct{}
}

// New returns a queue holding at most capacity items. A capacity below 1 is
// raised to 1.
func New[T any](capacity int) *Queue[T] {
	if capacity < 1 {
		capacity = 1
	}
	return &Queue[T]{
		buf:    make([]T, capacity),
		notify: make(chan struct{}, 1),
	}
}

// Push appends v. When the queue is full it first discards the oldest item and
// reports dropped=true. Push never blocks. Pushing to a closed queue discards v,
// counts it as dropped and reports dropped=true.
func (q *Queue[T]) Push(v T) (dropped bool) {
	_, dropped = q.PushEvict(v)
	return dropped
}

// PushEvict is Push that also returns the discarded item, so the caller can
// recycle it: the oldest item when the queue was full, or v itself when the
// queue is closed.
func (q *Queue[T]) PushEvict(v T) (evicted T, dropped bool) {
	q.mu.Lock()
	if q.closed {
		q.dropped++
		q.mu.Unlock()
		return v, true
	}
	if q.n == len(q.buf) {
		var zero T
		evicted = q.buf[q.head]
		q.buf[q.head] = zero // release the reference for the garbage collector
		q.head = (q.head + 1) % len(q.buf)
		q.n--
		q.dropped++
		dropped = true
	}
	q.buf[(q.head+q.n)%len(q.buf)] = v
	q.n++
	q.mu.Unlock()
	q.wake()
	return evicted, dropped
}

func (q *Queue[T]) wake() {
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// take removes the oldest item. The caller holds q.mu.
func (q *Queue[T]) take() T {
	var zero T
	v := q.buf[q.head]
	q.buf[q.head] = zero
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return v
}

// TryPop removes and returns the oldest item without waiting. ok is false when
// the queue is empty; err is ErrClosed when it is also closed.
func (q *Queue[T]) TryPop() (v T, ok bool, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n > 0 {
		return q.take(), true, nil
	}
	if q.closed {
		return v, false, ErrClosed
	}
	return v, false, nil
}

// Pop removes and returns the oldest item, waiting until one is available. It
// returns ctx.Err() when ctx ends first, and ErrClosed once the queue is closed
// and every item pushed before Close has been taken.
func (q *Queue[T]) Pop(ctx context.Context) (T, error) {
	for {
		q.mu.Lock()
		if q.n > 0 {
			v := q.take()
			more := q.n > 0 || q.closed
			q.mu.Unlock()
			if more {
				q.wake() // another reader may be waiting
			}
			return v, nil
		}
		if q.closed {
			q.mu.Unlock()
			q.wake()
			var zero T
			return zero, ErrClosed
		}
		q.mu.Unlock()

		select {
		case <-q.notify:
		case <-ctx.Done():
			var zero T
			return zero, ctx.Err()
		}
	}
}

// Len returns the number of queued items.
func (q *Queue[T]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// Cap returns the capacity given to New (at least 1).
func (q *Queue[T]) Cap() int {
	return len(q.buf)
}

// Dropped returns how many items were discarded: overwritten because the queue
// was full, or pushed after Close.
func (q *Queue[T]) Dropped() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dropped
}

// Close stops the queue from accepting items. Items already queued can still be
// popped; after that Pop and TryPop return ErrClosed. Close is idempotent.
func (q *Queue[T]) Close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.wake()
}

// Closed reports whether Close has been called.
func (q *Queue[T]) Closed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}
