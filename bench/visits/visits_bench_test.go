// Package visitsbench runs the real daemon end to end on a synthetic scene
// whose generator knows who is where (internal/demoscene) and scores its
// visit events per crossing: named correctly, named wrongly or unknown,
// events per crossing, and the time from a crossing's first visible frame to
// its first correctly named event (issue 15 item 7). It is a benchmark, not a
// test: it runs only with SRDGD_BENCH_VISITS=1 (bench/visits/run.sh) and is
// not linked into the daemon.
//
// Settings (environment):
//
//	SRDGD_BENCH_VISITS_SCENE     demo (the demo scene, its 8 people) or crowd
//	                             (the 8 and 8 unknown CelebA passers-by)
//	SRDGD_BENCH_VISITS_ENROLLED  8 (the demo people) or 8 + n CelebA identities
//	SRDGD_BENCH_VISITS_DURATION  how long the daemon watches (default 3m)
//	SRDGD_BENCH_VISITS_SET       config overrides, comma separated key=value
//	                             (see applySet)
//	SRDGD_BENCH_VISITS_LABEL     a name for the run in the output
//	SRDGD_BENCH_VISITS_OUT       JSON results file
//	SRDGD_BENCH_VISITS_CACHE     where rendered clips are kept (default
//	                             $TMPDIR/srdgd-bench-visits)
//
// Ground truth and association: the scene draws its frame number into each
// picture; a second RTSP client here decodes every frame and records when
// frame k arrived (the clip loops, so k is unwrapped into an absolute
// frame). A crossing is one pass of one person (demoscene.Face.Crossing); it
// is visible in the frames where its sprite lies wholly inside the picture.
// Every hit (the per-shot stream, switched on here) carries its track, frame
// time and box: the frame time finds the frame, the box the crossing. A
// visit belongs to the crossing most of its track's hits belong to.
package visitsbench

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/srdgd/srdgd/config"
	"github.com/srdgd/srdgd/ingest"
	"github.com/srdgd/srdgd/internal/app"
	"github.com/srdgd/srdgd/internal/celeba"
	"github.com/srdgd/srdgd/internal/demoscene"
	"github.com/srdgd/srdgd/internal/rtspserver"
	"github.com/srdgd/srdgd/match"
)

const (
	camera = "bench"
	// the demo's camera: srdgd demo streams 1280x720@15
	width, height, fps = 1280, 720, 15
	// passers is the number of unknown CelebA people in the crowd scene
	passers = 8
	// warmup after the camera connects before a crossing counts; a
	// crossing counts when it came into view after it and left view before
	// the camera stops. drainMax bounds the wait after the stop for the
	// last visits to end.
	warmup   = 3 * time.Second
	drainMax = 100 * time.Second
)

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// person is who a scene person index is.
type person struct {
	Name     string `json:"name"`
	Enrolled bool   `json:"enrolled"`
	Source   string `json:"source"` // "demo" or "celeba <identity>"
}

// celebaPick chooses, deterministically by seed, the extra enrolled CelebA
// identities (one train photo each) and the passers-by (one test photo
// each, never enrolled), both from one shuffled list of the identities:
// enrolled from its start, passers-by from its end.
func celebaPick(dir string, enrol, pass int, seed uint64) (enrolled, passing [][2]string, err error) {
	rows, err := celeba.Read(dir)
	if err != nil {
		return nil, nil, err
	}
	first := map[string]map[string]string{} // identity -> split -> first image
	for _, r := range rows {
		if first[r.Identity] == nil {
			first[r.Identity] = map[string]string{}
		}
		if _, ok := first[r.Identity][r.Split]; !ok {
			first[r.Identity][r.Split] = r.Image
		}
	}
	ids := make([]string, 0, len(first))
	for id := range first {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	rand.New(rand.NewPCG(seed, 5)).Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	if enrol+pass > len(ids) {
		return nil, nil, fmt.Errorf("celeba: %d identities, want %d", len(ids), enrol+pass)
	}
	for _, id := range ids[:enrol] {
		enrolled = append(enrolled, [2]string{id, first[id]["train"]})
	}
	// passers-by from the end, so the crowd is the same whatever is enrolled
	for _, id := range ids[len(ids)-pass:] {
		passing = append(passing, [2]string{id, first[id]["test"]})
	}
	return enrolled, passing, nil
}

func passerSprite(dir, img string) (*image.NRGBA, error) {
	f, err := os.Open(celeba.ImagePath(dir, img))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	im, err := jpeg.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", img, err)
	}
	return demoscene.Sprite(im, celeba.Box)
}

// applySet applies SRDGD_BENCH_VISITS_SET overrides to the config: keys
// max_shots, samples, min_interval, cooldown, min_confidence_change,
// duplicate (match.visit.*), x8_threshold, x8_margin (match.sr.x8),
// track_timeout, hints and queue (detect, detect.track.hints,
// detect.queue_policy), sampler and policy
// (srdg.sampler, srdg.attributes.policy), direct_side (srdg), sr_embedder
// (match.sr_embedder_model, e.g. "same").
func applySet(cfg *config.Config, set string) error {
	for kv := range strings.SplitSeq(set, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("override %q: want key=value", kv)
		}
		dur := func(d *time.Duration) error { x, err := time.ParseDuration(v); *d = x; return err }
		num := func(f *float64) error { x, err := strconv.ParseFloat(v, 64); *f = x; return err }
		integer := func(i *int) error { x, err := strconv.Atoi(v); *i = x; return err }
		var err error
		switch vi := &cfg.Match.Visit; k {
		case "max_shots":
			err = integer(&vi.MaxShots)
		case "samples":
			err = integer(&vi.Samples)
		case "hints":
			cfg.Detect.Track.Hints, err = strconv.ParseBool(v)
		case "queue":
			cfg.Detect.QueuePolicy = v
		case "min_interval":
			err = dur(&vi.MinInterval)
		case "cooldown":
			err = dur(&vi.Cooldown)
		case "min_confidence_change":
			err = num(&vi.MinConfidenceChange)
		case "duplicate":
			err = num(&vi.Duplicate)
		case "x8_threshold":
			err = num(&cfg.Match.SR.X8.Threshold)
		case "x8_margin":
			err = num(&cfg.Match.SR.X8.Margin)
		case "track_timeout":
			err = dur(&cfg.Detect.TrackTimeout)
		case "sampler":
			cfg.SRDG.Sampler = v
		case "policy":
			cfg.SRDG.Attributes.Policy = v
		case "direct_side":
			err = integer(&cfg.SRDG.DirectSide)
		case "sr_embedder":
			cfg.Match.SREmbedderModel = v
		default:
			return fmt.Errorf("override %q: unknown key", k)
		}
		if err != nil {
			return fmt.Errorf("override %q: %w", kv, err)
		}
	}
	return nil
}

type arrival struct {
	at  time.Time
	abs int // absolute frame: loops unwrapped
}

type hitMsg struct {
	ID        string    `json:"id"`
	TrackID   uint64    `json:"track_id"`
	FrameTime time.Time `json:"frame_time"`
	Box       struct{ X, Y, W, H float64 }
	recv      time.Time
}

type visitMsg struct {
	ID       string          `json:"id"`
	TrackID  uint64          `json:"track_id"`
	State    string          `json:"state"`
	Rev      int             `json:"rev"`
	Start    time.Time       `json:"start"`
	Repeat   bool            `json:"repeat"`
	Decision json.RawMessage `json:"decision"`
	Shots    []struct {
		HitID string `json:"hit_id"`
	} `json:"shots"`
	dec struct {
		Known      bool     `json:"known"`
		Name       string   `json:"name"`
		Confidence *float64 `json:"confidence"`
		Similarity float64  `json:"similarity"`
		Margin     float64  `json:"margin"`
		Shots      int      `json:"shots"`
		Fusion     string   `json:"fusion"`
		Reason     string   `json:"reason"`
		TopK       []struct {
			Name       string  `json:"name"`
			Similarity float64 `json:"similarity"`
		} `json:"top_k"`
	}
	recv time.Time
}

// Crossing is one scored crossing.
type Crossing struct {
	Crossing int    `json:"crossing"`
	Pass     int    `json:"pass"`
	Person   string `json:"person"`
	Enrolled bool   `json:"enrolled"`
	// FirstVisible is seconds from the count start; Visible how long the
	// face was wholly in the frame.
	FirstVisible float64 `json:"first_visible_s"`
	Visible      float64 `json:"visible_s"`
	FacePxMax    int     `json:"face_px_max"`
	Tracks       int     `json:"tracks"`
	Hits         int     `json:"hits"`
	Visits       int     `json:"visits"` // = events per crossing
	Messages     int     `json:"messages"`
	Updates      int     `json:"updates"`
	// Outcome: correct (some event names the person and none names anyone
	// else), wrong (some event names someone else; for a passer-by: names
	// anyone), unknown (no event names anyone).
	Outcome string `json:"outcome"`
	// FirstNamed: seconds from the first visible frame to the receipt of
	// the first correctly named event; -1 when none.
	FirstNamed float64 `json:"first_named_s"`
	// Final is the last event's decision: name or "unknown (reason)", its
	// confidence, similarity, margin and shots; Top the final top
	// candidate.
	Final      string  `json:"final"`
	Confidence float64 `json:"confidence"`
	Similarity float64 `json:"similarity"`
	Margin     float64 `json:"margin"`
	Shots      int     `json:"shots"`
	Top        string  `json:"top"`
	WrongNames string  `json:"wrong_names,omitempty"`
}

// Summary is the result of one configuration.
type Summary struct {
	Label      string `json:"label"`
	Scene      string `json:"scene"`
	Enrolled   int    `json:"enrolled"`
	Set        string `json:"set"`
	Duration   string `json:"duration"`
	Frames     int    `json:"frames"`
	Hits       int    `json:"hits"`
	VisitsSeen int    `json:"visits"`
	Messages   int    `json:"messages"`
	// Crossings counted; of the enrolled people's: named correct, wrong,
	// unknown; of the passers-by: unknown (right) and named (wrong).
	Crossings      int     `json:"crossings"`
	Events         int     `json:"events"` // visits on counted crossings
	Unattributed   int     `json:"unattributed_visits"`
	NamedCorrect   int     `json:"named_correct"`
	NamedWrong     int     `json:"named_wrong"`
	Unknown        int     `json:"unknown"`
	PassersUnknown int     `json:"passers_unknown"`
	PassersNamed   int     `json:"passers_named"`
	Missed         int     `json:"missed"` // crossings without any visit
	EventsPerCross float64 `json:"events_per_crossing"`
	MessagesPerCr  float64 `json:"messages_per_crossing"`
	FirstNamedMed  float64 `json:"first_named_median_s"`
	FirstNamedP95  float64 `json:"first_named_p95_s"`
	// NoConfidence counts events without a decision.confidence (or, when
	// known, fused from no shot).
	NoConfidence int `json:"events_without_confidence"`
	Repeats      int `json:"repeat_events"`
	// Passes: per loop of the scene with every enrolled demo person's
	// crossing counted, how many of them were named correctly and wrongly.
	Passes []Pass     `json:"passes"`
	Table  []Crossing `json:"crossings_table"`
	// Stats is the daemon's last MQTT stats message (frames, faces,
	// tracks, dropped probes).
	Stats json.RawMessage `json:"daemon_stats"`
}

// Pass is one loop of the scene.
type Pass struct {
	Pass    int `json:"pass"`
	People  int `json:"people"`
	Correct int `json:"correct"`
	Wrong   int `json:"wrong"`
}

func TestVisits(t *testing.T) {
	if os.Getenv("SRDGD_BENCH_VISITS") == "" {
		t.Skip("benchmark: set SRDGD_BENCH_VISITS=1 (bench/visits/run.sh)")
	}
	sceneName := envOr("SRDGD_BENCH_VISITS_SCENE", "demo")
	enrolN, err := strconv.Atoi(envOr("SRDGD_BENCH_VISITS_ENROLLED", "8"))
	if err != nil {
		t.Fatal(err)
	}
	dur, err := time.ParseDuration(envOr("SRDGD_BENCH_VISITS_DURATION", "3m"))
	if err != nil {
		t.Fatal(err)
	}
	set := os.Getenv("SRDGD_BENCH_VISITS_SET")
	label := envOr("SRDGD_BENCH_VISITS_LABEL", fmt.Sprintf("%s/%d", sceneName, enrolN))
	const seed = 1

	root := repoRoot()
	models := filepath.Join(root, "models", "dist")
	man, err := demoscene.LoadManifest(filepath.Join(models, "demo"))
	if err != nil {
		t.Fatal(err)
	}
	people := []person{}
	for _, p := range man.People {
		people = append(people, person{Name: p.Name, Enrolled: true, Source: "demo"})
	}
	extra := max(enrolN-len(man.People), 0)
	var cel [][2]string
	var pass [][2]string
	cdir := celeba.DefaultDir()
	if extra > 0 || sceneName == "crowd" {
		if err := celeba.Present(cdir); err != nil {
			t.Fatalf("CelebA subset (%s): %v", cdir, err)
		}
		if cel, pass, err = celebaPick(cdir, extra, passers, seed); err != nil {
			t.Fatal(err)
		}
	}
	so := demoscene.Options{Width: width, Height: height, FPS: fps, FrameCode: true, Seed: seed}
	switch sceneName {
	case "demo":
	case "crowd":
		// twice the people at the same density and walking speed: a loop
		// twice as long, crossings as long as in the demo scene
		so.Loop, so.CrossTime = 80*time.Second, 12*time.Second
		for _, p := range pass {
			sp, err := passerSprite(cdir, p[1])
			if err != nil {
				t.Fatal(err)
			}
			so.Passers = append(so.Passers, sp)
			people = append(people, person{Name: "passer-by " + p[0], Source: "celeba " + p[0]})
		}
	default:
		t.Fatalf("scene %q: want demo or crowd", sceneName)
	}
	scene, err := demoscene.New(man, so)
	if err != nil {
		t.Fatal(err)
	}
	ff, err := rtspserver.FFmpegPath()
	if err != nil {
		t.Fatal(err)
	}
	cache := envOr("SRDGD_BENCH_VISITS_CACHE", filepath.Join(os.TempDir(), "srdgd-bench-visits"))
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	clip := filepath.Join(cache, "scene-"+scene.Key()+".mp4")
	if _, err := os.Stat(clip); err != nil {
		t0 := time.Now()
		if err := scene.Encode(context.Background(), ff, clip); err != nil {
			t.Fatal(err)
		}
		t.Logf("rendered %s (%d frames) in %v", clip, scene.Frames(), time.Since(t0).Round(time.Second))
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Storage.StateDir = dir
	cfg.Storage.ModelsDir = models
	cfg.Match.KeyFile = filepath.Join(dir, "gallery.key")
	cfg.Publish.HTTP.Listen = "127.0.0.1:0"
	cfg.Publish.MQTT.Hits = true // the per-shot stream carries the boxes
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	broker := ln.Addr().String()
	ln.Close()
	cfg.Publish.MQTT.EmbeddedListen = broker
	if err := applySet(cfg, set); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}

	srv, err := rtspserver.Start(rtspserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cam := config.DefaultCamera()
	cam.Name, cam.URL, cam.Transport = camera, srv.URL(camera), "tcp"
	cfg.Cameras = []config.Camera{cam}

	// gallery: the demo people, then the CelebA identities
	quiet := slog.New(slog.DiscardHandler)
	if err := app.DemoGallery(ctx, cfg, man, quiet); err != nil {
		t.Fatal(err)
	}
	if len(cel) > 0 {
		env, err := app.OpenGallery(ctx, cfg, true, nil, quiet)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cel {
			photos, err := match.PhotosFromFiles([]string{celeba.ImagePath(cdir, c[1])})
			if err != nil {
				t.Fatal(err)
			}
			res, err := env.Gallery.Add(ctx, "CelebA "+c[0], photos)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				if r.Err != nil {
					t.Fatalf("enrol CelebA %s: %v", c[0], r.Err)
				}
			}
		}
		list, err := env.Gallery.List(ctx)
		env.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != enrolN {
			t.Fatalf("gallery has %d people, want %d", len(list), enrolN)
		}
	}

	pub, err := rtspserver.PublishFFmpeg(ctx, srv.URL(camera), rtspserver.FFmpegOptions{Input: clip})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Stop()
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	if err := srv.WaitPublisher(wctx, camera); err != nil {
		t.Fatalf("publisher: %v\n%s", err, pub.Stderr())
	}
	wcancel()

	// frame arrivals seen by our own client
	var amu sync.Mutex
	var arrivals []arrival
	watcher, err := ingest.NewCamera(ingest.CameraOptions{Name: "watch", URL: srv.URL(camera), Transport: "tcp"})
	if err != nil {
		t.Fatal(err)
	}
	frames := watcher.SubscribeFrames(64)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = watcher.Run(ctx) }()
	go func() {
		defer wg.Done()
		n := scene.Frames()
		loop, last := 0, -1
		for {
			f, err := frames.Pop(ctx)
			if err != nil {
				return
			}
			if k, ok := demoscene.ReadFrameCode(f.Pix, 3*f.Width); ok && k < n {
				if last >= 0 && k < last-n/2 {
					loop++
				}
				last = k
				amu.Lock()
				arrivals = append(arrivals, arrival{f.Wall, loop*n + k})
				amu.Unlock()
			}
			f.Release()
		}
	}()

	// the daemon
	logPath := filepath.Join(envOr("SRDGD_BENCH_VISITS_LOGDIR", dir), "daemon-"+strings.ReplaceAll(label, "/", "-")+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	conn := &connectWatch{w: logf}
	log := slog.New(slog.NewTextHandler(conn, nil))
	d, err := app.Build(cfg, log, "bench")
	if err != nil {
		t.Fatal(err)
	}
	dctx, dcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(dctx) }()

	var hmu sync.Mutex
	var hits []hitMsg
	var visits []visitMsg
	var sub paho.Client
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		sub = paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + broker).SetClientID("bench-visits"))
		if tok := sub.Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("embedded broker did not come up")
		}
	}
	sub.Subscribe("srdgd/"+camera+"/hit", 1, func(_ paho.Client, m paho.Message) {
		hm := hitMsg{recv: time.Now()}
		if err := json.Unmarshal(m.Payload(), &hm); err != nil {
			t.Errorf("hit payload: %v", err)
			return
		}
		hmu.Lock()
		hits = append(hits, hm)
		hmu.Unlock()
	}).Wait()
	sub.Subscribe("srdgd/"+camera+"/visit", 1, func(_ paho.Client, m paho.Message) {
		vm := visitMsg{recv: time.Now()}
		if err := json.Unmarshal(m.Payload(), &vm); err != nil {
			t.Errorf("visit payload: %v", err)
			return
		}
		if err := json.Unmarshal(vm.Decision, &vm.dec); err != nil {
			t.Errorf("visit decision: %v", err)
			return
		}
		hmu.Lock()
		visits = append(visits, vm)
		hmu.Unlock()
	}).Wait()

	var stats json.RawMessage
	sub.Subscribe("srdgd/stats", 1, func(_ paho.Client, m paho.Message) {
		hmu.Lock()
		stats = slices.Clone(m.Payload())
		hmu.Unlock()
	}).Wait()
	lastMsg := func() time.Time {
		hmu.Lock()
		defer hmu.Unlock()
		var t time.Time
		if len(hits) > 0 {
			t = hits[len(hits)-1].recv
		}
		if len(visits) > 0 && visits[len(visits)-1].recv.After(t) {
			t = visits[len(visits)-1].recv
		}
		return t
	}

	for deadline := time.Now().Add(2 * time.Minute); conn.at().IsZero(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("camera did not connect; log in %s", logPath)
		}
	}
	start := conn.at().Add(warmup)
	time.Sleep(time.Until(start.Add(dur)))
	// the camera stops; the daemon finishes what it has: the shots queued
	// for SR, and visits whose track-end notice was lost end on
	// match.visit.timeout after their last shot
	stop := time.Now()
	pub.Stop()
	for deadline := stop.Add(drainMax); time.Now().Before(deadline); time.Sleep(time.Second) {
		if time.Since(maxTime(lastMsg(), stop)) > cfg.Match.Visit.Timeout+5*time.Second {
			break
		}
	}
	dcancel()
	if err := <-done; err != nil {
		t.Errorf("daemon: %v", err)
	}
	sub.Disconnect(100)
	cancel()
	wg.Wait()

	amu.Lock()
	hmu.Lock()
	defer amu.Unlock()
	defer hmu.Unlock()
	s := score(scene, people, arrivals, hits, visits, start, stop)
	s.Stats = stats
	s.Label, s.Scene, s.Enrolled, s.Set, s.Duration = label, sceneName, enrolN, set, dur.String()
	report(t, s, logPath)
}

// connectWatch passes the daemon's log through and notes when the camera
// first connected.
type connectWatch struct {
	w    io.Writer
	mu   sync.Mutex
	when time.Time
}

func (c *connectWatch) Write(p []byte) (int, error) {
	if strings.Contains(string(p), "msg=connected") && strings.Contains(string(p), "camera="+camera) {
		c.mu.Lock()
		if c.when.IsZero() {
			c.when = time.Now()
		}
		c.mu.Unlock()
	}
	return c.w.Write(p)
}

func (c *connectWatch) at() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.when
}

// crossingAt finds the crossing of a box in absolute frame abs: the scene
// face whose centre is nearest the box's, within one face size.
func crossingAt(scene *demoscene.Scene, abs int, x, y, w, h float64) (int, bool) {
	cx, cy := x+w/2, y+h/2
	best, bd := -1, 1e18
	var bsz float64
	for _, f := range scene.Faces(abs) {
		fx, fy := float64(f.Box.Min.X+f.Box.Max.X)/2, float64(f.Box.Min.Y+f.Box.Max.Y)/2
		if d := (fx-cx)*(fx-cx) + (fy-cy)*(fy-cy); d < bd {
			best, bd, bsz = f.Crossing, d, float64(f.Box.Dy())
		}
	}
	lim := max(bsz, 20)
	return best, best >= 0 && bd <= lim*lim
}

func score(scene *demoscene.Scene, people []person, arrivals []arrival, hits []hitMsg, visits []visitMsg, start, stop time.Time) *Summary {
	s := &Summary{Frames: len(arrivals), Hits: len(hits), Messages: len(visits)}
	frameAt := func(t time.Time) (int, bool) {
		i, _ := slices.BinarySearchFunc(arrivals, t, func(a arrival, t time.Time) int { return a.at.Compare(t) })
		if i >= len(arrivals) {
			i = len(arrivals) - 1
		}
		if i < 0 {
			return 0, false
		}
		if i > 0 && t.Sub(arrivals[i-1].at).Abs() < arrivals[i].at.Sub(t).Abs() {
			i--
		}
		return arrivals[i].abs, arrivals[i].at.Sub(t).Abs() < 500*time.Millisecond
	}
	// ground truth: each crossing's visible frames
	type truth struct {
		person      int
		first, last time.Time
		facePx      int
	}
	gt := map[int]*truth{}
	frame := image.Rect(0, 0, width, height)
	for _, a := range arrivals {
		for _, f := range scene.Faces(a.abs) {
			if !f.Box.In(frame) {
				continue
			}
			c := gt[f.Crossing]
			if c == nil {
				c = &truth{person: f.Person, first: a.at}
				gt[f.Crossing] = c
			}
			c.last = a.at
			c.facePx = max(c.facePx, int(float64(f.Box.Dy())*0.8))
		}
	}
	// tracks -> crossings, by their hits
	votes := map[uint64]map[int]int{}
	hitsOf := map[int]int{}
	for _, h := range hits {
		abs, ok := frameAt(h.FrameTime)
		if !ok {
			continue
		}
		c, ok := crossingAt(scene, abs, h.Box.X, h.Box.Y, h.Box.W, h.Box.H)
		if !ok {
			continue
		}
		if votes[h.TrackID] == nil {
			votes[h.TrackID] = map[int]int{}
		}
		votes[h.TrackID][c]++
		hitsOf[c]++
	}
	trackCrossing := map[uint64]int{}
	for tr, v := range votes {
		best, bn := -1, 0
		for c, n := range v {
			if n > bn || (n == bn && c < best) {
				best, bn = c, n
			}
		}
		trackCrossing[tr] = best
	}
	// left view before the stop: its last visible frame is not the last
	// frame seen
	counted := func(c *truth) bool { return !c.first.Before(start) && c.last.Before(stop.Add(-time.Second)) }
	byCrossing := map[int][]visitMsg{}
	for _, v := range visits {
		if v.dec.Confidence == nil || (v.dec.Known && v.dec.Shots < 1) {
			s.NoConfidence++
		}
		if v.Repeat {
			s.Repeats++
		}
		c, ok := trackCrossing[v.TrackID]
		if !ok {
			if v.State == "new" && !v.recv.Before(start) {
				s.Unattributed++
			}
			continue
		}
		byCrossing[c] = append(byCrossing[c], v)
	}
	seen := map[string]bool{}
	for _, v := range visits {
		seen[v.ID] = true
	}
	s.VisitsSeen = len(seen)
	n := len(scene.Walks())
	var firstNamed []float64
	passes := map[int]*Pass{}
	keys := make([]int, 0, len(gt))
	for c := range gt {
		keys = append(keys, c)
	}
	sort.Ints(keys)
	for _, c := range keys {
		g := gt[c]
		if !counted(g) {
			continue
		}
		p := people[g.person]
		row := Crossing{Crossing: c, Pass: c/n - 1, Person: p.Name, Enrolled: p.Enrolled,
			FirstVisible: g.first.Sub(start).Seconds(), Visible: g.last.Sub(g.first).Seconds(), FacePxMax: g.facePx,
			Hits: hitsOf[c], FirstNamed: -1, Outcome: "unknown", Final: "-"}
		tracks := map[uint64]bool{}
		for tr, tc := range trackCrossing {
			if tc == c {
				tracks[tr] = true
			}
		}
		row.Tracks = len(tracks)
		ids := map[string]bool{}
		var wrong []string
		correct := false
		var last *visitMsg
		for i, v := range byCrossing[c] {
			ids[v.ID] = true
			row.Messages++
			if v.State == "update" {
				row.Updates++
			}
			if last == nil || v.recv.After(last.recv) {
				last = &byCrossing[c][i]
			}
			if !v.dec.Known {
				continue
			}
			if p.Enrolled && v.dec.Name == p.Name {
				if !correct {
					row.FirstNamed = v.recv.Sub(g.first).Seconds()
				}
				correct = true
			} else if !slices.Contains(wrong, v.dec.Name) {
				wrong = append(wrong, v.dec.Name)
			}
		}
		row.Visits = len(ids)
		switch {
		case len(wrong) > 0:
			row.Outcome = "wrong"
			row.WrongNames = strings.Join(wrong, "; ")
		case correct:
			row.Outcome = "correct"
		}
		if last != nil {
			row.Final = "unknown (" + last.dec.Reason + ")"
			if last.dec.Known {
				row.Final = last.dec.Name
			}
			if last.dec.Confidence != nil {
				row.Confidence = *last.dec.Confidence
			}
			row.Similarity, row.Margin, row.Shots = last.dec.Similarity, last.dec.Margin, last.dec.Shots
			if len(last.dec.TopK) > 0 {
				row.Top = last.dec.TopK[0].Name
			}
		}
		s.Crossings++
		s.Events += row.Visits
		if row.Visits == 0 {
			s.Missed++
		}
		if p.Enrolled {
			switch row.Outcome {
			case "correct":
				s.NamedCorrect++
				firstNamed = append(firstNamed, row.FirstNamed)
			case "wrong":
				s.NamedWrong++
			default:
				s.Unknown++
			}
			if p.Source == "demo" {
				ps := passes[row.Pass]
				if ps == nil {
					ps = &Pass{Pass: row.Pass}
					passes[row.Pass] = ps
				}
				ps.People++
				if row.Outcome == "correct" {
					ps.Correct++
				}
				if row.Outcome == "wrong" {
					ps.Wrong++
				}
			}
		} else {
			if row.Outcome == "wrong" {
				s.PassersNamed++
			} else {
				s.PassersUnknown++
			}
		}
		s.MessagesPerCr += float64(row.Messages)
		s.Table = append(s.Table, row)
	}
	if s.Crossings > 0 {
		s.EventsPerCross = float64(s.Events) / float64(s.Crossings)
		s.MessagesPerCr /= float64(s.Crossings)
	}
	s.FirstNamedMed, s.FirstNamedP95 = -1, -1
	if len(firstNamed) > 0 {
		slices.Sort(firstNamed)
		s.FirstNamedMed = quantile(firstNamed, 0.5)
		s.FirstNamedP95 = quantile(firstNamed, 0.95)
	}
	demo := 0
	for _, p := range people {
		if p.Source == "demo" {
			demo++
		}
	}
	for _, ps := range passes {
		if ps.People == demo {
			s.Passes = append(s.Passes, *ps)
		}
	}
	sort.Slice(s.Passes, func(i, j int) bool { return s.Passes[i].Pass < s.Passes[j].Pass })
	return s
}

// quantile of sorted v, linear between order statistics.
func quantile(v []float64, q float64) float64 {
	if len(v) == 1 {
		return v[0]
	}
	x := q * float64(len(v)-1)
	i := int(x)
	if i >= len(v)-1 {
		return v[len(v)-1]
	}
	return v[i] + (x-float64(i))*(v[i+1]-v[i])
}

func report(t *testing.T, s *Summary, logPath string) {
	var b strings.Builder
	fmt.Fprintf(&b, "per crossing (%s):\n", s.Label)
	fmt.Fprintf(&b, "%5s %4s %-22s %4s %6s %5s %4s %3s %4s %4s %-8s %7s  %s\n", "cross", "pass", "person", "enr", "first", "vis", "px", "trk", "hits", "evts", "outcome", "named_s", "final (conf sim margin shots) top")
	for _, r := range s.Table {
		named := "-"
		if r.FirstNamed >= 0 {
			named = fmt.Sprintf("%.1f", r.FirstNamed)
		}
		fmt.Fprintf(&b, "%5d %4d %-22s %4v %6.1f %5.1f %4d %3d %4d %4d %-8s %7s  %s (%.2f %.3f %.3f %d) %s %s\n", r.Crossing, r.Pass, r.Person, r.Enrolled,
			r.FirstVisible, r.Visible, r.FacePxMax, r.Tracks, r.Hits, r.Visits, r.Outcome, named, r.Final, r.Confidence, r.Similarity, r.Margin, r.Shots, r.Top, r.WrongNames)
	}
	for _, p := range s.Passes {
		fmt.Fprintf(&b, "pass %d: %d of %d demo people named correctly, %d wrongly\n", p.Pass, p.Correct, p.People, p.Wrong)
	}
	fmt.Fprint(os.Stderr, b.String())
	fmt.Fprintf(os.Stderr, "visits[%s]: crossings=%d events=%d named_correct=%d named_wrong=%d unknown=%d first_named_median_s=%.1f first_named_p95_s=%.1f passers_unknown=%d passers_named=%d missed=%d unattributed=%d messages=%d hits=%d no_confidence=%d repeats=%d events_per_crossing=%.2f log=%s\n",
		s.Label, s.Crossings, s.Events, s.NamedCorrect, s.NamedWrong, s.Unknown, s.FirstNamedMed, s.FirstNamedP95, s.PassersUnknown, s.PassersNamed,
		s.Missed, s.Unattributed, s.Messages, s.Hits, s.NoConfidence, s.Repeats, s.EventsPerCross, logPath)
	if out := os.Getenv("SRDGD_BENCH_VISITS_OUT"); out != "" {
		j, _ := json.MarshalIndent(s, "", " ")
		if err := os.WriteFile(out, j, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
