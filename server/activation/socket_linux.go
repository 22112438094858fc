package activation

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// ipprotoMPTCP is IPPROTO_MPTCP, which x/sys/unix does not name on every
// version. An MPTCP socket serves TCP clients; it is "tcp" to acceptd.
const ipprotoMPTCP = 262

// inspect checks that fd is an open socket, sets close-on-exec on it, and
// describes it from the kernel's answers. File is left nil.
func inspect(fd int) (*Socket, error) {
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
		if errors.Is(err, unix.EBADF) {
			return nil, fmt.Errorf("fd %d: not open", fd)
		}
		return nil, fmt.Errorf("fd %d: %w", fd, err)
	}
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if errors.Is(err, unix.ENOTSOCK) {
		return nil, fmt.Errorf("fd %d: not a socket%s", fd, describe(fd))
	}
	if err != nil {
		return nil, fmt.Errorf("fd %d: read socket type: %w", fd, err)
	}
	if err := setCloexec(fd); err != nil {
		return nil, err
	}
	domain, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return nil, fmt.Errorf("fd %d: read socket family: %w", fd, err)
	}
	proto, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	if err != nil {
		return nil, fmt.Errorf("fd %d: read socket protocol: %w", fd, err)
	}
	acc, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	if err != nil {
		return nil, fmt.Errorf("fd %d: read SO_ACCEPTCONN: %w", fd, err)
	}
	sock := &Socket{FD: fd, Listening: acc != 0, Network: network(domain, typ, proto)}
	if domain == unix.AF_INET6 {
		v6only, err := unix.GetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
		if err != nil {
			return nil, fmt.Errorf("fd %d: read IPV6_V6ONLY: %w", fd, err)
		}
		sock.V6Only = v6only != 0
	}
	sa, err := unix.Getsockname(fd)
	switch {
	case errors.Is(err, unix.EAFNOSUPPORT):
		// A family x/sys/unix cannot decode (netlink, packet, ...):
		// usable by fd:N or systemd:NAME, never matched by address.
		return sock, nil
	case err != nil:
		return nil, fmt.Errorf("fd %d: read local address: %w", fd, err)
	}
	sock.Addr = address(sa)
	if sock.Addr == "" {
		return sock, nil
	}
	switch sock.Network {
	case "tcp", "udp", "sctp", "unix", "unixgram", "unixpacket":
		sock.Key = sock.Network + " " + sock.Addr
	}
	return sock, nil
}

// network names a socket the way net.Listen would, where it can.
func network(domain, typ, proto int) string {
	switch domain {
	case unix.AF_INET, unix.AF_INET6:
		switch {
		case typ == unix.SOCK_STREAM && (proto == 0 || proto == unix.IPPROTO_TCP || proto == ipprotoMPTCP):
			return "tcp"
		case typ == unix.SOCK_DGRAM && (proto == 0 || proto == unix.IPPROTO_UDP):
			return "udp"
		case (typ == unix.SOCK_STREAM || typ == unix.SOCK_SEQPACKET) && proto == unix.IPPROTO_SCTP:
			return "sctp"
		}
	case unix.AF_UNIX:
		switch typ {
		case unix.SOCK_STREAM:
			return "unix"
		case unix.SOCK_DGRAM:
			return "unixgram"
		case unix.SOCK_SEQPACKET:
			return "unixpacket"
		}
	case unix.AF_VSOCK:
		if typ == unix.SOCK_STREAM {
			return "vsock"
		}
	}
	return fmt.Sprintf("af%d/%d", domain, typ)
}

// address formats a local address in config.Address.String's form:
// unspecified addresses as "[::]" and "0.0.0.0", IPv4-mapped IPv6
// addresses as IPv4 (config unmaps them too), abstract names with '@'.
func address(sa unix.Sockaddr) string {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)).String()
	case *unix.SockaddrInet6:
		ip := netip.AddrFrom16(sa.Addr).Unmap()
		if ip.Is6() && sa.ZoneId != 0 {
			zone := strconv.FormatUint(uint64(sa.ZoneId), 10)
			// config keeps the zone as written, which is the name.
			if ifi, err := net.InterfaceByIndex(int(sa.ZoneId)); err == nil {
				zone = ifi.Name
			}
			ip = ip.WithZone(zone)
		}
		return netip.AddrPortFrom(ip, uint16(sa.Port)).String()
	case *unix.SockaddrUnix:
		// x/sys/unix already writes an abstract name's NUL as '@'; an
		// unbound or autobound-but-unnamed socket has "".
		return sa.Name
	case *unix.SockaddrVM:
		return "vsock:" + strconv.FormatUint(uint64(sa.CID), 10) + ":" + strconv.FormatUint(uint64(sa.Port), 10)
	}
	return ""
}

// describe says what a non-socket descriptor is, for the error message.
func describe(fd int) string {
	target, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return ""
	}
	return " (" + target + ")"
}

// openFDs lists the descriptors open now, or nil when /proc is missing.
func openFDs() map[int]bool {
	dir, err := os.Open("/proc/self/fd")
	if err != nil {
		return nil
	}
	defer dir.Close()
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return nil
	}
	own := int(dir.Fd())
	fds := make(map[int]bool, len(names))
	for _, name := range names {
		if n, err := strconv.Atoi(name); err == nil && n != own {
			fds[n] = true
		}
	}
	return fds
}

func openFileLimit() (uint64, bool) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 0, false
	}
	return lim.Cur, true
}

func closeFD(fd int) error { return unix.Close(fd) }

// setCloexec keeps fd from reaching a child. An fd that is not open is
// left alone.
func setCloexec(fd int) error {
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && !errors.Is(err, unix.EBADF) {
		return fmt.Errorf("fd %d: set close-on-exec: %w", fd, err)
	}
	return nil
}
