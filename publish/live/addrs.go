package live

import (
	"net"
	"strings"
)

// addrFilter is the set of local addresses ICE may use (Options.ICEAddresses);
// a nil *addrFilter allows every address.
type addrFilter struct {
	ips          []net.IP
	allV4, allV6 bool // "0.0.0.0", "::"
}

// newAddrFilter parses validated addresses; nil for none (no filter).
func newAddrFilter(addrs []string) *addrFilter {
	if len(addrs) == 0 {
		return nil
	}
	f := &addrFilter{}
	for _, a := range addrs {
		ip := net.ParseIP(a)
		switch {
		case ip == nil:
		case ip.Equal(net.IPv4zero):
			f.allV4 = true
		case ip.Equal(net.IPv6unspecified):
			f.allV6 = true
		default:
			f.ips = append(f.ips, ip)
		}
	}
	return f
}

// keep is pion's IP filter: whether ICE may bind to and announce ip.
func (f *addrFilter) keep(ip net.IP) bool {
	if f == nil {
		return true
	}
	if ip.To4() != nil {
		if f.allV4 {
			return true
		}
	} else if f.allV6 {
		return true
	}
	for _, a := range f.ips {
		if a.Equal(ip) {
			return true
		}
	}
	return false
}

// families reports whether IPv4 and IPv6 addresses can pass.
func (f *addrFilter) families() (v4, v6 bool) {
	if f == nil {
		return true, true
	}
	v4, v6 = f.allV4, f.allV6
	for _, a := range f.ips {
		if a.To4() != nil {
			v4 = true
		} else {
			v6 = true
		}
	}
	return v4, v6
}

// loopback reports whether a loopback address was asked for explicitly,
// which pion only gathers with loopback candidates on.
func (f *addrFilter) loopback() bool {
	if f == nil {
		return false
	}
	for _, a := range f.ips {
		if a.IsLoopback() {
			return true
		}
	}
	return false
}

func (f *addrFilter) String() string {
	if f == nil {
		return "all"
	}
	var out []string
	if f.allV4 {
		out = append(out, "0.0.0.0")
	}
	if f.allV6 {
		out = append(out, "::")
	}
	for _, a := range f.ips {
		out = append(out, a.String())
	}
	return strings.Join(out, ",")
}
