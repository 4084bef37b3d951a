package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/goleak"

	"github.com/srdgd/srdgd/config"
	"github.com/srdgd/srdgd/internal/app"
	"github.com/srdgd/srdgd/internal/demoscene"
	"github.com/srdgd/srdgd/internal/rtspserver"
	"github.com/srdgd/srdgd/internal/testutil"
	"github.com/srdgd/srdgd/match"
)

// TestStateDirHoldsNoPlaintextFaces runs the real daemon on a real RTSP
// stream of the demo scene (its eight people enrolled) with Debian's
// mosquitto as an external broker, so that hits are spooled and
// acknowledged; then stops the broker so that some hits wait in the spool,
// stops the daemon, and scans the raw bytes of every file under the state
// dir (gallery.db, history.db, the spool, the -wal and -shm files) for a
// readable face (a JPEG or PNG that decodes, raw or base64) and for the
// enrolled names (as written, lower-cased and URL-query-encoded). A second
// run without cameras, the broker back, delivers the waiting hits with
// their images, and the spool directory is empty afterwards (acknowledged
// records do not stay on disk).
//
// The gallery is enrolled the way `srdgd demo` and `srdgd gallery add` do
// it, with the audit entries that name each person; one more person is
// enrolled and removed from the command line, and run 1 asks the API for a
// person's hits and gallery photo, so that every way a name reaches the
// audit log is exercised. The API's audit log still shows the names (the
// daemon holds the key and decrypts them when read).
func TestStateDirHoldsNoPlaintextFaces(t *testing.T) {
	ffmpeg, err := rtspserver.FFmpegPath()
	if err != nil {
		requireFFmpeg(t, err)
	}
	mosq := testutil.NewMosquitto(t, testutil.MosquittoOptions{})
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()

	srv, man, stopStream := streamDemoScene(ctx, t, ffmpeg)
	defer stopStream()
	var names []string
	for _, p := range man.People {
		names = append(names, p.Name)
	}

	t0 := time.Now()
	step := func(what string) { t.Logf("%s after %v", what, time.Since(t0).Round(time.Millisecond)) }
	step("scene streaming")
	broker := mosq.Start(t)
	defer mosq.Stop(t)
	cfg := testDaemonConfig(t)
	state := cfg.Storage.StateDir
	if err := match.GenerateKey(cfg.Match.KeyFile); err != nil {
		t.Fatal(err)
	}
	removed := enrolDemoPeople(ctx, t, cfg, man)
	names = append(names, removed)
	cfg.SRDG.Sampler, cfg.SRDG.Steps, cfg.SRDG.BatchSize = "ode", 4, 1
	cfg.SRDG.Attributes.Policy = "off"
	cfg.Daemon.ShutdownTimeout = 20 * time.Second
	cfg.Publish.MQTT.Broker = "tcp://" + broker
	cfg.Publish.MQTT.Hits = true // the test follows the per-shot stream
	cam := config.DefaultCamera()
	cam.Name, cam.URL, cam.Transport = "plaza", srv.URL("plaza"), "tcp"
	cfg.Cameras = []config.Camera{cam}

	// Run 1: hits go out through the spool and are acknowledged.
	step("gallery enrolled")
	sub := subscribeHits(t, broker)
	d := startTestDaemon(ctx, t, cfg)
	step("daemon serving")
	sub.waitFor(ctx, t, "3 hits with their SR face and named candidates", func(hs []hitSeen) bool {
		n := 0
		for _, h := range hs {
			if !h.visit && h.image && h.named {
				n++
			}
		}
		return n >= 3
	})
	sub.close()
	step("hits delivered")
	// the accesses that name a person in the audit log
	who := man.People[0].Name
	d.get(ctx, t, "/api/v1/hits?person="+url.QueryEscape(who))
	d.get(ctx, t, "/api/v1/gallery/"+url.PathEscape(who)+"/photo.jpg")
	checkAuditNames(ctx, t, d, map[string]string{"gallery.add": who, "gallery.remove": removed, "gallery.photo": who})
	// while the daemon runs, its databases' -wal and -shm files are there
	wal := scanStateDir(t, state, names)
	t.Logf("scanned while the daemon runs: %q", wal)
	if !slices.Contains(wal, "gallery.db-wal") || !slices.Contains(wal, "history.db-wal") {
		t.Errorf("scanned %q while the daemon runs: want the gallery's and the history's WAL among them", wal)
	}
	// The broker goes away: the next hits wait in the spool.
	mosq.Stop(t)
	d.waitMetric(ctx, t, "srdgd_mqtt_spool_messages", 2)
	d.stop(t)
	step("hits spooled, daemon stopped")
	spooled := recordsOnDisk(t, filepath.Join(state, "spool"))
	if spooled == 0 {
		t.Fatal("no spool records on disk with the broker away: the scan below would prove nothing")
	}
	t.Logf("run 1: %d hits delivered, %d spool records waiting on disk", len(sub.hits()), spooled)
	t.Logf("scanned after run 1: %q", scanStateDir(t, state, names))
	if t.Failed() {
		t.FailNow()
	}

	// Run 2, no camera: the waiting hits are delivered in full, and
	// nothing stays in the spool directory.
	mosq.Start(t)
	sub2 := subscribeHits(t, broker)
	cfg.Cameras = nil
	d2 := startTestDaemon(ctx, t, cfg)
	// The spool holds visit events as well as hits (one record each) and
	// which of them waited depends on timing (all six may be visit
	// events), so the proof of delivery is the spool emptied by the
	// broker's acks and at least one waiting message, hit or visit, seen
	// by the subscriber; every hit among them comes with its image.
	d2.waitMetric(ctx, t, "srdgd_mqtt_spool_messages", -1)
	sub2.waitFor(ctx, t, "the spooled hits or visits", func(hs []hitSeen) bool { return len(hs) >= 1 })
	d2.stop(t)
	sub2.close()
	for _, h := range sub2.hits() {
		if !h.image || !h.named {
			t.Errorf("hit %s delivered after the restart without its image or candidates", h.id)
		}
	}
	if n := recordsOnDisk(t, filepath.Join(state, "spool")); n != 0 {
		t.Errorf("%d spool records still on disk after every hit was acknowledged", n)
	}
	t.Logf("scanned after run 2: %q", scanStateDir(t, state, names))
	stopStream()
}

// TestStateDirHoldsNoPlaintextFacesWithoutKey is the no-key case: the
// daemon runs on the demo scene with no gallery key file (so no gallery and
// no history) and a broker that is not there, so every alert waits in the
// spool; after it stops, the spool's records are on disk and no file under
// the state dir holds a readable face (raw or base64 JPEG/PNG) or a demo
// person's name: the spool seals with a key that dies with the process and
// keeps only a clear copy without images and names.
func TestStateDirHoldsNoPlaintextFacesWithoutKey(t *testing.T) {
	ffmpeg, err := rtspserver.FFmpegPath()
	if err != nil {
		requireFFmpeg(t, err)
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	srv, man, stopStream := streamDemoScene(ctx, t, ffmpeg)
	defer stopStream()
	var names []string
	for _, p := range man.People {
		names = append(names, p.Name)
	}
	cfg := testDaemonConfig(t)
	state := cfg.Storage.StateDir
	cfg.SRDG.Sampler, cfg.SRDG.Steps, cfg.SRDG.BatchSize = "ode", 4, 1
	cfg.SRDG.Attributes.Policy = "off"
	cfg.Daemon.ShutdownTimeout = 20 * time.Second
	cfg.Publish.MQTT.Broker = "tcp://" + testutil.NewMosquitto(t, testutil.MosquittoOptions{}).Addr() // never started: nobody listens
	cfg.Publish.MQTT.Hits = true
	cam := config.DefaultCamera()
	cam.Name, cam.URL, cam.Transport = "plaza", srv.URL("plaza"), "tcp"
	cfg.Cameras = []config.Camera{cam}
	d := startTestDaemon(ctx, t, cfg)
	d.waitMetric(ctx, t, "srdgd_mqtt_spool_messages", 2)
	d.stop(t)
	if !strings.Contains(d.logs.String(), "no gallery key") {
		t.Errorf("no WARN about the missing gallery key at start:\n%s", d.logs.String())
	}
	spooled := recordsOnDisk(t, filepath.Join(state, "spool"))
	if spooled == 0 {
		t.Fatal("no spool records on disk with the broker away: the scan below would prove nothing")
	}
	t.Logf("no key: %d spool records waiting on disk; scanned %q", spooled, scanStateDirMin(t, state, names, 1))
	stopStream()
}

// enrolDemoPeople enrols the demo people as `srdgd demo` does (with an
// audit entry naming each), then enrols one more person and removes them
// again, audited as `srdgd gallery add` and `remove` do; it returns the
// removed person's name.
func enrolDemoPeople(ctx context.Context, t *testing.T, cfg *config.Config, man *demoscene.Manifest) string {
	t.Helper()
	if err := app.DemoGallery(ctx, cfg, man, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	const removed = "Removed Visitor Quentin"
	env, err := app.OpenGallery(ctx, cfg, true, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	photos, err := match.PhotosFromFiles([]string{man.GalleryPath(man.People[0])})
	if err != nil {
		t.Fatal(err)
	}
	env.AuditWarn = func(err error) { t.Errorf("audit: %v", err) }
	if res, _, err := env.Enrol(ctx, removed, photos); err != nil || res[0].Err != nil {
		t.Fatalf("enrol %q: %v %+v", removed, err, res)
	}
	if err := env.Remove(ctx, removed); err != nil {
		t.Fatal(err)
	}
	people, err := env.Gallery.List(ctx)
	if err != nil || len(people) != len(man.People) {
		t.Fatalf("gallery after enrolment: %d people (%v), want %d", len(people), err, len(man.People))
	}
	return removed
}

// checkAuditNames reads the audit log through the API and checks that, for
// each action, an entry shows the person's name as its target.
func checkAuditNames(ctx context.Context, t *testing.T, d *testDaemon, want map[string]string) {
	t.Helper()
	var log struct {
		Entries []struct {
			Action string `json:"action"`
			Target string `json:"target"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(d.get(ctx, t, "/api/v1/audit?limit=1000"), &log); err != nil {
		t.Fatal(err)
	}
	for action, name := range want {
		found := false
		for _, e := range log.Entries {
			found = found || e.Action == action && e.Target == name
		}
		if !found {
			t.Errorf("the API's audit log has no %s entry for %q: %+v", action, name, log.Entries)
		}
	}
}

// scanStateDir fails for every readable face or name in any file under
// dir: PNG and JPEG data that decodes, raw or base64 ("iVBOR", "/9j/"),
// and the names as written, lower-cased and URL-query-encoded. It returns
// the files scanned, relative to dir.
func scanStateDir(t *testing.T, dir string, names []string) []string {
	return scanStateDirMin(t, dir, names, 3)
}

// scanStateDirMin is scanStateDir expecting at least minFiles files.
func scanStateDirMin(t *testing.T, dir string, names []string, minFiles int) []string {
	t.Helper()
	var forms []string
	for _, n := range names {
		forms = append(forms, n, strings.ToLower(n), url.QueryEscape(n), url.PathEscape(n))
	}
	slices.Sort(forms)
	forms = slices.Compact(forms)
	var files []string
	err := filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
		if err != nil || !de.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files = append(files, rel)
		for _, f := range readableFaces(b) {
			t.Errorf("%s: %s", rel, f)
		}
		for _, n := range forms {
			if c := bytes.Count(b, []byte(n)); c > 0 {
				t.Errorf("%s: the enrolled name %q, %d times", rel, n, c)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < minFiles {
		t.Fatalf("only %q under %s", files, dir)
	}
	return files
}

var base64Run = regexp.MustCompile(`[A-Za-z0-9+/]{16,}={0,2}`)

// readableFaces describes each image in b that decodes.
func readableFaces(b []byte) []string {
	var out []string
	if n := bytes.Count(b, []byte("\x89PNG\r\n\x1a\n")); n > 0 {
		out = append(out, fmt.Sprintf("%d PNG signatures", n))
	}
	jpegs := 0
	for i := 0; ; {
		k := bytes.Index(b[i:], []byte{0xff, 0xd8, 0xff})
		if k < 0 {
			break
		}
		if _, err := jpeg.DecodeConfig(bytes.NewReader(b[i+k:])); err == nil {
			jpegs++
		}
		i += k + 1
	}
	if jpegs > 0 {
		out = append(out, fmt.Sprintf("%d JPEG images", jpegs))
	}
	b64 := map[string]int{}
	for _, loc := range base64Run.FindAllIndex(b, -1) {
		run := b[loc[0]:loc[1]]
		for _, sig := range []string{"/9j/", "iVBOR"} {
			k := bytes.Index(run, []byte(sig))
			if k < 0 {
				continue
			}
			s := run[k:]
			s = s[:len(s)/4*4]
			img, err := base64.StdEncoding.DecodeString(string(s))
			if err != nil {
				continue
			}
			if _, err := jpeg.DecodeConfig(bytes.NewReader(img)); err == nil {
				b64["JPEG"]++
			} else if _, err := png.DecodeConfig(bytes.NewReader(img)); err == nil {
				b64["PNG"]++
			}
		}
	}
	for k, n := range b64 {
		out = append(out, fmt.Sprintf("%d base64 %s images", n, k))
	}
	return out
}

// recordsOnDisk counts the records in the spool's segment files by their
// framing (magic, length), whatever their format.
func recordsOnDisk(t *testing.T, dir string) int {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "seg-*.log"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range segs {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off+12 <= len(b) && string(b[off:off+3]) == "SRQ"; n++ {
			off += 12 + int(uint32(b[off+4])<<24|uint32(b[off+5])<<16|uint32(b[off+6])<<8|uint32(b[off+7]))
		}
	}
	return n
}

// testDaemon is a daemon run by a test.
type testDaemon struct {
	cancel context.CancelFunc
	done   chan int
	logs   *syncBuffer
	http   string
	stopT  time.Duration
}

func startTestDaemon(ctx context.Context, t *testing.T, cfg *config.Config) *testDaemon {
	t.Helper()
	d := &testDaemon{done: make(chan int, 1), logs: &syncBuffer{}, stopT: cfg.Daemon.ShutdownTimeout + 10*time.Second}
	events := newLogEvents()
	log := slog.New(&hookHandler{inner: slog.NewTextHandler(d.logs, nil), hook: events.record})
	dctx, cancel := context.WithCancel(ctx)
	d.cancel = cancel
	go func() { d.done <- runDaemonWith(dctx, cfg, log, nil) }()
	t.Cleanup(func() {
		d.cancel()
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.logs.String())
		}
	})
	select {
	case d.http = <-events.httpAddr:
	case code := <-d.done:
		t.Fatalf("daemon exited with %d before serving:\n%s", code, d.logs.String())
	case <-ctx.Done():
		t.Fatal("the http api never listened")
	}
	return d
}

// stop stops the daemon like SIGTERM and checks it exits cleanly.
func (d *testDaemon) stop(t *testing.T) {
	t.Helper()
	d.cancel()
	select {
	case code := <-d.done:
		if code != exitOK {
			t.Errorf("daemon exit %d after a clean stop:\n%s", code, d.logs.String())
		}
	case <-time.After(d.stopT):
		t.Fatal("the daemon did not stop")
	}
}

// waitMetric polls /metrics until the unlabelled series name is at least
// min, or exactly 0 when min is -1.
func (d *testDaemon) waitMetric(ctx context.Context, t *testing.T, name string, min float64) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	last := "no such series"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.http+"/metrics", nil)
		if err != nil {
			t.Fatal(err)
		}
		if res, err := http.DefaultClient.Do(req); err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if m := re.FindSubmatch(b); m != nil {
				v, _ := strconv.ParseFloat(string(m[1]), 64)
				last = string(m[1])
				if min < 0 && v == 0 || min >= 0 && v >= min {
					return
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never reached %v (last %s)", name, min, last)
		case <-tick.C:
		}
	}
}

// get fetches an API path (loopback, no token configured) and fails the
// test on any status but 200.
func (d *testDaemon) get(ctx context.Context, t *testing.T, path string) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.http+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v: %.300s", path, res.Status, err, b)
	}
	return b
}

// hitSeen is what a subscriber saw of one hit.
type hitSeen struct {
	id           string
	image, named bool
	visit        bool // a visit event, not a per-shot hit
}

// hitSubscriber collects the hits a broker delivers.
type hitSubscriber struct {
	c      paho.Client
	mu     sync.Mutex
	seen   []hitSeen
	notify chan struct{}
}

func subscribeHits(t *testing.T, broker string) *hitSubscriber {
	t.Helper()
	s := &hitSubscriber{notify: make(chan struct{}, 1)}
	s.c = paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + broker).SetClientID("test-hits").SetAutoReconnect(false))
	if tok := s.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber: %v", tok.Error())
	}
	tok := s.c.SubscribeMultiple(map[string]byte{"srdgd/+/hit": 1, "srdgd/+/visit": 1}, func(_ paho.Client, m paho.Message) {
		var hp struct {
			ID    string `json:"id"`
			Image struct {
				SR string `json:"sr_jpeg"`
			} `json:"image"`
			Match struct {
				TopK []struct {
					Name string `json:"name"`
				} `json:"top_k"`
			} `json:"match"`
		}
		if strings.HasSuffix(m.Topic(), "/visit") {
			// a visit's shape differs from a hit's: only its id is read
			hp.Match.TopK = nil
			var v struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(m.Payload(), &v) != nil {
				return
			}
			hp.ID = v.ID
		} else if json.Unmarshal(m.Payload(), &hp) != nil {
			return
		}
		s.mu.Lock()
		seen := hitSeen{id: hp.ID, image: hp.Image.SR != "", named: len(hp.Match.TopK) > 0 && hp.Match.TopK[0].Name != ""}
		seen.visit = strings.HasSuffix(m.Topic(), "/visit")
		s.seen = append(s.seen, seen)
		s.mu.Unlock()
		select {
		case s.notify <- struct{}{}:
		default:
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	t.Cleanup(s.close)
	return s
}

// hits returns the per-shot hits seen so far.
func (s *hitSubscriber) hits() []hitSeen {
	var hs []hitSeen
	for _, h := range s.all() {
		if !h.visit {
			hs = append(hs, h)
		}
	}
	return hs
}

// all returns the hits and visit events seen so far.
func (s *hitSubscriber) all() []hitSeen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]hitSeen(nil), s.seen...)
}

// waitFor waits until ok holds for the messages seen (hits and visits).
func (s *hitSubscriber) waitFor(ctx context.Context, t *testing.T, what string, ok func([]hitSeen) bool) {
	t.Helper()
	for !ok(s.all()) {
		select {
		case <-s.notify:
		case <-ctx.Done():
			t.Fatalf("never got %s (got %d hits, %d messages in all)", what, len(s.hits()), len(s.all()))
		}
	}
}

func (s *hitSubscriber) close() {
	if s.c != nil {
		s.c.Disconnect(100)
		s.c = nil
	}
}
