package app

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// progress watches one stage: while work is waiting for it (pending > 0) its
// progress counter must move at least every limit, else the stage is wedged.
// An idle stage (nothing pending) is healthy however long it waits.
type progress struct {
	name     string
	pending  func() int
	progress func() uint64
	limit    time.Duration

	last  uint64
	since time.Time // when last changed or the stage was last idle
}

// health is the daemon's liveness check, used by the systemd watchdog (pings
// stop when it fails, and systemd restarts the service) and by GET
// /api/v1/health.
type health struct {
	mu     sync.Mutex
	now    func() time.Time
	stages []*progress
}

func newHealth() *health { return &health{now: time.Now} }

// watch adds a stage.
func (h *health) watch(name string, limit time.Duration, pending func() int, prog func() uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stages = append(h.stages, &progress{name: name, pending: pending, progress: prog, limit: limit,
		last: prog(), since: h.now()})
}

// check returns an error naming every wedged stage.
func (h *health) check() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	var errs []error
	for _, s := range h.stages {
		p := s.progress()
		if p != s.last || s.pending() == 0 {
			s.last, s.since = p, now
			continue
		}
		if age := now.Sub(s.since); age > s.limit {
			errs = append(errs, fmt.Errorf("%s has had work waiting for %s without progress (limit %s)",
				s.name, age.Round(time.Second), s.limit))
		}
	}
	return errors.Join(errs...)
}
