package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Prefix is a CIDR prefix as used by allow, deny, trusted_proxies and
// handoff routes. A bare address is a full-length prefix.
type Prefix = netip.Prefix

// Kind is the kind of socket an Address names.
type Kind string

const (
	KindTCP     Kind = "tcp"
	KindUnix    Kind = "unix"
	KindUDP     Kind = "udp"
	KindHandoff Kind = "handoff"
	KindSystemd Kind = "systemd"
	KindFD      Kind = "fd"
)

// maxUnixPath is sun_path's size on Linux less the terminating NUL.
const maxUnixPath = 107

// Address is one parsed address in any of the forms of CONTRACT: Addresses.
type Address struct {
	// Raw is the address as the user wrote it.
	Raw  string
	Kind Kind
	// Network is what net.Listen/net.Dial take: "tcp", "tcp4", "tcp6",
	// "unix", "udp", "udp4", "udp6". Empty for systemd and fd.
	Network string
	// Host and Port are set for TCP and UDP. Host "" means every address
	// of both families.
	Host string
	Port int
	// Path is the file system path of a UNIX or handoff socket, or the
	// abstract name with a leading '@'.
	Path string
	// Name is the FileDescriptorName of a systemd: address.
	Name string
	// FD is the descriptor number of an fd: address.
	FD int
}

// Abstract reports whether a UNIX address is in the abstract namespace.
func (a Address) Abstract() bool { return strings.HasPrefix(a.Path, "@") }

// String returns the address in the canonical form that net.Listen and the
// status output use: "HOST:PORT" with brackets for IPv6, "[::]:PORT" for a
// bare port, the path for UNIX sockets.
func (a Address) String() string {
	switch a.Kind {
	case KindTCP, KindUDP:
		host := a.Host
		if host == "" {
			host = "::"
			if a.Network == "tcp4" || a.Network == "udp4" {
				host = "0.0.0.0"
			}
		}
		return joinHostPort(host, a.Port)
	case KindUnix:
		return a.Path
	case KindHandoff:
		return "handoff:" + a.Path
	case KindSystemd:
		return "systemd:" + a.Name
	case KindFD:
		return "fd:" + strconv.Itoa(a.FD)
	}
	return a.Raw
}

// ListenAddr is the address string for net.Listen / net.Dial.
func (a Address) ListenAddr() string {
	switch a.Kind {
	case KindTCP, KindUDP:
		return joinHostPort(a.Host, a.Port)
	case KindUnix, KindHandoff:
		return a.Path
	}
	return ""
}

// Key identifies a socket for duplicate detection and for matching
// inherited sockets: two addresses with the same key are the same socket,
// except with port 0, where the kernel picks a different port each time.
func (a Address) Key() string {
	switch a.Kind {
	case KindTCP, KindUDP:
		proto := string(a.Kind)
		return proto + " " + a.String()
	case KindUnix, KindHandoff:
		return "unix " + a.Path
	}
	return a.String()
}

func joinHostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + strconv.Itoa(port)
	}
	return host + ":" + strconv.Itoa(port)
}

// ParseAddress parses an address written in any form of CONTRACT:
// Addresses. The error text is written to follow "bad address %q: ".
func ParseAddress(s string) (Address, error) {
	a := Address{Raw: s}
	if s == "" {
		return a, errors.New("empty address")
	}
	if strings.TrimSpace(s) != s {
		return a, errors.New("leading or trailing space")
	}
	scheme, rest, hasScheme := strings.Cut(s, "://")
	if hasScheme {
		switch scheme {
		case "tcp", "tcp4", "tcp6":
			return parseHostPort(a, KindTCP, scheme, rest)
		case "udp", "udp4", "udp6":
			return parseHostPort(a, KindUDP, scheme, rest)
		case "unix":
			return parseUnix(a, KindUnix, "unix", rest)
		default:
			return a, fmt.Errorf("unknown scheme %q (want tcp, tcp4, tcp6, udp, unix)", scheme)
		}
	}
	switch {
	case strings.HasPrefix(s, "handoff:"):
		return parseUnix(a, KindHandoff, "unix", strings.TrimPrefix(s, "handoff:"))
	case strings.HasPrefix(s, "systemd:"):
		a.Kind = KindSystemd
		a.Name = strings.TrimPrefix(s, "systemd:")
		if a.Name == "" || len(a.Name) > 255 || strings.ContainsAny(a.Name, ": \t\n") {
			return a, errors.New("systemd: needs a FileDescriptorName= (at most 255 characters, no colon or space)")
		}
		return a, nil
	case strings.HasPrefix(s, "fd:"):
		a.Kind = KindFD
		n, err := strconv.Atoi(strings.TrimPrefix(s, "fd:"))
		if err != nil || n < 3 {
			return a, errors.New("fd: needs a descriptor number of 3 or more")
		}
		a.FD = n
		return a, nil
	case strings.HasPrefix(s, "/"), strings.HasPrefix(s, "@"):
		return parseUnix(a, KindUnix, "unix", s)
	}
	// A bare port: every address, both families (ListenStream=31337).
	if isDigits(s) {
		return parseHostPort(a, KindTCP, "tcp", ":"+s)
	}
	if strings.Contains(s, ":") {
		return parseHostPort(a, KindTCP, "tcp", s)
	}
	if strings.Contains(s, "/") || strings.HasSuffix(s, ".sock") {
		return a, errors.New("a UNIX socket path must be absolute")
	}
	return a, errors.New("want PORT, HOST:PORT, /path, @name, or a scheme (tcp://, unix://, udp://, handoff:, systemd:, fd:)")
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func parseHostPort(a Address, kind Kind, network, hp string) (Address, error) {
	a.Kind = kind
	a.Network = network
	host, portStr, err := splitHostPort(hp)
	if err != nil {
		return a, err
	}
	if portStr == "" {
		return a, errors.New("missing port")
	}
	if !isDigits(portStr) {
		return a, fmt.Errorf("port %q is not a number", portStr)
	}
	// Port 0 lets the kernel choose, for listeners whose address is read
	// back from the status (tests, mostly); Validate-time checks refuse it
	// where it cannot work, as for a backend.
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return a, fmt.Errorf("port %s out of range 0-65535", portStr)
	}
	a.Port = port
	if host != "" {
		ip, err := netip.ParseAddr(host)
		if err != nil {
			// Names would need a resolver at start-up and a DNS answer
			// that may change; systemd does not take them either.
			return a, fmt.Errorf("host %q is not an IP address (names are not resolved)", host)
		}
		ip = ip.Unmap()
		switch {
		case strings.HasSuffix(network, "4") && !ip.Is4():
			return a, fmt.Errorf("%s:// needs an IPv4 address, not %s", network, host)
		case strings.HasSuffix(network, "6") && !ip.Is6():
			return a, fmt.Errorf("%s:// needs an IPv6 address, not %s", network, host)
		}
		if ip.IsUnspecified() && network == string(kind) {
			// [::] and 0.0.0.0 as written keep their family: 0.0.0.0 is
			// IPv4 only, [::] is both (as with ListenStream=).
			if ip.Is4() {
				a.Network = string(kind) + "4"
			}
		}
		host = ip.String()
	}
	a.Host = host
	return a, nil
}

// splitHostPort is net.SplitHostPort without its quirks: it accepts
// ":PORT" and "[v6]:PORT" and rejects an unbracketed IPv6 address.
func splitHostPort(hp string) (host, port string, err error) {
	if strings.HasPrefix(hp, "[") {
		end := strings.IndexByte(hp, ']')
		if end < 0 {
			return "", "", errors.New("missing ']' in address")
		}
		host = hp[1:end]
		rest := hp[end+1:]
		if !strings.HasPrefix(rest, ":") {
			return "", "", errors.New("missing port after ']'")
		}
		if host == "" {
			return "", "", errors.New("empty host in brackets")
		}
		return host, rest[1:], nil
	}
	i := strings.LastIndexByte(hp, ':')
	if i < 0 {
		return "", "", errors.New("missing port")
	}
	host = hp[:i]
	if strings.Contains(host, ":") {
		return "", "", errors.New("IPv6 address must be in brackets, as [::1]:PORT")
	}
	return host, hp[i+1:], nil
}

func parseUnix(a Address, kind Kind, network, p string) (Address, error) {
	a.Kind = kind
	a.Network = network
	a.Path = p
	switch {
	case p == "" || p == "@":
		return a, errors.New("empty UNIX socket path")
	case strings.HasPrefix(p, "@"):
		if len(p) > maxUnixPath+1 { // the '@' stands for the leading NUL
			return a, fmt.Errorf("abstract name is %d bytes; the limit is %d", len(p)-1, maxUnixPath)
		}
		return a, nil
	case !strings.HasPrefix(p, "/"):
		return a, fmt.Errorf("UNIX socket path %q must be absolute", p)
	case len(p) > maxUnixPath:
		return a, fmt.Errorf("UNIX socket path is %d bytes; the limit is %d", len(p), maxUnixPath)
	case strings.ContainsRune(p, 0):
		return a, errors.New("UNIX socket path contains a NUL byte")
	case strings.HasSuffix(p, "/"):
		return a, fmt.Errorf("UNIX socket path %q names a directory", p)
	}
	return a, nil
}

// ParsePrefix parses a CIDR or a bare address (a full-length prefix).
func ParsePrefix(s string) (Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return Prefix{}, fmt.Errorf("bad CIDR %q", s)
		}
		if p.Addr().Is4In6() {
			return Prefix{}, fmt.Errorf("bad CIDR %q: write IPv4 prefixes in dotted form", s)
		}
		return p.Masked(), nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return Prefix{}, fmt.Errorf("bad address %q (want an IP address or a CIDR)", s)
	}
	ip = ip.Unmap()
	return netip.PrefixFrom(ip, ip.BitLen()), nil
}
