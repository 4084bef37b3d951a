package main

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/srdgd/srdgd/config"
	"github.com/srdgd/srdgd/ingest"
	"github.com/srdgd/srdgd/internal/app"
	"github.com/srdgd/srdgd/internal/demoscene"
	"github.com/srdgd/srdgd/internal/rtspserver"
)

// TestEndToEndLatency measures, on the real daemon with the default models,
// the time from the frame in which a face first appears in an RTSP stream to
// the MQTT hit at a subscriber. It is a benchmark, not a test: it runs only
// with SRDGD_BENCH_E2E=1 (bench/e2e/run.sh) and writes its numbers to
// $SRDGD_BENCH_E2E_OUT (JSON) and the log.
//
// Timing: the scene (internal/demoscene) carries its frame number in the
// picture; a second RTSP client here decodes every frame and records when
// frame k arrived. A hit's frame time finds its frame, its box finds the
// person (ground truth from the scene), and the person's first fully visible
// frame in that pass gives the start.
func TestEndToEndLatency(t *testing.T) {
	if os.Getenv("SRDGD_BENCH_E2E") == "" {
		t.Skip("benchmark: set SRDGD_BENCH_E2E=1 (bench/e2e/run.sh)")
	}
	dur := 4 * time.Minute
	if v := os.Getenv("SRDGD_BENCH_E2E_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatal(err)
		}
		dur = d
	}
	sampler := os.Getenv("SRDGD_BENCH_E2E_SAMPLER")
	if sampler == "" {
		sampler = "fast"
	}
	w, h, fps := 1280, 720, 15
	dir := t.TempDir()
	man, err := demoscene.LoadManifest(filepath.Join("..", "..", "models", "dist", "demo"))
	if err != nil {
		t.Fatal(err)
	}
	scene, err := demoscene.New(man, demoscene.Options{Width: w, Height: h, FPS: fps, FrameCode: true, Loop: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ff, err := rtspserver.FFmpegPath()
	if err != nil {
		t.Fatal(err)
	}
	clip := filepath.Join(dir, "scene.mp4")
	if err := scene.Encode(context.Background(), ff, clip); err != nil {
		t.Fatal(err)
	}
	srv, err := rtspserver.Start(rtspserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// the daemon, as `srdgd demo` configures it, with the chosen sampler
	cfg := testDaemonConfig(t)
	cfg.Storage.ModelsDir = filepath.Join("..", "..", "models", "dist")
	cfg.SRDG.Sampler = sampler
	cfg.Publish.MQTT.Hits = true // timed per hit
	if pol := os.Getenv("SRDGD_BENCH_E2E_POLICY"); pol != "" {
		cfg.SRDG.Attributes.Policy = pol
	}
	cam := config.DefaultCamera()
	cam.Name, cam.URL, cam.Transport = "bench", srv.URL("bench"), "tcp"
	cfg.Cameras = []config.Camera{cam}
	if err := app.DemoGallery(ctx, cfg, man, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}

	pub, err := rtspserver.PublishFFmpeg(ctx, srv.URL("bench"), rtspserver.FFmpegOptions{Input: clip})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Stop()
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	if err := srv.WaitPublisher(wctx, "bench"); err != nil {
		t.Fatalf("publisher: %v\n%s", err, pub.Stderr())
	}
	wcancel()

	// frame arrivals seen by our own client
	type arrival struct {
		at time.Time
		k  int
	}
	var amu sync.Mutex
	var arrivals []arrival
	watcher, err := ingest.NewCamera(ingest.CameraOptions{Name: "watch", URL: srv.URL("bench"), Transport: "tcp"})
	if err != nil {
		t.Fatal(err)
	}
	frames := watcher.SubscribeFrames(64)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = watcher.Run(ctx) }()
	go func() {
		defer wg.Done()
		for {
			f, err := frames.Pop(ctx)
			if err != nil {
				return
			}
			if k, ok := demoscene.ReadFrameCode(f.Pix, 3*f.Width); ok {
				amu.Lock()
				arrivals = append(arrivals, arrival{f.Wall, k})
				amu.Unlock()
			}
			f.Release()
		}
	}()

	var logs syncBuffer
	dctx, dcancel := context.WithCancel(ctx)
	done := make(chan int, 1)
	go func() { done <- runDaemonWith(dctx, cfg, slog.New(slog.NewTextHandler(&logs, nil)), nil) }()
	var addr string
	for deadline := time.Now().Add(2 * time.Minute); addr == ""; time.Sleep(100 * time.Millisecond) {
		if m := regexp.MustCompile(`msg="embedded MQTT broker" addr=(\S+)`).FindStringSubmatch(logs.String()); m != nil {
			addr = m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon did not start:\n%s", logs.String())
		}
	}
	type hitMsg struct {
		ID        string    `json:"id"`
		FrameTime time.Time `json:"frame_time"`
		Time      time.Time `json:"time"`
		Box       struct{ X, Y, W, H float64 }
		FacePx    int `json:"face_px"`
		SR        struct {
			Sampler string  `json:"sampler"`
			Evals   int     `json:"evals"`
			Ms      float64 `json:"ms"`
			Guided  bool    `json:"guided"`
		} `json:"sr"`
		Match struct {
			Known bool   `json:"known"`
			Name  string `json:"name"`
		} `json:"match"`
		recv time.Time
	}
	var hmu sync.Mutex
	var hits []hitMsg
	sub := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("bench-sub"))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber: %v", tok.Error())
	}
	sub.Subscribe("srdgd/bench/hit", 1, func(_ paho.Client, m paho.Message) {
		recv := time.Now()
		var hm hitMsg
		if err := json.Unmarshal(m.Payload(), &hm); err != nil {
			t.Errorf("hit payload: %v", err)
			return
		}
		hm.recv = recv
		hmu.Lock()
		hits = append(hits, hm)
		hmu.Unlock()
		t.Logf("hit %s face %d px, sr %s %d evals %.0f ms guided %v, match %v %s", hm.ID, hm.FacePx, hm.SR.Sampler, hm.SR.Evals, hm.SR.Ms, hm.SR.Guided, hm.Match.Known, hm.Match.Name)
	})
	time.Sleep(dur)
	sub.Disconnect(100)
	dcancel()
	if code := <-done; code != exitOK {
		t.Errorf("daemon exit %d", code)
	}
	cancel()
	wg.Wait()

	// attribute each hit to a person and its first visible frame
	amu.Lock()
	defer amu.Unlock()
	hmu.Lock()
	defer hmu.Unlock()
	visible := func(k, person int) bool {
		for _, f := range scene.Faces(k) {
			if f.Person == person && f.Box.In(image.Rect(0, 0, w, h)) {
				return true
			}
		}
		return false
	}
	type result struct {
		Hit                                   string
		FacePx                                int
		Total, ToProbeFrame, SRMatch, Publish float64 // seconds
		SRMs                                  float64
		Evals                                 int
		Guided                                bool
	}
	var res []result
	firstSeen := map[string]bool{} // person+pass: only the track's first hit counts
	for _, hm := range hits {
		// the arrival closest to the probe's frame time
		i, _ := slices.BinarySearchFunc(arrivals, hm.FrameTime, func(a arrival, t time.Time) int { return a.at.Compare(t) })
		if i >= len(arrivals) {
			i = len(arrivals) - 1
		}
		if i > 0 && hm.FrameTime.Sub(arrivals[i-1].at).Abs() < arrivals[i].at.Sub(hm.FrameTime).Abs() {
			i--
		}
		k := arrivals[i].k
		cx, cy := hm.Box.X+hm.Box.W/2, hm.Box.Y+hm.Box.H/2
		person, best := -1, 1e18
		for _, f := range scene.Faces(k) {
			fx, fy := float64(f.Box.Min.X+f.Box.Max.X)/2, float64(f.Box.Min.Y+f.Box.Max.Y)/2
			if d := (fx-cx)*(fx-cx) + (fy-cy)*(fy-cy); d < best {
				person, best = f.Person, d
			}
		}
		if person < 0 || best > 60*60 {
			t.Logf("hit %s at frame %d: no scene face near (%.0f,%.0f)", hm.ID, k, cx, cy)
			continue
		}
		// walk back through this pass's arrivals to the first visible frame
		j := i
		for j > 0 && arrivals[j-1].k < arrivals[j].k && visible(arrivals[j-1].k, person) {
			j--
		}
		key := strconv.Itoa(person) + "@" + arrivals[j].at.Format(time.RFC3339Nano)
		if firstSeen[key] {
			continue
		}
		firstSeen[key] = true
		start := arrivals[j].at
		res = append(res, result{Hit: hm.ID, FacePx: hm.FacePx, Total: hm.recv.Sub(start).Seconds(),
			ToProbeFrame: hm.FrameTime.Sub(start).Seconds(), SRMatch: hm.Time.Sub(hm.FrameTime).Seconds(),
			Publish: hm.recv.Sub(hm.Time).Seconds(), SRMs: hm.SR.Ms, Evals: hm.SR.Evals, Guided: hm.SR.Guided})
	}
	if len(res) == 0 {
		t.Fatalf("no hits attributed (%d hits, %d frames seen)\n%s", len(hits), len(arrivals), logs.String())
	}
	q := func(get func(result) float64, p float64) float64 {
		v := make([]float64, len(res))
		for i, r := range res {
			v[i] = get(r)
		}
		slices.Sort(v)
		return v[min(len(v)-1, int(p*float64(len(v))))]
	}
	summary := map[string]any{"sampler": sampler, "policy": cfg.SRDG.Attributes.Policy, "duration": dur.String(), "frames": len(arrivals), "hits": len(hits),
		"first_hits": len(res), "results": res}
	for _, c := range []struct {
		name string
		get  func(result) float64
	}{{"total", func(r result) float64 { return r.Total }}, {"to_probe_frame", func(r result) float64 { return r.ToProbeFrame }},
		{"sr_match", func(r result) float64 { return r.SRMatch }}, {"publish", func(r result) float64 { return r.Publish }}} {
		summary[c.name+"_median_s"] = q(c.get, 0.5)
		summary[c.name+"_p95_s"] = q(c.get, 0.95)
	}
	b, _ := json.MarshalIndent(summary, "", " ")
	t.Logf("end-to-end latency:\n%s", b)
	if out := os.Getenv("SRDGD_BENCH_E2E_OUT"); out != "" {
		if err := os.WriteFile(out, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Fprintf(os.Stderr, "e2e: %d first hits, total median %.2f s p95 %.2f s\n", len(res), summary["total_median_s"], summary["total_p95_s"])
}
