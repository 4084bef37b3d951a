// Package reconnectbench measures memory over camera reconnect cycles: an
// in-process RTSP server fed by ffmpeg is closed and restarted (with a new
// ffmpeg publisher) again and again, and after every cycle, once the camera
// decodes frames again, it records the camera's reconnects, the goroutines,
// the resident set size and the Go heap. Two subjects:
//
//   - TestReconnectCyclesCamera: the real ingest.Camera with the libavcodec
//     decoder in this process (RSS of the test process);
//   - TestReconnectCyclesDaemon: the real srdgd binary ($SRDGD_BENCH_BIN) as a
//     child process, read through /api/v1/cameras, /metrics and
//     /proc/PID/status.
//
// It runs only with SRDGD_BENCH=1 (see run.sh).
package reconnectbench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/srdgd/srdgd/ingest"
	"github.com/srdgd/srdgd/internal/rtspserver"
)

// The stream: small enough that 100 cycles fit in a few minutes on two
// shared cores, large enough that a decoder's buffers (about 1 MB per
// picture at this size) show in the RSS.
const (
	width, height = 640, 360
	fps           = 15
	gop           = 15
	framesPerUp   = 10 // decoded frames that make a cycle count as reconnected
)

func requireBench(t *testing.T) {
	t.Helper()
	if os.Getenv("SRDGD_BENCH") != "1" {
		t.Skip("benchmark; run bench/reconnect/run.sh (SRDGD_BENCH=1)")
	}
	if _, err := rtspserver.FFmpegPath(); err != nil {
		t.Fatal(err)
	}
}

func cycles() int {
	if n, err := strconv.Atoi(os.Getenv("SRDGD_BENCH_CYCLES")); err == nil && n > 0 {
		return n
	}
	return 100
}

// sample is one row of the measurement.
type sample struct {
	cycle      int
	reconnects uint64
	goroutines int
	rssKB      int64 // VmRSS
	anonKB     int64 // RssAnon: the heap part of it (C and Go)
	heapMB     float64
	// retainedMB is the Go heap the process holds from the OS: HeapSys
	// less HeapReleased (in use, free spans not yet returned, GC headroom),
	// the Go part of RssAnon
	retainedMB float64
}

// procStatus reads VmRSS and RssAnon (kB) of pid.
func procStatus(pid int) (rss, anon int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rss = n
		case "RssAnon":
			anon = n
		}
	}
	return rss, anon, sc.Err()
}

// report writes the samples as CSV to $SRDGD_BENCH_OUT/<name>.csv and a
// markdown row (cycles 0, 20, 50 and the last) to $SRDGD_BENCH_OUT/summary.md.
func report(t *testing.T, name string, rows []sample) {
	t.Helper()
	var csv strings.Builder
	csv.WriteString("cycle,reconnects,goroutines,rss_mb,rss_anon_mb,go_heap_mb,go_retained_mb\n")
	for _, r := range rows {
		fmt.Fprintf(&csv, "%d,%d,%d,%.1f,%.1f,%.1f,%.1f\n", r.cycle, r.reconnects, r.goroutines,
			float64(r.rssKB)/1024, float64(r.anonKB)/1024, r.heapMB, r.retainedMB)
	}
	t.Logf("%s:\n%s", name, csv.String())
	pick := func(c int) string {
		for _, r := range rows {
			if r.cycle == c {
				return fmt.Sprintf("%d / %d / %.0f MB / %.0f MB", r.reconnects, r.goroutines, float64(r.rssKB)/1024, r.heapMB)
			}
		}
		return "—"
	}
	last := rows[len(rows)-1].cycle
	line := fmt.Sprintf("| %s | %s | %s | %s | %s |", name, pick(0), pick(20), pick(50), pick(last))
	t.Log(line)
	out := os.Getenv("SRDGD_BENCH_OUT")
	if out == "" {
		return
	}
	slug := strings.Trim(regexp.MustCompile(`[^a-zA-Z0-9]+`).ReplaceAllString(name, "-"), "-")
	if err := os.WriteFile(filepath.Join(out, slug+".csv"), []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(out, "summary.md"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintln(f, line)
}

// stream is the server and its publisher, restarted on the same address.
type stream struct {
	t    *testing.T
	ctx  context.Context
	addr string
	opts rtspserver.Options // Address and DisableUDP are set by start
	srv  *rtspserver.Server
	pub  *rtspserver.Publisher
}

func (s *stream) start() {
	s.t.Helper()
	o := s.opts
	o.Address, o.DisableUDP = s.addr, true
	srv, err := rtspserver.Start(o)
	if err != nil {
		s.t.Fatal(err)
	}
	s.srv, s.addr = srv, srv.Addr()
	pub, err := rtspserver.PublishFFmpeg(s.ctx, srv.URL("cam"), rtspserver.FFmpegOptions{Width: width, Height: height, FPS: fps, GOP: gop})
	if err != nil {
		s.t.Fatal(err)
	}
	s.pub = pub
	if err := srv.WaitPublisher(s.ctx, "cam"); err != nil {
		s.t.Fatalf("%v (ffmpeg: %s)", err, pub.Stderr())
	}
}

func (s *stream) stop() {
	s.srv.Close()
	s.pub.Stop()
	<-s.pub.Done()
}

// daemon is a running srdgd child process.
type daemon struct {
	cmd  *exec.Cmd
	base string // http://addr of its API
	// exited is closed once the process ended; code and log are set then
	exited  chan struct{}
	code    int
	started time.Time // when the API answered
	logMu   sync.Mutex
	log     []string // ERROR lines of its log
}

func (d *daemon) errors() string {
	d.logMu.Lock()
	defer d.logMu.Unlock()
	return strings.Join(d.log, "\n")
}

// startDaemon writes cfg to dir/srdgd.yaml and runs `bin run` with it (env
// added to this process's, less SRDGD_BENCH*), until the test ends.
func startDaemon(t *testing.T, ctx context.Context, bin, dir, cfg string, env []string) *daemon {
	t.Helper()
	cfgPath := filepath.Join(dir, "srdgd.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, bin, "run", "--config", cfgPath)
	cmd.Dir = "../.."
	// SRDGD_* variables are config overrides to the daemon: not this test's
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SRDGD_BENCH") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, exited: make(chan struct{})}
	addrRE := regexp.MustCompile(`"msg":"http api listening".*?"addr":"([^"]+)"`)
	addrCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if m := addrRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addrCh <- m[1]:
				default:
				}
			}
			if strings.Contains(sc.Text(), `"level":"ERROR"`) {
				d.logMu.Lock()
				d.log = append(d.log, sc.Text())
				d.logMu.Unlock()
			}
		}
		err := cmd.Wait()
		d.code = cmd.ProcessState.ExitCode()
		if err != nil && d.code < 0 {
			d.code = -1
		}
		close(d.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		<-d.exited
	})
	select {
	case a := <-addrCh:
		d.base = "http://" + a
		d.started = time.Now()
	case <-d.exited:
		t.Fatalf("the daemon ended (exit %d) before serving:\n%s", d.code, d.errors())
	case <-ctx.Done():
		t.Fatal("no http api address in the daemon's log")
	}
	return d
}

// TestReconnectCyclesCamera runs ingest.Camera against the restarting
// server. SRDGD_BENCH_TRIM=1 calls malloc_trim(0) after each cycle, which
// tells memory glibc keeps cached in its arenas from memory still in use.
func TestReconnectCyclesCamera(t *testing.T) {
	requireBench(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	s := &stream{t: t, ctx: ctx, addr: "127.0.0.1:0"}
	s.start()
	defer func() { s.stop() }()
	cam, err := ingest.NewCamera(ingest.CameraOptions{Name: "cam", URL: s.srv.URL("cam"), Transport: "tcp",
		ReconnectInitial: 50 * time.Millisecond, ReconnectMax: 500 * time.Millisecond, ReadTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	frames := cam.SubscribeFrames(8)
	rctx, rcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- cam.Run(rctx) }()
	defer func() { rcancel(); <-done }()
	trim := os.Getenv("SRDGD_BENCH_TRIM") == "1"

	var lastSeq uint64
	// up waits until the camera decodes framesPerUp frames of a new session.
	up := func() {
		n := 0
		for n < framesPerUp {
			f, err := frames.Pop(ctx)
			if err != nil {
				t.Fatalf("frames: %v (status %+v)", err, cam.Status())
			}
			if f.Seq > lastSeq && cam.Status().Connected {
				n++
			}
			lastSeq = f.Seq
			f.Release()
		}
	}
	measure := func(c int) sample {
		if trim {
			mallocTrim()
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		rss, anon, err := procStatus(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		return sample{cycle: c, reconnects: cam.Status().Reconnects, goroutines: runtime.NumGoroutine(),
			rssKB: rss, anonKB: anon, heapMB: float64(ms.HeapInuse) / (1 << 20),
			retainedMB: float64(ms.HeapSys-ms.HeapReleased) / (1 << 20)}
	}
	up()
	rows := []sample{measure(0)}
	for c := 1; c <= cycles(); c++ {
		s.stop()
		for cam.Status().Connected {
			if _, err := frames.Pop(ctx); err != nil { // drains until the session ends
				t.Fatal(err)
			}
		}
		s.start()
		up()
		rows = append(rows, measure(c))
	}
	name := "camera"
	if trim {
		name += ", malloc_trim after each cycle"
	}
	if v := os.Getenv("MALLOC_ARENA_MAX"); v != "" {
		name += ", MALLOC_ARENA_MAX=" + v
	}
	report(t, name, rows)
}

// TestReconnectCyclesDaemon runs the srdgd binary at $SRDGD_BENCH_BIN with
// one camera on the restarting server (models from $SRDGD_BENCH_MODELS,
// default models/dist), detection on, SR on (no faces in testsrc2).
func TestReconnectCyclesDaemon(t *testing.T) {
	requireBench(t)
	bin := os.Getenv("SRDGD_BENCH_BIN")
	if bin == "" {
		t.Skip("SRDGD_BENCH_BIN (the srdgd binary to measure) is not set")
	}
	models := os.Getenv("SRDGD_BENCH_MODELS")
	if models == "" {
		models, _ = filepath.Abs("../../models/dist")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	s := &stream{t: t, ctx: ctx, addr: "127.0.0.1:0"}
	s.start()
	defer func() { s.stop() }()

	dir := t.TempDir()
	cfg := fmt.Sprintf(`version: 1
log: {level: info, format: json}
storage: {state_dir: %q, models_dir: %q}
cameras:
  - name: cam
    url: %s
    transport: tcp
    reconnect: {initial: 50ms, max: 500ms}
srdg: {attributes: {policy: "off"}, providers: [cpu]}
match: {key_file: %q}
publish:
  mqtt: {embedded_listen: "127.0.0.1:0"}
  http: {listen: "127.0.0.1:0"}
  webrtc: {enabled: false}
`, dir, models, s.srv.URL("cam"), filepath.Join(dir, "gallery.key"))
	d := startDaemon(t, ctx, bin, dir, cfg, nil)
	base := d.base

	type camStatus struct {
		Connected  bool   `json:"connected"`
		Frames     uint64 `json:"frames"`
		Reconnects uint64 `json:"reconnects"`
	}
	status := func() camStatus {
		resp, err := http.Get(base + "/api/v1/cameras")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Cameras []camStatus `json:"cameras"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || len(body.Cameras) != 1 {
			t.Fatalf("cameras: %v %+v", err, body)
		}
		return body.Cameras[0]
	}
	metric := func(name string) float64 {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), " "); ok && k == name {
				f, _ := strconv.ParseFloat(v, 64)
				return f
			}
		}
		t.Fatalf("metric %s missing", name)
		return 0
	}
	// poll: the daemon is another process, its API is the only way to see it
	poll := func(what string, cond func(camStatus) bool) camStatus {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if st := status(); cond(st) {
				return st
			}
			select {
			case <-ctx.Done():
				t.Fatalf("timed out waiting for %s", what)
			case <-tick.C:
			}
		}
	}
	var from uint64
	up := func() {
		poll("frames", func(st camStatus) bool { return st.Connected && st.Frames >= from+framesPerUp })
	}
	measure := func(c int) sample {
		st := status()
		rss, anon, err := procStatus(d.cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		return sample{cycle: c, reconnects: st.Reconnects, goroutines: int(metric("go_goroutines")),
			rssKB: rss, anonKB: anon, heapMB: metric("go_memstats_heap_inuse_bytes") / (1 << 20),
			retainedMB: (metric("go_memstats_heap_sys_bytes") - metric("go_memstats_heap_released_bytes")) / (1 << 20)}
	}
	up()
	rows := []sample{measure(0)}
	// SRDGD_BENCH_STEADY=1 is the control: the same daemon and stream for as
	// long, without restarts (a cycle is 2 s of frames)
	steady := os.Getenv("SRDGD_BENCH_STEADY") == "1"
	for c := 1; c <= cycles(); c++ {
		if steady {
			from = status().Frames + 2*fps - framesPerUp
		} else {
			s.stop()
			from = poll("disconnect", func(st camStatus) bool { return !st.Connected }).Frames
			s.start()
		}
		up()
		rows = append(rows, measure(c))
	}
	name := "daemon " + filepath.Base(filepath.Dir(bin))
	if steady {
		name += ", no restarts (control)"
	}
	if v := os.Getenv("MALLOC_ARENA_MAX"); v != "" {
		name += ", MALLOC_ARENA_MAX=" + v
	}
	report(t, name, rows)
}
