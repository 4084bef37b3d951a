package mqtt

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/srdgd/srdgd/face"
)

// TestRestartSpoolSealing: alerts spooled while the broker is away are
// sealed on disk (no image, no name readable there, with a gallery key and
// without one) and delivered after a restart: in full with the gallery key,
// as redacted visit messages without it (the run key died with the first
// process). Either way the spool directory is empty once they are acked.
func TestRestartSpoolSealing(t *testing.T) {
	tests := []struct {
		name string
		key  []byte
	}{
		{"gallery key", bytes.Repeat([]byte{5}, 32)},
		{"no key", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := startEmbedded(t, false)
			px := startProxy(t, b.Addr())
			px.setOpen(false)
			dir := t.TempDir()
			prefix := "seal"
			var (
				mu   sync.Mutex
				logs bytes.Buffer
			)
			log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
			o := Options{Broker: "tcp://" + px.Addr(), TopicPrefix: prefix, SpoolDir: dir, ClientID: "a", IncludeImage: true, SpoolKey: tt.key, Logger: log}
			h1 := startPublisher(t, o)
			var visits []*face.Visit
			for i := range 4 {
				vis := makeVisit(t, i, "cam", i%2 == 0)
				visits = append(visits, vis)
				if err := h1.p.PublishVisit(context.Background(), vis); err != nil {
					t.Fatal(err)
				}
			}
			h1.stop(t)
			jp, pn := testImages(t)
			disk := dirBytes(t, dir)
			for _, w := range [][]byte{jp[:16], pn[:8], []byte("/9j/"), []byte("iVBOR"), []byte("Ada"), []byte("Bob")} {
				if bytes.Contains(disk, w) {
					t.Fatalf("%q readable in the spool directory", w)
				}
			}
			mu.Lock()
			warned := strings.Count(logs.String(), "no gallery key")
			mu.Unlock()
			if want := map[bool]int{true: 1, false: 0}[tt.key == nil]; warned != want {
				t.Fatalf("%d no-key warnings, want %d:\n%s", warned, want, logs.String())
			}

			sub := subscribe(t, b.Addr(), prefix, "ha", false, prefix+"/cam/#", prefix+"/matches/#")
			o.Broker = "tcp://" + b.Addr()
			h2 := startPublisher(t, o)
			var got []string
			for i, vis := range visits {
				m := sub.nextMatching("visit", func(r received) bool {
					got = append(got, r.Topic)
					return r.Topic == prefix+"/cam/visit"
				})
				if id := hitID(t, m); id != vis.ID {
					t.Fatalf("visit %d: %s, want %s", i, id, vis.ID)
				}
				var hp struct {
					Image *struct {
						SR string `json:"sr_jpeg"`
					} `json:"image"`
					Redacted bool `json:"redacted"`
					Match    struct {
						Known bool              `json:"known"`
						Name  string            `json:"name"`
						TopK  []json.RawMessage `json:"top_k"`
					} `json:"decision"`
				}
				if err := json.Unmarshal(m.Payload, &hp); err != nil {
					t.Fatal(err)
				}
				if tt.key != nil {
					if hp.Redacted || hp.Image == nil || hp.Image.SR != base64.StdEncoding.EncodeToString(vis.BestJPEG) || len(hp.Match.TopK) != 2 ||
						hp.Match.Known && hp.Match.Name != vis.Decision.Name {
						t.Fatalf("visit %d not in full: %s", i, m.Payload)
					}
				} else if !hp.Redacted || hp.Image != nil || hp.Match.Name != "" || len(hp.Match.TopK) != 0 || hp.Match.Known != vis.Decision.Known ||
					bytes.Contains(m.Payload, []byte("Ada")) || bytes.Contains(m.Payload, []byte("Bob")) {
					t.Fatalf("visit %d not redacted: %s", i, m.Payload)
				}
			}
			waitState(t, h2.p, "drained", func() bool { n, _ := h2.p.SpoolDepth(); return n == 0 })
			h2.stop(t)
			// with the key, the match message of each known visit came
			// before the next visit; without, none
			matches := 0
			for _, tp := range got {
				if strings.HasPrefix(tp, prefix+"/matches/") {
					matches++
				}
			}
			if want := map[bool]int{true: 2, false: 0}[tt.key != nil]; matches != want {
				t.Fatalf("%d match messages, want %d (%v)", matches, want, got)
			}
			if f := segFiles(t, dir); len(f) != 0 {
				t.Fatalf("segments left after delivery: %v", f)
			}
		})
	}
}

// TestSpoolRetentionEndToEnd: with the broker away, spooled alerts older
// than the retention are dropped and counted in stats.
func TestSpoolRetentionEndToEnd(t *testing.T) {
	h := startPublisher(t, Options{Broker: fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t)), SpoolRetention: time.Millisecond, Hits: true,
		ReconnectMin: time.Hour, ReconnectMax: time.Hour})
	for i := range 3 {
		if err := h.p.Publish(context.Background(), makeHit(t, i, "cam", false)); err != nil {
			t.Fatal(err)
		}
	}
	waitState(t, h.p, "expired", func() bool { return h.p.Expired() == 3 })
	if n, _ := h.p.SpoolDepth(); n != 0 {
		t.Fatalf("depth %d after expiry", n)
	}
	if st := h.p.snapshot(time.Now()); st.MQTT.SpoolExpired != 3 {
		t.Fatalf("stats %+v", st.MQTT)
	}
}

// TestRedactEntry: the clear copy is the hit alone, without image, names,
// person id or candidates, valid against the hit schema.
func TestRedactEntry(t *testing.T) {
	p := &Publisher{opts: &resolved{Options: Options{IncludeImage: true}, qos: 1}, topics: topics{prefix: "r", ha: "ha"}}
	v := newValidator(t)
	for _, known := range []bool{true, false} {
		hit := makeHit(t, 1, "cam", known)
		msgs, err := p.alertMessages(hit, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		entry, err := encodeEntry(msgs)
		if err != nil {
			t.Fatal(err)
		}
		out, err := decodeEntry(redactEntry(entry))
		if err != nil || len(out) != 1 || out[0].Topic != "r/cam/hit" {
			t.Fatalf("known=%v: %v %+v", known, err, out)
		}
		for _, w := range []string{"Ada", "Bob", "image", "sr_jpeg", "person_id"} {
			if bytes.Contains(out[0].Payload, []byte(w)) {
				t.Fatalf("known=%v: %q in %s", known, w, out[0].Payload)
			}
		}
		if !bytes.Contains(out[0].Payload, []byte(`"redacted":true`)) || !bytes.Contains(out[0].Payload, []byte(hit.ID)) {
			t.Fatalf("known=%v: %s", known, out[0].Payload)
		}
		// the explanation keeps its numbers, names nobody
		if !bytes.Contains(out[0].Payload, []byte(`the closest candidate`)) && !bytes.Contains(out[0].Payload, []byte(`"text":"Named the closest`)) {
			t.Fatalf("known=%v: redacted explanation: %s", known, out[0].Payload)
		}
		if err := v.validate("hit.schema.json", out[0].Payload); err != nil {
			t.Fatalf("known=%v: schema: %v\n%s", known, err, out[0].Payload)
		}
	}
	for _, known := range []bool{true, false} {
		vis := makeVisit(t, 1, "cam", known)
		msgs, err := p.visitMessages(vis, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		entry, err := encodeEntry(msgs)
		if err != nil {
			t.Fatal(err)
		}
		out, err := decodeEntry(redactEntry(entry))
		if err != nil || len(out) != 1 || out[0].Topic != "r/cam/visit" {
			t.Fatalf("visit known=%v: %v %+v", known, err, out)
		}
		for _, w := range []string{"Ada", "Bob", "image", "sr_jpeg", "person_id", "male"} {
			if bytes.Contains(out[0].Payload, []byte(w)) {
				t.Fatalf("visit known=%v: %q in %s", known, w, out[0].Payload)
			}
		}
		if !bytes.Contains(out[0].Payload, []byte(`"redacted":true`)) || !bytes.Contains(out[0].Payload, []byte(vis.ID)) {
			t.Fatalf("visit known=%v: %s", known, out[0].Payload)
		}
		if err := v.validate("visit.schema.json", out[0].Payload); err != nil {
			t.Fatalf("visit known=%v: schema: %v\n%s", known, err, out[0].Payload)
		}
	}
	if redactEntry([]byte("junk")) != nil {
		t.Fatal("junk redacted")
	}
}
