package rtspserver

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"
)

// Keeper keeps an ffmpeg publisher running: when the process exits (the
// server dropped a publisher that stalled past its read timeout, ffmpeg
// failed on a broken pipe) it starts it again after a short backoff, so
// that a demo camera comes back within seconds instead of answering 404
// to every reader from then on.
type Keeper struct {
	url      string
	o        FFmpegOptions
	log      *slog.Logger
	cur      atomic.Pointer[Publisher]
	restarts atomic.Uint64
	// MinBackoff and MaxBackoff bound the wait before a restart (doubling
	// while ffmpeg keeps exiting within a minute of its start).
	MinBackoff, MaxBackoff time.Duration
	// Present, when set, says whether the server has the publisher; an
	// ffmpeg that runs while the server has had none for StallAfter (it
	// stalled, the server dropped it, ffmpeg never noticed) is killed and
	// restarted. Default StallAfter: 15 s.
	Present    func() bool
	StallAfter time.Duration
}

// NewKeeper starts ffmpeg publishing to url (as PublishFFmpeg) and returns
// the keeper; Run restarts it until ctx ends.
func NewKeeper(ctx context.Context, url string, o FFmpegOptions, log *slog.Logger) (*Keeper, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p, err := PublishFFmpeg(ctx, url, o)
	if err != nil {
		return nil, err
	}
	k := &Keeper{url: url, o: o, log: log, MinBackoff: 500 * time.Millisecond, MaxBackoff: 10 * time.Second, StallAfter: 15 * time.Second}
	k.cur.Store(p)
	return k, nil
}

// Publisher is the ffmpeg process running now.
func (k *Keeper) Publisher() *Publisher { return k.cur.Load() }

// Restarts counts the restarts since NewKeeper.
func (k *Keeper) Restarts() uint64 { return k.restarts.Load() }

// Run waits for the publisher to exit and starts it again, until ctx ends;
// it then stops the running one and returns nil.
func (k *Keeper) Run(ctx context.Context) error {
	backoff := k.MinBackoff
	started := time.Now()
	for {
		p := k.cur.Load()
		if !k.watch(ctx, p, started) {
			p.Stop()
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(started) > time.Minute {
			backoff = k.MinBackoff
		}
		k.log.Warn("demo camera stream ended: restarting ffmpeg", "url", k.url, "err", p.Err(),
			"ffmpeg", lastLine(p.Stderr()), "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, k.MaxBackoff)
		np, err := PublishFFmpeg(ctx, k.url, k.o)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			k.log.Warn("demo camera stream: ffmpeg did not start", "err", err)
			continue // p stays, Done: waits the backoff again
		}
		started = time.Now()
		k.cur.Store(np)
		k.restarts.Add(1)
	}
}

// watch waits for p to exit, killing it when the server has gone without
// its publisher for StallAfter; false when ctx ended first.
func (k *Keeper) watch(ctx context.Context, p *Publisher, started time.Time) bool {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var missing time.Time // since when the server has had no publisher
	for {
		select {
		case <-ctx.Done():
			return false
		case <-p.Done():
			return true
		case <-tick.C:
		}
		if k.Present == nil || time.Since(started) < k.StallAfter {
			continue
		}
		switch {
		case k.Present():
			missing = time.Time{}
		case missing.IsZero():
			missing = time.Now()
		case time.Since(missing) >= k.StallAfter:
			k.log.Warn("demo camera stream: the server has had no publisher for a while but ffmpeg still runs (stalled): killing it",
				"url", k.url, "for", time.Since(missing).Round(time.Second))
			p.Stop()
			return true
		}
	}
}

// lastLine is the last non-empty line of ffmpeg's stderr (bounded).
func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 300 {
		s = s[len(s)-300:]
	}
	return s
}
