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

	// fairKey, when set (Fair), names an item's share and whether it is
	// pinned; served counts the items taken per share.
	fairKey func(T) (string, bool)
	served  map[string]int

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
		evicted = q.remove(q.victim())
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

// Fair makes the queue share itself among keys, for a consumer slower than
// its producers (SR behind the detector: key = camera and track). Items of
// one key keep their order. Pop takes, of the oldest item of each key, a
// pinned one first (in age order), else the one whose key has had the
// fewest items taken, the oldest on a tie; a full queue drops the oldest
// unpinned item of the key with the most items waiting (on a tie the key
// served most, then the oldest), so that one key cannot crowd out the
// others. Taking a pinned item forgets its key's count (for probes: the
// track-end notice). Set it before the queue is used.
func (q *Queue[T]) Fair(key func(T) (k string, pinned bool)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.fairKey, q.served = key, map[string]int{}
}

// at is the i-th oldest item. The caller holds q.mu.
func (q *Queue[T]) at(i int) T { return q.buf[(q.head+i)%len(q.buf)] }

// take removes the item Pop hands out next. The caller holds q.mu.
func (q *Queue[T]) take() T {
	if q.fairKey == nil {
		return q.remove(0)
	}
	best, bestServed := -1, 0
	seen := map[string]bool{}
	for i := 0; i < q.n; i++ {
		k, pinned := q.fairKey(q.at(i))
		if seen[k] {
			continue // a key's oldest item only: its order holds
		}
		seen[k] = true
		if pinned {
			best = i
			break
		}
		if best < 0 || q.served[k] < bestServed {
			best, bestServed = i, q.served[k]
		}
	}
	v := q.remove(best)
	k, pinned := q.fairKey(v)
	if pinned {
		delete(q.served, k)
	} else {
		if len(q.served) > 4*len(q.buf)+1024 { // keys that never got a pinned item
			clear(q.served)
		}
		q.served[k]++
	}
	return v
}

// victim is the index of the item a full queue drops. The caller holds q.mu.
func (q *Queue[T]) victim() int {
	if q.fairKey == nil {
		return 0
	}
	waiting := map[string]int{}
	oldest := map[string]int{}
	var order []string
	for i := 0; i < q.n; i++ {
		k, pinned := q.fairKey(q.at(i))
		if pinned {
			continue
		}
		if _, ok := oldest[k]; !ok {
			oldest[k] = i
			order = append(order, k)
		}
		waiting[k]++
	}
	if len(order) == 0 {
		return 0 // only pinned items: the oldest goes
	}
	v := order[0]
	for _, k := range order[1:] {
		if waiting[k] > waiting[v] || (waiting[k] == waiting[v] && q.served[k] > q.served[v]) {
			v = k
		}
	}
	return oldest[v]
}

// remove takes the i-th oldest item out, closing the gap. The caller holds
// q.mu.
func (q *Queue[T]) remove(i int) T {
	var zero T
	v := q.at(i)
	for j := i; j > 0; j-- { // shift the older ones up by one
		q.buf[(q.head+j)%len(q.buf)] = q.buf[(q.head+j-1)%len(q.buf)]
	}
	q.buf[q.head] = zero // release the reference for the garbage collector
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return v
}

// TryPop removes and returns the oldest item (see Fair) without waiting. ok is false when
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

// Pop removes and returns the oldest item (see Fair), waiting until one is
// available. It
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
