package app

import (
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/srdgd/srdgd/config"
	"github.com/srdgd/srdgd/srdg"
)

// ICE binds where HTTP listens unless publish.webrtc.ice_addresses says
// otherwise.
func TestICEAddresses(t *testing.T) {
	tests := []struct {
		name, listen string
		set          []string
		want         []string
	}{
		{"loopback http: loopback ice", "127.0.0.1:8080", nil, []string{"127.0.0.1"}},
		{"ipv6 loopback", "[::1]:8080", nil, []string{"::1"}},
		{"localhost", "localhost:8080", nil, []string{"127.0.0.1", "::1"}},
		{"one lan address", "192.0.2.10:8080", nil, []string{"192.0.2.10"}},
		{"every ipv4 interface", "0.0.0.0:8080", nil, nil},
		{"every interface", ":8080", nil, nil},
		{"every ipv6 interface", "[::]:8080", nil, nil},
		{"explicit wins", "127.0.0.1:8080", []string{"0.0.0.0"}, []string{"0.0.0.0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ICEAddresses(config.WebRTC{ICEAddresses: tc.set}, tc.listen)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("ICEAddresses(%v, %q) = %v, %v; want %v", tc.set, tc.listen, got, err, tc.want)
			}
		})
	}
	if _, err := ICEAddresses(config.WebRTC{}, "no-such-host.invalid:8080"); err == nil || !strings.Contains(err.Error(), "publish.webrtc.ice_addresses") {
		t.Fatalf("unresolvable host: %v, want advice naming publish.webrtc.ice_addresses", err)
	}
}

func TestDemoBrokerAddr(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	busy := held.Addr().String()
	freeLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	free := freeLn.Addr().String()
	freeLn.Close()

	tests := []struct {
		name, flag, def string
		same, moved     bool // same: the result is flag or def as given
		err             string
	}{
		{"default taken: a free port instead", "", busy, false, true, ""},
		{"default free: kept", "", free, true, false, ""},
		{"flag kept even when taken (the broker then says so)", busy, "127.0.0.1:1883", true, false, ""},
		{"flag port 0: resolved", "127.0.0.1:0", "127.0.0.1:1883", false, false, ""},
		{"flag not host:port", "1883", "127.0.0.1:1883", false, false, `--mqtt-listen "1883"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, moved, err := DemoBrokerAddr(tc.flag, tc.def)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tc.def
			if tc.flag != "" {
				want = tc.flag
			}
			if moved != tc.moved || (got == want) != tc.same {
				t.Fatalf("got %s moved=%v, want same=%v as %s, moved=%v", got, moved, tc.same, want, tc.moved)
			}
			host, port, err := net.SplitHostPort(got)
			if err != nil || host != "127.0.0.1" || port == "0" {
				t.Fatalf("address %q: want 127.0.0.1 and a real port", got)
			}
			if !tc.same {
				// the port given instead is free: the broker can take it
				ln, err := net.Listen("tcp", got)
				if err != nil {
					t.Fatalf("the free port %s is not: %v", got, err)
				}
				ln.Close()
			}
		})
	}
}

// TestMinDirectSide: config's bound on srdg.direct_side is the SR stage's
// (config imports no stage, so it keeps its own copy).
func TestMinDirectSide(t *testing.T) {
	if got, want := float64(config.MinDirectSide), srdg.MinDirectSide(); got != want {
		t.Errorf("config.MinDirectSide %v, srdg.MinDirectSide() %v", got, want)
	}
}
