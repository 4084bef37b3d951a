package ingest

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/srdgd/srdgd/internal/queue"
	"github.com/srdgd/srdgd/internal/rtspserver"
	"github.com/srdgd/srdgd/internal/testutil"
)

// requireFFmpeg skips loudly when the ffmpeg binary is missing, and
// requireDecoder when the build has no decoder (no cgo). With
// SRDGD_TEST_REQUIRE_FFMPEG=1 (set by CI) both fail instead, so a broken CI image
// cannot pass silently.
func requireFFmpeg(t testing.TB) {
	t.Helper()
	if _, err := rtspserver.FFmpegPath(); err != nil {
		testutil.SkipOrFail(t, "SRDGD_TEST_REQUIRE_FFMPEG", err)
	}
	requireDecoder(t)
}

func requireDecoder(t testing.TB) {
	t.Helper()
	dec, err := NewAVDecoder(CodecH264)
	if err != nil {
		testutil.SkipOrFail(t, "SRDGD_TEST_REQUIRE_FFMPEG", err)
	}
	dec.Close()
}

func startServer(t *testing.T, o rtspserver.Options) *rtspserver.Server {
	t.Helper()
	s, err := rtspserver.Start(o)
	if err != nil {
		t.Fatalf("rtspserver.Start: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

func publish(t *testing.T, ctx context.Context, s *rtspserver.Server, path string, o rtspserver.FFmpegOptions) *rtspserver.Publisher {
	t.Helper()
	p, err := rtspserver.PublishFFmpeg(ctx, s.URL(path), o)
	if err != nil {
		t.Fatalf("PublishFFmpeg: %v", err)
	}
	t.Cleanup(p.Stop)
	if err := s.WaitPublisher(ctx, path); err != nil {
		p.Stop()
		t.Fatalf("%v (ffmpeg stderr: %s)", err, p.Stderr())
	}
	return p
}

// running is a Camera whose Run executes in a goroutine owned by the test.
type running struct {
	cam    *Camera
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// stop cancels Run and returns its result.
func (r *running) stop() error {
	r.cancel()
	<-r.done
	return r.err
}

// wait returns Run's result without cancelling.
func (r *running) wait(ctx context.Context) (error, bool) {
	select {
	case <-r.done:
		return r.err, true
	case <-ctx.Done():
		return nil, false
	}
}

func fastReconnect(o CameraOptions) CameraOptions {
	if o.ReconnectInitial == 0 {
		o.ReconnectInitial = 20 * time.Millisecond
	}
	if o.ReconnectMax == 0 {
		o.ReconnectMax = 200 * time.Millisecond
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = 3 * time.Second
	}
	return o
}

// startCamera builds the camera, lets setup subscribe, and runs it.
func startCamera(t *testing.T, o CameraOptions, setup func(*Camera)) *running {
	t.Helper()
	cam, err := NewCamera(o)
	if err != nil {
		t.Fatalf("NewCamera: %v", err)
	}
	if setup != nil {
		setup(cam)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cam: cam, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = cam.Run(ctx)
	}()
	t.Cleanup(func() { _ = r.stop() })
	return r
}

func popN[T any](t *testing.T, ctx context.Context, q *queue.Queue[T], n int) []T {
	t.Helper()
	out := make([]T, 0, n)
	for len(out) < n {
		v, err := q.Pop(ctx)
		if err != nil {
			t.Fatalf("got %d of %d items: %v", len(out), n, err)
		}
		out = append(out, v)
	}
	return out
}

// waitFor polls cond until it holds or ctx ends. It is for conditions on
// counters that have no event to wait on.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// logBuffer is a concurrency-safe sink for a slog text handler.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
