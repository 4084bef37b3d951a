package live

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/internal/queue"
)

const (
	// rtpMTU leaves room for SRTP, the TWCC extension and IPv6/UDP/TURN
	// headers inside a 1500-byte path MTU.
	rtpMTU = 1200
	// maxDCBuffered is how much a data channel may have in flight before
	// further hit messages for that viewer are dropped.
	maxDCBuffered = 1 << 20
	// A PTS that goes back more than maxPTSBack or forward more than
	// maxPTSJump is a discontinuity (the camera reconnected): the RTP clock is
	// rebased so the unit follows the previous one by defaultFrameTicks.
	// Smaller steps back are reordered (B) frames and keep their PTS.
	maxPTSBack        = time.Second
	maxPTSJump        = 5 * time.Second
	defaultFrameTicks = 90000 / 25
	// dropWarnInterval aggregates a viewer's drop warnings.
	dropWarnInterval = 10 * time.Second
)

// viewer is one WHEP session: a peer connection that receives one camera.
type viewer struct {
	id     string
	cam    *camera
	log    *slog.Logger
	pc     *webrtc.PeerConnection
	track  *webrtc.TrackLocalStaticRTP
	sender *webrtc.RTPSender

	aus    *queue.Queue[*face.AccessUnit]
	events *queue.Queue[[]byte]
	tracks *queue.Queue[[]byte] // track-box messages (tracks.go)
	// rtpBase is 1<<32 | tsBase once the video started (0 before): the
	// RTP timestamp of a picture is tsBase + its PTS in 90 kHz ticks.
	rtpBase atomic.Uint64
	gap     atomic.Bool // the camera queue dropped units: wait for a key unit

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when run has torn everything down

	connected     chan struct{}
	connectedOnce sync.Once

	dcMu     sync.Mutex
	dc       *webrtc.DataChannel
	dcOpen   chan struct{}
	openOnce sync.Once

	// Used by the video goroutine only.
	pay     codecs.H264Payloader
	seq     uint16
	tsBase  uint32 // RTP timestamp = tsBase + PTS in 90 kHz ticks
	lastTS  uint32
	lastPTS time.Duration
	started bool
}

func newViewer(ctx context.Context, id string, cam *camera, log *slog.Logger, auQueue, eventQueue int) *viewer {
	ctx, cancel := context.WithCancel(ctx)
	return &viewer{
		id:        id,
		cam:       cam,
		log:       log,
		aus:       queue.New[*face.AccessUnit](auQueue),
		events:    queue.New[[]byte](eventQueue),
		tracks:    queue.New[[]byte](trackViewerQueue),
		ctx:       ctx,
		cancel:    cancel,
		done:      make(chan struct{}),
		connected: make(chan struct{}),
		dcOpen:    make(chan struct{}),
		seq:       uint16(rand.Uint32()),
		tsBase:    rand.Uint32(),
	}
}

// push hands an access unit to the viewer without blocking; when the viewer
// is behind, its oldest unit goes.
func (v *viewer) push(au *face.AccessUnit) { v.aus.Push(au) }

// pushEvent queues a hit message, dropping the oldest when full.
func (v *viewer) pushEvent(msg []byte) {
	if v.events.Push(msg) {
		v.cam.hitsDropped.Add(1)
	}
}

// watch wires the peer connection's callbacks to the viewer's lifetime. The
// callbacks only signal; run does the work.
func (v *viewer) watch() {
	v.pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		v.log.Debug("peer connection state", "state", st.String())
		switch st {
		case webrtc.PeerConnectionStateConnected:
			v.connectedOnce.Do(func() { close(v.connected) })
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			v.cancel()
		}
	})
	v.pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		if dc.Label() != eventsLabel {
			v.log.Debug("ignoring data channel", "label", dc.Label())
			return
		}
		v.dcMu.Lock()
		v.dc = dc
		v.dcMu.Unlock()
		dc.OnOpen(func() { v.openOnce.Do(func() { close(v.dcOpen) }) })
	})
}

// run serves the session until its context ends (DELETE, peer gone, Run
// ending), then closes the peer connection and waits for its helpers.
func (v *viewer) run(connectTimeout time.Duration, onEnd func()) {
	defer close(v.done)
	var wg sync.WaitGroup
	wg.Go(v.readRTCP)
	wg.Go(v.sendEvents)
	wg.Go(v.sendTracks)
	wg.Go(func() { v.expireUnconnected(connectTimeout) })
	v.sendVideo()

	onEnd()
	v.aus.Close()
	v.events.Close()
	v.tracks.Close()
	if d := v.aus.Dropped(); d > 0 {
		v.log.Debug("viewer queue drops", "units", d)
	}
	if err := v.pc.Close(); err != nil {
		v.log.Debug("close peer connection", "err", err)
	}
	wg.Wait()
	v.log.Info("viewer left")
}

// expireUnconnected ends a session whose peer never connected, such as a
// browser that went away after posting its offer.
func (v *viewer) expireUnconnected(timeout time.Duration) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-v.connected:
	case <-v.ctx.Done():
	case <-t.C:
		v.log.Info("viewer did not connect in time", "timeout", timeout)
		v.cancel()
	}
}

// readRTCP drains RTCP so the interceptors (NACK responder, reports) see it.
// It ends when the peer connection closes.
func (v *viewer) readRTCP() {
	buf := make([]byte, 1500)
	for {
		if _, _, err := v.sender.Read(buf); err != nil {
			return
		}
	}
}

func (v *viewer) sendVideo() {
	var g keyGate
	var warnedAt time.Time
	var unwarned uint64
	for {
		au, err := v.aus.Pop(v.ctx)
		if err != nil {
			return
		}
		dropped := v.aus.Dropped()
		if d := dropped - g.dropped; d > 0 {
			v.cam.unitsDropped.Add(d)
			// One line per interval, not per drop: a viewer on a bad link
			// drops continuously.
			if unwarned += d; time.Since(warnedAt) >= dropWarnInterval {
				v.log.Warn("viewer behind, dropped access units until the next key frame",
					"units", unwarned, "queue", v.aus.Cap())
				warnedAt, unwarned = time.Now(), 0
			}
		}
		if !g.admit(au, dropped, v.gap.Swap(false)) {
			v.cam.unitsSkipped.Add(1)
			continue
		}
		if err := v.writeUnit(au); err != nil {
			if errors.Is(err, io.ErrClosedPipe) {
				return
			}
			v.log.Debug("write rtp", "err", err)
		}
	}
}

// keyGate decides which access units a viewer may decode: none before the
// first key unit, and after any loss (its own queue dropped units, or the
// camera's queue did: gap) none until the next key unit, since a predicted
// picture without its references decodes to garbage.
type keyGate struct {
	dropped uint64 // the viewer queue's drop count at the last unit
	synced  bool
}

func (g *keyGate) admit(au *face.AccessUnit, dropped uint64, gap bool) bool {
	if dropped != g.dropped || gap {
		g.dropped, g.synced = dropped, false
	}
	if au.Codec != face.CodecH264 {
		g.synced = false
		return false
	}
	if !g.synced && !au.Key {
		return false
	}
	g.synced = true
	return true
}

// writeUnit packetises one access unit (RFC 6184: single NAL units, STAP-A for
// the parameter sets, FU-A above the MTU) with one RTP timestamp and the
// marker bit on its last packet.
func (v *viewer) writeUnit(au *face.AccessUnit) error {
	ticks := uint32(au.PTS * 90000 / time.Second) // wraps like RTP timestamps do
	if !v.started {
		v.tsBase -= ticks
	} else if d := au.PTS - v.lastPTS; d < -maxPTSBack || d > maxPTSJump {
		v.tsBase = v.lastTS + defaultFrameTicks - ticks
	}
	ts := v.tsBase + ticks
	v.started, v.lastTS, v.lastPTS = true, ts, au.PTS
	v.rtpBase.Store(1<<32 | uint64(v.tsBase))

	var payloads [][]byte
	for _, n := range au.NALUs {
		payloads = append(payloads, v.pay.Payload(rtpMTU, n)...)
	}
	var errs []error
	for i, p := range payloads {
		pkt := &rtp.Packet{
			Header: rtp.Header{
				Version:        2,
				Marker:         i == len(payloads)-1,
				SequenceNumber: v.seq,
				Timestamp:      ts,
			},
			Payload: p,
		}
		v.seq++
		if err := v.track.WriteRTP(pkt); err != nil {
			errs = append(errs, err)
			continue
		}
		v.cam.packets.Add(1)
		v.cam.bytes.Add(uint64(pkt.MarshalSize()))
	}
	v.cam.unitsSent.Add(1)
	return errors.Join(errs...)
}

func (v *viewer) dataChannel() *webrtc.DataChannel {
	v.dcMu.Lock()
	defer v.dcMu.Unlock()
	return v.dc
}

// sendEvents sends queued hit messages once the "events" channel is open.
func (v *viewer) sendEvents() {
	v.sendQueued(v.events, maxDCBuffered, &v.cam.hitsSent, &v.cam.hitsDropped, "send hit")
}

// sendTracks sends the viewer's queued box messages once the "events"
// channel is open; behind, it drops them rather than let them queue.
func (v *viewer) sendTracks() {
	v.sendQueued(v.tracks, maxTrackBuffered, &v.cam.tracksSent, &v.cam.tracksDropped, "send track boxes")
}

// sendQueued sends q's messages on the data channel once it is open, until
// the viewer ends; a message that finds more than maxBuffered bytes still
// unsent, or fails to send, is dropped and counted.
func (v *viewer) sendQueued(q *queue.Queue[[]byte], maxBuffered uint64, sent, dropped *atomic.Uint64, what string) {
	select {
	case <-v.dcOpen:
	case <-v.ctx.Done():
		return
	}
	dc := v.dataChannel()
	for {
		msg, err := q.Pop(v.ctx)
		if err != nil {
			return
		}
		if dc.BufferedAmount() > maxBuffered {
			dropped.Add(1)
			continue
		}
		if err := dc.SendText(string(msg)); err != nil {
			dropped.Add(1)
			v.log.Debug(what, "err", err)
			continue
		}
		sent.Add(1)
	}
}
