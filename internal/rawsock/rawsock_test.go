package rawsock_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/acceptd/acceptd/internal/rawsock"
	"github.com/acceptd/acceptd/internal/testutil"
)

// acceptOne accepts one connection on ln with rawsock.Accept4, retrying
// while it is still on its way.
func acceptOne(t *testing.T, ln net.Listener) syscall.Sockaddr {
	t.Helper()
	rc, err := ln.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var sa syscall.Sockaddr
	var aerr error
	ok := testutil.Poll(5*time.Second, func() bool {
		var nfd int
		if err := rc.Control(func(fd uintptr) { nfd, sa, aerr = rawsock.Accept4(int(fd), unix.SOCK_CLOEXEC) }); err != nil {
			t.Fatal(err)
		}
		if aerr == nil {
			rawsock.Close(nfd)
		}
		return !errors.Is(aerr, syscall.EAGAIN)
	})
	if !ok || aerr != nil {
		t.Fatalf("accept4: %v", aerr)
	}
	return sa
}

func listen(t *testing.T, network, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		if network == "tcp6" {
			t.Skipf("no IPv6 loopback: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func TestAccept4DecodesTCPPeers(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{{"tcp4", "127.0.0.1:0"}, {"tcp6", "[::1]:0"}} {
		t.Run(tc.network, func(t *testing.T) {
			ln := listen(t, tc.network, tc.addr)
			c, err := net.Dial(tc.network, ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			sa := acceptOne(t, ln)
			want := c.LocalAddr().(*net.TCPAddr).AddrPort()
			var got netip.AddrPort
			switch a := sa.(type) {
			case *syscall.SockaddrInet4:
				got = netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
			case *syscall.SockaddrInet6:
				got = netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port))
			default:
				t.Fatalf("peer address %T", sa)
			}
			if got != want {
				t.Errorf("peer = %v, want %v", got, want)
			}
		})
	}
}

func TestAccept4DecodesUnixPeers(t *testing.T) {
	dir := testutil.ShortDir(t)
	ln := listen(t, "unix", filepath.Join(dir, "l.sock"))
	abstract := fmt.Sprintf("@acceptd-rawsock-%d", os.Getpid())
	for _, tc := range []struct {
		name  string
		laddr string // the client's own address; "" unnamed
		want  string // as syscall.Accept4 names it
	}{
		{"unnamed", "", "@"},
		{"path", filepath.Join(dir, "c.sock"), filepath.Join(dir, "c.sock")},
		{"abstract", abstract, abstract},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var laddr *net.UnixAddr
			if tc.laddr != "" {
				laddr = &net.UnixAddr{Net: "unix", Name: tc.laddr}
			}
			c, err := net.DialUnix("unix", laddr, ln.Addr().(*net.UnixAddr))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			sa, ok := acceptOne(t, ln).(*syscall.SockaddrUnix)
			if !ok {
				t.Fatalf("peer address %T", sa)
			}
			if sa.Name != tc.want {
				t.Errorf("peer = %q, want %q", sa.Name, tc.want)
			}
		})
	}
}

// connectTo connects a new non-blocking socket to a with rawsock.Connect
// and waits until the connect has ended, returning SO_ERROR's verdict.
func connectTo(t *testing.T, a *rawsock.Addr) error {
	t.Helper()
	fd, err := unix.Socket(a.Family(), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rawsock.Close(fd)
	err = rawsock.Connect(fd, a)
	if errors.Is(err, unix.EINPROGRESS) {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		if _, err := unix.Poll(pfd, 5000); err != nil {
			t.Fatal(err)
		}
		return rawsock.SoError(fd)
	}
	return err
}

func TestConnectReachesEachKind(t *testing.T) {
	dir := testutil.ShortDir(t)
	abstract := fmt.Sprintf("@acceptd-rawsock-l-%d", os.Getpid())
	for _, tc := range []struct {
		network, addr string
		sa            func(net.Addr) unix.Sockaddr
	}{
		{"tcp4", "127.0.0.1:0", func(a net.Addr) unix.Sockaddr {
			return &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: a.(*net.TCPAddr).Port}
		}},
		{"tcp6", "[::1]:0", func(a net.Addr) unix.Sockaddr {
			return &unix.SockaddrInet6{Addr: netip.IPv6Loopback().As16(), Port: a.(*net.TCPAddr).Port}
		}},
		{"unix", filepath.Join(dir, "p.sock"), func(a net.Addr) unix.Sockaddr { return &unix.SockaddrUnix{Name: a.String()} }},
		{"unix", abstract, func(a net.Addr) unix.Sockaddr { return &unix.SockaddrUnix{Name: abstract} }},
	} {
		t.Run(tc.network+" "+tc.addr, func(t *testing.T) {
			ln := listen(t, tc.network, tc.addr)
			a, err := rawsock.NewAddr(tc.sa(ln.Addr()))
			if err != nil {
				t.Fatal(err)
			}
			if err := connectTo(t, a); err != nil {
				t.Fatalf("connect: %v", err)
			}
			acceptOne(t, ln)
		})
	}
}

func TestConnectRefusedIsSoError(t *testing.T) {
	ln := listen(t, "tcp4", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	a, err := rawsock.NewAddr(&unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port})
	if err != nil {
		t.Fatal(err)
	}
	err = connectTo(t, a)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("connect to a closed port: %v, want ECONNREFUSED", err)
	}
}

func TestNewAddrRefuses(t *testing.T) {
	long := make([]byte, 200)
	for i := range long {
		long[i] = 'x'
	}
	for _, sa := range []unix.Sockaddr{&unix.SockaddrUnix{}, &unix.SockaddrUnix{Name: "/" + string(long)}, &unix.SockaddrNetlink{}} {
		if _, err := rawsock.NewAddr(sa); err == nil {
			t.Errorf("NewAddr(%#v) = nil error", sa)
		}
	}
}
