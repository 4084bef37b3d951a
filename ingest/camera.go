package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/pion/rtp"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/internal/backoff"
	"github.com/srdgd/srdgd/internal/queue"
	"github.com/srdgd/srdgd/internal/ratelog"
)

// Camera is one supervised RTSP source. Build it with NewCamera, subscribe,
// then call Run once.
type Camera struct {
	o         CameraOptions
	url       *base.URL // with credentials, for gortsplib only; never logged
	safeURL   string
	transport *gortsplib.Transport
	tls       *tls.Config
	red       redactor
	log       *slog.Logger

	running atomic.Bool
	pool    *bufPool

	subMu      sync.Mutex
	frameSubs  []*queue.Queue[*face.Frame]
	auSubs     []*queue.Queue[*face.AccessUnit]
	subsClosed bool
	// subDropped keeps the drops of queues that were unsubscribed.
	subDropped uint64

	frames, decodeErrors, rtpErrors, packetsLost atomic.Uint64
	reconnects, bytes, decodeDropped, seq        atomic.Uint64
	authFailures                                 atomic.Uint64
	// played is set once a session has come up; later ones are reconnects.
	played atomic.Bool

	stMu    sync.Mutex
	st      Status // State, Connected, Codec, Transport, Width, Height, LastError*, ConnectedSince
	rateAt  time.Time
	rateF   uint64
	rateB   uint64
	fps     float64
	kbps    float64
	warnDec *ratelog.Limiter
	warnRTP *ratelog.Limiter
	warnQ   *ratelog.Limiter
	warnQD  *ratelog.Limiter
	warnPL  *ratelog.Limiter
}

// NewCamera validates o and returns a Camera that is not yet running.
func NewCamera(o CameraOptions) (*Camera, error) {
	o.setDefaults()
	red := newRedactorFromURL(o.URL, newRedactor(o.Password))
	if o.Name == "" {
		return nil, errors.New("ingest: camera name is empty")
	}
	fail := func(format string, args ...any) (*Camera, error) {
		return nil, red.err(fmt.Errorf("ingest: camera %q: "+format, append([]any{o.Name}, args...)...))
	}

	u, err := url.Parse(o.URL)
	if err != nil {
		// url.Error quotes the whole URL, credentials included; keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fail("url: %w", err)
	}
	if u.Scheme != "rtsp" && u.Scheme != "rtsps" {
		return fail("url %s: scheme %q: want rtsp or rtsps", safeURL(u), u.Scheme)
	}
	if u.Host == "" {
		return fail("url %s: no host", safeURL(u))
	}
	if u.User != nil {
		if o.Username == "" {
			o.Username = u.User.Username()
			o.Password, _ = u.User.Password()
		}
		u.User = nil
	}
	safe := u.String()
	if o.Username != "" {
		u.User = url.UserPassword(o.Username, o.Password)
	}

	tr, tcfg, err := o.transportAndTLS(u.Scheme, safe)
	if err != nil {
		return fail("%w", err)
	}
	if err := o.checkTiming(); err != nil {
		return fail("%w", err)
	}

	log := o.Logger.With("component", "ingest", "camera", o.Name)
	c := &Camera{
		o:         o,
		url:       (*base.URL)(u),
		safeURL:   safe,
		transport: tr,
		tls:       tcfg,
		red:       red,
		log:       log,
		warnDec:   ratelog.New(log, "decode errors", o.WarnInterval),
		warnRTP:   ratelog.New(log, "rtp errors", o.WarnInterval),
		// a consumer slower than the camera sheds frames by design (counted in
		// Status.Dropped): once a minute at most says so without flooding
		warnQ:  ratelog.New(log, "subscriber queue full, dropped oldest", max(o.WarnInterval, time.Minute)),
		warnQD: ratelog.New(log, "decoder behind, dropped access units until next key frame", o.WarnInterval),
		warnPL: ratelog.New(log, "rtp packets lost", o.WarnInterval),
		pool:   newBufPool(framePoolSize),
	}
	c.st = Status{Camera: o.Name, State: StateStopped}
	return c, nil
}

// transportAndTLS checks the transport and TLS options against the URL's
// scheme (safe is the URL without credentials, for messages).
func (o *CameraOptions) transportAndTLS(scheme, safe string) (*gortsplib.Transport, *tls.Config, error) {
	var tr *gortsplib.Transport
	switch o.Transport {
	case "auto":
	case "tcp":
		v := gortsplib.TransportTCP
		tr = &v
	case "udp":
		v := gortsplib.TransportUDP
		tr = &v
	default:
		return nil, nil, fmt.Errorf("transport %q: want auto, tcp or udp", o.Transport)
	}

	var tcfg *tls.Config
	if scheme == "rtsps" {
		var pin []byte
		if o.TLSFingerprint != "" {
			if o.TLSInsecure {
				return nil, nil, errors.New("tls_insecure and tls_fingerprint are exclusive: the pin already replaces verification")
			}
			var err error
			if pin, err = parseFingerprint(o.TLSFingerprint); err != nil {
				return nil, nil, err
			}
		}
		tcfg = tlsConfig(o.TLSInsecure, pin)
	} else if o.TLSInsecure || o.TLSFingerprint != "" {
		return nil, nil, fmt.Errorf("url %s: tls options need an rtsps:// URL", safe)
	}
	return tr, tcfg, nil
}

// checkTiming checks the reconnect, retry, timeout and queue options.
func (o *CameraOptions) checkTiming() error {
	switch {
	case o.ReconnectInitial < 0 || o.ReconnectMax < 0 || o.ReconnectResetAfter < 0:
		return errors.New("reconnect durations must not be negative")
	case o.ReconnectInitial > o.ReconnectMax:
		return fmt.Errorf("reconnect initial %v exceeds max %v", o.ReconnectInitial, o.ReconnectMax)
	case o.MaxRetries < 0:
		return fmt.Errorf("max retries %d: want >= 0 (0 retries forever)", o.MaxRetries)
	case o.MaxAuthFailures < 0:
		return fmt.Errorf("max auth failures %d: want >= 1", o.MaxAuthFailures)
	case o.AuthRetryInitial < 0 || o.AuthRetryInitial > o.AuthRetryMax:
		return fmt.Errorf("auth retry initial %v: want > 0 and <= max %v", o.AuthRetryInitial, o.AuthRetryMax)
	case o.ReadTimeout < 0 || o.WarnInterval < 0:
		return errors.New("timeouts must not be negative")
	case o.DecodeQueue < 0:
		return fmt.Errorf("decode queue %d: want >= 1", o.DecodeQueue)
	}
	return nil
}

// newRedactorFromURL adds the userinfo of raw, and the password in it, to r's
// secrets. It works on the raw text, so it also covers URLs that fail to parse.
func newRedactorFromURL(raw string, r redactor) redactor {
	i := strings.Index(raw, "://")
	if i < 0 {
		return r
	}
	rest := raw[i+3:]
	if k := strings.IndexAny(rest, "/?#"); k >= 0 {
		rest = rest[:k]
	}
	j := strings.LastIndex(rest, "@")
	if j < 0 {
		return r
	}
	userinfo := rest[:j]
	r.secrets = append([]string{userinfo}, r.secrets...) // longest first
	if _, pass, ok := strings.Cut(userinfo, ":"); ok && pass != "" {
		r.secrets = append(r.secrets, newRedactor(pass).secrets...)
		if un, err := url.PathUnescape(pass); err == nil && un != pass {
			r.secrets = append(r.secrets, un)
		}
	}
	return r
}

// Name returns the camera name.
func (c *Camera) Name() string { return c.o.Name }

// URL returns the camera URL without credentials.
func (c *Camera) URL() string { return c.safeURL }

// SubscribeFrames returns a new queue receiving every decoded frame. When it is
// full the oldest frame is dropped (and counted in Status.Dropped). The queue is
// closed when Run returns; subscribing after that yields a closed queue.
func (c *Camera) SubscribeFrames(capacity int) *queue.Queue[*face.Frame] {
	q := queue.New[*face.Frame](capacity)
	c.subMu.Lock()
	defer c.subMu.Unlock()
	if c.subsClosed {
		q.Close()
		return q
	}
	c.frameSubs = append(c.frameSubs, q)
	return q
}

// SubscribeAccessUnits returns a new queue receiving every access unit from the
// first key frame of each session on, like SubscribeFrames.
func (c *Camera) SubscribeAccessUnits(capacity int) *queue.Queue[*face.AccessUnit] {
	q := queue.New[*face.AccessUnit](capacity)
	c.subMu.Lock()
	defer c.subMu.Unlock()
	if c.subsClosed {
		q.Close()
		return q
	}
	c.auSubs = append(c.auSubs, q)
	return q
}

// UnsubscribeFrames stops delivery to q and closes it.
func (c *Camera) UnsubscribeFrames(q *queue.Queue[*face.Frame]) {
	c.subMu.Lock()
	c.frameSubs = remove(c.frameSubs, q, &c.subDropped)
	c.subMu.Unlock()
	q.Close()
}

// UnsubscribeAccessUnits stops delivery to q and closes it.
func (c *Camera) UnsubscribeAccessUnits(q *queue.Queue[*face.AccessUnit]) {
	c.subMu.Lock()
	c.auSubs = remove(c.auSubs, q, &c.subDropped)
	c.subMu.Unlock()
	q.Close()
}

func remove[T any](subs []*queue.Queue[T], q *queue.Queue[T], dropped *uint64) []*queue.Queue[T] {
	for i, s := range subs {
		if s == q {
			*dropped += q.Dropped()
			return append(subs[:i:i], subs[i+1:]...)
		}
	}
	return subs
}

func (c *Camera) closeSubscribers() {
	c.subMu.Lock()
	defer c.subMu.Unlock()
	c.subsClosed = true
	for _, q := range c.frameSubs {
		q.Close()
	}
	for _, q := range c.auSubs {
		q.Close()
	}
}

func (c *Camera) publishFrame(f *face.Frame) {
	c.subMu.Lock()
	defer c.subMu.Unlock()
	// Count every reference before the first push: a subscriber may release
	// the frame while it is still being handed to the others.
	f.Share(len(c.frameSubs)+1, c.pool.put)
	for _, q := range c.frameSubs {
		if old, dropped := q.PushEvict(f); dropped {
			old.Release() // the queue's reference
			c.warnQ.Warn("kind", "frame", "capacity", q.Cap())
		}
	}
	f.Release() // ingest's own reference
}

func (c *Camera) publishAU(au *face.AccessUnit) {
	c.subMu.Lock()
	defer c.subMu.Unlock()
	for _, q := range c.auSubs {
		if q.Push(au) {
			c.warnQ.Warn("kind", "access_unit", "capacity", q.Cap())
		}
	}
}

// Status returns a snapshot of the camera's state and counters.
func (c *Camera) Status() Status {
	now := time.Now()
	frames, bytes := c.frames.Load(), c.bytes.Load()

	c.subMu.Lock()
	dropped := c.subDropped
	for _, q := range c.frameSubs {
		dropped += q.Dropped()
	}
	for _, q := range c.auSubs {
		dropped += q.Dropped()
	}
	c.subMu.Unlock()

	c.stMu.Lock()
	defer c.stMu.Unlock()
	if c.rateAt.IsZero() {
		c.rateAt, c.rateF, c.rateB = now, frames, bytes
	} else if el := now.Sub(c.rateAt); el >= time.Second {
		c.fps = float64(frames-c.rateF) / el.Seconds()
		c.kbps = float64(bytes-c.rateB) * 8 / 1000 / el.Seconds()
		c.rateAt, c.rateF, c.rateB = now, frames, bytes
	}
	s := c.st
	s.FPS, s.BitrateKbps = c.fps, c.kbps
	s.Frames = frames
	s.DecodeErrors = c.decodeErrors.Load()
	s.RTPErrors = c.rtpErrors.Load()
	s.PacketsLost = c.packetsLost.Load()
	s.Reconnects = c.reconnects.Load()
	s.AuthFailures = c.authFailures.Load()
	s.Dropped = dropped + c.decodeDropped.Load()
	s.BuffersAllocated, s.BuffersReused = c.pool.allocated.Load(), c.pool.reused.Load()
	s.BuffersOutstanding = c.pool.outstanding()
	return s
}

func (c *Camera) setState(state string) {
	c.stMu.Lock()
	defer c.stMu.Unlock()
	c.st.State = state
	c.st.Connected = state == StateConnected
	if state == StateConnected {
		c.st.ConnectedSince = time.Now()
	} else {
		c.st.ConnectedSince = time.Time{}
		c.st.Transport = ""
	}
}

func (c *Camera) setError(err error) {
	c.stMu.Lock()
	defer c.stMu.Unlock()
	c.st.LastError = err.Error()
	c.st.LastErrorAt = time.Now()
}

// Run connects and keeps the camera connected until ctx ends, reconnecting with
// exponential backoff and jitter. Rejected credentials do not end it: after
// MaxAuthFailures rejections in a row the camera is in StateAuthFailed and
// tries again after the long AuthRetry backoff, until the camera accepts
// them. Run returns nil when ctx ends, and an error only for permanent
// failures, after which the state is StateFailed: ErrRetriesExhausted (with
// MaxRetries set) or a decoder that cannot be built. All goroutines it
// started have ended when it returns, and the subscriber queues are closed.
func (c *Camera) Run(ctx context.Context) (err error) {
	if !c.running.CompareAndSwap(false, true) {
		return fmt.Errorf("ingest: camera %q: %w", c.o.Name, ErrAlreadyRunning)
	}
	defer c.closeSubscribers()
	defer func() {
		if err != nil {
			c.setState(StateFailed)
		} else {
			c.setState(StateStopped)
		}
	}()

	bo := backoff.Backoff{Initial: c.o.ReconnectInitial, Max: c.o.ReconnectMax, ResetAfter: c.o.ReconnectResetAfter}
	authBo := backoff.Backoff{Initial: c.o.AuthRetryInitial, Max: c.o.AuthRetryMax}
	failures, authFailures := 0, 0
	for attempt := 0; ; attempt++ {
		if ctx.Err() != nil {
			return nil
		}
		c.setState(StateConnecting)
		c.log.Debug("connecting", "url", c.safeURL, "attempt", attempt+1)
		res := c.runSession(ctx)
		if ctx.Err() != nil {
			return nil
		}
		err := c.red.err(fmt.Errorf("ingest: camera %q: %s: %w", c.o.Name, c.safeURL, res.err))
		c.setError(err)
		if res.permanent {
			c.log.Error("giving up", "err", err)
			return err
		}

		if res.gotVideo {
			failures = 0
		} else {
			failures++
		}
		if res.authRejected {
			authFailures++
			c.authFailures.Add(1)
		} else {
			authFailures = 0
			authBo.Reset()
		}
		bo.Ended(res.playedFor)
		if c.o.MaxAuthFailures > 0 && authFailures >= c.o.MaxAuthFailures {
			err = fmt.Errorf("ingest: camera %q: %s: %w %d times (check username/password): %w",
				c.o.Name, c.safeURL, ErrAuthRejected, authFailures, c.red.err(res.err))
			c.setError(err)
			delay := authBo.Next()
			c.setState(StateAuthFailed)
			if authFailures == c.o.MaxAuthFailures {
				c.log.Error("credentials rejected", "err", err, "retry_in", delay.Round(time.Second))
			} else {
				c.log.Warn("credentials still rejected", "err", err, "retry_in", delay.Round(time.Second))
			}
			if !sleepCtx(ctx, delay) {
				return nil
			}
			continue
		}
		if c.o.MaxRetries > 0 && failures > c.o.MaxRetries {
			err = fmt.Errorf("ingest: camera %q: %s: %w after %d attempts: %w",
				c.o.Name, c.safeURL, ErrRetriesExhausted, failures, c.red.err(res.err))
			c.setError(err)
			c.log.Error("giving up", "err", err)
			return err
		}

		delay := bo.Next()
		c.setState(StateBackoff)
		msg := "disconnected"
		if res.playedFor == 0 {
			msg = "connect failed"
		}
		c.log.Warn(msg, "err", err, "retry_in", delay.Round(time.Millisecond), "failures", failures)
		if !sleepCtx(ctx, delay) {
			return nil
		}
	}
}

// sleepCtx waits d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

type sessionResult struct {
	err          error
	permanent    bool
	authRejected bool
	gotVideo     bool
	playedFor    time.Duration
}

func isAuthRejected(err error) bool {
	var bad liberrors.ErrClientBadStatusCode
	if errors.As(err, &bad) && bad.Code == base.StatusUnauthorized {
		return true
	}
	var as liberrors.ErrClientAuthSetup
	return errors.As(err, &as)
}

// findVideo returns the first H.264 or H.265 track.
func findVideo(desc *description.Session) (*description.Media, format.Format) {
	for _, m := range desc.Medias {
		for _, f := range m.Formats {
			switch f.(type) {
			case *format.H264, *format.H265:
				return m, f
			}
		}
	}
	return nil, nil
}

func describeMedias(desc *description.Session) string {
	var parts []string
	for _, m := range desc.Medias {
		for _, f := range m.Formats {
			parts = append(parts, string(m.Type)+"/"+f.Codec())
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// decodeItem is an access unit on its way to the decoder; n numbers them so
// the decoder notices a drop and waits for the next key frame.
type decodeItem struct {
	au *face.AccessUnit
	n  uint64
}

// runSession runs one RTSP session until it fails or ctx ends.
func (c *Camera) runSession(ctx context.Context) (res sessionResult) {
	transportName := "UDP"
	if c.transport != nil && *c.transport == gortsplib.TransportTCP {
		transportName = "TCP"
	}
	var switched atomic.Bool
	client := c.newClient(&switched)
	if err := client.Start2(); err != nil {
		res.err = fmt.Errorf("rtsp client: %w", err)
		return res
	}
	// Close the client as soon as ctx ends so a blocked request returns.
	closed := make(chan struct{})
	stopWatch := context.AfterFunc(ctx, func() {
		client.Close()
		close(closed)
	})
	sctx, cancel := context.WithCancel(ctx) // ends the decoder goroutine
	var (
		dec      Decoder
		wg       sync.WaitGroup
		gotVideo atomic.Bool
	)
	// Stop the client first so no callback pushes any more, then the decoder.
	defer func() {
		if !stopWatch() {
			<-closed
		}
		client.Close()
		cancel()
		wg.Wait()
		if dec != nil {
			dec.Close()
		}
		res.gotVideo = gotVideo.Load()
	}()

	desc, _, err := client.Describe(c.url)
	if err != nil {
		res.err = fmt.Errorf("describe: %w", err)
		res.authRejected = isAuthRejected(err)
		return res
	}
	medi, forma := findVideo(desc)
	if medi == nil {
		res.err = fmt.Errorf("describe: %w (stream has: %s)", ErrUnsupportedCodec, describeMedias(desc))
		return res
	}
	asm, err := newAssembler(forma)
	if err != nil {
		res.err = err
		return res
	}
	dec, err = c.o.NewDecoder(asm.codec)
	if err != nil {
		dec = nil
		res.err = fmt.Errorf("decoder for %s: %w", asm.codec, err)
		res.permanent = true
		return res
	}
	if _, err := client.Setup(desc.BaseURL, medi, 0, 0); err != nil {
		res.err = fmt.Errorf("setup: %w", err)
		res.authRejected = isAuthRejected(err)
		return res
	}

	work := queue.New[decodeItem](c.o.DecodeQueue)
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.decodeLoop(sctx, work, dec)
	}()

	client.OnPacketRTP(medi, forma, c.onRTP(client, medi, forma, asm, work, &gotVideo))

	if _, err := client.Play(nil); err != nil {
		res.err = fmt.Errorf("play: %w", err)
		return res
	}
	playedAt := time.Now()
	if c.played.Swap(true) {
		c.reconnects.Add(1)
	}
	c.setState(StateConnected)
	c.stMu.Lock()
	c.st.Codec = asm.codec
	if !switched.Load() {
		c.st.Transport = transportName
	}
	c.stMu.Unlock()
	c.log.Info("connected", "url", c.safeURL, "codec", asm.codec)

	err = client.Wait()
	res.playedFor = time.Since(playedAt)
	res.err = fmt.Errorf("session: %w", err)
	return res
}

// newClient is the session's RTSP client: the camera's TLS, transport and
// timeouts, its transport switch recorded in switched, lost packets and
// RTP decode errors counted and warned about (rate-limited).
func (c *Camera) newClient(switched *atomic.Bool) *gortsplib.Client {
	var tcfg *tls.Config
	if c.tls != nil {
		tcfg = c.tls.Clone() // gortsplib sets ServerName on it
	}
	return &gortsplib.Client{
		Scheme:       c.url.Scheme,
		Host:         c.url.Host,
		TLSConfig:    tcfg,
		Transport:    c.transport,
		ReadTimeout:  c.o.ReadTimeout,
		WriteTimeout: c.o.ReadTimeout,
		UserAgent:    "srdgd",
		OnTransportSwitch: func(err error) {
			switched.Store(true)
			c.stMu.Lock()
			c.st.Transport = "TCP"
			c.stMu.Unlock()
			c.log.Info("transport switch", "reason", c.red.string(err.Error()))
		},
		OnPacketsLost: func(n uint64) {
			c.packetsLost.Add(n)
			c.warnPL.Warn("lost", n)
		},
		OnDecodeError: func(err error) {
			c.rtpErrors.Add(1)
			c.warnRTP.Warn("err", c.red.string(err.Error()))
		},
	}
}

// onRTP handles the video track's RTP packets: it assembles access units
// (from the first key frame on), publishes them for passthrough and queues
// them for the decoder, counting what the full queue drops.
func (c *Camera) onRTP(client *gortsplib.Client, medi *description.Media, forma format.Format, asm *assembler,
	work *queue.Queue[decodeItem], gotVideo *atomic.Bool) func(*rtp.Packet) {
	var n uint64
	started := false
	return func(pkt *rtp.Packet) {
		now := time.Now()
		c.bytes.Add(uint64(len(pkt.Payload)))
		pts, ptsOK := client.PacketPTS2(medi, pkt)
		nalus, ts, key, err := asm.push(pkt)
		if err != nil {
			c.rtpErrors.Add(1)
			c.warnRTP.Warn("err", err.Error())
			return
		}
		if nalus == nil || !ptsOK {
			return
		}
		if !started {
			if !key {
				return // decoding and passthrough start at a key frame
			}
			started = true
		}
		gotVideo.Store(true)
		au := &face.AccessUnit{
			Camera:  c.o.Name,
			Codec:   asm.codec,
			PTS:     ptsToDuration(pts, forma.ClockRate()),
			RTPTime: ts,
			Wall:    now,
			NALUs:   nalus,
			Key:     key,
		}
		c.publishAU(au)
		n++
		if work.Push(decodeItem{au: au, n: n}) {
			c.decodeDropped.Add(1)
			c.warnQD.Warn("queue", work.Cap())
		}
	}
}

// ptsToDuration converts clock ticks to a duration without overflowing int64.
func ptsToDuration(ticks int64, clockRate int) time.Duration {
	if clockRate <= 0 {
		return 0
	}
	cr := int64(clockRate)
	return time.Duration(ticks/cr)*time.Second + time.Duration(ticks%cr)*time.Second/time.Duration(cr)
}

// decodeLoop decodes access units until ctx ends. After a gap (the queue
// dropped units) it skips to the next key frame, since the pictures in between
// would reference missing ones.
func (c *Camera) decodeLoop(ctx context.Context, work *queue.Queue[decodeItem], dec Decoder) {
	var last uint64
	needKey := true
	// recent maps pictures back to their access units when the decoder delays
	// output (B-frames); with zero-latency streams it is the current unit.
	var recent [8]*face.AccessUnit
	for {
		it, err := work.Pop(ctx)
		if err != nil {
			return
		}
		if it.n != last+1 {
			needKey = true
		}
		last = it.n
		if needKey {
			if !it.au.Key {
				continue
			}
			needKey = false
		}
		recent[it.n%uint64(len(recent))] = it.au
		pics, err := dec.Decode(it.au.NALUs, it.au.PTS, c.pool.get)
		if err != nil {
			c.decodeErrors.Add(1)
			c.warnDec.Warn("err", err.Error())
		}
		for _, p := range pics {
			src := it.au
			for _, r := range recent {
				if r != nil && r.PTS == p.PTS {
					src = r
					break
				}
			}
			f := &face.Frame{
				Camera:  c.o.Name,
				Seq:     c.seq.Add(1),
				PTS:     p.PTS,
				RTPTime: src.RTPTime,
				Wall:    src.Wall,
				Decoded: time.Now(),
				Width:   p.Width,
				Height:  p.Height,
				Pix:     p.Pix,
			}
			c.frames.Add(1)
			c.stMu.Lock()
			c.st.Width, c.st.Height = p.Width, p.Height
			c.stMu.Unlock()
			c.publishFrame(f)
		}
	}
}
