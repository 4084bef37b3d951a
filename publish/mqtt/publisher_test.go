package mqtt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/publish"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var (
	imgOnce          sync.Once
	testJPEG, testPN []byte
)

func testImages(t *testing.T) ([]byte, []byte) {
	imgOnce.Do(func() {
		img := image.NewRGBA(image.Rect(0, 0, 128, 128))
		for y := range 128 {
			for x := range 128 {
				img.Set(x, y, color.RGBA{uint8(x * 2), uint8(y * 2), 128, 255})
			}
		}
		var j, p bytes.Buffer
		if err := jpeg.Encode(&j, img, nil); err != nil {
			panic(err)
		}
		if err := png.Encode(&p, img.SubImage(image.Rect(0, 0, 16, 16))); err != nil {
			panic(err)
		}
		testJPEG, testPN = j.Bytes(), p.Bytes()
	})
	return testJPEG, testPN
}

func ptr[T any](v T) *T { return &v }

// makeHit builds a realistic hit; i makes it distinct.
func makeHit(t *testing.T, i int, camera string, known bool) *face.Hit {
	jp, pn := testImages(t)
	now := time.Now()
	h := &face.Hit{
		ID:          face.NewID(now),
		Camera:      camera,
		FrameTime:   now.Add(-300 * time.Millisecond),
		Time:        now,
		TrackID:     uint64(100 + i),
		Box:         face.Box{X: 640, Y: 200, W: 14, H: 17},
		FrameW:      1920,
		FrameH:      1080,
		FacePx:      16,
		DetectScore: 0.91,
		Sharpness:   0.4,
		Frontalness: 0.8,
		Attributes: []face.Attribute{
			{Name: "male", Label: ptr(1), Probability: ptr(0.87), Source: "predicted"},
			{Name: "glasses", Label: nil, Probability: ptr(0.51), Source: "none"},
			{Name: "no_beard", Label: ptr(0), Probability: nil, Source: "operator"},
		},
		SR: face.SR{Sampler: "pc", Steps: 100, Evals: 400, Scale: 8, LRSize: 16, Seed: uint64(i), Millis: 812.5, Guided: true, Weight: 1.5},
		Match: face.Match{
			Known: known, Similarity: 0.41, Margin: 0.12, Threshold: 0.35, Reason: face.ReasonBelowThreshold,
			TopK: []face.Candidate{{PersonID: 7, Name: "Ada / Lovelace #1", Similarity: 0.41}, {PersonID: 9, Name: "Bob", Similarity: 0.29}},
		},
		Models: map[string]string{"score": "score_x8@2000", "embedder": "arcface-r50"},
		LRPNG:  pn,
		SRJPEG: jp,
	}
	if known {
		h.Match.PersonID, h.Match.Name, h.Match.Reason, h.Match.Similarity = 7, "Ada / Lovelace #1", "", 0.61
		h.Match.TopK[0].Similarity = 0.61
	}
	h.Match.Explanation = testExplanation(h.Match.Known, h.Match.Reason, h.Match.TopK, h.Match.Threshold, 0.02, 0)
	return h
}

// makeVisit builds a realistic visit event (new); i makes it distinct.
func makeVisit(t *testing.T, i int, camera string, known bool) *face.Visit {
	jp, _ := testImages(t)
	now := time.Now()
	v := &face.Visit{
		ID: face.NewID(now), Camera: camera, TrackID: uint64(100 + i), State: face.VisitNew, Rev: 1,
		Start: now.Add(-2 * time.Second), LastSeen: now.Add(-300 * time.Millisecond),
		Decision: face.Decision{Confidence: 0.21, Similarity: 0.91, Margin: 0.01, Threshold: 0.94, MinMargin: 0.02,
			Shots: 2, Fusion: "descriptor", Reason: "below_threshold",
			TopK: []face.Candidate{{PersonID: 7, Name: "Ada / Lovelace #1", Similarity: 0.91}, {PersonID: 9, Name: "Bob", Similarity: 0.9}}},
		BestShot: "01M8ASY863PJQGTZKZ5FWMTCP4",
		Shots: []face.ShotRef{{HitID: "01M8ASY863PJQGTZKZ5FWMTCP4", FrameTime: now.Add(-time.Second), FacePx: 16, Quality: 0.41, Similarity: 0.9},
			{HitID: "01M8ASY863PJQGTZKZ5FWMTCP5", FrameTime: now.Add(-300 * time.Millisecond), FacePx: 18, Quality: 0.52, Similarity: 0.89}},
		Attributes: []face.Attribute{{Name: "male", Label: ptr(1), Probability: ptr(0.87), Source: "predicted"},
			{Name: "glasses", Probability: ptr(0.51), Source: "none"}},
		FacePx: 18, BestJPEG: jp,
	}
	if known {
		d := &v.Decision
		d.Known, d.PersonID, d.Name, d.Confidence, d.Similarity, d.Margin, d.Reason = true, 7, "Ada / Lovelace #1", 0.93, 0.96, 0.05, ""
		d.TopK[0].Similarity = 0.96
	}
	d := &v.Decision
	d.Explanation = testExplanation(d.Known, d.Reason, d.TopK, d.Threshold, d.MinMargin, d.Shots)
	return v
}

// testExplanation is the explanation match.Explain would give (publish
// does not import match): the top two candidates, the lead between them.
func testExplanation(known bool, reason string, topK []face.Candidate, threshold, margin float64, shots int) face.Explanation {
	e := face.Explanation{Outcome: reason, Threshold: threshold, MarginNeeded: margin, Shots: shots, Indistinct: 1}
	if known {
		e.Outcome = face.OutcomeNamed
	}
	c, r := topK[0], topK[1]
	e.Closest, e.RunnerUp, e.Lead = &c, &r, c.Similarity-r.Similarity
	if e.Lead < margin {
		e.Indistinct, e.Spread = 2, e.Lead
	}
	e.Text = e.Render()
	return e
}

type pubHandle struct {
	p      *Publisher
	cancel context.CancelFunc
	done   chan error
}

// startPublisher runs a Publisher on addr until the test ends (or stop).
func startPublisher(t *testing.T, o Options) *pubHandle {
	t.Helper()
	if o.SpoolDir == "" {
		o.SpoolDir = t.TempDir()
	}
	if o.TopicPrefix == "" {
		o.TopicPrefix = "t/" + sanitizeID(t.Name())
	}
	if o.ClientID == "" {
		o.ClientID = "pub-" + sanitizeID(t.Name())
	}
	if o.ReconnectMin == 0 {
		o.ReconnectMin, o.ReconnectMax = 10*time.Millisecond, 100*time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = testLogger(t)
	}
	if o.ConnectTimeout == 0 {
		// Also paho's write timeout: a Publish racing a dying connection
		// can block that long before the loss is reported.
		o.ConnectTimeout = 2 * time.Second
	}
	p, err := New(o)
	if err != nil {
		t.Fatalf("new publisher: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &pubHandle{p: p, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- p.Run(ctx) }()
	t.Cleanup(func() { h.stop(t) })
	return h
}

// stop cancels Run, checks it returned nil and closes the spool.
func (h *pubHandle) stop(t *testing.T) {
	t.Helper()
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	if err := <-h.done; err != nil {
		t.Errorf("Run returned %v, want nil", err)
	}
	if err := h.p.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}

func waitState(t *testing.T, p *Publisher, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := p.waitState(ctx, cond); err != nil {
		n, b := p.SpoolDepth()
		t.Fatalf("waiting for %s: %v (connected %v, spool %d/%d)", what, err, p.Connected(), n, b)
	}
}

func hitID(t *testing.T, m received) string {
	t.Helper()
	var v struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(m.Payload, &v); err != nil {
		t.Fatalf("%s: %v", m.Topic, err)
	}
	return v.ID
}

// TestPublishAllTopics publishes everything once and validates every
// message the subscriber sees against its schema.
func TestPublishAllTopics(t *testing.T) {
	for _, bk := range brokerKinds() {
		t.Run(bk.name, func(t *testing.T) {
			b := bk.start(t, true)
			prefix, ha := "site/"+bk.name, "ha"+bk.name
			sub := subscribe(t, b.Addr(), prefix, ha, true)
			var frontConnected, yardAuthFailed atomic.Bool
			frontConnected.Store(true)
			status := func() []publish.CameraStatus {
				front := "connected"
				if !frontConnected.Load() {
					front = "backoff"
				}
				yard := "backoff"
				if yardAuthFailed.Load() {
					yard = "auth_failed"
				}
				return []publish.CameraStatus{
					{Camera: "front door", State: front, Connected: frontConnected.Load(), Codec: "h264", Width: 1920, Height: 1080,
						FPS: 15, BitrateKbps: 2048, Frames: 1000, ConnectedSince: time.Now().Add(-time.Hour)},
					{Camera: "yard+#", State: yard, LastError: "dial: refused", LastErrorAt: time.Now()},
				}
			}
			h := startPublisher(t, Options{
				Broker: "tcp://" + b.Addr(), Username: testUser, Password: testPass,
				TopicPrefix: prefix, HADiscovery: true, HAPrefix: ha, HAPeople: true, HASeenWindow: 5 * time.Minute, IncludeImage: true, Hits: true,
				Cameras: []string{"front door", "yard+#"}, Status: status, Version: "1.2.3",
				Stats: func() Stats {
					return Stats{Frames: 10, Faces: 3, Hits: 2, Known: 1, Unknowns: 1, SRLatencyMs: Latency{Mean: 800, P95: 900},
						Dropped: map[string]uint64{"frames": 4}, Provider: "cpu", Gallery: 12}
				},
				StatusEvery: time.Hour, StatusPoll: 5 * time.Millisecond,
			})
			if m := sub.next(prefix + "/availability"); string(m.Payload) != PayloadOnline {
				t.Fatalf("availability %q", m.Payload)
			}
			known := makeVisit(t, 1, "front door", true)
			unknown := makeVisit(t, 2, "yard+#", false)
			for _, v := range []*face.Visit{known, unknown} {
				if err := h.p.PublishVisit(context.Background(), v); err != nil {
					t.Fatal(err)
				}
			}
			// the per-shot stream is on (Hits)
			hit := makeHit(t, 3, "front door", true)
			if err := h.p.Publish(context.Background(), hit); err != nil {
				t.Fatal(err)
			}
			m := sub.next(prefix + "/front door/visit")
			if id := hitID(t, m); id != known.ID {
				t.Fatalf("visit id %s, want %s", id, known.ID)
			}
			var vp struct {
				Image struct {
					SR string `json:"sr_jpeg"`
				} `json:"image"`
				Decision struct {
					Name        string           `json:"name"`
					Confidence  float64          `json:"confidence"`
					Explanation face.Explanation `json:"explanation"`
				} `json:"decision"`
			}
			if err := json.Unmarshal(m.Payload, &vp); err != nil || vp.Image.SR == "" || vp.Decision.Name != "Ada / Lovelace #1" || vp.Decision.Confidence != 0.93 {
				t.Fatalf("visit payload: %v %+v", err, vp)
			}
			// the visit explains its decision, in words and structured
			if x := vp.Decision.Explanation; x.Text != known.Decision.Explanation.Text || !strings.HasPrefix(x.Text, "Named Ada / Lovelace #1: 0.960 (needs 0.940)") ||
				x.Outcome != face.OutcomeNamed || x.Closest == nil || x.Closest.Name != "Ada / Lovelace #1" || x.MarginNeeded != 0.02 || x.Shots != 2 {
				t.Fatalf("visit explanation %+v", x)
			}
			mm := sub.next(prefix + "/matches/Ada _ Lovelace _1")
			if id := hitID(t, mm); id != known.ID || !bytes.Contains(mm.Payload, []byte(`"confidence":0.93`)) {
				t.Fatalf("match %s", mm.Payload)
			}
			// the named person's entities (first sighting) and state
			seen := sub.nextMatching("the person's seen sensor", func(r received) bool {
				return strings.HasPrefix(r.Topic, ha+"/binary_sensor/") && strings.HasSuffix(r.Topic, "/person_7_seen/config")
			})
			var sc map[string]any
			if err := json.Unmarshal(seen.Payload, &sc); err != nil || sc["name"] != "Ada / Lovelace #1 seen in the last 5 min" ||
				sc["state_topic"] != prefix+"/people/7/state" || sc["off_delay"] != 300.0 || sc["device_class"] != "presence" ||
				!strings.Contains(sc["value_template"].(string), "< 300") {
				t.Fatalf("seen sensor config %s (%v)", seen.Payload, err)
			}
			ps := sub.next(prefix + "/people/7/state")
			var pp map[string]any
			if err := json.Unmarshal(ps.Payload, &pp); err != nil || pp["name"] != "Ada / Lovelace #1" || pp["camera"] != "front door" ||
				pp["visit"] != known.ID || pp["last_seen"] != known.LastSeen.UTC().Format("2006-01-02T15:04:05.000Z") {
				t.Fatalf("person state %s (%v)", ps.Payload, err)
			}
			if id := hitID(t, sub.next(prefix+"/yard__/visit")); id != unknown.ID {
				t.Fatalf("unknown visit id %s", id)
			}
			if lm := sub.next(prefix + "/yard__/last_match"); !bytes.Contains(lm.Payload, []byte(`"name":"unknown"`)) {
				t.Fatalf("last match %s", lm.Payload)
			}
			if f := sub.next(prefix + "/yard__/face"); !bytes.Equal(f.Payload, unknown.BestJPEG) {
				t.Fatal("face image differs")
			}
			hm := sub.next(prefix + "/front door/hit")
			if id := hitID(t, hm); id != hit.ID {
				t.Fatalf("hit id %s, want %s", id, hit.ID)
			}
			var hp struct {
				SR    face.SR `json:"sr"`
				Match struct {
					Explanation face.Explanation `json:"explanation"`
				} `json:"match"`
			}
			if err := json.Unmarshal(hm.Payload, &hp); err != nil || hp.Match.Explanation.Text != hit.Match.Explanation.Text ||
				hp.Match.Explanation.RunnerUp == nil || hp.Match.Explanation.RunnerUp.Name != "Bob" || hp.SR.Weight != hit.SR.Weight {
				t.Fatalf("hit explanation %+v sr %+v (%v)", hp.Match.Explanation, hp.SR, err)
			}
			// A camera going down is published at once.
			frontConnected.Store(false)
			sub.nextMatching("status with connected=false", func(r received) bool {
				return r.Topic == prefix+"/front door/status" && bytes.Contains(r.Payload, []byte(`"connected":false`))
			})
			// So is a camera that rejects the credentials (no change of connected).
			yardAuthFailed.Store(true)
			sub.nextMatching("status with state auth_failed", func(r received) bool {
				return r.Topic == prefix+"/yard__/status" && bytes.Contains(r.Payload, []byte(`"state":"auth_failed"`))
			})
			waitState(t, h.p, "spool drained", func() bool { n, _ := h.p.SpoolDepth(); return n == 0 })
			h.stop(t)
			sub.nextMatching("offline", func(r received) bool {
				return r.Topic == prefix+"/availability" && string(r.Payload) == PayloadOffline
			})
			for _, name := range []string{"hit.schema.json", "visit.schema.json", "match.schema.json", "last_match.schema.json", "status.schema.json",
				"stats.schema.json", "availability.schema.json", "ha_discovery.schema.json", "person.schema.json"} {
				if sub.v.count(name) == 0 {
					t.Errorf("no message validated against %s", name)
				}
			}
			// 2 cameras x (sensor, binary_sensor, camera) + spool sensor + the
			// named person's 3 (last camera, last seen, seen)
			if n := sub.v.count("ha_discovery.schema.json"); n != 10 {
				t.Errorf("%d discovery configs, want 10", n)
			}
		})
	}
}

// TestAuthFailure: wrong credentials give ErrAuth naming the broker and
// never the password; right ones connect.
func TestAuthFailure(t *testing.T) {
	for _, bk := range brokerKinds() {
		t.Run(bk.name, func(t *testing.T) {
			b := bk.start(t, true)
			tests := []struct {
				name, user, pass string
				want             error
			}{
				{"right", testUser, testPass, nil},
				{"wrong password", testUser, "wrong-" + testPass, ErrAuth},
				{"no credentials", "", "", ErrAuth},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					err := Probe(ctx, Options{Broker: "tcp://" + b.Addr(), Username: tt.user, Password: tt.pass, ClientID: "probe"})
					if tt.want == nil {
						if err != nil {
							t.Fatalf("probe: %v", err)
						}
						return
					}
					checkConnErr(t, err, tt.want, "tcp://"+b.Addr(), tt.pass)
				})
			}
			// Run with a wrong password keeps trying and stays down.
			h := startPublisher(t, Options{Broker: "tcp://" + b.Addr(), Username: testUser, Password: "nope-nope"})
			waitState(t, h.p, "an auth error recorded", func() bool {
				h.p.mu.Lock()
				defer h.p.mu.Unlock()
				return h.p.lastErr != ""
			})
			if h.p.Connected() {
				t.Fatal("connected with a wrong password")
			}
		})
	}
}

func checkConnErr(t *testing.T, err, kind error, broker, secret string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", kind)
	}
	if !errors.Is(err, kind) {
		t.Fatalf("error %q is not %v", err, kind)
	}
	msg := err.Error()
	if !bytes.Contains([]byte(msg), []byte(broker)) {
		t.Fatalf("error %q does not name the broker %s", msg, broker)
	}
	if secret != "" && bytes.Contains([]byte(msg), []byte(secret)) {
		t.Fatalf("error %q leaks the password", msg)
	}
}

// TestLWTAndReconnect: the publisher's connection dies abruptly (RST
// through the proxy): the broker publishes the will "offline"; the
// publisher reconnects, says "online" and delivers again.
func TestLWTAndReconnect(t *testing.T) {
	for _, bk := range brokerKinds() {
		t.Run(bk.name, func(t *testing.T) {
			b := bk.start(t, false)
			px := startProxy(t, b.Addr())
			prefix := "lwt/" + bk.name
			sub := subscribe(t, b.Addr(), prefix, "ha", false, prefix+"/#")
			h := startPublisher(t, Options{Broker: "tcp://" + px.Addr(), TopicPrefix: prefix, StatusEvery: time.Hour, Hits: true})
			if m := sub.next(prefix + "/availability"); string(m.Payload) != PayloadOnline {
				t.Fatalf("availability %q", m.Payload)
			}
			for round := range 2 {
				t.Logf("round %d: cut", round)
				px.cut()
				if m := sub.next(prefix + "/availability"); string(m.Payload) != PayloadOffline {
					t.Fatalf("round %d: will %q, want offline", round, m.Payload)
				}
				if m := sub.next(prefix + "/availability"); string(m.Payload) != PayloadOnline {
					t.Fatalf("round %d: after reconnect %q", round, m.Payload)
				}
				hit := makeHit(t, round, "cam", false)
				if err := h.p.Publish(context.Background(), hit); err != nil {
					t.Fatal(err)
				}
				t.Logf("round %d: published", round)
				if id := hitID(t, sub.next(prefix+"/cam/hit")); id != hit.ID {
					t.Fatalf("round %d: hit %s, want %s", round, id, hit.ID)
				}
				// Cutting before the PUBACK is back would send the hit
				// again (QoS 1 is at least once).
				waitState(t, h.p, "acked", func() bool { n, _ := h.p.SpoolDepth(); return n == 0 })
			}
			waitState(t, h.p, "drained", func() bool { n, _ := h.p.SpoolDepth(); return n == 0 })
			if r := h.p.reconnects.Load(); r < 2 {
				t.Fatalf("reconnects %d", r)
			}
		})
	}
}

// TestBrokerOutage: the broker stops, 50 alerts are produced, the broker
// restarts on the same port; a subscriber that subscribed after the restart
// gets all 50 in order, once each.
func TestBrokerOutage(t *testing.T) {
	const n = 50
	for _, bk := range brokerKinds() {
		for _, ak := range alertKinds() {
			t.Run(bk.name+"/"+ak.name, func(t *testing.T) {
				b := bk.start(t, true)
				px := startProxy(t, b.Addr())
				prefix := "outage/" + bk.name
				h := startPublisher(t, Options{Broker: "tcp://" + px.Addr(), Username: testUser, Password: testPass,
					TopicPrefix: prefix, StatusEvery: time.Hour, Hits: true})
				waitState(t, h.p, "connected", h.p.Connected)

				b.Stop(t)
				px.setOpen(false) // the publisher comes back only when we say
				waitState(t, h.p, "disconnected", func() bool { return !h.p.Connected() })
				var ids []string
				for i := range n {
					ids = append(ids, ak.publish(t, h.p, i, fmt.Sprintf("cam%d", i%3), i%5 == 0))
				}
				if d, _ := h.p.SpoolDepth(); d != n {
					t.Fatalf("spool depth %d, want %d", d, n)
				}
				b.Start(t)
				sub := subscribe(t, b.Addr(), prefix, "ha", true, prefix+"/+/"+ak.leaf)
				px.setOpen(true)
				seen := map[string]bool{}
				for i := range n {
					m := sub.nextMatching(fmt.Sprintf("%s %d of %d", ak.name, i+1, n), func(r received) bool { return true })
					id := hitID(t, m)
					if seen[id] {
						t.Fatalf("%s %s delivered twice", ak.name, id)
					}
					seen[id] = true
					if id != ids[i] {
						t.Fatalf("%s %d: id %s, want %s (order)", ak.name, i, id, ids[i])
					}
				}
				waitState(t, h.p, "drained", func() bool { n, _ := h.p.SpoolDepth(); return n == 0 })
				if h.p.Dropped() != 0 {
					t.Fatalf("dropped %d", h.p.Dropped())
				}
			})
		}
	}
}

// alertKind is what the spool carries: hits (the per-shot stream, with
// Options.Hits) or visit events; publish returns the id.
type alertKind struct {
	name, leaf string
	publish    func(t *testing.T, p *Publisher, i int, cam string, known bool) string
}

func alertKinds() []alertKind {
	return []alertKind{
		{"hit", "hit", func(t *testing.T, p *Publisher, i int, cam string, known bool) string {
			h := makeHit(t, i, cam, known)
			if err := p.Publish(context.Background(), h); err != nil {
				t.Fatalf("publish hit %d: %v", i, err)
			}
			return h.ID
		}},
		{"visit", "visit", func(t *testing.T, p *Publisher, i int, cam string, known bool) string {
			v := makeVisit(t, i, cam, known)
			if err := p.PublishVisit(context.Background(), v); err != nil {
				t.Fatalf("publish visit %d: %v", i, err)
			}
			return v.ID
		}},
	}
}

// TestSpoolBoundEndToEnd: with the broker away and a bound of 5, 12 alerts
// leave the newest 5 (delivered in order once the broker is back) and 7
// counted drops.
func TestSpoolBoundEndToEnd(t *testing.T) {
	b := startEmbedded(t, false)
	px := startProxy(t, b.Addr())
	px.setOpen(false)
	prefix := "bound"
	sub := subscribe(t, b.Addr(), prefix, "ha", false, prefix+"/+/hit")
	h := startPublisher(t, Options{Broker: "tcp://" + px.Addr(), TopicPrefix: prefix, SpoolMaxMessages: 5, StatusEvery: time.Hour, Hits: true})
	var ids []string
	for i := range 12 {
		hit := makeHit(t, i, "cam", false)
		ids = append(ids, hit.ID)
		if err := h.p.Publish(context.Background(), hit); err != nil {
			t.Fatal(err)
		}
	}
	if h.p.Dropped() != 7 {
		t.Fatalf("dropped %d, want 7", h.p.Dropped())
	}
	if d, _ := h.p.SpoolDepth(); d != 5 {
		t.Fatalf("depth %d, want 5", d)
	}
	px.setOpen(true)
	for i := 7; i < 12; i++ {
		if id := hitID(t, sub.next(prefix+"/cam/hit")); id != ids[i] {
			t.Fatalf("got %s, want %s (hit %d)", id, ids[i], i)
		}
	}
	waitState(t, h.p, "drained", func() bool { n, _ := h.p.SpoolDepth(); return n == 0 })
	snap := h.p.snapshot(time.Now())
	if snap.MQTT.SpoolDropped != 7 || snap.MQTT.Published != 5 {
		t.Fatalf("stats %+v", snap.MQTT)
	}
}

// TestRestartDeliversSpool: alerts spooled by a publisher that never
// reached the broker are delivered in order by the next one on the same
// spool directory (a daemon restart).
func TestRestartDeliversSpool(t *testing.T) {
	for _, ak := range alertKinds() {
		t.Run(ak.name, func(t *testing.T) {
			b := startEmbedded(t, false)
			px := startProxy(t, b.Addr())
			px.setOpen(false)
			dir := t.TempDir()
			prefix := "restart"
			h1 := startPublisher(t, Options{Broker: "tcp://" + px.Addr(), TopicPrefix: prefix, SpoolDir: dir, ClientID: "a", Hits: true})
			var ids []string
			for i := range 10 {
				ids = append(ids, ak.publish(t, h1.p, i, "cam", i%2 == 0))
			}
			h1.stop(t)
			sub := subscribe(t, b.Addr(), prefix, "ha", false, prefix+"/+/"+ak.leaf)
			h2 := startPublisher(t, Options{Broker: "tcp://" + b.Addr(), TopicPrefix: prefix, SpoolDir: dir, ClientID: "a", Hits: true})
			for i := range ids {
				if id := hitID(t, sub.next(prefix+"/cam/"+ak.leaf)); id != ids[i] {
					t.Fatalf("%s %d: %s, want %s", ak.name, i, id, ids[i])
				}
			}
			waitState(t, h2.p, "drained", func() bool { n, _ := h2.p.SpoolDepth(); return n == 0 })
		})
	}
}

// TestRunCancel: Run returns nil promptly when ctx ends, connected or
// not, and leaves no goroutines (TestMain's goleak check covers all tests;
// this one checks right here too).
func TestRunCancel(t *testing.T) {
	tests := []struct {
		name    string
		connect bool
	}{
		{"connected", true},
		{"broker away", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := goleak.IgnoreCurrent()
			func() {
				b := startEmbedded(t, false)
				addr := b.Addr()
				if !tt.connect {
					addr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
				}
				h := startPublisher(t, Options{Broker: "tcp://" + addr, ReconnectMin: time.Hour, ReconnectMax: time.Hour})
				if tt.connect {
					waitState(t, h.p, "connected", h.p.Connected)
				} else {
					waitState(t, h.p, "a connect error", func() bool {
						h.p.mu.Lock()
						defer h.p.mu.Unlock()
						return h.p.lastErr != ""
					})
				}
				h.stop(t)
				b.Stop(t)
			}()
			goleak.VerifyNone(t, before)
		})
	}
}

// TestPublishOptions: QoS and include_image shape what goes out.
func TestPublishOptions(t *testing.T) {
	tests := []struct {
		name    string
		qos     byte
		image   bool
		wantQoS byte // as seen by a QoS 1 subscriber
	}{
		{"qos 0 without image", 0, false, 0},
		{"qos 1 with image", 1, true, 1},
		{"qos 2 with image", 2, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := startEmbedded(t, false)
			prefix := "opt"
			sub := subscribe(t, b.Addr(), prefix, "ha", false, prefix+"/cam/#")
			h := startPublisher(t, Options{Broker: "tcp://" + b.Addr(), TopicPrefix: prefix, QoS: tt.qos, QoSSet: true, IncludeImage: tt.image})
			visits := []*face.Visit{makeVisit(t, 0, "cam", false), makeVisit(t, 1, "cam", false)}
			for _, v := range visits {
				if err := h.p.PublishVisit(context.Background(), v); err != nil {
					t.Fatal(err)
				}
			}
			// hits are off by default: nothing
			if err := h.p.Publish(context.Background(), makeHit(t, 2, "cam", false)); err != nil {
				t.Fatal(err)
			}
			var got []string
			for len(got) < 2*3 && !(len(got) == 2*2 && !tt.image) {
				m := sub.nextMatching("alert messages", func(received) bool { return true })
				got = append(got, m.Topic[len(prefix)+1:])
				if m.QoS != tt.wantQoS {
					t.Fatalf("%s arrived with QoS %d, want %d", m.Topic, m.QoS, tt.wantQoS)
				}
				if m.Topic == prefix+"/cam/visit" {
					if has := bytes.Contains(m.Payload, []byte(`"image":`)); has != tt.image {
						t.Fatalf("image in visit: %v, want %v", has, tt.image)
					}
				}
			}
			want := []string{"cam/visit", "cam/last_match", "cam/visit", "cam/last_match"}
			if tt.image {
				want = []string{"cam/visit", "cam/last_match", "cam/face", "cam/visit", "cam/last_match", "cam/face"}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("topics %v, want %v", got, want)
			}
			waitState(t, h.p, "drained", func() bool { n, _ := h.p.SpoolDepth(); return n == 0 })
		})
	}
}

// TestNoSecretsInLogs: a failing connection logs the broker without
// credentials and never the password.
func TestNoSecretsInLogs(t *testing.T) {
	b := startEmbedded(t, true)
	var (
		mu  sync.Mutex
		buf bytes.Buffer
	)
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	const secret = "pw-that-must-not-leak"
	h := startPublisher(t, Options{Broker: "tcp://" + b.Addr(), Username: testUser, Password: secret, Logger: log})
	waitState(t, h.p, "a connect error", func() bool {
		h.p.mu.Lock()
		defer h.p.mu.Unlock()
		return h.p.lastErr != ""
	})
	h.stop(t)
	mu.Lock()
	defer mu.Unlock()
	out := buf.String()
	if !strings.Contains(out, "mqtt connect failed") || !strings.Contains(out, "tcp://"+b.Addr()) {
		t.Fatalf("log lacks the failure or the broker:\n%s", out)
	}
	if strings.Contains(out, secret) {
		t.Fatalf("log leaks the password:\n%s", out)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
