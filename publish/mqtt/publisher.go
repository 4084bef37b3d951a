package mqtt

import (
	"context"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/internal/backoff"
	"github.com/srdgd/srdgd/internal/seal"
	"github.com/srdgd/srdgd/publish"
)

var _ publish.Sink = (*Publisher)(nil)

// Publisher publishes hits, camera status, stats and availability to an
// MQTT broker. Hits go through an on-disk spool first, so none is lost
// while the broker is away (up to the spool bound, where the oldest are
// dropped and counted).
type Publisher struct {
	opts   *resolved
	topics topics
	log    *slog.Logger
	spool  *spool
	notify chan struct{}
	start  time.Time

	running    atomic.Bool
	connected  atomic.Bool
	published  atomic.Uint64
	reconnects atomic.Uint64

	mu      sync.Mutex
	lastErr string

	stateMu sync.Mutex
	stateCh chan struct{} // closed and replaced on every state change

	alertMu    sync.Mutex
	alerted    map[string]int64 // open visit id -> person it alerted on
	alertOrder []string
	// announced: the people whose discovery configs went out since start
	// (person id to name; personMessages)
	announced map[int64]string
}

// New validates o, opens (and recovers) the spool and returns a Publisher;
// Run connects. Call Close when done.
func New(o Options) (*Publisher, error) {
	r, err := o.resolve(true)
	if err != nil {
		return nil, err
	}
	log := r.Logger.With("component", "mqtt")
	so := spoolOptions{
		Dir:         r.SpoolDir,
		MaxMessages: r.SpoolMaxMessages,
		MaxBytes:    r.SpoolMaxBytes,
		Retention:   r.SpoolRetention,
		Logger:      log,
	}
	key := r.SpoolKey
	if key == nil {
		// Without the gallery key nothing that holds a face may be
		// readable on disk: seal with a key that dies with the process
		// and keep a clear copy without images or names for after a
		// restart.
		key = make([]byte, seal.KeySize)
		if _, err := crand.Read(key); err != nil {
			return nil, fmt.Errorf("mqtt: spool key: %w", err)
		}
		so.Redact = redactEntry
		log.Warn("no gallery key: spooled alerts are sealed with a key kept in memory for this run only; alerts still spooled at a restart are delivered without images and names (create a key with: srdgd gallery keygen)",
			"dir", r.SpoolDir)
	}
	if so.Sealer, err = seal.New(key); err != nil {
		return nil, fmt.Errorf("mqtt: spool key: %w", err)
	}
	sp, err := openSpool(so)
	if err != nil {
		return nil, fmt.Errorf("mqtt: %w", err)
	}
	p := &Publisher{
		opts:    r,
		topics:  topics{prefix: r.TopicPrefix, ha: r.HAPrefix, node: r.haNode},
		log:     log,
		spool:   sp,
		notify:  make(chan struct{}, 1),
		start:   time.Now(),
		stateCh: make(chan struct{}),
	}
	if n, b := sp.Depth(); n > 0 {
		log.Info("spooled alerts waiting for the broker", "messages", n, "bytes", b, "dir", r.SpoolDir)
	}
	return p, nil
}

// Close closes the spool. Publish fails afterwards.
func (p *Publisher) Close() error {
	return p.spool.Close()
}

// Publish spools the hit's message (fsynced) and wakes the sender when
// Options.Hits is set (else it does nothing: alerts follow visits,
// PublishVisit); it never waits for the network. It fails only when the
// hit cannot be spooled (disk error, larger than the spool bound, closed).
func (p *Publisher) Publish(_ context.Context, h *face.Hit) error {
	if h == nil {
		return errors.New("mqtt: publish: nil hit")
	}
	if !p.opts.Hits {
		return nil
	}
	msgs, err := p.alertMessages(h, time.Now())
	if err != nil {
		return fmt.Errorf("mqtt: hit %s: encode: %w", h.ID, err)
	}
	entry, err := encodeEntry(msgs)
	if err != nil {
		return fmt.Errorf("mqtt: hit %s: %w", h.ID, err)
	}
	if _, err := p.spool.Append(entry); err != nil {
		return fmt.Errorf("mqtt: hit %s: %w", h.ID, err)
	}
	select {
	case p.notify <- struct{}{}:
	default:
	}
	p.changed()
	return nil
}

// SpoolDepth returns the alerts waiting in the spool and their bytes.
func (p *Publisher) SpoolDepth() (messages int, bytes int64) { return p.spool.Depth() }

// Dropped returns alerts dropped at the spool bound since New.
func (p *Publisher) Dropped() uint64 { return p.spool.Dropped() }

// Expired returns alerts dropped from the spool for the retention since New.
func (p *Publisher) Expired() uint64 { return p.spool.Expired() }

// Corrupt returns spool records found corrupt and skipped since New.
func (p *Publisher) Corrupt() uint64 { return p.spool.Corrupt() }

// Connected reports whether the broker connection is up.
func (p *Publisher) Connected() bool { return p.connected.Load() }

// Published returns the alerts the broker acknowledged since New.
func (p *Publisher) Published() uint64 { return p.published.Load() }

// changed wakes waitState callers.
func (p *Publisher) changed() {
	p.stateMu.Lock()
	close(p.stateCh)
	p.stateCh = make(chan struct{})
	p.stateMu.Unlock()
}

// waitState blocks until cond holds or ctx ends (tests use it instead of
// sleeping).
func (p *Publisher) waitState(ctx context.Context, cond func() bool) error {
	for {
		p.stateMu.Lock()
		ch := p.stateCh
		p.stateMu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (p *Publisher) setConnected(v bool) {
	p.connected.Store(v)
	p.changed()
}

func (p *Publisher) setErr(err error) {
	p.mu.Lock()
	if err == nil {
		p.lastErr = ""
	} else {
		p.lastErr = err.Error()
	}
	p.mu.Unlock()
	p.changed()
}

// healthyAfter is how long a connection must last to reset the backoff.
const healthyAfter = time.Minute

// Run connects, keeps the connection up (reconnecting with backoff) and
// delivers the spool in order. It publishes "offline" and returns nil when
// ctx ends.
func (p *Publisher) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return errors.New("mqtt: publisher already running")
	}
	defer p.running.Store(false)
	if p.opts.SpoolRetention > 0 {
		ctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); p.expireSpool(ctx) }()
		defer wg.Wait()
		defer cancel()
	}
	p.log.Info("mqtt publisher starting", "broker", p.opts.redacted, "client_id", p.opts.ClientID,
		"prefix", p.opts.TopicPrefix, "qos", p.opts.qos, "spool", p.opts.SpoolDir)
	bo := backoff.Backoff{Initial: p.opts.ReconnectMin, Max: p.opts.ReconnectMax, ResetAfter: healthyAfter}
	var (
		failures   int
		lastFailAt time.Time
		everUp     bool
	)
	for {
		lost := make(chan error, 1)
		c, err := connect(ctx, p.opts, p.opts.ClientID, p.topics.availability(), lost)
		if ctx.Err() != nil {
			if c != nil {
				c.Disconnect(0)
			}
			return nil
		}
		if err != nil {
			p.setErr(err)
			failures++
			// One warning per failure streak, then one a minute.
			if failures == 1 || time.Since(lastFailAt) >= time.Minute {
				p.log.Warn("mqtt connect failed", "broker", p.opts.redacted, "error", err, "attempts", failures)
				lastFailAt = time.Now()
			}
		} else {
			if everUp {
				p.reconnects.Add(1)
			}
			everUp = true
			p.log.Info("mqtt connected", "broker", p.opts.redacted, "attempts", failures+1)
			failures = 0
			p.setErr(nil)
			began := time.Now()
			p.setConnected(true)
			err = p.session(ctx, c, lost)
			p.setConnected(false)
			if ctx.Err() != nil {
				return nil
			}
			p.setErr(err)
			p.log.Warn("mqtt connection lost", "broker", p.opts.redacted, "error", err)
			bo.Ended(time.Since(began))
		}
		t := time.NewTimer(bo.Next())
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// expireSpool drops spooled alerts older than the retention every tenth of
// it (at least every second, at most every hour) until ctx ends.
func (p *Publisher) expireSpool(ctx context.Context) {
	every := min(max(p.opts.SpoolRetention/10, time.Second), time.Hour)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if p.spool.Expire() > 0 {
				p.changed()
			}
		}
	}
}

// flight is one spool entry sent and awaiting its acknowledgements.
type flight struct {
	seq    uint64
	tokens []paho.Token
	msgs   int
}

func (f *flight) pending() <-chan struct{} {
	for _, t := range f.tokens {
		select {
		case <-t.Done():
		default:
			return t.Done()
		}
	}
	return nil
}

func (f *flight) err() error {
	for _, t := range f.tokens {
		if err := t.Error(); err != nil {
			return err
		}
	}
	return nil
}

// session runs one connection: announce, then deliver the spool in order
// with up to InFlight entries unacknowledged, and publish status and stats.
// It returns nil when ctx ends (after "offline") or the reason the
// connection failed.
func (p *Publisher) session(ctx context.Context, c paho.Client, lost <-chan error) error {
	var inflight []*flight
	defer func() { p.ackDone(&inflight) }()

	// Announce: availability first, so Home Assistant sees the entities
	// available as soon as their configs arrive.
	c.Publish(p.topics.availability(), 1, true, []byte(PayloadOnline))
	if p.opts.HADiscovery {
		for _, m := range p.discoveryMessages() {
			c.Publish(m.Topic, m.QoS, m.Retain, m.Payload)
		}
	}
	// The broker may publish the will of our previous connection after
	// this one said "online" (it noticed the old socket late): watch our
	// own availability topic and say "online" again.
	reassert := make(chan struct{}, 1)
	c.Subscribe(p.topics.availability(), 1, func(_ paho.Client, m paho.Message) {
		if string(m.Payload()) == PayloadOffline {
			select {
			case reassert <- struct{}{}:
			default:
			}
		}
	})
	lastConn := map[string]string{}
	p.publishStatus(c, lastConn, true)
	p.publishStats(c)

	statusT := time.NewTicker(p.opts.StatusEvery)
	defer statusT.Stop()
	var pollC <-chan time.Time
	if p.opts.Status != nil {
		pollT := time.NewTicker(p.opts.StatusPoll)
		defer pollT.Stop()
		pollC = pollT.C
	}
	var (
		lastSent uint64
		haveSent bool
	)
	for {
		for len(inflight) < p.opts.InFlight {
			seq, entry, ok, err := p.spool.Next(lastSent, haveSent)
			if err != nil {
				return fmt.Errorf("spool: %w", err)
			}
			if !ok {
				break
			}
			lastSent, haveSent = seq, true
			f := &flight{seq: seq}
			msgs, err := decodeEntry(entry)
			if err != nil {
				// CRC-valid but undecodable: a bug or a future format.
				// Acked (dropped) in turn, never retried forever.
				p.log.Warn("spool entry undecodable, dropped", "seq", seq, "error", err)
			}
			for _, m := range msgs {
				f.tokens = append(f.tokens, c.Publish(m.Topic, m.QoS, m.Retain, m.Payload))
			}
			f.msgs = len(msgs)
			inflight = append(inflight, f)
		}
		var front <-chan struct{}
		if len(inflight) > 0 {
			front = inflight[0].pending()
			if front == nil {
				if err := p.ackDone(&inflight); err != nil {
					return err
				}
				continue
			}
		}
		select {
		case <-ctx.Done():
			p.goodbye(c)
			return nil
		case err := <-lost:
			return err
		case <-p.notify:
		case <-reassert:
			p.log.Info("availability was offline while connected, publishing online again")
			c.Publish(p.topics.availability(), 1, true, []byte(PayloadOnline))
		case <-front:
			if err := p.ackDone(&inflight); err != nil {
				return err
			}
		case <-statusT.C:
			p.publishStatus(c, lastConn, true)
			p.publishStats(c)
		case <-pollC:
			p.publishStatus(c, lastConn, false)
		}
	}
}

// ackDone removes the completed entries at the front of inflight from the
// spool, in order; a failed publication ends the session.
func (p *Publisher) ackDone(inflight *[]*flight) error {
	acked := 0
	defer func() {
		if acked > 0 {
			p.changed()
		}
	}()
	for len(*inflight) > 0 {
		f := (*inflight)[0]
		if f.pending() != nil {
			return nil
		}
		if err := f.err(); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		p.spool.Ack(f.seq)
		p.published.Add(1)
		acked++
		*inflight = (*inflight)[1:]
	}
	return nil
}

// goodbye publishes "offline" (the will only covers abrupt ends) and
// disconnects, letting in-flight publications finish briefly.
func (p *Publisher) goodbye(c paho.Client) {
	t := c.Publish(p.topics.availability(), 1, true, []byte(PayloadOffline))
	t.WaitTimeout(2 * time.Second)
	c.Disconnect(250)
}

// statusKey is what must change for a camera's status to be published
// before the next interval: connected, or a state that needs a person
// (auth_failed, failed). The retries in between (connecting, backoff) wait.
func statusKey(st publish.CameraStatus) string {
	if st.Connected {
		return "connected"
	}
	if st.State == "connecting" || st.State == "backoff" {
		return "retrying"
	}
	return st.State
}

// publishStatus publishes every camera's status when all is set, else only
// those whose statusKey changed since the last publication.
func (p *Publisher) publishStatus(c paho.Client, last map[string]string, all bool) {
	if p.opts.Status == nil {
		return
	}
	now := time.Now()
	for _, st := range p.opts.Status() {
		prev, seen := last[st.Camera]
		key := statusKey(st)
		if !all && seen && prev == key {
			continue
		}
		last[st.Camera] = key
		b, err := json.Marshal(statusPayload{Schema: SchemaVersion, Time: jsTime(now), CameraStatus: st})
		if err != nil {
			p.log.Warn("status encode failed", "camera", st.Camera, "error", err)
			continue
		}
		c.Publish(p.topics.status(st.Camera), 1, true, b)
	}
}

// snapshot returns what <prefix>/stats carries.
func (p *Publisher) snapshot(now time.Time) statsPayload {
	n, b := p.spool.Depth()
	p.mu.Lock()
	lastErr := p.lastErr
	p.mu.Unlock()
	sp := statsPayload{
		Schema:  SchemaVersion,
		Time:    jsTime(now),
		Version: p.opts.Version,
		UptimeS: now.Sub(p.start).Seconds(),
		Cameras: append([]string{}, p.opts.Cameras...),
		MQTT: mqttStats{
			Connected:     p.connected.Load(),
			Broker:        p.opts.redacted,
			SpoolMessages: n,
			SpoolBytes:    b,
			SpoolDropped:  p.spool.Dropped(),
			SpoolExpired:  p.spool.Expired(),
			SpoolCorrupt:  p.spool.Corrupt(),
			Published:     p.published.Load(),
			Reconnects:    p.reconnects.Load(),
			LastError:     lastErr,
		},
	}
	if p.opts.Stats != nil {
		st := p.opts.Stats()
		if st.Dropped == nil {
			st.Dropped = map[string]uint64{}
		}
		sp.Pipeline = &st
	}
	return sp
}

func (p *Publisher) publishStats(c paho.Client) {
	b, err := json.Marshal(p.snapshot(time.Now()))
	if err != nil {
		p.log.Warn("stats encode failed", "error", err)
		return
	}
	c.Publish(p.topics.stats(), 0, false, b)
}
