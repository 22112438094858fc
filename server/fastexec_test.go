package server

import (
	"net"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// TestFixedLocalOf: connections accepted on a socket bound to one address
// take its address without a getsockname each; a wildcard or transparent
// socket's must be asked.
func TestFixedLocalOf(t *testing.T) {
	cases := []struct {
		network, addr string
		transparent   bool
		fixed         bool
	}{
		{"tcp4", "127.0.0.1:0", false, true},
		{"tcp6", "[::1]:0", false, true},
		{"tcp4", "0.0.0.0:0", false, false},
		{"tcp", "[::]:0", false, false},
		{"tcp4", "127.0.0.1:0", true, false},
		{"tcp6", "[::1]:0", true, false},
	}
	for _, c := range cases {
		ln, err := net.Listen(c.network, c.addr)
		if err != nil {
			t.Logf("%s %s: %v (no such address here)", c.network, c.addr, err)
			continue
		}
		f, err := ln.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		fd := int(f.Fd())
		if c.transparent {
			level, opt := unix.SOL_IP, unix.IP_TRANSPARENT
			if c.network == "tcp6" {
				level, opt = unix.SOL_IPV6, unix.IPV6_TRANSPARENT
			}
			if err := unix.SetsockoptInt(fd, level, opt, 1); err != nil {
				t.Logf("%s %s transparent: %v (needs CAP_NET_ADMIN)", c.network, c.addr, err)
				f.Close()
				ln.Close()
				continue
			}
		}
		got := fixedLocalOf(fd)
		want := netip.AddrPort{}
		if c.fixed {
			want = ln.Addr().(*net.TCPAddr).AddrPort()
		}
		if got != want {
			t.Errorf("%s %s transparent=%v: fixedLocalOf = %v, want %v", c.network, c.addr, c.transparent, got, want)
		}
		f.Close()
		ln.Close()
	}
}
