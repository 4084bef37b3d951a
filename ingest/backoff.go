package ingest

import (
	"math/rand/v2"
	"time"
)

// backoff yields exponentially growing reconnect delays with jitter and a cap.
// Jitter keeps cameras that failed together (a switch reboot) from reconnecting
// in lockstep.
type backoff struct {
	initial, max time.Duration
	cur          time.Duration
}

// next returns the delay before the next attempt: the current step (initial,
// doubling up to max) scaled by a random factor in [0.5, 1].
func (b *backoff) next() time.Duration {
	switch {
	case b.cur == 0:
		b.cur = b.initial
	case b.cur < b.max:
		b.cur *= 2
	}
	if b.cur > b.max {
		b.cur = b.max
	}
	half := b.cur / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}

// reset starts the sequence over, after a healthy session.
func (b *backoff) reset() { b.cur = 0 }
