// Package backoff is the one reconnect backoff of the daemon (cameras, MQTT):
// exponential from Initial, capped at Max, with jitter, and reset once a
// session has stayed up for ResetAfter. Jitter keeps clients that failed
// together (a switch reboot) from reconnecting in lockstep.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Backoff yields reconnect delays. The zero value of the unexported state is
// the start of a sequence; it is not safe for concurrent use (one owner, the
// reconnect loop).
type Backoff struct {
	// Initial is the first step; each failure doubles it.
	Initial time.Duration
	// Max caps the step; an Initial above Max is taken as Max.
	Max time.Duration
	// ResetAfter: a session that lasted at least this long starts the
	// sequence over (Ended). 0 resets after any session.
	ResetAfter time.Duration

	cur time.Duration
	// jitter returns a value in [0, n]; nil: math/rand/v2 (tests fix it).
	jitter func(n int64) int64
}

// Next returns the delay before the next attempt: the current step
// (Initial, doubling up to Max) scaled by a random factor in [0.5, 1].
func (b *Backoff) Next() time.Duration {
	switch {
	case b.cur <= 0:
		b.cur = b.Initial
	case b.cur > b.Max/2: // doubling would pass the cap (or overflow)
		b.cur = b.Max
	default:
		b.cur *= 2
	}
	if b.cur > b.Max {
		b.cur = b.Max
	}
	if b.cur <= 0 {
		return 0
	}
	half := b.cur / 2
	j := b.jitter
	if j == nil {
		j = func(n int64) int64 { return rand.Int64N(n + 1) }
	}
	return half + time.Duration(j(int64(b.cur-half)))
}

// Reset starts the sequence over.
func (b *Backoff) Reset() { b.cur = 0 }

// Ended reports that a session which stayed up for up has ended; a healthy
// one (up >= ResetAfter) resets the sequence. It returns whether it did.
func (b *Backoff) Ended(up time.Duration) bool {
	if up >= b.ResetAfter {
		b.Reset()
		return true
	}
	return false
}
