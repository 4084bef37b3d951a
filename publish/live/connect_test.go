package live

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/srdgd/srdgd/internal/testutil"
)

// Offers that can never become a session are refused with 400 and the
// reason, and hold no viewer slot: with MaxViewers 1, a good viewer still
// gets in after all of them. The offers are a real pion peer's, mutated (and
// one real sendonly peer, one without video).
func TestWHEPRefusesOffersThatCannotConnect(t *testing.T) {
	requireFFmpeg(t)
	testutil.LeakCheck(t)
	ctx := testutil.Context(t, 60*time.Second)
	cam := startCamera(t, "front", h264)
	ls := startLive(t, Options{Cameras: map[string]Source{"front": cam}, MaxViewers: 1})

	type bad struct {
		name, reason string
		offer        string
	}
	var cases []bad
	good := newWHEPClient(t, clientOptions{}).offer(t, ctx)
	for _, m := range offerMutations {
		cases = append(cases, bad{m.name, m.reason, m.mutate(good)})
	}
	cases = append(cases,
		bad{"sendonly peer", "the video section is sendonly", newWHEPClient(t, clientOptions{sendonly: true}).offer(t, ctx)},
		bad{"no video section", "no video section", newWHEPClient(t, clientOptions{noVideo: true}).offer(t, ctx)})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.offer == good {
				t.Fatal("the mutation changed nothing")
			}
			resp, body := ls.post(t, ctx, "front", "application/sdp", []byte(c.offer))
			var e struct{ Error string }
			decodeJSON(t, body, &e)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(e.Error, c.reason) {
				t.Fatalf("%d %s, want 400 naming %q", resp.StatusCode, body, c.reason)
			}
			if st := ls.srv.Stats()[0]; st.Viewers != 0 || st.Sessions != 0 {
				t.Fatalf("stats %+v after a refused offer", st)
			}
		})
	}
	c := newWHEPClient(t, clientOptions{})
	connect(t, ctx, ls, c, "front")
	c.waitState(t, ctx, webrtc.PeerConnectionStateConnected)
}

// A session whose peer never connects frees its slot after ConnectTimeout;
// one whose DTLS fails (the offer's fingerprint is not the peer's
// certificate) frees it when the handshake fails.
func TestWHEPUnconnectedSessionsFreeTheirSlot(t *testing.T) {
	requireFFmpeg(t)
	testutil.LeakCheck(t)
	cam := startCamera(t, "front", h264)
	tests := []struct {
		name    string
		timeout time.Duration
		// offer edits the client's offer; answer says whether the client
		// applies the server's answer.
		offer  func(string) string
		answer bool
	}{
		{"peer never answers", 300 * time.Millisecond, func(o string) string { return o }, false},
		// the timeout outlasts the test: only the DTLS failure can free it
		{"wrong fingerprint", 10 * time.Minute, func(o string) string {
			return editFingerprint(o, func(v string) string { return flipHexDigit(v) })
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testutil.Context(t, 60*time.Second)
			ls := startLive(t, Options{Cameras: map[string]Source{"front": cam}, MaxViewers: 1, ConnectTimeout: tc.timeout})
			a := newWHEPClient(t, clientOptions{})
			resp, answer := ls.post(t, ctx, "front", "application/sdp", []byte(tc.offer(a.offer(t, ctx))))
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("POST: %d %s", resp.StatusCode, answer)
			}
			if tc.answer {
				a.answer(t, answer)
			}
			b := newWHEPClient(t, clientOptions{})
			offerB := []byte(b.offer(t, ctx))
			// b may already find the slot free; if not, it must become free
			testutil.WaitFor(t, ctx, "the unconnected session to free its slot", func() bool {
				return ls.srv.Stats()[0].Viewers == 0
			})
			resp, body := ls.post(t, ctx, "front", "application/sdp", offerB)
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("second viewer after the first expired: %d %s", resp.StatusCode, body)
			}
		})
	}
}

// Ten offers that pass the checks but never connect take every slot of the
// default cap: an eleventh viewer is refused while they wait (503 naming the
// cap), and once ConnectTimeout has passed the good viewer gets in and
// connects. Half the dead ones never apply the answer (no ICE at all), half
// apply it with a fingerprint that is not their certificate's (DTLS fails).
func TestWHEPDeadOffersDoNotLockOutAViewer(t *testing.T) {
	requireFFmpeg(t)
	testutil.LeakCheck(t)
	ctx := testutil.Context(t, 90*time.Second)
	cam := startCamera(t, "front", h264)
	ls := startLive(t, Options{Cameras: map[string]Source{"front": cam}, ConnectTimeout: 4 * time.Second})
	const dead = 10 // the default MaxViewers
	type deadOffer struct {
		c      *whepClient
		answer string
	}
	var held []deadOffer
	for i := range dead {
		c := newWHEPClient(t, clientOptions{loopbackOnly: true})
		offer := c.offer(t, ctx)
		if i%2 == 1 {
			offer = editFingerprint(offer, flipHexDigit)
		}
		resp, body := ls.post(t, ctx, "front", "application/sdp", []byte(offer))
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("dead offer %d: %d %s", i, resp.StatusCode, body)
		}
		held = append(held, deadOffer{c, body})
	}
	good := newWHEPClient(t, clientOptions{loopbackOnly: true})
	offer := []byte(good.offer(t, ctx))
	// while every slot is held the cap answers; on a slow machine the first
	// dead sessions may have timed out already
	if n := ls.srv.Stats()[0].Viewers; n == dead {
		resp, body := ls.post(t, ctx, "front", "application/sdp", offer)
		switch {
		case resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(body, "too many viewers"):
		case resp.StatusCode == http.StatusCreated:
			t.Logf("a dead session ended between Stats and the POST")
			if err := good.pc.Close(); err != nil {
				t.Fatal(err)
			}
			good = newWHEPClient(t, clientOptions{loopbackOnly: true})
			offer = []byte(good.offer(t, ctx))
		default:
			t.Fatalf("eleventh viewer while %d slots are held: %d %s, want 503 too many viewers", n, resp.StatusCode, body)
		}
	} else {
		t.Logf("%d of %d dead sessions held when the eleventh viewer came", n, dead)
	}
	// the odd ones now start ICE and fail DTLS; the even ones never start
	for i, d := range held {
		if i%2 == 1 {
			d.c.answer(t, d.answer)
		}
	}
	testutil.WaitFor(t, ctx, "the dead sessions to free their slots", func() bool {
		return ls.srv.Stats()[0].Viewers == 0
	})
	resp, body := ls.post(t, ctx, "front", "application/sdp", offer)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("good viewer after the dead sessions ended: %d %s", resp.StatusCode, body)
	}
	good.answer(t, body)
	good.waitState(t, ctx, webrtc.PeerConnectionStateConnected)
	firstUnit(t, ctx, good.packets)
	if st := ls.srv.Stats()[0]; st.Viewers != 1 {
		t.Fatalf("stats %+v: want the good viewer alone after %d dead sessions", st, dead)
	}
}

// flipHexDigit changes the last hex digit of a fingerprint value, keeping it
// well-formed.
func flipHexDigit(v string) string {
	last := v[len(v)-1]
	repl := byte('0')
	if last == '0' {
		repl = '1'
	}
	return v[:len(v)-1] + string(repl)
}

// With ICEAddresses set to loopback, a connected viewer leaves no UDP socket
// of this process on another address, none on 0.0.0.0 or [::] (mDNS is off
// by default); without ICEAddresses the sockets spread over the interfaces
// but still none is a wildcard one.
func TestICEBindsOnlyConfiguredAddresses(t *testing.T) {
	requireFFmpeg(t)
	testutil.LeakCheck(t)
	cam := startCamera(t, "front", h264)
	tests := []struct {
		name    string
		addrs   []string
		allowed func(net.IP) bool
	}{
		{"loopback", []string{"127.0.0.1"}, func(ip net.IP) bool { return ip.Equal(net.IPv4(127, 0, 0, 1)) }},
		{"every interface, no mdns", nil, func(ip net.IP) bool { return !ip.IsUnspecified() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testutil.Context(t, 60*time.Second)
			ls := startLive(t, Options{Cameras: map[string]Source{"front": cam}, ICEAddresses: tc.addrs})
			c := newWHEPClient(t, clientOptions{loopbackOnly: true})
			connect(t, ctx, ls, c, "front")
			c.waitState(t, ctx, webrtc.PeerConnectionStateConnected)
			firstUnit(t, ctx, c.packets)
			socks, err := udpSockets()
			if err != nil {
				t.Fatal(err)
			}
			if len(socks) == 0 {
				t.Fatal("no UDP socket found while a viewer is connected: the socket listing is broken")
			}
			for _, s := range socks {
				if !tc.allowed(s.IP) {
					t.Errorf("UDP socket on %s while ICE may only use %v (all: %v)", s, tc.addrs, socks)
				}
				if s.Port == 5353 {
					t.Errorf("UDP socket on %s: mDNS is on although MulticastDNS is off (all: %v)", s, socks)
				}
			}
		})
	}
}

// udpSockets lists the local addresses of this process's UDP sockets: the
// namespace's table (/proc/self/net/udp, udp6) joined with the process's
// socket inodes (/proc/self/fd).
func udpSockets() ([]*net.UDPAddr, error) {
	mine := map[string]bool{}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	for _, fd := range fds {
		l, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if inode, ok := strings.CutPrefix(l, "socket:["); err == nil && ok {
			mine[strings.TrimSuffix(inode, "]")] = true
		}
	}
	var out []*net.UDPAddr
	for _, table := range []string{"/proc/self/net/udp", "/proc/self/net/udp6"} {
		f, err := os.Open(table)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || !mine[fields[9]] {
				continue
			}
			a, err := procAddr(fields[1])
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("%s: %w", table, err)
			}
			out = append(out, a)
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// procAddr parses "0100007F:1F90": the address as 32-bit words in host
// (little-endian) order, the port big-endian hex.
func procAddr(s string) (*net.UDPAddr, error) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return nil, fmt.Errorf("address %q", s)
	}
	raw, err := hex.DecodeString(h)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return nil, fmt.Errorf("address %q", s)
	}
	ip := make(net.IP, len(raw))
	for w := 0; w < len(raw); w += 4 {
		for i := range 4 {
			ip[w+i] = raw[w+3-i]
		}
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return nil, fmt.Errorf("port in %q", s)
	}
	return &net.UDPAddr{IP: ip, Port: int(port)}, nil
}

func TestProcAddr(t *testing.T) {
	for in, want := range map[string]string{
		"0100007F:1F90":                         "127.0.0.1:8080",
		"00000000:14E9":                         "0.0.0.0:5353",
		"00000000000000000000000000000000:14E9": "[::]:5353",
		"00000000000000000000000001000000:0035": "[::1]:53",
		"0000000000000000FFFF00000100007F:0050": "127.0.0.1:80",
	} {
		a, err := procAddr(in)
		if err != nil || a.String() != want {
			t.Errorf("procAddr(%s) = %v, %v; want %s", in, a, err, want)
		}
	}
	for _, in := range []string{"", "zz:00", "0100007F", "0100007F:zz", "01:0050"} {
		if _, err := procAddr(in); err == nil {
			t.Errorf("procAddr(%q) accepted", in)
		}
	}
}
