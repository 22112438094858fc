// Package rawsock makes the socket system calls of acceptd's hot paths
// (the raw accept loops, the relay's connect, the relay engine's loops)
// as raw system calls, outside the runtime's syscall bookkeeping.
//
// Every call here is on a non-blocking socket, or one that cannot sleep
// (close of a socket without SO_LINGER > 0): none of them blocks. Through
// the runtime's syscall path (syscall.Syscall) each one is a chance for
// sysmon to take the calling goroutine's P away when the call outlasts
// its 20 µs tick, as a loopback connect or close often does (the
// handshake and the FIN run in the caller's softirq); the thread then
// parks in futex on the way out and another is woken to run the P. A raw
// call keeps the P: the kernel may still preempt the thread, as it may in
// user code.
package rawsock

import (
	"errors"
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Addr is a socket address encoded once for Connect.
type Addr struct {
	raw    unix.RawSockaddrAny
	len    uint32
	family int
}

// NewAddr encodes an IPv4, IPv6 or UNIX (path or abstract "@name")
// address.
func NewAddr(sa unix.Sockaddr) (*Addr, error) {
	a := &Addr{}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		p := (*unix.RawSockaddrInet4)(unsafe.Pointer(&a.raw))
		p.Family = unix.AF_INET
		p.Port = htons(sa.Port)
		p.Addr = sa.Addr
		a.len, a.family = unix.SizeofSockaddrInet4, unix.AF_INET
	case *unix.SockaddrInet6:
		p := (*unix.RawSockaddrInet6)(unsafe.Pointer(&a.raw))
		p.Family = unix.AF_INET6
		p.Port = htons(sa.Port)
		p.Addr = sa.Addr
		p.Scope_id = sa.ZoneId
		a.len, a.family = unix.SizeofSockaddrInet6, unix.AF_INET6
	case *unix.SockaddrUnix:
		p := (*unix.RawSockaddrUnix)(unsafe.Pointer(&a.raw))
		name := sa.Name
		if len(name) == 0 || len(name) >= len(p.Path) {
			return nil, errors.New("rawsock: UNIX socket name empty or too long")
		}
		p.Family = unix.AF_UNIX
		for i := range len(name) {
			p.Path[i] = int8(name[i])
		}
		// sun_family, the name and its NUL; an abstract name ("@...")
		// has a NUL first and none at the end.
		a.len = uint32(2 + len(name) + 1)
		if name[0] == '@' {
			p.Path[0] = 0
			a.len--
		}
		a.family = unix.AF_UNIX
	default:
		return nil, errors.New("rawsock: unsupported address")
	}
	return a, nil
}

// Family is the address family, for the socket to connect from.
func (a *Addr) Family() int { return a.family }

func htons(port int) uint16 { return uint16(port>>8) | uint16(port)<<8 }

func ntohs(port uint16) int { return int(port>>8) | int(port&0xff)<<8 }

// Connect starts a connect of the non-blocking socket fd to a. It returns
// unix.EINPROGRESS when the connect goes on in the background, as
// connect(2) does.
func Connect(fd int, a *Addr) error {
	_, _, e := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&a.raw)), uintptr(a.len))
	if e != 0 {
		return e
	}
	return nil
}

// Accept4 accepts a connection on the non-blocking listening socket fd
// with accept4's flags, as syscall.Accept4 does, and decodes the peer's
// address the way it does (an unnamed UNIX peer is "@"). Errors are
// syscall.Errno values.
func Accept4(fd, flags int) (int, syscall.Sockaddr, error) {
	var rsa syscall.RawSockaddrAny
	n := uint32(syscall.SizeofSockaddrAny)
	nfd, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&n)), uintptr(flags), 0, 0)
	if e != 0 {
		return -1, nil, e
	}
	switch rsa.Addr.Family {
	case syscall.AF_INET:
		p := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&rsa))
		return int(nfd), &syscall.SockaddrInet4{Port: ntohs(p.Port), Addr: p.Addr}, nil
	case syscall.AF_INET6:
		p := (*syscall.RawSockaddrInet6)(unsafe.Pointer(&rsa))
		return int(nfd), &syscall.SockaddrInet6{Port: ntohs(p.Port), Addr: p.Addr, ZoneId: p.Scope_id}, nil
	case syscall.AF_UNIX:
		p := (*syscall.RawSockaddrUnix)(unsafe.Pointer(&rsa))
		path := unsafe.Slice((*byte)(unsafe.Pointer(&p.Path[0])), len(p.Path))
		end := max(int(n)-2, 0)
		end = min(end, len(path))
		if end == 0 || path[0] == 0 {
			// Unnamed or abstract: syscall writes the leading NUL as '@'.
			if end == 0 {
				end = 1
			}
			path[0] = '@'
		}
		for i := 1; i < end; i++ {
			if path[i] == 0 {
				end = i
				break
			}
		}
		return int(nfd), &syscall.SockaddrUnix{Name: string(path[:end])}, nil
	}
	// A family acceptd does not listen on: keep the socket, no address.
	return int(nfd), nil, nil
}

// LocalAddrPort returns the local IP address (IPv4-mapped ones unmapped)
// and port of the TCP socket fd, from a raw getsockname; ok is false for
// another family or on an error.
func LocalAddrPort(fd int) (ap netip.AddrPort, ok bool) {
	var rsa syscall.RawSockaddrAny
	n := uint32(syscall.SizeofSockaddrAny)
	if _, _, e := unix.RawSyscall(unix.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&n))); e != 0 {
		return ap, false
	}
	switch rsa.Addr.Family {
	case syscall.AF_INET:
		p := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&rsa))
		return netip.AddrPortFrom(netip.AddrFrom4(p.Addr), uint16(ntohs(p.Port))), true
	case syscall.AF_INET6:
		p := (*syscall.RawSockaddrInet6)(unsafe.Pointer(&rsa))
		return netip.AddrPortFrom(netip.AddrFrom16(p.Addr).Unmap(), uint16(ntohs(p.Port))), true
	}
	return ap, false
}

// Close closes fd; the fd is gone whatever close returns.
func Close(fd int) {
	unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
}

// Read reads from a non-blocking fd (a pipe or a socket); it returns
// EAGAIN, not a wait, when there is nothing to read yet.
func Read(fd int, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// Shutdown shuts down a direction of fd and ignores errors: they mean the
// peer is gone, which the other direction finds out on its own.
func Shutdown(fd, how int) {
	unix.RawSyscall(unix.SYS_SHUTDOWN, uintptr(fd), uintptr(how), 0)
}

// SetsockoptInt sets an int socket option.
func SetsockoptInt(fd, level, opt, value int) error {
	v := int32(value)
	_, _, e := unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt),
		uintptr(unsafe.Pointer(&v)), unsafe.Sizeof(v), 0)
	if e != 0 {
		return e
	}
	return nil
}

// SoError returns how a non-blocking connect ended (SO_ERROR).
func SoError(fd int) error {
	var v int32
	n := uint32(unsafe.Sizeof(v))
	_, _, e := unix.RawSyscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_ERROR,
		uintptr(unsafe.Pointer(&v)), uintptr(unsafe.Pointer(&n)), 0)
	switch {
	case e != 0:
		return os.NewSyscallError("getsockopt", e)
	case v != 0:
		return os.NewSyscallError("connect", syscall.Errno(v))
	}
	return nil
}

// Connected reports whether fd's connect has completed (getpeername
// succeeds), without taking a pending error off the socket as SO_ERROR
// or a read would.
func Connected(fd int) bool {
	var rsa syscall.RawSockaddrAny
	n := uint32(syscall.SizeofSockaddrAny)
	_, _, e := unix.RawSyscall(unix.SYS_GETPEERNAME, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&n)))
	return e == 0
}
