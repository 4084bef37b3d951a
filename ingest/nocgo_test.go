//go:build !cgo

package ingest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/srdgd/srdgd/internal/rtspserver"
	"github.com/srdgd/srdgd/internal/testutil"
)

// Without cgo there is no decoder: NewAVDecoder says so, and a camera gives
// up at once with that error instead of reconnecting forever.
func TestNoDecoderWithoutCgo(t *testing.T) {
	if _, err := NewAVDecoder(CodecH264); !errors.Is(err, ErrNoDecoder) {
		t.Fatalf("NewAVDecoder = %v, want ErrNoDecoder", err)
	}
	testutil.LeakCheck(t)
	ctx := testutil.Context(t, 30*time.Second)
	s := startServer(t, rtspserver.Options{})
	pubCtx, stopPub := context.WithCancel(ctx)
	pubErr := make(chan error, 1)
	go func() { pubErr <- garbagePublisher(pubCtx, s.URL("cam")) }()
	defer func() {
		stopPub()
		<-pubErr
	}()
	if err := s.WaitPublisher(ctx, "cam"); err != nil {
		t.Fatal(err)
	}
	r := startCamera(t, fastReconnect(CameraOptions{Name: "nocgo", URL: s.URL("cam"), Transport: "tcp"}), nil)
	err, ok := r.wait(ctx)
	if !ok || !errors.Is(err, ErrNoDecoder) {
		t.Fatalf("Run = %v, want ErrNoDecoder", err)
	}
}
