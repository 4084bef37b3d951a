package backoff

import (
	"math"
	"testing"
	"time"
)

const ms = time.Millisecond

// step is one call on the backoff: Next (want the step it reaches), or Ended
// after a session of up (want whether it reset).
type step struct {
	ended     bool
	up        time.Duration
	wantStep  time.Duration
	wantReset bool
}

func next(want time.Duration) step { return step{wantStep: want} }
func ended(up time.Duration, reset bool) step {
	return step{ended: true, up: up, wantReset: reset}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		name  string
		b     Backoff
		steps []step
	}{
		{"doubles to the cap", Backoff{Initial: 100 * ms, Max: time.Second},
			[]step{next(100 * ms), next(200 * ms), next(400 * ms), next(800 * ms), next(time.Second), next(time.Second)}},
		{"healthy session resets", Backoff{Initial: 100 * ms, Max: time.Second, ResetAfter: time.Minute},
			[]step{next(100 * ms), next(200 * ms), next(400 * ms), ended(time.Minute, true), next(100 * ms), next(200 * ms)}},
		{"short session does not reset", Backoff{Initial: 100 * ms, Max: time.Second, ResetAfter: time.Minute},
			[]step{next(100 * ms), next(200 * ms), ended(59*time.Second, false), next(400 * ms)}},
		{"reset after any session with ResetAfter 0", Backoff{Initial: 100 * ms, Max: time.Second},
			[]step{next(100 * ms), next(200 * ms), ended(0, true), next(100 * ms)}},
		{"initial above max is the max", Backoff{Initial: 5 * time.Second, Max: time.Second},
			[]step{next(time.Second), next(time.Second)}},
		{"odd cap", Backoff{Initial: 300 * ms, Max: 1000 * ms},
			[]step{next(300 * ms), next(600 * ms), next(1000 * ms), next(1000 * ms)}},
		{"huge cap does not overflow", Backoff{Initial: time.Duration(math.MaxInt64 / 3), Max: time.Duration(math.MaxInt64)},
			[]step{next(time.Duration(math.MaxInt64 / 3)), next(2 * time.Duration(math.MaxInt64/3)), next(time.Duration(math.MaxInt64)), next(time.Duration(math.MaxInt64))}},
		{"zero initial never waits", Backoff{Max: time.Second}, []step{next(0), next(0)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// jitter at both ends of its range: the delay is the step's half
			// and the whole step
			for _, extreme := range []string{"low", "high"} {
				b := tc.b
				b.jitter = func(n int64) int64 {
					if extreme == "low" {
						return 0
					}
					return n
				}
				for i, s := range tc.steps {
					if s.ended {
						if got := b.Ended(s.up); got != s.wantReset {
							t.Fatalf("%s: step %d: Ended(%v) = %v, want %v", extreme, i, s.up, got, s.wantReset)
						}
						continue
					}
					d := b.Next()
					want := s.wantStep / 2
					if extreme == "high" {
						want = s.wantStep
					}
					if b.cur != s.wantStep && !(s.wantStep == 0 && b.cur <= 0) {
						t.Fatalf("%s: step %d: at %v, want %v", extreme, i, b.cur, s.wantStep)
					}
					if d != want && s.wantStep != 0 {
						t.Fatalf("%s: step %d: delay %v, want %v", extreme, i, d, want)
					}
					if s.wantStep == 0 && d != 0 {
						t.Fatalf("%s: step %d: delay %v, want 0", extreme, i, d)
					}
				}
			}
		})
	}
}

// TestRounds (moved from ingest) uses the real random source: steps double
// from Initial and stop at Max, each delay jittered into [step/2, step],
// over two rounds with a Reset between, and the jitter really varies.
func TestRounds(t *testing.T) {
	b := Backoff{Initial: 100 * time.Millisecond, Max: time.Second}
	steps := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for round := range 2 {
		for i, step := range steps {
			step *= time.Millisecond
			d := b.Next()
			if d < step/2 || d > step {
				t.Fatalf("round %d attempt %d: delay %v outside [%v, %v]", round, i, d, step/2, step)
			}
		}
		b.Reset()
	}
	// Jitter really varies (1000 draws from a range of 500 ms).
	seen := map[time.Duration]bool{}
	for range 1000 {
		seen[b.Next()] = true
	}
	if len(seen) < 10 {
		t.Fatalf("only %d distinct delays at the cap: no jitter", len(seen))
	}
}
