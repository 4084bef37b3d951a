package live

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/internal/queue"
)

// streamInfo is what the last key unit told about a camera's stream.
type streamInfo struct {
	codec string
	// profile is the SPS's profile_idc and constraint flags (H.264 only).
	profile    [2]byte
	hasProfile bool
}

// camera fans one source's access units out to its viewers. It subscribes to
// the source only while it has viewers, and once at start until the first key
// unit tells the codec (for the camera list and early 415 answers).
type camera struct {
	name string
	src  Source
	log  *slog.Logger

	info      atomic.Pointer[streamInfo]
	readyOnce sync.Once
	ready     chan struct{} // closed once info is set
	kick      chan struct{} // wakes run when a viewer arrives

	mu       sync.Mutex
	viewers  []*viewer
	reserved int // slots held by sessions being set up

	sessions, rejected                    atomic.Uint64
	packets, bytes                        atomic.Uint64
	unitsSent, unitsDropped, unitsSkipped atomic.Uint64
	hitsSent, hitsDropped                 atomic.Uint64
	tracksSent, tracksDropped             atomic.Uint64

	// tracks are the analysed frames' boxes waiting to be labelled and
	// sent (runTracks); labels the tracks' visit decisions.
	tracks *queue.Queue[face.TrackBoxes]
	labels *labelBook
}

func newCamera(name string, src Source, log *slog.Logger) *camera {
	tracks, labels := newTrackQueues()
	return &camera{
		name:   name,
		src:    src,
		log:    log,
		ready:  make(chan struct{}),
		kick:   make(chan struct{}, 1),
		tracks: tracks,
		labels: labels,
	}
}

func (c *camera) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// run is the camera's fan-out loop; it returns when ctx ends.
func (c *camera) run(ctx context.Context, capacity int) {
	for {
		if c.info.Load() != nil && c.viewerCount() == 0 {
			select {
			case <-c.kick:
				continue
			case <-ctx.Done():
				return
			}
		}
		q := c.src.SubscribeAccessUnits(capacity)
		closed := c.pump(ctx, q)
		c.src.UnsubscribeAccessUnits(q)
		if ctx.Err() != nil {
			return
		}
		if closed {
			// The source has stopped for good (its Run returned); try again
			// only when a viewer asks.
			c.log.Debug("camera source closed")
			select {
			case <-c.kick:
			case <-ctx.Done():
				return
			}
		}
	}
}

// pump hands access units from q to the viewers until no viewer is left (once
// the codec is known), ctx ends, or q is closed (closed=true).
func (c *camera) pump(ctx context.Context, q *queue.Queue[*face.AccessUnit]) (closed bool) {
	var lastDropped uint64
	for {
		au, err := q.Pop(ctx)
		if err != nil {
			return errors.Is(err, queue.ErrClosed)
		}
		// A gap in the camera queue breaks every viewer's decoding until the
		// next key unit.
		gap := false
		if d := q.Dropped(); d != lastDropped {
			lastDropped, gap = d, true
		}
		if au.Key {
			c.learn(au)
		}
		c.mu.Lock()
		for _, v := range c.viewers {
			if gap {
				v.gap.Store(true)
			}
			v.push(au)
		}
		n := len(c.viewers) + c.reserved
		c.mu.Unlock()
		if n == 0 && c.info.Load() != nil {
			return false
		}
	}
}

// learn records the codec and H.264 profile of a key unit.
func (c *camera) learn(au *face.AccessUnit) {
	info := &streamInfo{codec: au.Codec}
	if au.Codec == face.CodecH264 {
		for _, n := range au.NALUs {
			if p, ok := spsProfile(n); ok {
				info.profile, info.hasProfile = p, true
				break
			}
		}
	}
	if old := c.info.Load(); old == nil || *old != *info {
		c.info.Store(info)
		c.log.Debug("camera stream", "codec", info.codec, "profile", fmt.Sprintf("%x", info.profile[:]))
	}
	c.readyOnce.Do(func() { close(c.ready) })
}

// waitInfo returns the camera's stream info, waiting up to timeout for the
// first key unit.
func (c *camera) waitInfo(ctx context.Context, timeout time.Duration) (*streamInfo, error) {
	if info := c.info.Load(); info != nil {
		return info, nil
	}
	c.wake()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-c.ready:
		return c.info.Load(), nil
	case <-t.C:
		return nil, fmt.Errorf("camera %q: %w (waited %v)", c.name, ErrNoVideo, timeout)
	case <-ctx.Done():
		return nil, fmt.Errorf("camera %q: waiting for video: %w", c.name, ctx.Err())
	}
}

// reserve takes a viewer slot for a session being set up.
func (c *camera) reserve(max int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.viewers)+c.reserved >= max {
		return false
	}
	c.reserved++
	return true
}

// attach turns a reserved slot into a viewer and wakes the fan-out.
func (c *camera) attach(v *viewer) {
	c.mu.Lock()
	c.reserved--
	c.viewers = append(c.viewers, v)
	c.mu.Unlock()
	c.wake()
}

// release gives back a reserved slot whose session failed to start.
func (c *camera) release() {
	c.mu.Lock()
	c.reserved--
	c.mu.Unlock()
}

func (c *camera) detach(v *viewer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i := slices.Index(c.viewers, v); i >= 0 {
		c.viewers = slices.Delete(c.viewers, i, i+1)
	}
}

func (c *camera) viewerCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.viewers)
}

func (c *camera) viewerList() []*viewer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.viewers)
}

func (c *camera) stats() CameraStats {
	return CameraStats{
		Camera:        c.name,
		Viewers:       c.viewerCount(),
		Sessions:      c.sessions.Load(),
		Rejected:      c.rejected.Load(),
		PacketsSent:   c.packets.Load(),
		BytesSent:     c.bytes.Load(),
		UnitsSent:     c.unitsSent.Load(),
		UnitsDropped:  c.unitsDropped.Load(),
		UnitsSkipped:  c.unitsSkipped.Load(),
		HitsSent:      c.hitsSent.Load(),
		HitsDropped:   c.hitsDropped.Load(),
		TracksSent:    c.tracksSent.Load(),
		TracksDropped: c.tracksDropped.Load(),
	}
}
