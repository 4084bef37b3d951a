package ingest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/internal/queue"
	"github.com/srdgd/srdgd/internal/rtspserver"
	"github.com/srdgd/srdgd/internal/testutil"
)

// checkPicture asserts a testsrc2 picture: right size, not black, coloured.
func checkPicture(t *testing.T, f *face.Frame, w, h int) {
	t.Helper()
	if f.Width != w || f.Height != h || len(f.Pix) != 3*w*h {
		t.Fatalf("frame %d: %dx%d with %d bytes, want %dx%d with %d", f.Seq, f.Width, f.Height, len(f.Pix), w, h, 3*w*h)
	}
	var nonZero, coloured int
	for i := 0; i+2 < len(f.Pix); i += 3 {
		b, g, r := int(f.Pix[i]), int(f.Pix[i+1]), int(f.Pix[i+2])
		if b|g|r != 0 {
			nonZero++
		}
		if abs(b-r) > 60 || abs(g-r) > 60 {
			coloured++
		}
	}
	if nonZero < len(f.Pix)/3/2 || coloured < len(f.Pix)/3/10 {
		t.Fatalf("frame %d: %d non-black and %d coloured of %d pixels; testsrc2 is mostly coloured", f.Seq, nonZero, coloured, w*h)
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func TestDecodesStreamFromServer(t *testing.T) {
	requireFFmpeg(t)
	tests := []struct {
		name          string
		codec         string
		transport     string
		tcpOnlyServer bool
		wantCodec     string
		wantTransport string
	}{
		{"h264 tcp", rtspserver.CodecH264, "tcp", false, CodecH264, "TCP"},
		{"h264 udp", rtspserver.CodecH264, "udp", false, CodecH264, "UDP"},
		{"h264 auto", rtspserver.CodecH264, "auto", false, CodecH264, "UDP"},
		{"h264 auto falls back to tcp", rtspserver.CodecH264, "auto", true, CodecH264, "TCP"},
		{"h265 tcp", rtspserver.CodecH265, "tcp", false, CodecH265, "TCP"},
		{"h265 udp", rtspserver.CodecH265, "udp", false, CodecH265, "UDP"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			testutil.LeakCheck(t)
			ctx := testutil.Context(t, 30*time.Second)
			s := startServer(t, rtspserver.Options{DisableUDP: tc.tcpOnlyServer})
			publish(t, ctx, s, "cam", rtspserver.FFmpegOptions{Codec: tc.codec, GOP: 10})
			var frames *queue.Queue[*face.Frame]
			var aus *queue.Queue[*face.AccessUnit]
			r := startCamera(t, fastReconnect(CameraOptions{Name: "front", URL: s.URL("cam"), Transport: tc.transport}), func(c *Camera) {
				frames = c.SubscribeFrames(64)
				aus = c.SubscribeAccessUnits(64)
			})

			got := popN(t, ctx, frames, 20)
			for i, f := range got {
				checkPicture(t, f, 320, 240)
				if f.Camera != "front" || f.Decoded.Before(f.Wall) {
					t.Fatalf("frame %d: camera %q, decoded %v before arrival %v", i, f.Camera, f.Decoded, f.Wall)
				}
				if i > 0 {
					prev := got[i-1]
					if f.Seq != prev.Seq+1 {
						t.Fatalf("seq %d follows %d", f.Seq, prev.Seq)
					}
					// testsrc2 at 25 fps: RTP timestamps step 3600 ticks = 40 ms.
					if d := f.PTS - prev.PTS; d <= 0 || d%(40*time.Millisecond) != 0 {
						t.Fatalf("pts step %v between frames %d and %d, want a multiple of 40ms", d, prev.Seq, f.Seq)
					}
					if f.RTPTime-prev.RTPTime != uint32((f.PTS-prev.PTS)/time.Millisecond*90) {
						t.Fatalf("rtp time step %d does not match pts step %v", f.RTPTime-prev.RTPTime, f.PTS-prev.PTS)
					}
				}
			}

			units := popN(t, ctx, aus, 12)
			if !units[0].Key {
				t.Fatal("first access unit is not a key frame")
			}
			var keys int
			for _, au := range units {
				if au.Codec != tc.wantCodec {
					t.Fatalf("access unit codec %q, want %q", au.Codec, tc.wantCodec)
				}
				if au.Key {
					keys++
					checkParamsFirst(t, au)
				}
			}
			if keys < 1 {
				t.Fatal("no key frame among 12 access units with GOP 10")
			}

			st := r.cam.Status()
			if !st.Connected || st.State != StateConnected || st.Codec != tc.wantCodec ||
				st.Width != 320 || st.Height != 240 || st.Frames < 20 || st.Transport != tc.wantTransport {
				t.Fatalf("status %+v", st)
			}
			if err := r.stop(); err != nil {
				t.Fatalf("Run = %v, want nil after cancel", err)
			}
			if st := r.cam.Status(); st.State != StateStopped || st.Connected {
				t.Fatalf("status after stop %+v", st)
			}
			if !frames.Closed() {
				t.Fatal("frame queue not closed after Run returned")
			}
		})
	}
}

// checkParamsFirst asserts that a key access unit carries its parameter sets.
func checkParamsFirst(t *testing.T, au *face.AccessUnit) {
	t.Helper()
	seen := map[int]bool{}
	for _, n := range au.NALUs {
		if au.Codec == CodecH264 {
			seen[int(n[0]&0x1f)] = true
		} else {
			seen[int(n[0]>>1&0x3f)] = true
		}
	}
	want := []int{h264NALUSPS, h264NALUPPS}
	if au.Codec == CodecH265 {
		want = []int{h265NALUVPS, h265NALUSPS, h265NALUPPS}
	}
	for _, typ := range want {
		if !seen[typ] {
			t.Fatalf("key access unit lacks NAL type %d (has %v)", typ, seen)
		}
	}
}

func TestReconnectAfterServerRestart(t *testing.T) {
	requireFFmpeg(t)
	testutil.LeakCheck(t)
	ctx := testutil.Context(t, 60*time.Second)
	s1, err := rtspserver.Start(rtspserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	addr := s1.Addr()
	p1, err := rtspserver.PublishFFmpeg(ctx, s1.URL("cam"), rtspserver.FFmpegOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p1.Stop()
	if err := s1.WaitPublisher(ctx, "cam"); err != nil {
		t.Fatal(err)
	}

	r := startCamera(t, fastReconnect(CameraOptions{Name: "door", URL: s1.URL("cam"), Transport: "tcp"}), nil)
	frames := r.cam.SubscribeFrames(256)
	before := popN(t, ctx, frames, 5)

	s1.Close() // kill the server mid-stream: camera and publisher lose their sessions
	p1.Stop()
	testutil.WaitFor(t, ctx, "camera to notice the dead server", func() bool { return !r.cam.Status().Connected })

	s2 := startServer(t, rtspserver.Options{Address: addr})
	publish(t, ctx, s2, "cam", rtspserver.FFmpegOptions{})
	// Drain what was queued before the restart, then require fresh frames.
	last := before[len(before)-1].Seq
	var after []*face.Frame
	for len(after) < 5 {
		f := popN(t, ctx, frames, 1)[0]
		if f.Seq <= last {
			t.Fatalf("seq went backwards: %d after %d", f.Seq, last)
		}
		last = f.Seq
		if r.cam.Status().Reconnects > 0 && r.cam.Status().Connected {
			after = append(after, f)
		}
	}
	checkPicture(t, after[len(after)-1], 320, 240)
	st := r.cam.Status()
	if st.Reconnects != 1 || !st.Connected || st.LastError == "" || st.LastErrorAt.IsZero() {
		t.Fatalf("status after reconnect %+v, want connected with exactly 1 reconnect", st)
	}
	if err := r.stop(); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

func TestCredentials(t *testing.T) {
	requireFFmpeg(t)
	const user, pass = "operator", "Sup3r-s3cret/pw?"
	tests := []struct {
		name     string
		method   string
		username string
		password string
		inURL    bool
		wantOK   bool
	}{
		{"basic right", rtspserver.AuthBasic, user, pass, false, true},
		{"digest right", rtspserver.AuthDigest, user, pass, false, true},
		{"right in url", rtspserver.AuthAny, user, pass, true, true},
		{"basic wrong password", rtspserver.AuthBasic, user, "Wr0ng-s3cret-pw", false, false},
		{"digest wrong password", rtspserver.AuthDigest, user, "Wr0ng-s3cret-pw", false, false},
		{"wrong password in url", rtspserver.AuthAny, user, "Wr0ng-s3cret-pw", true, false},
		{"no credentials", rtspserver.AuthAny, "", "", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			testutil.LeakCheck(t)
			ctx := testutil.Context(t, 30*time.Second)
			s := startServer(t, rtspserver.Options{Username: user, Password: pass, AuthMethod: tc.method})
			publish(t, ctx, s, "cam", rtspserver.FFmpegOptions{})
			var logs logBuffer
			o := fastReconnect(CameraOptions{
				Name: "gate", URL: s.URL("cam"), Username: tc.username, Password: tc.password,
				Transport: "tcp", MaxAuthFailures: 2, Logger: logs.logger(),
				AuthRetryInitial: time.Hour, AuthRetryMax: time.Hour, // one state change to look at
			})
			if tc.inURL {
				o.URL = strings.Replace(o.URL, "rtsp://", "rtsp://"+tc.username+":"+urlEscape(tc.password)+"@", 1)
				o.Username, o.Password = "", ""
			}
			r := startCamera(t, o, nil)
			frames := r.cam.SubscribeFrames(8)
			if tc.wantOK {
				popN(t, ctx, frames, 3)
				if err := r.stop(); err != nil {
					t.Fatalf("Run = %v", err)
				}
			} else {
				// rejected credentials are a state of the camera, not the end of Run
				testutil.WaitFor(t, ctx, "auth_failed", func() bool { return r.cam.Status().State == StateAuthFailed })
				st := r.cam.Status()
				if !strings.Contains(st.LastError, ErrAuthRejected.Error()) {
					t.Fatalf("last error %q does not say the credentials were rejected", st.LastError)
				}
				if !strings.Contains(st.LastError, `camera "gate"`) || !strings.Contains(st.LastError, s.Addr()) {
					t.Fatalf("last error %q does not name the camera and address", st.LastError)
				}
				if st.AuthFailures != 2 || st.Reconnects != 0 || st.Connected {
					t.Fatalf("status %+v, want 2 auth failures (MaxAuthFailures 2), no reconnects, not connected", st)
				}
				select {
				case <-r.done:
					t.Fatalf("Run returned %v on rejected credentials", r.err)
				default:
				}
				for _, secret := range []string{tc.password, urlEscape(tc.password)} {
					if secret != "" && strings.Contains(st.LastError, secret) {
						t.Fatalf("last error leaks the password: %s", st.LastError)
					}
				}
				if err := r.stop(); err != nil {
					t.Fatalf("Run = %v after cancel, want nil", err)
				}
				if st := r.cam.Status(); st.State != StateStopped {
					t.Fatalf("state %q after cancel, want stopped", st.State)
				}
			}
			for _, secret := range []string{pass, tc.password, urlEscape(tc.password)} {
				if secret != "" && strings.Contains(logs.String(), secret) {
					t.Fatalf("logs leak the password:\n%s", logs.String())
				}
			}
			if !strings.Contains(logs.String(), "component=ingest camera=gate") {
				t.Fatalf("logs lack the component/camera attributes:\n%s", logs.String())
			}
		})
	}
}

// TestAuthFailedRecovers: a camera whose password is changed after a healthy
// session goes to auth_failed and keeps trying with the long backoff; when
// the old password is accepted again it comes back, and that counts as one
// reconnect.
func TestAuthFailedRecovers(t *testing.T) {
	requireFFmpeg(t)
	testutil.LeakCheck(t)
	ctx := testutil.Context(t, 60*time.Second)
	const user, pass = "operator", "Old-pa55word"
	s1 := startServer(t, rtspserver.Options{Username: user, Password: pass})
	addr := s1.Addr()
	p1 := publish(t, ctx, s1, "cam", rtspserver.FFmpegOptions{})
	r := startCamera(t, fastReconnect(CameraOptions{Name: "yard", URL: s1.URL("cam"), Username: user, Password: pass,
		Transport: "tcp", AuthRetryInitial: 100 * time.Millisecond, AuthRetryMax: 400 * time.Millisecond}), nil)
	frames := r.cam.SubscribeFrames(64)
	last := popN(t, ctx, frames, 3)[2].Seq

	// the password changes on the camera (it reboots with the new one)
	s1.Close()
	p1.Stop()
	s2 := startServer(t, rtspserver.Options{Address: addr, Username: user, Password: "New-pa55word"})
	publish(t, ctx, s2, "cam", rtspserver.FFmpegOptions{})
	testutil.WaitFor(t, ctx, "auth_failed", func() bool { return r.cam.Status().State == StateAuthFailed })
	// and it goes on trying: the rejections keep being counted
	testutil.WaitFor(t, ctx, "retries while auth_failed", func() bool { return r.cam.Status().AuthFailures >= 5 })
	if st := r.cam.Status(); st.Reconnects != 0 || !strings.Contains(st.LastError, ErrAuthRejected.Error()) {
		t.Fatalf("status %+v, want no reconnect yet and the rejection as last error", st)
	}

	s2.SetReaderCredentials(user, pass)
	for n := 0; n < 3; {
		f := popN(t, ctx, frames, 1)[0]
		if f.Seq > last && r.cam.Status().Connected {
			n++
		}
		last = f.Seq
	}
	if st := r.cam.Status(); st.State != StateConnected || st.Reconnects != 1 {
		t.Fatalf("status %+v, want connected with 1 reconnect", st)
	}
	if err := r.stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
}

// TestReconnectsCountSessionsNotAttempts: Reconnects counts the sessions
// that came back after an earlier one had been up, never the attempts
// (issue 19, finding 9: six attempts before the first success showed as six
// reconnects). One real server per case, its publisher stopped and started,
// its reader credentials changed; each step says what the counter must read
// once it is done.
func TestReconnectsCountSessionsNotAttempts(t *testing.T) {
	requireFFmpeg(t)
	const user, pass = "operator", "Right-pa55word"
	type step struct {
		do   string // up: stream, right credentials; fail: no stream (404); reject: wrong credentials (401); drop: the stream ends and comes back
		n    int    // fail, reject: attempts the camera must have made
		want uint64 // Reconnects after the step
	}
	up := func(want uint64) step { return step{do: "up", want: want} }
	tests := []struct {
		name  string
		steps []step
	}{
		{"first session", []step{up(0)}},
		{"six failed attempts, then the first session", []step{{"fail", 6, 0}, up(0)}},
		{"three rejected attempts, then the first session", []step{{"reject", 3, 0}, up(0)}},
		{"failed and rejected attempts before the first session", []step{{"fail", 3, 0}, {"reject", 4, 0}, {"fail", 2, 0}, up(0)}},
		{"two drops, each back at the next attempt", []step{up(0), {"drop", 0, 1}, {"drop", 0, 2}}},
		{"a drop, five failed attempts, back", []step{up(0), {"fail", 5, 0}, up(1)}},
		{"the password changes after a session, then is right again", []step{up(0), {"reject", 4, 0}, up(1)}},
		{"three outages of attempts after the first session", []step{{"fail", 2, 0}, up(0), {"fail", 3, 0}, up(1),
			{"reject", 3, 1}, up(2), {"fail", 1, 2}, {"reject", 2, 2}, up(3)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			testutil.LeakCheck(t)
			ctx := testutil.Context(t, 90*time.Second)
			s := startServer(t, rtspserver.Options{Username: user, Password: pass})
			var pub *rtspserver.Publisher
			stopPub := func() {
				if pub != nil {
					pub.Stop()
					<-pub.Done()
					pub = nil
				}
			}
			defer stopPub()
			var logs logBuffer
			r := startCamera(t, fastReconnect(CameraOptions{Name: "late", URL: s.URL("cam"), Username: user, Password: pass,
				Transport: "tcp", AuthRetryInitial: 20 * time.Millisecond, AuthRetryMax: 100 * time.Millisecond,
				Logger: logs.logger()}), nil)
			frames := r.cam.SubscribeFrames(8)
			// attempts counts the attempts that failed before PLAY, 404s and
			// 401s alike, by the line the camera logs for each
			attempts := func() int {
				l := logs.String()
				return strings.Count(l, `msg="connect failed"`) + strings.Count(l, `msg="credentials rejected"`) +
					strings.Count(l, `msg="credentials still rejected"`)
			}
			// newSession waits for frames decoded after the last disconnect
			var seen uint64
			newSession := func() {
				t.Helper()
				for n := 0; n < 3; {
					f, err := frames.Pop(ctx)
					if err != nil {
						t.Fatalf("no frames of a new session: %v (status %+v)", err, r.cam.Status())
					}
					if f.Seq > seen && r.cam.Status().Connected {
						n++
					}
					f.Release()
				}
			}
			disconnected := func() {
				t.Helper()
				stopPub()
				testutil.WaitFor(t, ctx, "the session to end", func() bool { return !r.cam.Status().Connected })
				seen = r.cam.Status().Frames // frames carry Seq <= Frames up to here
			}
			for i, st := range tc.steps {
				switch st.do {
				case "up":
					s.SetReaderCredentials(user, pass)
					if pub == nil {
						pub = publish(t, ctx, s, "cam", rtspserver.FFmpegOptions{})
					}
					newSession()
				case "drop":
					disconnected()
					pub = publish(t, ctx, s, "cam", rtspserver.FFmpegOptions{})
					newSession()
				case "fail", "reject":
					if st.do == "reject" {
						s.SetReaderCredentials(user, "Other-pa55word")
					} else {
						s.SetReaderCredentials(user, pass)
					}
					disconnected()
					from := attempts()
					testutil.WaitFor(t, ctx, fmt.Sprintf("%d attempts (%s)", st.n, st.do), func() bool { return attempts() >= from+st.n })
				}
				if got := r.cam.Status(); got.Reconnects != st.want {
					t.Fatalf("after step %d (%s %d): reconnects %d, want %d (status %+v)", i+1, st.do, st.n, got.Reconnects, st.want, got)
				}
			}
		})
	}
}

func urlEscape(s string) string {
	return strings.NewReplacer("/", "%2F", "?", "%3F", "@", "%40", ":", "%3A").Replace(s)
}

// garbagePublisher records an H.264 track and sends random RTP payloads,
// some disguised as IDR slices and FU-A fragments, until ctx ends.
func garbagePublisher(ctx context.Context, url string) error {
	forma := &format.H264{
		PayloadTyp:        96,
		PacketizationMode: 1,
		// A valid 320x240 SPS/PPS so the decoder really runs on the garbage slices.
		SPS: []byte{0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42, 0x99, 0x20},
		PPS: []byte{0x68, 0xcb, 0x83, 0xcb, 0x20},
	}
	desc := &description.Session{Medias: []*description.Media{{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}}}
	c := &gortsplib.Client{OnTransportSwitch: func(error) {}, OnPacketsLost: func(uint64) {}, OnDecodeError: func(error) {}}
	if err := c.StartRecording(url, desc); err != nil {
		return err
	}
	defer c.Close()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	var seq uint16
	var ts uint32
	buf := make([]byte, 1400)
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		n := 1 + int(buf[0])%1200
		rand.Read(buf[:n])
		payload := append([]byte(nil), buf[:n]...)
		switch i % 4 {
		case 0:
			payload[0] = 0x65 // IDR slice with a random body
		case 1:
			payload[0] = 0x7c // FU-A
		}
		if i%3 == 0 {
			ts += 3600
		}
		seq++
		pkt := &rtp.Packet{
			Header:  rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: ts, SSRC: 1234, Marker: i%2 == 0},
			Payload: payload,
		}
		if err := c.WritePacketRTP(desc.Medias[0], pkt); err != nil {
			return err
		}
	}
}

func TestGarbageRTPIsCountedNotFatal(t *testing.T) {
	requireDecoder(t)
	testutil.LeakCheck(t)
	ctx := testutil.Context(t, 30*time.Second)
	s := startServer(t, rtspserver.Options{})
	pubCtx, stopPub := context.WithCancel(ctx)
	pubErr := make(chan error, 1)
	go func() { pubErr <- garbagePublisher(pubCtx, s.URL("junk")) }()
	defer func() {
		stopPub()
		if err := <-pubErr; err != nil {
			t.Errorf("garbage publisher: %v", err)
		}
	}()
	if err := s.WaitPublisher(ctx, "junk"); err != nil {
		t.Fatal(err)
	}
	r := startCamera(t, fastReconnect(CameraOptions{Name: "junk", URL: s.URL("junk"), Transport: "tcp", WarnInterval: time.Hour}), nil)
	testutil.WaitFor(t, ctx, "rtp and decode errors to be counted", func() bool {
		st := r.cam.Status()
		return st.RTPErrors >= 5 && st.DecodeErrors >= 5
	})
	st := r.cam.Status()
	if !st.Connected || st.Reconnects != 0 {
		t.Fatalf("garbage disturbed the session: %+v", st)
	}
	if err := r.stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
}

func TestSlowConsumerDoesNotStallOthers(t *testing.T) {
	requireFFmpeg(t)
	testutil.LeakCheck(t)
	ctx := testutil.Context(t, 30*time.Second)
	s := startServer(t, rtspserver.Options{})
	publish(t, ctx, s, "cam", rtspserver.FFmpegOptions{})
	r := startCamera(t, fastReconnect(CameraOptions{Name: "lobby", URL: s.URL("cam"), Transport: "tcp"}), nil)
	slow := r.cam.SubscribeFrames(2) // never popped
	slowAU := r.cam.SubscribeAccessUnits(1)
	fast := r.cam.SubscribeFrames(4)
	got := popN(t, ctx, fast, 25)
	for i := 1; i < len(got); i++ {
		if got[i].Seq <= got[i-1].Seq {
			t.Fatalf("fast subscriber got seq %d after %d", got[i].Seq, got[i-1].Seq)
		}
	}
	if slow.Len() != 2 || slow.Dropped() < 20 {
		t.Fatalf("slow subscriber: len %d dropped %d, want 2 and >= 20", slow.Len(), slow.Dropped())
	}
	if st := r.cam.Status(); st.Dropped < slow.Dropped()+slowAU.Dropped() {
		t.Fatalf("Status.Dropped %d < subscriber drops %d", st.Dropped, slow.Dropped()+slowAU.Dropped())
	}
	// The slow queue holds the newest frames, not the first ones.
	v, _, _ := slow.TryPop()
	if v.Seq <= got[0].Seq {
		t.Fatalf("slow queue kept old frame %d", v.Seq)
	}
	r.cam.UnsubscribeFrames(slow)
	if !slow.Closed() {
		t.Fatal("unsubscribed queue not closed")
	}
	popN(t, ctx, fast, 5) // still flowing after the unsubscribe
}

func TestRunReturnsPromptlyOnCancel(t *testing.T) {
	requireFFmpeg(t)
	// A TCP peer that accepts and never answers: DESCRIBE hangs.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	defer func() {
		ln.Close()
		for c := range accepted {
			c.Close()
		}
	}()

	tests := []struct {
		name  string
		setup func(t *testing.T, ctx context.Context) CameraOptions
		ready func(t *testing.T, ctx context.Context, r *running)
	}{
		{
			name: "while playing",
			setup: func(t *testing.T, ctx context.Context) CameraOptions {
				s := startServer(t, rtspserver.Options{})
				publish(t, ctx, s, "cam", rtspserver.FFmpegOptions{})
				return CameraOptions{URL: s.URL("cam")}
			},
			ready: func(t *testing.T, ctx context.Context, r *running) {
				popN(t, ctx, r.cam.SubscribeFrames(4), 2)
			},
		},
		{
			name: "during backoff",
			setup: func(t *testing.T, ctx context.Context) CameraOptions {
				s := startServer(t, rtspserver.Options{}) // no publisher: 404
				return CameraOptions{URL: s.URL("cam"), ReconnectInitial: time.Hour, ReconnectMax: time.Hour}
			},
			ready: func(t *testing.T, ctx context.Context, r *running) {
				testutil.WaitFor(t, ctx, "backoff", func() bool { return r.cam.Status().State == StateBackoff })
			},
		},
		{
			name: "during a hanging describe",
			setup: func(t *testing.T, ctx context.Context) CameraOptions {
				return CameraOptions{URL: "rtsp://" + ln.Addr().String() + "/cam", ReadTimeout: time.Hour}
			},
			ready: func(t *testing.T, ctx context.Context, r *running) {
				select {
				case <-accepted:
				case <-ctx.Done():
					t.Fatal("camera never connected")
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			testutil.LeakCheck(t)
			ctx := testutil.Context(t, 30*time.Second)
			o := tc.setup(t, ctx)
			o.Name = "cancel"
			r := startCamera(t, fastReconnect(o), nil)
			tc.ready(t, ctx, r)
			r.cancel()
			limit := time.NewTimer(5 * time.Second)
			defer limit.Stop()
			select {
			case <-r.done:
			case <-limit.C:
				t.Fatal("Run did not return within 5s of cancel")
			}
			if r.err != nil {
				t.Fatalf("Run = %v, want nil", r.err)
			}
			if err := r.cam.Run(ctx); !errors.Is(err, ErrAlreadyRunning) {
				t.Fatalf("second Run = %v, want ErrAlreadyRunning", err)
			}
			if q := r.cam.SubscribeFrames(1); !q.Closed() {
				t.Fatal("subscribing after Run returned gave an open queue")
			}
		})
	}
}

func TestMaxRetriesExhausted(t *testing.T) {
	testutil.LeakCheck(t)
	ctx := testutil.Context(t, 30*time.Second)
	s := startServer(t, rtspserver.Options{}) // nobody publishes: every DESCRIBE is 404
	r := startCamera(t, fastReconnect(CameraOptions{Name: "gone", URL: s.URL("cam"), MaxRetries: 2}), nil)
	err, ok := r.wait(ctx)
	if !ok {
		t.Fatal("Run did not give up")
	}
	if !errors.Is(err, ErrRetriesExhausted) || !strings.Contains(err.Error(), "404") {
		t.Fatalf("Run = %v, want ErrRetriesExhausted naming the 404", err)
	}
	if st := r.cam.Status(); st.Reconnects != 0 || st.State != StateFailed || !strings.Contains(st.LastError, ErrRetriesExhausted.Error()) {
		t.Fatalf("status %+v, want failed with the reason and no reconnects (no session came up)", st)
	}
}

func TestRTSPS(t *testing.T) {
	requireFFmpeg(t)
	cfg, fingerprint, err := rtspserver.SelfSignedTLS("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	_, otherFingerprint, err := rtspserver.SelfSignedTLS("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	colons := func(h string) string {
		var parts []string
		for i := 0; i < len(h); i += 2 {
			parts = append(parts, strings.ToUpper(h[i:i+2]))
		}
		return strings.Join(parts, ":")
	}
	tests := []struct {
		name    string
		o       CameraOptions
		wantErr error
	}{
		{"fingerprint pin", CameraOptions{TLSFingerprint: fingerprint}, nil},
		{"fingerprint pin with colons", CameraOptions{TLSFingerprint: colons(fingerprint)}, nil},
		{"insecure", CameraOptions{TLSInsecure: true}, nil},
		{"wrong pin", CameraOptions{TLSFingerprint: otherFingerprint}, ErrFingerprintMismatch},
		{"verify against system roots", CameraOptions{}, ErrRetriesExhausted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			testutil.LeakCheck(t)
			ctx := testutil.Context(t, 30*time.Second)
			s := startServer(t, rtspserver.Options{TLSConfig: cfg, DisableUDP: true})
			publish(t, ctx, s, "cam", rtspserver.FFmpegOptions{})
			o := tc.o
			o.Name, o.URL, o.Transport = "tls", s.URL("cam"), "tcp"
			if tc.wantErr != nil {
				o.MaxRetries = 1
			}
			r := startCamera(t, fastReconnect(o), nil)
			if tc.wantErr == nil {
				checkPicture(t, popN(t, ctx, r.cam.SubscribeFrames(4), 3)[2], 320, 240)
				return
			}
			err, ok := r.wait(ctx)
			if !ok || !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), "certificate") {
				t.Fatalf("Run = %v, want %v about the certificate", err, tc.wantErr)
			}
		})
	}
}

func TestNewCameraValidation(t *testing.T) {
	const secret = "pa55-w0rd"
	tests := []struct {
		name string
		o    CameraOptions
		want string
	}{
		{"no name", CameraOptions{URL: "rtsp://h/x"}, "name is empty"},
		{"bad scheme", CameraOptions{Name: "c", URL: "http://h/x"}, `scheme "http"`},
		{"no host", CameraOptions{Name: "c", URL: "rtsp:///x"}, "no host"},
		{"bad port keeps secret", CameraOptions{Name: "c", URL: "rtsp://u:" + secret + "@h:port/x"}, "url:"},
		{"bad transport", CameraOptions{Name: "c", URL: "rtsp://h/x", Transport: "sctp"}, `transport "sctp"`},
		{"tls on rtsp", CameraOptions{Name: "c", URL: "rtsp://u:" + secret + "@h/x", TLSInsecure: true}, "need an rtsps"},
		{"bad fingerprint", CameraOptions{Name: "c", URL: "rtsps://h/x", TLSFingerprint: "abc"}, "64 hex digits"},
		{"pin and insecure", CameraOptions{Name: "c", URL: "rtsps://h/x", TLSInsecure: true, TLSFingerprint: strings.Repeat("ab", 32)}, "exclusive"},
		{"initial above max", CameraOptions{Name: "c", URL: "rtsp://h/x", ReconnectInitial: time.Minute, ReconnectMax: time.Second}, "exceeds max"},
		{"negative retries", CameraOptions{Name: "c", URL: "rtsp://h/x", MaxRetries: -1}, "max retries -1"},
		{"password in options", CameraOptions{Name: "c", URL: "ftp://h/x", Password: secret}, "scheme"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewCamera(tc.o)
			if err == nil {
				t.Fatal("NewCamera succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %q, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("err leaks the password: %q", err)
			}
		})
	}

	c, err := NewCamera(CameraOptions{Name: "ok", URL: "rtsps://admin:" + secret + "@cam.local:322/live?x=1", TLSInsecure: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.URL() != "rtsps://cam.local:322/live?x=1" || c.Name() != "ok" {
		t.Fatalf("URL() = %q, want it without credentials", c.URL())
	}
	if st := c.Status(); st.State != StateStopped || st.Camera != "ok" {
		t.Fatalf("status before Run %+v", st)
	}
}

func TestReleasedFrameBuffersAreRecycled(t *testing.T) {
	requireFFmpeg(t)
	testutil.LeakCheck(t)
	ctx := testutil.Context(t, 30*time.Second)
	s := startServer(t, rtspserver.Options{})
	publish(t, ctx, s, "cam", rtspserver.FFmpegOptions{})
	var releasing, holding *queue.Queue[*face.Frame]
	startCamera(t, fastReconnect(CameraOptions{Name: "pool", URL: s.URL("cam"), Transport: "tcp"}), func(c *Camera) {
		releasing = c.SubscribeFrames(64)
		holding = c.SubscribeFrames(64)
	})

	// One subscriber releases everything, the other holds its frames: no
	// buffer may be reused while the holder still has it.
	seen := map[*byte]uint64{}
	var held []*face.Frame
	for range 12 {
		f := popN(t, ctx, releasing, 1)[0]
		checkPicture(t, f, 320, 240)
		if prev, ok := seen[&f.Pix[0]]; ok {
			t.Fatalf("frame %d reuses the buffer of frame %d, which a subscriber still holds", f.Seq, prev)
		}
		seen[&f.Pix[0]] = f.Seq
		f.Release()
		held = append(held, popN(t, ctx, holding, 1)[0])
	}
	// Now both release: buffers come back and later frames reuse them.
	for _, f := range held {
		f.Release()
	}
	reused := false
	for range 12 {
		f := popN(t, ctx, releasing, 1)[0]
		g := popN(t, ctx, holding, 1)[0]
		if f != g {
			t.Fatalf("subscribers got different frames %d and %d", f.Seq, g.Seq)
		}
		if _, ok := seen[&f.Pix[0]]; ok {
			reused = true
		}
		checkPicture(t, f, 320, 240) // a recycled buffer holds the new picture
		f.Release()
		g.Release()
	}
	if !reused {
		t.Fatal("no buffer was recycled after every subscriber released its frames")
	}
}

// gatedDecoder wraps the real decoder: its first Decode blocks until gate is
// closed, and it records which access units reached it.
type gatedDecoder struct {
	Decoder
	codec string
	gate  chan struct{}
	once  bool
	mu    sync.Mutex
	keys  []bool
}

func (g *gatedDecoder) Decode(au [][]byte, pts time.Duration, alloc func(int) []byte) ([]Picture, error) {
	if !g.once {
		g.once = true
		<-g.gate
	}
	g.mu.Lock()
	g.keys = append(g.keys, isKeyUnit(g.codec, au))
	g.mu.Unlock()
	return g.Decoder.Decode(au, pts, alloc)
}

func TestDecoderBehindDropsAndResumesAtKeyFrame(t *testing.T) {
	requireFFmpeg(t)
	testutil.LeakCheck(t)
	ctx := testutil.Context(t, 30*time.Second)
	s := startServer(t, rtspserver.Options{})
	publish(t, ctx, s, "cam", rtspserver.FFmpegOptions{GOP: 10})
	gd := &gatedDecoder{gate: make(chan struct{})}
	var frames *queue.Queue[*face.Frame]
	r := startCamera(t, fastReconnect(CameraOptions{
		Name: "behind", URL: s.URL("cam"), Transport: "tcp", DecodeQueue: 3,
		NewDecoder: func(codec string) (Decoder, error) {
			d, err := NewAVDecoder(codec)
			gd.Decoder, gd.codec = d, codec
			return gd, err
		},
	}), func(c *Camera) { frames = c.SubscribeFrames(64) })
	testutil.WaitFor(t, ctx, "the decode queue to overflow", func() bool { return r.cam.Status().Dropped >= 15 })
	close(gd.gate)
	popN(t, ctx, frames, 15)
	st := r.cam.Status()
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	gd.mu.Lock()
	defer gd.mu.Unlock()
	// The first unit was stuck in the decoder; after the gap the decoder must
	// have skipped to a key frame rather than decode P-frames without references.
	if len(gd.keys) < 2 || !gd.keys[0] || !gd.keys[1] {
		t.Fatalf("decoder saw keys %v, want a key frame first and right after the gap", gd.keys)
	}
	if st.DecodeErrors != 0 {
		t.Fatalf("%d decode errors after resuming at a key frame", st.DecodeErrors)
	}
}

func TestDecoderConstructionFailureIsPermanent(t *testing.T) {
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
	boom := errors.New("no hardware decoder")
	var asked string
	r := startCamera(t, fastReconnect(CameraOptions{Name: "nodec", URL: s.URL("cam"), Transport: "tcp",
		NewDecoder: func(codec string) (Decoder, error) { asked = codec; return nil, boom }}), nil)
	err, ok := r.wait(ctx)
	if !ok || !errors.Is(err, boom) || asked != CodecH264 {
		t.Fatalf("Run = %v (decoder asked for %q), want the constructor's error for H264", err, asked)
	}
	if st := r.cam.Status(); st.Reconnects != 0 || st.State != StateFailed || !strings.Contains(st.LastError, boom.Error()) {
		t.Fatalf("status %+v, want failed with the reason and no retries", st)
	}
}
